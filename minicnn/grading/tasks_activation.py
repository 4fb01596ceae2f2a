"""A4: activations, softmax + cross-entropy, dropout; checked against kernels/reference.

    relu_forward(x), relu_backward(x, grad_out)
    leaky_relu_forward(x, negative_slope), leaky_relu_backward(x, grad_out, negative_slope)
    sigmoid_forward(x), sigmoid_backward(y, grad_out)       y = the forward's output
    tanh_forward(x), tanh_backward(y, grad_out)
    softmax(x)                                  rows of x (N, C); stable for |x| up to 1e4
    cross_entropy_forward(logits, target) -> loss per row (N,)
    cross_entropy_backward(logits, target, grad_out) -> dlogits (N, C); grad_out (N,) = dL/dloss_i
    cross_entropy_mean(logits, target) -> (loss, dlogits) for the mean loss
    dropout_forward(x, p, u), dropout_backward(grad_out, p, u)
        inverted dropout: keep where u >= p, kept units scaled by 1 / (1 - p)
"""
import numpy as np
from hypothesis import strategies as st

from ..kernels.reference import activation as R
from ..kernels.reference import dropout as D
from ..kernels.reference import loss as L
from . import _arrays as A
from ._core import Case, Task
from ._gradcheck import check_backward

_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


@st.composite
def _elementwise_cases(draw, param=None, grad=False, output=None):
    """x tie-free and away from 0 (the kinks); `param` a strategy for a second argument;
    `output`: pass the forward's output y instead of x (sigmoid, tanh backward)."""
    shape, seed = draw(_shapes), draw(A.data_seeds)
    r = A.rng(seed)
    x = A.tie_free(r, shape, -4.0, 4.0)
    cfg = {"shape": shape}
    args = (output(x) if output else x,)
    if grad:
        args += (A.normal(r, shape),)
    if param is not None:
        cfg["negative_slope"] = draw(param)
        args += (cfg["negative_slope"],)
    return Case(cfg, args, {"more than one dimension": len(shape) > 1}, seed)


def _elementwise_gradcheck(forward, from_output=False):
    def check(case, student):
        x = case.args[0]
        extra = case.args[2:]
        if from_output:  # the case holds y; gradcheck needs x = the inverse of y
            x = np.arctanh(x) if forward is R.tanh_forward else np.log(x / (1 - x))
        check_backward(lambda x: forward(x, *extra),
                       lambda arrays, g: student(forward(arrays[0], *extra) if from_output else arrays[0],
                                                 g, *extra), [x], ("x",))
    return check


_slopes = st.sampled_from([0.01, 0.1, 0.2, 0.5])

RELU_FORWARD = Task("relu_forward", "A4", "relu_forward(x) -> max(x, 0)", lambda: _elementwise_cases(),
                    lambda c: (R.relu_forward(c.args[0]),))
RELU_BACKWARD = Task("relu_backward", "A4", "relu_backward(x, grad_out) -> dx",
                     lambda: _elementwise_cases(grad=True), lambda c: (R.relu_backward(*c.args),),
                     outputs=("dx",), gradcheck=_elementwise_gradcheck(R.relu_forward),
                     mistakes=[("the gradient passes where x < 0 instead of x > 0 (the mask is inverted)",
                                lambda c: (np.where(c.args[0] < 0, c.args[1], 0),))])
LEAKY_RELU_FORWARD = Task("leaky_relu_forward", "A4", "leaky_relu_forward(x, negative_slope)",
                          lambda: _elementwise_cases(_slopes), lambda c: (R.leaky_relu_forward(*c.args),))
LEAKY_RELU_BACKWARD = Task("leaky_relu_backward", "A4", "leaky_relu_backward(x, grad_out, negative_slope) -> dx",
                           lambda: _elementwise_cases(_slopes, grad=True),
                           lambda c: (R.leaky_relu_backward(*c.args),), outputs=("dx",),
                           gradcheck=_elementwise_gradcheck(R.leaky_relu_forward))
SIGMOID_FORWARD = Task("sigmoid_forward", "A4", "sigmoid_forward(x) -> 1 / (1 + exp(-x))",
                       lambda: _elementwise_cases(), lambda c: (R.sigmoid_forward(c.args[0]),))
SIGMOID_BACKWARD = Task("sigmoid_backward", "A4", "sigmoid_backward(y, grad_out) -> dx (y = sigmoid(x))",
                        lambda: _elementwise_cases(grad=True, output=R.sigmoid_forward),
                        lambda c: (R.sigmoid_backward(*c.args),), outputs=("dx",),
                        gradcheck=_elementwise_gradcheck(R.sigmoid_forward, from_output=True),
                        mistakes=[("you applied sigmoid to y again: the argument is already the "
                                   "forward's output y, and dy/dx = y (1 - y)",
                                   lambda c: (c.args[1] * R.sigmoid_forward(c.args[0]) * (1 - R.sigmoid_forward(c.args[0])),))])
TANH_FORWARD = Task("tanh_forward", "A4", "tanh_forward(x)", lambda: _elementwise_cases(),
                    lambda c: (R.tanh_forward(c.args[0]),))
TANH_BACKWARD = Task("tanh_backward", "A4", "tanh_backward(y, grad_out) -> dx (y = tanh(x))",
                     lambda: _elementwise_cases(grad=True, output=R.tanh_forward),
                     lambda c: (R.tanh_backward(*c.args),), outputs=("dx",),
                     gradcheck=_elementwise_gradcheck(R.tanh_forward, from_output=True))


