"""Winograd F(4x4, 3x3) for the CPU: 4x4 output tiles from 6x6 input tiles, the transforms
written from their matrices (kernels/reference/winograd.py derives F(2x2, 3x3); the algebra is
the same with these matrices, Lavin & Gray 2015, interpolation points 0, 1, -1, 2, -2):

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
    th, tw = ceil(oh / 4), ceil(ow / 4) tiles per sample;  T = N * th * tw
    u (36, O, Cg)  v, dv (36, T, C)  mm, gh (36, T, O): channels innermost, as winograd.py's plans
    xt, ps (4th + 2, 4tw + 2, C): one sample's padded input (or its gradient), channels last
    yt (4th, 4tw, O): one sample's output (or output gradient), channels last

The plan is winograd.py's whole-batch plan: every sample's tiles transformed (a prange over
samples), then the 36 products, each over the whole batch's tiles (a prange over xi and groups,
one-thread BLAS calls from the kernel), then the output transform (a prange over samples). Each
transform is two passes over a band of tiles, down the columns then along the rows, and every
pass is the matrix's row times the tile's values: a loop over the matrix's nonzero entries with
a vector loop over the channels inside.
"""
import types

import numpy as np
from numba import prange

from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for
from ._jit import kernel
from ._threads import blas_threads
from .winograd import _bias_grad, _from_channels_last, _to_channels_last

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
              dtype=np.float64)
ALPHA, M_OUT = 6, 4
ON = True                  # False: every Winograd layer keeps F(2x2, 3x3)
F4_MIN_CHANNELS = 128      # in and out per group, at least
F4_MIN_TILES = 64          # 4x4 output tiles in the batch, at least ...
F4_MAX_TILES = 4096        # ... and at most (V and M for the whole batch: 36 * T * (C + O) values)


@kernel(parallel=False)
def tiles(oh, ow):
    return (oh + 3) // 4, (ow + 3) // 4


