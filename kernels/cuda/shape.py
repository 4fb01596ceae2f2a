"""Layout copies on the GPU (numba.cuda): concat, split, pad2d and crop2d, the same functions and
signatures as kernels/reference/shape.py (formulas there).

Legend
    concat/split: each array is seen as (O, L, I): O = the product of the sizes before `axis`,
                  L = its size along `axis`, I = the product of the sizes after it.
    pad2d/crop2d: (..., H, W) is seen as (P, H, W), P = the product of the leading sizes;
                  OH = top + H + bottom, OW = left + W + right.

Thread-to-data mapping (every thread owns the one element it writes)
    concat:  one launch per input k, one thread per element (o, l, i) of input k, writing
             out[o, offset_k + l, i].
    split:   one launch per piece k, one thread per element of the piece, reading
             x[o, offset_k + l, i].
    pad2d:   one thread per OUTPUT element (p, oh, ow): the input pixel (oh - top, ow - left) if
             it lies inside, `value` otherwise.
    crop2d:  one thread per OUTPUT element (p, h, w): g[p, top + h, left + w].
"""
import numpy as np
from numba import cuda

from ._launch import THREADS, blocks, empty, scalar


@cuda.jit
def _put_slab_kernel(src, dst, offset):
    t = cuda.grid(1)
    O, L, I = src.shape
    if t < O * L * I:
        o, l, i = t // (L * I), (t // I) % L, t % I
        dst[o, offset + l, i] = src[o, l, i]


@cuda.jit
def _take_slab_kernel(src, dst, offset):
    t = cuda.grid(1)
    O, L, I = dst.shape
    if t < O * L * I:
        o, l, i = t // (L * I), (t // I) % L, t % I
        dst[o, l, i] = src[o, offset + l, i]


@cuda.jit
def _pad2d_kernel(x, out, top, left, value):
    t = cuda.grid(1)
    P, OH, OW = out.shape
    H, W = x.shape[1], x.shape[2]
    if t < P * OH * OW:
        p, oh, ow = t // (OH * OW), (t // OW) % OH, t % OW
        h, w = oh - top, ow - left
        out[p, oh, ow] = x[p, h, w] if 0 <= h < H and 0 <= w < W else value


@cuda.jit
def _crop2d_kernel(g, out, top, left):
    t = cuda.grid(1)
    P, H, W = out.shape
    if t < P * H * W:
        p, h, w = t // (H * W), (t // W) % H, t % W
        out[p, h, w] = g[p, top + h, left + w]


def _oli(a, axis):
    """a seen as (O, L, I) around `axis` (a view: arrays made here are C-contiguous)."""
    shape = _dims(a)
    O = int(np.prod(shape[:axis], dtype=np.int64))
    return a.reshape(O, shape[axis], int(np.prod(shape[axis + 1:], dtype=np.int64)))


def concat(arrays, axis):
    shape = list(_dims(arrays[0]))
    shape[axis] = sum(int(a.shape[axis]) for a in arrays)
    out = empty(shape, arrays[0].dtype)
    offset = 0
    for a in arrays:
        if a.size:
            _put_slab_kernel[blocks(a.size), THREADS](_oli(a, axis), _oli(out, axis), offset)
        offset += int(a.shape[axis])
    return out


def split(x, sizes, axis):
    pieces, offset = [], 0
    for n in sizes:
        shape = list(_dims(x))
        shape[axis] = int(n)
        piece = empty(shape, x.dtype)
        if piece.size:
            _take_slab_kernel[blocks(piece.size), THREADS](_oli(x, axis), _oli(piece, axis), offset)
        pieces.append(piece)
        offset += int(n)
    return pieces


def _dims(a):
    return tuple(int(n) for n in a.shape)  # a plain tuple (the simulator's shape lacks negative indices)


def _phw(a):
    *lead, H, W = _dims(a)
    return a.reshape(int(np.prod(lead, dtype=np.int64)), H, W)


def pad2d(x, top, bottom, left, right, value):
    *lead, H, W = _dims(x)
    out = empty(tuple(lead) + (top + H + bottom, left + W + right), x.dtype)
    if out.size:
        _pad2d_kernel[blocks(out.size), THREADS](_phw(x), _phw(out), int(top), int(left),
                                                 scalar(value, x.dtype))
    return out


def crop2d(g, top, left, H, W):
    out = empty(_dims(g)[:-2] + (int(H), int(W)), g.dtype)
    if out.size:
        _crop2d_kernel[blocks(out.size), THREADS](_phw(g), _phw(out), int(top), int(left))
    return out
