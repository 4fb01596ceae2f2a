"""Inverted dropout: dropout (per unit) and dropout2d (per channel plane).

While training, each unit (dropout) or each (n, c) channel plane (dropout2d) is zeroed with
probability p and the kept ones are scaled by 1 / (1 - p), so the expected output equals the
input and evaluation needs no rescaling. With training=False or p=0 the input comes back as
it is; p=1 drops everything (x * 0, as PyTorch: zeros, a NaN stays NaN, zero gradient). The uniform draws come from the global seeded generator (`mc.manual_seed` makes the
masks repeatable) and are handed to the kernels as an array: kernels hold no RNG.
"""
import numbers

import numpy as np

from ..kernels import lookup
from ..random import get_rng
from ..tensor import Function
from .basic import as_tensor


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, u, p):
        out, mask = lookup("dropout", x).dropout_forward(x, u, p)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        return lookup("dropout", g).dropout_backward(g, mask), None  # no gradient for u


class Dropout2d(Function):
    @staticmethod
    def forward(ctx, x, u, p):
        N, C = x.shape[:2]
        out, mask = lookup("dropout", x).dropout2d_forward(x.reshape(N, C, -1), u, p)
        ctx.save_for_backward(mask)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        N, C = g.shape[:2]
        dx = lookup("dropout", g).dropout2d_backward(g.reshape(N, C, -1), mask)
        return dx.reshape(g.shape), None


def _check(name, x, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name}: p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: p must be in [0, 1] (the probability of dropping a unit), got p={p}")
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def _uniform(shape, dtype):
    """Uniform [0, 1) draws from the global generator, in the data's precision."""
    return get_rng().random(shape, dtype=dtype)


def dropout(x, p=0.5, training=True):
    """Zero each unit with probability p and scale the rest by 1 / (1 - p) (inverted dropout)."""
    x = _check("dropout", x, p)
    if not training or p == 0:
        return x
    if p == 1:                  # no unit kept: the 1 / (1 - p) scale does not exist
        return x * 0.0
    return Dropout.apply(x, _uniform(x.shape, x.dtype), p=float(p))


def dropout2d(x, p=0.5, training=True):
    """Zero whole channels of (N, C, H, W) with probability p (one draw per (n, c) plane)."""
    x = _check("dropout2d", x, p)
    if x.ndim != 4:
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W), got {x.shape}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    return Dropout2d.apply(x, _uniform(x.shape[:2], x.dtype), p=float(p))
