"""Convolution kernels on the GPU (numba.cuda): im2col and its adjoint col2im.

Same functions and signatures as kernels/reference/conv.py (the specification); arrays are
numba.cuda device arrays, C-contiguous. `geom` is a ConvGeometry (kernels/geometry.py); the
kernels themselves take its fields as plain integers.

Shapes
    N batch, C channels, H/W input height/width, kh/kw kernel, sh/sw stride,
    pt/pl padding at the top/left, dh/dw dilation (geom.dil_h, geom.dil_w), oh/ow output height/width, L = oh*ow
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
import types

from numba import cuda

from . import elementwise as E
from . import gemm as GM
from . import reduce as R
from . import winograd
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


def im2col(x, geom):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow)."""
    N, C = x.shape[:2]
    cols = empty((N, C * geom.kh * geom.kw, geom.oh * geom.ow), x.dtype)
    if cols.size:
        _im2col_kernel[blocks(cols.size), THREADS](x, cols, geom.kh, geom.kw, geom.sh, geom.sw, geom.pt, geom.pl,
                                                   geom.dil_h, geom.dil_w, geom.ow)
    return cols


def col2im(cols, geom, H, W):
    """cols (N, C*kh*kw, oh*ow) -> dx (N, C, H, W), the adjoint of im2col (a gather)."""
    N, C = cols.shape[0], cols.shape[1] // (geom.kh * geom.kw)
    dx = empty((N, C, H, W), cols.dtype)
    if dx.size:
        _col2im_kernel[blocks(dx.size), THREADS](cols, dx, geom.kh, geom.kw, geom.sh, geom.sw, geom.pt, geom.pl,
                                                 geom.dil_h, geom.dil_w, geom.oh, geom.ow, scalar(0, cols.dtype))
    return dx


# ---- the plan: Winograd for 3x3 layers (as on the CPU), else im2col + GEMM in chunks -----------
WORKSPACE_BYTES = 256 * 2**20  # the columns of one chunk of samples at most
WINOGRAD = True
WINOGRAD_MIN_CHANNELS = 16     # channels per group in and out (kernels/cpu/conv.py's rule)


def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = W @ im2col(x) + b, per group. -> (out, saved for conv2d_backward)."""
    x, weight = E.contiguous(x), E.contiguous(weight)
    bias = None if bias is None else E.contiguous(bias, x.dtype)
    O, Cg = weight.shape[0], weight.shape[1]
    if WINOGRAD and geom.winograd_shaped and min(Cg, O // geom.groups) >= WINOGRAD_MIN_CHANNELS:
        return winograd.conv2d_forward(x, weight, bias, geom)
    N, G, L = x.shape[0], geom.groups, geom.oh * geom.ow
    w3 = weight.reshape(G, O // G, Cg * geom.kh * geom.kw)
    out = empty((N, O, geom.oh, geom.ow), x.dtype)
    step = _chunk(x, w3, geom)
    for a in range(0, N, step):
        cols = im2col(x[a:a + step], geom)
        n = cols.shape[0]
        GM.matmul(w3, cols.reshape(n, G, w3.shape[2], L), out=out[a:a + step].reshape(n, G, O // G, L))
    if bias is not None:
        E.add(out, bias.reshape(1, O, 1, 1), out=out)
    return out, types.SimpleNamespace(plan="im2col", x=x, weight=weight, geom=geom, step=step)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias), None where needs[i] is False (x, weight, bias)."""
    needs = (needs[0], needs[1], len(needs) > 2 and needs[2])
    g = E.contiguous(g, saved.x.dtype)
    if saved.plan == "winograd":
        return winograd.conv2d_backward(saved, g, needs)
    x, weight, geom, step = saved.x, saved.weight, saved.geom, saved.step
    N, C, H, W = x.shape
    O, G, L = weight.shape[0], geom.groups, geom.oh * geom.ow
    w3 = weight.reshape(G, O // G, -1)
    g4 = g.reshape(N, G, O // G, L)
    dx = empty(x.shape, x.dtype) if needs[0] else None
    dwt = E.zeros((G, w3.shape[2], O // G), x.dtype) if needs[1] else None
    for a in range(0, N, step):
        gs = g4[a:a + step]
        n = gs.shape[0]
        if needs[1]:                                   # dW^T += sum_n cols[n] @ g[n]^T
            cols = im2col(x[a:a + step], geom).reshape(n, G, w3.shape[2], L)
            E.add(dwt, R.sum(GM.matmul(cols, gs, trans_b=True), (0,)), out=dwt)
        if needs[0]:                                   # dx = col2im(W^T @ g)
            dcols = GM.matmul(w3, gs, trans_a=True)
            E.assign(dx[a:a + step], col2im(dcols.reshape(n, -1, L), geom, H, W))
    dweight = E.permute(dwt, (0, 2, 1)).reshape(weight.shape) if needs[1] else None
    return dx, dweight, (R.sum(g, (0, 2, 3)) if needs[2] else None)


def _chunk(x, w3, geom):
    """Samples per chunk: their columns within WORKSPACE_BYTES, at least one."""
    per_sample = w3.shape[0] * w3.shape[2] * geom.oh * geom.ow * x.dtype.itemsize
    return max(1, min(x.shape[0], WORKSPACE_BYTES // max(per_sample, 1)))
