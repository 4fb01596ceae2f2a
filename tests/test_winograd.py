"""Winograd F(2x2, 3x3): the Numba transforms against the NumPy reference, the reference against
plain convolution (forward and both gradients), and conv2d's Winograd path against its im2col
path and against finite differences."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.functional.conv import conv_geometry
from minicnn.kernels.cpu import conv as conv_module
from minicnn.gradcheck import gradcheck
from minicnn.kernels.cpu import winograd as numba_w
from minicnn.kernels.reference import conv as ref_conv
from minicnn.kernels.reference import winograd as ref_w

seeds = st.integers(0, 2**31 - 1)


@st.composite
def cases(draw):
    """(N, C, O, H, W, pt, pl): a 3x3 stride-1 layer with padding 0..2 and an output >= 1x1."""
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pt, pl = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, 3 - 2 * pt), 11))
    W = draw(st.integers(max(1, 3 - 2 * pl), 11))
    return N, C, O, H, W, pt, pl


def _close(got, want, dtype):
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    np.testing.assert_allclose(got, want, rtol=0, atol=(2e-6 if dtype == np.float32 else 1e-13) * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25)
@given(case=cases(), seed=seeds)
def test_numba_transforms_equal_reference(dtype, case, seed):
    N, C, O, H, W, pt, pl = case
    rng = np.random.default_rng(seed)
    oh, ow = H + 2 * pt - 2, W + 2 * pl - 2
    th, tw = ref_w.tiles(oh, ow)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C, 3, 3)).astype(dtype)
    g = rng.standard_normal((N, O, oh, ow)).astype(dtype)
    m = rng.standard_normal((16, O, N * th * tw)).astype(dtype)
    du = rng.standard_normal((16, O, C)).astype(dtype)
    assert numba_w.tiles(oh, ow) == (th, tw)
    _close(numba_w.input_transform(x, pt, pl, oh, ow), ref_w.input_transform(x, pt, pl, oh, ow), dtype)
    _close(numba_w.output_transform(m, N, oh, ow), ref_w.output_transform(m, N, oh, ow), dtype)
    b = rng.standard_normal(O).astype(dtype)            # the bias joins in the output transform
    _close(numba_w.output_transform(m, N, oh, ow, b), ref_w.output_transform(m, N, oh, ow, b), dtype)
    np.testing.assert_array_equal(ref_w.output_transform(m, N, oh, ow, b),
                                  ref_w.output_transform(m, N, oh, ow) + b.reshape(1, O, 1, 1))
    _close(numba_w.grad_output_transform(g), ref_w.grad_output_transform(g), dtype)
    _close(numba_w.weight_transform(w), ref_w.weight_transform(w), dtype)
    _close(numba_w.weight_grad_transform(du), ref_w.weight_grad_transform(du), dtype)
    dv = rng.standard_normal((16, C, N * th * tw)).astype(dtype)
    _close(numba_w.input_grad_transform(dv, N, H, W, pt, pl, oh, ow),
           ref_w.input_grad_transform(dv, N, H, W, pt, pl, oh, ow), dtype)


@settings(max_examples=25)
@given(case=cases(), seed=seeds)
def test_grad_transforms_are_adjoints(case, seed):
    """<input_transform(x), dV> = <x, input_grad_transform(dV)> and <output_transform(M), g> =
    <M, grad_output_transform(g)> (float64, reference and Numba): what makes them gradients."""
    N, C, O, H, W, pt, pl = case
    rng = np.random.default_rng(seed)
    oh, ow = H + 2 * pt - 2, W + 2 * pl - 2
    th, tw = ref_w.tiles(oh, ow)
    x, g = rng.standard_normal((N, C, H, W)), rng.standard_normal((N, O, oh, ow))
    dv, m = rng.standard_normal((16, C, N * th * tw)), rng.standard_normal((16, O, N * th * tw))
    for k in (ref_w, numba_w):
        np.testing.assert_allclose(np.sum(k.input_transform(x, pt, pl, oh, ow) * dv),
                                   np.sum(x * k.input_grad_transform(dv, N, H, W, pt, pl, oh, ow)), rtol=1e-10)
        np.testing.assert_allclose(np.sum(k.output_transform(m, N, oh, ow) * g),
                                   np.sum(m * k.grad_output_transform(g)), rtol=1e-10)


def _geom(pt, pl, H, W, groups=1):
    """The ConvGeometry of a 3x3 stride-1 layer with padding (pt, pl) on both sides."""
    return conv_geometry("conv2d", (1, 1, H, W), (1, 1, 3, 3), 1, (pt, pl), 1, groups)


def _plan(out):
    """Which plan of kernels/cpu/conv.py computed this conv2d output."""
    return out._node.conv_saved.plan


def _direct(x, w, pt, pl, oh, ow):
    """The convolution by im2col in float64: what Winograd must reproduce."""
    cols = ref_conv.im2col(x, _geom(pt, pl, x.shape[2], x.shape[3]))
    return np.matmul(w.reshape(w.shape[0], -1), cols).reshape(x.shape[0], w.shape[0], oh, ow)


@settings(max_examples=40)
@given(case=cases(), seed=seeds)
def test_reference_algebra(case, seed):
    """Forward, input gradient and weight gradient of the reference against im2col, in float64:
    the identities the module docstring states, on odd sizes and every padding 0..2."""
    N, C, O, H, W, pt, pl = case
    rng = np.random.default_rng(seed)
    oh, ow = H + 2 * pt - 2, W + 2 * pl - 2
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, 3, 3))
    g = rng.standard_normal((N, O, oh, ow))
    v = ref_w.input_transform(x, pt, pl, oh, ow)
    y = ref_w.output_transform(ref_w.weight_transform(w) @ v, N, oh, ow)
    np.testing.assert_allclose(y, _direct(x, w, pt, pl, oh, ow), atol=1e-12)
    # dx = sum over tiles of B (U^T Gh) B^T, the transforms read backwards (what conv2d does) ...
    dcols = np.matmul(w.reshape(O, -1).T, g.reshape(N, O, -1))
    want = ref_conv.col2im(dcols, _geom(pt, pl, H, W), H, W)
    gh = ref_w.grad_output_transform(g)
    dv = np.swapaxes(ref_w.weight_transform(w), 1, 2) @ gh
    np.testing.assert_allclose(ref_w.input_grad_transform(dv, N, H, W, pt, pl, oh, ow), want, atol=1e-12)
    # ... = g convolved with the flipped kernel, channels swapped, padding 2 - p
    uf = ref_w.weight_transform(w[:, :, ::-1, ::-1])
    dx = ref_w.output_transform(np.swapaxes(uf, 1, 2) @ ref_w.input_transform(g, 2 - pt, 2 - pl, H, W), N, H, W)
    np.testing.assert_allclose(dx, want, atol=1e-12)
    # dw = G^T (sum_t Gh V^T) G
    dw = ref_w.weight_grad_transform(ref_w.grad_output_transform(g) @ np.swapaxes(v, 1, 2))
    cols = ref_conv.im2col(x, _geom(pt, pl, H, W))
    want = np.einsum("nol,nkl->ok", g.reshape(N, O, -1), cols).reshape(O, C, 3, 3)
    np.testing.assert_allclose(dw, want, atol=1e-12)


@pytest.fixture
def always_winograd(monkeypatch):
    """Let tiny layers take the Winograd path (normally from 16 channels on)."""
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD", True)
    monkeypatch.setattr(conv_module, "_winograd_suits", conv_module._winograd_suits)


def _run(x0, w0, b0, g, **kw):
    x, w, b = (mc.Tensor(a, requires_grad=True, dtype=a.dtype) for a in (x0, w0, b0))
    out = F.conv2d(x, w, b, **kw)
    out.backward(g)
    return out, (out.data, x.grad, w.grad, b.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20)
@given(case=cases(), groups=st.sampled_from([1, 2]),
       way=st.sampled_from(["batch", "blocks", "one per block", "whole", "chunks"]), seed=seeds)
def test_conv2d_winograd_equals_im2col(dtype, case, groups, way, seed):
    """conv2d through the CPU plan's Winograd and through its im2col (WINOGRAD off). Winograd's
    ways: the whole batch channels-last with the products shared out (a batch of 2+), blocks (a
    batch of 2+: up to 3 parts, as with 3 threads), blocks of one sample each, the whole tensors
    at once, and whole tensors in chunks of one sample."""
    N, C, O, H, W, pt, pl = case
    C, O = C * groups, O * groups
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((N, C, H, W)).astype(dtype)
    w0 = rng.standard_normal((O, C // groups, 3, 3)).astype(dtype)
    b0 = rng.standard_normal(O).astype(dtype)
    g = rng.standard_normal((N, O, H + 2 * pt - 2, W + 2 * pl - 2)).astype(dtype)
    chunk_bytes = 1 if way == "chunks" else numba_w.CHUNK_BYTES
    block_bytes = 1 if way == "one per block" else numba_w.BLOCK_BYTES
    blocks = numba_w._blocks if way in ("blocks", "one per block") else (lambda *a: None)
    xi_max = 10**9 if way == "batch" else 0
    with mock.patch.multiple(conv_module, WINOGRAD_MIN_CHANNELS=1, WINOGRAD_MIN_TILES=1, CHUNK_BYTES=chunk_bytes), \
            mock.patch.multiple(numba_w, CHUNK_BYTES=chunk_bytes, BLOCK_BYTES=block_bytes, _blocks=blocks,
                                XI_MAX_TILES=xi_max, blas_threads_now=lambda: 3):
        with mock.patch.object(conv_module, "WINOGRAD", True):
            out, wino = _run(x0, w0, b0, g, padding=(pt, pl), groups=groups)
            assert _plan(out) == "winograd"
            saved = out._node.conv_saved
            assert saved.batch == (way == "batch" and N >= 2)
            assert (saved.blocks is not None) == (way in ("blocks", "one per block") and N >= 2)
        with mock.patch.object(conv_module, "WINOGRAD", False):
            out, direct = _run(x0, w0, b0, g, padding=(pt, pl), groups=groups)
            assert _plan(out) != "winograd"
    for got, want in zip(wino, direct):
        _close(got, want, dtype)


@settings(max_examples=20)
@given(case=cases(), groups=st.sampled_from([1, 2]), seed=seeds)
def test_reference_winograd_conv_equals_reference_conv(case, groups, seed):
    """kernels/reference/winograd.py's conv2d_forward/backward (the algorithm end to end) against
    kernels/reference/conv.py's, in float64, with and without a bias."""
    N, C, O, H, W, pt, pl = case
    C, O = C * groups, O * groups
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C // groups, 3, 3))
    geom = _geom(pt, pl, H, W, groups)
    for b in (rng.standard_normal(O), None):
        out, saved = ref_w.conv2d_forward(x, w, b, geom)
        want_out, want_saved = ref_conv.conv2d_forward(x, w, b, geom)
        np.testing.assert_allclose(out, want_out, atol=1e-11)
        g = rng.standard_normal(out.shape)
        needs = (True, True, b is not None)
        for got, want in zip(ref_w.conv2d_backward(saved, g, needs), ref_conv.conv2d_backward(want_saved, g, needs)):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_allclose(got, want, atol=1e-11)