# ---- softmax and cross-entropy ---------------------------------------------------------------
@st.composite
def _logit_cases(draw, with_target=True, with_grad=False):
    N, C, seed = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(A.data_seeds)
    large = draw(st.booleans())
    r = A.rng(seed)
    x = r.standard_normal((N, C)) * (1e4 if large else 2.0)
    cfg = {"N": N, "C": C, "logits": "large (|x| ~ 1e4)" if large else "normal"}
    args = (x,)
    if with_target:
        args += (r.integers(0, C, size=N),)
    if with_grad:
        args += (r.standard_normal(N),)
    return Case(cfg, args, {"large logits (|x| ~ 1e4)": large, "a batch of more than one": N > 1,
                            "gradcheck": not large}, seed)


SOFTMAX = Task("softmax", "A4", "softmax(x) -> probabilities, each row of x (N, C) on its own",
               lambda: _logit_cases(False), lambda c: (L.softmax_forward(c.args[0]),),
               mistakes=[("softmax over the whole array instead of each row: normalise along axis 1",
                          lambda c: (np.exp(c.args[0] - c.args[0].max()) / np.exp(c.args[0] - c.args[0].max()).sum(),))])


def _ce_rows(case):
    return (L.softmax_cross_entropy_forward(case.args[0], case.args[1])[0],)


CROSS_ENTROPY_FORWARD = Task(
    "cross_entropy_forward", "A4", "cross_entropy_forward(logits, target) -> loss per row (N,)",
    lambda: _logit_cases(), _ce_rows)


def _ce_backward(case):
    x, t, g = case.args
    _, probs = L.softmax_cross_entropy_forward(x, t)
    return (L.softmax_cross_entropy_backward(probs, t, g),)


def _ce_backward_gradcheck(case, student):
    x, t, g = case.args
    check_backward(lambda x: L.softmax_cross_entropy_forward(x, t)[0],
                   lambda arrays, g: student(arrays[0], t, g), [x], ("logits",))


CROSS_ENTROPY_BACKWARD = Task(
    "cross_entropy_backward", "A4", "cross_entropy_backward(logits, target, grad_out) -> dlogits (N, C)",
    lambda: _logit_cases(with_grad=True), _ce_backward, outputs=("dlogits",), gradcheck=_ce_backward_gradcheck,
    mistakes=[("grad_out is not applied: row i of dlogits is (p_i - onehot(t_i)) * grad_out[i]",
               lambda c: (_ce_backward(Case(c.config, c.args[:2] + (np.ones_like(c.args[2]),), c.features))[0],))])


def _ce_mean(case):
    x, t = case.args
    loss, probs = L.softmax_cross_entropy_forward(x, t)
    return loss.mean(), L.softmax_cross_entropy_backward(probs, t, np.full(len(t), 1 / len(t)))


CROSS_ENTROPY_MEAN = Task(
    "cross_entropy_mean", "A4", "cross_entropy_mean(logits, target) -> (loss, dlogits) of the mean loss",
    lambda: _logit_cases(), _ce_mean, outputs=("loss", "dlogits"),
    quantities=lambda c: {"N (the batch size)": c.config["N"]})


# ---- dropout ---------------------------------------------------------------------------------
@st.composite
def _dropout_cases(draw, grad):
    shape, seed = draw(_shapes), draw(A.data_seeds)
    p = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8]))
    r = A.rng(seed)
    first = r.standard_normal(shape)
    u = r.random(shape)
    return Case({"shape": shape, "p": p}, (first, p, u), {"p > 0": p > 0}, seed)


def _dropout_quantities(case):
    p = case.config["p"]
    return {"1 - p": 1 - p, "1 / (1 - p)": 1 / (1 - p)}


def _dropout_reference(case, keep_low=False):
    x, p, u = case.args
    return (D.dropout_forward(x, 1 - u if keep_low else u, p)[0],)


_KEEP_LOW = ("you keep the units with u < p: keep those with u >= p, so that a unit is kept with "
             "probability 1 - p")

DROPOUT_FORWARD = Task(
    "dropout_forward", "A4", "dropout_forward(x, p, u) -> out (inverted dropout; keep where u >= p)",
    lambda: _dropout_cases(False), _dropout_reference, quantities=_dropout_quantities,
    mistakes=[(_KEEP_LOW, lambda c: (np.where(c.args[2] < c.args[1], c.args[0] / (1 - c.args[1]), 0),))])
DROPOUT_BACKWARD = Task(
    "dropout_backward", "A4", "dropout_backward(grad_out, p, u) -> dx",
    lambda: _dropout_cases(True), _dropout_reference, outputs=("dx",), quantities=_dropout_quantities,
    mistakes=[(_KEEP_LOW, lambda c: (np.where(c.args[2] < c.args[1], c.args[0] / (1 - c.args[1]), 0),))])

TASKS = [RELU_FORWARD, RELU_BACKWARD, LEAKY_RELU_FORWARD, LEAKY_RELU_BACKWARD, SIGMOID_FORWARD,
         SIGMOID_BACKWARD, TANH_FORWARD, TANH_BACKWARD, SOFTMAX, CROSS_ENTROPY_FORWARD,
         CROSS_ENTROPY_BACKWARD, CROSS_ENTROPY_MEAN, DROPOUT_FORWARD, DROPOUT_BACKWARD]
