"""Activation functions, forward and backward: the readable NumPy specification.

Legend
    x        input of any shape (elementwise ops), float32 or float64
    y        the forward output (sigmoid, tanh keep it: their derivative is cheapest from y)
    g        grad_out, the gradient arriving from above, same shape as x
    N, C, S  batch, channels, spatial positions (S = H*W, or 1 for (N, C) input) -- maxout
    P        pieces: maxout output channel c is the max of input channels c*P ... c*P + P - 1

Formulas (derivatives at the kink x = 0 follow PyTorch)
    relu(x)        = max(x, 0)                    relu'(x)  = 1 if x > 0 else 0
    leaky_relu(x)  = x if x > 0 else a*x           leaky'(x) = 1 if x > 0 else a
    elu(x)         = x if x > 0 else a*(e^x - 1)   elu'(x)   = 1 if x > 0 else a*e^x
    sigmoid(x)     = 1 / (1 + e^-x)                sigmoid'  = y * (1 - y)
    tanh(x)                                        tanh'     = 1 - y^2
    maxout(x)[n, c, s] = max_k x[n, c*P + k, s]    the gradient goes to the winning piece
                                                  (the first one on a tie, as np.argmax)

NaN in gives NaN out: every "else" branch below is chosen by a comparison that is False for
NaN on the side that keeps the NaN (e.g. relu is written `x <= 0 ? 0 : x`).
"""
import numpy as np


# ---- ReLU ---------------------------------------------------------------------------------
def relu_forward(x):
    # `x <= 0` rather than `x > 0`: NaN fails the test and passes through unchanged
    return np.where(x <= 0, 0, x).astype(x.dtype, copy=False)


def relu_backward(x, grad_out):
    return np.where(x > 0, grad_out, 0).astype(x.dtype, copy=False)


# ---- Leaky ReLU ---------------------------------------------------------------------------
def leaky_relu_forward(x, negative_slope):
    a = x.dtype.type(negative_slope)  # compute in x's precision
    return np.where(x > 0, x, x * a)


def leaky_relu_backward(x, grad_out, negative_slope):
    a = x.dtype.type(negative_slope)
    return np.where(x > 0, grad_out, grad_out * a)


# ---- ELU ----------------------------------------------------------------------------------
def elu_forward(x, alpha):
    a = x.dtype.type(alpha)
    with np.errstate(over="ignore"):  # expm1 of a large x overflows in the branch np.where drops
        return np.where(x > 0, x, a * np.expm1(x))


def elu_backward(x, grad_out, alpha):
    a = x.dtype.type(alpha)
    with np.errstate(over="ignore", under="ignore"):  # e^x of the dropped branch / of x << 0
        return np.where(x > 0, grad_out, grad_out * (a * np.exp(x)))


# ---- Sigmoid ------------------------------------------------------------------------------
def sigmoid_forward(x):
    # Stable form: with e = e^-|x| (always in (0, 1], never overflows)
    #   x >= 0: 1 / (1 + e^-x) = 1 / (1 + e)
    #   x <  0: e^x / (1 + e^x) = e / (1 + e)
    with np.errstate(under="ignore"):  # e^-|x| for |x| >> 0 is 0, which is right
        e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r).astype(x.dtype, copy=False)


def sigmoid_backward(y, grad_out):
    return grad_out * (y * (1 - y))


# ---- Tanh ---------------------------------------------------------------------------------
def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(y, grad_out):
    return grad_out * (1 - y * y)


# ---- Maxout -------------------------------------------------------------------------------
def maxout_forward(x, pieces):
    """x (N, C, S) -> out (N, C // P, S) and argmax (N, C // P, S): the winning piece k."""
    N, C, S = x.shape
    groups = x.reshape(N, C // pieces, pieces, S)
    argmax = np.argmax(groups, axis=2)                      # first winner on a tie, first NaN
    out = np.take_along_axis(groups, argmax[:, :, None, :], axis=2)[:, :, 0, :]
    return out, argmax.astype(np.int64)


def maxout_backward(grad_out, argmax, pieces):
    """grad_out (N, C // P, S) -> grad_in (N, C, S): each output's gradient to its winner."""
    N, CO, S = grad_out.shape
    grad_in = np.zeros((N, CO, pieces, S), dtype=grad_out.dtype)
    np.put_along_axis(grad_in, argmax[:, :, None, :], grad_out[:, :, None, :], axis=2)
    return grad_in.reshape(N, CO * pieces, S)