@pytest.mark.parametrize("padding", [0, 1, 2, (0, 2), "same"])
def test_conv2d_winograd_gradcheck(always_winograd, padding):
    rng = np.random.default_rng(7)
    x = mc.Tensor(rng.standard_normal((2, 4, 5, 6)), dtype=np.float64, requires_grad=True)
    w = mc.Tensor(rng.standard_normal((6, 2, 3, 3)), dtype=np.float64, requires_grad=True)
    b = mc.Tensor(rng.standard_normal(6), dtype=np.float64, requires_grad=True)
    assert _plan(F.conv2d(x, w, b, padding=padding, groups=2)) == "winograd"
    assert gradcheck(lambda a, c, d: F.conv2d(a, c, d, padding=padding, groups=2), (x, w, b))


def test_which_layers_take_winograd():
    """3x3, stride 1, no dilation, padding <= 2, >= WINOGRAD_MIN_CHANNELS in and out per group,
    and >= WINOGRAD_MIN_TILES 2x2 output tiles in the batch."""
    def path(C, O, groups=1, n=16, **kw):
        x = mc.Tensor(np.zeros((n, C, 6, 6), np.float32), requires_grad=True)
        w = mc.Tensor(np.zeros((O, C // groups) + kw.pop("k", (3, 3)), np.float32))
        return "Winograd" if _plan(F.conv2d(x, w, groups=groups, **kw)) == "winograd" else "im2col"
    n = conv_module.WINOGRAD_MIN_CHANNELS
    assert path(n, n, padding=1) == "Winograd"
    assert path(n - 1, n, padding=1) == "im2col"            # too few input channels
    assert path(2 * n, 2 * n, groups=4, padding=1) == "im2col"   # too few per group
    assert path(n, n, padding=1, stride=2) == "im2col"
    assert path(n, n, padding=2, dilation=2) == "im2col"
    assert path(n, n, padding=3) == "im2col"
    assert path(n, n, k=(5, 5), padding=2) == "im2col"
    tiles_each = 9                                            # 6x6 output, padding 1: 3x3 tiles
    few = (conv_module.WINOGRAD_MIN_TILES - 1) // tiles_each
    assert path(n, n, padding=1, n=few) == "im2col"           # fewer than WINOGRAD_MIN_TILES tiles
    assert path(n, n, padding=1, n=few + 1) == "Winograd"


def test_nan_and_inf_propagate(always_winograd):
    """A NaN reaches every output whose window holds it (and, through the tile transforms, the
    rest of those 2x2 output tiles: Winograd mixes a whole 4x4 tile). An inf input gives NaN or
    inf there, never a finite number."""
    x = np.zeros((1, 2, 6, 6), np.float32)
    x[0, 1, 3, 3] = np.nan
    w = np.ones((2, 2, 3, 3), dtype=np.float32)
    out = F.conv2d(mc.Tensor(x, requires_grad=True), w, padding=1)
    assert _plan(out) == "winograd"
    assert np.isnan(out.data[:, :, 2:5, 2:5]).all()
    x[0, 1, 3, 3] = np.inf
    out = F.conv2d(mc.Tensor(x, requires_grad=True), w, padding=1)
    assert not np.isfinite(out.data[:, :, 2:5, 2:5]).any()


@pytest.mark.parametrize("weight_grad", [True, False])
def test_bias_gradient_with_and_without_the_weight_gradient(always_winograd, weight_grad):
    """db with dw computed or not; odd output sizes put zero-padded tiles on the edge. It equals
    g's sum."""
    rng = np.random.default_rng(3)
    x = mc.Tensor(rng.standard_normal((3, 2, 7, 5)), dtype=np.float64, requires_grad=True)
    w = mc.Tensor(rng.standard_normal((4, 2, 3, 3)), dtype=np.float64, requires_grad=weight_grad)
    b = mc.Tensor(rng.standard_normal(4), dtype=np.float64, requires_grad=True)
    out = F.conv2d(x, w, b, padding=(1, 0))
    assert _plan(out) == "winograd"
    g = rng.standard_normal(out.shape)
    out.backward(g)
    np.testing.assert_allclose(b.grad, g.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    assert (w.grad is not None) == weight_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C, H, W, top, left", [(5, 16, 16, 1, 1), (3, 8, 16, 2, 0), (7, 19, 19, 1, 1),
                                                (2, 5, 3, 0, 2), (17, 16, 17, 1, 1)])
def test_channels_last_copies_round_trip(dtype, C, H, W, top, left):
    """kernels/cpu/winograd.py's copies into and out of a block's channels-last, padded layout:
    both of _from_channels_last's loop orders (planes that are a multiple of 1 KiB, 16x16 in
    float32 or 8x16 in float64, and others) give back exactly what _to_channels_last wrote."""
    x3 = np.random.default_rng(0).standard_normal((C, H, W)).astype(dtype)
    th, tw = numba_w.tiles(H + top + 2 - 2, W + left + 2 - 2)      # as for padding (top, left)
    xt = np.zeros((max(2 * th + 2, top + H), max(2 * tw + 2, left + W), C), dtype)
    numba_w._to_channels_last(x3, xt, top, left)
    np.testing.assert_array_equal(xt[top:top + H, left:left + W], np.moveaxis(x3, 0, -1))
    assert not xt[:top].any() and not xt[:, :left].any()
    back = np.full_like(x3, np.nan)
    numba_w._from_channels_last(xt, back, top, left)
    np.testing.assert_array_equal(back, x3)
