"""Activation functions, forward and backward: Numba versions of kernels/reference/activation.py.

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

The public functions are thin wrappers with the reference signatures: they flatten the arrays
(any shape works), cast scalar parameters to x's dtype (so float32 stays float32 inside the
loop, bit for bit as the reference computes it) and call a jitted loop over elements. Every
prange iteration writes only its own element, or for maxout its own (n, c) plane.

Why exp is not `math.exp`: that compiles to a call into the C maths library, one element at a
time, and a loop with such a call cannot use SIMD registers (tanh was several times slower than
PyTorch's that way; see benchmarks/results/cpu_measurements.md). Every exponential these
activations need has an argument v <= 0 (sigmoid uses e^-|x|, tanh e^-2|x|, elu e^x only for
x <= 0), so they use exp_nonpos / expm1_nonpos from _exp.py: plain arithmetic the compiler
vectorises (the formulas are in that file), in the data's own dtype.
"""
import numpy as np
from numba import prange

from ._exp import exp_nonpos, expm1_nonpos
from ._jit import kernel, sized


def _flat(a):
    """A contiguous 1-D view (or copy) of `a`; the loops below index it by element."""
    return np.ascontiguousarray(a).reshape(-1)


# ---- elementwise loops --------------------------------------------------------------------
@kernel
def _relu_forward(x, out):
    zero = x.dtype.type(0)  # a typed 0: a bare 0 would turn float32 math into float64
    for i in prange(x.size):
        v = x[i]
        out[i] = zero if v <= 0 else v  # NaN fails `v <= 0` and passes through


@kernel
def _relu_backward(x, g, out):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        out[i] = g[i] if x[i] > 0 else zero


@kernel
def _leaky_relu_forward(x, a, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else v * a


@kernel
def _leaky_relu_backward(x, g, a, out):
    for i in prange(x.size):
        out[i] = g[i] if x[i] > 0 else g[i] * a


@kernel
def _elu_forward(x, a, out):
    zero = x.dtype.type(0)             # typed constants: a bare 0.0 would make float32 math float64
    for i in prange(x.size):
        v = x[i]
        u = zero if v > 0 else v       # keep the helper's argument <= 0; NaN stays NaN
        out[i] = v if v > 0 else a * expm1_nonpos(u)


@kernel
def _elu_backward(x, g, a, out):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        u = zero if v > 0 else v
        out[i] = g[i] if v > 0 else g[i] * (a * exp_nonpos(u))


@kernel
def _sigmoid_forward(x, out):
    one = x.dtype.type(1)
    for i in prange(x.size):
        v = x[i]
        e = exp_nonpos(-abs(v))       # in (0, 1]: never overflows
        r = one / (one + e)
        out[i] = r if v >= 0 else e * r


@kernel
def _sigmoid_backward(y, g, out):
    one = y.dtype.type(1)
    for i in prange(y.size):
        out[i] = g[i] * (y[i] * (one - y[i]))


@kernel
def _tanh_forward(x, out):
    two = x.dtype.type(2)
    for i in prange(x.size):
        v = x[i]
        m = expm1_nonpos(-two * abs(v))   # tanh|v| = (1 - e^-2|v|) / (1 + e^-2|v|) = -m / (2 + m)
        t = -m / (two + m)
        out[i] = t if v > 0 else (-t if v < 0 else v)  # v = +-0 or NaN: returned as it is


@kernel
def _tanh_backward(y, g, out):
    one = y.dtype.type(1)
    for i in prange(y.size):
        out[i] = g[i] * (one - y[i] * y[i])


# ---- public wrappers (same signatures as the reference) ----------------------------------
def _unary(loop, x, *scalars, cheap=False):
    """cheap: a compare or a multiply per element, no exp (serial up to more elements: _jit.sized)"""
    out = np.empty(x.shape, dtype=x.dtype)
    sized(loop, x.size, cheap)(_flat(x), *[x.dtype.type(s) for s in scalars], out.reshape(-1))
    return out


def _binary(loop, x, g, *scalars, cheap=False):
    out = np.empty(x.shape, dtype=x.dtype)
    sized(loop, x.size, cheap)(_flat(x), _flat(g), *[x.dtype.type(s) for s in scalars], out.reshape(-1))
    return out


def relu_forward(x):
    return _unary(_relu_forward, x, cheap=True)


def relu_backward(x, grad_out):
    return _binary(_relu_backward, x, grad_out, cheap=True)


def leaky_relu_forward(x, negative_slope):
    return _unary(_leaky_relu_forward, x, negative_slope, cheap=True)


def leaky_relu_backward(x, grad_out, negative_slope):
    return _binary(_leaky_relu_backward, x, grad_out, negative_slope, cheap=True)


def elu_forward(x, alpha):
    return _unary(_elu_forward, x, alpha)


def elu_backward(x, grad_out, alpha):
    return _binary(_elu_backward, x, grad_out, alpha)


def sigmoid_forward(x):
    return _unary(_sigmoid_forward, x)


def sigmoid_backward(y, grad_out):
    return _binary(_sigmoid_backward, y, grad_out, cheap=True)


def tanh_forward(x):
    return _unary(_tanh_forward, x)


def tanh_backward(y, grad_out):
    return _binary(_tanh_backward, y, grad_out, cheap=True)


# ---- Maxout -------------------------------------------------------------------------------
@kernel
def _maxout_forward(x, pieces, out, argmax):
    N, CO, S = out.shape
    for plane in prange(N * CO):          # one (n, c) output plane per iteration
        n, c = plane // CO, plane % CO
        for s in range(S):
            best = x[n, c * pieces, s]
            k_best = 0
            for k in range(1, pieces):
                if best != best:          # a NaN already won: keep the first one, as np.argmax
                    break
                v = x[n, c * pieces + k, s]
                if v > best or v != v:    # strictly greater: the first winner keeps a tie
                    best = v
                    k_best = k
            out[n, c, s] = best
            argmax[n, c, s] = k_best


@kernel
def _maxout_backward(g, argmax, pieces, grad_in):
    N, CO, S = g.shape
    zero = g.dtype.type(0)
    for plane in prange(N * CO):          # owns input channels c*P ... c*P + P - 1 of image n
        n, c = plane // CO, plane % CO
        for k in range(pieces):
            for s in range(S):
                grad_in[n, c * pieces + k, s] = g[n, c, s] if argmax[n, c, s] == k else zero


def maxout_forward(x, pieces):
    """x (N, C, S) -> out (N, C // P, S) and argmax (N, C // P, S): the winning piece k."""
    N, C, S = x.shape
    out = np.empty((N, C // pieces, S), dtype=x.dtype)
    argmax = np.empty((N, C // pieces, S), dtype=np.int64)
    _maxout_forward(np.ascontiguousarray(x), pieces, out, argmax)
    return out, argmax


def maxout_backward(grad_out, argmax, pieces):
    """grad_out (N, C // P, S) -> grad_in (N, C, S): each output's gradient to its winner."""
    N, CO, S = grad_out.shape
    grad_in = np.empty((N, CO * pieces, S), dtype=grad_out.dtype)
    _maxout_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(argmax), pieces, grad_in)
    return grad_in
