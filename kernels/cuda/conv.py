"""Convolution kernels on the GPU (numba.cuda): im2col and its adjoint col2im.

Same functions and signatures as kernels/reference/conv.py (the specification); arrays are
numba.cuda device arrays, C-contiguous.

Shapes
    N batch, C channels, H/W input height/width, kh/kw kernel, sh/sw stride,
    pt/pl padding at the top/left, dh/dw dilation, oh/ow output height/width, L = oh*ow
        OH = (H + 2P - D*(K-1) - 1) // S + 1        (= (H + 2P - K) // S + 1 when D = 1)

Layout of the columns (as the reference)
    cols[n, c*kh*kw + i*kw + j, oy*ow + ox] = x[n, c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]
    (0 where that pixel lies in the padding)

Thread-to-data mapping
    im2col: one thread per column entry (n, row, l), flat index over N*(C*kh*kw)*L; each thread
            reads one input pixel (or writes a padding zero).
    col2im: one thread per INPUT pixel (n, c, h, w) that GATHERS every column entry copied from
            it: tap (i, j) read pixel h at output row oy = (h + pt - i*dh) / sh, if that divides
            exactly and 0 <= oy < oh (the same for columns). No two threads write the same
            pixel, so there is no atomicAdd and no race (a scatter over columns would race where
            windows overlap). Taps are summed in (i, j) order, the reference's order, in the
            data's precision (`zero` is a 0 of the data's dtype).
"""
from numba import cuda

from ._launch import THREADS, blocks, empty, scalar


@cuda.jit
def _im2col_kernel(x, cols, kh, kw, sh, sw, pt, pl, dh, dw, ow):
    t = cuda.grid(1)
    N, C, H, W = x.shape
    K, L = cols.shape[1], cols.shape[2]
    if t >= N * K * L:
        return
    n = t // (K * L)
    row = (t // L) % K
    p = t % L
    c = row // (kh * kw)
    i = (row // kw) % kh
    j = row % kw
    oy = p // ow
    ox = p % ow
    iy = oy * sh - pt + i * dh
    ix = ox * sw - pl + j * dw
    if 0 <= iy < H and 0 <= ix < W:
        cols[n, row, p] = x[n, c, iy, ix]
    else:
        cols[n, row, p] = 0


@cuda.jit
def _col2im_kernel(cols, dx, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, zero):
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = (t // (H * W)) % C
    h = (t // W) % H
    w = t % W
    acc = zero                               # 0 in the data's dtype: sums in its precision
    for i in range(kh):
        ty = h + pt - i * dh                 # = oy * sh for the output row that used this pixel
        if ty < 0 or ty % sh != 0:
            continue
        oy = ty // sh
        if oy >= oh:
            continue
        for j in range(kw):
            tx = w + pl - j * dw
            if tx < 0 or tx % sw != 0:
                continue
            ox = tx // sw
            if ox >= ow:
                continue
            acc += cols[n, (c * kh + i) * kw + j, oy * ow + ox]
    dx[n, c, h, w] = acc


def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow)."""
    N, C, H, W = x.shape
    cols = empty((N, C * kh * kw, oh * ow), x.dtype)
    if cols.size:
        _im2col_kernel[blocks(cols.size), THREADS](x, cols, kh, kw, sh, sw, pt, pl, dh, dw, ow)
    return cols


def col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """cols (N, C*kh*kw, oh*ow) -> dx (N, C, H, W), the adjoint of im2col (a gather)."""
    N = cols.shape[0]
    C = cols.shape[1] // (kh * kw)
    dx = empty((N, C, H, W), cols.dtype)
    if dx.size:
        _col2im_kernel[blocks(dx.size), THREADS](cols, dx, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow,
                                                 scalar(0, cols.dtype))
    return dx
