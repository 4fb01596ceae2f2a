"""Softmax, log-softmax and the losses, forward and backward: Numba versions of
kernels/reference/loss.py.

Legend
    M        rows: the ops move the softmax/class axis last and flatten everything else, so
             M = N for (N, C) logits and M = N*d1*d2*... for (N, C, d1, d2, ...)
    C        classes (the length of one row)
    x        logits or scores, (M, C)
    y        the forward output, (M, C)
    t        integer class targets, (M,), already checked by the op to lie in [0, C)
    g        grad_out: (M, C) for softmax/log-softmax, (M,) per-row for the losses

Formulas (each row i on its own; m_i = max_j x_ij keeps every exponent <= 0)
    softmax:      y_ij = exp(x_ij - m_i) / sum_k exp(x_ik - m_i)
                  dx_ij = y_ij * (g_ij - sum_k g_ik y_ik)
    log_softmax:  lse_i = m_i + log(sum_k exp(x_ik - m_i)),   y_ij = x_ij - lse_i
                  dx_ij = g_ij - exp(y_ij) * sum_k g_ik
    softmax cross-entropy (fused; p = softmax(x)):
                  loss_i = lse_i - x_{i, t_i}
                  dx_ij = (p_ij - [j == t_i]) * g_i
    nll:          loss_i = -y_{i, t_i}          dy_ij = -g_i [j == t_i]
    mse:          sq = (a - b)^2,   da = 2 (a - b) g

Every prange iteration owns one row (or one element for mse), so no two threads write the
same output. Sums run in a different order than NumPy's pairwise sums: results agree with the
reference to rounding, not bit for bit.

The exponentials e^(x - m) have arguments <= 0, so they use exp_nonpos from _exp.py, which the
compiler vectorises (math.exp is one libm call per element: it made cross-entropy several times
slower than PyTorch's; see benchmarks/results/cpu_measurements.md). Sums run in x's dtype, as
the reference's do: a float64 sum is more accurate, and then float32 results drift from the
reference's by more than a few units in the last place (log-softmax of a confident row). The
fused cross-entropy's p = e^(x - lse) is taken as e^(x - m) * e^(m - lse): the same rounded lse,
one exponential per element instead of two.
"""
import math

import numpy as np
from numba import prange

from ._exp import exp_nonpos
from ._jit import kernel, sized


@kernel(parallel=False)
def _row_max(x, i):
    """max_j x[i, j]; a NaN anywhere makes it NaN (so the whole row comes out NaN)."""
    m = x[i, 0]
    for j in range(1, x.shape[1]):
        v = x[i, j]
        if v > m or v != v:
            m = v
            if v != v:
                break
    return m


@kernel(parallel=False)
def _row_logsumexp(x, i):
    m = _row_max(x, i)
    s = x.dtype.type(0)
    for j in range(x.shape[1]):
        s += exp_nonpos(x[i, j] - m)
    return m + math.log(s)


# ---- softmax ------------------------------------------------------------------------------
@kernel
def _softmax_forward(x, out):
    for i in prange(x.shape[0]):
        m = _row_max(x, i)
        s = x.dtype.type(0)
        for j in range(x.shape[1]):
            e = exp_nonpos(x[i, j] - m)
            out[i, j] = e
            s += e
        for j in range(x.shape[1]):
            out[i, j] = out[i, j] / s


@kernel
def _softmax_backward(y, g, out):
    for i in prange(y.shape[0]):
        dot = y.dtype.type(0)
        for j in range(y.shape[1]):
            dot += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            out[i, j] = y[i, j] * (g[i, j] - dot)


def softmax_forward(x):
    out = np.empty(x.shape, dtype=x.dtype)
    sized(_softmax_forward, x.size)(np.ascontiguousarray(x), out)
    return out


def softmax_backward(y, grad_out):
    out = np.empty(y.shape, dtype=y.dtype)
    sized(_softmax_backward, y.size)(np.ascontiguousarray(y), np.ascontiguousarray(grad_out), out)
    return out


# ---- log-softmax --------------------------------------------------------------------------
@kernel
def _log_softmax_forward(x, out):
    for i in prange(x.shape[0]):
        lse = _row_logsumexp(x, i)
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse


@kernel
def _log_softmax_backward(y, g, out):
    for i in prange(y.shape[0]):
        total = y.dtype.type(0)
        for j in range(y.shape[1]):
            total += g[i, j]
        for j in range(y.shape[1]):
            out[i, j] = g[i, j] - math.exp(y[i, j]) * total


