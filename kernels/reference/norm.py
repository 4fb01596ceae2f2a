"""Normalisation kernels in plain NumPy: local response normalisation and batch norm.

This is the specification: kernels/cpu/norm.py (Numba) and kernels/cuda/norm.py compute the same
functions with the same signatures. Every array here is laid out as (N, C, S):

    N   batch size
    C   channels
    S   positions per channel: H*W for images, L for sequences, 1 for (N, C) inputs
    M   values per channel that batch norm averages over: M = N * S

Local response normalisation (AlexNet, Krizhevsky et al. 2012, section 3.3):

    window(c) = channels max(0, c - size//2) ... min(C-1, c + (size-1)//2)
    s_c = k + alpha * sum_{j in window(c)} a_j^2           ("scale", kept for backward)
    b_c = a_c * s_c^(-beta)

    db_c/da_j = [c == j] s_c^(-beta) - 2 alpha beta a_c a_j s_c^(-beta-1)   for j in window(c)

so, with g = dL/db and a_c s_c^(-beta-1) = b_c / s_c,

    dL/da_j = g_j s_j^(-beta) - 2 alpha beta a_j * sum_{c : j in window(c)} g_c b_c / s_c

and c ranges over the REVERSED window: j - (size-1)//2 ... j + size//2 (the same as window(j)
when size is odd).

Batch norm (Ioffe and Szegedy 2015), per channel c, over all n and s:

    mean = 1/M sum x          var = 1/M sum (x - mean)^2        (biased)
    invstd = 1 / sqrt(var + eps)                                    (computed in float64)
    xhat = (x - mean) * invstd
    y = weight * xhat + bias

    training (mean and var depend on x):
        dx = invstd * weight / M * (M * g - sum g - xhat * sum(g * xhat))
    eval (mean and invstd are constants):
        dx = g * invstd * weight
    in both:  dweight = sum(g * xhat),  dbias = sum g

    running statistics (training, in place, in float64, each keeping its own dtype):
        running_mean = (1 - f) * running_mean + f * mean
        running_var  = (1 - f) * running_var  + f * var * M / (M - 1)      (unbiased)
"""
import numpy as np


# ---- local response normalisation ----------------------------------------------------------
def _window(c, size, C):
    """First and last channel (inclusive) of the window that normalises channel c."""
    return max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, S) -> (out, scale), both (N, C, S): out = x * scale**-beta."""
    N, C, S = x.shape
    scale = np.empty_like(x)
    for c in range(C):
        lo, hi = _window(c, size, C)
        acc = np.zeros((N, S), dtype=x.dtype)
        for j in range(lo, hi + 1):  # channel by channel, in order: the sum a student writes
            acc += x[:, j] * x[:, j]
        scale[:, c] = k + alpha * acc
    out = x * scale ** -beta
    return out, scale


def lrn_backward(x, out, scale, grad_out, size, alpha, beta, k):
    """dL/dx (N, C, S) from the forward's x, out, scale and grad_out = dL/dout."""
    N, C, S = x.shape
    t = grad_out * out / scale  # g_c * a_c * s_c^(-beta-1), one value per (n, c, s)
    dx = np.empty_like(x)
    for j in range(C):
        # every channel c whose window contains j: the window reversed
        lo, hi = max(0, j - (size - 1) // 2), min(C - 1, j + size // 2)
        acc = np.zeros((N, S), dtype=x.dtype)
        for c in range(lo, hi + 1):
            acc += t[:, c]
        dx[:, j] = grad_out[:, j] * scale[:, j] ** -beta - 2 * alpha * beta * x[:, j] * acc
    return dx


# ---- batch norm ----------------------------------------------------------------------------
def batch_norm_stats(x):
    """x (N, C, S) -> (mean, var), each (C,), biased variance, two passes in float64."""
    x64 = x.astype(np.float64)  # float32 sums of many values lose digits: accumulate in float64
    mean = x64.mean(axis=(0, 2))
    var = ((x64 - mean[None, :, None]) ** 2).mean(axis=(0, 2))  # two passes: no cancellation
    return mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x - mean) * invstd * weight + bias, with (C,) parameters broadcast over (N, C, S)."""
    m, i, w, b = (v[None, :, None] for v in (mean, invstd, weight, bias))
    return (x - m) * i * w + b


def batch_norm_invstd(var, eps, dtype):
    """invstd = 1 / sqrt(var + eps), computed in float64 and returned as `dtype` (C,)."""
    return (1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)).astype(dtype)


def batch_norm_update_running(running_mean, running_var, mean, var, factor, M):
    """The running statistics, IN PLACE: running = (1 - factor) * running + factor * batch value,
    with the unbiased variance var * M / (M - 1); float64 arithmetic, each keeps its dtype."""
    running_mean[...] = (1.0 - factor) * running_mean.astype(np.float64) + factor * mean.astype(np.float64)
    running_var[...] = (1.0 - factor) * running_var.astype(np.float64) + factor * (var.astype(np.float64) * M / (M - 1))


def batch_norm_train_forward(x, weight, bias, eps):
    """Training mode: the batch's statistics, then the forward with them.

    -> (y, mean, var, invstd); var is the biased variance, invstd = 1 / sqrt(var + eps).
    """
    mean, var = batch_norm_stats(x)
    invstd = batch_norm_invstd(var, eps, x.dtype)
    return batch_norm_forward(x, mean, invstd, weight, bias), mean, var, invstd


def _grad_sums(grad_out, x, mean, invstd):
    """Per channel: sum g and sum g * xhat, accumulated in float64."""
    g = grad_out.astype(np.float64)
    xhat = (x.astype(np.float64) - mean[None, :, None]) * invstd[None, :, None]
    return g.sum(axis=(0, 2)), (g * xhat).sum(axis=(0, 2))


def batch_norm_backward(grad_out, x, mean, invstd, weight):
    """Training mode (mean and invstd were computed from x): -> (dx, dweight, dbias)."""
    N, C, S = x.shape
    M = N * S
    sum_g, sum_gxhat = _grad_sums(grad_out, x, mean, invstd)
    m, i, w = (v[None, :, None] for v in (mean, invstd, weight))
    sg, sgx = sum_g.astype(x.dtype)[None, :, None], sum_gxhat.astype(x.dtype)[None, :, None]
    xhat = (x - m) * i
    dx = i * w / M * (M * grad_out - sg - xhat * sgx)
    return dx, sum_gxhat.astype(x.dtype), sum_g.astype(x.dtype)


def batch_norm_backward_eval(grad_out, x, mean, invstd, weight):
    """Eval mode (mean and invstd are constants, the running statistics): -> (dx, dweight, dbias)."""
    sum_g, sum_gxhat = _grad_sums(grad_out, x, mean, invstd)
    dx = grad_out * (invstd * weight)[None, :, None]
    return dx, sum_gxhat.astype(x.dtype), sum_g.astype(x.dtype)
