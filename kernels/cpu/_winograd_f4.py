"""Winograd F(4x4, 3x3) for the CPU: 4x4 output tiles from 6x6 input tiles (kernels/reference/
winograd.py derives F(2x2, 3x3); the algebra is the same with these matrices, Lavin & Gray 2015,
interpolation points 0, 1, -1, 2, -2):

    Y = A^T [ (G w G^T) * (B^T d B) ] A          (* elementwise, on 6x6 matrices)

    B^T = [4  0 -5  0  1  0]     G = [ 1/4    0     0  ]     A^T = [1  1  1  1  1  0]
          [0 -4 -4  1  1  0]         [-1/6  -1/6  -1/6 ]           [0  1 -1  2 -2  0]
          [0  4 -4 -1  1  0]         [-1/6   1/6  -1/6 ]           [0  1  1  4  4  0]
          [0 -2 -1  2  1  0]         [1/24  1/12  1/6  ]           [0  1 -1  8 -8  1]
          [0  2 -1 -2  1  0]         [1/24 -1/12  1/6  ]
          [0  4  0 -5  0  1]         [  0     0     1  ]

36 products per 4x4 tile: 2.25 multiplications per output and channel, against F(2x2, 3x3)'s
4 and im2col's 9. The price is rounding: the transforms scale values by up to 8 and 1/24, and
in float32 the outputs carry errors of about 1e-5 of their largest value (F(2x2, 3x3): 5e-7,
direct: 4e-7; float64: 3e-14), well inside what training tolerates. U is 36/9 = 4x the weights
(F(2x2, 3x3): 16/9), so on a batch of few tiles the products stream U and F(2x2, 3x3) is
faster; and the transforms cost more per output, so layers of few channels keep F(2x2, 3x3)
too: suits() says when, from the figures in benchmarks/results/cpu_measurements.md.

Shapes
    alpha = 6 (tile side),  m = 4 (output tile side);  xi = alpha*a + b, 36 positions
    th, tw = ceil(oh / 4), ceil(ow / 4) tiles per sample;  T = N * th * tw (or a block's tiles)
    u (36, O, Cg)  v, dv (36, T, C)  mm, gh (36, T, O): channels innermost, as winograd.py's plans
    du (parts, 36, O, Cg): dU summed over each thread's part of the batch (one part: whole batch)
    xt, ps (4th + 2, 4tw + 2, C): one sample's padded input (or its gradient), channels last
    yt (4th, 4tw, O): one sample's output (or output gradient), channels last

Two plans, winograd.py's. The whole batch at once: every sample's tiles transformed (a prange
over samples), then the 36 products, each over the whole batch's tiles (a prange over xi and
groups, one-thread BLAS calls from the kernel), then the output transform (a prange over
samples). Or, on maps of BLOCK_MIN_TILES tiles or more, blocks: each thread takes a part of the
batch and runs it a block of samples at a time (usually one), transforms, 36 products and
transform back, so that the block's V and M (2 x 1.8 MB for one of VGG's 64-channel 56x56 maps)
are still in cache when the next step reads them; the whole batch's 28 MB were not, and the
layer took 24-25 ms forward and backward against 18 in blocks (maps of 16 or 25 tiles keep the
whole batch: blocks of one sample make products too short for BLAS, AlexNet's conv3 80 -> 125 ms).
Each transform is two passes, down a tile's columns then along its rows, each the matrix's rows
written out as additions (below), in one vector loop over the channels. (Written instead as a
loop over the matrices' nonzero entries, the transforms took 2-3x as long on 64 to 192 channels.)
"""
import sys
import types

import numpy as np
from numba import prange

from ._blas import gemm_for
from ._jit import kernel
from . import winograd
from ._threads import blas_threads, blas_threads_now
from .winograd import (_bias_grad, _from_channels_last, _kept_u, _sum_parts, _tile_input_grads, _tile_products,
                       _tile_weight_grads, _to_channels_last)

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
              dtype=np.float64)
ALPHA, M_OUT = 6, 4
ON = True                  # False: every Winograd layer keeps F(2x2, 3x3)
F4_MIN_CHANNELS = 64       # in and out per group, at least
F4_MIN_TILES = 64          # 4x4 output tiles in the batch, at least ...
F4_MAX_TILES = 4096        # ... and at most in a sample or a batch of small maps (V and M: 36 * tiles * (C + O))
BLOCK_MIN_TILES = 64       # maps of at least this many tiles go in blocks of samples ...
BLOCK_BYTES = 2 * 2**20    # ... as many as fit their V and M in this (at least one)


