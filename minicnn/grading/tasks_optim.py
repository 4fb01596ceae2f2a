"""A6, the optimiser updates, checked over several steps against kernels/reference/optim.py
(PyTorch's rules).

    sgd_step(p, grad, buf, lr, momentum, nesterov) -> (new_p, new_buf)
        buf = momentum * buf + grad   (buf starts at zeros, so the first step's buf is grad)
        p = p - lr * (grad + momentum * buf if nesterov else buf)
    adam_step(p, grad, m, v, t, lr, beta1, beta2, eps) -> (new_p, new_m, new_v)
        t is the step number, from 1; m and v start at zeros;
        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        p = p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)

The check runs each function for `steps` steps with random gradients and compares the parameter
and the state after every step.
"""
import numpy as np
from hypothesis import strategies as st

from ..kernels.reference import optim as R
from . import _arrays as A
from ._core import Case, Task


@st.composite
def _optim_cases(draw, kind):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    steps, seed = draw(st.integers(1, 5)), draw(A.data_seeds)
    r = A.rng(seed)
    p0, grads = r.standard_normal(shape), r.standard_normal((steps,) + shape)
    cfg = {"shape": shape, "steps": steps}
    if kind == "sgd":
        cfg.update(lr=draw(st.sampled_from([0.1, 0.01])), momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
                   nesterov=draw(st.booleans()))
        if cfg["momentum"] == 0:
            cfg["nesterov"] = False
        feats = {"nesterov": cfg["nesterov"], "momentum > 0": cfg["momentum"] > 0, "more than one step": steps > 1}
        return Case(cfg, (p0, grads, cfg["lr"], cfg["momentum"], cfg["nesterov"]), feats, seed)
    cfg.update(lr=draw(st.sampled_from([0.1, 1e-3])), beta1=draw(st.sampled_from([0.9, 0.5])),
               beta2=draw(st.sampled_from([0.999, 0.9])), eps=1e-8)
    return Case(cfg, (p0, grads, cfg["lr"], cfg["beta1"], cfg["beta2"], cfg["eps"]),
                {"more than one step": steps > 1}, seed)


def _trajectory(step, p, states, grads):
    """Run `step(p, g, *states, t) -> (p, *states)` over grads; -> (every p, every state) stacked."""
    ps, ss = [], []
    for t, g in enumerate(grads, start=1):
        p, *states = step(p, g, *states, t)
        ps.append(np.array(p, dtype=np.float64, copy=True))
        ss.append([np.array(s, dtype=np.float64, copy=True) for s in states])
    return (np.stack(ps),) + tuple(np.stack([s[i] for s in ss]) for i in range(len(ss[0])))


def _sgd_reference(case, nesterov_as_plain=False):
    p0, grads, lr, momentum, nesterov = case.args

    def step(p, g, buf, t):
        p, buf = p.copy(), buf.copy()
        R.sgd_update(p, g, buf, lr, momentum, 0.0, 0.0, nesterov and not nesterov_as_plain, False, t == 1)
        if momentum == 0:   # PyTorch keeps no buffer then; the contract: buf = 0 * buf + grad
            buf = g.copy()
        return p, buf

    return _trajectory(step, p0, [np.zeros_like(p0)], grads)


def _sgd_call(student, case):
    p0, grads, lr, momentum, nesterov = case.args
    return _trajectory(lambda p, g, buf, t: student(p, g, buf, lr, momentum, nesterov),
                       p0, [np.zeros_like(p0)], grads)


SGD_STEP = Task(
    "sgd_step", "A6", "sgd_step(p, grad, buf, lr, momentum, nesterov) -> (new_p, new_buf)",
    lambda: _optim_cases("sgd"), _sgd_reference, outputs=("p after each step", "buf after each step"),
    call=_sgd_call, quantities=lambda c: {"lr": c.config["lr"]},
    mistakes=[("Nesterov steps with buf alone: its step is grad + momentum * buf (the look-ahead)",
               lambda c: _sgd_reference(c, nesterov_as_plain=True))])


def _adam_reference(case, no_correction=False):
    p0, grads, lr, b1, b2, eps = case.args

    def step(p, g, m, v, t):
        p, m, v = p.copy(), m.copy(), v.copy()
        if no_correction:   # a mistake: m and v used as they are
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            return p - lr * m / (np.sqrt(v) + eps), m, v
        R.adam_update(p, g, m, v, None, lr, b1, b2, eps, 0.0, False, False, False, t)
        return p, m, v

    return _trajectory(step, p0, [np.zeros_like(p0), np.zeros_like(p0)], grads)


def _adam_call(student, case):
    p0, grads, lr, b1, b2, eps = case.args
    return _trajectory(lambda p, g, m, v, t: student(p, g, m, v, t, lr, b1, b2, eps),
                       p0, [np.zeros_like(p0), np.zeros_like(p0)], grads)


ADAM_STEP = Task(
    "adam_step", "A6", "adam_step(p, grad, m, v, t, lr, beta1, beta2, eps) -> (new_p, new_m, new_v)",
    lambda: _optim_cases("adam"), _adam_reference,
    outputs=("p after each step", "m after each step", "v after each step"), call=_adam_call,
    mistakes=[("no bias correction: divide m by (1 - beta1^t) and v by (1 - beta2^t), t from 1",
               lambda c: _adam_reference(c, no_correction=True))])

TASKS = [SGD_STEP, ADAM_STEP]
