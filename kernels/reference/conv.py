"""Convolution kernels, reference version: im2col and its adjoint col2im, in readable NumPy.

This file is the specification; kernels/cpu/conv.py (Numba) computes exactly the same thing.

Shapes
    N        batch size
    C        input channels
    H, W     input height and width
    kh, kw   kernel height and width
    sh, sw   stride
    pt, pl   padding at the top and on the left (bottom/right padding is implied by oh, ow)
    dh, dw   dilation (the gap between kernel taps; 1 = an ordinary dense kernel)
    oh, ow   output height and width, for a symmetric padding P:
                 OH = (H + 2P - D*(K-1) - 1) // S + 1       (= (H + 2P - K) // S + 1 when D = 1)
    L        oh * ow, the number of output positions

Layout of the columns
    cols[n, c*kh*kw + i*kw + j, oy*ow + ox] = x[n, c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]
    and 0 where that pixel lies outside the input (in the padding).

With this layout a convolution is one batched matrix product, W (O, C*kh*kw) @ cols (N, C*kh*kw, L)
-> (N, O, L), which is already the NCHW output: no transpose needed.
"""
import numpy as np


def _padded(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """x with zeros around it: pt on top, pl on the left, and as many at the bottom/right as the
    last window needs (the 'same' rule puts the odd extra pixel there)."""
    N, C, H, W = x.shape
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - W - pl)
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow): every receptive field unrolled into a column."""
    N, C, H, W = x.shape
    xp = _padded(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    cols = np.empty((N, C, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel tap (i, j) sees, for every output (oy, ox), the padded pixel
            # (oy*sh + i*dh, ox*sw + j*dw): one strided slice of the padded input
            top, left = i * dh, j * dw
            cols[:, :, i, j] = xp[:, :, top:top + (oh - 1) * sh + 1:sh, left:left + (ow - 1) * sw + 1:sw]
    return cols.reshape(N, C * kh * kw, oh * ow)


def col2im(cols, H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow):
    """The adjoint of im2col: cols (N, C*kh*kw, oh*ow) -> dx (N, C, H, W).

    Every input pixel receives the sum of the column entries that were copied from it (a pixel
    under several overlapping windows gets several contributions); entries that came from the
    padding are dropped.
    """
    N = cols.shape[0]
    C = cols.shape[1] // (kh * kw)
    cols = cols.reshape(N, C, kh, kw, oh, ow)
    pb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - W - pl)
    dxp = np.zeros((N, C, H + pt + pb, W + pl + pr), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            # += is safe here: within one slice the pixels are distinct
            dxp[:, :, top:top + (oh - 1) * sh + 1:sh, left:left + (ow - 1) * sw + 1:sw] += cols[:, :, i, j]
    return np.ascontiguousarray(dxp[:, :, pt:pt + H, pl:pl + W])


# ---- a whole layer in slices (the plan of the CPU kernels for LeNet-sized layers) ---------------
# The batch is cut at `edges` into slices [lo, hi); on the CPU each slice runs on its own core.
# Shapes: w3 (G, Og, Kg); cols, dcols (N, G*Kg, L); out, g3 (N, O, L); x, dx (N, C, H, W);
# dwt (S, G, Kg, Og), db (S, O): each slice's share of dW^T and db. An empty bias, dx, dwt or db
# means "none" / "not needed".
def can_run_in_slices(dtype):
    """Whether conv2d_*_in_slices can run: here always (the CPU kernels need OpenBLAS)."""
    return True


def conv2d_forward_in_slices(x, w3, bias, out, cols, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges):
    """out (N, O, L) = W @ im2col(x) + bias, and cols (N, G*Kg, L) = im2col(x), slice by slice."""
    G, Og, Kg = w3.shape
    for lo, hi in zip(edges[:-1], edges[1:]):
        n = hi - lo
        cols[lo:hi] = im2col(x[lo:hi], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        out[lo:hi] = np.matmul(w3, cols[lo:hi].reshape(n, G, Kg, -1)).reshape(n, G * Og, -1)
        if bias.size:
            out[lo:hi] += bias[:, None]


def conv2d_backward_in_slices(x, w3, g3, cols, recompute, dx, dcols, dwt, db,
                              kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, edges):
    """Slice s: dW^T share dwt[s] += sum_n cols[n] @ g[n]^T (per group), db share db[s] += the sum
    of g over samples and positions, dx = col2im(W^T @ g) (dcols holds W^T @ g)."""
    G, Og, Kg = w3.shape
    for s, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        n = hi - lo
        g4 = g3[lo:hi].reshape(n, G, Og, -1)
        if dwt.size:
            if recompute:
                cols[lo:hi] = im2col(x[lo:hi], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
            c4 = cols[lo:hi].reshape(n, G, Kg, -1)
            dwt[s] += np.matmul(c4, g4.transpose(0, 1, 3, 2)).sum(axis=0)
        if dx.size:
            dcols[lo:hi] = np.matmul(w3.transpose(0, 2, 1), g4).reshape(n, G * Kg, -1)
            dx[lo:hi] = col2im(dcols[lo:hi], dx.shape[2], dx.shape[3], kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
        if db.size:
            db[s] += g3[lo:hi].sum(axis=(0, 2))
