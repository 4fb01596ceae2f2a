"""Winograd F(2x2, 3x3), Numba version: the functions of kernels/reference/winograd.py (read its
docstring first: what is computed and why), with the small matrix products written out as the
additions they are.

Shapes
    N, C, H, W   input;  O output channels;  Cg = C / groups
    pt, pl       padding at the top and on the left
    oh, ow       output height and width;  th = ceil(oh/2), tw = ceil(ow/2) tiles of 2x2
    T            N * th * tw tiles;  tile t = (n*th + ty)*tw + tx
    V, Gh        (16, C or O, T): one row of T per transformed-tile position xi = 4a + b

    B^T d B   rows:  (d0 - d2,  d1 + d2,  d2 - d1,  d1 - d3)    d 4x4 input tile
    A^T m A   rows:  (m0 + m1 + m2,  m1 - m2 - m3)               m 4x4 product tile
    A g A^T   rows:  (g0,  g0 + g1,  g0 - g1,  -g1)              g 2x2 output-gradient tile
    G w G^T   rows:  (w0,  (w0 + w1 + w2)/2,  (w0 - w1 + w2)/2,  w2)   w 3x3 kernel
each applied once down the columns (combining whole rows of the plane) and once along the rows.

Two layouts. The whole-tensor transforms (the public functions, and a batch of one sample) keep
the reference's (16, C, T). The plans for a batch (conv2d_forward's usual way, at the end of this
file: the whole batch at once, or in blocks) put the channels innermost instead: (16, tiles, C),
their transforms vector loops over the channels. What follows is about the whole-tensor transforms.

Parallel plan: one prange iteration per channel (c of V, o of y and Gh), looping over the samples
inside. It owns every value of its channel, so there are no races, and it writes its 16 rows of V
(or Gh) from start to end: consecutive samples' tiles are neighbours in a row of T.

Vectorising: tile tx reads the input columns 2tx .. 2tx+3, a stride of 2 that defeats SIMD. So each
plane is first copied, padded, into even and odd columns apart, xs[row, parity, k] = x[row, 2k +
parity]; then d0..d3 of tile tx are xs[., 0, tx], xs[., 1, tx], xs[., 0, tx+1], xs[., 1, tx+1], four
contiguous runs, and every inner loop over tx is a plain vector loop.
"""
import types

import numpy as np
from numba import prange

from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for
from ._jit import kernel
from ._threads import blas_threads, blas_threads_now
from .gemm import matmul


@kernel(parallel=False)
def tiles(oh, ow):
    return (oh + 1) // 2, (ow + 1) // 2


