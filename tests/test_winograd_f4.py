"""Winograd F(4x4, 3x3) on the CPU (kernels/cpu/_winograd_f4.py): its matrices, its weight
transforms against the matrix products they write out, conv2d through it against the reference
convolution (forward and the three gradients, float64 and float32), finite differences, its
float32 accuracy on a wide layer, and which layers take it."""
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
from minicnn.kernels.cpu import _winograd_f4 as f4
from minicnn.kernels.cpu._threads import blas_threads_now
from minicnn.kernels.reference import conv as ref_conv
from oracles import assert_conv2d_matches_reference, random_conv2d_case  # tests/oracles.py


def _every_layer_f4(plan="whole batch"):
    """Let layers of any channel count and tile count take F(4x4, 3x3), in the plan named: the
    whole batch at once, or blocks of one sample (each thread's part of a batch of two or more
    in several blocks, so that the parts' dU sums add blocks up)."""
    blocks = {"whole batch": {"BLOCK_MIN_TILES": 10**9}, "blocks": {"BLOCK_MIN_TILES": 1, "BLOCK_BYTES": 1}}[plan]
    return mock.patch.multiple(f4, ON=True, F4_MIN_CHANNELS=1, F4_MIN_TILES=1, F4_MAX_TILES=10**9, **blocks)


def _every_layer_winograd():
    return mock.patch.multiple(conv_module, WINOGRAD=True, WINOGRAD_MIN_CHANNELS=1, WINOGRAD_MIN_TILES=1)


