"""Optimiser updates on the GPU (numba.cuda), in place: the same functions and signatures as
kernels/reference/optim.py (the update rules are written there and in minicnn/optim/).

Legend
    p, grad, buf, m, v, vmax   device arrays of one parameter's shape, updated in place
    scalars                    cast to the parameter's dtype before the launch, so a float32
                               parameter is updated in float32 arithmetic like the reference

Thread-to-data mapping: one thread per parameter element i (flat); it reads and writes only
element i of every array, so the whole update of a parameter is one launch.
"""
import math

from numba import cuda

from ._launch import THREADS, blocks, flat, scalar


@cuda.jit
def _sgd_kernel(p, grad, buf, lr, momentum, damp1, weight_decay, nesterov, maximize, first):
    i = cuda.grid(1)
    if i >= p.size:
        return
    g = -grad[i] if maximize else grad[i]
    if weight_decay != 0:
        g = g + weight_decay * p[i]
    if momentum != 0:
        if first:
            buf[i] = g
        else:
            buf[i] = buf[i] * momentum + damp1 * g
        g = g + momentum * buf[i] if nesterov else buf[i]
    p[i] = p[i] - lr * g


@cuda.jit
def _adam_kernel(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                 maximize, step_size, sqrt_bc2, one):
    i = cuda.grid(1)
    if i >= p.size:
        return
    g = -grad[i] if maximize else grad[i]
    if weight_decay != 0:
        if decoupled:
            p[i] = p[i] * (one - lr * weight_decay)
        else:
            g = g + weight_decay * p[i]
    m[i] = m[i] * beta1 + (one - beta1) * g
    v[i] = v[i] * beta2 + (one - beta2) * g * g
    vi = v[i]
    if amsgrad:
        if vi > vmax[i]:
            vmax[i] = vi
        vi = vmax[i]
    denom = math.sqrt(vi) / sqrt_bc2 + eps
    p[i] = p[i] - step_size * (m[i] / denom)


def sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    if p.size == 0:
        return
    f = p.dtype
    _sgd_kernel[blocks(p.size), THREADS](flat(p), flat(grad), flat(p if buf is None else buf),
                                         scalar(lr, f), scalar(momentum, f), scalar(1 - dampening, f),
                                         scalar(weight_decay, f), bool(nesterov), bool(maximize), bool(first))


def adam_update(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                maximize, step):
    if p.size == 0:
        return
    f = p.dtype
    step_size = lr / (1 - beta1 ** step)
    sqrt_bc2 = math.sqrt(1 - beta2 ** step)
    _adam_kernel[blocks(p.size), THREADS](flat(p), flat(grad), flat(m), flat(v), flat(v if vmax is None else vmax),
                                          scalar(lr, f), scalar(beta1, f), scalar(beta2, f), scalar(eps, f),
                                          scalar(weight_decay, f), bool(decoupled), bool(amsgrad),
                                          bool(maximize), scalar(step_size, f), scalar(sqrt_bc2, f),
                                          scalar(1, f))
