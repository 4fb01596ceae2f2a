"""A3, pooling: what the student writes, checked against kernels/reference/pool.py.

Every hyper-parameter is a pair (h, w); floor mode (no ceil_mode); padding <= kernel // 2.
    max_pool_forward(x, kernel, stride, padding) -> out (N, C, OH, OW)       padding never wins
    max_pool_backward(x, grad_out, kernel, stride, padding) -> dx (N, C, H, W)
        each window's gradient goes to ONE cell: its first maximum in row-major order (np.argmax)
    avg_pool_forward(x, kernel, stride, padding) -> out     divisor kh*kw (padding counted)
    avg_pool_backward(grad_out, x_shape, kernel, stride, padding) -> dx
"""
import numpy as np
from hypothesis import strategies as st

from ..kernels.reference import pool as R
from ..testing.pool import pool2d_configs
from . import _arrays as A
from ._core import Case, Task
from ._gradcheck import check_backward


@st.composite
def _pool_cases(draw, grad, ties_allowed):
    c = draw(pool2d_configs(max_batch=2, max_channels=2, max_size=7, max_kernel=3, ceil_mode=False))
    seed = draw(A.data_seeds)
    ties = draw(st.booleans()) if ties_allowed else False
    r = A.rng(seed)
    (kh, kw), (sh, sw), (ph, pw) = c.pairs
    cfg = {"N": c.N, "C": c.C, "H": c.H, "W": c.W, "kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw)}
    if ties_allowed:
        cfg["ties"] = ties
    x = A.with_ties(r, c.shape) if ties else A.tie_free(r, c.shape)
    feats = {"padding > 0": ph > 0 or pw > 0, "stride > 1": sh > 1 or sw > 1,
             "a non-square window": kh != kw, "gradcheck": not ties}
    if ties_allowed:   # max pooling
        feats.update({"windows that overlap": kh > sh or kw > sw, "tied maxima in a window": ties})
    else:
        feats["a window larger than 1x1"] = kh * kw > 1
    hyper = ((kh, kw), (sh, sw), (ph, pw))
    if grad:
        g = A.normal(r, c.output_shape)
        return Case(cfg, (x, g) + hyper, feats, seed)
    return Case(cfg, (x,) + hyper, feats, seed)


def _out_size(case):
    return case.config["N"], case.config["C"], *_oh_ow(case)


def _oh_ow(case):
    cfg = case.config
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in
                 zip((cfg["H"], cfg["W"]), cfg["kernel"], cfg["stride"], cfg["padding"]))


def _flat(case):
    """kh, kw, sh, sw, ph, pw, oh, ow as the reference kernels take them."""
    cfg = case.config
    return (*cfg["kernel"], *cfg["stride"], *cfg["padding"], *_oh_ow(case))


# ---- max pooling -----------------------------------------------------------------------------
def _max_forward(case):
    return (R.max_pool2d_forward(case.args[0], *_flat(case))[0],)


