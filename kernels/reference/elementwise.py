"""Elementwise and broadcast arithmetic, the array helpers the ops use between kernels.

The readable NumPy specification of kernels/cuda/elementwise.py (kernels/cpu/elementwise.py
re-exports these: NumPy's own loops are already compiled). Ops call them through
`lookup("elementwise", x)`, so the same line runs on the CPU and on the GPU.

Legend
    a, b     arrays (or a Python number for b) that broadcast together by NumPy's rules;
             the result has a's dtype
    out      optional output array (may be a itself: in-place a += b)
    shape    a tuple of ints;  axes: a permutation of range(x.ndim)
"""
import numpy as np


def _same(a, b):
    """b as a's dtype when it is a Python number (it must not promote float32 data)."""
    return a.dtype.type(b) if np.isscalar(b) else b


# ---- binary, broadcasting -----------------------------------------------------------------
def add(a, b, out=None):
    return np.add(a, _same(a, b), out=out)


def sub(a, b, out=None):
    return np.subtract(a, _same(a, b), out=out)


def mul(a, b, out=None):
    return np.multiply(a, _same(a, b), out=out)


def div(a, b, out=None):
    return np.divide(a, _same(a, b), out=out)


def pow(a, b, out=None):  # noqa: A001 (the operator's name)
    return np.power(a, _same(a, b), out=out)


COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")


def compare(a, b, name):
    """A bool array: `name` is one of COMPARISONS (NumPy's function of that name), e.g. a < b."""
    if name not in COMPARISONS:
        raise ValueError(f"compare: expected one of {COMPARISONS}, got {name!r}")
    return getattr(np, name)(a, _same(a, b))


def equal(a, b):
    """1 where a == b, else 0, in a's dtype (a float mask)."""
    return (a == _same(a, b)).astype(a.dtype)


# ---- unary --------------------------------------------------------------------------------
def neg(a):
    return np.negative(a)


def exp(a):
    return np.exp(a)


def log(a):
    return np.log(a)


def sqrt(a):
    return np.sqrt(a)


def abs(a):  # noqa: A001 (the NumPy name)
    return np.abs(a)


def sign(a):
    return np.sign(a)


def safe_log(a):
    """log(a) where a > 0, 0 where a == 0, NaN where a < 0 (or NaN): the log in
    d(a**b)/db = a**b * log(a), whose limit at a = 0 (b > 0) is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(a > 0, np.log(np.where(a > 0, a, 1)), np.where(a == 0, 0, np.nan))
    return logs.astype(a.dtype)


# ---- layout and allocation ----------------------------------------------------------------
def contiguous(x, dtype=None):
    """x as a C-contiguous array (a copy only when needed), optionally cast to dtype."""
    return np.ascontiguousarray(x, dtype=dtype)


def copy(x):
    """A C-contiguous copy of x."""
    return np.array(x, copy=True, order="C")


def permute(x, axes):
    """A C-contiguous copy of x.transpose(axes)."""
    return np.ascontiguousarray(np.transpose(x, axes))


def broadcast_to(x, shape):
    """A C-contiguous copy of x broadcast to shape."""
    return np.broadcast_to(x, tuple(shape)).copy()


def assign(dst, src):
    """dst[...] = src (src broadcasts), in place."""
    dst[...] = src
    return dst


def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def full(shape, value, dtype):
    return np.full(shape, value, dtype=dtype)
