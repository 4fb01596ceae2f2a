"""Winograd's minimal filtering F(2x2, 3x3), reference version (the specification).

A 3x3 convolution with stride 1 computes each 2x2 block of outputs from a 4x4 tile of input.
Done directly that costs 2*2*9 = 36 multiplications; Winograd's algorithm (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2015) needs 16:

    Y = A^T [ (G w G^T) * (B^T d B) ] A          (* elementwise, on 4x4 matrices)

        B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
              [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
              [0 -1  1  0]         [1/2 -1/2  1/2]
              [0  1  0 -1]         [ 0    0    1 ]

Summed over input channels, the elementwise product becomes 16 independent matrix products,
one per position xi = 4a + b of the 4x4 transformed tile:

    M[xi] = U[xi] @ V[xi]      U = G w G^T (16, O, C),  V = B^T d B (16, C, T),  M (16, O, T)

2.25x fewer multiplications than im2col's GEMM; the transforms only add and subtract.

The backward passes are the same algebra read backwards (each transform's adjoint):
    Gh  = A dY A^T for every 2x2 output-gradient tile (grad_output_transform: output_transform's
          adjoint), computed once and used twice;
    dx  = sum over tiles of B dV B^T put back where the tile was read, with dV[xi] = U[xi]^T @ Gh[xi]
          (input_grad_transform: input_transform's adjoint; overlapping tiles add up);
    dw  = G^T dU G with dU[xi] = Gh[xi] @ V[xi]^T (weight_grad_transform).
Equivalently dx is the convolution of g with the kernel rotated by 180 degrees (in/out channels
swapped, padding 2 - pt, 2 - pl); the tests check that both give the same dx.

Shapes
    N, C, H, W   input;  O output channels;  Cg = C / groups
    pt, pl       padding at the top and on the left (anything beyond the input reads as 0)
    oh, ow       output height and width; the output is covered by th x tw tiles of 2x2:
                     th = ceil(oh / 2), tw = ceil(ow / 2),  T = N * th * tw
    tile t = (n * th + ty) * tw + tx reads input rows 2*ty - pt .. +3, columns 2*tx - pl .. +3
"""
import numpy as np

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _sandwich(p, x, q):
    """p @ x @ q^T for every tile x in a stack (..., r, s): as two BLAS products over the whole
    stack (np.matmul would loop over the tiles one by one)."""
    xq = np.tensordot(x, q, axes=([-1], [1]))                       # (..., r, q_rows) = x q^T
    return np.moveaxis(np.tensordot(p, xq, axes=([1], [-2])), 0, -2)   # p (x q^T)


def tiles(oh, ow):
    """(th, tw): how many 2x2 output tiles cover an oh x ow output."""
    return (oh + 1) // 2, (ow + 1) // 2


def input_transform(x, pt, pl, oh, ow):
    """x (N, C, H, W) -> V (16, C, T):  V[4a+b, c, t] = (B^T d B)[a, b] for the 4x4 tile d of t."""
    N, C, H, W = x.shape
    th, tw = tiles(oh, ow)
    # the input padded (or cropped) to exactly the 2*th+2 rows and 2*tw+2 columns the tiles read
    xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    rows = min(H, xp.shape[2] - pt)
    cols = min(W, xp.shape[3] - pl)
    xp[:, :, pt:pt + rows, pl:pl + cols] = x[:, :, :rows, :cols]
    # d[n, c, ty, tx] = the 4x4 tile at rows 2*ty.., columns 2*tx.. (tiles overlap by 2)
    d = np.empty((N, C, th, tw, 4, 4), dtype=x.dtype)
    for i in range(4):
        for j in range(4):
            d[..., i, j] = xp[:, :, i:i + 2 * th:2, j:j + 2 * tw:2]
    bt = BT.astype(x.dtype)
    v = _sandwich(bt, d, bt)                                    # B^T d B  (N, C, th, tw, 4, 4)
    return np.ascontiguousarray(v.transpose(4, 5, 1, 0, 2, 3)).reshape(16, C, N * th * tw)


def input_grad_transform(dv, N, H, W, pt, pl, oh, ow):
    """dV (16, C, T) -> dx (N, C, H, W), the adjoint of input_transform: every tile t adds
    B dV_t B^T into the 4x4 input window it was read from; what lands in the padding is dropped."""
    _, C, T = dv.shape
    th, tw = tiles(oh, ow)
    b = BT.T.astype(dv.dtype)
    e = dv.reshape(4, 4, C, N, th, tw).transpose(3, 2, 4, 5, 0, 1)     # (N, C, th, tw, 4, 4)
    d = _sandwich(b, e, b)                                              # B dV B^T
    xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=dv.dtype)
    for i in range(4):                      # tiles overlap by 2: their contributions add up
        for j in range(4):
            xp[:, :, i:i + 2 * th:2, j:j + 2 * tw:2] += d[..., i, j]
    dx = np.zeros((N, C, H, W), dtype=dv.dtype)
    rows, cols = min(H, xp.shape[2] - pt), min(W, xp.shape[3] - pl)
    dx[:, :, :rows, :cols] = xp[:, :, pt:pt + rows, pl:pl + cols]
    return dx


