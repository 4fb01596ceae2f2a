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

Both work on one zero-padded (n, c) plane at a time, as the reference does: xp, the plane with
    pt rows on top, pl columns on the left, and at the bottom/right as many as the last window
    needs. Then output row oy of cols row (c, i, j) is a plain copy of padded row oy*sh + i*dh
    from column j*dw on (stride sw): no bounds tests in the inner loops. col2im adds every cols
    row back into a zero padded plane the same way, in the reference's (i, j, oy, ox) order, and
    copies the plane's interior out, so the sums agree with the reference bit for bit.

Indices are flat and unsigned (np.uint64): a signed index could be negative, which NumPy reads
from the end, so the compiler must test every one and cannot emit plain vector copies. LeNet's
rows are 10 or 28 long, where that overhead was the whole cost: flat unsigned copies are 1.6-2.2x
faster than copies between slice views (measured, serial, LeNet's two layers at batch 32).
(`u(...)` everywhere: mixing uint64 with int64 would make Numba compute in float64.)

Parallel plan (every prange iteration owns what it writes, so there are no races):
    im2col  one iteration per (n, c) input plane: it writes the kh*kw rows of cols that plane
            feeds, and nothing else.
    col2im  one iteration per (n, c) input plane: it gathers every contribution to that plane.
            (A prange over the rows of cols would scatter-add into shared pixels: a race.)
    In a thread that runs one slice of a batch (_threads.py), the serial twins run instead.
"""
import numpy as np
from numba import prange

from ._jit import kernel, serial_twin
from ._threads import serial

u = np.uint64


@kernel(parallel=False)
def _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """(Hp, Wp): the input plus pt/pl on top/left and what the last window needs below/right."""
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - W - pl)
    return H + pt + pb, W + pl + pr


@kernel
def _im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    N, C, H, W = x.shape
    kk, L = kh * kw, oh * ow
    Hp, Wp = _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    cols = np.empty((N, C * kk, L), dtype=x.dtype)
    xf, cf = x.reshape(-1), cols.reshape(-1)        # flat views: plane p = (n, c) starts at p*H*W
    for p in prange(N * C):
        xp = np.zeros(Hp * Wp, dtype=x.dtype)     # this plane, zero-padded, flat
        for a in range(H):
            src, dst = u(p * H * W + a * W), u((pt + a) * Wp + pl)
            for b in range(u(W)):
                xp[dst + b] = xf[src + b]
        for i in range(kh):
            for j in range(kw):
                row = (p * kk + i * kw + j) * L     # where cols row (c, i, j) of sample n starts
                for oy in range(oh):
                    dst, src = u(row + oy * ow), u((oy * sh + i * dh) * Wp + j * dw)
                    for ox in range(u(ow)):
                        cf[dst + ox] = xp[src + ox * u(sw)]
    return cols


@kernel
def _col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    N = cols.shape[0]
    kk, L = kh * kw, oh * ow
    C = cols.shape[1] // kk
    Hp, Wp = _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    cf, df = cols.reshape(-1), dx.reshape(-1)
    for p in prange(N * C):
        xp = np.zeros(Hp * Wp, dtype=cols.dtype)  # this plane's gradient, padding included
        for i in range(kh):
            for j in range(kw):
                row = (p * kk + i * kw + j) * L
                for oy in range(oh):
                    src, dst = u(row + oy * ow), u((oy * sh + i * dh) * Wp + j * dw)
                    for ox in range(u(ow)):
                        xp[dst + ox * u(sw)] += cf[src + ox]
        for a in range(H):                          # the interior; what fell on padding is dropped
            src, dst = u((pt + a) * Wp + pl), u(p * H * W + a * W)
            for b in range(u(W)):
                df[dst + b] = xp[src + b]
    return dx


_im2col_serial, _col2im_serial = serial_twin(_im2col), serial_twin(_col2im)


def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """cols (N, C*kh*kw, oh*ow) of x (N, C, H, W): see the legend."""
    return (_im2col_serial if serial() else _im2col)(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)


def col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """dx (N, C, H, W): every column entry added back to the pixel it was copied from."""
    return (_col2im_serial if serial() else _col2im)(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
