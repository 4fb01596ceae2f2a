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
    conv2d_*_in_slices  one iteration per slice [lo, hi) of the batch: it writes the columns,
            outputs, dx rows of its own samples and its own share of dW^T and db (summed by the
            caller), calling the serial twins and one-thread BLAS.
"""
import numpy as np
from numba import prange

from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for
from ._jit import kernel, serial_twin
from ._threads import openblas, serial

u = np.uint64


@kernel(parallel=False)
def _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """(Hp, Wp): the input plus pt/pl on top/left and what the last window needs below/right."""
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - W - pl)
    return H + pt + pb, W + pl + pr


@kernel
def _im2col(x, cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """cols (N, C*kh*kw, L), C-contiguous, filled from x."""
    N, C, H, W = x.shape
    kk, L = kh * kw, oh * ow
    Hp, Wp = _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
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


@kernel
def _col2im(cols, dx, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """dx (N, C, H, W), C-contiguous, overwritten with the adjoint of im2col applied to cols."""
    N, C, H, W = dx.shape
    kk, L = kh * kw, oh * ow
    Hp, Wp = _padded_shape(H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
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


_im2col_serial, _col2im_serial = serial_twin(_im2col), serial_twin(_col2im)


def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """cols (N, C*kh*kw, oh*ow) of x (N, C, H, W): see the legend."""
    N, C = x.shape[:2]
    cols = np.empty((N, C * kh * kw, oh * ow), dtype=x.dtype)
    (_im2col_serial if serial() else _im2col)(np.ascontiguousarray(x), cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    return cols


def col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """dx (N, C, H, W): every column entry added back to the pixel it was copied from."""
    N = cols.shape[0]
    dx = np.empty((N, cols.shape[1] // (kh * kw), H, W), dtype=cols.dtype)
    (_col2im_serial if serial() else _col2im)(np.ascontiguousarray(cols), dx, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    return dx


# ---- a whole layer in slices: batches of small products (LeNet's) ------------------------------
# One parallel call per pass instead of one Python thread per slice: each prange iteration is a
# slice [lo, hi) of the batch (edges), running its im2col, its GEMMs (NumPy's OpenBLAS, called
# from the kernel on one thread: _blas.py) and its col2im back to back, without the GIL.
#   w3 (G, Og, Kg)  cols, dcols (N, G*Kg, L)  out, g3 (N, O, L)  x, dx (N, C, H, W)
#   dwt (S, G, Kg, Og): each slice's share of dW^T      db (S, O): each slice's share of db
# An empty bias, dx or dwt/db means "none" / "not needed".
@kernel
def _forward_in_slices(x, w3, bias, out, cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges, gemm):
    G, Og, Kg = w3.shape
    L = oh * ow
    one, zero = x.dtype.type(1), x.dtype.type(0)
    for s in prange(edges.size - 1):
        lo, hi = edges[s], edges[s + 1]
        _im2col_serial(x[lo:hi], cols[lo:hi], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        for n in range(lo, hi):
            for g in range(G):   # out[n, group g] (Og, L) = W[g] (Og, Kg) @ cols[n, group g] (Kg, L)
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, Og, L, Kg, one, w3[g].ctypes.data, Kg,
                     cols[n, g * Kg:].ctypes.data, L, zero, out[n, g * Og:].ctypes.data, L)
            for o in range(bias.size):
                b = bias[o]
                for i in range(L):
                    out[n, o, i] += b


@kernel
def _backward_in_slices(x, w3, g3, cols, recompute, dx, dcols, dwt, db,
                        kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges, gemm):
    G, Og, Kg = w3.shape
    L = oh * ow
    one, zero = x.dtype.type(1), x.dtype.type(0)
    for s in prange(edges.size - 1):
        lo, hi = edges[s], edges[s + 1]
        if dwt.size > 0:
            if recompute:
                _im2col_serial(x[lo:hi], cols[lo:hi], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
            for n in range(lo, hi):
                for g in range(G):   # dW^T[g] (Kg, Og) += cols[n, g] (Kg, L) @ g[n, g]^T (L, Og)
                    gemm(ROW_MAJOR, NO_TRANS, TRANS, Kg, Og, L, one, cols[n, g * Kg:].ctypes.data, L,
                         g3[n, g * Og:].ctypes.data, L, one, dwt[s, g].ctypes.data, Og)
        if dx.size > 0:
            for n in range(lo, hi):
                for g in range(G):   # dcols[n, g] (Kg, L) = W[g]^T (Kg, Og) @ g[n, g] (Og, L)
                    gemm(ROW_MAJOR, TRANS, NO_TRANS, Kg, L, Og, one, w3[g].ctypes.data, Kg,
                         g3[n, g * Og:].ctypes.data, L, zero, dcols[n, g * Kg:].ctypes.data, L)
            _col2im_serial(dcols[lo:hi], dx[lo:hi], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        if db.size > 0:
            for n in range(lo, hi):
                for o in range(g3.shape[1]):
                    acc = zero
                    for i in range(L):
                        acc += g3[n, o, i]
                    db[s, o] += acc


def can_run_in_slices(dtype):
    """Whether conv2d_*_in_slices can run here: it needs NumPy's OpenBLAS (see _blas.py)."""
    return gemm_for(dtype) is not None


def conv2d_forward_in_slices(x, w3, bias, out, cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges):
    """out (N, O, L) = W @ im2col(x) + bias, and cols (N, G*Kg, L) = im2col(x), slice by slice."""
    _one_blas_thread(_forward_in_slices, x, w3, bias, out, cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow,
                     np.asarray(edges, dtype=np.int64), gemm_for(x.dtype))


def conv2d_backward_in_slices(x, w3, g3, cols, recompute, dx, dcols, dwt, db,
                              kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges):
    """dx = col2im(W^T g) into dx (via dcols), each slice's dW^T share into dwt[s] (which must
    start at zero) and its db share into db[s]; cols are im2col(x), recomputed if `recompute`."""
    _one_blas_thread(_backward_in_slices, x, w3, g3, cols, recompute, dx, dcols, dwt, db,
                     kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, np.asarray(edges, dtype=np.int64), gemm_for(x.dtype))


def _one_blas_thread(kernel_fn, *args):
    """Run kernel_fn with OpenBLAS on one thread: each slice's GEMMs run on its own core."""
    set_threads, threads = openblas()
    set_threads(1)
    try:
        kernel_fn(*args)
    finally:
        set_threads(threads)