def suits(x, weight, geom):
    """Layers F(4x4, 3x3) computes faster than F(2x2, 3x3) (given a 3x3 stride-1 layer)."""
    O, Cg = weight.shape[:2]
    th, tw = tiles(geom.oh, geom.ow)
    return (ON and min(Cg, O // geom.groups) >= F4_MIN_CHANNELS and F4_MIN_TILES <= x.shape[0] * th * tw <= F4_MAX_TILES
            and gemm_for(x.dtype) is not None)


# ---- the transforms of one sample, channels last ------------------------------------------------
@kernel(parallel=False)
def _comb(coef, i, src, p0, dp, q0, dq, dst, add):
    """dst (+)= sum_k coef[i, k] * src[p0 + k*dp, q0 + k*dq, :]: row i of a transform matrix
    times the channel vectors of one tile's row or column, the matrix's zeros skipped. src is a
    C-contiguous 3-D array and dst a row of one, so that both inner runs are unit-stride (a
    strided 2-D view would not vectorise)."""
    if not add:
        dst[:] = 0
    for k in range(coef.shape[1]):
        c = coef[i, k]
        if c != 0:
            s = src[p0 + k * dp, q0 + k * dq]
            for ch in range(dst.size):
                dst[ch] += c * s[ch]


@kernel(parallel=False)
def _input_tiles(xt, v, t0, th, tw, bt, e):
    """v[6a + b, t0 + ty*tw + tx, :] = (B^T d B)[a, b] for every 6x6 tile d of xt (Hp, Wp, C),
    tiles 4 apart. e (6, Wp, C) is scratch: B^T d down one band of rows, every column at once."""
    for ty in range(th):
        for col in range(xt.shape[1]):                         # down the columns: B^T d
            for a in range(ALPHA):
                _comb(bt, a, xt, 4 * ty, 1, col, 0, e[a, col], False)
        for tx in range(tw):                                   # along the rows: (B^T d) B
            t = t0 + ty * tw + tx
            for a in range(ALPHA):
                for b in range(ALPHA):
                    _comb(bt, b, e, a, 0, 4 * tx, 1, v[ALPHA * a + b, t], False)


@kernel(parallel=False)
def _input_grad_tiles(dv, t0, th, tw, b_, ps, r):
    """ps (Hp, Wp, C) += B dV B^T of every tile, added where the tile was read (tiles overlap
    by 2). b_ = B (= BT^T); r (6, 6, C) scratch: r[i, b] = row i of B dV, column b."""
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for b in range(ALPHA):                             # down the columns: B dV
                for i in range(ALPHA):
                    _comb(b_, i, dv, b, ALPHA, t, 0, r[i, b], False)
            for i in range(ALPHA):                             # along the rows: (B dV) B^T
                for j in range(ALPHA):
                    _comb(b_, j, r, i, 0, 0, 1, ps[4 * ty + i, 4 * tx + j], True)


@kernel(parallel=False)
def _output_tiles(mm, t0, y3, bias, at, yt, r):
    """y3 (O, oh, ow) = A^T M A + b from one sample's tiles of mm (36, T, O), through yt
    (4th, 4tw, O); r (4, 6, O) scratch: r[i, b] = row i of A^T M."""
    O, oh, ow = y3.shape
    th, tw = tiles(oh, ow)
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for b in range(ALPHA):                             # down the columns: A^T M
                for i in range(M_OUT):
                    _comb(at, i, mm, b, ALPHA, t, 0, r[i, b], False)
            for i in range(M_OUT):                             # along the rows: (A^T M) A
                for j in range(M_OUT):
                    dst = yt[4 * ty + i, 4 * tx + j]
                    _comb(at, j, r, i, 0, 0, 1, dst, False)
                    if bias.size > 0:
                        for o in range(O):
                            dst[o] += bias[o]
    for o in range(O):                       # the tiles into place, cropped where oh, ow end
        for h in range(oh):
            src, dst = yt[h], y3[o, h]
            for w in range(ow):
                dst[w] = src[w, o]


@kernel(parallel=False)
def _grad_output_tiles(g3, gh, t0, a_, yt, r):
    """gh[:, t0 + t, :] = A g A^T of every 4x4 tile of g3 (O, oh, ow), through yt (4th, 4tw, O),
    whose rows and columns past oh and ow stay 0. a_ = A (= AT^T, 6x4); r (6, 4, O) scratch:
    r[a, j] = row a of A g, column j."""
    O, oh, ow = g3.shape
    th, tw = tiles(oh, ow)
    for h in range(oh):
        for w in range(ow):
            dst = yt[h, w]
            for o in range(O):
                dst[o] = g3[o, h, w]
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for j in range(M_OUT):                             # down the columns: A g
                for a in range(ALPHA):
                    _comb(a_, a, yt, 4 * ty, 1, 4 * tx + j, 0, r[a, j], False)
            for a in range(ALPHA):                             # along the rows: (A g) A^T
                for b in range(ALPHA):
                    _comb(a_, b, r, a, 0, 0, 1, gh[ALPHA * a + b, t], False)


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
@kernel
def _batch_forward(x, u, bias, out, pt, pl, gemm, bt, at):
    """out = A^T [U V] A + b: the batch's tiles transformed, the 36 products shared out, back."""
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G_ = C // Cg
    Og = O // G_
    th, tw = tiles(out.shape[2], out.shape[3])
    P = th * tw
    T = N * P
    one, zero = x.dtype.type(1), x.dtype.type(0)
    v, mm = np.empty((36, T, C), x.dtype), np.empty((36, T, O), x.dtype)
    for n in prange(N):                                              # V = B^T d B
        xt = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype)
        e = np.empty((ALPHA, 4 * tw + 2, C), x.dtype)
        _to_channels_last(x[n], xt, pt, pl)
        _input_tiles(xt, v, n * P, th, tw, bt, e)
    for job in prange(36 * G_):             # M[xi] (T, Og) = V[xi] (T, Cg) @ U[xi]^T, per group
        xi, grp = job // G_, job % G_
        gemm(ROW_MAJOR, NO_TRANS, TRANS, T, Og, Cg, one, v[xi, 0, grp * Cg:].ctypes.data, C,
             u[xi, grp * Og:].ctypes.data, Cg, zero, mm[xi, 0, grp * Og:].ctypes.data, O)
    for n in prange(N):                                              # y = A^T M A + b
        yt, r = np.empty((4 * th, 4 * tw, O), x.dtype), np.empty((M_OUT, ALPHA, O), x.dtype)
        _output_tiles(mm, n * P, out[n], bias, at, yt, r)


