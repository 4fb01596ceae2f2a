"""Convolution, Numba version: the functions of kernels/reference/conv.py (read it first: what is
computed), and the CPU's plan for computing it fast.

Shapes (geom is a ConvGeometry, kernels/geometry.py)
    N        batch size;  C, O channels in and out;  G = geom.groups,  Og = O / G
    H, W     input height and width;  kh, kw kernel;  Kg = (C / G)*kh*kw
    oh, ow   output height and width;  L = oh * ow
    cols[n, c*kh*kw + i*kw + j, oy*ow + ox] = x[n, c, oy*sh - pt + i*dil_h, ox*sw - pl + j*dil_w]
    (0 where that pixel lies in the padding)

im2col and col2im work on one zero-padded (n, c) plane at a time, as the reference does: then
output row oy of cols row (c, i, j) is a plain copy of padded row oy*sh + i*dil_h from column
j*dil_w on (stride sw), with no bounds tests in the inner loops. col2im adds every cols row back
into a zero padded plane the same way, in the reference's (i, j, oy, ox) order, and copies the
plane's interior out, so the sums agree with the reference bit for bit. Without padding the
plane is x's (dx's) own: no copy in or out. Stride 1 has a loop of its own, a plain copy that
LLVM turns into vector moves (LeNet's conv2: im2col 25% faster, the layer 7% faster). Maps of
short output rows (ow < GATHER_BELOW: ResNet's 4x4 and 2x2 maps) go entry by entry through a
table of where each tap of each window reads (_tap_sources) instead, as rows of 2 or 4 pixels
cost more in loop overhead than in copying.

Indices are flat and unsigned (np.uint64): a signed index could be negative, which NumPy reads
from the end, so the compiler must test every one and cannot emit plain vector copies; on short
rows (LeNet's are 10 or 28 long) that overhead was the whole cost. (`u(...)` everywhere: mixing
uint64 with int64 would make Numba compute in float64.)

Parallel plan (every prange iteration owns what it writes, so there are no races):
    im2col  one iteration per (n, c) input plane: it writes the kh*kw rows of cols that plane
            feeds, and nothing else.
    col2im  one iteration per (n, c) input plane: it gathers every contribution to that plane.
            (A prange over the rows of cols would scatter-add into shared pixels: a race.)

The plan of conv2d_forward / conv2d_backward (the same results as the reference, to rounding):
    1. Winograd: a 3x3 kernel, stride 1, no dilation, padding <= 2 and at least
       WINOGRAD_MIN_CHANNELS channels per group in and out goes through Winograd's F(2x2, 3x3)
       (kernels/cpu/winograd.py; kernels/reference/winograd.py derives it): 2.25x fewer
       multiplications, which pays once the channel products outweigh the transforms: not on
       the 2x2 and 4x4 maps of a small batch (WINOGRAD_MIN_TILES), where transforming the
       weights (16 O*Cg values, forward and backward) costs more than the products save
       (256->256 at 4x4, forward and backward: 64 tiles 6.3 ms against im2col's 8.2, 32 tiles
       4.9 against 3.0). A batch of few tiles runs whole, its 16 products shared out by the
       threads; a larger one in blocks of samples whose transformed tiles stay in the core's cache
       between the transforms and the products (winograd.py says how).
       Layers of 64+ channels and 64+ 4x4 tiles (_winograd_f4.suits) take F(4x4, 3x3) instead: 2.25
       multiplications per output and channel rather than 4, at float32 errors of 1e-5 of the
       output's scale (AlphaGo's 192->192 layer, forward and backward: 33-39 ms against 47).
       A larger stride-1 kernel (5x5, 6x6) goes the same way cut into 3x3 pieces, stacked as
       input channels (kernels/cpu/_winograd_pieces.py): 16 multiplications per output and
       channel for a 5x5 kernel against 25 (AlexNet's conv2 at batch 32, forward and backward:
       301-307 ms against 315-346 folded).
    2. Slices: a batch of small per-sample products (LeNet's layers) is cut into one slice per
       thread, and one parallel kernel (_slices, a prange over the slices) runs each slice a
       sample at a time (_slice): its im2col, its GEMMs (NumPy's own OpenBLAS called from inside
       the kernel on one thread, _blas.py) and its col2im back to back, so that the sample's
       columns (LeNet's conv2: 60 kB) stay in the core's cache instead of a whole batch's (7.7
       MB at batch 128) going out to memory and back. The backward rebuilds them (nothing is
       kept). LeNet-5's training step (batch 64, steps alternated in one process): 3.7 ms
       against 4.8 in chunks, and 5.1 with the slices on helper threads (_threads.run_slices:
       Numba's spinning threads keep them off the cores). Needs NumPy's 64-bit-integer
       OpenBLAS; elsewhere the batch goes in chunks (4). One parallel kernel for both passes,
       which calls _slice through its address (kernels/cpu/_address.py) so that LLVM does not
       optimise a second copy of it inside the parallel region: a fresh `minicnn train` reaches
       its first batch in 3.5-3.7 s against 5.4-6.4 with the call compiled in
       (cpu_measurements.md).
    3. Folded: small maps (oh*ow < FOLD_BELOW) under many weights (Og*Kg >= FOLD_MIN_WEIGHTS:
       ResNet's later stages and its 1x1 layers at 64x64, not LeNet's) make each sample's product
       a thin one that BLAS runs slowly; the batch is folded into the product instead,
       one GEMM per group over every sample's pixels at once:
           colsT (G, Kg, N*L) = the columns with the batch moved inside;  outT = W @ colsT
           dW = gT @ colsT^T;   dcolsT = W^T @ gT
       _folded_im2col writes colsT and _folded_col2im reads dcolsT in that layout, so what
       is left to pay is a transposed copy of the output and one of its gradient. The
       columns are rebuilt for dW rather than kept (memory).
    4. Chunks: otherwise the batch goes through im2col + one batched GEMM in chunks of samples
       whose columns fit in CHUNK_BYTES: buffers of that size are reused by malloc from chunk to
       chunk (kernels/cpu/_memory.py), while every fresh large buffer costs a page fault per
       page. The backward recomputes the columns unless the whole batch was one chunk.
    In plans 3 and 4, a 1x1 kernel with stride 1, or a kernel the size of its input (LeNet-5's
    C5), without padding needs no im2col: its columns are the input, reshaped.
Figures behind these choices: benchmarks/results/cpu_measurements.md.
"""
import types

