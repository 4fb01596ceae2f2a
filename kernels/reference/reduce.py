"""Reductions over axes (sum, max): the NumPy specification of kernels/cuda/reduce.py.

Legend
    x        any shape;  axes: None (every axis) or a tuple of axes;  keepdims: as NumPy
    result   x's dtype; shape () when every axis is reduced and keepdims is False
"""
import numpy as np


def sum(x, axes=None, keepdims=False):  # noqa: A001 (the NumPy name)
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def max(x, axes=None, keepdims=False):  # noqa: A001
    return np.asarray(np.max(x, axis=axes, keepdims=keepdims))
