"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), PyTorch's rules:

    t = t + 1
    g = grad + weight_decay * p             (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)         (AdamW instead: decoupled weight decay)
    m = beta1 * m + (1 - beta1) * g         (first moment)
    v = beta2 * v + (1 - beta2) * g * g     (second moment)
    v_max = max(v_max, v)                   (amsgrad only; used in place of v below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
"""
from ..kernels import lookup
from .optimizer import Optimizer, _check


class Adam(Optimizer):
    _decoupled = False
    _device_update = True  # the update is one "optim" kernel, on the CPU or on the GPU

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
        E = lookup("elementwise", p)
        if not state:
            state["step"] = 0
            state["exp_avg"] = E.zeros(p.shape, p.dtype)
            state["exp_avg_sq"] = E.zeros(p.shape, p.dtype)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = E.zeros(p.shape, p.dtype)
        state["step"] += 1
        lookup("optim", p).adam_update(p, grad, state["exp_avg"], state["exp_avg_sq"],
                                       state.get("max_exp_avg_sq"), lr, beta1, beta2, eps, wd,
                                       self._decoupled, group["amsgrad"], group["maximize"], state["step"])


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2): p shrinks by lr*weight_decay each step,
    outside the adaptive scaling."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
