"""Normalisation kernels in Numba: the same functions as kernels/reference/norm.py.

Read the reference first: it has the formulas. Shapes, as there:

    N   batch size
    C   channels
    S   positions per channel (H*W, L, or 1)
    M   values per channel that batch norm averages over: M = N * S

Each public function is a small Python wrapper that allocates the outputs and casts the scalar
hyper-parameters to the array's dtype (so float32 loops stay float32), then calls a jitted loop.
Who owns what, so that no two threads write the same element:
    LRN             prange over (n, c) planes; each iteration writes only its plane.
    batch norm      stats, training forward and backward: prange over channels c; each
                    iteration writes only channel c (its sums, then its slice y[:, c, :] or
                    dx[:, c, :] while the channel is still in cache).
                    eval forward: prange over (n, c) planes.
Sums over many values accumulate in float64.
"""
import numpy as np
from numba import prange

from ._jit import kernel
# (C,)-sized NumPy one-liners: nothing worth compiling, the reference versions serve as they are
from ..reference.norm import batch_norm_invstd, batch_norm_update_running  # noqa: F401


# ---- local response normalisation ----------------------------------------------------------
@kernel
def _lrn_forward_loop(x, size, alpha, beta, k, out, scale):
    N, C, S = x.shape
    for p in prange(N * C):
        n, c = p // C, p % C
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        acc = scale[n, c]            # this plane of `scale` holds the running sum first
        acc[:] = 0
        for j in range(lo, hi + 1):  # channel-outer, position-inner: contiguous, vectorises
            for s in range(S):
                acc[s] += x[n, j, s] * x[n, j, s]
        for s in range(S):
            sc = k + alpha * acc[s]
            acc[s] = sc
            out[n, c, s] = x[n, c, s] * sc ** -beta


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, S) -> (out, scale), both (N, C, S): out = x * scale**-beta."""
    one = x.dtype.type
    out, scale = np.empty_like(x), np.empty_like(x)
    _lrn_forward_loop(x, size, one(alpha), one(beta), one(k), out, scale)
    return out, scale


@kernel
def _lrn_backward_t(out, scale, grad_out, t):
    """t = g * out / scale = g_c a_c s_c^(-beta-1), plane by plane."""
    N, C, S = out.shape
    for p in prange(N * C):
        n, c = p // C, p % C
        for s in range(S):
            t[n, c, s] = grad_out[n, c, s] * out[n, c, s] / scale[n, c, s]


@kernel
def _lrn_backward_gather(x, scale, grad_out, t, size, coef, beta, dx):
    """dx_j = g_j s_j^(-beta) - coef * x_j * (sum of t over the reversed window of j)."""
    N, C, S = x.shape
    for p in prange(N * C):
        n, j = p // C, p % C
        lo, hi = max(0, j - (size - 1) // 2), min(C - 1, j + size // 2)
        acc = dx[n, j]               # this plane of dx holds the gathered sum first
        acc[:] = 0
        for c in range(lo, hi + 1):
            for s in range(S):
                acc[s] += t[n, c, s]
        for s in range(S):
            acc[s] = grad_out[n, j, s] * scale[n, j, s] ** -beta - coef * x[n, j, s] * acc[s]


def lrn_backward(x, out, scale, grad_out, size, alpha, beta, k):
    """dL/dx (N, C, S) from the forward's x, out, scale and grad_out = dL/dout."""
    one = x.dtype.type
    t, dx = np.empty_like(x), np.empty_like(x)
    # two kernels, not two loops in one: the gather reads t of neighbouring planes, so every
    # plane of t must be finished first (Numba could fuse two prange loops in one function)
    _lrn_backward_t(out, scale, grad_out, t)
    _lrn_backward_gather(x, scale, grad_out, t, size, one(2 * alpha * beta), one(beta), dx)
    return dx


# ---- batch norm ----------------------------------------------------------------------------
@kernel(parallel=False)
def _channel_stats(x, c):
    """Mean and biased variance of channel c, two passes in float64; serial: called in a prange."""
    N, C, S = x.shape
    total = 0.0                           # float64 accumulators, whatever x's dtype
    for n in range(N):
        for s in range(S):
            total += x[n, c, s]
    mu = total / (N * S)
    sq = 0.0                              # second pass: squared deviations, no cancellation
    for n in range(N):
        for s in range(S):
            d = x[n, c, s] - mu
            sq += d * d
    return mu, sq / (N * S)


