"""Elementwise and broadcast arithmetic on the GPU (numba.cuda): the same functions and
signatures as kernels/reference/elementwise.py.

Legend
    a, b, out   device arrays (b may be a Python number); out has the broadcast shape, a's dtype
    R           rank of the output; every operand is read through R element strides, with
                stride 0 along an axis it is broadcast over (NumPy's rule, left-padded with 1s)

Thread-to-data mapping
    one thread per OUTPUT element i (flat, C order). The thread unravels i into the output
    index (i_0, ..., i_{R-1}) and reads a[sum_k i_k * sa_k], b[sum_k i_k * sb_k]. Shapes and
    strides travel as tuples (kernel arguments, no copy to the device); the op is an integer code
    so one compiled kernel serves add, sub, mul, div, pow and equal (comparisons, which write
    bools, have their own). permute, broadcast_to and
    contiguous are the same gather with one operand: a copy through strides.
Inputs must be C-contiguous (every array minicnn makes on the GPU is).
"""
import math

import numpy as np
from numba import cuda

from . import _launch
from ._launch import THREADS, blocks, flat, is_device, scalar

ADD, SUB, MUL, DIV, EQUAL, POW = 0, 1, 2, 3, 4, 5
NEG, EXP, LOG, SQRT, ABS, SIGN, COPY, SAFE_LOG = 0, 1, 2, 3, 4, 5, 6, 7
COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")  # codes 0..5


@cuda.jit(device=True)
def _offset(i, shape, strides):
    """Flat output index i -> the element offset of an operand read with `strides`."""
    off = 0
    for k in range(len(shape) - 1, -1, -1):
        off += (i % shape[k]) * strides[k]
        i //= shape[k]
    return off


@cuda.jit
def _binary_kernel(op, a, b, out, shape, sa, sb):
    i = cuda.grid(1)
    if i >= out.size:
        return
    x = a[_offset(i, shape, sa)]
    y = b[_offset(i, shape, sb)]
    if op == ADD:
        out[i] = x + y
    elif op == SUB:
        out[i] = x - y
    elif op == MUL:
        out[i] = x * y
    elif op == DIV:
        out[i] = x / y
    elif op == POW:
        out[i] = x ** y
    else:
        out[i] = 1 if x == y else 0


@cuda.jit
def _compare_kernel(op, a, b, out, shape, sa, sb):
    """out (bool) = a <op> b with broadcasting; op indexes COMPARISONS."""
    i = cuda.grid(1)
    if i >= out.size:
        return
    x = a[_offset(i, shape, sa)]
    y = b[_offset(i, shape, sb)]
    if op == 0:
        out[i] = x < y
    elif op == 1:
        out[i] = x <= y
    elif op == 2:
        out[i] = x > y
    elif op == 3:
        out[i] = x >= y
    elif op == 4:
        out[i] = x == y
    else:
        out[i] = x != y


@cuda.jit
def _scalar_kernel(op, a, s, out):
    i = cuda.grid(1)
    if i >= out.size:
        return
    x = a[i]
    if op == ADD:
        out[i] = x + s
    elif op == SUB:
        out[i] = x - s
    elif op == MUL:
        out[i] = x * s
    elif op == DIV:
        out[i] = x / s
    elif op == POW:
        out[i] = x ** s
    else:
        out[i] = 1 if x == s else 0


@cuda.jit
def _unary_kernel(op, a, out, shape, sa):
    i = cuda.grid(1)
    if i >= out.size:
        return
    x = a[_offset(i, shape, sa)]
    if op == NEG:
        out[i] = -x
    elif op == EXP:
        out[i] = math.exp(x)
    elif op == LOG:
        out[i] = math.log(x)
    elif op == SQRT:
        out[i] = math.sqrt(x)
    elif op == ABS:
        out[i] = math.fabs(x)                             # not abs: this module defines abs()
    elif op == SIGN:
        out[i] = 1 if x > 0 else (-1 if x < 0 else x)   # sign(0) = 0, sign(NaN) = NaN
    elif op == SAFE_LOG:                                  # log, 0 at 0, NaN below 0 (d a**b / db)
        out[i] = math.log(x) if x > 0 else (0 if x == 0 else math.nan)
    else:
        out[i] = x                                        # COPY (casts to out's dtype)


# ---- new arrays: the reference's empty, zeros and full, on the device -------------------------
# (the other kernel files call the same helpers in _launch.py; zeros and full launch a fill kernel)
def empty(shape, dtype):
    return _launch.empty(shape, dtype)


def zeros(shape, dtype):
    return _launch.zeros(shape, dtype)


def full(shape, value, dtype):
    return _launch.full(shape, value, dtype)