def test_the_matrices_compute_a_3x3_convolution_of_a_6x6_tile():
    """A^T [(G w G^T) * (B^T d B)] A is the 4x4 valid correlation of d (6x6) with w (3x3)."""
    rng = np.random.default_rng(0)
    d, w = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    y = f4.AT @ ((f4.G @ w @ f4.G.T) * (f4.BT @ d @ f4.BT.T)) @ f4.AT.T
    want = np.array([[(d[i:i + 3, j:j + 3] * w).sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(y, want, atol=1e-12)


def test_weight_transforms_are_the_matrix_products():
    """U[6a + b, o, c] = (G w G^T)[a, b] and dw = G^T dU G, as the kernels write them out."""
    rng = np.random.default_rng(1)
    w, du = rng.standard_normal((5, 7, 3, 3)), rng.standard_normal((36, 5, 7))
    want_u = np.einsum("ai,ocij,bj->aboc", f4.G, w, f4.G).reshape(36, 5, 7)
    np.testing.assert_allclose(f4.weight_transform(w), want_u, atol=1e-12)
    want_dw = np.einsum("ai,aboc,bj->ocij", f4.G, du.reshape(6, 6, 5, 7), f4.G)
    np.testing.assert_allclose(f4.weight_grad_transform(du), want_dw, atol=1e-12)


@st.composite
def layers(draw):
    """(x shape, w shape, padding, groups): 3x3 stride-1 layers, output sizes that are and are
    not multiples of 4 (partial tiles at the edge), padding 0..2 or "same"."""
    groups = draw(st.integers(1, 2))
    N, Cg, Og = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.one_of(st.just("same"), st.tuples(st.integers(0, 2), st.integers(0, 2))))
    pt, pl = (1, 1) if padding == "same" else padding
    H = draw(st.integers(max(1, 3 - 2 * pt), 13))
    W = draw(st.integers(max(1, 3 - 2 * pl), 13))
    return (N, Cg * groups, H, W), (Og * groups, Cg, 3, 3), padding, groups


@pytest.mark.parametrize("plan", ["whole batch", "blocks"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25)
@given(layer=layers(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_through_f4_equals_reference(dtype, plan, layer, seed):
    """conv2d's output and gradients through F(4x4, 3x3), in each plan, against the reference
    kernels' im2col convolution: float64 to 1e-12 of the values' scale, float32 to 5e-5 (F(4x4,
    3x3)'s rounding)."""
    x_shape, _, padding, groups = layer
    x0, w0, b0, g, geom = random_conv2d_case(layer, seed, dtype)
    with _every_layer_winograd(), _every_layer_f4(plan):
        x, w, b = (mc.Tensor(a, requires_grad=True, dtype=dtype) for a in (x0, w0, b0))
        out = F.conv2d(x, w, b, padding=padding, groups=groups)
        saved = out._node.conv_saved
        assert saved.plan == "winograd-f4"
        if plan == "whole batch" or x_shape[0] < (blas_threads_now() or 1):
            assert saved.blocks is None
        else:
            edges, per_block = saved.blocks
            assert per_block == 1 and edges[0] == 0 and edges[-1] == x_shape[0]
        out.backward(g)
    assert_conv2d_matches_reference((out.data, x.grad, w.grad, b.grad), x0, w0, b0, g, geom,
                                    atol=5e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("padding", [1, 0, (2, 1)])
def test_conv2d_f4_gradcheck(padding):
    """Finite differences in float64 through F(4x4, 3x3), one sample and two groups."""
    rng = np.random.default_rng(2)
    x = mc.Tensor(rng.standard_normal((1, 4, 6, 7)), dtype=np.float64, requires_grad=True)
    w = mc.Tensor(rng.standard_normal((4, 2, 3, 3)), dtype=np.float64, requires_grad=True)
    b = mc.Tensor(rng.standard_normal(4), dtype=np.float64, requires_grad=True)
    with _every_layer_winograd(), _every_layer_f4():
        assert F.conv2d(x, w, b, padding=padding, groups=2)._node.conv_saved.plan == "winograd-f4"
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding, groups=2), (x, w, b))


def test_which_layers_go_in_blocks():
    """Maps of BLOCK_MIN_TILES+ tiles go in blocks of samples (one of VGG's 56x56 maps: 196 tiles,
    3.6 MB of V and M), two blocks per thread on a batch of four; maps of fewer tiles, or a batch
    smaller than the threads, run whole."""
    def blocks(x_shape, w_shape):
        geom = conv_geometry("conv2d", x_shape, w_shape, 1, 1, 1, 1)
        return f4._blocks(np.ones(x_shape, np.float32), w_shape[0], geom)

    threads = blas_threads_now() or 1
    edges, per_block = blocks((4 * threads, 64, 56, 56), (64, 64, 3, 3))
    assert per_block == 1 and list(edges) == [4 * p for p in range(threads + 1)]
    assert blocks((16, 192, 19, 19), (192, 192, 3, 3)) is None                # AlphaGo: 25 tiles
    if threads > 1:
        assert blocks((threads - 1, 64, 56, 56), (64, 64, 3, 3)) is None


@pytest.mark.parametrize("plan", ["whole batch", "blocks"])
def test_transformed_weights_kept_for_one_backward(plan):
    """The forward's U serves the backward and is freed there; a second backward through the
    same saved state computes it again and gets the same gradients."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 8, 9, 9)), rng.standard_normal((8, 8, 3, 3))
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    g = rng.standard_normal((3, 8, 9, 9))
    with _every_layer_winograd(), _every_layer_f4(plan):
        out, saved = conv_module.conv2d_forward(x, w, None, geom)
        assert saved.plan == "winograd-f4" and saved.u is not None
        first = conv_module.conv2d_backward(saved, g, (True, True, False))
        assert saved.u is None
        second = conv_module.conv2d_backward(saved, g, (True, True, False))
    for a, b in zip(first[:2], second[:2]):
        np.testing.assert_array_equal(a, b)


def test_float32_accuracy_on_a_wide_layer():
    """AlphaGo's 192->192 layer at 19x19 (the plan's own thresholds): float32 outputs within
    5e-5 of their scale of the float64 convolution, and dx, dw likewise; the rounding the module
    docstring states (about 1e-5)."""
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((3, 192, 19, 19)), 0)
    w = rng.standard_normal((192, 192, 3, 3)) * np.sqrt(2 / (9 * 192))
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    g = rng.standard_normal((3, 192, 19, 19))
    out, saved = conv_module.conv2d_forward(x.astype(np.float32), w.astype(np.float32), None, geom)
    assert saved.plan == "winograd-f4"
    dx, dw, _ = conv_module.conv2d_backward(saved, g.astype(np.float32), (True, True, False))
    want, ref_saved = ref_conv.conv2d_forward(x, w, None, geom)
    want_dx, want_dw, _ = ref_conv.conv2d_backward(ref_saved, g, (True, True, False))
    for got, ref in ((out, want), (dx, want_dx), (dw, want_dw)):
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err < 5e-5, err


def test_which_layers_take_f4():
    """3x3 stride-1 layers of >= F4_MIN_CHANNELS channels and F4_MIN_TILES..F4_MAX_TILES 4x4
    tiles take F(4x4, 3x3) (AlphaGo's, AlexNet's conv3, VGG's and ResNet's layers); fewer
    channels or tiles keep F(2x2, 3x3); ON = False turns it off; AlexNet's 5x5 conv2, cut into
    pieces (192 channels stacked), takes it inside."""
    def plan(x_shape, w_shape, padding=1, groups=1):
        x, w = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)
        geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding, 1, groups)
        saved = conv_module.conv2d_forward(x, w, None, geom)[1]
        return saved.plan if saved.plan != "winograd-pieces" else "pieces over " + saved.inner.plan

    n = f4.F4_MIN_CHANNELS
    assert plan((16, 192, 19, 19), (192, 192, 3, 3)) == "winograd-f4"         # AlphaGo, 400 tiles
    assert plan((32, 256, 13, 13), (384, 256, 3, 3)) == "winograd-f4"         # AlexNet conv3
    assert plan((16, n, 8, 8), (n, n, 3, 3)) == "winograd-f4"                 # 64 tiles
    assert plan((8, n, 8, 8), (n, n, 3, 3)) == "winograd"                     # 32 tiles: too few
    assert plan((16, n - 1, 8, 8), (n, n - 1, 3, 3)) == "winograd"            # too few channels in
    assert plan((8, 64, 56, 56), (64, 64, 3, 3)) == "winograd-f4"             # VGG's 64->64, 1568 tiles
    assert plan((16, 32, 16, 16), (32, 32, 3, 3)) == "winograd"               # 32 channels
    assert plan((16, 256, 4, 4), (256, 256, 3, 3)) == "winograd"              # 16 4x4 tiles (64 of 2x2)
    assert plan((8, 96, 27, 27), (256, 48, 5, 5), padding=2, groups=2) == "pieces over winograd-f4"
    assert plan((32, 64, 56, 56), (64, 64, 3, 3)) == "winograd-f4"            # 6272 tiles, in blocks
    with mock.patch.object(f4, "ON", False):
        assert plan((16, 192, 19, 19), (192, 192, 3, 3)) == "winograd"
        assert plan((8, 96, 27, 27), (256, 48, 5, 5), padding=2, groups=2) == "pieces over winograd"
