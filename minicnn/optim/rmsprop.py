"""RMSprop (Hinton, lecture 6e), PyTorch's rule:

    g = grad + weight_decay * p
    s = alpha * s + (1 - alpha) * g * g               (running mean of squared gradients)
    a = alpha * a + (1 - alpha) * g                   (centered only: running mean of gradients)
    d = sqrt(s - a * a) + eps   if centered   else   sqrt(s) + eps
    buf = momentum * buf + g / d;  p = p - lr * buf   (momentum > 0)
    p = p - lr * g / d                                (otherwise)

Note eps is added OUTSIDE the square root, as PyTorch does (TensorFlow adds it inside).
"""
import numpy as np

from .optimizer import Optimizer, _check


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        _check(self, group["eps"] >= 0, f"Invalid epsilon value: {group['eps']} (expected >= 0)")
        _check(self, group["momentum"] >= 0, f"Invalid momentum value: {group['momentum']} (expected >= 0)")
        _check(self, group["weight_decay"] >= 0,
               f"Invalid weight_decay value: {group['weight_decay']} (expected >= 0)")
        _check(self, group["alpha"] >= 0, f"Invalid alpha value: {group['alpha']} (expected >= 0)")

    def _update(self, p, grad, state, group):
        alpha, eps, wd, momentum = group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        g = -grad if group["maximize"] else grad
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if wd != 0:
            g = g + wd * p
        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * g * g
        if group["centered"]:
            a = state["grad_avg"]
            a *= alpha
            a += (1 - alpha) * g
            denom = np.sqrt(s - a * a) + eps
        else:
            denom = np.sqrt(s) + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / denom
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * (g / denom)
