"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), PyTorch's rules:

    t = t + 1
    g = grad + weight_decay * p             (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)         (AdamW instead: decoupled weight decay)
    m = beta1 * m + (1 - beta1) * g         (first moment)
    v = beta2 * v + (1 - beta2) * g * g     (second moment)
    v_max = max(v_max, v)                   (amsgrad only; used in place of v below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
"""
import math

import numpy as np

from .optimizer import Optimizer, _check


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        b1, b2 = group["betas"]
        _check(self, group["eps"] >= 0, f"Invalid epsilon value: {group['eps']} (expected >= 0)")
        _check(self, 0.0 <= b1 < 1.0, f"Invalid beta parameter at index 0: {b1} (expected 0 <= beta1 < 1)")
        _check(self, 0.0 <= b2 < 1.0, f"Invalid beta parameter at index 1: {b2} (expected 0 <= beta2 < 1)")
        _check(self, group["weight_decay"] >= 0,
               f"Invalid weight_decay value: {group['weight_decay']} (expected >= 0)")

    def _update(self, p, grad, state, group):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2): p shrinks by lr*weight_decay each step,
    outside the adaptive scaling."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