@kernel
def _stats_loop(x, mean, var):
    for c in prange(x.shape[1]):
        mean[c], var[c] = _channel_stats(x, c)


def batch_norm_stats(x):
    """x (N, C, S) -> (mean, var), each (C,), biased variance, two passes in float64."""
    mean, var = np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)
    _stats_loop(x, mean, var)
    return mean, var


@kernel
def _forward_loop(x, mean, invstd, weight, bias, y):
    N, C, S = x.shape
    for p in prange(N * C):
        n, c = p // C, p % C
        m, i, w, b = mean[c], invstd[c], weight[c], bias[c]
        for s in range(S):
            y[n, c, s] = (x[n, c, s] - m) * i * w + b


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x - mean) * invstd * weight + bias, with (C,) parameters broadcast over (N, C, S)."""
    y = np.empty_like(x)
    _forward_loop(x, mean, invstd, weight, bias, y)
    return y


@kernel
def _train_forward_loop(x, weight, bias, eps, y, mean, var, invstd):
    N, C, S = x.shape
    for c in prange(C):  # one channel per iteration: its statistics, then its y while it is in cache
        mean[c], var[c] = _channel_stats(x, c)
        invstd[c] = 1.0 / np.sqrt(np.float64(var[c]) + eps)  # from var rounded to x's dtype
        m, i, w, b = mean[c], invstd[c], weight[c], bias[c]
        for n in range(N):
            for s in range(S):
                y[n, c, s] = (x[n, c, s] - m) * i * w + b


def batch_norm_train_forward(x, weight, bias, eps):
    """Training mode: the batch's statistics, then the forward with them.

    -> (y, mean, var, invstd); var is the biased variance, invstd = 1 / sqrt(var + eps).
    """
    C = x.shape[1]
    y, mean, var, invstd = np.empty_like(x), np.empty(C, x.dtype), np.empty(C, x.dtype), np.empty(C, x.dtype)
    _train_forward_loop(x, weight, bias, float(eps), y, mean, var, invstd)
    return y, mean, var, invstd


@kernel(parallel=False)
def _channel_grad_sums(grad_out, x, c, m, i):
    """sum g and sum g * xhat over channel c, in float64; serial: called inside a prange."""
    N, C, S = x.shape
    m, i = np.float64(m), np.float64(i)
    sg, sgx = 0.0, 0.0
    for n in range(N):
        for s in range(S):
            g = np.float64(grad_out[n, c, s])
            sg += g
            sgx += g * ((x[n, c, s] - m) * i)
    return sg, sgx


@kernel
def _train_backward_loop(grad_out, x, mean, invstd, weight, M, dx, dweight, dbias):
    N, C, S = x.shape
    for c in prange(C):  # one channel per iteration: its sums, then its dx while it is in cache
        m, i = mean[c], invstd[c]
        dbias[c], dweight[c] = _channel_grad_sums(grad_out, x, c, m, i)
        sg, sgx = dbias[c], dweight[c]   # read back: the sums rounded to x's dtype
        factor = i * weight[c] / M
        for n in range(N):
            for s in range(S):
                xhat = (x[n, c, s] - m) * i
                dx[n, c, s] = factor * (M * grad_out[n, c, s] - sg - xhat * sgx)


def batch_norm_backward(grad_out, x, mean, invstd, weight):
    """Training mode (mean and invstd were computed from x): -> (dx, dweight, dbias)."""
    dx, dweight, dbias = np.empty_like(x), np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)
    M = x.dtype.type(x.shape[0] * x.shape[2])  # M in x's dtype: an int64 M would make it float64
    _train_backward_loop(grad_out, x, mean, invstd, weight, M, dx, dweight, dbias)
    return dx, dweight, dbias


@kernel
def _eval_backward_loop(grad_out, x, mean, invstd, weight, dx, dweight, dbias):
    N, C, S = x.shape
    for c in prange(C):
        dbias[c], dweight[c] = _channel_grad_sums(grad_out, x, c, mean[c], invstd[c])
        factor = invstd[c] * weight[c]  # the statistics are constants: dx is just rescaled g
        for n in range(N):
            for s in range(S):
                dx[n, c, s] = grad_out[n, c, s] * factor


def batch_norm_backward_eval(grad_out, x, mean, invstd, weight):
    """Eval mode (mean and invstd are constants, the running statistics): -> (dx, dweight, dbias)."""
    dx, dweight, dbias = np.empty_like(x), np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)
    _eval_backward_loop(grad_out, x, mean, invstd, weight, dx, dweight, dbias)
    return dx, dweight, dbias
