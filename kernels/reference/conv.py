"""Convolution, reference version: im2col + one matrix product, and its backward, in NumPy.

This file is the specification: kernels/cpu/conv.py (Numba) and kernels/cuda/conv.py compute
exactly the same functions. `geom` is a ConvGeometry (kernels/geometry.py):

Shapes
    N        batch size
    C, O     input and output channels;  G = geom.groups,  Cg = C / G,  Og = O / G
    H, W     input height and width
    kh, kw   kernel height and width;  Kg = Cg*kh*kw, one column's length per group
    oh, ow   output height and width:  OH = (H + pt + pb - dil_h*(kh-1) - 1) // sh + 1
    L        oh * ow, the number of output positions

Layout of the columns
    cols[n, c*kh*kw + i*kw + j, oy*ow + ox] = x[n, c, oy*sh - pt + i*dil_h, ox*sw - pl + j*dil_w]
    and 0 where that pixel lies outside the input (in the padding).

The convolution is then one batched matrix product per group, already in NCHW order:

    forward     out[n, g]  = W[g] @ cols[n, g] + b        (Og, Kg) @ (Kg, L) -> (Og, L)
    backward    dW[g]      = sum_n g[n, g] @ cols[n, g]^T   (Og, L) @ (L, Kg) -> (Og, Kg)
                dcols[n, g] = W[g]^T @ g[n, g]              (Kg, Og) @ (Og, L) -> (Kg, L)
                dx         = col2im(dcols)                 overlapping windows add up
                db         = g summed over n, oy, ox
"""
import numpy as np


def _padded(x, geom):
    """x (N, C, H, W) with geom's zeros around it: pt on top, pl left, pb below, pr right."""
    return np.pad(x, ((0, 0), (0, 0), (geom.pt, geom.pb), (geom.pl, geom.pr)))


def _tap(geom, i, j):
    """The slices of the padded input that kernel tap (i, j) reads, one pixel per output."""
    top, left = i * geom.dil_h, j * geom.dil_w
    return (slice(top, top + (geom.oh - 1) * geom.sh + 1, geom.sh),
            slice(left, left + (geom.ow - 1) * geom.sw + 1, geom.sw))


def im2col(x, geom):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow): every receptive field unrolled into a column."""
    N, C = x.shape[:2]
    xp = _padded(x, geom)
    cols = np.empty((N, C, geom.kh, geom.kw, geom.oh, geom.ow), dtype=x.dtype)
    for i in range(geom.kh):
        for j in range(geom.kw):
            rows, columns = _tap(geom, i, j)
            cols[:, :, i, j] = xp[:, :, rows, columns]
    return cols.reshape(N, C * geom.kh * geom.kw, geom.oh * geom.ow)


def col2im(cols, geom, H, W):
    """The adjoint of im2col: cols (N, C*kh*kw, oh*ow) -> dx (N, C, H, W).

    Every input pixel receives the sum of the column entries that were copied from it (a pixel
    under several overlapping windows gets several contributions); entries that came from the
    padding are dropped.
    """
    N, C = cols.shape[0], cols.shape[1] // (geom.kh * geom.kw)
    cols = cols.reshape(N, C, geom.kh, geom.kw, geom.oh, geom.ow)
    dxp = np.zeros((N, C, geom.pt + H + geom.pb, geom.pl + W + geom.pr), dtype=cols.dtype)
    for i in range(geom.kh):
        for j in range(geom.kw):
            rows, columns = _tap(geom, i, j)
            dxp[:, :, rows, columns] += cols[:, :, i, j]   # within one tap the pixels are distinct
    return np.ascontiguousarray(dxp[:, :, geom.pt:geom.pt + H, geom.pl:geom.pl + W])


def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = W @ im2col(x) + b, per group. -> (out, saved for conv2d_backward)."""
    N, O, G = x.shape[0], weight.shape[0], geom.groups
    cols = im2col(x, geom).reshape(N, G, -1, geom.oh * geom.ow)       # (N, G, Kg, L)
    w3 = weight.reshape(G, O // G, -1)                                 # (G, Og, Kg)
    out = np.matmul(w3, cols).reshape(N, O, geom.oh, geom.ow)          # (N, G, Og, L)
    if bias is not None:
        out += bias.reshape(1, O, 1, 1)
    return out, (x, weight, cols, geom)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias) for grad_out g (N, O, oh, ow); needs[i]: is input i's gradient
    wanted (x, weight, bias)? None for those that are not."""
    x, weight, cols, geom = saved
    N, C, H, W = x.shape
    O, G = weight.shape[0], geom.groups
    g4 = g.reshape(N, G, O // G, -1)                                   # (N, G, Og, L)
    w3 = weight.reshape(G, O // G, -1)                                 # (G, Og, Kg)
    dx = dweight = dbias = None
    if needs[0]:
        dcols = np.matmul(w3.transpose(0, 2, 1), g4)                   # W^T @ g  (N, G, Kg, L)
        dx = col2im(dcols.reshape(N, -1, geom.oh * geom.ow), geom, H, W)
    if needs[1]:
        dweight = np.matmul(g4, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight.shape)
    if len(needs) > 2 and needs[2]:
        dbias = g.sum(axis=(0, 2, 3))
    return dx, dweight, dbias