def _max_zero_padding(case):
    """max pooling whose padding is 0 instead of -inf: a padded 0 beats negative values."""
    cfg = case.config
    (ph, pw) = cfg["padding"]
    xp = np.pad(case.args[0], ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    flat = list(_flat(case))
    flat[4:6] = 0, 0
    return (R.max_pool2d_forward(xp, *flat)[0],)


MAX_POOL_FORWARD = Task(
    "max_pool_forward", "A3", "max_pool_forward(x, kernel, stride, padding) -> out (N, C, OH, OW)",
    lambda: _pool_cases(False, True), _max_forward,
    mistakes=[("the padding is 0 and wins over negative values: padding must never win (-inf)",
               _max_zero_padding)])


def _max_backward(case):
    x, g = case.args[:2]
    _, argmax = R.max_pool2d_forward(x, *_flat(case))
    return (R.max_pool2d_backward(g, argmax, *x.shape[2:]),)


def _max_backward_every_tie(case):
    """The gradient of a window sent to every cell equal to its maximum."""
    x, g = case.args[:2]
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, oh, ow = _flat(case)
    dx = np.zeros_like(x)
    for oy in range(oh):
        h0, h1 = max(oy * sh - ph, 0), min(oy * sh - ph + kh, H)
        for ox in range(ow):
            w0, w1 = max(ox * sw - pw, 0), min(ox * sw - pw + kw, W)
            win = x[:, :, h0:h1, w0:w1]
            top = win == win.max(axis=(2, 3), keepdims=True)
            dx[:, :, h0:h1, w0:w1] += top * g[:, :, oy, ox][:, :, None, None]
    return (dx,)


def _max_backward_assigning(case):
    """Overlapping windows that share a winner: the last one's gradient overwrites the others."""
    x, g = case.args[:2]
    _, argmax = R.max_pool2d_forward(x, *_flat(case))
    N, C = x.shape[:2]
    dx = np.zeros((N * C, x.shape[2] * x.shape[3]))
    dx[np.arange(N * C)[:, None], argmax.reshape(N * C, -1)] = g.reshape(N * C, -1)
    return (dx.reshape(x.shape),)


def _max_backward_gradcheck(case, student):
    x, g = case.args[:2]
    flat, hyper = _flat(case), case.args[2:]
    check_backward(lambda x: R.max_pool2d_forward(x, *flat)[0],
                   lambda arrays, g: student(arrays[0], g, *hyper), [x], ("x",))


MAX_POOL_BACKWARD = Task(
    "max_pool_backward", "A3", "max_pool_backward(x, grad_out, kernel, stride, padding) -> dx (N, C, H, W)",
    lambda: _pool_cases(True, True), _max_backward, outputs=("dx",), gradcheck=_max_backward_gradcheck,
    mistakes=[("a window with tied maxima sends its gradient to EVERY tied cell; it must go to one "
               "cell only, the first maximum in row-major order (as np.argmax picks it)", _max_backward_every_tie),
              ("overlapping windows that share a winner must ADD their gradients (+=); yours keeps "
               "only one of them", _max_backward_assigning)])


# ---- average pooling -------------------------------------------------------------------------
def _avg_forward(case, count_include_pad=True):
    return (R.avg_pool2d_forward(case.args[0], *_flat(case), count_include_pad),)


def _avg_quantities(case):
    kh, kw = case.config["kernel"]
    return {"kh*kw (the window size)": kh * kw}


AVG_POOL_FORWARD = Task(
    "avg_pool_forward", "A3", "avg_pool_forward(x, kernel, stride, padding) -> out (N, C, OH, OW)",
    lambda: _pool_cases(False, False), _avg_forward, quantities=_avg_quantities,
    mistakes=[("you divide by the number of real cells in the window; divide by kh*kw, the padding "
               "counts (PyTorch's count_include_pad=True)", lambda c: _avg_forward(c, False))])


@st.composite
def _avg_backward_cases(draw):
    case = draw(_pool_cases(True, False))
    x, g = case.args[:2]
    return Case(case.config, (g, x.shape) + case.args[2:], case.features, case.data_seed)


def _avg_backward(case, count_include_pad=True):
    g, (N, C, H, W) = case.args[:2]
    kh, kw, sh, sw, ph, pw = _flat(case)[:6]
    return (R.avg_pool2d_backward(g, H, W, kh, kw, sh, sw, ph, pw, count_include_pad),)


def _avg_backward_gradcheck(case, student):
    g, x_shape = case.args[:2]
    flat, hyper = _flat(case), case.args[2:]
    x = A.normal(A.rng(case.data_seed), x_shape)
    check_backward(lambda x: R.avg_pool2d_forward(x, *flat, True),
                   lambda arrays, g: student(g, x_shape, *hyper), [x], ("x",))


AVG_POOL_BACKWARD = Task(
    "avg_pool_backward", "A3", "avg_pool_backward(grad_out, x_shape, kernel, stride, padding) -> dx (N, C, H, W)",
    _avg_backward_cases, _avg_backward, outputs=("dx",), quantities=_avg_quantities,
    gradcheck=_avg_backward_gradcheck,
    mistakes=[("you divide by the number of real cells in the window; divide by kh*kw, the padding "
               "counts (PyTorch's count_include_pad=True)", lambda c: _avg_backward(c, False))])

TASKS = [MAX_POOL_FORWARD, MAX_POOL_BACKWARD, AVG_POOL_FORWARD, AVG_POOL_BACKWARD]