def log_softmax_forward(x):
    out = np.empty(x.shape, dtype=x.dtype)
    sized(_log_softmax_forward, x.size)(np.ascontiguousarray(x), out)
    return out


def log_softmax_backward(y, grad_out):
    out = np.empty(y.shape, dtype=y.dtype)
    sized(_log_softmax_backward, y.size)(np.ascontiguousarray(y), np.ascontiguousarray(grad_out), out)
    return out


# ---- fused softmax + cross-entropy --------------------------------------------------------
@kernel
def _softmax_cross_entropy_forward(x, target, loss, probs):
    for i in prange(x.shape[0]):
        m = _row_max(x, i)
        s = x.dtype.type(0)
        for j in range(x.shape[1]):              # each exponential once, kept in probs
            e = exp_nonpos(x[i, j] - m)
            probs[i, j] = e
            s += e
        lse = m + math.log(s)
        loss[i] = lse - x[i, target[i]]
        # p = e^(x - lse) = e^(x - m) * e^(m - lse): with the reference's rounded lse, not 1/s
        scale = exp_nonpos(m - lse)
        for j in range(x.shape[1]):
            probs[i, j] = probs[i, j] * scale


@kernel
def _softmax_cross_entropy_backward(probs, target, grad_rows, dx):
    one = probs.dtype.type(1)
    for i in prange(probs.shape[0]):
        g = grad_rows[i]
        for j in range(probs.shape[1]):
            dx[i, j] = probs[i, j] * g
        dx[i, target[i]] = (probs[i, target[i]] - one) * g


def softmax_cross_entropy_forward(x, target):
    """x (M, C), target (M,) -> loss per row (M,) and the probabilities p (M, C)."""
    loss = np.empty(x.shape[0], dtype=x.dtype)
    probs = np.empty(x.shape, dtype=x.dtype)
    loop = sized(_softmax_cross_entropy_forward, x.size)
    loop(np.ascontiguousarray(x), np.ascontiguousarray(target), loss, probs)
    return loss, probs


def softmax_cross_entropy_backward(probs, target, grad_rows):
    """dx = (p - onehot(target)) * g, with g one number per row (M,)."""
    dx = np.empty(probs.shape, dtype=probs.dtype)
    loop = sized(_softmax_cross_entropy_backward, probs.size)
    loop(np.ascontiguousarray(probs), np.ascontiguousarray(target), np.ascontiguousarray(grad_rows), dx)
    return dx


# ---- negative log-likelihood --------------------------------------------------------------
@kernel
def _nll_forward(log_probs, target, loss):
    for i in prange(log_probs.shape[0]):
        loss[i] = -log_probs[i, target[i]]


@kernel
def _nll_backward(grad_rows, target, dlog):
    zero = dlog.dtype.type(0)
    for i in prange(dlog.shape[0]):
        for j in range(dlog.shape[1]):
            dlog[i, j] = zero
        dlog[i, target[i]] = -grad_rows[i]


def nll_forward(log_probs, target):
    """log_probs (M, C), target (M,) -> loss per row (M,)."""
    loss = np.empty(log_probs.shape[0], dtype=log_probs.dtype)
    sized(_nll_forward, log_probs.size)(np.ascontiguousarray(log_probs), np.ascontiguousarray(target), loss)
    return loss


def nll_backward(grad_rows, target, num_classes):
    """-g_i at (i, t_i), zero elsewhere: (M, C)."""
    dlog = np.empty((grad_rows.shape[0], num_classes), dtype=grad_rows.dtype)
    sized(_nll_backward, dlog.size)(np.ascontiguousarray(grad_rows), np.ascontiguousarray(target), dlog)
    return dlog


# ---- mean squared error -------------------------------------------------------------------
@kernel
def _mse_forward(a, b, out):
    for i in prange(a.size):
        d = a[i] - b[i]
        out[i] = d * d


@kernel
def _mse_backward(a, b, g, out):
    two = a.dtype.type(2)
    for i in prange(a.size):
        out[i] = two * (a[i] - b[i]) * g[i]


def mse_forward(a, b):
    """(a - b)^2 elementwise; the op sums or averages it."""
    out = np.empty(a.shape, dtype=a.dtype)
    loop = sized(_mse_forward, a.size)
    loop(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), out.reshape(-1))
    return out


def mse_backward(a, b, grad_out):
    """d/da of sum(g * (a - b)^2) = 2 (a - b) g; the gradient for b is its negative."""
    out = np.empty(a.shape, dtype=a.dtype)
    loop = sized(_mse_backward, a.size)
    loop(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1),
         np.ascontiguousarray(grad_out).reshape(-1), out.reshape(-1))
    return out