@kernel(parallel=False)
def tiles(oh, ow):
    return (oh + 3) // 4, (ow + 3) // 4


def suits(x, weight, geom):
    """Layers F(4x4, 3x3) computes faster than F(2x2, 3x3) (given a 3x3 stride-1 layer)."""
    O, Cg = weight.shape[:2]
    th, tw = tiles(geom.oh, geom.ow)
    blocks = _blocks(x, O, geom)
    at_once = x.shape[0] * th * tw if blocks is None else blocks[1] * th * tw     # tiles in V
    return (ON and min(Cg, O // geom.groups) >= F4_MIN_CHANNELS and x.shape[0] * th * tw >= F4_MIN_TILES
            and at_once <= F4_MAX_TILES and gemm_for(x.dtype) is not None)


def plan_for(x, weight, geom):
    """The Winograd module for a 3x3 stride-1 layer: this one where it suits, else winograd.py's
    F(2x2, 3x3). (Used by conv.py and by the pieces plan alike.)"""
    return sys.modules[__name__] if suits(x, weight, geom) else winograd


# ---- the transforms of one sample, channels last ------------------------------------------------
# Each transform is its matrix applied once down the columns and once along the rows of a
# tile, channels innermost; the four matrices' rows written out as the additions they are:
#   B^T d :  4d0 - 5d2 + d4,  -4(d1 + d2) + d3 + d4,  4(d1 - d2) - d3 + d4,
#            2(d3 - d1) - d2 + d4,  2(d1 - d3) - d2 + d4,  4d1 - 5d3 + d5
#   A^T m :  m0 + m1 + m2 + m3 + m4,  m1 - m2 + 2(m3 - m4),  m1 + m2 + 4(m3 + m4),
#            m1 - m2 + 8(m3 - m4) + m5
#   A g   :  g0,  g0 + g1 + g2 + g3,  g0 - g1 + g2 - g3,  g0 + 2g1 + 4g2 + 8g3,
#            g0 - 2g1 + 4g2 - 8g3,  g3
#   B e   :  4e0,  4(e2 - e1) + 2(e4 - e3) + 4e5,  -5e0 - 4(e1 + e2) - e3 - e4,
#            e1 - e2 + 2(e3 - e4) - 5e5,  e0 + e1 + e2 + e3 + e4,  e5
# (B e and A g are the adjoints: B^T's and A^T's columns.) Each helper takes the six (or four)
# channel vectors in and out as rows of C-contiguous arrays, so the loop over channels is a
# plain vector loop.
@kernel(parallel=False)
def _bt6(d0, d1, d2, d3, d4, d5, v0, v1, v2, v3, v4, v5):
    for c in range(v0.size):
        a0, a1, a2, a3, a4, a5 = d0[c], d1[c], d2[c], d3[c], d4[c], d5[c]
        v0[c] = 4 * a0 - 5 * a2 + a4
        v1[c] = -4 * (a1 + a2) + a3 + a4
        v2[c] = 4 * (a1 - a2) - a3 + a4
        v3[c] = 2 * (a3 - a1) - a2 + a4
        v4[c] = 2 * (a1 - a3) - a2 + a4
        v5[c] = 4 * a1 - 5 * a3 + a5


@kernel(parallel=False)
def _at6(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3, bias, add_bias):
    for c in range(y0.size):
        b = bias[c] if add_bias else 0
        a0, a1, a2, a3, a4, a5 = m0[c], m1[c], m2[c], m3[c], m4[c], m5[c]
        y0[c] = a0 + a1 + a2 + a3 + a4 + b
        y1[c] = a1 - a2 + 2 * (a3 - a4) + b
        y2[c] = a1 + a2 + 4 * (a3 + a4) + b
        y3[c] = a1 - a2 + 8 * (a3 - a4) + a5 + b


@kernel(parallel=False)
def _a6(g0, g1, g2, g3, h0, h1, h2, h3, h4, h5):
    for c in range(h0.size):
        a0, a1, a2, a3 = g0[c], g1[c], g2[c], g3[c]
        h0[c] = a0
        h1[c] = a0 + a1 + a2 + a3
        h2[c] = a0 - a1 + a2 - a3
        h3[c] = a0 + 2 * a1 + 4 * a2 + 8 * a3
        h4[c] = a0 - 2 * a1 + 4 * a2 - 8 * a3
        h5[c] = a3


@kernel(parallel=False)
def _b6(e0, e1, e2, e3, e4, e5, p0, p1, p2, p3, p4, p5, add):
    """p = B e, or p += B e."""
    for c in range(p0.size):
        a0, a1, a2, a3, a4, a5 = e0[c], e1[c], e2[c], e3[c], e4[c], e5[c]
        q0, q1 = 4 * a0, 4 * (a2 - a1) + 2 * (a4 - a3) + 4 * a5
        q2, q3 = -5 * a0 - 4 * (a1 + a2) - a3 - a4, a1 - a2 + 2 * (a3 - a4) - 5 * a5
        q4 = a0 + a1 + a2 + a3 + a4
        if add:
            p0[c] += q0
            p1[c] += q1
            p2[c] += q2
            p3[c] += q3
            p4[c] += q4
            p5[c] += a5
        else:
            p0[c], p1[c], p2[c], p3[c], p4[c], p5[c] = q0, q1, q2, q3, q4, a5


@kernel(parallel=False)
def _input_tiles(xt, v, t0, th, tw, e):
    """v[6a + b, t0 + ty*tw + tx, :] = (B^T d B)[a, b] for every 6x6 tile d of xt (Hp, Wp, C),
    tiles 4 apart. e (6, Wp, C) is scratch: B^T d down one band of rows, every column at once."""
    for ty in range(th):
        r = 4 * ty
        for col in range(xt.shape[1]):                         # down the columns: B^T d
            _bt6(xt[r, col], xt[r + 1, col], xt[r + 2, col], xt[r + 3, col], xt[r + 4, col], xt[r + 5, col],
                 e[0, col], e[1, col], e[2, col], e[3, col], e[4, col], e[5, col])
        for tx in range(tw):                                   # along the rows: (B^T d) B
            t, q = t0 + ty * tw + tx, 4 * tx
            for a in range(ALPHA):
                k = ALPHA * a
                _bt6(e[a, q], e[a, q + 1], e[a, q + 2], e[a, q + 3], e[a, q + 4], e[a, q + 5],
                     v[k, t], v[k + 1, t], v[k + 2, t], v[k + 3, t], v[k + 4, t], v[k + 5, t])


@kernel(parallel=False)
def _input_grad_tiles(dv, t0, th, tw, ps, r):
    """ps (Hp, Wp, C) += B dV B^T of every tile, added where the tile was read (tiles overlap
    by 2). r (6, 6, C) scratch: r[i, b] = row i of B dV, column b."""
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for b in range(ALPHA):                             # down the columns: B dV
                _b6(dv[b, t], dv[6 + b, t], dv[12 + b, t], dv[18 + b, t], dv[24 + b, t], dv[30 + b, t],
                    r[0, b], r[1, b], r[2, b], r[3, b], r[4, b], r[5, b], False)
            for i in range(ALPHA):                             # along the rows: (B dV) B^T
                row, q = ps[4 * ty + i], 4 * tx
                _b6(r[i, 0], r[i, 1], r[i, 2], r[i, 3], r[i, 4], r[i, 5],
                    row[q], row[q + 1], row[q + 2], row[q + 3], row[q + 4], row[q + 5], True)


@kernel(parallel=False)
def _output_tiles(mm, t0, y3, bias, yt, r):
    """y3 (O, oh, ow) = A^T M A + b from one sample's tiles of mm (36, T, O), through yt
    (4th, 4tw, O); r (4, 6, O) scratch: r[i, b] = row i of A^T M."""
    th, tw = tiles(*y3.shape[1:])
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for b in range(ALPHA):                             # down the columns: A^T M
                _at6(mm[b, t], mm[6 + b, t], mm[12 + b, t], mm[18 + b, t], mm[24 + b, t], mm[30 + b, t],
                     r[0, b], r[1, b], r[2, b], r[3, b], bias, False)
            for i in range(M_OUT):                             # along the rows: (A^T M) A + b
                row, q = yt[4 * ty + i], 4 * tx
                _at6(r[i, 0], r[i, 1], r[i, 2], r[i, 3], r[i, 4], r[i, 5],
                     row[q], row[q + 1], row[q + 2], row[q + 3], bias, bias.size > 0)
    _from_channels_last(yt, y3, 0, 0)                # the tiles into place, cropped at the edges


@kernel(parallel=False)
def _grad_output_tiles(g3, gh, t0, yt, r):
    """gh[:, t0 + t, :] = A g A^T of every 4x4 tile of g3 (O, oh, ow), through yt (4th, 4tw, O),
    whose rows and columns past oh and ow stay 0. r (6, 4, O) scratch: r[a, j] = row a of A g,
    column j."""
    th, tw = tiles(*g3.shape[1:])
    _to_channels_last(g3, yt, 0, 0)
    for ty in range(th):
        for tx in range(tw):
            t, y, q = t0 + ty * tw + tx, 4 * ty, 4 * tx
            for j in range(M_OUT):                             # down the columns: A g
                _a6(yt[y, q + j], yt[y + 1, q + j], yt[y + 2, q + j], yt[y + 3, q + j],
                    r[0, j], r[1, j], r[2, j], r[3, j], r[4, j], r[5, j])
            for a in range(ALPHA):                             # along the rows: (A g) A^T
                k = ALPHA * a
                _a6(r[a, 0], r[a, 1], r[a, 2], r[a, 3],
                    gh[k, t], gh[k + 1, t], gh[k + 2, t], gh[k + 3, t], gh[k + 4, t], gh[k + 5, t])


# ---- the weights: G w G^T and its adjoint --------------------------------------------------------
@kernel
def _weight_transform(w, g, u):
    """u[6a + b, o, c] = (G w[o, c] G^T)[a, b]; one prange iteration per output channel, its
    values written a run of channels at a time."""
    O, Cg = w.shape[:2]
    for o in prange(O):
        t = np.empty((ALPHA, 3, Cg), w.dtype)              # t[a, j, c] = (G w[o, c])[a, j]
        for a in range(ALPHA):
            for j in range(3):
                for c in range(Cg):
                    t[a, j, c] = g[a, 0] * w[o, c, 0, j] + g[a, 1] * w[o, c, 1, j] + g[a, 2] * w[o, c, 2, j]
        for a in range(ALPHA):
            for b in range(ALPHA):
                dst = u[ALPHA * a + b, o]
                for c in range(Cg):
                    dst[c] = t[a, 0, c] * g[b, 0] + t[a, 1, c] * g[b, 1] + t[a, 2, c] * g[b, 2]


@kernel
def _weight_grad_transform(du, g, dw):
    """dw[o, c] = G^T dU[:, o, c] G, the adjoint of _weight_transform, dU read a run of
    channels at a time."""
    O, Cg = dw.shape[:2]
    for o in prange(O):
        t = np.zeros((3, ALPHA, Cg), du.dtype)             # t[i, b, c] = (G^T dU[:, o, c])[i, b]
        for a in range(ALPHA):
            for b in range(ALPHA):
                src = du[ALPHA * a + b, o]
                for i in range(3):
                    if g[a, i] != 0:
                        for c in range(Cg):
                            t[i, b, c] += g[a, i] * src[c]
        for c in range(Cg):
            for i in range(3):
                for j in range(3):
                    acc = du.dtype.type(0)
                    for b in range(ALPHA):
                        acc += t[i, b, c] * g[b, j]
                    dw[o, c, i, j] = acc


def weight_transform(w):
    """w (O, Cg, 3, 3) -> U (36, O, Cg):  U[6a + b, o, c] = (G w[o, c] G^T)[a, b]."""
    u = np.empty((36, *w.shape[:2]), w.dtype)
    _weight_transform(w, G.astype(w.dtype), u)
    return u


def weight_grad_transform(du):
    """dU (36, O, Cg) -> dw (O, Cg, 3, 3) = G^T dU G, the adjoint of weight_transform."""
    dw = np.empty((*du.shape[1:], 3, 3), du.dtype)
    _weight_grad_transform(du, G.astype(du.dtype), dw)
    return dw


# ---- the whole batch --------------------------------------------------------------------------
@kernel(parallel=False)
def _sample_input_tiles(x3, v, t0, th, tw, pt, pl):
    """V = B^T d B of one sample's tiles t0 .. t0 + th*tw - 1, with scratch of its own."""
    C = x3.shape[0]
    xt, e = np.zeros((4 * th + 2, 4 * tw + 2, C), x3.dtype), np.empty((ALPHA, 4 * tw + 2, C), x3.dtype)
    _to_channels_last(x3, xt, pt, pl)
    _input_tiles(xt, v, t0, th, tw, e)


@kernel
def _batch_forward(x, u, bias, out, pt, pl, gemm):
    """out = A^T [U V] A + b: the batch's tiles transformed, the 36 products shared out, back.
    The products are winograd.py's (_tile_products and its two twins), 36 positions instead of 16."""
    N, C = x.shape[:2]
    O, G_ = u.shape[1], C // u.shape[2]
    th, tw = tiles(out.shape[2], out.shape[3])
    P = th * tw
    T = N * P
    v, mm = np.empty((36, T, C), x.dtype), np.empty((36, T, O), x.dtype)
    for n in prange(N):                                              # V = B^T d B
        _sample_input_tiles(x[n], v, n * P, th, tw, pt, pl)
    for job in prange(36 * G_):             # M[xi] (T, Og) = V[xi] (T, Cg) @ U[xi]^T, per group
        _tile_products(job, v, u, mm, T, gemm)
    for n in prange(N):                                              # y = A^T M A + b
        yt, r = np.empty((4 * th, 4 * tw, O), x.dtype), np.empty((M_OUT, ALPHA, O), x.dtype)
        _output_tiles(mm, n * P, out[n], bias, yt, r)


@kernel
def _batch_backward(x, u, g, dx, du, pt, pl, gemm):
    """dx (N, C, H, W) and du (36, O, Cg), each empty when not wanted."""
    N, C = x.shape[:2]
    O, G_ = u.shape[1], C // u.shape[2]
    th, tw = tiles(g.shape[2], g.shape[3])
    P = th * tw
    T = N * P
    gh, v = np.empty((36, T, O), x.dtype), np.empty((36, T, C), x.dtype)    # v holds dV, then V
    for n in prange(N):                                              # Gh = A g A^T
        yt, r = np.zeros((4 * th, 4 * tw, O), x.dtype), np.empty((ALPHA, M_OUT, O), x.dtype)
        _grad_output_tiles(g[n], gh, n * P, yt, r)
    if dx.size > 0:
        for job in prange(36 * G_):         # dV[xi] (T, Cg) = Gh[xi] (T, Og) @ U[xi], per group
            _tile_input_grads(job, gh, u, v, T, gemm)
        for n in prange(N):                                          # dx = B dV B^T
            ps, r = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype), np.empty((ALPHA, ALPHA, C), x.dtype)
            _input_grad_tiles(v, n * P, th, tw, ps, r)
            _from_channels_last(ps, dx[n], pt, pl)
    if du.size > 0:
        for n in prange(N):                                          # V again
            _sample_input_tiles(x[n], v, n * P, th, tw, pt, pl)
        for job in prange(36 * G_):         # dU[xi] (Og, Cg) = Gh[xi]^T (Og, T) @ V[xi] (T, Cg)
            _tile_weight_grads(job, gh, v, du, T, x.dtype.type(0), gemm)


