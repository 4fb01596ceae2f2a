"""Stochastic gradient descent with momentum, PyTorch's rule step for step:

    g = grad + weight_decay * p                      (L2 penalty folded into the gradient)
    buf = g                                          (first step: no dampening)
    buf = momentum * buf + (1 - dampening) * g       (later steps)
    g = g + momentum * buf   if nesterov   else   buf
    p = p - lr * g

(Sutskever et al. 2013 write velocity v = mu*v - lr*g; PyTorch keeps lr outside the buffer,
which is the same while lr is constant.)
"""
from ..kernels import lookup
from .optimizer import Optimizer, _check


class SGD(Optimizer):
    _device_update = True  # the update is one "optim" kernel, on the CPU or on the GPU

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        _check(self, group["momentum"] >= 0, f"Invalid momentum value: {group['momentum']} (expected >= 0)")
        _check(self, group["weight_decay"] >= 0,
               f"Invalid weight_decay value: {group['weight_decay']} (expected >= 0)")
        _check(self, not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
               f"Nesterov momentum requires a momentum and zero dampening, got momentum={group['momentum']}, "
               f"dampening={group['dampening']}")

    def _update(self, p, grad, state, group):
        buf, first = state.get("momentum_buffer"), False
        if group["momentum"] != 0 and buf is None:   # created from the first step's gradient
            buf = state["momentum_buffer"] = lookup("elementwise", p).empty(p.shape, p.dtype)
            first = True
        lookup("optim", p).sgd_update(p, grad, buf, group["lr"], group["momentum"], group["dampening"],
                                      group["weight_decay"], group["nesterov"], group["maximize"], first)
