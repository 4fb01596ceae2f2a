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

im2col pads as the reference does: each (n, c) plane is first copied into a zero-padded plane
    xp (pt rows on top, pl columns on the left, and at the bottom/right as many as the last window
    needs). Then output row oy of cols row (c, i, j) is a plain strided copy of padded row
    oy*sh + i*dh from column j*dw on: no bounds tests in the inner loops, and for short rows
    (LeNet's 10 or 28 outputs) those tests were most of the work.
col2im adds straight into dx instead: [lo, hi), the outputs whose pixel is inside the input, is
    computed once per kernel tap (i, j), and the padding is never touched.

Parallel plan (every prange iteration owns what it writes, so there are no races):
    im2col  one iteration per (n, c) input plane: it writes the kh*kw rows of cols that plane
            feeds, and nothing else.
    col2im  one iteration per (n, c) input plane: it gathers every contribution to that plane,
            in the same (i, j, oy, ox) order as the reference, so the sums agree bit for bit.
            (A prange over the rows of cols would scatter-add into shared pixels: a race.)
"""
import numpy as np
from numba import prange

from ._jit import kernel


@kernel(parallel=False)
def _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """(Hp, Wp): the input plus pt/pl on top/left and what the last window needs below/right."""
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - W - pl)
    return H + pt + pb, W + pl + pr


# Rows are copied/added through slices: a loop from 0 over two slices is one the compiler
# vectorises (it can see the indices are >= 0, so no negative-index wraparound).
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
    Hp, Wp = _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    cols = np.empty((N, C * kk, oh * ow), dtype=x.dtype)
    for p in prange(N * C):
        n = p // C
        c = p % C
        xp = np.zeros((Hp, Wp), dtype=x.dtype)   # this plane, zero-padded
        for a in range(H):
            _copy(xp[pt + a, pl:pl + W], x[n, c, a])
        for i in range(kh):
            for j in range(kw):
                dst = cols[n, c * kk + i * kw + j]
                for oy in range(oh):
                    row = xp[oy * sh + i * dh]
                    out = dst[oy * ow:(oy + 1) * ow]
                    if sw == 1:                  # a contiguous run: vectorised copy
                        _copy(out, row[j * dw:j * dw + ow])
                    else:
                        for ox in range(ow):
                            out[ox] = row[ox * sw + j * dw]
    return cols


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
            y_off = i * dh - pt                  # input row of output row oy is oy*sh + y_off
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
