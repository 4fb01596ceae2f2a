"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d.

Each output pixel summarises one window of its own channel (no weights, no mixing of channels):

    OH = floor((H + 2P - K) / S) + 1                  (ceil_mode=False, the default)
    OH = ceil((H + 2P - K) / S) + 1                   (ceil_mode=True; and then, as PyTorch,
         minus 1 if (OH - 1)*S >= H + P                a last window that would START in the
                                                       bottom/right padding is dropped)

Max pooling remembers which input cell won each window (`argmax`, kept from forward), and its
backward sends each output's gradient to that cell only; padding is -inf, so it never wins.
Average pooling spreads each output's gradient evenly over its window; its divisor is PyTorch's
(see kernels/reference/pool.py): with count_include_pad=True the padding is counted, but not an
overhang past the padding that ceil mode can make. Adaptive average pooling picks the windows
itself: bin i covers rows floor(i*H/OH) ... ceil((i+1)*H/OH) - 1, so bins may overlap.

Inputs are (N, C, H, W); an unbatched (C, H, W) is accepted too, as in PyTorch.
"""
import numpy as np

from ..kernels import lookup
from ..tensor import Function, Tensor
from ._args import pair as _pair


# ---- argument checking ---------------------------------------------------------------------
def _as_input(name, x):
    """x as a float Tensor of rank 3 or 4, or a clear error."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected input of shape (N, C, H, W), got {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 input, got {x.dtype}")
    return x


def _batched(pool, x, *args):
    """Run `pool` on x (N, C, H, W), or on an unbatched x (C, H, W) as a batch of one."""
    if x.ndim == 4:
        return pool(x, *args)
    out = pool(x.reshape(1, *x.shape), *args)
    return out.reshape(*out.shape[1:])


def pool_output_size(size, kernel_size, stride, padding, ceil_mode=False):
    """Output length along one axis: floor or ceil of (size + 2P - K) / S, plus 1; with ceil_mode
    a last window that would start in the padding is dropped (PyTorch's rule)."""
    span = size + 2 * padding - kernel_size
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _geometry(name, x_shape, kernel_size, stride, padding, ceil_mode):
    """Check the hyper-parameters; (kh, kw, sh, sw, ph, pw, oh, ow)."""
    H, W = x_shape[-2:]
    kh, kw = _pair(name, "kernel_size", kernel_size)
    if min(kh, kw) < 1:
        raise ValueError(f"{name}: kernel_size must be >= 1, got {kernel_size!r}")
    sh, sw = (kh, kw) if stride is None else _pair(name, "stride", stride)
    if min(sh, sw) < 1:
        raise ValueError(f"{name}: stride must be >= 1, got {stride!r}")
    ph, pw = _pair(name, "padding", padding)
    if min(ph, pw) < 0:
        raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{name}: padding ({ph}, {pw}) must be at most half the kernel size "
                         f"({kh}, {kw})")
    oh = pool_output_size(H, kh, sh, ph, bool(ceil_mode))
    ow = pool_output_size(W, kw, sw, pw, bool(ceil_mode))
    # PyTorch's test: ceil mode keeps one window that overhangs a too-small input (the kernel
    # may exceed the padded input by less than the stride); otherwise no window fits
    if min(oh, ow) < 1:
        raise ValueError(f"{name}: kernel size ({kh}, {kw}) is larger than the padded input "
                         f"({H + 2 * ph}, {W + 2 * pw})")
    return kh, kw, sh, sw, ph, pw, oh, ow


def _grad(ctx, g):
    # the kernels index planes directly: give them a contiguous array of the input's dtype
    return lookup("elementwise", g).contiguous(g, ctx.dtype)


