"""Normalisation kernels on the GPU (numba.cuda): local response normalisation and batch norm,
the same functions and signatures as kernels/reference/norm.py (formulas written there).

Shapes
    N batch, C channels, S positions per channel (H*W; 1 for (N, C)), M = N*S values per channel
    x, out, scale, grad_out, dx   (N, C, S);   mean, var, invstd, weight, bias, sums   (C,)

LRN, window(c) = channels max(0, c - size//2) ... min(C-1, c + (size-1)//2):
    s_c = k + alpha * sum_{j in window(c)} a_j^2,   b_c = a_c * s_c^(-beta)
    dL/da_j = g_j s_j^(-beta) - 2 alpha beta a_j * sum_{c : j in window(c)} g_c b_c / s_c

Batch norm, per channel:  xhat = (x - mean) * invstd,  y = weight * xhat + bias
    training: dx = invstd * weight / M * (M g - sum g - xhat * sum(g xhat))
    eval:     dx = g * invstd * weight
    invstd = 1 / sqrt(var + eps)   (float64 arithmetic, stored in the data's dtype)
    running = (1 - f) * running + f * batch value;   running_var takes var * M / (M - 1)

Thread-to-data mapping
    LRN forward/backward: one thread per (n, c, s), looping over its window of channels.
    batch_norm_stats, the gradient sums: one BLOCK of REDUCE_THREADS threads per channel c.
        Thread t adds up the values t, t + REDUCE_THREADS, ... of the channel's M values (in
        float64, as the reference), puts its partial sum in shared memory, and the block halves
        the array log2(REDUCE_THREADS) times (a tree reduction, syncthreads between steps).
        Two passes for the variance (mean first), as the reference: no cancellation.
    batch_norm_forward, the dx of the backward: one thread per element (n, c, s).
    batch_norm_invstd, batch_norm_update_running: one thread per channel c (in place: thread c
        writes only running_mean[c] and running_var[c]).
"""
import math

import numpy as np
from numba import cuda, float64

from ._launch import THREADS, blocks, empty, on_device, scalar

REDUCE_THREADS = 128   # a power of two: the tree reduction halves it down to one