import numpy as np
from numba import prange

from . import _winograd_f4, _winograd_pieces, winograd
from ._address import address_of, call_at
from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for
from ._jit import kernel, serial_twin, sized
from ._threads import blas_threads, slice_count
from .gemm import matmul

u = np.uint64

WORKSPACE_BYTES = 256 * 2**20  # never allocate a larger im2col buffer for one chunk of samples
CHUNK_BYTES = 16 * 2**20       # the chunk size aimed at (plan 4)
WINOGRAD = True                # plan 1 on or off
WINOGRAD_MIN_CHANNELS = 16     # ... for layers with at least this many channels per group in and out
WINOGRAD_MIN_TILES = 64        # ... and at least this many 2x2 output tiles in the batch
SLICES = True                  # plan 2 on or off
TRANSPOSE_IN_BLOCKS = 1 << 16  # dW transposed back by _transpose_blocks from this many values
FOLD_BELOW = 1024              # plan 3 for maps of fewer output pixels than this (and N > 1)
FOLD_MIN_WEIGHTS = 4096        # ... and at least this many weights per group (Og * Kg)


@kernel(parallel=False)
def _row_strides(N, C, kk, L, folded):
    """Where row (n, k) of the columns starts, k = c*kh*kw + i*kw + j: n*sn + k*sk. Plain
    (N, C*kh*kw, L): sn = C*kh*kw*L, sk = L. Folded (C*kh*kw, N*L), the batch inside the
    rows (plan 3): sn = L, sk = N*L."""
    return (L, N * L) if folded else (C * kk * L, L)


@kernel(parallel=False)
def _plane(xf, p, H, W, pt, pl, pb, pr):
    """Input plane p of the flat x, zero-padded, flat, and its row length. Without padding it is
    x's own plane: no copy (LeNet's conv2 spends a quarter of its im2col on the copy)."""
    if pt == 0 and pl == 0 and pb == 0 and pr == 0:
        return xf[p * H * W:(p + 1) * H * W], W
    Wp = pl + W + pr
    xp = np.zeros((pt + H + pb) * Wp, dtype=xf.dtype)
    for a in range(H):
        src, dst = u(p * H * W + a * W), u((pt + a) * Wp + pl)
        for b in range(u(W)):
            xp[dst + b] = xf[src + b]
    return xp, Wp