@kernel
def _blocks_forward(x, u, bias, out, pt, pl, edges, per_block, gemm):
    """_batch_forward in blocks of per_block samples, one part of the batch per thread: each
    block's V and M stay in cache from its transforms to its products and back."""
    N, C = x.shape[:2]
    O, G_ = u.shape[1], C // u.shape[2]
    th, tw = tiles(out.shape[2], out.shape[3])
    P, nb = th * tw, per_block * th * tw
    for part in prange(edges.size - 1):
        v, mm = np.empty((36, nb, C), x.dtype), np.empty((36, nb, O), x.dtype)
        xt, e = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype), np.empty((ALPHA, 4 * tw + 2, C), x.dtype)
        yt, r = np.empty((4 * th, 4 * tw, O), x.dtype), np.empty((M_OUT, ALPHA, O), x.dtype)
        for n0 in range(edges[part], edges[part + 1], per_block):
            n1 = min(n0 + per_block, edges[part + 1])
            for n in range(n0, n1):                                      # V = B^T d B
                _to_channels_last(x[n], xt, pt, pl)
                _input_tiles(xt, v, (n - n0) * P, th, tw, e)
            for job in range(36 * G_):
                _tile_products(job, v, u, mm, (n1 - n0) * P, gemm)
            for n in range(n0, n1):                                      # y = A^T M A + b
                _output_tiles(mm, (n - n0) * P, out[n], bias, yt, r)


