"""Optimiser updates, in place on one parameter: the NumPy specification of kernels/cuda/optim.py
(PyTorch's rules; minicnn/optim/sgd.py and adam.py document them).

Legend
    p, grad, buf, m, v, vmax   arrays of the parameter's shape and dtype, updated in place
    scalars                    Python numbers, applied in the parameter's precision

SGD with momentum (first=True on the first step, when buf is created from g):
    g = grad (+ weight_decay * p);  buf = g  |  buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (nesterov)  |  buf;   p = p - lr * g

Adam (t = the step number, from 1) and AdamW (decoupled: p *= 1 - lr * weight_decay):
    m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2;   vmax = max(vmax, v) (amsgrad)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
import math

import numpy as np


def sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


def adam_update(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                maximize, step):
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    step_size = lr / (1 - beta1 ** step)
    denom = np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    p -= step_size * (m / denom)
