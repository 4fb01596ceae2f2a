"""Winograd F(2x2, 3x3) transforms on the GPU (numba.cuda).

Same functions and signatures as kernels/reference/winograd.py, which holds the specification,
the algorithm and the matrices; arrays are numba.cuda device arrays, C-contiguous.

    Y = A^T [ (G w G^T) * (B^T d B) ] A          (* elementwise, on 4x4 matrices)

        B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
              [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
              [0 -1  1  0]         [1/2 -1/2  1/2]
              [0  1  0 -1]         [ 0    0    1 ]

Shapes
    N, C, H, W   input;  O output channels;  Cg = C / groups
    pt, pl       padding at the top and on the left (anything beyond the input reads as 0)
    oh, ow       output height and width, covered by th x tw tiles of 2x2:
                     th = ceil(oh / 2), tw = ceil(ow / 2),  T = N * th * tw
    tile t = (n * th + ty) * tw + tx reads input rows 2*ty - pt .. +3, columns 2*tx - pl .. +3
    V (16, C, T), U (16, O, Cg), M and Gh (16, O, T);  position xi = 4a + b of the 4x4 tile

How the transforms are computed
    A matrix product P X Q^T on a small tile is done in two passes of the same 1-D transform:
    first along every row of X (the "row" helpers below, X Q^T), then down every column of the
    result (P ...). Each 1-D transform is the explicit add/subtract formula of its matrix, e.g.
    B^T (d0, d1, d2, d3) = (d0 - d2, d1 + d2, d2 - d1, d1 - d3); the only multiplication is the
    1/2 of G, by `half` = 0.5 in the data's dtype (so float32 stays float32).

Thread-to-data mapping (every thread owns what it writes: no atomics, no races)
    input_transform:       one thread per (c, t), flat over C*T; reads its 4x4 tile (0 outside
                           the input), writes the 16 values V[:, c, t].
    input_grad_transform:  one thread per input pixel (n, c, y, x); gathers from the (at most
                           four) overlapping tiles that read it, writes dx[n, c, y, x].
    output_transform:      one thread per (o, t), flat over O*T; reads M[:, o, t], writes the
                           2x2 output tile, cropping the parts past oh / ow.
    grad_output_transform: one thread per (o, t); reads the 2x2 gradient tile (0 past oh / ow),
                           writes Gh[:, o, t].
    weight_transform:      one thread per (o, c), flat over O*Cg; reads w[o, c], writes U[:, o, c].
    weight_grad_transform: one thread per (o, c); reads dU[:, o, c], writes dw[o, c].
"""
import types

from numba import cuda

from . import gemm as GM
from . import reduce as R
from ._launch import THREADS, blocks, empty, scalar, zeros


def tiles(oh, ow):
    """(th, tw): how many 2x2 output tiles cover an oh x ow output."""
    return (oh + 1) // 2, (ow + 1) // 2


