"""Activations: relu, leaky_relu, elu, sigmoid, tanh, maxout.

Each op is a Function whose forward and backward call the "activation" kernels (see
kernels/reference/activation.py for the formulas). Derivatives at the kink x = 0 follow
PyTorch: relu'(0) = 0, leaky_relu'(0) = negative_slope, elu'(0) = alpha (the `x > 0` test
picks the linear branch, so 0 takes the other one).
"""
import numbers

import numpy as np

from ..kernels import lookup
from ..tensor import Function
from .basic import as_tensor


def _float_input(name, x):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_scalar(name, param, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {param} must be a real number, got {value!r}")


# ---- elementwise activations --------------------------------------------------------------
class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = lookup("activation", x).relu_forward(x)
        ctx.save_for_backward(y)  # y > 0 exactly where x > 0; y is kept by the next layer anyway
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return lookup("activation", y).relu_backward(y, g)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return lookup("activation", x).leaky_relu_forward(x, negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return lookup("activation", x).leaky_relu_backward(x, g, ctx.negative_slope)


class ELU(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return lookup("activation", x).elu_forward(x, alpha)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return lookup("activation", x).elu_backward(x, g, ctx.alpha)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = lookup("activation", x).sigmoid_forward(x)
        ctx.save_for_backward(y)  # sigmoid' = y (1 - y): the output is all backward needs
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return lookup("activation", y).sigmoid_backward(y, g)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = lookup("activation", x).tanh_forward(x)
        ctx.save_for_backward(y)  # tanh' = 1 - y^2
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return lookup("activation", y).tanh_backward(y, g)


def relu(x):
    """max(x, 0), elementwise."""
    return ReLU.apply(_float_input("relu", x))


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    _check_scalar("leaky_relu", "negative_slope", negative_slope)
    return LeakyReLU.apply(_float_input("leaky_relu", x), negative_slope=float(negative_slope))


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    _check_scalar("elu", "alpha", alpha)
    return ELU.apply(_float_input("elu", x), alpha=float(alpha))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for any x."""
    return Sigmoid.apply(_float_input("sigmoid", x))


def tanh(x):
    return Tanh.apply(_float_input("tanh", x))


# ---- maxout -------------------------------------------------------------------------------
class Maxout(Function):
    """(N, C, S) -> (N, C // pieces, S); the op below reshapes (N, C) and (N, C, H, W) to it."""

    @staticmethod
    def forward(ctx, x, pieces):
        N, C = x.shape[:2]
        x3 = x.reshape(N, C, -1)
        out, argmax = lookup("activation", x).maxout_forward(x3, pieces)
        ctx.save_for_backward(argmax)
        ctx.shape, ctx.pieces = x.shape, pieces
        return out.reshape((N, C // pieces) + x.shape[2:])

    @staticmethod
    def backward(ctx, g):
        (argmax,) = ctx.saved
        N, CO = g.shape[:2]
        grad = lookup("activation", g).maxout_backward(g.reshape(N, CO, -1), argmax, ctx.pieces)
        return grad.reshape(ctx.shape)


def maxout(x, pieces):
    """Output channel c is the max of input channels c*pieces ... c*pieces + pieces - 1.

    Works on (N, C) and (N, C, H, W); C must be divisible by `pieces`. The gradient goes to the
    winning piece (the first one on a tie).
    """
    x = _float_input("maxout", x)
    if isinstance(pieces, bool) or not isinstance(pieces, numbers.Integral):
        raise TypeError(f"maxout: pieces must be an integer, got {pieces!r}")
    if pieces < 1:
        raise ValueError(f"maxout: pieces must be at least 1, got {pieces}")
    if x.ndim not in (2, 4):
        raise ValueError(f"maxout: expected input of shape (N, C) or (N, C, H, W), got {x.shape}")
    C = x.shape[1]
    if C % pieces != 0:
        raise ValueError(f"maxout: the number of channels C={C} is not divisible by pieces={pieces}")
    return Maxout.apply(x, pieces=int(pieces))
