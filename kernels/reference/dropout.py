"""Dropout masks, forward and backward: the readable NumPy specification.

Legend
    x        input; any shape for dropout, (N, C, S) for dropout2d (S = H*W)
    u        uniform random numbers in [0, 1), drawn by the op (kernels hold no RNG):
             the same shape as x for dropout, (N, C) for dropout2d (one per channel plane)
    p        drop probability, 0 <= p < 1
    mask     0 for a dropped unit, 1 / (1 - p) for a kept one (the scale is folded in)

Formulas (inverted dropout: the expectation is unchanged, E[out] = x, so eval needs no rescale)
    keep   = u >= p                        P(keep) = 1 - p
    mask   = keep / (1 - p)
    out    = x * mask                      dropout2d: out[n, c, s] = x[n, c, s] * mask[n, c]
    dx     = grad_out * mask
"""
import numpy as np


def dropout_mask(u, p, dtype):
    """0 where u < p, 1 / (1 - p) elsewhere, in `dtype`."""
    scale = np.asarray(1 / (1 - p), dtype=dtype)  # rounded once, to the data's precision
    keep = u >= u.dtype.type(p)                     # compared in u's precision
    return np.where(keep, scale, np.zeros((), dtype=dtype))


def dropout_forward(x, u, p):
    """x (any shape), u (x's shape) -> (out, mask)."""
    mask = dropout_mask(u, p, x.dtype)
    return x * mask, mask


def dropout_backward(grad_out, mask):
    return grad_out * mask


def dropout2d_forward(x, u, p):
    """x (N, C, S), u (N, C) -> (out, mask (N, C)): whole channel planes are kept or zeroed."""
    mask = dropout_mask(u, p, x.dtype)
    return x * mask[:, :, None], mask


def dropout2d_backward(grad_out, mask):
    return grad_out * mask[:, :, None]