@kernel
def _im2col(x, cols, geom, folded):
    """cols (N, C*kh*kw, L), or folded (C*kh*kw, N*L), C-contiguous, filled from x."""
    N, C, H, W = x.shape
    kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, groups, oh, ow = geom
    kk, L = kh * kw, oh * ow
    sn, sk = _row_strides(N, C, kk, L, folded)
    xf, cf = x.reshape(-1), cols.reshape(-1)        # flat views: plane p = (n, c) starts at p*H*W
    for p in prange(N * C):
        n, c = p // C, p % C
        xp, Wp = _plane(xf, p, H, W, pt, pl, pb, pr)
        for i in range(kh):
            for j in range(kw):
                row = n * sn + (c * kk + i * kw + j) * sk   # where cols row (c, i, j) of sample n starts
                for oy in range(oh):
                    dst, src = u(row + oy * ow), u((oy * sh + i * dil_h) * Wp + j * dil_w)
                    if sw == 1:                             # a plain copy LLVM vectorises: 25% faster
                        for ox in range(u(ow)):
                            cf[dst + ox] = xp[src + ox]
                    else:
                        for ox in range(u(ow)):
                            cf[dst + ox] = xp[src + ox * u(sw)]


@kernel
def _col2im(cols, dx, geom, folded):
    """dx (N, C, H, W), C-contiguous, overwritten with the adjoint of im2col applied to cols
    (N, C*kh*kw, L), or folded (C*kh*kw, N*L)."""
    N, C, H, W = dx.shape
    kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, groups, oh, ow = geom
    kk, L = kh * kw, oh * ow
    sn, sk = _row_strides(N, C, kk, L, folded)
    padded = pt > 0 or pl > 0 or pb > 0 or pr > 0
    Hp, Wp = pt + H + pb, pl + W + pr             # the plane with its padding
    cf, df = cols.reshape(-1), dx.reshape(-1)
    for p in prange(N * C):
        n, c = p // C, p % C
        xp = np.empty(Hp * Wp, dtype=cols.dtype) if padded else df[p * H * W:(p + 1) * H * W]
        xp[:] = 0                                   # this plane's gradient (padding included)
        for i in range(kh):
            for j in range(kw):
                row = n * sn + (c * kk + i * kw + j) * sk
                for oy in range(oh):
                    src, dst = u(row + oy * ow), u((oy * sh + i * dil_h) * Wp + j * dil_w)
                    if sw == 1:
                        for ox in range(u(ow)):
                            xp[dst + ox] += cf[src + ox]
                    else:
                        for ox in range(u(ow)):
                            xp[dst + ox * u(sw)] += cf[src + ox]
        for a in range(H if padded else 0):        # the interior; what fell on padding is dropped
            src, dst = u((pt + a) * Wp + pl), u(p * H * W + a * W)
            for b in range(u(W)):
                df[dst + b] = xp[src + b]


_im2col_serial, _col2im_serial = serial_twin(_im2col), serial_twin(_col2im)


# ---- im2col on maps of short rows: a gather through a table of taps ------------------------
# A 2x2 map's rows are 2 pixels long: the loops above spend more on each row (its bounds, its
# loop) than on its copy, and ResNet-18's three 512->512 layers on 2x2 maps spent 0.9 ms in each
# im2col of 1.2 MB. Below GATHER_BELOW output columns, every entry comes through a table of
# where each tap of each window reads instead: 4x faster there, 2x on 4x4 maps, slower on long
# rows (figures: benchmarks/results/cpu_measurements.md).
GATHER_BELOW = 8               # output rows shorter than this go through the table


