"""Convolution and the fully connected layer: conv2d, conv1d, linear.

conv2d is im2col + one batched matrix product, the way the lecture slides draw it:

    cols = im2col(x)                         (N, K, L)    K = C*kH*kW per group, L = OH*OW
    out  = W2 @ cols + b                     (O, K) @ (N, K, L) -> (N, O, L) = (N, O, OH, OW)

    OH = (H + 2P - D*(kH-1) - 1) // S + 1    (= (H + 2P - F) // S + 1 for D = 1)

and its backward is two more products and the adjoint of im2col:

    dW    = sum_n  g[n] @ cols[n]^T          (O, L) @ (L, K) -> (O, K)
    dcols = W2^T @ g                         (K, O) @ (N, O, L) -> (N, K, L)
    dx    = col2im(dcols)                    overlapping windows add up
    db    = g summed over N, OH, OW

Groups split the channels into G independent convolutions: cols (N, G, Kg, L) and the weight
(G, Og, Kg) are multiplied group by group in the same batched product.

The ops below check their arguments, resolve the geometry once (a ConvGeometry, passed by
name) and call one kernel-level entry of the kernel set in use:
    K.conv2d_forward(x, weight, bias, geom) -> (out, saved)
    K.conv2d_backward(saved, g, needs)      -> (dx, dweight, dbias)
kernels/reference/conv.py is those equations in NumPy, the version to read and to step through
(`mc.use_kernels("reference")`). The CPU and GPU versions compute the same thing with speed
plans of their own (Winograd's F(2x2, 3x3) for 3x3 layers, batch slices, chunks of columns):
kernels/cpu/conv.py says which and why.
"""
import numpy as np

from ..kernels import lookup
from ..kernels.geometry import ConvGeometry
from ..tensor import Function, Tensor
from ._args import is_int, pair, positive_pair


# ---- argument checking ---------------------------------------------------------------------
def _same_padding(size, k, s, d):
    """TensorFlow's "same": output ceil(size / s); the odd extra padding pixel goes at the end.
    Returns (output size, padding before, padding after)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, total // 2, total - total // 2


def conv_geometry(name, x_shape, w_shape, stride, padding, dilation, groups):
    """Resolve and check the hyper-parameters of a convolution of x (N, C, H, W) with a weight
    (O, Cg, kH, kW) -> ConvGeometry (kernels/geometry.py)."""
    H, W = x_shape[2:]
    kh, kw = w_shape[2:]
    sh, sw = positive_pair(name, "stride", stride)
    dil_h, dil_w = positive_pair(name, "dilation", dilation)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{name}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if padding == "same":
            oh, pt, pb = _same_padding(H, kh, sh, dil_h)
            ow, pl, pr = _same_padding(W, kw, sw, dil_w)
            return ConvGeometry(kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, int(groups), oh, ow)
        padding = 0
    pt, pl = pair(name, "padding", padding)
    if min(pt, pl) < 0:
        raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")
    eh, ew = (kh - 1) * dil_h + 1, (kw - 1) * dil_w + 1      # the dilated kernel's extent
    Hp, Wp = H + 2 * pt, W + 2 * pl                           # the padded input's size
    if eh > Hp or ew > Wp:
        size = (lambda a, b: f"{b}") if name == "conv1d" else (lambda a, b: f"{a}x{b}")
        raise ValueError(f"{name}: the kernel (dilated: {size(eh, ew)}) is larger than the padded "
                         f"input ({size(Hp, Wp)})")
    oh, ow = (Hp - eh) // sh + 1, (Wp - ew) // sw + 1
    return ConvGeometry(kh, kw, sh, sw, pt, pl, pt, pl, dil_h, dil_w, int(groups), oh, ow)


def _check_conv(name, x, weight, bias, groups, x_desc, w_desc):
    """Shape and channel checks shared by conv2d and conv1d (on their own ranks)."""
    rank = len(x_desc.split(","))
    if x.ndim != rank:
        raise ValueError(f"{name}: expected input of shape {x_desc}, got {x.shape}")
    if weight.ndim != rank:
        raise ValueError(f"{name}: expected weight of shape {w_desc}, got {weight.shape}")
    if x.dtype.kind != "f" or weight.dtype.kind != "f":
        raise TypeError(f"{name}: expected floating-point input and weight, got {x.dtype} and {weight.dtype}")
    if not is_int(groups) or groups < 1:
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
class Conv2d(Function):
    """out[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] * x[n, g*Cg + c, oy*S - P + i*D, ox*S - P + j*D]
    (g the group of o): im2col + a batched GEMM (the equations in the module docstring).

    backward: dW = sum_n g[n] @ cols[n]^T,  dx = col2im(W^T @ g),  db = sum of g over n, oy, ox."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, geom=None):
        out, ctx.conv_saved = lookup("conv", x).conv2d_forward(x, weight, bias, geom)
        return out

    @staticmethod
    def backward(ctx, g):
        return lookup("conv", g).conv2d_backward(ctx.conv_saved, g, ctx.needs_input_grad)


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
    geom = conv_geometry("conv2d", x.shape, weight.shape, stride, padding, dilation, groups)
    return Conv2d.apply(x, weight, bias, geom=geom)


# ---- conv1d: conv2d with H = 1 -------------------------------------------------------------
class Conv1d(Function):
    """conv2d of x (N, C, 1, L) with a (O, Cg, 1, K) kernel: only reshapes are added."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, geom=None):
        (N, C, Lx), (O, Cg, k) = tuple(x.shape), tuple(weight.shape)
        ctx.shapes = (N, C, Lx), (O, Cg, k)
        out, ctx.conv_saved = lookup("conv", x).conv2d_forward(
            x.reshape(N, C, 1, Lx), weight.reshape(O, Cg, 1, k), bias, geom)
        return out.reshape(N, O, geom.ow)

    @staticmethod
    def backward(ctx, g):
        N, O, OL = tuple(g.shape)
        dx, dweight, dbias = lookup("conv", g).conv2d_backward(ctx.conv_saved, g.reshape(N, O, 1, OL),
                                                               ctx.needs_input_grad)
        x_shape, w_shape = ctx.shapes
        return (None if dx is None else dx.reshape(x_shape),
                None if dweight is None else dweight.reshape(w_shape), dbias)


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
        if isinstance(v, str) or is_int(v):
            return v
        raise ValueError(f"conv1d: {what} must be an int, got {v!r}")

    stride, padding, dilation = one("stride", stride), one("padding", padding), one("dilation", dilation)
    pad2 = padding if isinstance(padding, str) else (0, padding)
    geom = conv_geometry("conv1d", x.shape[:2] + (1,) + x.shape[2:], weight.shape[:2] + (1,) + weight.shape[2:],
                         (1, stride), pad2, (1, dilation), groups)
    return Conv1d.apply(x, weight, bias, geom=geom)


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
