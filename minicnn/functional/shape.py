"""Shape ops used between layers: flatten, concat (inception's channel concatenation), pad2d.

    x       (N, C, H, W)
    flatten (N, C*H*W)          for start_axis=1
    concat  (N, C1 + C2 + ..., H, W) along axis=1
    pad2d   (N, C, top + H + bottom, left + W + right)
"""
import numpy as np

from ..kernels import lookup
from ..tensor import Function, Tensor
from .basic import reshape


def flatten(x, start_axis=1):
    """Merge every axis from `start_axis` on into one: (N, C, H, W) -> (N, C*H*W)."""
    if not -x.ndim <= start_axis < max(x.ndim, 1):
        raise ValueError(f"flatten: start_axis {start_axis} is out of range for shape {x.shape}")
    start = start_axis % x.ndim
    return reshape(x, *x.shape[:start], -1)


class Concat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=1):
        ctx.axis = axis
        ctx.sizes = [int(a.shape[axis]) for a in arrays]
        return lookup("shape", arrays[0]).concat(list(arrays), axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(lookup("shape", g).split(g, ctx.sizes, ctx.axis))


def concat(tensors, axis=1):
    """Join tensors along `axis`; every other axis must match."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: expected at least one tensor, got none")
    ndim = tensors[0].ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"concat: axis {axis} is out of range for {ndim}-dimensional tensors")
    axis %= ndim
    ref = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != axis):
            raise ValueError(f"concat: shapes {ref} and {t.shape} differ outside axis {axis}")
    return Concat.apply(*tensors, axis=axis)


def _pad_amounts(padding):
    """(top, bottom, left, right) from an int, a pair (pH, pW) or PyTorch's (left, right, top, bottom)."""
    if isinstance(padding, (int, np.integer)):
        p = (int(padding),) * 4
    elif len(padding) == 2:
        p = (padding[0], padding[0], padding[1], padding[1])
    elif len(padding) == 4:
        left, right, top, bottom = padding
        p = (top, bottom, left, right)
    else:
        raise ValueError(f"pad2d: padding must be an int, (pH, pW) or (left, right, top, bottom), got {padding!r}")
    if any(int(v) != v or v < 0 for v in p):
        raise ValueError(f"pad2d: padding must be non-negative integers, got {padding!r}")
    return tuple(int(v) for v in p)


class Pad2d(Function):
    @staticmethod
    def forward(ctx, x, pads, value):
        top, bottom, left, right = pads
        ctx.corner, ctx.hw = (top, left), tuple(x.shape)[-2:]
        return lookup("shape", x).pad2d(x, top, bottom, left, right, value)

    @staticmethod
    def backward(ctx, g):
        return lookup("shape", g).crop2d(g, *ctx.corner, *ctx.hw)


def pad2d(x, padding, value=0.0):
    """Pad the last two axes with `value`: `padding` is an int, (pH, pW), or (left, right, top, bottom)."""
    if x.ndim < 2:
        raise ValueError(f"pad2d: expected at least 2 dimensions (..., H, W), got shape {x.shape}")
    return Pad2d.apply(x, pads=_pad_amounts(padding), value=value)
