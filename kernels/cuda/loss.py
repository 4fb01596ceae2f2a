"""Softmax, log-softmax and the losses on the GPU (numba.cuda): the same functions and
signatures as kernels/reference/loss.py, where the formulas are written out.

Shapes
    M rows, C classes; x, y, probs, grad_out (M, C); target (M,) int64 (a host array is copied
    over); grad_rows and the per-row losses (M,); mse works on any shape, flat.

Thread-to-data mapping
    row kernels: one thread per ROW i, which walks its C classes three times (max, sum of
                 exponentials, write). C is at most a few thousand classes, so a row is cheap
                 and the thread owns everything it writes.
    mse:         one thread per element.
Every exponent is x - max <= 0 (nothing overflows), as the reference.
"""
import math

from numba import cuda

from ._launch import THREADS, blocks, empty, flat, on_device, scalar


def _rows(kernel, M, *args):
    if M:
        kernel[blocks(M), THREADS](*args)


@cuda.jit(device=True)
def _row_max(x, i):
    m = x[i, 0]
    for j in range(1, x.shape[1]):
        if x[i, j] > m or x[i, j] != x[i, j]:
            m = x[i, j]
            if m != m:
                break                      # a NaN row stays NaN
    return m


@cuda.jit(device=True)
def _logsumexp(x, i, zero):
    m = _row_max(x, i)
    s = zero
    for j in range(x.shape[1]):
        s += math.exp(x[i, j] - m)
    return m + math.log(s)


# ---- softmax ------------------------------------------------------------------------------
@cuda.jit
def _softmax_forward_kernel(x, y, zero):
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    m = _row_max(x, i)
    s = zero
    for j in range(x.shape[1]):
        e = math.exp(x[i, j] - m)
        y[i, j] = e
        s += e
    for j in range(x.shape[1]):
        y[i, j] = y[i, j] / s


@cuda.jit
def _softmax_backward_kernel(y, g, dx, zero):
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    dot = zero
    for j in range(y.shape[1]):
        dot += g[i, j] * y[i, j]
    for j in range(y.shape[1]):
        dx[i, j] = y[i, j] * (g[i, j] - dot)


def softmax_forward(x):
    y = empty(x.shape, x.dtype)
    _rows(_softmax_forward_kernel, x.shape[0], x, y, scalar(0, x.dtype))
    return y


def softmax_backward(y, grad_out):
    dx = empty(y.shape, y.dtype)
    _rows(_softmax_backward_kernel, y.shape[0], y, grad_out, dx, scalar(0, y.dtype))
    return dx


# ---- log-softmax --------------------------------------------------------------------------
@cuda.jit
def _log_softmax_forward_kernel(x, y, zero):
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    lse = _logsumexp(x, i, zero)
    for j in range(x.shape[1]):
        y[i, j] = x[i, j] - lse


@cuda.jit
def _log_softmax_backward_kernel(y, g, dx, zero):
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    s = zero
    for j in range(y.shape[1]):
        s += g[i, j]
    for j in range(y.shape[1]):
        dx[i, j] = g[i, j] - math.exp(y[i, j]) * s


def log_softmax_forward(x):
    y = empty(x.shape, x.dtype)
    _rows(_log_softmax_forward_kernel, x.shape[0], x, y, scalar(0, x.dtype))
    return y


def log_softmax_backward(y, grad_out):
    dx = empty(y.shape, y.dtype)
    _rows(_log_softmax_backward_kernel, y.shape[0], y, grad_out, dx, scalar(0, y.dtype))
    return dx


# ---- fused softmax + cross-entropy --------------------------------------------------------
@cuda.jit
def _ce_forward_kernel(x, target, loss, probs, zero):
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    lse = _logsumexp(x, i, zero)
    for j in range(x.shape[1]):
        probs[i, j] = math.exp(x[i, j] - lse)
    loss[i] = lse - x[i, target[i]]


@cuda.jit
def _ce_backward_kernel(probs, target, g, dx):
    i = cuda.grid(1)
    if i >= probs.shape[0]:
        return
    for j in range(probs.shape[1]):
        p = probs[i, j]
        if j == target[i]:
            p -= 1
        dx[i, j] = p * g[i]


def softmax_cross_entropy_forward(x, target):
    """x (M, C), target (M,) -> loss per row (M,) and the probabilities (M, C)."""
    M = x.shape[0]
    loss, probs = empty((M,), x.dtype), empty(x.shape, x.dtype)
    _rows(_ce_forward_kernel, M, x, on_device(target), loss, probs, scalar(0, x.dtype))
    return loss, probs


def softmax_cross_entropy_backward(probs, target, grad_rows):
    dx = empty(probs.shape, probs.dtype)
    _rows(_ce_backward_kernel, probs.shape[0], probs, on_device(target), on_device(grad_rows), dx)
    return dx


# ---- negative log-likelihood --------------------------------------------------------------
@cuda.jit
def _nll_forward_kernel(log_probs, target, loss):
    i = cuda.grid(1)
    if i < log_probs.shape[0]:
        loss[i] = -log_probs[i, target[i]]


@cuda.jit
def _nll_backward_kernel(g, target, dlog):
    i = cuda.grid(1)
    if i >= dlog.shape[0]:
        return
    for j in range(dlog.shape[1]):
        dlog[i, j] = -g[i] if j == target[i] else 0


def nll_forward(log_probs, target):
    loss = empty((log_probs.shape[0],), log_probs.dtype)
    _rows(_nll_forward_kernel, log_probs.shape[0], log_probs, on_device(target), loss)
    return loss


def nll_backward(grad_rows, target, num_classes):
    M = grad_rows.shape[0]
    dlog = empty((M, num_classes), grad_rows.dtype)
    _rows(_nll_backward_kernel, M, on_device(grad_rows), on_device(target), dlog)
    return dlog


# ---- mean squared error -------------------------------------------------------------------
@cuda.jit
def _mse_forward_kernel(a, b, out):
    i = cuda.grid(1)
    if i < a.size:
        d = a[i] - b[i]
        out[i] = d * d


@cuda.jit
def _mse_backward_kernel(a, b, g, out):
    i = cuda.grid(1)
    if i < a.size:
        out[i] = 2 * (a[i] - b[i]) * g[i]


def mse_forward(a, b):
    out = empty(a.shape, a.dtype)
    _rows(_mse_forward_kernel, a.size, flat(a), flat(b), flat(out))
    return out


def mse_backward(a, b, grad_out):
    out = empty(a.shape, a.dtype)
    _rows(_mse_backward_kernel, a.size, flat(a), flat(b), flat(on_device(grad_out)), flat(out))
    return out