@kernel
def _batch_backward(x, u, g, dx, du, pt, pl, gemm, bt, at):
    """dx (N, C, H, W) and du (36, O, Cg), each empty when not wanted."""
    N, C = x.shape[:2]
    O, Cg = u.shape[1], u.shape[2]
    G_ = C // Cg
    Og = O // G_
    th, tw = tiles(g.shape[2], g.shape[3])
    P = th * tw
    T = N * P
    one, zero = x.dtype.type(1), x.dtype.type(0)
    b_, a_ = np.ascontiguousarray(bt.T), np.ascontiguousarray(at.T)
    gh, v = np.empty((36, T, O), x.dtype), np.empty((36, T, C), x.dtype)    # v holds dV, then V
    for n in prange(N):                                              # Gh = A g A^T
        yt, r = np.zeros((4 * th, 4 * tw, O), x.dtype), np.empty((ALPHA, M_OUT, O), x.dtype)
        _grad_output_tiles(g[n], gh, n * P, a_, yt, r)
    if dx.size > 0:
        for job in prange(36 * G_):         # dV[xi] (T, Cg) = Gh[xi] (T, Og) @ U[xi], per group
            xi, grp = job // G_, job % G_
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, T, Cg, Og, one, gh[xi, 0, grp * Og:].ctypes.data, O,
                 u[xi, grp * Og:].ctypes.data, Cg, zero, v[xi, 0, grp * Cg:].ctypes.data, C)
        for n in prange(N):                                          # dx = B dV B^T
            ps, r = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype), np.empty((ALPHA, ALPHA, C), x.dtype)
            _input_grad_tiles(v, n * P, th, tw, b_, ps, r)
            _from_channels_last(ps, dx[n], pt, pl)
    if du.size > 0:
        for n in prange(N):                                          # V again
            xt = np.zeros((4 * th + 2, 4 * tw + 2, C), x.dtype)
            e = np.empty((ALPHA, 4 * tw + 2, C), x.dtype)
            _to_channels_last(x[n], xt, pt, pl)
            _input_tiles(xt, v, n * P, th, tw, bt, e)
        for job in prange(36 * G_):         # dU[xi] (Og, Cg) = Gh[xi]^T (Og, T) @ V[xi] (T, Cg)
            xi, grp = job // G_, job % G_
            gemm(ROW_MAJOR, TRANS, NO_TRANS, Og, Cg, T, one, gh[xi, 0, grp * Og:].ctypes.data, O,
                 v[xi, 0, grp * Cg:].ctypes.data, C, zero, du[xi, grp * Og:].ctypes.data, Cg)


def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = A^T [U * V] A (+ b). -> (out, saved for conv2d_backward)."""
    out = np.empty((x.shape[0], weight.shape[0], geom.oh, geom.ow), dtype=x.dtype)
    with blas_threads(1):                  # each product runs on its own core
        _batch_forward(x, weight_transform(weight), np.empty(0, x.dtype) if bias is None else bias, out,
                       geom.pt, geom.pl, gemm_for(x.dtype), BT.astype(x.dtype), AT.astype(x.dtype))
    return out, types.SimpleNamespace(plan="winograd-f4", x=x, weight=weight, geom=geom)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias): Gh = A g A^T, dx = B (U^T Gh) B^T, dw = G^T (Gh V^T) G, db = sum g."""
    x, geom, weight = saved.x, saved.geom, saved.weight
    O, Cg = weight.shape[:2]
    u = weight_transform(weight) if needs[0] else np.empty((36, O, Cg), x.dtype)
    dx = np.empty((x.shape[0] if needs[0] else 0, *x.shape[1:]), x.dtype)
    du = np.empty((36, O, Cg) if needs[1] else (0, O, Cg), x.dtype)
    with blas_threads(1):
        _batch_backward(x, u, g, dx, du, geom.pt, geom.pl, gemm_for(x.dtype), BT.astype(x.dtype),
                        AT.astype(x.dtype))
    return ((dx if needs[0] else None), (weight_grad_transform(du) if needs[1] else None),
            (_bias_grad(g) if needs[2] else None))