# ---- local response normalisation ----------------------------------------------------------
@cuda.jit
def _lrn_forward_kernel(x, size, alpha, beta, k, out, scale, zero):
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = (t // S) % C
    s = t % S
    acc = zero
    for j in range(max(0, c - size // 2), min(C - 1, c + (size - 1) // 2) + 1):
        acc += x[n, j, s] * x[n, j, s]
    sc = k + alpha * acc
    scale[n, c, s] = sc
    out[n, c, s] = x[n, c, s] * sc ** -beta


@cuda.jit
def _lrn_backward_kernel(x, out, scale, g, size, alpha, beta, dx, zero):
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    j = (t // S) % C
    s = t % S
    acc = zero
    # every channel c whose window holds j: the window reversed
    for c in range(max(0, j - (size - 1) // 2), min(C - 1, j + size // 2) + 1):
        acc += g[n, c, s] * out[n, c, s] / scale[n, c, s]
    dx[n, j, s] = g[n, j, s] * scale[n, j, s] ** -beta - 2 * alpha * beta * x[n, j, s] * acc


def lrn_forward(x, size, alpha, beta, k):
    out, scale = empty(x.shape, x.dtype), empty(x.shape, x.dtype)
    if x.size:
        f = x.dtype
        _lrn_forward_kernel[blocks(x.size), THREADS](x, size, scalar(alpha, f), scalar(beta, f),
                                                     scalar(k, f), out, scale, scalar(0, f))
    return out, scale


def lrn_backward(x, out, scale, grad_out, size, alpha, beta, k):
    dx = empty(x.shape, x.dtype)
    if x.size:
        f = x.dtype
        _lrn_backward_kernel[blocks(x.size), THREADS](x, out, scale, grad_out, size, scalar(alpha, f),
                                                      scalar(beta, f), dx, scalar(0, f))
    return dx


# ---- batch norm: per-channel reductions ------------------------------------------------------
@cuda.jit(device=True)
def _block_sum(partial, value):
    """Sum `value` over the block's threads through the shared array `partial` (a tree)."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    half = REDUCE_THREADS // 2
    while half > 0:
        if t < half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        half //= 2
    total = partial[0]
    cuda.syncthreads()          # everyone has read partial[0] before it is reused
    return total


@cuda.jit
def _stats_kernel(x, mean, var):
    c = cuda.blockIdx.x                      # one block per channel
    t = cuda.threadIdx.x
    N, C, S = x.shape
    M = N * S
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    for m in range(t, M, REDUCE_THREADS):
        acc += x[m // S, c, m % S]
    mu = _block_sum(partial, acc) / M
    acc = 0.0
    for m in range(t, M, REDUCE_THREADS):
        d = x[m // S, c, m % S] - mu
        acc += d * d
    v = _block_sum(partial, acc) / M
    if t == 0:
        mean[c] = mu
        var[c] = v


@cuda.jit
def _grad_sums_kernel(g, x, mean, invstd, sum_g, sum_gxhat):
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    N, C, S = x.shape
    M = N * S
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    a = 0.0
    b = 0.0
    mu = float64(mean[c])
    inv = float64(invstd[c])
    for m in range(t, M, REDUCE_THREADS):
        gv = float64(g[m // S, c, m % S])
        a += gv
        b += gv * ((float64(x[m // S, c, m % S]) - mu) * inv)
    a = _block_sum(partial, a)
    b = _block_sum(partial, b)
    if t == 0:
        sum_g[c] = a
        sum_gxhat[c] = b


def batch_norm_stats(x):
    """x (N, C, S) -> (mean, var), each (C,), biased variance, accumulated in float64."""
    N, C, S = x.shape
    mean, var = empty((C,), x.dtype), empty((C,), x.dtype)
    if C:
        _stats_kernel[C, REDUCE_THREADS](x, mean, var)
    return mean, var


def _grad_sums(grad_out, x, mean, invstd):
    C = x.shape[1]
    sum_g, sum_gxhat = empty((C,), np.float64), empty((C,), np.float64)
    if C:
        _grad_sums_kernel[C, REDUCE_THREADS](grad_out, x, mean, invstd, sum_g, sum_gxhat)
    return sum_g, sum_gxhat


# ---- batch norm: elementwise ------------------------------------------------------------------
@cuda.jit
def _bn_forward_kernel(x, mean, invstd, weight, bias, y):
    t = cuda.grid(1)
    N, C, S = x.shape
    if t < N * C * S:
        n, c, s = t // (C * S), (t // S) % C, t % S
        y[n, c, s] = (x[n, c, s] - mean[c]) * invstd[c] * weight[c] + bias[c]


@cuda.jit
def _bn_backward_kernel(g, x, mean, invstd, weight, sum_g, sum_gxhat, training, dx, dweight, dbias):
    t = cuda.grid(1)
    N, C, S = x.shape
    if t < C:                                  # the parameter gradients, cast to the data's dtype
        dweight[t] = sum_gxhat[t]
        dbias[t] = sum_g[t]
    if t >= N * C * S:
        return
    n, c, s = t // (C * S), (t // S) % C, t % S
    i = invstd[c]
    if training:
        M = N * S
        xhat = (x[n, c, s] - mean[c]) * i
        dx[n, c, s] = i * weight[c] / M * (M * g[n, c, s] - sum_g[c] - xhat * sum_gxhat[c])
    else:
        dx[n, c, s] = g[n, c, s] * (i * weight[c])


def batch_norm_forward(x, mean, invstd, weight, bias):
    y = empty(x.shape, x.dtype)
    if x.size:
        _bn_forward_kernel[blocks(x.size), THREADS](x, on_device(mean), on_device(invstd),
                                                    on_device(weight), on_device(bias), y)
    return y


def _backward(grad_out, x, mean, invstd, weight, training):
    mean, invstd, weight = on_device(mean), on_device(invstd), on_device(weight)
    C = x.shape[1]
    sum_g, sum_gxhat = _grad_sums(grad_out, x, mean, invstd)
    dx, dweight, dbias = empty(x.shape, x.dtype), empty((C,), x.dtype), empty((C,), x.dtype)
    n = max(x.size, C)
    if n:
        _bn_backward_kernel[blocks(n), THREADS](grad_out, x, mean, invstd, weight, sum_g, sum_gxhat,
                                                training, dx, dweight, dbias)
    return dx, dweight, dbias


def batch_norm_backward(grad_out, x, mean, invstd, weight):
    """Training mode: mean and invstd were computed from x -> (dx, dweight, dbias)."""
    return _backward(grad_out, x, mean, invstd, weight, True)


def batch_norm_backward_eval(grad_out, x, mean, invstd, weight):
    """Eval mode: mean and invstd are the running statistics, constants -> (dx, dweight, dbias)."""
    return _backward(grad_out, x, mean, invstd, weight, False)


# ---- batch norm: per-channel parameters and the running statistics ---------------------------
@cuda.jit
def _invstd_kernel(var, eps, invstd):
    c = cuda.grid(1)
    if c < var.size:
        invstd[c] = 1.0 / math.sqrt(float64(var[c]) + eps)


@cuda.jit
def _update_running_kernel(running_mean, running_var, mean, var, factor, M):
    c = cuda.grid(1)
    if c < mean.size:
        running_mean[c] = (1.0 - factor) * float64(running_mean[c]) + factor * float64(mean[c])
        running_var[c] = (1.0 - factor) * float64(running_var[c]) + factor * (float64(var[c]) * M / (M - 1))


def batch_norm_invstd(var, eps, dtype):
    """invstd = 1 / sqrt(var + eps) (C,), in float64 arithmetic, returned as `dtype`."""
    var = on_device(var)
    invstd = empty(var.shape, dtype)
    if var.size:
        _invstd_kernel[blocks(var.size), THREADS](var, float(eps), invstd)
    return invstd


def batch_norm_update_running(running_mean, running_var, mean, var, factor, M):
    """In place on the device: running = (1 - factor) * running + factor * batch value (unbiased var)."""
    if mean.size:
        _update_running_kernel[blocks(mean.size), THREADS](running_mean, running_var, mean, var,
                                                           float(factor), int(M))


def batch_norm_train_forward(x, weight, bias, eps):
    """Training mode: the batch's statistics, then the forward with them -> (y, mean, var, invstd)."""
    mean, var = batch_norm_stats(x)
    invstd = batch_norm_invstd(var, eps, x.dtype)
    return batch_norm_forward(x, mean, invstd, weight, bias), mean, var, invstd
