"""Softmax, log-softmax and the losses, forward and backward: the readable NumPy specification.

Legend
    M        rows: the ops move the softmax/class axis last and flatten everything else, so
             M = N for (N, C) logits and M = N*d1*d2*... for (N, C, d1, d2, ...)
    C        classes (the length of one row)
    x        logits or scores, (M, C)
    y        the forward output, (M, C)
    t        integer class targets, (M,), already checked by the op to lie in [0, C)
    g        grad_out: (M, C) for softmax/log-softmax, (M,) per-row for the losses

Formulas (each row i on its own; m_i = max_j x_ij keeps every exponent <= 0, so nothing
overflows; exponents far below 0 underflow to 0, which is the right answer)
    softmax:      y_ij = exp(x_ij - m_i) / sum_k exp(x_ik - m_i)
                  dx_ij = y_ij * (g_ij - sum_k g_ik y_ik)
    log_softmax:  lse_i = m_i + log(sum_k exp(x_ik - m_i)),   y_ij = x_ij - lse_i
                  dx_ij = g_ij - exp(y_ij) * sum_k g_ik
    softmax cross-entropy (fused; p = softmax(x)):
                  loss_i = lse_i - x_{i, t_i}
                  dx_ij = (p_ij - [j == t_i]) * g_i
    nll:          loss_i = -y_{i, t_i}   (y = log-probabilities)
                  dy_ij = -g_i [j == t_i]
    mse:          sq = (a - b)^2 elementwise,   da = 2 (a - b) g,   db = -da
"""
import numpy as np


def _row_max(x):
    return x.max(axis=1, keepdims=True)


# ---- softmax ------------------------------------------------------------------------------
def softmax_forward(x):
    with np.errstate(under="ignore"):  # exp(x - m) << 1 underflows to 0: correct
        e = np.exp(x - _row_max(x))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(y, grad_out):
    dot = (grad_out * y).sum(axis=1, keepdims=True)
    return y * (grad_out - dot)


# ---- log-softmax --------------------------------------------------------------------------
def _logsumexp(x):
    m = _row_max(x)
    with np.errstate(under="ignore"):
        return m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def log_softmax_forward(x):
    return x - _logsumexp(x)


def log_softmax_backward(y, grad_out):
    with np.errstate(under="ignore"):
        p = np.exp(y)
    return grad_out - p * grad_out.sum(axis=1, keepdims=True)


# ---- fused softmax + cross-entropy --------------------------------------------------------
def softmax_cross_entropy_forward(x, target):
    """x (M, C), target (M,) -> loss per row (M,) and the probabilities p (M, C)."""
    lse = _logsumexp(x)
    with np.errstate(under="ignore"):
        probs = np.exp(x - lse)
    rows = np.arange(x.shape[0])
    loss = lse[:, 0] - x[rows, target]
    return loss, probs


def softmax_cross_entropy_backward(probs, target, grad_rows):
    """dx = (p - onehot(target)) * g, with g one number per row (M,)."""
    dx = probs.copy()
    dx[np.arange(probs.shape[0]), target] -= 1
    return dx * grad_rows[:, None]


# ---- negative log-likelihood --------------------------------------------------------------
def nll_forward(log_probs, target):
    """log_probs (M, C), target (M,) -> loss per row (M,)."""
    return -log_probs[np.arange(log_probs.shape[0]), target]


def nll_backward(grad_rows, target, num_classes):
    """-g_i at (i, t_i), zero elsewhere: (M, C)."""
    M = grad_rows.shape[0]
    dlog = np.zeros((M, num_classes), dtype=grad_rows.dtype)
    dlog[np.arange(M), target] = -grad_rows
    return dlog


# ---- mean squared error -------------------------------------------------------------------
def mse_forward(a, b):
    """(a - b)^2 elementwise; the op sums or averages it."""
    d = a - b
    return d * d


def mse_backward(a, b, grad_out):
    """d/da of sum(g * (a - b)^2) = 2 (a - b) g; the gradient for b is its negative."""
    return 2 * (a - b) * grad_out