# ---- strides --------------------------------------------------------------------------------
def _strides(shape):
    """C-order element strides of a contiguous array of `shape`."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= int(n)
    return tuple(reversed(out))


def _broadcast_strides(shape, out_shape):
    """Strides to read an array of `shape` at each index of `out_shape` (0 where broadcast)."""
    pad = (1,) * (len(out_shape) - len(shape)) + tuple(int(n) for n in shape)
    return tuple(0 if n == 1 and m != 1 else s for n, m, s in zip(pad, out_shape, _strides(pad)))


def _flat_any(a):
    return flat(a) if a.ndim else a.reshape(1)


def _launch_binary(op, a, b, out):
    if not is_device(b):                                  # a Python number
        if out.size:
            _scalar_kernel[blocks(out.size), THREADS](op, _flat_any(a), scalar(b, a.dtype), _flat_any(out))
        return out
    shape = tuple(int(n) for n in out.shape) or (1,)
    sa, sb = _broadcast_strides(a.shape, shape), _broadcast_strides(b.shape, shape)
    if out.size:
        _binary_kernel[blocks(out.size), THREADS](op, _flat_any(a), _flat_any(b), _flat_any(out),
                                                  shape, sa, sb)
    return out


def _binary(op, a, b, out, dtype=None):
    shape = tuple(a.shape) if not is_device(b) else np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    if out is None:
        out = empty(shape, dtype or a.dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"elementwise: out has shape {tuple(out.shape)}, the result has shape {shape}")
    return _launch_binary(op, a, b, out)


def add(a, b, out=None):
    return _binary(ADD, a, b, out)


def sub(a, b, out=None):
    return _binary(SUB, a, b, out)


def mul(a, b, out=None):
    return _binary(MUL, a, b, out)


def div(a, b, out=None):
    return _binary(DIV, a, b, out)


def pow(a, b, out=None):  # noqa: A001
    return _binary(POW, a, b, out)


def equal(a, b):
    return _binary(EQUAL, a, b, None)


def compare(a, b, name):
    """A bool array a <name> b (name one of COMPARISONS), broadcasting; b may be a number."""
    if name not in COMPARISONS:
        raise ValueError(f"compare: expected one of {COMPARISONS}, got {name!r}")
    if not is_device(b):
        b = full((), b, a.dtype)
    shape = tuple(int(n) for n in np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    out = empty(shape, np.bool_)
    grid = shape or (1,)
    if out.size:
        _compare_kernel[blocks(out.size), THREADS](COMPARISONS.index(name), _flat_any(a), _flat_any(b),
                                                   _flat_any(out), grid, _broadcast_strides(a.shape, grid),
                                                   _broadcast_strides(b.shape, grid))
    return out


# ---- unary and copies through strides ---------------------------------------------------------
def _gather(op, a, out_shape, strides, dtype):
    out = empty(out_shape, dtype)
    shape = tuple(int(n) for n in out_shape) or (1,)
    strides = strides or (0,)
    if out.size:
        _unary_kernel[blocks(out.size), THREADS](op, _flat_any(a), _flat_any(out), shape, strides)
    return out


def _unary(op, a):
    return _gather(op, a, a.shape, _strides(a.shape), a.dtype)


def neg(a):
    return _unary(NEG, a)


def exp(a):
    return _unary(EXP, a)


def log(a):
    return _unary(LOG, a)


def sqrt(a):
    return _unary(SQRT, a)


def abs(a):  # noqa: A001
    return _unary(ABS, a)


def sign(a):
    return _unary(SIGN, a)


def safe_log(a):
    return _unary(SAFE_LOG, a)


def contiguous(x, dtype=None):
    """Device arrays made here are already C-contiguous: only a dtype change copies."""
    if not x.is_c_contiguous():
        raise ValueError(f"elementwise.contiguous: expected a C-contiguous device array, got strides {x.strides}")
    if dtype is None or np.dtype(dtype) == x.dtype:
        return x
    return _gather(COPY, x, x.shape, _strides(x.shape), np.dtype(dtype))


def copy(x):
    return _gather(COPY, x, x.shape, _strides(x.shape), x.dtype)


def permute(x, axes):
    """out[i_0, ..., i_R-1] = x[i at the permuted places]: the strides of x, permuted."""
    axes = tuple(int(a) % max(x.ndim, 1) for a in axes)
    src = _strides(x.shape)
    return _gather(COPY, x, tuple(x.shape[a] for a in axes), tuple(src[a] for a in axes), x.dtype)


def broadcast_to(x, shape):
    shape = tuple(int(n) for n in shape)
    return _gather(COPY, x, shape, _broadcast_strides(x.shape, shape), x.dtype)


def assign(dst, src):
    """dst[...] = src, in place (src broadcasts over dst)."""
    if not is_device(src):
        src = full((), src, dst.dtype)
    shape = tuple(int(n) for n in dst.shape) or (1,)
    if dst.size:
        _unary_kernel[blocks(dst.size), THREADS](COPY, _flat_any(src), _flat_any(dst), shape,
                                                 _broadcast_strides(src.shape, shape))
    return dst
