"""A5: batch norm (training, eval, running statistics) and LRN, checked against
kernels/reference/norm.py.

x is (N, C) or (N, C, H, W); batch norm's statistics are per channel, over every axis but 1.
    batchnorm_forward(x, gamma, beta, eps) -> y                   training: the batch's statistics
    batchnorm_backward(x, gamma, grad_out, eps) -> (dx, dgamma, dbeta)     training mode
    batchnorm_running_update(running_mean, running_var, x, momentum) -> (new_mean, new_var)
        new = (1 - momentum) * running + momentum * batch value; the variance unbiased (M - 1)
    batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps) -> y
    lrn_forward(x, size, alpha, beta, k) -> out       AlexNet's formula, alpha NOT divided by size
    lrn_backward(x, grad_out, size, alpha, beta, k) -> dx
"""
import numpy as np
from hypothesis import strategies as st

from ..kernels.reference import norm as R
from . import _arrays as A
from ._core import Case, Task
from ._gradcheck import check_backward


def _ncs(x):
    return x.reshape(x.shape[0], x.shape[1], -1)


@st.composite
def _bn_cases(draw, kind):
    four_d = draw(st.booleans())
    N, C = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    shape = (N, C, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if four_d else (N, C)
    seed = draw(A.data_seeds)
    r = A.rng(seed)
    x = r.standard_normal(shape) * 2 + 1
    gamma, beta = r.standard_normal(C), r.standard_normal(C)
    eps = 1e-5
    cfg = {"x shape": shape}
    feats = {"an (N, C, H, W) input": four_d, "H*W > 1": four_d and shape[2] * shape[3] > 1}
    if kind == "forward":
        args = (x, gamma, beta, eps)
    elif kind == "backward":
        args = (x, gamma, r.standard_normal(shape), eps)
    elif kind == "running":
        cfg["momentum"] = draw(st.sampled_from([0.1, 0.3, 0.9]))
        args = (r.standard_normal(C), r.random(C) + 0.5, x, cfg["momentum"])
    else:  # eval
        args = (x, gamma, beta, r.standard_normal(C), r.random(C) + 0.5, eps)
    return Case(cfg, args, feats, seed)


def _bn_forward(case, per_activation=False, unbiased=False):
    x, gamma, beta, eps = case.args
    x3 = _ncs(x)
    if per_activation:   # a mistake: statistics over the batch axis only
        mean, var = x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return ((x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape),)
    mean, var = R.batch_norm_stats(x3)
    if unbiased:
        M = x3.shape[0] * x3.shape[2]
        var = var * M / max(M - 1, 1)
    invstd = R.batch_norm_invstd(var, eps, x.dtype)
    return (R.batch_norm_forward(x3, mean, invstd, gamma, beta).reshape(x.shape),)


BATCHNORM_FORWARD = Task(
    "batchnorm_forward", "A5", "batchnorm_forward(x, gamma, beta, eps) -> y (training mode)",
    lambda: _bn_cases("forward"), _bn_forward,
    mistakes=[("statistics per activation (over the batch axis only); batch norm after a conv "
               "normalises per CHANNEL, over N, H and W", lambda c: _bn_forward(c, per_activation=True)),
              ("the unbiased variance (M - 1) in the forward: normalise with the biased one (1/M); "
               "only the running average uses M - 1", lambda c: _bn_forward(c, unbiased=True))])


def _bn_backward(case, drop=None):
    """The reference backward; `drop` leaves out a term of dx = invstd*gamma/M * (M g - sum g -
    xhat * sum(g xhat)) to reproduce a mistake: "mean" drops sum g, "var" drops xhat*sum(g xhat)."""
    x, gamma, g, eps = case.args
    x3, g3 = _ncs(x), _ncs(g)
    mean, var = R.batch_norm_stats(x3)
    invstd = R.batch_norm_invstd(var, eps, x.dtype)
    dx, dgamma, dbeta = R.batch_norm_backward(g3, x3, mean, invstd, gamma)
    if drop is not None:
        M = x3.shape[0] * x3.shape[2]
        i = invstd[None, :, None] * gamma[None, :, None]
        xhat = (x3 - mean[None, :, None]) * invstd[None, :, None]
        sum_g, sum_gx = g3.sum(axis=(0, 2))[None, :, None], (g3 * xhat).sum(axis=(0, 2))[None, :, None]
        mean_term = 0 if drop in ("mean", "both") else sum_g
        var_term = 0 if drop in ("var", "both") else xhat * sum_gx
        dx = i / M * (M * g3 - mean_term - var_term)
    return dx.reshape(x.shape), dgamma, dbeta


def _bn_backward_gradcheck(case, student):
    x, gamma, g, eps = case.args
    beta = A.normal(A.rng(case.data_seed), gamma.shape)

    def forward(x, gamma, beta):
        return _bn_forward(Case(case.config, (x, gamma, beta, eps), {}))[0]

    def backward(arrays, g):
        dx, dgamma, dbeta = student(arrays[0], arrays[1], g, eps)
        return dx, dgamma, dbeta

    check_backward(forward, backward, [x, gamma, beta], ("x", "gamma", "beta"))


BATCHNORM_BACKWARD = Task(
    "batchnorm_backward", "A5", "batchnorm_backward(x, gamma, grad_out, eps) -> (dx, dgamma, dbeta)",
    lambda: _bn_cases("backward"), _bn_backward, outputs=("dx", "dgamma", "dbeta"),
    gradcheck=_bn_backward_gradcheck, quantities=lambda c: {"M (values per channel)": _ncs(c.args[0]).shape[0] * _ncs(c.args[0]).shape[2]},
    mistakes=[("dx drops the mean term -sum(g): the batch mean depends on every x too, so dx "
               "= invstd*gamma/M * (M*g - sum(g) - xhat*sum(g*xhat))", lambda c: _bn_backward(c, "mean")),
              ("dx drops the variance term -xhat*sum(g*xhat): the batch variance depends on every x "
               "too", lambda c: _bn_backward(c, "var")),
              ("dx is the eval-mode gradient g*gamma*invstd: in training mode mean and variance "
               "depend on x", lambda c: _bn_backward(c, "both"))])


def _running(case, biased=False, swapped=False):
    rm, rv, x, momentum = case.args
    x3 = _ncs(x)
    mean, var = R.batch_norm_stats(x3)
    M = x3.shape[0] * x3.shape[2]
    if biased:
        var = var * (M - 1) / M   # the reference makes it unbiased: undo that
    f = 1 - momentum if swapped else momentum
    rm, rv = rm.copy(), rv.copy()
    R.batch_norm_update_running(rm, rv, mean, var, f, M)
    return rm, rv


BATCHNORM_RUNNING = Task(
    "batchnorm_running_update", "A5",
    "batchnorm_running_update(running_mean, running_var, x, momentum) -> (new_mean, new_var)",
    lambda: _bn_cases("running"), _running, outputs=("running_mean", "running_var"),
    mistakes=[("the running variance uses the biased batch variance: PyTorch keeps the unbiased "
               "one, var * M / (M - 1)", lambda c: _running(c, biased=True)),
              ("momentum weights the old value: new = (1 - momentum) * running + momentum * batch",
               lambda c: _running(c, swapped=True))])


def _bn_eval(case):
    x, gamma, beta, rm, rv, eps = case.args
    invstd = R.batch_norm_invstd(rv, eps, x.dtype)
    return (R.batch_norm_forward(_ncs(x), rm, invstd, gamma, beta).reshape(x.shape),)


BATCHNORM_EVAL = Task(
    "batchnorm_eval_forward", "A5",
    "batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps) -> y",
    lambda: _bn_cases("eval"), _bn_eval,
    mistakes=[("eval mode normalises with the batch's own statistics: it must use the running ones",
               lambda c: _bn_forward(Case(c.config, (c.args[0], c.args[1], c.args[2], c.args[5]), {})))])


# ---- LRN -------------------------------------------------------------------------------------
@st.composite
def _lrn_cases(draw, grad):
    N, C, S = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    size = draw(st.integers(1, 5))
    alpha = draw(st.sampled_from([0.3, 0.5, 1.0]))   # large enough that a wrong window shows
    beta, k = 0.75, 2.0
    seed = draw(A.data_seeds)
    r = A.rng(seed)
    x = r.standard_normal((N, C, 1, S))
    cfg = {"x shape": x.shape, "size": size, "alpha": alpha, "beta": beta, "k": k}
    feats = {"an even size": size % 2 == 0, "size > 1": size > 1}
    args = (x, r.standard_normal(x.shape)) if grad else (x,)
    return Case(cfg, args + (size, alpha, beta, k), feats, seed)


def _lrn_forward(case, alpha_over_size=False, symmetric=False):
    x, size, alpha, beta, k = case.args
    if symmetric:  # a mistake: the window c - size//2 ... c + size//2 (too wide for even size)
        C = x.shape[1]
        sq = np.stack([(x[:, max(0, c - size // 2):min(C, c + size // 2 + 1)] ** 2).sum(axis=1)
                       for c in range(C)], axis=1)
        return (x / (k + alpha * sq) ** beta,)
    a = alpha / size if alpha_over_size else alpha
    return (R.lrn_forward(_ncs(x), size, a, beta, k)[0].reshape(x.shape),)


LRN_FORWARD = Task(
    "lrn_forward", "A5", "lrn_forward(x, size, alpha, beta, k) -> out", lambda: _lrn_cases(False),
    _lrn_forward,
    mistakes=[("alpha is divided by size (PyTorch's local_response_norm); the AlexNet formula "
               "uses alpha as given", lambda c: _lrn_forward(c, alpha_over_size=True)),
              ("the window is c - size//2 ... c + size//2 (size + 1 channels for an even size); it "
               "is c - size//2 ... c + (size - 1)//2", lambda c: _lrn_forward(c, symmetric=True))])


def _lrn_backward(case):
    x, g, size, alpha, beta, k = case.args
    x3 = _ncs(x)
    out, scale = R.lrn_forward(x3, size, alpha, beta, k)
    return (R.lrn_backward(x3, out, scale, _ncs(g), size, alpha, beta, k).reshape(x.shape),)


def _lrn_backward_diagonal(case):
    """Only the c == j term: dx = g * s^-beta, as if the scale did not depend on x."""
    x, g, size, alpha, beta, k = case.args
    _, scale = R.lrn_forward(_ncs(x), size, alpha, beta, k)
    return (g * scale.reshape(x.shape) ** -beta,)


def _lrn_gradcheck(case, student):
    x, g, *params = case.args
    check_backward(lambda x: R.lrn_forward(_ncs(x), *params)[0].reshape(x.shape),
                   lambda arrays, g: student(arrays[0], g, *params), [x], ("x",))


LRN_BACKWARD = Task(
    "lrn_backward", "A5", "lrn_backward(x, grad_out, size, alpha, beta, k) -> dx",
    lambda: _lrn_cases(True), _lrn_backward, outputs=("dx",), gradcheck=_lrn_gradcheck,
    mistakes=[("only the direct term g * s^-beta: the scale s_c depends on the neighbours' "
               "x_j too (-2 alpha beta x_j * sum over the windows containing j)", _lrn_backward_diagonal)])

TASKS = [BATCHNORM_FORWARD, BATCHNORM_BACKWARD, BATCHNORM_RUNNING, BATCHNORM_EVAL, LRN_FORWARD, LRN_BACKWARD]