@kernel(parallel=False)
def _column_pairs(left, W, half):
    """Where plane columns 2q and 2q + 1 go in a split row (xs[row, p, k], 2k + p = column +
    left): (p0, k0 + q) and (p1, k1 + q), and for how many q both fit (pairs)."""
    k0, k1 = left // 2, (left + 1) // 2
    return left % 2, (left + 1) % 2, k0, k1, min(W // 2, half - max(k0, k1))


@kernel(parallel=False)
def _split_columns(plane, xs, top, left):
    """xs[top + r, p, k] = plane[r, 2k + p - left], zeros around (xs (rows, 2, half)): the plane
    padded, its even (p = 0) and odd (p = 1) padded columns laid apart."""
    xs[:] = 0
    H, W = plane.shape
    p0, p1, k0, k1, pairs = _column_pairs(left, W, xs.shape[2])
    for r in range(min(H, xs.shape[0] - top)):
        src, even, odd = plane[r], xs[top + r, p0], xs[top + r, p1]
        for q in range(pairs):                   # two neighbours at a time: a vector loop
            even[k0 + q] = src[2 * q]
            odd[k1 + q] = src[2 * q + 1]
        for q in range(2 * pairs, W):            # an odd width's last column, or what fits
            col = left + q
            if col // 2 < xs.shape[2]:
                xs[top + r, col % 2, col // 2] = src[q]


@kernel(parallel=False)
def _merge_columns(xs, plane, top, left):
    """plane[r, q] = xs[top + r, p, k] with 2k + p = q + left (0 where xs ends): the inverse of
    _split_columns, cropping the padding away."""
    H, W = plane.shape
    p0, p1, k0, k1, pairs = _column_pairs(left, W, xs.shape[2])
    for r in range(H):
        dst = plane[r]
        if top + r >= xs.shape[0]:
            dst[:] = 0
            continue
        even, odd = xs[top + r, p0], xs[top + r, p1]
        for q in range(pairs):                   # two neighbours at a time: a vector loop
            dst[2 * q] = even[k0 + q]
            dst[2 * q + 1] = odd[k1 + q]
        for q in range(2 * pairs, W):
            col = left + q
            dst[q] = xs[top + r, col % 2, col // 2] if col // 2 < xs.shape[2] else 0


# ---- one plane at a time: what the whole-tensor transforms and the blocks (below) both run ------
@kernel(parallel=False)
def _input_plane(plane, v, c, t0, pt, pl, th, tw, xs, e):
    """v[:, c, t0 + ty*tw + tx] = B^T d B of every tile (ty, tx) of one input plane (H, W).
    xs (2th+2, 2, tw+1) and e (2, tw+1) are scratch."""
    _split_columns(plane, xs, pt, pl)
    for a in range(4):               # four rows of v at a time
        for ty in range(th):
            r0, r1, r2, r3 = xs[2 * ty], xs[2 * ty + 1], xs[2 * ty + 2], xs[2 * ty + 3]
            for p in range(2):                      # down the columns: row a of B^T d
                for k in range(tw + 1):
                    if a == 0:
                        e[p, k] = r0[p, k] - r2[p, k]
                    elif a == 1:
                        e[p, k] = r1[p, k] + r2[p, k]
                    elif a == 2:
                        e[p, k] = r2[p, k] - r1[p, k]
                    else:
                        e[p, k] = r1[p, k] - r3[p, k]
            t = t0 + ty * tw
            ev, od = e[0], e[1]
            for tx in range(tw):                    # along the rows: (B^T d) B
                v[4 * a, c, t + tx] = ev[tx] - ev[tx + 1]
                v[4 * a + 1, c, t + tx] = od[tx] + ev[tx + 1]
                v[4 * a + 2, c, t + tx] = ev[tx + 1] - od[tx]
                v[4 * a + 3, c, t + tx] = od[tx] - od[tx + 1]


@kernel(parallel=False)
def _input_grad_plane(dv, c, t0, dx, pt, pl, th, tw, ps, r):
    """dx (H, W) = B dV B^T of channel c's tiles t0 .. t0 + th*tw - 1, each added where its tile
    was read, the padding cropped away. ps (2th+2, 2, tw+1) and r (4, 4, tw) are scratch."""
    ps[:] = 0
    for ty in range(th):
        t = t0 + ty * tw
        for b in range(4):                               # down the columns: B dV
            e0, e1 = dv[b, c, t:t + tw], dv[4 + b, c, t:t + tw]
            e2, e3 = dv[8 + b, c, t:t + tw], dv[12 + b, c, t:t + tw]
            for tx in range(tw):
                r[0, b, tx] = e0[tx]
                r[1, b, tx] = e1[tx] - e2[tx] + e3[tx]
                r[2, b, tx] = e1[tx] + e2[tx] - e0[tx]
                r[3, b, tx] = -e3[tx]
        for k in range(4):                               # along the rows: (B dV) B^T,
            ev, od = ps[2 * ty + k, 0], ps[2 * ty + k, 1]   # added where the tile was read
            q0, q1, q2, q3 = r[k, 0], r[k, 1], r[k, 2], r[k, 3]
            for tx in range(tw):                         # columns 2tx and 2tx + 1
                ev[tx] += q0[tx]
                od[tx] += q1[tx] - q2[tx] + q3[tx]
            for tx in range(tw):                         # columns 2tx + 2 and 2tx + 3
                ev[tx + 1] += q1[tx] + q2[tx] - q0[tx]
                od[tx + 1] -= q3[tx]
    _merge_columns(ps, dx, pt, pl)                       # crop the padding away


@kernel(parallel=False)
def _output_plane(m, o, t0, y, b, z):
    """y (oh, ow) = A^T m A + b: output channel o from its tiles t0 .. t0 + th*tw - 1.
    z (2, 2, th*tw) is scratch: z[i, j, t] = (A^T m A)[i, j] of tile t."""
    oh, ow = y.shape
    th, tw = tiles(oh, ow)
    for t in range(th * tw):                 # one vector loop over the plane's tiles
        s = t0 + t
        a0, a1, a2, a3 = m[0, o, s], m[1, o, s], m[2, o, s], m[3, o, s]
        b0, b1, b2, b3 = m[4, o, s], m[5, o, s], m[6, o, s], m[7, o, s]
        c0, c1, c2, c3 = m[8, o, s], m[9, o, s], m[10, o, s], m[11, o, s]
        d0, d1, d2, d3 = m[12, o, s], m[13, o, s], m[14, o, s], m[15, o, s]
        r0, r1, r2, r3 = a0 + b0 + c0, a1 + b1 + c1, a2 + b2 + c2, a3 + b3 + c3   # A^T m, row 0
        s0, s1, s2, s3 = b0 - c0 - d0, b1 - c1 - d1, b2 - c2 - d2, b3 - c3 - d3   # ... row 1
        z[0, 0, t] = r0 + r1 + r2 + b                                             # (A^T m) A
        z[0, 1, t] = r1 - r2 - r3 + b
        z[1, 0, t] = s0 + s1 + s2 + b
        z[1, 1, t] = s1 - s2 - s3 + b
    for ty in range(th):                     # the tiles into place, cropped at odd sizes
        for i in range(min(2, oh - 2 * ty)):
            row = y[2 * ty + i]
            for j in range(2):
                for tx in range((ow - j + 1) // 2):
                    row[2 * tx + j] = z[i, j, ty * tw + tx]


@kernel(parallel=False)
def _grad_output_plane(g, gh, o, t0, q):
    """gh[:, o, t0 + t] = A g A^T of every tile t of one output-gradient plane g (oh, ow).
    q (2, 2, th*tw) is scratch: q[i, j, t] = g[2ty + i, 2tx + j], 0 past the edge."""
    oh, ow = g.shape
    th, tw = tiles(oh, ow)
    q[:] = 0
    for ty in range(th):
        for i in range(min(2, oh - 2 * ty)):
            row = g[2 * ty + i]
            for j in range(2):
                for tx in range((ow - j + 1) // 2):
                    q[i, j, ty * tw + tx] = row[2 * tx + j]
    for a in range(4):                       # vector loops over the plane's tiles
        for t in range(th * tw):
            g00, g01, g10, g11 = q[0, 0, t], q[0, 1, t], q[1, 0, t], q[1, 1, t]
            if a == 0:                       # down the columns: row a of A g
                e0, e1 = g00, g01
            elif a == 1:
                e0, e1 = g00 + g10, g01 + g11
            elif a == 2:
                e0, e1 = g00 - g10, g01 - g11
            else:
                e0, e1 = -g10, -g11
            gh[4 * a, o, t0 + t] = e0        # along the rows: (A g) A^T
            gh[4 * a + 1, o, t0 + t] = e0 + e1
            gh[4 * a + 2, o, t0 + t] = e0 - e1
            gh[4 * a + 3, o, t0 + t] = -e1


# ---- the whole-tensor transforms: kernels/reference/winograd.py's functions -----------------
@kernel
def input_transform(x, pt, pl, oh, ow):
    N, C, H, W = x.shape
    th, tw = tiles(oh, ow)
    V = np.empty((16, C, N * th * tw), dtype=x.dtype)
    for c in prange(C):
        xs = np.empty((2 * th + 2, 2, tw + 1), dtype=x.dtype)   # the padded plane, columns split
        e = np.empty((2, tw + 1), dtype=x.dtype)
        for n in range(N):
            _input_plane(x[n, c], V, c, n * th * tw, pt, pl, th, tw, xs, e)
    return V


@kernel
def input_grad_transform(dv, N, H, W, pt, pl, oh, ow):
    _, C, T = dv.shape
    th, tw = tiles(oh, ow)
    dx = np.empty((N, C, H, W), dtype=dv.dtype)
    for c in prange(C):
        ps = np.empty((2 * th + 2, 2, tw + 1), dtype=dv.dtype)   # the padded plane, columns split
        r = np.empty((4, 4, tw), dtype=dv.dtype)                 # r[k, b] = row k of B dV, column b
        for n in range(N):
            _input_grad_plane(dv, c, n * th * tw, dx[n, c], pt, pl, th, tw, ps, r)
    return dx


@kernel
def output_transform(m, N, oh, ow, bias=None):
    _, O, T = m.shape
    th, tw = tiles(oh, ow)
    y = np.empty((N, O, oh, ow), dtype=m.dtype)
    for o in prange(O):
        b = m.dtype.type(0) if bias is None else m.dtype.type(bias[o])
        z = np.empty((2, 2, th * tw), dtype=m.dtype)
        for n in range(N):
            _output_plane(m, o, n * th * tw, y[n, o], b, z)
    return y


@kernel
def grad_output_transform(g):
    N, O, oh, ow = g.shape
    th, tw = tiles(oh, ow)
    Gh = np.empty((16, O, N * th * tw), dtype=g.dtype)
    for o in prange(O):
        q = np.empty((2, 2, th * tw), dtype=g.dtype)
        for n in range(N):
            _grad_output_plane(g[n, o], Gh, o, n * th * tw, q)
    return Gh


@kernel
def weight_transform(w):
    O, Cg = w.shape[0], w.shape[1]
    U = np.empty((16, O, Cg), dtype=w.dtype)
    half = w.dtype.type(0.5)                             # exact in any precision
    for o in prange(O):
        k = np.empty((3, 3, Cg), dtype=w.dtype)          # the kernels of row o, taps first
        gw = np.empty((4, 3, Cg), dtype=w.dtype)
        for i in range(3):
            for j in range(3):
                for c in range(Cg):
                    k[i, j, c] = w[o, c, i, j]
        for j in range(3):                               # down the columns: G w
            for c in range(Cg):
                gw[0, j, c] = k[0, j, c]
                gw[1, j, c] = (k[0, j, c] + k[1, j, c] + k[2, j, c]) * half
                gw[2, j, c] = (k[0, j, c] - k[1, j, c] + k[2, j, c]) * half
                gw[3, j, c] = k[2, j, c]
        for a in range(4):                               # along the rows: (G w) G^T
            for c in range(Cg):
                U[4 * a, o, c] = gw[a, 0, c]
                U[4 * a + 1, o, c] = (gw[a, 0, c] + gw[a, 1, c] + gw[a, 2, c]) * half
                U[4 * a + 2, o, c] = (gw[a, 0, c] - gw[a, 1, c] + gw[a, 2, c]) * half
                U[4 * a + 3, o, c] = gw[a, 2, c]
    return U


@kernel
def weight_grad_transform(du):
    _, O, Cg = du.shape
    dw = np.empty((O, Cg, 3, 3), dtype=du.dtype)
    half = du.dtype.type(0.5)                            # exact in any precision
    for o in prange(O):
        s = np.empty((3, 4, Cg), dtype=du.dtype)         # G^T dU of row o, channels last
        k = np.empty((3, 3, Cg), dtype=du.dtype)
        for b in range(4):                               # down the columns: G^T dU
            for c in range(Cg):
                d0, d1, d2, d3 = du[b, o, c], du[4 + b, o, c], du[8 + b, o, c], du[12 + b, o, c]
                s[0, b, c] = d0 + (d1 + d2) * half
                s[1, b, c] = (d1 - d2) * half
                s[2, b, c] = (d1 + d2) * half + d3
        for i in range(3):                               # along the rows: (G^T dU) G
            for c in range(Cg):
                k[i, 0, c] = s[i, 0, c] + (s[i, 1, c] + s[i, 2, c]) * half
                k[i, 1, c] = (s[i, 1, c] - s[i, 2, c]) * half
                k[i, 2, c] = (s[i, 1, c] + s[i, 2, c]) * half + s[i, 3, c]
        for c in range(Cg):                              # back to w's layout, taps last
            for i in range(3):
                for j in range(3):
                    dw[o, c, i, j] = k[i, j, c]
    return dw


# ---- the whole convolution: the CPU's plan ----------------------------------------------------
# conv2d_forward / conv2d_backward compute kernels/reference/winograd.py's, in one of two ways.
#
# Blocks (a batch of two or more with more than XI_MAX_TILES tiles, NumPy's OpenBLAS callable
# from Numba): the batch is cut into
# one part per thread, and one parallel kernel runs each part a block of samples at a time:
# transform the block's tiles, multiply, transform back, while its V and M are still in cache.
# The 16 products per block are one-thread BLAS calls from inside the kernel (_blas.py), as in
# kernels/cpu/conv.py's slices; dW is summed per part (parts in du) and the parts added at the end.
#
# Inside a block the channels are innermost: each sample's plane stack (C, H, W) is copied,
# padded, to (Hp, Wp, C), and the tiles' transforms run as vector loops over the channels
# (64 to 512 long) rather than along a row of tiles (2 to 28 long on ResNet's and AlphaGo's
# maps). V and M are (16, tiles, channels), which BLAS multiplies as they are. A block holds
# about TARGET_TILES tiles: a product of fewer runs well below BLAS's rate on one core (with 192
# channels, 55 GFLOP/s for 100 tiles against 139 for 512), one of more leaves cache for nothing.
# Figures: benchmarks/results/cpu_measurements.md.
#
# Whole batch, the 16 products shared out (a batch of two or more with at most XI_MAX_TILES
# tiles: ResNet's 4x4 to 16x16 maps, AlphaGo's 19x19 at batch 16): the same channels-last
# transforms, but over the whole batch at once, each sample's a prange iteration; then the
# 16 products, each over every tile of the batch, are what the threads share (one product xi per
# prange iteration). A thread's part of a batch split by samples has too few tiles for BLAS on
# these maps (32 to 800), while a product over the whole batch has 64 to 1600 rows, and dU needs
# no sum over parts. Larger batches of tiles (VGG's maps) keep the blocks: there V and M would
# no longer stay in cache. Measured (forward and backward of one layer, ms, blocks against this):
# 256->256 at 4x4 batch 16, 8.2 -> 6.3; 192->192 at 19x19 batch 16, 44.7 -> 33.3; 64->64 at
# 16x16 batch 32 (2048 tiles), 10.1 against 11.2 and VGG's 128->128 at 32x32 batch 8, 27.4
# against 34.9 (so blocks there).
#
# Whole tensors (one sample): V = input_transform(x), M = U V, y = output_transform(M), in
# chunks of samples whose V and M fit in CHUNK_BYTES; the prange loops inside the transforms
# run over channels, which a single sample still has many of.
#
# Neither U nor V is kept for the backward: both are transformed again there. U = G w G^T is
# 16/9 of the weights and costs ~1% of the layer to recompute; V is 4x the input (kept V's were
# the largest thing a ResNet-18 step held: 35 of 249 MiB at batch 32, and U's another 16).
#   u (16, O, Cg)  v, dv (16, nb, C)  m, gh (16, nb, O)  du (parts, 16, O, Cg)
#   xt, ps (Hp, Wp, C) = (2th + 2, 2tw + 2, C): one sample's padded input (or its gradient)
#   yt (2th, 2tw, O): one sample's output (or output gradient), channels innermost
#   nb = samples per block * th*tw;  edges: part p is samples edges[p] .. edges[p+1] - 1
CHUNK_BYTES = 64 * 2**20
TARGET_TILES = 512         # tiles per block, i.e. the products' long side
BLOCK_BYTES = 16 * 2**20   # at most this much V and M per block (per thread)
XI_MAX_TILES = 1600        # the whole-batch plan below for batches of at most this many tiles


@kernel(parallel=False)
def _to_channels_last(x3, xt, top, left):
    """xt[top + h, left + w, c] = x3[c, h, w] for what fits in xt; the rest of xt is untouched
    (zero padding, written once)."""
    C, H, W = x3.shape
    for h in range(min(H, xt.shape[0] - top)):
        for w in range(min(W, xt.shape[1] - left)):
            dst = xt[top + h, left + w]
            for c in range(C):
                dst[c] = x3[c, h, w]


@kernel(parallel=False)
def _from_channels_last(xt, x3, top, left):
    """x3[c, h, w] = xt[top + h, left + w, c]: the inverse, cropping the padding away (xt always
    covers x3 there: a padded input, 2th + 2 >= oh + 2 = H + pt + pb, or tiles, 2th >= oh). Pixel by pixel, each read a run of channels,
    as _to_channels_last; but where a plane is a multiple of 1 KiB (16x16 maps) the C writes of
    one pixel, a plane apart, would crowd a few cache sets, so there 16 columns at a time go
    down the channels instead, each channel written a run of columns."""
    C, H, W = x3.shape
    if H * W * x3.itemsize % 1024 != 0:
        for h in range(H):
            for w in range(W):
                src = xt[top + h, left + w]
                for c in range(C):
                    x3[c, h, w] = src[c]
        return
    for h in range(H):
        row = xt[top + h]
        for w0 in range(0, W, 16):
            for c in range(C):
                dst = x3[c, h]
                for w in range(w0, min(w0 + 16, W)):
                    dst[w] = row[left + w, c]


@kernel(parallel=False)
def _input_tiles(xt, v, t0, th, tw, e):
    """v[4a + b, t0 + ty*tw + tx, :] = (B^T d B)[a, b] for every 4x4 tile d of xt (Hp, Wp, C).
    e (4, Wp, C) is scratch: B^T d down one row of tiles, every column at once."""
    for ty in range(th):
        r0, r1, r2, r3 = xt[2 * ty], xt[2 * ty + 1], xt[2 * ty + 2], xt[2 * ty + 3]
        for col in range(xt.shape[1]):                      # down the columns: B^T d
            d0, d1, d2, d3 = r0[col], r1[col], r2[col], r3[col]
            e0, e1, e2, e3 = e[0, col], e[1, col], e[2, col], e[3, col]
            for c in range(xt.shape[2]):
                e0[c] = d0[c] - d2[c]
                e1[c] = d1[c] + d2[c]
                e2[c] = d2[c] - d1[c]
                e3[c] = d1[c] - d3[c]
        for tx in range(tw):                                # along the rows: (B^T d) B
            t = t0 + ty * tw + tx
            for a in range(4):
                q0, q1, q2, q3 = e[a, 2 * tx], e[a, 2 * tx + 1], e[a, 2 * tx + 2], e[a, 2 * tx + 3]
                v0, v1, v2, v3 = v[4 * a, t], v[4 * a + 1, t], v[4 * a + 2, t], v[4 * a + 3, t]
                for c in range(xt.shape[2]):
                    v0[c] = q0[c] - q2[c]
                    v1[c] = q1[c] + q2[c]
                    v2[c] = q2[c] - q1[c]
                    v3[c] = q1[c] - q3[c]


@kernel(parallel=False)
def _input_grad_tiles(dv, t0, th, tw, ps, r):
    """ps (Hp, Wp, C) += B dV B^T of every tile t0 .. t0 + th*tw - 1, each added where its tile
    was read. r (4, 4, C) is scratch: r[k, b] = row k of B dV, column b."""
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for b in range(4):                              # down the columns: B dV
                e0, e1, e2, e3 = dv[b, t], dv[4 + b, t], dv[8 + b, t], dv[12 + b, t]
                for c in range(ps.shape[2]):
                    r[0, b, c] = e0[c]
                    r[1, b, c] = e1[c] - e2[c] + e3[c]
                    r[2, b, c] = e1[c] + e2[c] - e0[c]
                    r[3, b, c] = -e3[c]
            for k in range(4):                              # along the rows: (B dV) B^T
                p0, p1 = ps[2 * ty + k, 2 * tx], ps[2 * ty + k, 2 * tx + 1]
                p2, p3 = ps[2 * ty + k, 2 * tx + 2], ps[2 * ty + k, 2 * tx + 3]
                q0, q1, q2, q3 = r[k, 0], r[k, 1], r[k, 2], r[k, 3]
                for c in range(ps.shape[2]):
                    p0[c] += q0[c]
                    p1[c] += q1[c] - q2[c] + q3[c]
                    p2[c] += q1[c] + q2[c] - q0[c]
                    p3[c] -= q3[c]


@kernel(parallel=False)
def _output_tiles(m, t0, y3, bias, yt):
    """y3 (O, oh, ow) = A^T m A + b from one sample's tiles t0 .. t0 + th*tw - 1 of m (16, nb, O),
    through yt (2th, 2tw, O)."""
    O, oh, ow = y3.shape
    th, tw = tiles(oh, ow)
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            y00, y01 = yt[2 * ty, 2 * tx], yt[2 * ty, 2 * tx + 1]
            y10, y11 = yt[2 * ty + 1, 2 * tx], yt[2 * ty + 1, 2 * tx + 1]
            for o in range(O):
                b = bias[o] if bias.size > 0 else 0
                a0, a1, a2, a3 = m[0, t, o], m[1, t, o], m[2, t, o], m[3, t, o]
                b0, b1, b2, b3 = m[4, t, o], m[5, t, o], m[6, t, o], m[7, t, o]
                c0, c1, c2, c3 = m[8, t, o], m[9, t, o], m[10, t, o], m[11, t, o]
                d0, d1, d2, d3 = m[12, t, o], m[13, t, o], m[14, t, o], m[15, t, o]
                r0, r1, r2, r3 = a0 + b0 + c0, a1 + b1 + c1, a2 + b2 + c2, a3 + b3 + c3   # A^T m, row 0
                s0, s1, s2, s3 = b0 - c0 - d0, b1 - c1 - d1, b2 - c2 - d2, b3 - c3 - d3   # ... row 1
                y00[o] = r0 + r1 + r2 + b                                                 # (A^T m) A
                y01[o] = r1 - r2 - r3 + b
                y10[o] = s0 + s1 + s2 + b
                y11[o] = s1 - s2 - s3 + b
    _from_channels_last(yt, y3, 0, 0)                # the tiles into place, cropped at the edges


@kernel(parallel=False)
def _grad_output_tiles(g3, gh, t0, yt):
    """gh[:, t0 + t, :] = A g A^T of every 2x2 tile of one sample's output gradient g3 (O, oh, ow),
    through yt (2th, 2tw, O), whose rows and columns past oh and ow stay 0."""
    O, oh, ow = g3.shape
    th, tw = tiles(oh, ow)
    _to_channels_last(g3, yt, 0, 0)
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            q00, q01 = yt[2 * ty, 2 * tx], yt[2 * ty, 2 * tx + 1]
            q10, q11 = yt[2 * ty + 1, 2 * tx], yt[2 * ty + 1, 2 * tx + 1]
            for a in range(4):
                h0, h1, h2, h3 = gh[4 * a, t], gh[4 * a + 1, t], gh[4 * a + 2, t], gh[4 * a + 3, t]
                for o in range(O):
                    if a == 0:                       # down the columns: row a of A g
                        e0, e1 = q00[o], q01[o]
                    elif a == 1:
                        e0, e1 = q00[o] + q10[o], q01[o] + q11[o]
                    elif a == 2:
                        e0, e1 = q00[o] - q10[o], q01[o] - q11[o]
                    else:
                        e0, e1 = -q10[o], -q11[o]
                    h0[o] = e0                       # along the rows: (A g) A^T
                    h1[o] = e0 + e1
                    h2[o] = e0 - e1
                    h3[o] = -e1


@kernel(parallel=False)
def _tile_products(job, v, u, m, T, gemm):
    """M[xi] (T, Og) = V[xi] (T, Cg) @ U[xi]^T for job = xi*G + group: one of the products (one
    per transformed-tile position and group) over the first T rows of v and m. Shared by
    F(2x2, 3x3)'s plans here and F(4x4, 3x3)'s (_winograd_f4.py)."""
    C, O, Cg = v.shape[2], m.shape[2], u.shape[2]
    G = C // Cg
    Og = O // G
    xi, grp = job // G, job % G
    gemm(ROW_MAJOR, NO_TRANS, TRANS, T, Og, Cg, m.dtype.type(1), v[xi, 0, grp * Cg:].ctypes.data, C,
         u[xi, grp * Og:].ctypes.data, Cg, m.dtype.type(0), m[xi, 0, grp * Og:].ctypes.data, O)


@kernel(parallel=False)
def _tile_input_grads(job, gh, u, dv, T, gemm):
    """dV[xi] (T, Cg) = Gh[xi] (T, Og) @ U[xi], for job = xi*G + group."""
    O, C, Cg = gh.shape[2], dv.shape[2], u.shape[2]
    G = C // Cg
    Og = O // G
    xi, grp = job // G, job % G
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, T, Cg, Og, dv.dtype.type(1), gh[xi, 0, grp * Og:].ctypes.data, O,
         u[xi, grp * Og:].ctypes.data, Cg, dv.dtype.type(0), dv[xi, 0, grp * Cg:].ctypes.data, C)


@kernel(parallel=False)
def _tile_weight_grads(job, gh, v, du, T, beta, gemm):
    """dU[xi] (Og, Cg) = Gh[xi]^T (Og, T) @ V[xi] (T, Cg) + beta * dU[xi], for job = xi*G + group
    (beta 1: a block's share added to its part's sum)."""
    O, C, Cg = gh.shape[2], v.shape[2], du.shape[2]
    G = C // Cg
    Og = O // G
    xi, grp = job // G, job % G
    gemm(ROW_MAJOR, TRANS, NO_TRANS, Og, Cg, T, du.dtype.type(1), gh[xi, 0, grp * Og:].ctypes.data, O,
         v[xi, 0, grp * Cg:].ctypes.data, C, beta, du[xi, grp * Og:].ctypes.data, Cg)


@kernel
def _blocks_forward(x, u, bias, out, pt, pl, edges, per_block, gemm):
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G = C // Cg
    th, tw = tiles(out.shape[2], out.shape[3])
    P, nb = th * tw, per_block * th * tw                 # tiles per sample, per block
    for part in prange(edges.size - 1):
        v, m = np.empty((16, nb, C), x.dtype), np.empty((16, nb, O), x.dtype)
        xt, e = np.zeros((2 * th + 2, 2 * tw + 2, C), x.dtype), np.empty((4, 2 * tw + 2, C), x.dtype)
        yt = np.empty((2 * th, 2 * tw, O), x.dtype)
        for n0 in range(edges[part], edges[part + 1], per_block):
            n1 = min(n0 + per_block, edges[part + 1])
            for n in range(n0, n1):                                      # V = B^T d B
                _to_channels_last(x[n], xt, pt, pl)
                _input_tiles(xt, v, (n - n0) * P, th, tw, e)
            for job in range(16 * G):                # M[xi] = V[xi] @ U[xi]^T, per group
                _tile_products(job, v, u, m, (n1 - n0) * P, gemm)
            for n in range(n0, n1):                                      # y = A^T M A + b
                _output_tiles(m, (n - n0) * P, out[n], bias, yt)


@kernel
def _blocks_backward(x, u, g, dx, du, pt, pl, edges, per_block, gemm):
    """dx (N, C, H, W) and du (parts, 16, O, Cg), each empty when not wanted."""
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G = C // Cg
    th, tw = tiles(g.shape[2], g.shape[3])
    P, nb = th * tw, per_block * th * tw
    one = x.dtype.type(1)
    for part in prange(edges.size - 1):
        gh, v = np.empty((16, nb, O), x.dtype), np.empty((16, nb, C), x.dtype)   # v holds dV, then V
        yt = np.zeros((2 * th, 2 * tw, O), x.dtype)
        xt, e = np.zeros((2 * th + 2, 2 * tw + 2, C), x.dtype), np.empty((4, 2 * tw + 2, C), x.dtype)
        ps, r = np.empty((2 * th + 2, 2 * tw + 2, C), x.dtype), np.empty((4, 4, C), x.dtype)
        for n0 in range(edges[part], edges[part + 1], per_block):
            n1 = min(n0 + per_block, edges[part + 1])
            T = (n1 - n0) * P
            for n in range(n0, n1):                                      # Gh = A g A^T
                _grad_output_tiles(g[n], gh, (n - n0) * P, yt)
            if dx.size > 0:
                for job in range(16 * G):            # dV[xi] = Gh[xi] @ U[xi], per group
                    _tile_input_grads(job, gh, u, v, T, gemm)
                for n in range(n0, n1):                                  # dx = B dV B^T
                    ps[:] = 0
                    _input_grad_tiles(v, (n - n0) * P, th, tw, ps, r)
                    _from_channels_last(ps, dx[n], pt, pl)
            if du.size > 0:
                for n in range(n0, n1):                                  # V again
                    _to_channels_last(x[n], xt, pt, pl)
                    _input_tiles(xt, v, (n - n0) * P, th, tw, e)
                for job in range(16 * G):            # dU[xi] += Gh[xi]^T @ V[xi], per group
                    _tile_weight_grads(job, gh, v, du[part], T, one, gemm)


@kernel(parallel=False)
def _sample_input_tiles(x3, v, t0, th, tw, pt, pl):
    """V = B^T d B of one sample's tiles t0 .. t0 + th*tw - 1 (the whole-batch plan's step, with
    scratch of its own: each sample is a prange iteration)."""
    C = x3.shape[0]
    xt, e = np.zeros((2 * th + 2, 2 * tw + 2, C), x3.dtype), np.empty((4, 2 * tw + 2, C), x3.dtype)
    _to_channels_last(x3, xt, pt, pl)
    _input_tiles(xt, v, t0, th, tw, e)


@kernel
def _batch_forward(x, u, bias, out, pt, pl, gemm):
    """out = A^T [U V] A + b, the whole batch's tiles at once, the 16 products shared out."""
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G = C // Cg
    th, tw = tiles(out.shape[2], out.shape[3])
    P = th * tw
    T = N * P
    v, m = np.empty((16, T, C), x.dtype), np.empty((16, T, O), x.dtype)
    for n in prange(N):                                              # V = B^T d B
        _sample_input_tiles(x[n], v, n * P, th, tw, pt, pl)
    for job in prange(16 * G):              # M[xi] (T, Og) = V[xi] (T, Cg) @ U[xi]^T, per group
        _tile_products(job, v, u, m, T, gemm)
    for n in prange(N):                                              # y = A^T M A + b
        yt = np.empty((2 * th, 2 * tw, O), x.dtype)
        _output_tiles(m, n * P, out[n], bias, yt)


@kernel
def _batch_backward(x, u, g, dx, du, pt, pl, gemm):
    """dx (N, C, H, W) and du (16, O, Cg), each empty when not wanted: _batch_forward's way."""
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G = C // Cg
    th, tw = tiles(g.shape[2], g.shape[3])
    P = th * tw
    T = N * P
    gh, v = np.empty((16, T, O), x.dtype), np.empty((16, T, C), x.dtype)   # v holds dV, then V
    for n in prange(N):                                              # Gh = A g A^T
        yt = np.zeros((2 * th, 2 * tw, O), x.dtype)
        _grad_output_tiles(g[n], gh, n * P, yt)
    if dx.size > 0:
        for job in prange(16 * G):          # dV[xi] (T, Cg) = Gh[xi] (T, Og) @ U[xi], per group
            _tile_input_grads(job, gh, u, v, T, gemm)
        for n in prange(N):                                          # dx = B dV B^T
            ps, r = np.zeros((2 * th + 2, 2 * tw + 2, C), x.dtype), np.empty((4, 4, C), x.dtype)
            _input_grad_tiles(v, n * P, th, tw, ps, r)
            _from_channels_last(ps, dx[n], pt, pl)
    if du.size > 0:
        for n in prange(N):                                          # V again
            _sample_input_tiles(x[n], v, n * P, th, tw, pt, pl)
        for job in prange(16 * G):          # dU[xi] (Og, Cg) = Gh[xi]^T (Og, T) @ V[xi] (T, Cg)
            _tile_weight_grads(job, gh, v, du, T, x.dtype.type(0), gemm)


def _batch_suits(x, geom):
    """The whole-batch plan: a batch of 2 or more, at most XI_MAX_TILES tiles, BLAS callable."""
    th, tw = tiles(geom.oh, geom.ow)
    return x.shape[0] >= 2 and x.shape[0] * th * tw <= XI_MAX_TILES and gemm_for(x.dtype) is not None


def _sum_parts(du):
    """The parts' dU added up, in place in the first (NumPy's sum over the first axis is slower)."""
    total = du[0]
    for part in du[1:]:
        total += part
    return total


def _kept_u(saved, transform, wanted=True):
    """U from the forward, handed over once (the backward frees it), or computed again for a
    second backward through the same graph; None when not wanted (no dx). Kept, not recomputed: the transform costs as much
    as ResNet-18's whole SGD update (3.3 ms a step at batch 16) and U is only 16/9 (F(4x4,
    3x3): 4x) the weights while the step runs."""
    u, saved.u = saved.u, None
    if not wanted:
        return None
    return transform(saved.weight) if u is None else u


def _bias_grad(g):
    """db (O,) = g (N, O, oh, ow) summed over n, oy, ox: the samples' maps added first (long
    contiguous runs), then each channel's plane; NumPy's sum over axes (0, 2, 3) at once is
    about 2x slower. (kernels/cpu/conv.py's plans keep that one: they match the reference bit
    for bit, which Winograd's rounding does not anyway.)"""
    return g.sum(axis=0).sum(axis=(1, 2))


def _blocks(x, O, geom):
    """(edges, per_block) of the blocks plan, or None where it does not apply."""
    N = x.shape[0]
    if N < 2 or gemm_for(x.dtype) is None:
        return None
    parts = min(blas_threads_now() or 1, N)
    th, tw = tiles(geom.oh, geom.ow)
    per_sample = 16 * (x.shape[1] + O) * th * tw * x.dtype.itemsize     # its V and M
    edges = np.array([N * i // parts for i in range(parts + 1)], dtype=np.int64)
    wanted = -(-TARGET_TILES // (th * tw))
    per_block = max(1, min(N // parts, wanted, BLOCK_BYTES // max(per_sample, 1)))
    return edges, per_block


def _chunk(x, O, geom):
    """Samples per chunk: their V and M within CHUNK_BYTES, at least one sample."""
    th, tw = tiles(geom.oh, geom.ow)
    per_sample = 16 * (x.shape[1] + O) * th * tw * x.dtype.itemsize
    return max(1, min(x.shape[0], CHUNK_BYTES // max(per_sample, 1)))


def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = A^T [U * V] A (+ b). -> (out, saved for conv2d_backward)."""
    N, C = x.shape[:2]
    O, Cg, groups = weight.shape[0], weight.shape[1], geom.groups
    u = weight_transform(weight)                                            # U = G w G^T
    saved = types.SimpleNamespace(plan="winograd", x=x, weight=weight, geom=geom, batch=_batch_suits(x, geom), u=u)
    saved.blocks = None if saved.batch else _blocks(x, O, geom)
    out = np.empty((N, O, geom.oh, geom.ow), dtype=x.dtype)
    if saved.batch:
        with blas_threads(1):              # each product runs on its own core
            _batch_forward(x, u, np.empty(0, x.dtype) if bias is None else bias, out, geom.pt, geom.pl,
                           gemm_for(x.dtype))
        return out, saved
    if saved.blocks is not None:
        edges, per_block = saved.blocks
        with blas_threads(1):              # each part's products run on its own core
            _blocks_forward(x, u, np.empty(0, x.dtype) if bias is None else bias, out, geom.pt, geom.pl,
                            edges, per_block, gemm_for(x.dtype))
        return out, saved
    u4 = u.reshape(16, groups, O // groups, Cg)
    th, tw = tiles(geom.oh, geom.ow)
    saved.step = step = _chunk(x, O, geom)
    for s in range(0, N, step):
        v = input_transform(x[s:s + step], geom.pt, geom.pl, geom.oh, geom.ow)   # V = B^T d B
        n, T = v.shape[2] // (th * tw), v.shape[2]
        m = matmul(u4, v.reshape(16, groups, Cg, T))                        # M = U V per xi
        y = output_transform(m.reshape(16, O, T), n, geom.oh, geom.ow, bias)  # Y = A^T M A + b
        if n == N:
            out = y                                                         # one chunk: no copy
        else:
            out[s:s + step] = y
    return out, saved


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias): Gh = A g A^T, dx = B (U^T Gh) B^T, dw = G^T (Gh V^T) G, db = sum g."""
    x, geom, weight = saved.x, saved.geom, saved.weight
    u = _kept_u(saved, weight_transform, needs[0])                          # U, for dx
    if saved.batch or saved.blocks is not None:
        return _backward_channels_last(saved, u, g, needs)
    N, C, H, W = x.shape
    O, Cg, groups, step = weight.shape[0], weight.shape[1], geom.groups, saved.step
    Og = O // groups
    u4 = None if u is None else u.reshape(16, groups, Og, Cg)
    dx = np.empty(x.shape, dtype=x.dtype) if needs[0] else None
    du = np.zeros((16, groups, Og, Cg), dtype=x.dtype) if needs[1] else None
    for s in range(0, N, step):
        gh = grad_output_transform(g[s:s + step])                           # (16, O, T)
        T = gh.shape[2]
        gh4 = gh.reshape(16, groups, Og, T)
        if needs[0]:
            dv = matmul(u4, gh4, trans_a=True)                              # (16, G, Cg, T)
            part = input_grad_transform(dv.reshape(16, C, T), min(N, s + step) - s, H, W,
                                        geom.pt, geom.pl, geom.oh, geom.ow)
            if step >= N:
                dx = part                                                   # one chunk: no copy
            else:
                dx[s:s + step] = part
        if needs[1]:
            v = input_transform(x[s:s + step], geom.pt, geom.pl, geom.oh, geom.ow)   # V again
            du += matmul(gh4, v.reshape(16, groups, Cg, T), trans_b=True)
    dweight = weight_grad_transform(du.reshape(16, groups * Og, Cg)) if needs[1] else None
    return dx, dweight, (_bias_grad(g) if needs[2] else None)


def _backward_channels_last(saved, u, g, needs):
    """The backward of the whole-batch plan or of the blocks plan."""
    x, geom = saved.x, saved.geom
    N, C, H, W = x.shape
    O, Cg = saved.weight.shape[:2]
    dx = np.empty((N if needs[0] else 0, C, H, W), x.dtype)
    if u is None:                               # no dx wanted: the kernel reads no U
        u = np.empty((16, O, Cg), x.dtype)
    if saved.batch:
        du = np.empty((16, O, Cg) if needs[1] else (0, O, Cg), x.dtype)
        with blas_threads(1):
            _batch_backward(x, u, g, dx, du, geom.pt, geom.pl, gemm_for(x.dtype))
    else:
        edges, per_block = saved.blocks
        parts = np.zeros((len(edges) - 1 if needs[1] else 0, 16, O, Cg), x.dtype)
        with blas_threads(1):
            _blocks_backward(x, u, g, dx, parts, geom.pt, geom.pl, edges, per_block, gemm_for(x.dtype))
        du = _sum_parts(parts) if needs[1] else None
    dweight = weight_grad_transform(du) if needs[1] else None
    return (dx if needs[0] else None), dweight, (_bias_grad(g) if needs[2] else None)