@kernel
def _blocks_backward(x, u, g, dx, du, pt, pl, edges, per_block, gemm):
    """_batch_backward in blocks; du (parts, 36, O, Cg), each part's sum."""
    N, C = x.shape[:2]
    O, G_ = u.shape[1], C // u.shape[2]
    th, tw = tiles(g.shape[2], g.shape[3])
    P, nb = th * tw, per_block * th * tw
    one = x.dtype.type(1)
    for part in prange(edges.size - 1):
        gh, v = np.empty((36, nb, O), x.dtype), np.empty((36, nb, C), x.dtype)   # v: dV, then V
        yt, rg = np.zeros((4 * th, 4 * tw, O), x.dtype), np.empty((ALPHA, M_OUT, O), x.dtype)
        xt, e = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype), np.empty((ALPHA, 4 * tw + 2, C), x.dtype)
        ps, r = np.empty((4 * th + 2, 4 * tw + 2, C), x.dtype), np.empty((ALPHA, ALPHA, C), x.dtype)
        for n0 in range(edges[part], edges[part + 1], per_block):
            n1 = min(n0 + per_block, edges[part + 1])
            T = (n1 - n0) * P
            for n in range(n0, n1):                                      # Gh = A g A^T
                _grad_output_tiles(g[n], gh, (n - n0) * P, yt, rg)
            if dx.size > 0:
                for job in range(36 * G_):
                    _tile_input_grads(job, gh, u, v, T, gemm)
                for n in range(n0, n1):                                  # dx = B dV B^T
                    ps[:] = 0
                    _input_grad_tiles(v, (n - n0) * P, th, tw, ps, r)
                    _from_channels_last(ps, dx[n], pt, pl)
            if du.size > 0:
                for n in range(n0, n1):                                  # V again
                    _to_channels_last(x[n], xt, pt, pl)
                    _input_tiles(xt, v, (n - n0) * P, th, tw, e)
                for job in range(36 * G_):
                    _tile_weight_grads(job, gh, v, du[part], T, one if n0 > edges[part] else x.dtype.type(0), gemm)


