"""A1 (im2col, conv forward) and A2 (col2im, conv backward): what the student writes, checked
against kernels/reference/conv.py.

The student's convolution takes the hyper-parameters as pairs, groups = 1, and the same
padding P on both sides of an axis (no "same"):
    conv_output_size(H, K, S, P, D) -> int            (H + 2P - D*(K-1) - 1) // S + 1
    im2col(x, kernel, stride, padding, dilation) -> cols (N, C*kh*kw, OH*OW)
        cols[n, c*kh*kw + i*kw + j, oy*OW + ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
        (0 where that pixel is padding)
    conv2d_forward(x, weight, bias, stride, padding, dilation) -> out (N, O, OH, OW)
    col2im(cols, x_shape, kernel, stride, padding, dilation) -> dx (N, C, H, W)
    conv2d_backward(x, weight, grad_out, stride, padding, dilation) -> (dx, dweight, dbias)
"""
import numpy as np
from hypothesis import strategies as st

from ..kernels.geometry import ConvGeometry
from ..kernels.reference import conv as R
from ..testing.conv import conv2d_configs, output_size
from . import _arrays as A
from ._core import Case, Task
from ._gradcheck import check_backward


def geometry(kernel, stride, padding, dilation, H, W):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    return ConvGeometry(kh, kw, sh, sw, ph, pw, ph, pw, dh, dw, 1,
                        output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw))


def _features(cfg):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"]
    return {"padding > 0": ph > 0 or pw > 0, "stride > 1": sh > 1 or sw > 1,
            "dilation > 1": dh > 1 or dw > 1, "a non-square kernel": kh != kw,
            "a batch of more than one": cfg["N"] > 1, "more than one input channel": cfg["C"] > 1}


@st.composite
def _conv_cases(draw, with_weight, with_grad):
    c = draw(conv2d_configs(max_batch=2, max_channels=3, max_size=7, max_kernel=3, groups=False,
                            string_padding=False))
    seed = draw(A.data_seeds)
    r = A.rng(seed)
    cfg = {"N": c.N, "C": c.C, "H": c.H, "W": c.W}
    if with_weight:
        cfg["out_channels"] = c.out_channels
    cfg.update(kernel=tuple(c.kernel), stride=tuple(c.stride), padding=tuple(c.padding),
               dilation=tuple(c.dilation))
    x = A.normal(r, c.input_shape)
    hyper = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    if not with_weight:
        return Case(cfg, (x,) + hyper, _features(cfg), seed)
    w = A.normal(r, c.weight_shape)
    if with_grad:
        g = A.normal(r, c.output_shape)
        return Case(cfg, (x, w, g) + hyper[1:], _features(cfg), seed)
    b = A.normal(r, (c.out_channels,))
    return Case(cfg, (x, w, b) + hyper[1:], _features(cfg), seed)


def _geom_of(case):
    cfg = case.config
    return geometry(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["H"], cfg["W"])


def _conv_geom(case, w):
    cfg = case.config
    return geometry(tuple(w.shape[2:]), cfg["stride"], cfg["padding"], cfg["dilation"], cfg["H"], cfg["W"])


# ---- A1 --------------------------------------------------------------------------------------
@st.composite
def _size_cases(draw):
    c = draw(conv2d_configs(max_size=12, max_kernel=5, max_stride=3, max_padding=3, max_dilation=3,
                            groups=False, string_padding=False))
    cfg = {"H": c.H, "K": c.kernel[0], "S": c.stride[0], "P": c.padding[0], "D": c.dilation[0]}
    feats = {"padding > 0": cfg["P"] > 0, "stride > 1": cfg["S"] > 1, "dilation > 1": cfg["D"] > 1}
    return Case(cfg, tuple(cfg.values()), feats)


def _size_reference(case):
    return (output_size(*case.args),)


