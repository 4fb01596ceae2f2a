"""Convolution and the fully connected layer: conv2d, conv1d, linear.

conv2d is im2col + one batched matrix product (the way the lecture slides draw it):

    cols = im2col(x)                         (N, K, L)    K = C*kH*kW per group, L = OH*OW
    out  = W2 @ cols + b                     (O, K) @ (N, K, L) -> (N, O, L) = (N, O, OH, OW)

    OH = (H + 2P - D*(kH-1) - 1) // S + 1    (= (H + 2P - F) // S + 1 for D = 1)

and its backward is three more products and the adjoint of im2col:

    dW    = sum_n  g[n] @ cols[n]^T          (O, L) @ (L, K) -> (O, K)   (computed as its transpose)
    dcols = W2^T @ g                         (K, O) @ (N, O, L) -> (N, K, L)
    dx    = col2im(dcols)                    overlapping windows add up
    db    = g summed over N, OH, OW

Groups split the channels into G independent convolutions: cols (N, G, Kg, L) and the weight
(G, Og, Kg) are multiplied group by group in the same batched product.

The batch is processed in chunks of samples whose columns fit in CHUNK_BYTES (16 MB, far under
the 256 MB bound WORKSPACE_BYTES; one sample is never split): buffers of that size are reused by
malloc from chunk to chunk, while every fresh large buffer costs a page fault per 4 KB page, which
is as slow as the copy itself. The backward recomputes the columns of each chunk rather than keep
them alive since the forward (they are kh*kw times larger than the input), except when each
slice of the batch (below) fits in one chunk: then those (at most CHUNK_BYTES a slice) are
kept. A 1x1 kernel with stride 1 and no padding needs no im2col at all: its columns are the input.

On the CPU, a layer whose per-sample products are small (LeNet's) runs its batch as one slice per
core at the same time, each slice the whole pipeline above (GM.batch_slices): all slices in one
parallel kernel call (K.conv2d_forward_in_slices / conv2d_backward_in_slices, which call BLAS
from inside the kernel), or, where that cannot run (no NumPy OpenBLAS, columns too large), each
in its own Python thread (GM.run_slices; kernels/cpu/_threads.py says why the kernel is faster).
Elsewhere (the reference kernels, the GPU) the batch is one slice.

A 3x3 kernel with stride 1 and no dilation goes through Winograd's F(2x2, 3x3) instead (the
"winograd" kernel family; kernels/reference/winograd.py explains it): the same convolution with
2.25x fewer multiplications, for all three products (forward, input gradient, weight gradient).
It pays once the channel products dominate the extra passes over memory, so it is used from
WINOGRAD_MIN_CHANNELS channels per group in and out; set WINOGRAD = False to always use im2col.
"""
import numpy as np

from ..kernels import lookup
from ..tensor import Function, Tensor

WORKSPACE_BYTES = 256 * 2**20  # never allocate a larger im2col buffer for one chunk of samples
CHUNK_BYTES = 16 * 2**20       # the size aimed at: see the note above
WINOGRAD = True                # 3x3 stride-1 convolutions through Winograd F(2x2, 3x3)
WINOGRAD_MIN_CHANNELS = 16     # ... when both in- and out-channels per group are at least this
WINOGRAD_CHUNK_BYTES = 64 * 2**20  # transformed tiles per chunk: larger GEMMs run on all cores


# ---- argument checking ---------------------------------------------------------------------
def _pair(name, what, value):
    """An int or a pair of ints -> a pair of Python ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}")


def _positive_pair(name, what, value):
    pair = _pair(name, what, value)
    if min(pair) < 1:
        raise ValueError(f"{name}: {what} must be >= 1, got {value!r}")
    return pair


def _same_padding(size, k, s, d):
    """TensorFlow's "same": output ceil(size / s); the odd extra padding pixel goes at the end.
    Returns (output size, padding before)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, total // 2


