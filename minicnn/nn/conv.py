"""Layers with weights: Linear, Conv1d, Conv2d. Each holds its Parameters and calls
`minicnn.functional`; the math (and the output size OH = (H + 2P - D*(K-1) - 1) // S + 1)
lives there.

Default initialisation is PyTorch's:
    weight ~ kaiming_uniform_(a=sqrt(5))  ->  U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bias   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
with fan_in = in_channels/groups * kH * kW (in_features for Linear).
"""
import math

import numpy as np

import minicnn.functional as F

from . import init
from .module import Module, Parameter


def _tuple(fn, name, value, n):
    """An int or an n-tuple of ints -> an n-tuple (a clear ValueError otherwise)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(isinstance(v, (int, np.integer)) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def _empty(shape, dtype):
    return Parameter(np.zeros(shape, dtype=np.dtype(dtype)), dtype=dtype)


class Linear(Module):
    """y = x W^T + b;  weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=np.float32):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty((self.out_features, self.in_features), dtype)
        self.bias = _empty((self.out_features,), dtype) if bias else None
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    _dims = 2  # spatial dimensions

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=np.float32):
        super().__init__()
        fn, n = type(self).__name__, self._dims
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{fn}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                             f"be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{fn}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _tuple(fn, "kernel_size", kernel_size, n)
        self.stride = _tuple(fn, "stride", stride, n)
        self.dilation = _tuple(fn, "dilation", dilation, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{fn}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            self.padding = padding
        else:
            self.padding = _tuple(fn, "padding", padding, n)
        if min(self.kernel_size + self.stride + self.dilation) <= 0 or (
                not isinstance(self.padding, str) and min(self.padding) < 0):
            raise ValueError(f"{fn}: kernel_size, stride and dilation must be positive and padding non-negative, "
                             f"got kernel_size={kernel_size}, stride={stride}, dilation={dilation}, padding={padding}")
        self.padding_mode = padding_mode
        self.weight = _empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size, dtype)
        self.bias = _empty((self.out_channels,), dtype) if bias else None
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.size // self.out_channels   # in_channels/groups * prod(kernel)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _conv_args(self):
        n = self._dims
        padding = self.padding if isinstance(self.padding, str) else (self.padding[0] if n == 1 else self.padding)
        one = (lambda t: t[0]) if n == 1 else (lambda t: t)
        return dict(stride=one(self.stride), padding=padding, dilation=one(self.dilation), groups=self.groups)

    def extra_repr(self):
        n = self._dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W); weight (out_channels, in_channels // groups, kH, kW).

    OH = (H + 2*pH - dH*(kH - 1) - 1) // sH + 1   (padding="same": OH = ceil(H / sH))
    """
    _dims = 2

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, **self._conv_args())


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L); weight (out_channels, in_channels // groups, k)."""
    _dims = 1

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, **self._conv_args())
