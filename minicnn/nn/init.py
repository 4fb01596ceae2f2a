"""Weight initialisation, in place, with PyTorch's names and fan rules.

For a weight of shape (out_channels, in_channels, kH, kW) (or (out_features, in_features)):

    receptive_field = kH * kW                     (1 for a Linear weight)
    fan_in  = in_channels  * receptive_field      (inputs that feed one output)
    fan_out = out_channels * receptive_field      (outputs that one input feeds)

    kaiming (He):   std = gain / sqrt(fan)            uniform bound = sqrt(3) * std
    xavier (Glorot): std = gain * sqrt(2 / (fan_in + fan_out))   bound = sqrt(3) * std

Every function fills the tensor in place (keeping its dtype and device) and returns it. Random
numbers come from `generator` (a numpy Generator) or the global one behind `mc.manual_seed`.
"""
import math

import numpy as np

from ..device import array_device, to_device
from ..random import get_rng
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_"]


def _shape(tensor):
    return tuple(tensor.shape)


def _fill(tensor, values):
    """Write `values` into `tensor` (a Tensor or a NumPy array) in place, in its dtype."""
    if isinstance(tensor, Tensor):
        if array_device(tensor.data) == "cpu":
            tensor.data[...] = values
        else:
            tensor.data = to_device(np.asarray(values, dtype=tensor.dtype), tensor.device)
    elif isinstance(tensor, np.ndarray):
        tensor[...] = values
    else:
        raise TypeError(f"nn.init: expected a Tensor, Parameter or NumPy array, got {type(tensor).__name__}")
    return tensor


def _rng(generator):
    return get_rng() if generator is None else generator


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' variance steady through `nonlinearity` (PyTorch's table):
    linear, conv* and sigmoid 1; tanh 5/3; relu sqrt(2); leaky_relu sqrt(2 / (1 + slope**2))
    (slope 0.01 when `param` is None); selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    shape = _shape(tensor)
    if len(shape) < 2:
        raise ValueError(f"nn.init: fan in and fan out can not be computed for a tensor with fewer than "
                         f"2 dimensions, got shape {shape}")
    receptive_field = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init: mode {mode!r} is not supported, expected 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _draw_dtype(tensor):
    """float32 tensors get float32 draws: VGG's 138M weights drawn in float64 cost a GB and seconds."""
    return np.float32 if np.dtype(tensor.dtype) == np.float32 else np.float64


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b)."""
    u = _rng(generator).random(size=_shape(tensor), dtype=_draw_dtype(tensor))
    return _fill(tensor, a + (b - a) * u)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std**2)."""
    z = _rng(generator).standard_normal(size=_shape(tensor), dtype=_draw_dtype(tensor))
    return _fill(tensor, mean + std * z)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std**2) restricted to [a, b] (redraws what falls outside)."""
    rng, shape = _rng(generator), _shape(tensor)
    vals = rng.normal(mean, std, size=shape)
    bad = (vals < a) | (vals > b)
    while bad.any():
        vals[bad] = rng.normal(mean, std, size=int(bad.sum()))
        bad = (vals < a) | (vals > b)
    return _fill(tensor, vals)


def constant_(tensor, val):
    return _fill(tensor, val)


def ones_(tensor):
    return _fill(tensor, 1.0)


def zeros_(tensor):
    return _fill(tensor, 0.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot & Bengio (2010), Keras' `glorot_uniform`: U(-b, b), b = gain*sqrt(6/(fan_in+fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015): U(-b, b), b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, a).
    (The default layers use a=sqrt(5), which makes b = 1/sqrt(fan_in).)"""
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(_calculate_correct_fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015): N(0, std**2), std = gain / sqrt(fan); with nonlinearity="relu",
    std = sqrt(2 / fan_in)."""
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(_calculate_correct_fan(tensor, mode)), generator)
