"""Optimiser updates on the CPU (Numba), in place: the same functions and signatures as
kernels/reference/optim.py (the update rules are written there and in minicnn/optim/).

Legend
    p, grad, buf, m, v, vmax   arrays of one parameter's shape, updated in place
    scalars                    cast to the parameter's dtype first, so a float32 parameter is
                               updated in float32 arithmetic like the reference

Why a kernel: NumPy's version of one update makes six passes over the parameter and allocates
three temporaries (g + wd*p, (1-d)*g, lr*g); here each element is read and written once, so the
update of VGG-11's 132M parameters streams each array once instead of ~6 times. Elements are
independent: prange splits them over the threads with no races.

Subnormal buffers are flushed to zero (`tiny`: the dtype's smallest normal number). Where a
gradient stays 0 (the weights of a dead ReLU unit), the momentum buffer shrinks by 0.9 a step
and after ~800 steps falls below float32's normal range; every operation on a subnormal then
costs the CPU a microcode assist, ~100 times a normal one. Two epochs of LeNet-5 on MNIST left
69% of fc1's buffer subnormal and its SGD update 10x slower (benchmarks/results/cpu_measurements.md).
A flushed value is below 1.2e-38: lr times it moves no parameter that is not itself that small.
"""
import math

import numpy as np
from numba import prange

from ..reference import optim as reference
from ._jit import kernel, sized


@kernel
def _sgd_kernel(p, grad, buf, lr, momentum, damp1, weight_decay, nesterov, maximize, first, tiny):
    for i in prange(p.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p[i]
        if momentum != 0:
            if first:
                buf[i] = g
            else:
                b = buf[i] * momentum + damp1 * g
                buf[i] = b if abs(b) >= tiny else b * 0   # a subnormal to (signed) zero
            g = g + momentum * buf[i] if nesterov else buf[i]
        p[i] = p[i] - lr * g


@kernel
def _adam_kernel(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                 maximize, step_size, sqrt_bc2, one, tiny):
    for i in prange(p.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            if decoupled:
                p[i] = p[i] * (one - lr * weight_decay)
            else:
                g = g + weight_decay * p[i]
        mi = m[i] * beta1 + (one - beta1) * g
        m[i] = mi if abs(mi) >= tiny else mi * 0        # subnormals to zero (see above)
        vi = v[i] * beta2 + (one - beta2) * g * g
        vi = vi if vi >= tiny else vi * 0
        v[i] = vi
        if amsgrad:
            if vi > vmax[i]:
                vmax[i] = vi
            vi = vmax[i]
        denom = math.sqrt(vi) / sqrt_bc2 + eps
        p[i] = p[i] - step_size * (m[i] / denom)


def _flat(*arrays):
    """1-D views of C-contiguous arrays of one dtype, or None when any is not one (then the
    reference's NumPy update runs: it takes any layout)."""
    dtype = arrays[0].dtype
    if any(a.dtype != dtype or not a.flags.c_contiguous for a in arrays) or dtype.kind != "f":
        return None
    return [a.reshape(-1) for a in arrays]


def sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    flat = _flat(p, grad, p if buf is None else buf)
    if flat is None or p.size == 0:
        return reference.sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov,
                                    maximize, first)
    f = p.dtype.type
    sized(_sgd_kernel, p.size, streaming=True)(*flat, f(lr), f(momentum), f(1 - dampening), f(weight_decay),
                               bool(nesterov), bool(maximize), bool(first), f(np.finfo(p.dtype).tiny))


def adam_update(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                maximize, step):
    flat = _flat(p, grad, m, v, v if vmax is None else vmax)
    if flat is None or p.size == 0:
        return reference.adam_update(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                                     decoupled, amsgrad, maximize, step)
    f = p.dtype.type
    step_size = lr / (1 - beta1 ** step)
    sqrt_bc2 = math.sqrt(1 - beta2 ** step)
    sized(_adam_kernel, p.size, streaming=True)(*flat, f(lr), f(beta1), f(beta2), f(eps), f(weight_decay),
                                bool(decoupled), bool(amsgrad), bool(maximize), f(step_size),
                                f(sqrt_bc2), f(1), f(np.finfo(p.dtype).tiny))

