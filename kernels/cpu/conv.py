"""Convolution kernels, Numba version: the same im2col and col2im as kernels/reference/conv.py.

Shapes
    N        batch size
    C        input channels
    H, W     input height and width
    kh, kw   kernel height and width
    sh, sw   stride
    pt, pl   padding at the top and on the left (bottom/right padding is implied by oh, ow)
    dh, dw   dilation
    oh, ow   output height and width:  OH = (H + 2P - D*(K-1) - 1) // S + 1
    L        oh * ow

    cols[n, c*kh*kw + i*kw + j, oy*ow + ox] = x[n, c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]
    (0 where that pixel lies in the padding)

Parallel plan (every prange iteration owns what it writes, so there are no races):
    im2col  one iteration per row (n, c, i, j) of cols: it writes that row only.
    col2im  one iteration per (n, c) input plane: it gathers every contribution to that plane,
            in the same (i, j, oy, ox) order as the reference, so the sums agree bit for bit.
            (A prange over the rows of cols would scatter-add into shared pixels: a race.)
"""
import numpy as np
from numba import prange

from ._jit import kernel


@kernel(parallel=False)
def _valid_range(o_count, stride, offset, size):
    """The outputs o in [lo, hi) whose input index o*stride + offset lies inside [0, size)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if size - offset > 0:
        hi = (size - offset + stride - 1) // stride
    hi = min(hi, o_count)
    lo = min(lo, hi)
    return lo, hi


# Stride-1 rows are copied/added through slices: a loop from 0 over two slices is one the
# compiler vectorises (it can see the indices are >= 0, so no negative-index wraparound). In
# im2col, rows shorter than LONG_ROW are copied directly: there making the slices costs more
# than it saves (measured).
LONG_ROW = 24


@kernel(parallel=False)
def _copy(dst, src):
    for t in range(dst.shape[0]):
        dst[t] = src[t]


@kernel(parallel=False)
def _add(dst, src):
    for t in range(dst.shape[0]):
        dst[t] += src[t]


@kernel
def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    N, C, H, W = x.shape
    kk = kh * kw
    L = oh * ow
    cols = np.empty((N, C * kk, L), dtype=x.dtype)
    for r in prange(N * C * kk):
        n = r // (C * kk)
        row = r % (C * kk)
        c = row // kk
        i = (row % kk) // kw
        j = row % kw
        y_off = i * dh - pt          # input row of output row oy is oy*sh + y_off
        x_off = j * dw - pl          # input column of output column ox is ox*sw + x_off
        oy_lo, oy_hi = _valid_range(oh, sh, y_off, H)
        ox_lo, ox_hi = _valid_range(ow, sw, x_off, W)
        dst = cols[n, row]
        src = x[n, c]
        for t in range(oy_lo * ow):              # output rows that read the top padding
            dst[t] = 0
        for oy in range(oy_lo, oy_hi):
            base = oy * ow
            iy = oy * sh + y_off
            for ox in range(ox_lo):
                dst[base + ox] = 0
            if sw == 1 and ox_hi - ox_lo >= LONG_ROW:
                _copy(dst[base + ox_lo:base + ox_hi], src[iy, ox_lo + x_off:ox_hi + x_off])
            else:
                for ox in range(ox_lo, ox_hi):
                    dst[base + ox] = src[iy, ox * sw + x_off]
            for ox in range(ox_hi, ow):
                dst[base + ox] = 0
        for t in range(oy_hi * ow, L):           # output rows that read the bottom padding
            dst[t] = 0
    return cols


@kernel
def col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    N = cols.shape[0]
    kk = kh * kw
    C = cols.shape[1] // kk
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    for p in prange(N * C):
        n = p // C
        c = p % C
        plane = dx[n, c]
        for a in range(H):
            for b in range(W):
                plane[a, b] = 0
        for i in range(kh):
            y_off = i * dh - pt
            oy_lo, oy_hi = _valid_range(oh, sh, y_off, H)
            for j in range(kw):
                x_off = j * dw - pl
                ox_lo, ox_hi = _valid_range(ow, sw, x_off, W)
                src = cols[n, c * kk + i * kw + j]
                for oy in range(oy_lo, oy_hi):
                    iy = oy * sh + y_off
                    base = oy * ow
                    if sw == 1:
                        _add(plane[iy, ox_lo + x_off:ox_hi + x_off], src[base + ox_lo:base + ox_hi])
                    else:
                        for ox in range(ox_lo, ox_hi):
                            plane[iy, ox * sw + x_off] += src[base + ox]
    return dx