# ---- max pooling ---------------------------------------------------------------------------
class MaxPool2d(Function):
    """out[n, c, oy, ox] = max of x[n, c] over window (oy, ox); dx gets grad_out at the argmax."""

    @staticmethod
    def forward(ctx, x, geometry):
        kh, kw, sh, sw, ph, pw, oh, ow = geometry
        out, argmax = lookup("pool", x).max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow)
        ctx.argmax, ctx.shape, ctx.dtype = argmax, x.shape, x.dtype  # backward needs no x
        return out

    @staticmethod
    def backward(ctx, g):
        H, W = ctx.shape[2:]
        g = _grad(ctx, g)
        return lookup("pool", g).max_pool2d_backward(g, ctx.argmax, H, W)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over each kernel_size window of x (N, C, H, W) -> (N, C, OH, OW).

    stride defaults to kernel_size; kernel_size, stride, padding: an int or a pair (H, W).
    Padding counts as -inf (it never wins) and may be at most half the kernel size.
    """
    x = _as_input("max_pool2d", x)
    geometry = _geometry("max_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return _batched(lambda t: MaxPool2d.apply(t, geometry=geometry), x)


# ---- average pooling -----------------------------------------------------------------------
class AvgPool2d(Function):
    """out[n, c, oy, ox] = sum of x[n, c] over window (oy, ox) / divisor (PyTorch's)."""

    @staticmethod
    def forward(ctx, x, geometry, count_include_pad):
        kh, kw, sh, sw, ph, pw, oh, ow = geometry
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.geometry, ctx.count_include_pad = geometry, count_include_pad
        return lookup("pool", x).avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad)

    @staticmethod
    def backward(ctx, g):
        H, W = ctx.shape[2:]
        kh, kw, sh, sw, ph, pw = ctx.geometry[:6]
        g = _grad(ctx, g)
        return lookup("pool", g).avg_pool2d_backward(g, H, W, kh, kw, sh, sw, ph, pw, ctx.count_include_pad)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over each kernel_size window of x (N, C, H, W) -> (N, C, OH, OW).

    Arguments as max_pool2d. count_include_pad=True divides by the window size including its
    zero padding; False divides by the number of real cells in the window.
    """
    x = _as_input("avg_pool2d", x)
    geometry = _geometry("avg_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return _batched(lambda t: AvgPool2d.apply(t, geometry=geometry, count_include_pad=bool(count_include_pad)), x)


# ---- adaptive and global average pooling ---------------------------------------------------
class AdaptiveAvgPool2d(Function):
    """out[n, c, i, j] = mean of x[n, c] over bin (i, j), bins floor(i*H/OH) ... ceil((i+1)*H/OH)."""

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return lookup("pool", x).adaptive_avg_pool2d_forward(x, *output_size)

    @staticmethod
    def backward(ctx, g):
        H, W = ctx.shape[2:]
        g = _grad(ctx, g)
        return lookup("pool", g).adaptive_avg_pool2d_backward(g, H, W)


def _output_size(name, output_size, H, W):
    """An int, or a pair whose None entries keep the input's size -> (oh, ow), checked."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(size if v is None else v for v, size in zip(output_size, (H, W)))
    oh, ow = _pair(name, "output_size", output_size)
    if min(oh, ow) < 1:
        raise ValueError(f"{name}: output_size must be >= 1, got {output_size!r}")
    return oh, ow


def adaptive_avg_pool2d(x, output_size):
    """Average pooling of x (N, C, H, W) to exactly output_size (OH, OW), PyTorch's bins.

    output_size: an int, or a pair in which None keeps that input size.
    """
    x = _as_input("adaptive_avg_pool2d", x)
    size = _output_size("adaptive_avg_pool2d", output_size, *x.shape[-2:])
    return _batched(lambda t: AdaptiveAvgPool2d.apply(t, output_size=size), x)


def global_avg_pool2d(x):
    """The mean of each channel: x (N, C, H, W) -> (N, C) (or (C, H, W) -> (C,))."""
    x = _as_input("global_avg_pool2d", x)
    out = _batched(lambda t: AdaptiveAvgPool2d.apply(t, output_size=(1, 1)), x)
    return out.reshape(*out.shape[:-2])