@kernel(parallel=False)
def _tap_sources(H, W, geom):
    """src (kh*kw, L): where window l's tap t reads in its (n, c) plane, y*W + x with
    y = oy*sh - pt + i*dil_h, x = ox*sw - pl + j*dil_w (t = i*kw + j, l = oy*ow + ox); -1 when
    that pixel lies in the padding."""
    kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, groups, oh, ow = geom
    src = np.empty((kh * kw, oh * ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            for oy in range(oh):
                for ox in range(ow):
                    y, x = oy * sh - pt + i * dil_h, ox * sw - pl + j * dil_w
                    src[i * kw + j, oy * ow + ox] = y * W + x if 0 <= y < H and 0 <= x < W else -1
    return src


@kernel
def _im2col_gather(x, cols, geom, folded):
    """_im2col through the table: cols row (c, t) of sample n, entry l = x's plane (n, c) at
    src[t, l], or 0."""
    N, C, H, W = x.shape
    kk, L = geom.kh * geom.kw, geom.oh * geom.ow
    sn, sk = _row_strides(N, C, kk, L, folded)
    src = _tap_sources(H, W, geom)
    xf, cf = x.reshape(-1), cols.reshape(-1)
    for p in prange(N * C):
        n, c, plane = p // C, p % C, p * H * W
        for t in range(kk):
            row = u(n * sn + (c * kk + t) * sk)
            for l in range(L):
                s = src[t, l]
                cf[row + u(l)] = xf[u(plane + s)] if s >= 0 else 0


@kernel
def _col2im_gather(cols, dx, geom, folded):
    """_col2im through the table: plane (n, c) of dx += cols row (c, t) of sample n, entry l,
    at src[t, l] (in the reference's (i, j, oy, ox) order: the same sums)."""
    N, C, H, W = dx.shape
    kk, L = geom.kh * geom.kw, geom.oh * geom.ow
    sn, sk = _row_strides(N, C, kk, L, folded)
    src = _tap_sources(H, W, geom)
    cf, df = cols.reshape(-1), dx.reshape(-1)
    for p in prange(N * C):
        n, c, plane = p // C, p % C, p * H * W
        df[plane:plane + H * W] = 0
        for t in range(kk):
            row = u(n * sn + (c * kk + t) * sk)
            for l in range(L):
                s = src[t, l]
                if s >= 0:
                    df[u(plane + s)] += cf[row + u(l)]


def _by_rows(geom, n, rows, table):
    """The kernel for this geometry and n entries of columns: the row copies, or the table on
    short output rows; threads or not (sized)."""
    return sized(table if geom.ow < GATHER_BELOW else rows, n)


def im2col(x, geom):
    """cols (N, C*kh*kw, oh*ow) of x (N, C, H, W): see the legend."""
    N, C = x.shape[:2]
    cols = np.empty((N, C * geom.kh * geom.kw, geom.oh * geom.ow), dtype=x.dtype)
    _by_rows(geom, cols.size, _im2col, _im2col_gather)(np.ascontiguousarray(x), cols, geom, False)
    return cols


def col2im(cols, geom, H, W):
    """dx (N, C, H, W): every column entry added back to the pixel it was copied from."""
    N, C = cols.shape[0], cols.shape[1] // (geom.kh * geom.kw)
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    _by_rows(geom, cols.size, _col2im, _col2im_gather)(np.ascontiguousarray(cols), dx, geom, False)
    return dx


def _folded_im2col(x, geom):
    """colsT (C*kh*kw, N*oh*ow): im2col's columns with the batch inside the rows (plan 3)."""
    N, C = x.shape[:2]
    cols = np.empty((C * geom.kh * geom.kw, N * geom.oh * geom.ow), dtype=x.dtype)
    _by_rows(geom, cols.size, _im2col, _im2col_gather)(np.ascontiguousarray(x), cols, geom, True)
    return cols


def _folded_col2im(colsT, geom, N, H, W):
    """dx (N, C, H, W) = col2im of columns laid out as _folded_im2col's."""
    C = colsT.shape[0] // (geom.kh * geom.kw)
    dx = np.empty((N, C, H, W), dtype=colsT.dtype)
    _by_rows(geom, colsT.size, _col2im, _col2im_gather)(np.ascontiguousarray(colsT), dx, geom, True)
    return dx


# ---- the plan ------------------------------------------------------------------------------
def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = W @ im2col(x) + b, per group. -> (out, saved for conv2d_backward)."""
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    if _winograd_suits(x, weight, geom):
        if geom.winograd_shaped:                                        # 3x3, stride 1
            return _winograd_f4.plan_for(x, weight, geom).conv2d_forward(x, weight, bias, geom)
        if _winograd_pieces.suits(geom):                                # 5x5 or 6x6, stride 1
            return _winograd_pieces.conv2d_forward(x, weight, bias, geom)
    N, (O, Kg) = x.shape[0], (weight.shape[0], weight[0].size)
    cols_bytes = _columns_bytes(x, weight, geom)
    if (N > 1 and geom.oh * geom.ow < FOLD_BELOW and O * Kg >= FOLD_MIN_WEIGHTS * geom.groups
            and cols_bytes <= WORKSPACE_BYTES):
        return _forward_folded(x, weight, bias, geom)
    edges = _batch_slices(N, O * Kg * geom.oh * geom.ow)
    if SLICES and len(edges) > 2 and gemm_for(x.dtype) is not None:
        return _forward_in_slices(x, weight, bias, geom, np.array(edges, dtype=np.int64))
    return _forward_in_chunks(x, weight, bias, geom)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias), None where needs[i] is False (x, weight, bias)."""
    needs = (needs[0], needs[1], len(needs) > 2 and needs[2])
    g = np.ascontiguousarray(g, dtype=saved.x.dtype)
    backward = {"winograd": winograd.conv2d_backward, "winograd-f4": _winograd_f4.conv2d_backward,
                "winograd-pieces": _winograd_pieces.conv2d_backward,
                "slices": _backward_in_slices,
                "folded": _backward_folded, "chunks": _backward_in_chunks}[saved.plan]
    return backward(saved, g, needs)


def _winograd_suits(x, weight, geom):
    """Plan 1's thresholds: enough channels per group in and out, and enough output tiles in the
    batch (a 5x5 kernel cut into pieces makes a 3x3 convolution of the same output size)."""
    O, Cg = weight.shape[:2]
    th, tw = winograd.tiles(geom.oh, geom.ow)
    return (WINOGRAD and min(Cg, O // geom.groups) >= WINOGRAD_MIN_CHANNELS
            and x.shape[0] * th * tw >= WINOGRAD_MIN_TILES)


def _batch_slices(n, macs):
    """Edges [0, ..., n] of the slices the batch runs in at the same time: one per BLAS thread
    when each sample's products (`macs` multiply-adds) are small, else one slice."""
    parts = slice_count(n, macs)
    return [n * i // parts for i in range(parts + 1)]


def _columns_bytes(x, weight, geom, n=None):
    """The size of im2col's columns for n samples (default: the whole batch)."""
    n = x.shape[0] if n is None else n
    return n * weight[0].size * geom.groups * geom.oh * geom.ow * x.dtype.itemsize


def _columns_are_input(geom, H, W):
    """im2col would only copy the input as it is, so it is not run: a 1x1 kernel with stride 1
    (cols (N, C, H*W)), or a kernel the size of the input (LeNet-5's C5: cols (N, C*H*W, 1)),
    without padding or dilation. Either way cols = x.reshape(N, C*kh*kw, L)."""
    unpadded = geom.pt == geom.pl == geom.pb == geom.pr == 0 and geom.dil_h == geom.dil_w == 1
    pointwise = geom.kh == geom.kw == geom.sh == geom.sw == 1
    whole = (geom.kh, geom.kw) == (H, W)
    return unpadded and (pointwise or whole)


def _columns(x, geom):
    if _columns_are_input(geom, *x.shape[2:]):
        return x.reshape(x.shape[0], -1, geom.oh * geom.ow)
    return im2col(x, geom)


# ---- plan 3: the batch folded into one product per group ------------------------------------
#   colsT (G, Kg, N*L)  outT, gT (G, Og, N*L)  w3 (G, Og, Kg)
def _fold(a3, G):
    """(N, G*K, L) -> (G, K, N*L): sample n's pixels become columns n*L .. n*L + L - 1."""
    N, GK, L = a3.shape
    return _swap_leading(a3).reshape(G, GK // G, N * L)


def _unfold(aT, N):
    """(G, K, N*L) -> (N, G*K, L), the inverse of _fold."""
    G, K, NL = aT.shape
    return _swap_leading(aT.reshape(G * K, N, NL // N))


def _swap_leading(a):
    """(P, Q, L) -> (Q, P, L), a new C-contiguous array."""
    P, Q, L = a.shape
    out = np.empty((Q, P, L), dtype=a.dtype)
    sized(_swap_rows, a.size)(a, out)
    return out


@kernel
def _swap_rows(a, out):
    """out[q, p] = a[p, q] for a (P, Q, L), out (Q, P, L): rows of L copied whole. NumPy's copy
    of the transposed view is 2-3x slower on ResNet's small maps (L = 16 or 4), where it steps
    through rows that short on one core (ResNet-50's step spent 13 ms in it)."""
    P, Q, L = a.shape
    for q in prange(Q):
        for p in range(P):
            for i in range(L):
                out[q, p, i] = a[p, q, i]


def _folded_columns(x, geom, G):
    """colsT (G, Kg, N*L): im2col writes them folded; columns that are the input itself (a 1x1
    layer's) are transposed."""
    if _columns_are_input(geom, *x.shape[2:]):
        return _fold(x.reshape(x.shape[0], -1, geom.oh * geom.ow), G)
    cols = _folded_im2col(x, geom)
    return cols.reshape(G, cols.shape[0] // G, -1)


def _forward_folded(x, weight, bias, geom):
    N, O, G = x.shape[0], weight.shape[0], geom.groups
    w3 = weight.reshape(G, O // G, -1)
    colsT = _folded_columns(x, geom, G)
    out = _unfold(matmul(w3, colsT), N).reshape(N, O, geom.oh, geom.ow)
    if bias is not None:
        out += bias.reshape(1, O, 1, 1)
    # colsT (kh*kw times x for k > 1) is not kept: the backward rebuilds it from x
    return out, types.SimpleNamespace(plan="folded", x=x, weight=weight, geom=geom)


def _backward_folded(saved, g, needs):
    x, weight, geom = saved.x, saved.weight, saved.geom
    N, C, H, W = x.shape
    O, G, L = weight.shape[0], geom.groups, geom.oh * geom.ow
    w3 = weight.reshape(G, O // G, -1)
    gT = _fold(g.reshape(N, O, L), G)
    dx = dweight = None
    if needs[1]:                                    # dW = gT @ colsT^T, in W's own orientation
        dweight = np.empty(weight.shape, dtype=x.dtype)         # fresh: the gradient keeps it
        matmul(gT, _folded_columns(x, geom, G), trans_b=True, out=dweight.reshape(w3.shape))
    if needs[0]:                                    # dcols = W^T @ g, dx = col2im(dcols)
        dcolsT = matmul(w3, gT, trans_a=True)                   # (G, Kg, N*L)
        if _columns_are_input(geom, H, W):
            dx = _unfold(dcolsT, N).reshape(N, C, H, W)
        else:
            dx = _folded_col2im(dcolsT.reshape(-1, N * L), geom, N, H, W)
    return dx, dweight, (g.sum(axis=(0, 2, 3)) if needs[2] else None)


# ---- plan 4: chunks of samples -------------------------------------------------------------
def _forward_in_chunks(x, weight, bias, geom):
    N, O, G, L = x.shape[0], weight.shape[0], geom.groups, geom.oh * geom.ow
    w3 = weight.reshape(G, O // G, -1)                                  # (G, Og, Kg)
    out = np.empty((N, O, geom.oh, geom.ow), dtype=x.dtype)
    step = max(1, min(N, min(CHUNK_BYTES, WORKSPACE_BYTES) // max(_columns_bytes(x, weight, geom, 1), 1)))
    cols = None
    for a in range(0, N, step):
        s = slice(a, a + step)
        cols = _columns(x[s], geom)
        n = cols.shape[0]
        # (G, Og, Kg) @ (n, G, Kg, L) -> (n, G, Og, L), written straight into the NCHW output
        matmul(w3, cols.reshape(n, G, -1, L), out=out[s].reshape(n, G, O // G, L))
        if bias is not None:
            out[s] += bias.reshape(1, O, 1, 1)
    kept = cols if step >= N else None           # the whole batch was one chunk: keep them for dW
    return out, types.SimpleNamespace(plan="chunks", x=x, weight=weight, geom=geom, cols=kept, step=step)


def _backward_in_chunks(saved, g, needs):
    x, weight, geom, step = saved.x, saved.weight, saved.geom, saved.step
    N, C, H, W = x.shape
    O, G, L = weight.shape[0], geom.groups, geom.oh * geom.ow
    g4 = g.reshape(N, G, O // G, L)
    w3 = weight.reshape(G, O // G, -1)                                  # read transposed by the GEMM
    dx = np.empty(x.shape, dtype=x.dtype) if needs[0] else None
    dwt = np.zeros((G, w3.shape[2], O // G), dtype=x.dtype) if needs[1] else None
    for a in range(0, N, step):
        s = slice(a, a + step)
        n = g4[s].shape[0]
        if needs[1]:                                # dW^T += cols @ g^T (kept, or recomputed)
            cols = saved.cols if saved.cols is not None else _columns(x[s], geom)
            _add_weight_grad(dwt, g4[s], cols.reshape(n, G, -1, L))
        if needs[0]:                                # dcols = W^T @ g, dx = col2im(dcols)
            dcols = matmul(w3, g4[s], trans_a=True)                     # (n, G, Kg, L)
            part = dcols.reshape(n, C, H, W) if _columns_are_input(geom, H, W) else col2im(dcols.reshape(n, -1, L), geom, H, W)
            if step >= N:
                dx = part                           # one chunk: no copy
            else:
                dx[s] = part
    saved.cols = None                               # free them; a second backward recomputes them
    dweight = _as_weight(dwt, weight.shape) if needs[1] else None
    return dx, dweight, (g.sum(axis=(0, 2, 3)) if needs[2] else None)


def _as_weight(dwt3, shape):
    """dW (O, Cg, kh, kw) from its transpose dwt3 (G, Kg, Og), as a fresh C-contiguous array:
    the optimiser's kernels stream it, and the gradient keeps it without a copy."""
    dweight = np.empty(shape, dtype=dwt3.dtype)
    out3 = dweight.reshape(dwt3.shape[0], dwt3.shape[2], dwt3.shape[1])
    if dwt3.size < TRANSPOSE_IN_BLOCKS:         # small (LeNet's): NumPy's copy, nothing to compile
        out3[...] = dwt3.transpose(0, 2, 1)
    else:
        _transpose_blocks(np.ascontiguousarray(dwt3), out3)
    return dweight


@kernel
def _transpose_blocks(a, out):
    """out[g] = a[g]^T for a (G, R, S), out (G, S, R), in 32x32 blocks that stay in cache: a
    plain strided copy (NumPy's) reads or writes a cache line per element on large matrices
    (ResNet-50's 1x1 weights at batch 1: 78 ms a step, against ~8 blocked)."""
    G, R, S = a.shape
    nr, ns = (R + 31) // 32, (S + 31) // 32
    for job in prange(G * nr * ns):
        g, rest = job // (nr * ns), job % (nr * ns)
        r0, s0 = (rest // ns) * 32, (rest % ns) * 32
        for s in range(s0, min(s0 + 32, S)):
            for r in range(r0, min(r0 + 32, R)):
                out[g, s, r] = a[g, r, s]


def _add_weight_grad(dwt3, g4, cols4):
    """dwt3 (G, Kg, Og) += sum_n cols4[n] @ g4[n]^T, for g4 (n, G, Og, L) and cols4 (n, G, Kg, L):
    the weight gradient transposed, in the orientation OpenBLAS runs fastest (the long Kg side
    as the product's rows); the caller transposes the sum once at the end. Several samples go
    through one batched matmul, as many as keep its result under ~4 MB."""
    n = g4.shape[0]
    m = max(1, min(n, (4 * 2**20) // max(dwt3.nbytes, 1)))
    for a in range(0, n, m):
        dwt3 += matmul(cols4[a:a + m], g4[a:a + m], trans_b=True).sum(axis=0)


# ---- plan 2: the batch in slices, one sample at a time ----------------------------------------
#   x, dx (N, C, H, W)  out, g3 (N, O, L)  w3 (G, Og, Kg)
#   x3 (N, C*kh*kw, L): x when its columns are itself (no im2col), else empty
#   cols, dcols (1, G*Kg, L): one sample's columns and their gradient, the slice's own
#   dwt (S, G, Kg, Og), db (S, O): each slice's share of dW^T and db, summed by the caller
# An empty bias, out, g3, dx, dwt or db means "none" / "not needed".
@kernel(parallel=False)
def _slice(x, x3, w3, bias, out, g3, dx, dwt, db, geom, lo, hi, gemm, forward):
    """Samples lo .. hi - 1 one at a time, their columns in cols (and dcols) only: the forward
    (forward=True: out from x), or the backward (dx, and this slice's dwt (G, Kg, Og) and db (O,)
    from g3). BLAS is on one thread: the caller runs the slices at once."""
    G, Og, Kg = w3.shape
    L = out.shape[2] if forward else g3.shape[2]
    one, zero = x.dtype.type(1), x.dtype.type(0)
    cols, dcols = np.empty((1, G * Kg, L), x.dtype), np.empty((1, G * Kg, L), x.dtype)
    for n in range(lo, hi):
        c = x3[n:n + 1] if x3.size > 0 else cols          # the sample's columns: x itself, or im2col's
        if x3.size == 0 and (forward or dwt.size > 0):
            _im2col_serial(x[n:n + 1], cols, geom, False)
        for grp in range(G if forward else 0):   # out[n, grp] (Og, L) = W[grp] (Og, Kg) @ cols[grp] (Kg, L)
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, Og, L, Kg, one, w3[grp].ctypes.data, Kg,
                 c[0, grp * Kg:].ctypes.data, L, zero, out[n, grp * Og:].ctypes.data, L)
        for o in range(bias.size):                                       # + b
            for i in range(L):
                out[n, o, i] += bias[o]
        for grp in range(G if dwt.size > 0 else 0):   # dW^T[grp] (Kg, Og) += cols[grp] @ g[n, grp]^T
            gemm(ROW_MAJOR, NO_TRANS, TRANS, Kg, Og, L, one, c[0, grp * Kg:].ctypes.data, L,
                 g3[n, grp * Og:].ctypes.data, L, one, dwt[grp].ctypes.data, Og)
        d = dx[n].reshape(1, G * Kg, L) if x3.size > 0 and dx.size > 0 else dcols   # dcols, or dx itself
        for grp in range(G if dx.size > 0 else 0):    # dcols[grp] (Kg, L) = W[grp]^T @ g[n, grp] (Og, L)
            gemm(ROW_MAJOR, TRANS, NO_TRANS, Kg, L, Og, one, w3[grp].ctypes.data, Kg,
                 g3[n, grp * Og:].ctypes.data, L, zero, d[0, grp * Kg:].ctypes.data, L)
        if dx.size > 0 and x3.size == 0:                                 # dx = col2im(dcols)
            _col2im_serial(dcols, dx[n:n + 1], geom, False)
        for o in range(db.size):                                         # db += sum of g
            acc = zero
            for i in range(L):
                acc += g3[n, o, i]
            db[o] += acc


@kernel
def _slices(slice_at, x, x3, w3, bias, out, g3, dx, dwt, db, geom, edges, gemm, forward):
    """_slice of every slice at once, slice s the samples edges[s] .. edges[s+1] - 1, called
    through its address (slice_at, from _run_slices) so that this prange compiles without a copy
    of it: 0.3 s instead of 2.3 on a first run (kernels/cpu/_address.py)."""
    for s in prange(edges.size - 1):
        call_at(slice_at, (x, x3, w3, bias, out, g3, dx, dwt[s], db[s], geom, edges[s], edges[s + 1],
                           gemm, forward))


def _run_slices(x, x3, w3, bias, out, g3, dx, dwt, db, geom, edges, forward):
    """_slices with BLAS on one thread: each slice's products run on its own core."""
    gemm = gemm_for(x.dtype)
    slice_at = address_of(_slice, (x, x3, w3, bias, out, g3, dx, dwt[0], db[0], geom, 0, 0, gemm, forward))
    with blas_threads(1):
        _slices(slice_at, x, x3, w3, bias, out, g3, dx, dwt, db, geom, edges, gemm, forward)


def _columns_itself(x, geom):
    """x3 for the slice kernels: x as its own columns (N, C*kh*kw, L), or empty: run im2col."""
    if _columns_are_input(geom, *x.shape[2:]):
        return x.reshape(x.shape[0], -1, geom.oh * geom.ow)
    return np.empty((0, 0, 0), x.dtype)


def _forward_in_slices(x, weight, bias, geom, edges):
    N, O, G, L = x.shape[0], weight.shape[0], geom.groups, geom.oh * geom.ow
    out = np.empty((N, O, geom.oh, geom.ow), dtype=x.dtype)
    b1 = np.empty(0, dtype=x.dtype) if bias is None else bias
    S = len(edges) - 1
    no_g, no_dx = np.empty((0, 0, 0), x.dtype), np.empty((0,) + x.shape[1:], x.dtype)
    no_dwt, no_db = np.empty((S, 0, 0, 0), x.dtype), np.empty((S, 0), x.dtype)
    _run_slices(x, _columns_itself(x, geom), weight.reshape(G, O // G, -1), b1, out.reshape(N, O, L),
                no_g, no_dx, no_dwt, no_db, geom, edges, True)
    return out, types.SimpleNamespace(plan="slices", x=x, weight=weight, geom=geom, edges=edges)


def _backward_in_slices(saved, g, needs):
    x, weight, geom, edges = saved.x, saved.weight, saved.geom, saved.edges
    N, C, H, W = x.shape
    O, G, L, S = weight.shape[0], geom.groups, geom.oh * geom.ow, len(edges) - 1
    Og, Kg = O // G, weight[0].size
    dx = np.empty((N if needs[0] else 0, C, H, W), x.dtype)
    dwt = np.zeros((S, G, Kg, Og) if needs[1] else (S, 0, 0, 0), x.dtype)   # one share per slice
    db = np.zeros((S, O if needs[2] else 0), x.dtype)
    _run_slices(x, _columns_itself(x, geom), weight.reshape(G, Og, Kg), np.empty(0, x.dtype),
                np.empty((0, 0, 0), x.dtype), g.reshape(N, O, L), dx, dwt, db, geom, edges, False)
    dweight = _as_weight(dwt.sum(axis=0), weight.shape) if needs[1] else None
    return (dx if needs[0] else None), dweight, (db.sum(axis=0) if needs[2] else None)