def _geometry(name, x_shape, w_shape, stride, padding, dilation):
    """Resolve the hyper-parameters into (sh, sw, pt, pl, dh, dw, oh, ow), checking them."""
    H, W = x_shape[2:]
    kh, kw = w_shape[2:]
    sh, sw = _positive_pair(name, "stride", stride)
    dh, dw = _positive_pair(name, "dilation", dilation)
    if isinstance(padding, str):
        if padding == "same":
            oh, pt = _same_padding(H, kh, sh, dh)
            ow, pl = _same_padding(W, kw, sw, dw)
            return sh, sw, pt, pl, dh, dw, oh, ow
        if padding != "valid":
            raise ValueError(f"{name}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        padding = 0
    pt, pl = _pair(name, "padding", padding)
    if min(pt, pl) < 0:
        raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1          # the dilated kernel's extent
    ph, pw = H + 2 * pt, W + 2 * pl
    if eh > ph or ew > pw:
        size = (lambda a, b: f"{b}") if name == "conv1d" else (lambda a, b: f"{a}x{b}")
        raise ValueError(f"{name}: the kernel (dilated: {size(eh, ew)}) is larger than the padded "
                         f"input ({size(ph, pw)})")
    oh = (ph - eh) // sh + 1
    ow = (pw - ew) // sw + 1
    return sh, sw, pt, pl, dh, dw, oh, ow


def _check_conv(name, x, weight, bias, groups, x_desc, w_desc):
    """Shape and channel checks shared by conv2d and conv1d (on their own ranks)."""
    rank = len(x_desc.split(","))
    if x.ndim != rank:
        raise ValueError(f"{name}: expected input of shape {x_desc}, got {x.shape}")
    if weight.ndim != rank:
        raise ValueError(f"{name}: expected weight of shape {w_desc}, got {weight.shape}")
    if x.dtype.kind != "f" or weight.dtype.kind != "f":
        raise TypeError(f"{name}: expected floating-point input and weight, got {x.dtype} and {weight.dtype}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
    C, O = x.shape[1], weight.shape[0]
    if C % groups:
        raise ValueError(f"{name}: in_channels ({C}) must be divisible by groups ({groups})")
    if O % groups:
        raise ValueError(f"{name}: out_channels ({O}) must be divisible by groups ({groups})")
    if weight.shape[1] * groups != C:
        raise ValueError(f"{name}: input has {C} channels, but weight of shape {weight.shape} with "
                         f"groups={groups} expects {weight.shape[1] * groups} channels")
    if bias is not None and tuple(bias.shape) != (O,):
        raise ValueError(f"{name}: expected bias of shape ({O},), got {tuple(bias.shape)}")


def _tensor(value, like=None):
    if isinstance(value, Tensor) or value is None:
        return value
    return Tensor(value, dtype=like.dtype if like is not None and like.dtype.kind == "f" else None)


# ---- conv2d --------------------------------------------------------------------------------
def _chunk_size(N, sample_bytes):
    """How many samples go through im2col together: as many as keep their columns (sample_bytes
    each) within CHUNK_BYTES, at least one, at most N."""
    return max(1, min(N, min(CHUNK_BYTES, WORKSPACE_BYTES) // max(sample_bytes, 1)))


def _is_pointwise(kh, kw, geometry):
    """A 1x1 kernel, stride 1, no padding: the columns are the input itself, no copy needed."""
    sh, sw, pt, pl, dh, dw, oh, ow = geometry
    return kh == kw == sh == sw == 1 and pt == pl == 0


def _im2col(K, x, kh, kw, geometry):
    """cols (n, C*kh*kw, oh*ow) of the samples in x (n, C, H, W)."""
    if _is_pointwise(kh, kw, geometry):
        return x.reshape(x.shape[0], x.shape[1], -1)
    sh, sw, pt, pl, dh, dw, oh, ow = geometry
    return K.im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)


def _add_weight_grad(dwt3, g4, cols4):
    """dwt3 (G, Kg, Og) += sum_n cols4[n] @ g4[n]^T, for g4 (n, G, Og, L) and cols4 (n, G, Kg, L):
    the weight gradient transposed. In that orientation OpenBLAS is 10-40% faster than with
    g @ cols^T (measured from LeNet's 16x150 to AlexNet's 128x1200 gradients: the long Kg side
    as the product's rows); the caller transposes the sum once at the end.

    Several samples go through one batched matmul (fewer calls for small layers), as many as keep
    its (m, G, Kg, Og) result under ~4 MB; then their products are summed."""
    n = g4.shape[0]
    m = max(1, min(n, (4 * 2**20) // max(dwt3.size * dwt3.dtype.itemsize, 1)))
    E, GM, R = lookup("elementwise", dwt3), lookup("gemm", dwt3), lookup("reduce", dwt3)
    tmp = E.empty((m,) + tuple(dwt3.shape), dwt3.dtype)
    for a in range(0, n, m):
        b = min(a + m, n)
        # g read transposed: BLAS (or the GPU GEMM) takes a "transposed" flag, no copy
        GM.matmul(cols4[a:b], g4[a:b], trans_b=True, out=tmp[:b - a])
        E.add(dwt3, R.sum(tmp[:b - a], (0,)) if b - a > 1 else tmp[0], out=dwt3)


# ---- Winograd F(2x2, 3x3) for 3x3 stride-1 layers -------------------------------------------
def _use_winograd(kh, kw, geometry, Cg, Og):
    sh, sw, pt, pl, dh, dw, oh, ow = geometry
    return (WINOGRAD and kh == kw == 3 and sh == sw == dh == dw == 1
            and 0 <= pt <= 2 and 0 <= pl <= 2      # "same" and every padding a 3x3 layer uses
            and min(Cg, Og) >= WINOGRAD_MIN_CHANNELS)


def _winograd_chunk(N, C, O, tiles, itemsize):
    """Samples per chunk: their transformed tiles (V and M, ~4x the input and output) within
    WINOGRAD_CHUNK_BYTES (and the WORKSPACE_BYTES bound), at least one sample. Larger chunks than
    im2col's: the 16 products are small, and only products of more than gemm.SMALL_MACS
    multiply-adds use both cores (measured, VGG 3x3 64->64 at 56x56: 2 samples per chunk 92 ms,
    the whole batch of 8 in one chunk 81 ms, forward and backward)."""
    per_sample_bytes = 16 * (C + O) * tiles[0] * tiles[1] * itemsize
    budget = min(WINOGRAD_CHUNK_BYTES, WORKSPACE_BYTES)
    return max(1, min(N, budget // max(per_sample_bytes, 1)))


def _winograd_conv(KW, GM, E, u4, x, pt, pl, oh, ow, out, bias=None):
    """out (N, O, oh, ow) = the 3x3 convolution of x (N, C, H, W) with the transformed kernel
    u4 (16, G, O/G, C/G), plus bias (O,) if given. Returns out and, when the whole batch went
    through in one chunk, its transformed input V (16, C, T), else None."""
    N, C = x.shape[:2]
    O, G = out.shape[1], u4.shape[1]
    th, tw = KW.tiles(oh, ow)
    step = _winograd_chunk(N, C, O, (th, tw), x.dtype.itemsize)
    v = None
    for s in range(0, N, step):
        sl = slice(s, s + step)
        v = KW.input_transform(x[sl], pt, pl, oh, ow)                 # V = B^T d B  (16, C, T)
        n, T = v.shape[2] // (th * tw), v.shape[2]
        m = GM.matmul(u4, v.reshape(16, G, C // G, T))                # M = U V per xi
        y = KW.output_transform(m.reshape(16, O, T), n, oh, ow, bias)  # Y = A^T M A + b
        if n == N:
            out = y                                                    # one chunk: no copy
        else:
            E.assign(out[sl], y)
    return out, (v if step >= N else None)


class Winograd2d(Function):
    """Conv2d's 3x3 stride-1 case computed with Winograd's F(2x2, 3x3): the same results to
    rounding (kernels/reference/winograd.py has the algebra)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, geometry=None, groups=1):
        E, GM, KW = lookup("elementwise", x), lookup("gemm", x), lookup("winograd", x)
        x, weight = E.contiguous(x), E.contiguous(weight)
        sh, sw, pt, pl, dh, dw, oh, ow = geometry
        N, O, Cg = x.shape[0], weight.shape[0], weight.shape[1]
        u4 = KW.weight_transform(weight).reshape(16, groups, O // groups, Cg)   # U = G w G^T
        b = None if bias is None else E.contiguous(bias, x.dtype)
        out, v = _winograd_conv(KW, GM, E, u4, x, pt, pl, oh, ow, E.empty((N, O, oh, ow), x.dtype), bias=b)
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.groups, ctx.has_bias = geometry, groups, bias is not None
        ctx.v = v if ctx.needs_input_grad[1] else None    # kept for dw when it was one chunk
        ctx.u4 = u4 if ctx.needs_input_grad[0] else None  # for dx (2.25x the weight's size)
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        G, (sh, sw, pt, pl, dh, dw, oh, ow) = ctx.groups, ctx.geometry
        E, GM, KW = lookup("elementwise", x), lookup("gemm", x), lookup("winograd", x)
        N, C, H, W = x.shape
        O, Cg = weight.shape[:2]
        Og = O // G
        g = E.contiguous(g, x.dtype)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        # Everything runs backwards through the forward's transforms, from Gh = A g A^T:
        #   dV = U^T Gh per xi, dx = sum over tiles of B dV B^T     (input_grad_transform)
        #   dU = Gh V^T per xi, dw = G^T dU G                        (weight_grad_transform)
        #   db = the sum of Gh[5] over tiles (Gh[5] = g00 + g01 + g10 + g11 of each tile)
        dx = E.empty((N, C, H, W), x.dtype) if need_x else None
        du = E.zeros((16, G, Og, Cg), x.dtype) if need_w else None
        tmp = E.empty((16, G, Og, Cg), x.dtype) if need_w else None
        dbias = E.zeros((O,), x.dtype) if need_b else None
        u4 = ctx.u4
        R = lookup("reduce", x)
        step = _winograd_chunk(N, C, O, KW.tiles(oh, ow), x.dtype.itemsize)
        for s in range(0, N, step):
            sl = slice(s, s + step)
            gh = KW.grad_output_transform(g[sl])                           # (16, O, T)
            n, T = min(N, s + step) - s, gh.shape[2]
            gh4 = gh.reshape(16, G, Og, T)
            if need_x:
                dv = GM.matmul(u4, gh4, trans_a=True)                      # (16, G, Cg, T)
                part = KW.input_grad_transform(dv.reshape(16, C, T), n, H, W, pt, pl, oh, ow)
                if n == N:
                    dx = part                                              # one chunk: no copy
                else:
                    E.assign(dx[sl], part)
            if need_w:  # V kept from the forward when the batch was one chunk, else recomputed
                v = ctx.v if ctx.v is not None else KW.input_transform(x[sl], pt, pl, oh, ow)
                GM.matmul(gh4, v.reshape(16, G, Cg, T), trans_b=True, out=tmp)
                E.add(du, tmp, out=du)
            if need_b:
                E.add(dbias, R.sum(gh[5], (1,)), out=dbias)
        ctx.v = None                    # free it; a second backward would recompute it
        dweight = KW.weight_grad_transform(du.reshape(16, O, Cg)) if need_w else None
        return dx, dweight, dbias


class Conv2d(Function):
    """out[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] * x[n, g*Cg + c, oy*S - P + i*D, ox*S - P + j*D]
    (g the group of o), computed as im2col + a batched GEMM.

    The batch goes through in slices that may run at the same time (GM.batch_slices: on the CPU
    one per core when the per-sample products are small, LeNet's layers; else one slice), and
    each slice in chunks of at most CHUNK_BYTES of columns."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, geometry=None, groups=1):
        # the kernel families where x lives: NumPy/Numba on the CPU, kernels/cuda on the GPU
        E, GM, K = lookup("elementwise", x), lookup("gemm", x), lookup("conv", x)
        x = E.contiguous(x)
        oh, ow = geometry[6:]
        N, C, H, W = x.shape
        O, Cg, kh, kw = weight.shape
        G, Kg, L = groups, Cg * kh * kw, oh * ow
        w3 = E.contiguous(weight).reshape(G, O // G, Kg)
        b4 = None if bias is None else E.contiguous(bias, x.dtype).reshape(1, O, 1, 1)
        out = E.empty((N, O, oh, ow), x.dtype)
        step = _chunk_size(N, G * Kg * L * x.dtype.itemsize)

        def run(lo, hi):  # samples [lo, hi): returns their columns when one chunk held them all
            cols = None
            for a in range(lo, hi, step):
                s = slice(a, min(a + step, hi))
                cols = _im2col(K, x[s], kh, kw, geometry)
                n = cols.shape[0]
                # (G, Og, Kg) @ (n, G, Kg, L) -> (n, G, Og, L), written straight into the NCHW output
                GM.matmul(w3, cols.reshape(n, G, Kg, L), out=out[s].reshape(n, G, O // G, L))
                if b4 is not None:
                    E.add(out[s], b4, out=out[s])
            return cols if hi - lo <= step else None

        edges = GM.batch_slices(N, O * Kg * L)
        ctx.in_slices = _in_slices(K, x, edges, G * Kg * L)
        if ctx.in_slices:  # the whole pipeline, slice by slice, in one kernel call
            cols = E.empty((N, G * Kg, L), x.dtype)
            b1 = E.empty((0,), x.dtype) if b4 is None else b4.reshape(O)
            K.conv2d_forward_in_slices(x, w3, b1, out.reshape(N, O, L), cols, kh, kw, *geometry, edges)
            kept = [cols]
        else:
            kept = GM.run_slices(run, edges)
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.groups, ctx.has_bias, ctx.edges = geometry, groups, bias is not None, edges
        # each slice was one chunk: keep its columns (at most CHUNK_BYTES each) for dW
        ctx.cols = kept if ctx.needs_input_grad[1] and all(c is not None for c in kept) else None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        G, geometry, edges = ctx.groups, ctx.geometry, ctx.edges
        sh, sw, pt, pl, dh, dw, oh, ow = geometry
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        N, C, H, W = x.shape
        O, Cg, kh, kw = weight.shape
        Og, Kg, L = O // G, Cg * kh * kw, oh * ow
        E, GM, K = lookup("elementwise", x), lookup("gemm", x), lookup("conv", x)
        R = lookup("reduce", x)
        g4 = E.contiguous(g, x.dtype).reshape(N, G, Og, L)
        w3 = E.contiguous(weight).reshape(G, Og, Kg)   # read transposed, (G, Kg, Og), by the GEMM
        kept = ctx.cols
        ctx.cols = None                 # free them; a second backward would recompute them
        if ctx.in_slices:
            return _backward_in_slices(x, weight.shape, w3, g4, kept, geometry, edges, need_x, need_w, need_b)
        pointwise = _is_pointwise(kh, kw, geometry)
        dx = E.empty(x.shape, x.dtype) if need_x else None
        step = _chunk_size(N, G * Kg * L * x.dtype.itemsize)

        def run(lo, hi):  # samples [lo, hi): their dx rows; returns their (dW^T, db) shares
            nonlocal dx
            dwt3 = E.zeros((G, Kg, Og), x.dtype) if need_w else None
            dcols = E.empty((min(step, hi - lo), G, Kg, L), x.dtype) if need_x and not pointwise else None
            for a in range(lo, hi, step):
                s = slice(a, min(a + step, hi))
                gs = g4[s]
                n = gs.shape[0]
                if need_w:  # kept from the forward when the slice was one chunk, else recomputed
                    cols = kept[edges.index(lo)] if kept is not None else _im2col(K, x[s], kh, kw, geometry)
                    _add_weight_grad(dwt3, gs, cols.reshape(n, G, Kg, L))
                if need_x and pointwise:                               # dcols is dx itself
                    GM.matmul(w3, gs, trans_a=True, out=dx[s].reshape(n, G, Kg, L))
                elif need_x:
                    GM.matmul(w3, gs, trans_a=True, out=dcols[:n])    # (G, Kg, Og) @ (n, G, Og, L)
                    part = K.col2im(dcols[:n].reshape(n, G * Kg, L), H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
                    if n == N:
                        dx = part                                      # one chunk: keep it, no copy
                    else:
                        E.assign(dx[s], part)
            db = R.sum(g4[lo:hi], (0, 3)) if need_b else None
            return dwt3, db

        shares = GM.run_slices(run, edges)
        dwt3, db = shares[0]
        for more_w, more_b in shares[1:]:   # the slices' shares of dW^T and db, added up
            if need_w:
                E.add(dwt3, more_w, out=dwt3)
            if need_b:
                E.add(db, more_b, out=db)
        dweight = E.permute(dwt3, (0, 2, 1)).reshape(weight.shape) if need_w else None
        dbias = db.reshape(O) if need_b else None
        return dx, dweight, dbias


def _in_slices(K, x, edges, cols_per_sample):
    """Whether Conv2d runs as one conv2d_forward_in_slices call: the batch is cut in slices
    (small products, on the CPU), the kernels can (NumPy's OpenBLAS is there), and each slice's
    columns fit in one chunk (they are kept for the backward). A 1x1 layer goes this way too,
    at the cost of copying its input as columns (one kernel call instead of Python threads
    that pass the GIL between them: kernels/cpu/_threads.py)."""
    return (len(edges) > 2 and K.can_run_in_slices(x.dtype)
            and x.shape[0] * cols_per_sample * x.dtype.itemsize <= CHUNK_BYTES * (len(edges) - 1))


def _backward_in_slices(x, w_shape, w3, g4, kept, geometry, edges, need_x, need_w, need_b):
    """Conv2d.backward as one conv2d_backward_in_slices call; then the slices' dW^T and db
    shares are added up. Arrays that are not needed go in empty."""
    E, K, R = lookup("elementwise", x), lookup("conv", x), lookup("reduce", x)
    N, C, H, W = x.shape
    G, Og, Kg = w3.shape
    O, L, S = G * Og, g4.shape[3], len(edges) - 1
    cols = kept[0] if kept is not None else E.empty((N if need_w else 0, G * Kg, L), x.dtype)  # recomputed
    dx = E.empty((N if need_x else 0, C, H, W), x.dtype)
    dcols = E.empty((N if need_x else 0, G * Kg, L), x.dtype)
    dwt = E.zeros((S if need_w else 0, G, Kg, Og), x.dtype)
    db = E.zeros((S if need_b else 0, O), x.dtype)
    K.conv2d_backward_in_slices(x, w3, g4.reshape(N, O, L), cols, kept is None, dx, dcols, dwt, db,
                                *w_shape[2:], *geometry, edges)
    dweight = E.permute(R.sum(dwt, (0,)), (0, 2, 1)).reshape(w_shape) if need_w else None
    return (dx if need_x else None), dweight, (R.sum(db, (0,)) if need_b else None)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in every framework) over x (N, C, H, W).

    weight (out_channels, in_channels // groups, kH, kW); bias (out_channels,) or None.
    stride, dilation: int or (sH, sW). padding: int, (pH, pW), "valid" (= 0), or "same"
    (TensorFlow's rule: output ceil(H / stride), the odd extra pixel at the bottom and right).
    Output (N, out_channels, OH, OW) with OH = (H + 2P - D*(kH-1) - 1) // S + 1.
    """
    x = _tensor(x)
    weight, bias = _tensor(weight, x), _tensor(bias, x)
    _check_conv("conv2d", x, weight, bias, groups, "(N, C, H, W)",
                "(out_channels, in_channels // groups, kH, kW)")
    geometry = _geometry("conv2d", x.shape, weight.shape, stride, padding, dilation)
    groups = int(groups)
    O, Cg, kh, kw = weight.shape
    op = Winograd2d if _use_winograd(kh, kw, geometry, Cg, O // groups) else Conv2d
    return op.apply(x, weight, bias, geometry=geometry, groups=groups)


# ---- conv1d: the conv2d machinery with H = 1 -------------------------------------------------
class Conv1d(Function):
    """conv2d on x (N, C, 1, L) with a (O, Cg, 1, K) kernel; only views are added."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, geometry=None, groups=1):
        (N, C, Lx), (O, Cg, k) = tuple(x.shape), tuple(weight.shape)
        E = lookup("elementwise", x)  # reshapes, not x[:, :, None]: device arrays have no newaxis
        out = Conv2d.forward(ctx, E.contiguous(x).reshape(N, C, 1, Lx), E.contiguous(weight).reshape(O, Cg, 1, k),
                             bias, geometry=geometry, groups=groups)
        ctx.shapes = (N, C, Lx), (O, Cg, k)
        return out.reshape(N, O, out.shape[3])

    @staticmethod
    def backward(ctx, g):
        (N, O, OL) = tuple(g.shape)
        dx, dw, db = Conv2d.backward(ctx, lookup("elementwise", g).contiguous(g).reshape(N, O, 1, OL))
        x_shape, w_shape = ctx.shapes
        return (None if dx is None else dx.reshape(x_shape),
                None if dw is None else dw.reshape(w_shape), db)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over x (N, C, L) with weight (out_channels, in_channels // groups, K).

    stride, padding, dilation: ints; padding may also be "same" or "valid" (the conv2d rules).
    Output (N, out_channels, OL) with OL = (L + 2P - D*(K-1) - 1) // S + 1.
    """
    x = _tensor(x)
    weight, bias = _tensor(weight, x), _tensor(bias, x)
    _check_conv("conv1d", x, weight, bias, groups, "(N, C, L)", "(out_channels, in_channels // groups, K)")

    def one(what, v):  # a 1-D hyper-parameter is an int (or a 1-tuple, as PyTorch allows)
        if isinstance(v, (tuple, list)) and len(v) == 1:
            v = v[0]
        if isinstance(v, str) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)):
            return v
        raise ValueError(f"conv1d: {what} must be an int, got {v!r}")

    stride, padding, dilation = one("stride", stride), one("padding", padding), one("dilation", dilation)
    pad2 = padding if isinstance(padding, str) else (0, padding)
    geometry = _geometry("conv1d", x.shape[:2] + (1,) + x.shape[2:], weight.shape[:2] + (1,) + weight.shape[2:],
                         (1, stride), pad2, (1, dilation))
    return Conv1d.apply(x, weight, bias, geometry=geometry, groups=int(groups))


# ---- linear --------------------------------------------------------------------------------
class Linear(Function):
    """out = x @ W^T + b over the last axis of x (..., in_features)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        shape = tuple(x.shape)
        x2 = x.reshape(-1, shape[-1])
        out = lookup("gemm", x).matmul(x2, weight, trans_b=True)      # x @ W^T, W read transposed
        if bias is not None:
            lookup("elementwise", out).add(out, bias, out=out)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return out.reshape(shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        GM = lookup("gemm", g)
        g2 = g.reshape(-1, weight.shape[0])
        x2 = x.reshape(-1, tuple(x.shape)[-1])
        dx = GM.matmul(g2, weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        dw = GM.matmul(g2, x2, trans_a=True) if ctx.needs_input_grad[1] else None      # g^T @ x
        db = lookup("reduce", g2).sum(g2, (0,)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, weight, bias=None):
    """Fully connected layer: x (..., in_features) @ weight^T + bias, weight (out_features, in_features)."""
    x = _tensor(x)
    weight, bias = _tensor(weight, x), _tensor(bias, x)
    if weight.ndim != 2:
        raise ValueError(f"linear: expected weight of shape (out_features, in_features), got {weight.shape}")
    if x.ndim < 1:
        raise ValueError(f"linear: expected input of shape (..., in_features), got {x.shape}")
    if x.dtype.kind != "f" or weight.dtype.kind != "f":
        raise TypeError(f"linear: expected floating-point input and weight, got {x.dtype} and {weight.dtype}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (last axis of {x.shape}), but weight "
                         f"of shape {weight.shape} expects in_features = {weight.shape[1]}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return Linear.apply(x, weight, bias)
