"""Activation kernels on the GPU (numba.cuda): the same functions and signatures as
kernels/reference/activation.py (the formulas and the kink conventions are written there).

Shapes
    x, y, grad_out   any shape, C-contiguous, seen flat as (size,) by the elementwise kernels
    maxout           x (N, C, S) -> out (N, C // P, S) and argmax (N, C // P, S) int64, P pieces

Thread-to-data mapping
    elementwise: one thread per element i of the flattened array.
    maxout:      one thread per OUTPUT (n, co, s); forward scans its P pieces, backward writes
                 all P input gradients of its group (the winner gets g, the others 0), so every
                 input element has exactly one owner.

NaN in, NaN out, as the reference: relu tests `x <= 0` (False for NaN), the others pick the
linear branch with `x > 0`; math.exp/math.tanh propagate NaN.
"""
import math

from numba import cuda

from ._launch import THREADS, blocks, empty, flat, scalar


def _launch(kernel, n, *args):
    if n:
        kernel[blocks(n), THREADS](*args)


# ---- ReLU, leaky ReLU, ELU -----------------------------------------------------------------
@cuda.jit
def _relu_forward_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = 0 if x[i] <= 0 else x[i]


@cuda.jit
def _relu_backward_kernel(x, g, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = g[i] if x[i] > 0 else 0


@cuda.jit
def _leaky_forward_kernel(x, a, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] if x[i] > 0 else x[i] * a


@cuda.jit
def _leaky_backward_kernel(x, g, a, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = g[i] if x[i] > 0 else g[i] * a


@cuda.jit
def _elu_forward_kernel(x, a, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] if x[i] > 0 else a * math.expm1(x[i])


@cuda.jit
def _elu_backward_kernel(x, g, a, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = g[i] if x[i] > 0 else g[i] * (a * math.exp(x[i]))


# ---- sigmoid, tanh -------------------------------------------------------------------------
@cuda.jit
def _sigmoid_forward_kernel(x, one, out):
    i = cuda.grid(1)
    if i < x.size:
        e = math.exp(-abs(x[i]))             # in (0, 1]: never overflows
        r = one / (one + e)
        out[i] = r if x[i] >= 0 else e * r


@cuda.jit
def _sigmoid_backward_kernel(y, g, one, out):
    i = cuda.grid(1)
    if i < y.size:
        out[i] = g[i] * (y[i] * (one - y[i]))


@cuda.jit
def _tanh_forward_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = math.tanh(x[i])


@cuda.jit
def _tanh_backward_kernel(y, g, one, out):
    i = cuda.grid(1)
    if i < y.size:
        out[i] = g[i] * (one - y[i] * y[i])


def _unary(kernel, x, *params):
    out = empty(x.shape, x.dtype)
    _launch(kernel, x.size, flat(x), *params, flat(out))
    return out


def _with_grad(kernel, x, g, *params):
    out = empty(x.shape, x.dtype)
    _launch(kernel, x.size, flat(x), flat(g), *params, flat(out))
    return out


def relu_forward(x):
    return _unary(_relu_forward_kernel, x)


def relu_backward(x, grad_out):
    return _with_grad(_relu_backward_kernel, x, grad_out)


def leaky_relu_forward(x, negative_slope):
    return _unary(_leaky_forward_kernel, x, scalar(negative_slope, x.dtype))


def leaky_relu_backward(x, grad_out, negative_slope):
    return _with_grad(_leaky_backward_kernel, x, grad_out, scalar(negative_slope, x.dtype))


def elu_forward(x, alpha):
    return _unary(_elu_forward_kernel, x, scalar(alpha, x.dtype))


def elu_backward(x, grad_out, alpha):
    return _with_grad(_elu_backward_kernel, x, grad_out, scalar(alpha, x.dtype))


def sigmoid_forward(x):
    return _unary(_sigmoid_forward_kernel, x, scalar(1, x.dtype))


def sigmoid_backward(y, grad_out):
    return _with_grad(_sigmoid_backward_kernel, y, grad_out, scalar(1, y.dtype))


def tanh_forward(x):
    return _unary(_tanh_forward_kernel, x)


def tanh_backward(y, grad_out):
    return _with_grad(_tanh_backward_kernel, y, grad_out, scalar(1, y.dtype))


# ---- maxout --------------------------------------------------------------------------------
@cuda.jit
def _maxout_forward_kernel(x, pieces, out, argmax):
    t = cuda.grid(1)
    N, CO, S = out.shape
    if t >= N * CO * S:
        return
    n = t // (CO * S)
    co = (t // S) % CO
    s = t % S
    best = x[n, co * pieces, s]
    k_best = 0
    for k in range(1, pieces):
        v = x[n, co * pieces + k, s]
        if (v > best or v != v) and best == best:   # first winner; the first NaN wins
            best = v
            k_best = k
    out[n, co, s] = best
    argmax[n, co, s] = k_best


@cuda.jit
def _maxout_backward_kernel(g, argmax, pieces, grad_in):
    t = cuda.grid(1)
    N, CO, S = g.shape
    if t >= N * CO * S:
        return
    n = t // (CO * S)
    co = (t // S) % CO
    s = t % S
    for k in range(pieces):
        grad_in[n, co * pieces + k, s] = g[n, co, s] if k == argmax[n, co, s] else 0


def maxout_forward(x, pieces):
    N, C, S = x.shape
    out = empty((N, C // pieces, S), x.dtype)
    argmax = empty((N, C // pieces, S), "int64")
    _launch(_maxout_forward_kernel, out.size, x, pieces, out, argmax)
    return out, argmax


def maxout_backward(grad_out, argmax, pieces):
    N, CO, S = grad_out.shape
    grad_in = empty((N, CO * pieces, S), grad_out.dtype)
    _launch(_maxout_backward_kernel, grad_out.size, grad_out, argmax, pieces, grad_in)
    return grad_in
