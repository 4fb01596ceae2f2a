"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d. No parameters; the
window arithmetic (OH = (H + 2P - K) // S + 1, PyTorch's ceil_mode rule) lives in
`minicnn.functional`."""
import minicnn.functional as F

from .module import Module


class MaxPool2d(Module):
    """Max over each kH x kW window; `stride=None` means `stride=kernel_size` (no overlap).
    AlexNet's overlapping pool is `MaxPool2d(3, stride=2)`."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        if dilation not in (1, (1, 1)):
            raise ValueError(f"MaxPool2d: only dilation=1 is supported, got {dilation!r}")
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over each window; `count_include_pad=True` divides by the full window size."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        if divisor_override is not None:
            raise ValueError(f"AvgPool2d: divisor_override is not supported, got {divisor_override!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average into a fixed `output_size` (int or (OH, OW)) whatever the input size, with
    PyTorch's bins: bin i covers rows floor(i*H/OH) ... ceil((i+1)*H/OH) - 1."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): the mean of each channel (Network in Network, GoogLeNet, ResNet)."""

    def forward(self, x):
        return F.global_avg_pool2d(x)