def output_transform(m, N, oh, ow, bias=None):
    """M (16, O, T) -> y (N, O, oh, ow):  the 2x2 output tile of t is A^T m A, plus bias[o] when
    a bias (O,) is given (added here, while the tile is at hand, rather than in another pass)."""
    _, O, T = m.shape
    th, tw = tiles(oh, ow)
    at = AT.astype(m.dtype)
    m = m.reshape(4, 4, O, N, th, tw).transpose(3, 2, 4, 5, 0, 1)     # (N, O, th, tw, 4, 4)
    y = _sandwich(at, m, at)                                           # A^T m A  (N, O, th, tw, 2, 2)
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(N, O, 2 * th, 2 * tw)  # tiles side by side
    y = np.ascontiguousarray(y[:, :, :oh, :ow])
    return y if bias is None else y + bias.reshape(1, O, 1, 1)


def grad_output_transform(g):
    """g (N, O, oh, ow) -> Gh (16, O, T):  Gh[4a+b, o, t] = (A g_t A^T)[a, b] for the 2x2 tile g_t
    of t (zeros past the edge), the adjoint of output_transform."""
    N, O, oh, ow = g.shape
    th, tw = tiles(oh, ow)
    gp = np.zeros((N, O, 2 * th, 2 * tw), dtype=g.dtype)
    gp[:, :, :oh, :ow] = g
    gt = gp.reshape(N, O, th, 2, tw, 2).transpose(0, 1, 2, 4, 3, 5)   # (N, O, th, tw, 2, 2)
    at = AT.astype(g.dtype)
    gh = _sandwich(at.T, gt, at.T)                                      # A g A^T  (N, O, th, tw, 4, 4)
    return np.ascontiguousarray(gh.transpose(4, 5, 1, 0, 2, 3)).reshape(16, O, N * th * tw)


def weight_transform(w):
    """w (O, Cg, 3, 3) -> U (16, O, Cg):  U[4a+b, o, c] = (G w[o, c] G^T)[a, b]."""
    O, Cg = w.shape[:2]
    gm = G.astype(w.dtype)
    u = _sandwich(gm, w, gm)                                              # G w G^T  (O, Cg, 4, 4)
    return np.ascontiguousarray(u.transpose(2, 3, 0, 1)).reshape(16, O, Cg)


def weight_grad_transform(du):
    """dU (16, O, Cg) -> dw (O, Cg, 3, 3):  dw[o, c] = G^T dU[:, o, c] G, the adjoint of
    weight_transform."""
    _, O, Cg = du.shape
    gm = G.astype(du.dtype)
    du = du.reshape(4, 4, O, Cg).transpose(2, 3, 0, 1)                  # (O, Cg, 4, 4)
    return np.ascontiguousarray(_sandwich(gm.T, du, gm.T))              # G^T dU G


# ---- the whole convolution, Winograd's way ------------------------------------------------------
# conv2d_forward / conv2d_backward: the same entry points as kernels/reference/conv.py, for a 3x3
# kernel with stride 1 and no dilation. The CPU and GPU plans (kernels/cpu/conv.py) call these for
# such layers; here they are the algorithm in one screen each.
def conv2d_forward(x, weight, bias, geom):
    """out (N, O, oh, ow) = Y = A^T [U * V] A (+ b), summed over input channels per group.
    -> (out, saved for conv2d_backward)."""
    N, C = x.shape[:2]
    O, Cg, groups = weight.shape[0], weight.shape[1], geom.groups
    u = weight_transform(weight).reshape(16, groups, O // groups, Cg)            # U = G w G^T
    v = input_transform(x, geom.pt, geom.pl, geom.oh, geom.ow)          # V = B^T d B  (16, C, T)
    T = v.shape[2]
    m = np.matmul(u, v.reshape(16, groups, Cg, T)).reshape(16, O, T)         # M[xi] = U[xi] @ V[xi]
    out = output_transform(m, N, geom.oh, geom.ow, bias)                # Y = A^T M A + b
    return out, (x, weight, u, v, geom)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias), each transform's adjoint applied in reverse order."""
    x, weight, u, v, geom = saved
    N, C, H, W = x.shape
    O, Cg, groups = weight.shape[0], weight.shape[1], geom.groups
    gh = grad_output_transform(g)                                       # Gh = A g A^T  (16, O, T)
    gh4 = gh.reshape(16, groups, O // groups, -1)
    dx = dweight = dbias = None
    if needs[0]:
        dv = np.matmul(u.transpose(0, 1, 3, 2), gh4)                     # dV[xi] = U[xi]^T @ Gh[xi]
        dx = input_grad_transform(dv.reshape(16, C, -1), N, H, W, geom.pt, geom.pl, geom.oh, geom.ow)
    if needs[1]:
        du = np.matmul(gh4, v.reshape(16, groups, Cg, -1).transpose(0, 1, 3, 2))   # dU = Gh @ V^T
        dweight = weight_grad_transform(du.reshape(16, O, Cg))          # dw = G^T dU G
    if len(needs) > 2 and needs[2]:
        dbias = g.sum(axis=(0, 2, 3))
    return dx, dweight, dbias
