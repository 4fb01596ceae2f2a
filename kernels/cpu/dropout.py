"""Dropout masks, forward and backward: Numba versions of kernels/reference/dropout.py.

Legend
    x        input; any shape for dropout, (N, C, S) for dropout2d (S = H*W)
    u        uniform random numbers in [0, 1), drawn by the op (kernels hold no RNG):
             the same shape as x for dropout, (N, C) for dropout2d (one per channel plane)
    p        drop probability, 0 <= p < 1
    mask     0 for a dropped unit, 1 / (1 - p) for a kept one (the scale is folded in)

Formulas (inverted dropout: E[out] = x)
    keep   = u >= p                        P(keep) = 1 - p
    mask   = keep / (1 - p)
    out    = x * mask                      dropout2d: out[n, c, s] = x[n, c, s] * mask[n, c]
    dx     = grad_out * mask

Every prange iteration writes its own element (dropout) or its own (n, c) plane (dropout2d).
"""
import numpy as np
from numba import prange

from ._jit import kernel


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


@kernel
def _dropout_mask(u, p, scale, mask):
    zero = mask.dtype.type(0)
    for i in prange(u.size):
        mask[i] = scale if u[i] >= p else zero


@kernel
def _dropout_forward(x, u, p, scale, out, mask):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        m = scale if u[i] >= p else zero
        mask[i] = m
        out[i] = x[i] * m


@kernel
def _scale_by(g, mask, out):
    for i in prange(g.size):
        out[i] = g[i] * mask[i]


@kernel
def _dropout2d_forward(x, u, p, scale, out, mask):
    N, C, S = x.shape
    zero = x.dtype.type(0)
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        m = scale if u[n, c] >= p else zero
        mask[n, c] = m
        for s in range(S):
            out[n, c, s] = x[n, c, s] * m


@kernel
def _dropout2d_backward(g, mask, out):
    N, C, S = g.shape
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        m = mask[n, c]
        for s in range(S):
            out[n, c, s] = g[n, c, s] * m


def _scale(p, dtype):
    """1 / (1 - p) rounded once to the data's precision; p itself is compared in u's dtype."""
    return np.asarray(1 / (1 - p), dtype=dtype)[()]


def dropout_mask(u, p, dtype):
    """0 where u < p, 1 / (1 - p) elsewhere, in `dtype` (the forwards below compute the same
    mask inside their own loop, next to the product)."""
    mask = np.empty(u.shape, dtype=dtype)
    _dropout_mask(_flat(u), u.dtype.type(p), _scale(p, dtype), mask.reshape(-1))
    return mask


def dropout_forward(x, u, p):
    """x (any shape), u (x's shape) -> (out, mask)."""
    out = np.empty(x.shape, dtype=x.dtype)
    mask = np.empty(x.shape, dtype=x.dtype)
    _dropout_forward(_flat(x), _flat(u), u.dtype.type(p), _scale(p, x.dtype), out.reshape(-1), mask.reshape(-1))
    return out, mask


def dropout_backward(grad_out, mask):
    out = np.empty(grad_out.shape, dtype=grad_out.dtype)
    _scale_by(_flat(grad_out), _flat(mask), out.reshape(-1))
    return out


def dropout2d_forward(x, u, p):
    """x (N, C, S), u (N, C) -> (out, mask (N, C)): whole channel planes are kept or zeroed."""
    out = np.empty(x.shape, dtype=x.dtype)
    mask = np.empty(x.shape[:2], dtype=x.dtype)
    _dropout2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(u), u.dtype.type(p), _scale(p, x.dtype), out, mask)
    return out, mask


def dropout2d_backward(grad_out, mask):
    out = np.empty(grad_out.shape, dtype=grad_out.dtype)
    _dropout2d_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(mask), out)
    return out
