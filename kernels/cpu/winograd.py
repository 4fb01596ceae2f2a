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
each applied once down the columns and once along the rows.

Parallel plan: one prange iteration per block of (n, c) or (n, o) planes; it owns every value of
V / y / Gh that its planes produce (a tile belongs to one plane), so there are no races, and it
allocates its scratch rows once per block rather than once per plane. Along a tile row the inner
loops run over tx: V[xi, c, t0 + tx] is contiguous there, so they vectorise.
"""
import numpy as np
from numba import prange

from ._jit import kernel

PLANES_PER_BLOCK = 16


@kernel(parallel=False)
def tiles(oh, ow):
    return (oh + 1) // 2, (ow + 1) // 2


@kernel
def input_transform(x, pt, pl, oh, ow):
    N, C, H, W = x.shape
    th, tw = tiles(oh, ow)
    Hp, Wp = 2 * th + 2, 2 * tw + 2
    rows, cols = min(H, Hp - pt), min(W, Wp - pl)
    V = np.empty((16, C, N * th * tw), dtype=x.dtype)
    planes = N * C
    for blk in prange((planes + PLANES_PER_BLOCK - 1) // PLANES_PER_BLOCK):
        xp = np.empty((Hp, Wp), dtype=x.dtype)         # one plane, zero-padded to what tiles read
        h = np.empty((4, 4, tw), dtype=x.dtype)        # h[k, j, tx] = (d B)[k, j] of tile tx
        for p in range(blk * PLANES_PER_BLOCK, min(planes, (blk + 1) * PLANES_PER_BLOCK)):
            n, c = p // C, p % C
            xp[:, :] = 0
            for a in range(rows):
                for b in range(cols):
                    xp[pt + a, pl + b] = x[n, c, a, b]
            for ty in range(th):
                for k in range(4):                     # along the rows: d B
                    r = xp[2 * ty + k]
                    for tx in range(tw):
                        d0, d1, d2, d3 = r[2 * tx], r[2 * tx + 1], r[2 * tx + 2], r[2 * tx + 3]
                        h[k, 0, tx] = d0 - d2
                        h[k, 1, tx] = d1 + d2
                        h[k, 2, tx] = d2 - d1
                        h[k, 3, tx] = d1 - d3
                t0 = (n * th + ty) * tw
                for j in range(4):                     # down the columns: B^T (d B)
                    for tx in range(tw):
                        e0, e1, e2, e3 = h[0, j, tx], h[1, j, tx], h[2, j, tx], h[3, j, tx]
                        V[j, c, t0 + tx] = e0 - e2
                        V[4 + j, c, t0 + tx] = e1 + e2
                        V[8 + j, c, t0 + tx] = e2 - e1
                        V[12 + j, c, t0 + tx] = e1 - e3
    return V


@kernel
def output_transform(m, N, oh, ow):
    _, O, T = m.shape
    th, tw = tiles(oh, ow)
    y = np.empty((N, O, oh, ow), dtype=m.dtype)
    planes = N * O
    for blk in prange((planes + PLANES_PER_BLOCK - 1) // PLANES_PER_BLOCK):
        r = np.empty((2, 4, tw), dtype=m.dtype)        # r[i, b, tx] = (A^T m)[i, b] of tile tx
        for p in range(blk * PLANES_PER_BLOCK, min(planes, (blk + 1) * PLANES_PER_BLOCK)):
            n, o = p // O, p % O
            for ty in range(th):
                t0 = (n * th + ty) * tw
                for b in range(4):                     # down the columns: A^T m
                    for tx in range(tw):
                        m0, m1 = m[b, o, t0 + tx], m[4 + b, o, t0 + tx]
                        m2, m3 = m[8 + b, o, t0 + tx], m[12 + b, o, t0 + tx]
                        r[0, b, tx] = m0 + m1 + m2
                        r[1, b, tx] = m1 - m2 - m3
                for i in range(min(2, oh - 2 * ty)):   # along the rows: (A^T m) A, cropped
                    out = y[n, o, 2 * ty + i]
                    for tx in range(ow // 2):
                        out[2 * tx] = r[i, 0, tx] + r[i, 1, tx] + r[i, 2, tx]
                        out[2 * tx + 1] = r[i, 1, tx] - r[i, 2, tx] - r[i, 3, tx]
                    if ow % 2:                         # an odd width: the last tile's left column
                        tx = tw - 1
                        out[2 * tx] = r[i, 0, tx] + r[i, 1, tx] + r[i, 2, tx]
    return y


@kernel
def grad_output_transform(g):
    N, O, oh, ow = g.shape
    th, tw = tiles(oh, ow)
    Gh = np.empty((16, O, N * th * tw), dtype=g.dtype)
    planes = N * O
    for blk in prange((planes + PLANES_PER_BLOCK - 1) // PLANES_PER_BLOCK):
        gp = np.empty((2 * th, 2 * tw), dtype=g.dtype)  # the plane, zero-padded to whole tiles
        u = np.empty((2, 4, tw), dtype=g.dtype)         # u[i, b, tx] = (g A^T)[i, b] of tile tx
        for p in range(blk * PLANES_PER_BLOCK, min(planes, (blk + 1) * PLANES_PER_BLOCK)):
            n, o = p // O, p % O
            gp[:, :] = 0
            for a in range(oh):
                for b in range(ow):
                    gp[a, b] = g[n, o, a, b]
            for ty in range(th):
                for i in range(2):                     # along the rows: g A^T
                    r = gp[2 * ty + i]
                    for tx in range(tw):
                        g0, g1 = r[2 * tx], r[2 * tx + 1]
                        u[i, 0, tx] = g0
                        u[i, 1, tx] = g0 + g1
                        u[i, 2, tx] = g0 - g1
                        u[i, 3, tx] = -g1
                t0 = (n * th + ty) * tw
                for b in range(4):                     # down the columns: A (g A^T)
                    for tx in range(tw):
                        e0, e1 = u[0, b, tx], u[1, b, tx]
                        Gh[b, o, t0 + tx] = e0
                        Gh[4 + b, o, t0 + tx] = e0 + e1
                        Gh[8 + b, o, t0 + tx] = e0 - e1
                        Gh[12 + b, o, t0 + tx] = -e1
    return Gh


@kernel
def weight_transform(w, flip=False):
    O, Cg = w.shape[0], w.shape[1]
    U = np.empty((16, O, Cg), dtype=w.dtype)
    half = 0.5  # exact in any precision
    for o in prange(O):
        k = np.empty((3, 3), dtype=w.dtype)
        gw = np.empty((4, 3), dtype=w.dtype)
        for c in range(Cg):
            for i in range(3):
                for j in range(3):
                    k[i, j] = w[o, c, 2 - i, 2 - j] if flip else w[o, c, i, j]
            for j in range(3):                         # down the columns: G w
                gw[0, j] = k[0, j]
                gw[1, j] = (k[0, j] + k[1, j] + k[2, j]) * half
                gw[2, j] = (k[0, j] - k[1, j] + k[2, j]) * half
                gw[3, j] = k[2, j]
            for a in range(4):                         # along the rows: (G w) G^T
                U[4 * a, o, c] = gw[a, 0]
                U[4 * a + 1, o, c] = (gw[a, 0] + gw[a, 1] + gw[a, 2]) * half
                U[4 * a + 2, o, c] = (gw[a, 0] - gw[a, 1] + gw[a, 2]) * half
                U[4 * a + 3, o, c] = gw[a, 2]
    return U


@kernel
def weight_grad_transform(du):
    _, O, Cg = du.shape
    dw = np.empty((O, Cg, 3, 3), dtype=du.dtype)
    half = 0.5
    for o in prange(O):
        s = np.empty((3, 4), dtype=du.dtype)
        for c in range(Cg):
            for b in range(4):                         # down the columns: G^T dU
                d0, d1, d2, d3 = du[b, o, c], du[4 + b, o, c], du[8 + b, o, c], du[12 + b, o, c]
                s[0, b] = d0 + (d1 + d2) * half
                s[1, b] = (d1 - d2) * half
                s[2, b] = (d1 + d2) * half + d3
            for i in range(3):                         # along the rows: (G^T dU) G
                dw[o, c, i, 0] = s[i, 0] + (s[i, 1] + s[i, 2]) * half
                dw[o, c, i, 1] = (s[i, 1] - s[i, 2]) * half
                dw[o, c, i, 2] = (s[i, 1] + s[i, 2]) * half + s[i, 3]
    return dw
