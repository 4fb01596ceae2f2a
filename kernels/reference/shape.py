"""Layout copies between layers: concatenation along an axis (inception's channel concat), its
split, 2-D padding and its crop. The specification of kernels/cuda/shape.py (kernels/cpu/shape.py
re-exports it: NumPy's copies are already compiled loops).

Legend
    arrays          a list of arrays that match in every axis but `axis`
    sizes           the lengths along `axis` of the pieces `split` gives back (sum = x.shape[axis])
    x               (..., H, W) for pad2d;  g (..., OH, OW) for crop2d
    top, bottom, left, right    padding amounts (>= 0) on the last two axes
    OH = top + H + bottom,      OW = left + W + right

    concat:  out[..., offset_k + l, ...] = arrays[k][..., l, ...],  offset_k = sizes of arrays before k
    split:   piece_k = x[..., offset_k : offset_k + sizes[k], ...]   (each C-contiguous)
    pad2d:   out[..., top + h, left + w] = x[..., h, w], `value` everywhere else
    crop2d:  out[..., h, w] = g[..., top + h, left + w],  h < H, w < W
"""
import numpy as np


def concat(arrays, axis):
    return np.concatenate(arrays, axis=axis)


def split(x, sizes, axis):
    bounds = np.cumsum(sizes)[:-1]
    return [np.ascontiguousarray(p) for p in np.split(x, bounds, axis=axis)]


def pad2d(x, top, bottom, left, right, value):
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode="constant", constant_values=value)


def crop2d(g, top, left, H, W):
    return np.ascontiguousarray(g[..., top:top + H, left:left + W])
