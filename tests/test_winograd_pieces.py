"""Larger kernels cut into 3x3 pieces for Winograd (kernels/cpu/_winograd_pieces.py): the stacking
and its adjoint, the pieces' layout, which layers take the plan, and conv2d through it against
the reference convolution (forward and the three gradients) and against finite differences."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.functional.conv import conv_geometry
from minicnn.gradcheck import gradcheck
from minicnn.kernels.cpu import conv as conv_module
from minicnn.kernels.cpu import _winograd_pieces as pieces
from oracles import assert_conv2d_matches_reference, random_conv2d_case  # tests/oracles.py


@pytest.fixture
def small_layers_too(monkeypatch):
    """Let layers of a few channels and tiles take the Winograd plans (normally 16 channels on)."""
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD", True)


@st.composite
def layers(draw):
    """(x shape, w shape, padding, groups) for a stride-1 layer whose kernel the pieces take
    (4x4 is not: 16 multiplications either way); padding (top and bottom, left and right), or
    "same", uneven for an even kernel."""
    kh, kw = draw(st.sampled_from([(5, 5), (6, 6), (5, 3), (3, 6), (6, 4)]))
    groups = draw(st.integers(1, 2))
    N, Cg, Og = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.one_of(st.just("same"), st.tuples(st.integers(0, 3), st.integers(0, 3))))
    pt, pl = (0, 0) if padding == "same" else padding
    H = draw(st.integers(max(1, kh - 2 * pt), kh + 5))
    W = draw(st.integers(max(1, kw - 2 * pl), kw + 5))
    return (N, Cg * groups, H, W), (Og * groups, Cg, kh, kw), padding, groups


def _conv(x0, w0, b0, g, padding, groups):
    x, w, b = (mc.Tensor(a, requires_grad=True, dtype=a.dtype) for a in (x0, w0, b0))
    out = F.conv2d(x, w, b, padding=padding, groups=groups)
    out.backward(g)
    return out._node.conv_saved.plan, (out.data, x.grad, w.grad, b.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25)
@given(layer=layers(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_through_pieces_equals_reference(dtype, layer, seed):
    """conv2d's output and gradients through the pieces plan against the reference kernels'
    im2col convolution, with groups, and "same" padding uneven on each side."""
    _, _, padding, groups = layer
    x0, w0, b0, g, geom = random_conv2d_case(layer, seed, dtype)
    with mock.patch.multiple(conv_module, WINOGRAD_MIN_CHANNELS=1, WINOGRAD_MIN_TILES=1, WINOGRAD=True):
        plan, got = _conv(x0, w0, b0, g, padding, groups)
    assert plan == "winograd-pieces"
    assert_conv2d_matches_reference(got, x0, w0, b0, g, geom, atol=2e-5 if dtype == np.float32 else 1e-12)


@given(layer=layers(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=25)
def test_unstacking_is_the_adjoint_of_stacking(layer, seed):
    """<stack(x), y> = <x, unstack(y)> for every x and y: the backward's dx is exactly the
    transpose of what the forward read, padding and overlaps included."""
    x_shape, w_shape, padding, groups = layer
    geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding, 1, groups)
    ph, pw = pieces.pieces(geom.kh, geom.kw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    y = rng.standard_normal((x_shape[0], x_shape[1] * ph * pw, geom.oh + 2, geom.ow + 2))
    xs = np.full_like(y, np.nan)
    pieces._stack_windows(x, xs, ph, pw, geom.pt, geom.pl, groups)
    xt = np.full_like(x, np.nan)
    pieces._unstack_windows(y, xt, ph, pw, geom.pt, geom.pl, groups)
    assert np.isfinite(xs).all() and np.isfinite(xt).all()
    np.testing.assert_allclose(np.vdot(xs, y), np.vdot(x, xt), rtol=1e-12)


def test_stacked_windows_and_pieces_by_hand():
    """One 5x5 layer (C=2, two groups) by hand: window (a, b) of channel c is the padded input
    from row 3a and column 3b, at channel (group*4 + a*2 + b)*Cg + c; the pieces are the kernel's
    3x3 blocks (zeros past its 5th row and column), and they go back whole."""
    x = np.arange(2 * 4 * 5, dtype=np.float64).reshape(1, 2, 4, 5) + 1
    ph = pw = 2
    pt, pl = 2, 1
    oh, ow = 4 + 2 * pt - 5 + 1, 5 + 2 * pl - 5 + 1
    xp = np.zeros((1, 2, 3 * ph + oh - 1, 3 * pw + ow - 1))
    xp[:, :, pt:pt + 4, pl:pl + 5] = x
    xs = np.empty((1, 8, oh + 2, ow + 2))
    pieces._stack_windows(x, xs, ph, pw, pt, pl, 2)
    for grp in range(2):
        for a in range(2):
            for b in range(2):
                np.testing.assert_array_equal(xs[0, grp * 4 + a * 2 + b],
                                              xp[0, grp, 3 * a:3 * a + oh + 2, 3 * b:3 * b + ow + 2])
    w = np.random.default_rng(0).standard_normal((3, 2, 5, 5))
    ws = pieces.stack_pieces(w, ph, pw)
    wp = np.zeros((3, 2, 6, 6))
    wp[:, :, :5, :5] = w
    assert ws.shape == (3, 8, 3, 3)
    np.testing.assert_array_equal(ws[:, (1 * 2 + 0) * 2 + 1], wp[:, 1, 3:6, 0:3])   # piece (1, 0), channel 1
    np.testing.assert_array_equal(pieces.unstack_pieces(ws, 5, 5), w)


def test_which_layers_take_the_pieces():
    """5x5 and 6x6 stride-1 layers with the Winograd thresholds' channels and tiles take the
    pieces (AlexNet's conv2 among them); 7x7 (1.36x fewer multiplications), 4x4 (none fewer),
    stride 2, dilation, too few channels or tiles, and WINOGRAD off do not."""
    def plan(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
        x, w = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)
        geom = conv_geometry("conv2d", x_shape, w_shape, stride, padding, dilation, groups)
        return conv_module.conv2d_forward(x, w, None, geom)[1].plan

    n = conv_module.WINOGRAD_MIN_CHANNELS
    assert plan((8, 96, 27, 27), (256, 48, 5, 5), padding=2, groups=2) == "winograd-pieces"   # AlexNet conv2
    assert plan((4, n, 12, 12), (n, n, 6, 6), padding=2) == "winograd-pieces"
    assert plan((4, n, 12, 12), (n, n, 7, 7), padding=3) != "winograd-pieces"
    assert plan((4, n, 12, 12), (n, n, 4, 4)) != "winograd-pieces"
    assert plan((4, n, 16, 16), (n, n, 5, 5), stride=2, padding=2) != "winograd-pieces"
    assert plan((4, n, 16, 16), (n, n, 5, 5), padding=4, dilation=2) != "winograd-pieces"
    assert plan((4, n - 1, 16, 16), (n, n - 1, 5, 5), padding=2) != "winograd-pieces"
    assert plan((1, n, 8, 8), (n, n, 5, 5), padding=2) != "winograd-pieces"            # 16 tiles
    conv_module.WINOGRAD = False
    try:
        assert plan((8, 96, 27, 27), (256, 48, 5, 5), padding=2, groups=2) != "winograd-pieces"
    finally:
        conv_module.WINOGRAD = True


@pytest.mark.parametrize("padding", [2, "same", 0])
def test_conv2d_pieces_gradcheck(small_layers_too, padding):
    """Finite differences in float64 through the pieces plan, 'same' padding included."""
    rng = np.random.default_rng(5)
    x = mc.Tensor(rng.standard_normal((2, 2, 6, 7)), dtype=np.float64, requires_grad=True)
    w = mc.Tensor(rng.standard_normal((3, 2, 5, 5)), dtype=np.float64, requires_grad=True)
    b = mc.Tensor(rng.standard_normal(3), dtype=np.float64, requires_grad=True)
    assert F.conv2d(x, w, b, padding=padding)._node.conv_saved.plan == "winograd-pieces"
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), (x, w, b))