# ---- the 1-D transforms (one per matrix) ---------------------------------------------------
@cuda.jit(device=True)
def _bt(d0, d1, d2, d3):
    """B^T (d0, d1, d2, d3)."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@cuda.jit(device=True)
def _at(m0, m1, m2, m3):
    """A^T (m0, m1, m2, m3)."""
    return m0 + m1 + m2, m1 - m2 - m3


@cuda.jit(device=True)
def _a(g0, g1):
    """A (g0, g1), the adjoint of A^T."""
    return g0, g0 + g1, g0 - g1, -g1


@cuda.jit(device=True)
def _g(w0, w1, w2, half):
    """G (w0, w1, w2)."""
    return w0, half * (w0 + w1 + w2), half * (w0 - w1 + w2), w2


@cuda.jit(device=True)
def _gt(u0, u1, u2, u3, half):
    """G^T (u0, u1, u2, u3), the adjoint of G."""
    return u0 + half * (u1 + u2), half * (u1 - u2), half * (u1 + u2) + u3


# ---- input transform: V = B^T d B ----------------------------------------------------------
@cuda.jit(device=True)
def _pixel(x, n, c, iy, ix, zero):
    """x[n, c, iy, ix], or 0 where that lies in the padding."""
    if 0 <= iy < x.shape[2] and 0 <= ix < x.shape[3]:
        return x[n, c, iy, ix]
    return zero


@cuda.jit(device=True)
def _input_row(x, n, c, iy, ix, zero):
    """(d B)[i, :] for the tile row i at input row iy starting at column ix: B^T on the row."""
    return _bt(_pixel(x, n, c, iy, ix, zero), _pixel(x, n, c, iy, ix + 1, zero),
               _pixel(x, n, c, iy, ix + 2, zero), _pixel(x, n, c, iy, ix + 3, zero))


@cuda.jit(device=True)
def _tile_of(i, T, th, tw):
    """Thread i of a flat (channel, tile) grid -> (channel, t, n, 2*ty, 2*tx): the channel, the
    tile, its sample and the top-left pixel of its 2x2 output block."""
    t = i % T
    return i // T, t, t // (th * tw), 2 * ((t // tw) % th), 2 * (t % tw)


@cuda.jit(device=True)
def _put_column(out, b, p, q, v0, v1, v2, v3):
    """Column b of a transformed 4x4 tile: out[4a + b, p, q] = v_a for a = 0..3 (the layout of
    V, Gh and U)."""
    out[b, p, q] = v0
    out[4 + b, p, q] = v1
    out[8 + b, p, q] = v2
    out[12 + b, p, q] = v3


@cuda.jit
def _input_transform_kernel(x, v, pt, pl, th, tw, zero):
    i = cuda.grid(1)
    C, T = v.shape[1], v.shape[2]
    if i >= C * T:
        return
    c, t, n, oy, ox = _tile_of(i, T, th, tw)
    y0, x0 = oy - pt, ox - pl             # top-left input pixel of the tile
    r0 = _input_row(x, n, c, y0, x0, zero)
    r1 = _input_row(x, n, c, y0 + 1, x0, zero)
    r2 = _input_row(x, n, c, y0 + 2, x0, zero)
    r3 = _input_row(x, n, c, y0 + 3, x0, zero)
    v0, v1, v2, v3 = _bt(r0[0], r1[0], r2[0], r3[0])
    _put_column(v, 0, c, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _bt(r0[1], r1[1], r2[1], r3[1])
    _put_column(v, 1, c, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _bt(r0[2], r1[2], r2[2], r3[2])
    _put_column(v, 2, c, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _bt(r0[3], r1[3], r2[3], r3[3])
    _put_column(v, 3, c, t, v0, v1, v2, v3)


def input_transform(x, pt, pl, oh, ow):
    """x (N, C, H, W) -> V (16, C, T):  V[4a+b, c, t] = (B^T d B)[a, b] for the 4x4 tile d of t."""
    N, C = x.shape[0], x.shape[1]
    th, tw = tiles(oh, ow)
    v = empty((16, C, N * th * tw), x.dtype)
    if v.size:
        _input_transform_kernel[blocks(C * N * th * tw), THREADS](x, v, pt, pl, th, tw, scalar(0, x.dtype))
    return v


# ---- input gradient transform: dx = sum over tiles of B dV B^T ------------------------------
@cuda.jit(device=True)
def _b(k, e0, e1, e2, e3):
    """Row k of B (e0, e1, e2, e3), B the adjoint of B^T."""
    if k == 0:
        return e0
    if k == 1:
        return e1 - e2 + e3
    if k == 2:
        return e1 + e2 - e0
    return -e3


@cuda.jit
def _input_grad_transform_kernel(dv, dx, pt, pl, th, tw, zero):
    i = cuda.grid(1)
    N, C, H, W = dx.shape
    if i >= N * C * H * W:
        return
    x = i % W
    y = (i // W) % H
    c = (i // (W * H)) % C
    n = i // (W * H * C)
    py = y + pt                           # the pixel in padded coordinates
    px = x + pl
    acc = zero
    for ty in range(py // 2 - 1, py // 2 + 1):     # the (at most 2 x 2) tiles that read it
        if 0 <= ty < th:
            k = py - 2 * ty               # its row in those tiles
            for tx in range(px // 2 - 1, px // 2 + 1):
                if 0 <= tx < tw:
                    t = (n * th + ty) * tw + tx
                    r0 = _b(k, dv[0, c, t], dv[4, c, t], dv[8, c, t], dv[12, c, t])
                    r1 = _b(k, dv[1, c, t], dv[5, c, t], dv[9, c, t], dv[13, c, t])
                    r2 = _b(k, dv[2, c, t], dv[6, c, t], dv[10, c, t], dv[14, c, t])
                    r3 = _b(k, dv[3, c, t], dv[7, c, t], dv[11, c, t], dv[15, c, t])
                    acc += _b(px - 2 * tx, r0, r1, r2, r3)
    dx[n, c, y, x] = acc


def input_grad_transform(dv, N, H, W, pt, pl, oh, ow):
    """dV (16, C, T) -> dx (N, C, H, W), the adjoint of input_transform: each tile adds B dV B^T
    where it was read (a gather: one thread per input pixel sums the tiles covering it)."""
    C = dv.shape[1]
    th, tw = tiles(oh, ow)
    dx = empty((N, C, H, W), dv.dtype)
    if dx.size:
        _input_grad_transform_kernel[blocks(dx.size), THREADS](dv, dx, pt, pl, th, tw, scalar(0, dv.dtype))
    return dx


# ---- output transform: y = A^T m A ---------------------------------------------------------
@cuda.jit(device=True)
def _output_row(m, a, o, t):
    """(m A)[a, :] = A^T on row a of the 4x4 tile M[:, o, t]."""
    return _at(m[4 * a, o, t], m[4 * a + 1, o, t], m[4 * a + 2, o, t], m[4 * a + 3, o, t])


@cuda.jit(device=True)
def _store_output_column(y, n, o, oy, ox, r0, r1, r2, r3, b):
    """Column ox of the 2x2 output tile, A^T (m A)[:, j] + b; rows past the output are cropped."""
    if ox >= y.shape[3]:
        return
    y0, y1 = _at(r0, r1, r2, r3)
    y[n, o, oy, ox] = y0 + b
    if oy + 1 < y.shape[2]:
        y[n, o, oy + 1, ox] = y1 + b


@cuda.jit
def _output_transform_kernel(m, y, bias, th, tw):
    i = cuda.grid(1)
    O, T = m.shape[1], m.shape[2]
    if i >= O * T:
        return
    o, t, n, oy, ox = _tile_of(i, T, th, tw)
    r0 = _output_row(m, 0, o, t)
    r1 = _output_row(m, 1, o, t)
    r2 = _output_row(m, 2, o, t)
    r3 = _output_row(m, 3, o, t)
    _store_output_column(y, n, o, oy, ox, r0[0], r1[0], r2[0], r3[0], bias[o])
    _store_output_column(y, n, o, oy, ox + 1, r0[1], r1[1], r2[1], r3[1], bias[o])


def output_transform(m, N, oh, ow, bias=None):
    """M (16, O, T) -> y (N, O, oh, ow):  the 2x2 output tile of t is A^T m A, plus bias[o]
    when a bias (O,) is given (none: zeros, so that one kernel serves both)."""
    O, T = m.shape[1], m.shape[2]
    th, tw = tiles(oh, ow)
    y = empty((N, O, oh, ow), m.dtype)
    if y.size:
        b = zeros((O,), m.dtype) if bias is None else bias
        _output_transform_kernel[blocks(O * T), THREADS](m, y, b, th, tw)
    return y


# ---- grad output transform: Gh = A g A^T ---------------------------------------------------
@cuda.jit(device=True)
def _grad_row(g, n, o, gy, gx, zero):
    """(g A^T)[i, :] = A on the 2-pixel row gy of the gradient tile (0 past the edge)."""
    g0 = zero
    g1 = zero
    if gy < g.shape[2]:
        if gx < g.shape[3]:
            g0 = g[n, o, gy, gx]
        if gx + 1 < g.shape[3]:
            g1 = g[n, o, gy, gx + 1]
    return _a(g0, g1)


@cuda.jit
def _grad_output_transform_kernel(g, gh, th, tw, zero):
    i = cuda.grid(1)
    O, T = gh.shape[1], gh.shape[2]
    if i >= O * T:
        return
    o, t, n, gy, gx = _tile_of(i, T, th, tw)
    r0 = _grad_row(g, n, o, gy, gx, zero)
    r1 = _grad_row(g, n, o, gy + 1, gx, zero)
    v0, v1, v2, v3 = _a(r0[0], r1[0])
    _put_column(gh, 0, o, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _a(r0[1], r1[1])
    _put_column(gh, 1, o, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _a(r0[2], r1[2])
    _put_column(gh, 2, o, t, v0, v1, v2, v3)
    v0, v1, v2, v3 = _a(r0[3], r1[3])
    _put_column(gh, 3, o, t, v0, v1, v2, v3)


def grad_output_transform(g):
    """g (N, O, oh, ow) -> Gh (16, O, T):  Gh[4a+b, o, t] = (A g_t A^T)[a, b] for the 2x2 tile g_t
    of t (zeros past the edge), the adjoint of output_transform."""
    N, O, oh, ow = g.shape
    th, tw = tiles(oh, ow)
    gh = empty((16, O, N * th * tw), g.dtype)
    if gh.size:
        _grad_output_transform_kernel[blocks(O * N * th * tw), THREADS](g, gh, th, tw, scalar(0, g.dtype))
    return gh


# ---- weight transform: U = G w G^T ---------------------------------------------------------
@cuda.jit(device=True)
def _weight_row(w, o, c, i, half):
    """(w G^T)[i, :] = G on row i of the kernel w[o, c]."""
    return _g(w[o, c, i, 0], w[o, c, i, 1], w[o, c, i, 2], half)


@cuda.jit
def _weight_transform_kernel(w, u, half):
    i = cuda.grid(1)
    O, Cg = w.shape[0], w.shape[1]
    if i >= O * Cg:
        return
    o = i // Cg
    c = i % Cg
    r0 = _weight_row(w, o, c, 0, half)
    r1 = _weight_row(w, o, c, 1, half)
    r2 = _weight_row(w, o, c, 2, half)
    u0, u1, u2, u3 = _g(r0[0], r1[0], r2[0], half)
    _put_column(u, 0, o, c, u0, u1, u2, u3)
    u0, u1, u2, u3 = _g(r0[1], r1[1], r2[1], half)
    _put_column(u, 1, o, c, u0, u1, u2, u3)
    u0, u1, u2, u3 = _g(r0[2], r1[2], r2[2], half)
    _put_column(u, 2, o, c, u0, u1, u2, u3)
    u0, u1, u2, u3 = _g(r0[3], r1[3], r2[3], half)
    _put_column(u, 3, o, c, u0, u1, u2, u3)


def weight_transform(w):
    """w (O, Cg, 3, 3) -> U (16, O, Cg):  U[4a+b, o, c] = (G w[o, c] G^T)[a, b]."""
    O, Cg = w.shape[0], w.shape[1]
    u = empty((16, O, Cg), w.dtype)
    if u.size:
        _weight_transform_kernel[blocks(O * Cg), THREADS](w, u, scalar(0.5, w.dtype))
    return u


# ---- weight grad transform: dw = G^T dU G --------------------------------------------------
@cuda.jit(device=True)
def _weight_grad_row(du, a, o, c, half):
    """(dU G)[a, :] = G^T on row a of the 4x4 tile dU[:, o, c]."""
    return _gt(du[4 * a, o, c], du[4 * a + 1, o, c], du[4 * a + 2, o, c], du[4 * a + 3, o, c], half)


@cuda.jit(device=True)
def _store_gt_column(dw, j, o, c, r0, r1, r2, r3, half):
    """Column j of G^T (dU G): dw[o, c, i, j] for i = 0..2."""
    w0, w1, w2 = _gt(r0, r1, r2, r3, half)
    dw[o, c, 0, j] = w0
    dw[o, c, 1, j] = w1
    dw[o, c, 2, j] = w2


@cuda.jit
def _weight_grad_transform_kernel(du, dw, half):
    i = cuda.grid(1)
    O, Cg = du.shape[1], du.shape[2]
    if i >= O * Cg:
        return
    o = i // Cg
    c = i % Cg
    r0 = _weight_grad_row(du, 0, o, c, half)
    r1 = _weight_grad_row(du, 1, o, c, half)
    r2 = _weight_grad_row(du, 2, o, c, half)
    r3 = _weight_grad_row(du, 3, o, c, half)
    _store_gt_column(dw, 0, o, c, r0[0], r1[0], r2[0], r3[0], half)
    _store_gt_column(dw, 1, o, c, r0[1], r1[1], r2[1], r3[1], half)
    _store_gt_column(dw, 2, o, c, r0[2], r1[2], r2[2], r3[2], half)


def weight_grad_transform(du):
    """dU (16, O, Cg) -> dw (O, Cg, 3, 3):  dw[o, c] = G^T dU[:, o, c] G, the adjoint of
    weight_transform."""
    O, Cg = du.shape[1], du.shape[2]
    dw = empty((O, Cg, 3, 3), du.dtype)
    if dw.size:
        _weight_grad_transform_kernel[blocks(O * Cg), THREADS](du, dw, scalar(0.5, du.dtype))
    return dw


# ---- the whole convolution on the device: kernels/reference/winograd.py's conv2d_* -----------------
def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = A^T [U * V] A (+ b). -> (out, saved for conv2d_backward)."""
    N, C = x.shape[0], x.shape[1]
    O, Cg, groups = weight.shape[0], weight.shape[1], geom.groups
    u4 = weight_transform(weight).reshape(16, groups, O // groups, Cg)      # U = G w G^T
    v = input_transform(x, geom.pt, geom.pl, geom.oh, geom.ow)              # V = B^T d B
    T = v.shape[2]
    m = GM.matmul(u4, v.reshape(16, groups, Cg, T))                         # M = U V per xi
    out = output_transform(m.reshape(16, O, T), N, geom.oh, geom.ow, bias)  # Y = A^T M A + b
    return out, types.SimpleNamespace(plan="winograd", x=x, weight=weight, geom=geom, u4=u4, v=v)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias): Gh = A g A^T, dx = B (U^T Gh) B^T, dw = G^T (Gh V^T) G, db = sum g."""
    x, geom, u4, v = saved.x, saved.geom, saved.u4, saved.v
    N, C, H, W = x.shape
    groups, Og, Cg = u4.shape[1], u4.shape[2], u4.shape[3]
    gh = grad_output_transform(g)   # (16, O, T); g is contiguous in x's dtype (conv.py saw to it)
    T = gh.shape[2]
    gh4 = gh.reshape(16, groups, Og, T)
    dx = dweight = dbias = None
    if needs[0]:
        dv = GM.matmul(u4, gh4, trans_a=True)                               # dV = U^T Gh
        dx = input_grad_transform(dv.reshape(16, C, T), N, H, W, geom.pt, geom.pl, geom.oh, geom.ow)
    if needs[1]:
        du = GM.matmul(gh4, v.reshape(16, groups, Cg, T), trans_b=True)     # dU = Gh V^T
        dweight = weight_grad_transform(du.reshape(16, groups * Og, Cg))
    if len(needs) > 2 and needs[2]:
        dbias = R.sum(g, (0, 2, 3))
    return dx, dweight, dbias