CONV_OUTPUT_SIZE = Task(
    "conv_output_size", "A1", "conv_output_size(H, K, S, P, D) -> int", _size_cases, _size_reference,
    mistakes=[("the '+ 1' is missing: (H + 2P - D(K-1) - 1) // S + 1 counts the first window too",
               lambda c: (output_size(*c.args) - 1,)),
              ("dilation is ignored: a dilated kernel spans D*(K-1) + 1 pixels",
               lambda c: (output_size(c.args[0], c.args[1], c.args[2], c.args[3], 1),)),
              ("padding is counted once: it is added on both sides (2P)",
               lambda c: ((c.args[0] + c.args[3] - c.args[4] * (c.args[1] - 1) - 1) // c.args[2] + 1,))])


def _im2col_rows(case, order):
    """The reference columns with their rows (c, i, j) rearranged: order is a permutation of
    the axes (c, i, j) = (1, 2, 3)."""
    cfg, g = case.config, _geom_of(case)
    cols = R.im2col(case.args[0], g).reshape(cfg["N"], cfg["C"], g.kh, g.kw, g.oh * g.ow)
    return (cols.transpose((0,) + order + (4,)).reshape(cfg["N"], -1, g.oh * g.ow),)


IM2COL = Task(
    "im2col", "A1", "im2col(x, kernel, stride, padding, dilation) -> cols (N, C*kh*kw, OH*OW)",
    lambda: _conv_cases(False, False), lambda c: (R.im2col(c.args[0], _geom_of(c)),), outputs=("cols",),
    mistakes=[("rows ordered (i, j, c) instead of (c, i, j): row c*kh*kw + i*kw + j holds channel c, "
               "tap (i, j)", lambda c: _im2col_rows(c, (2, 3, 1))),
              ("the kernel taps are read transposed: row c*kh*kw + i*kw + j must hold tap (i, j)",
               lambda c: _im2col_rows(c, (1, 3, 2)) if c.config["kernel"][0] == c.config["kernel"][1] else None)])


def _conv_forward_reference(case, weight=None, bias=None):
    x, w, b = case.args[:3]
    w = w if weight is None else weight
    return (R.conv2d_forward(x, w, b if bias is None else bias, _conv_geom(case, w))[0],)


def _transposed_kernel(case):
    """conv with every kernel's taps read transposed: weight[o, c] flattened column by column
    (for a square kernel, weight[o, c, j, i] where weight[o, c, i, j] belongs)."""
    w = case.args[1]
    return _conv_forward_reference(case, weight=w.swapaxes(2, 3).reshape(w.shape))


CONV2D_FORWARD = Task(
    "conv2d_forward", "A1", "conv2d_forward(x, weight, bias, stride, padding, dilation) -> out (N, O, OH, OW)",
    lambda: _conv_cases(True, False), _conv_forward_reference,
    mistakes=[("the kernel is transposed: its taps (i, j) are read as (j, i); check that you flatten "
               "the weight in the same order as your im2col rows (c, i, j)", _transposed_kernel),
              ("the kernel is flipped (a true convolution): CNN layers compute the cross-correlation, "
               "weight[o, c, i, j] * x[.., oy*S - P + i*D, ..] with no flip",
               lambda c: _conv_forward_reference(c, weight=c.args[1][:, :, ::-1, ::-1].copy())),
              ("the bias is not added", lambda c: _conv_forward_reference(c, bias=np.zeros_like(c.args[2])))])


# ---- A2 --------------------------------------------------------------------------------------
@st.composite
def _col2im_cases(draw):
    case = draw(_conv_cases(False, False))
    cfg, g = case.config, _geom_of(case)
    cols = A.normal(A.rng(case.data_seed + 1), (cfg["N"], cfg["C"] * g.kh * g.kw, g.oh * g.ow))
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    overlap = (g.kh - 1) * g.dil_h + 1 > g.sh or (g.kw - 1) * g.dil_w + 1 > g.sw
    return Case(cfg, (cols, x_shape) + case.args[1:], dict(case.features, **{"windows that overlap": overlap}),
                case.data_seed)


def _col2im_assigning(case):
    """col2im that assigns (=) where overlapping windows must add (+=)."""
    cols, (N, C, H, W) = case.args[:2]
    g = _geom_of(case)
    c6 = cols.reshape(N, C, g.kh, g.kw, g.oh, g.ow)
    dxp = np.zeros((N, C, H + 2 * g.pt, W + 2 * g.pl))
    for i in range(g.kh):
        for j in range(g.kw):
            rows, columns = R._tap(g, i, j)
            dxp[:, :, rows, columns] = c6[:, :, i, j]
    return (dxp[:, :, g.pt:g.pt + H, g.pl:g.pl + W],)


COL2IM = Task(
    "col2im", "A2", "col2im(cols, x_shape, kernel, stride, padding, dilation) -> dx (N, C, H, W)",
    _col2im_cases, lambda c: (R.col2im(c.args[0], _geom_of(c), *c.args[1][2:]),), outputs=("dx",),
    mistakes=[("a pixel under several windows must receive the SUM of their entries (+=), "
               "yours keeps only one (=)", _col2im_assigning)])


def _conv_backward_reference(case):
    x, w, g = case.args[:3]
    _, saved = R.conv2d_forward(x, w, np.zeros(w.shape[0]), _conv_geom(case, w))
    return R.conv2d_backward(saved, g, (True, True, True))


def _conv_backward_gradcheck(case, student):
    x, w, g = case.args[:3]
    hyper = case.args[3:]
    geom = _conv_geom(case, w)
    check_backward(lambda x, w, b: R.conv2d_forward(x, w, b, geom)[0],
                   lambda arrays, g: student(arrays[0], arrays[1], g, *hyper),
                   [x, w, A.normal(A.rng(case.data_seed), (w.shape[0],))], ("x", "weight", "bias"))


def _conv_quantities(case):
    cfg = case.config
    g = _geom_of(case)
    return {"N (the batch size)": cfg["N"], "OH*OW": g.oh * g.ow, "kh*kw": g.kh * g.kw}


CONV2D_BACKWARD = Task(
    "conv2d_backward", "A2",
    "conv2d_backward(x, weight, grad_out, stride, padding, dilation) -> (dx, dweight, dbias)",
    lambda: _conv_cases(True, True), _conv_backward_reference, outputs=("dx", "dweight", "dbias"),
    quantities=_conv_quantities, gradcheck=_conv_backward_gradcheck)

TASKS = [CONV_OUTPUT_SIZE, IM2COL, CONV2D_FORWARD, COL2IM, CONV2D_BACKWARD]