def _blocks(x, O, geom):
    """(edges, per_block) of the blocks plan: samples edges[p] .. edges[p+1] - 1 are thread p's
    part, run per_block samples at a time. None: the whole-batch plan (maps of few tiles, or a
    batch smaller than the threads)."""
    N = x.shape[0]
    parts = blas_threads_now() or 1
    th, tw = tiles(geom.oh, geom.ow)
    if th * tw < BLOCK_MIN_TILES or N < parts:
        return None
    per_sample = 36 * (x.shape[1] + O) * th * tw * x.dtype.itemsize      # its V and M
    per_block = max(1, min(-(-N // parts), BLOCK_BYTES // per_sample))
    return np.array([N * i // parts for i in range(parts + 1)], dtype=np.int64), per_block


def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = A^T [U * V] A (+ b). -> (out, saved for conv2d_backward)."""
    out = np.empty((x.shape[0], weight.shape[0], geom.oh, geom.ow), dtype=x.dtype)
    u, b = weight_transform(weight), np.empty(0, x.dtype) if bias is None else bias
    blocks = _blocks(x, weight.shape[0], geom)
    with blas_threads(1):                  # each product runs on its own core
        if blocks is None:
            _batch_forward(x, u, b, out, geom.pt, geom.pl, gemm_for(x.dtype))
        else:
            _blocks_forward(x, u, b, out, geom.pt, geom.pl, *blocks, gemm_for(x.dtype))
    return out, types.SimpleNamespace(plan="winograd-f4", x=x, weight=weight, geom=geom, blocks=blocks, u=u)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias): Gh = A g A^T, dx = B (U^T Gh) B^T, dw = G^T (Gh V^T) G, db = sum g."""
    x, geom, weight, blocks = saved.x, saved.geom, saved.weight, saved.blocks
    O, Cg = weight.shape[:2]
    u = _kept_u(saved, weight_transform, needs[0])
    u = np.empty((36, O, Cg), x.dtype) if u is None else u                  # no dx: not read
    dx = np.empty((x.shape[0] if needs[0] else 0, *x.shape[1:]), x.dtype)
    parts = 1 if blocks is None else len(blocks[0]) - 1                  # dU: one sum per part
    du = np.empty((parts if needs[1] else 0, 36, O, Cg), x.dtype)
    with blas_threads(1):
        if blocks is None:
            _batch_backward(x, u, g, dx, du[0] if needs[1] else du[:, 0], geom.pt, geom.pl, gemm_for(x.dtype))
        else:
            _blocks_backward(x, u, g, dx, du, geom.pt, geom.pl, *blocks, gemm_for(x.dtype))
    return ((dx if needs[0] else None), (weight_grad_transform(_sum_parts(du)) if needs[1] else None),
            (_bias_grad(g) if needs[2] else None))
