"""conv2d, conv1d and linear: gradients, a naive-loop oracle, properties, lecture examples, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.testing.conv import conv1d_configs, conv2d_configs, output_size
from oracles import naive_conv2d  # tests/oracles.py: the seven plain loops


def T(a, grad=True):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


@settings(max_examples=30)
@given(conv2d_configs(), st.booleans(), st.integers(0, 2**31 - 1))
def test_conv2d_forward_matches_naive_loops(cfg, with_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.input_shape)
    w = rng.standard_normal(cfg.weight_shape)
    b = rng.standard_normal(cfg.out_channels) if with_bias else None
    out = F.conv2d(T(x), T(w), None if b is None else T(b), **cfg.kwargs())
    want = naive_conv2d(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    assert out.shape == cfg.output_shape == want.shape
    np.testing.assert_allclose(out.data, want, rtol=1e-10, atol=1e-10)


@settings(max_examples=20)
@given(conv1d_configs(), st.integers(0, 2**31 - 1))
def test_conv1d_forward_matches_naive_loops(cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.input_shape)
    w = rng.standard_normal(cfg.weight_shape)
    b = rng.standard_normal(cfg.out_channels)
    out = F.conv1d(T(x), T(w), T(b), **cfg.kwargs())
    pad = cfg.padding if isinstance(cfg.padding, str) else (0, cfg.padding)
    want = naive_conv2d(x[:, :, None], w[:, :, None], b, (1, cfg.stride), pad, (1, cfg.dilation), cfg.groups)
    assert out.shape == cfg.output_shape
    np.testing.assert_allclose(out.data, want[:, :, 0], rtol=1e-10, atol=1e-10)


# ---- gradients ---------------------------------------------------------------------------------
CONV2D_GRAD_CASES = [
    # (x shape, weight shape, keyword arguments)
    ((2, 3, 6, 5), (4, 3, 3, 3), dict()),                                   # plain 3x3
    ((2, 2, 7, 7), (3, 2, 3, 3), dict(stride=2)),                           # stride 2
    ((1, 2, 5, 6), (3, 2, 3, 2), dict(padding=(2, 1))),                     # padding pair
    ((2, 2, 6, 5), (2, 2, 4, 2), dict(padding="same")),                     # odd total padding
    ((1, 2, 7, 8), (3, 2, 3, 3), dict(padding="same", stride=2)),           # same + stride
    ((1, 2, 8, 7), (2, 2, 3, 3), dict(dilation=2, padding=1)),              # dilation 2
    ((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),                # groups 2
    ((2, 3, 5, 4), (6, 1, 3, 3), dict(groups=3, padding=1)),                # depthwise (x2)
    ((2, 4, 4, 5), (3, 4, 1, 1), dict()),                                   # 1x1
    ((1, 2, 6, 7), (2, 1, 2, 3), dict(stride=(2, 1), dilation=(1, 2), groups=2, padding="valid")),
]


@pytest.mark.parametrize("xs, ws, kw", CONV2D_GRAD_CASES)
def test_conv2d_gradcheck(xs, ws, kw, rng):
    x, w, b = T(rng.standard_normal(xs)), T(rng.standard_normal(ws)), T(rng.standard_normal(ws[0]))
    assert mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b])
    assert mc.gradcheck(lambda x, w: F.conv2d(x, w, **kw), [x, w])   # without a bias


def test_conv2d_gradcheck_large_strided_kernel(rng):
    # kernel larger than the stride and the input cropped on the right: pixels never read get 0
    x, w = T(rng.standard_normal((1, 1, 8, 9))), T(rng.standard_normal((2, 1, 3, 4)))
    assert mc.gradcheck(lambda x, w: F.conv2d(x, w, stride=3, padding=1), [x, w])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, padding="valid")])
def test_conv1d_gradcheck(kw, rng):
    x, w, b = T(rng.standard_normal((2, 4, 9))), T(rng.standard_normal((4, 2 if kw.get("groups") else 4, 3))), \
        T(rng.standard_normal(4))
    assert mc.gradcheck(lambda x, w, b: F.conv1d(x, w, b, **kw), [x, w, b])


@pytest.mark.parametrize("xs", [(5,), (3, 5), (2, 3, 5)])
def test_linear_gradcheck_and_value(xs, rng):
    x, w, b = T(rng.standard_normal(xs)), T(rng.standard_normal((4, 5))), T(rng.standard_normal(4))
    assert mc.gradcheck(F.linear, [x, w, b])
    assert mc.gradcheck(lambda x, w: F.linear(x, w), [x, w])
    out = F.linear(x, w, b)
    assert out.shape == xs[:-1] + (4,)
    want = np.zeros(xs[:-1] + (4,))
    for idx in np.ndindex(*want.shape):
        want[idx] = b.data[idx[-1]] + sum(x.data[idx[:-1] + (k,)] * w.data[idx[-1], k] for k in range(5))
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)


def test_only_requested_gradients_are_computed(rng):
    x = T(rng.standard_normal((2, 2, 5, 5)), grad=False)
    w = T(rng.standard_normal((3, 2, 3, 3)))
    b = T(rng.standard_normal(3), grad=False)
    F.conv2d(x, w, b).backward(rng.standard_normal((2, 3, 3, 3)))
    assert x.grad is None and b.grad is None and w.grad.shape == w.shape


def test_batch_chunks_give_the_same_result(rng, monkeypatch):
    """A tiny workspace forces one sample per im2col chunk: forward and backward must not change."""
    from minicnn.kernels.cpu import conv as conv_module
    x, w, b = T(rng.standard_normal((5, 3, 6, 6))), T(rng.standard_normal((4, 3, 3, 3))), T(rng.standard_normal(4))
    g = rng.standard_normal((5, 4, 3, 3))
    results = []
    for limit in (conv_module.WORKSPACE_BYTES, 1):
        monkeypatch.setattr(conv_module, "WORKSPACE_BYTES", limit)
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", limit)
        x.grad = w.grad = b.grad = None
        out = F.conv2d(x, w, b, stride=2, padding=1)
        out.backward(g)
        results.append([out.data, x.grad, w.grad, b.grad])
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_second_backward_through_the_same_graph(rng):
    """The forward's columns are freed by the first backward; with retain_graph a second one
    recomputes them from the kept input; without, the graph's arrays are gone (PyTorch's rule)."""
    x, w = T(rng.standard_normal((2, 3, 5, 5))), T(rng.standard_normal((4, 3, 3, 3)))
    out = F.conv2d(x, w, padding=1)
    g = rng.standard_normal(out.shape)
    out.backward(g, retain_graph=True)
    first = w.grad.copy(), x.grad.copy()
    out.backward(g)
    np.testing.assert_allclose(w.grad, 2 * first[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, 2 * first[1], rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward(g)


def test_empty_batch(rng):
    x = T(np.zeros((0, 3, 5, 5)))
    w = T(rng.standard_normal((2, 3, 3, 3)))
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (0, 2, 5, 5)
    out.backward(np.zeros(out.shape))
    assert x.grad.shape == x.shape and np.all(w.grad == 0)


def test_pointwise_shortcut_matches_the_general_path(rng, monkeypatch):
    """1x1, stride 1, no padding skips im2col; with padding 0 but stride 2 it does not."""
    x, w = T(rng.standard_normal((3, 4, 5, 5))), T(rng.standard_normal((6, 4, 1, 1)))
    out = F.conv2d(x, w)
    want = naive_conv2d(x.data, w.data, None, (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    np.testing.assert_allclose(x.grad, np.einsum("nohw,oc->nchw", g, w.data[:, :, 0, 0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad[:, :, 0, 0], np.einsum("nohw,nchw->oc", g, x.data), rtol=1e-12, atol=1e-12)
    from minicnn.kernels.cpu import conv as conv_module
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)   # one sample per chunk
    x.grad = w.grad = None
    F.conv2d(x, w).backward(g)
    np.testing.assert_allclose(x.grad, np.einsum("nohw,oc->nchw", g, w.data[:, :, 0, 0]), rtol=1e-12, atol=1e-12)


# ---- properties ---------------------------------------------------------------------------------
@settings(max_examples=30)
@given(conv2d_configs(string_padding=False, max_dilation=1, max_size=12))
def test_output_size_formula(cfg):
    out = F.conv2d(np.zeros(cfg.input_shape), np.zeros(cfg.weight_shape), **cfg.kwargs())
    (kh, kw), (sh, sw), (ph, pw) = cfg.kernel, cfg.stride, cfg.padding
    # the lecture's formula (N - F + 2P) / S + 1, with N the input size and F the filter size
    assert out.shape == (cfg.N, cfg.out_channels, (cfg.H - kh + 2 * ph) // sh + 1, (cfg.W - kw + 2 * pw) // sw + 1)
    assert out.shape[2] == output_size(cfg.H, kh, sh, ph)


@settings(max_examples=15)
@given(conv2d_configs(), st.integers(0, 2**31 - 1))
def test_conv_is_linear_in_x_and_in_w(cfg, seed):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2,) + cfg.input_shape)
    w1, w2 = rng.standard_normal((2,) + cfg.weight_shape)
    a, c = 0.7, -1.3

    def conv(x, w):
        return F.conv2d(T(x, False), T(w, False), **cfg.kwargs()).data

    np.testing.assert_allclose(conv(a * x1 + c * x2, w1), a * conv(x1, w1) + c * conv(x2, w1), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv(x1, a * w1 + c * w2), a * conv(x1, w1) + c * conv(x1, w2), rtol=1e-10, atol=1e-10)


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_translation_equivariance_away_from_borders(kh, kw, dy, dx, seed):
    """Shifting the input of a stride-1 conv shifts its output by the same amount (the interior)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, 12, 12))
    w = rng.standard_normal((3, 2, kh, kw))
    shifted = np.roll(x, (dy, dx), axis=(2, 3))
    out = F.conv2d(T(x, False), T(w, False)).data
    out_shifted = F.conv2d(T(shifted, False), T(w, False)).data
    OH, OW = out.shape[2:]
    np.testing.assert_allclose(out_shifted[:, :, dy:, dx:], out[:, :, :OH - dy, :OW - dx], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_lecture_7x7_input_3x3_filter(stride, expected):
    out = F.conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), stride=stride)
    assert out.shape == (1, 1, expected, expected)
    np.testing.assert_array_equal(out.data, 9.0)


def test_lecture_3x3_filter_stride_3_does_not_fit_but_floors():
    # (7 - 3) / 3 + 1 is not an integer; frameworks floor it: 2
    assert F.conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), stride=3).shape == (1, 1, 2, 2)


def test_lecture_1x1_conv_56x56x64_to_56x56x32(rng):
    x = rng.standard_normal((1, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((32, 64, 1, 1)).astype(np.float32)
    out = F.conv2d(x, w)
    assert out.shape == (1, 32, 56, 56)
    # a 1x1 conv is a per-pixel fully connected layer over the channels
    np.testing.assert_allclose(out.data, np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x), rtol=1e-4, atol=1e-4)


def test_same_padding_output_sizes():
    for H in range(1, 13):
        for S in (1, 2, 3, 4):
            for K in (1, 2, 3, 4, 5):
                for D in (1, 2):
                    out = F.conv2d(np.zeros((1, 1, H, H + 1)), np.zeros((1, 1, K, K)),
                                   stride=S, padding="same", dilation=D)
                    assert out.shape[2:] == (math.ceil(H / S), math.ceil((H + 1) / S)), (H, S, K, D)


def test_same_padding_puts_the_odd_pixel_at_the_bottom_right():
    # 1x4 input, 1x2 kernel of ones, stride 1: total padding 1, all of it on the right
    x = np.array([[[[1.0, 2.0, 3.0, 4.0]]]])
    out = F.conv2d(x, np.ones((1, 1, 1, 2)), padding="same")
    np.testing.assert_array_equal(out.data, [[[[3.0, 5.0, 7.0, 4.0]]]])
    out = F.conv1d(x[:, :, 0], np.ones((1, 1, 2)), padding="same")
    np.testing.assert_array_equal(out.data, [[[3.0, 5.0, 7.0, 4.0]]])


def test_valid_is_zero_padding():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((2, 2, 3, 2))
    np.testing.assert_array_equal(F.conv2d(x, w, padding="valid").data, F.conv2d(x, w, padding=0).data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    x = mc.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True, dtype=dtype)
    w = mc.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True, dtype=dtype)
    b = mc.Tensor(rng.standard_normal(4), requires_grad=True, dtype=dtype)
    out = F.conv2d(x, w, b, padding=1)
    assert out.dtype == dtype
    out.backward(np.ones(out.shape))
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype
    x1 = mc.Tensor(rng.standard_normal((2, 3, 6)), requires_grad=True, dtype=dtype)
    assert F.conv1d(x1, w[:, :, 0]).dtype == dtype
    lin = F.linear(x1, mc.Tensor(rng.standard_normal((2, 6)), requires_grad=True, dtype=dtype))
    lin.backward(np.ones(lin.shape))
    assert lin.dtype == x1.grad.dtype == dtype


def test_float32_matches_float64(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    o32 = F.conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=1, stride=2)
    o64 = F.conv2d(x, w, b, padding=1, stride=2)
    np.testing.assert_allclose(o32.data, o64.data, rtol=1e-4, atol=1e-4)


def test_mixed_dtypes_raise(rng):
    x = mc.Tensor(rng.standard_normal((1, 1, 4, 4)), dtype=np.float32)
    w = mc.Tensor(rng.standard_normal((1, 1, 3, 3)), dtype=np.float64)
    with pytest.raises(TypeError, match="float32 and float64"):
        F.conv2d(x, w)


# ---- bad input ------------------------------------------------------------------------------
def _conv(xs=(2, 4, 8, 8), ws=(6, 4, 3, 3), bs=None, **kw):
    return F.conv2d(np.zeros(xs), np.zeros(ws), None if bs is None else np.zeros(bs), **kw)


@pytest.mark.parametrize("call, match", [
    (lambda: _conv(xs=(3, 32, 32)), r"conv2d: expected input of shape \(N, C, H, W\), got \(3, 32, 32\)"),
    (lambda: _conv(ws=(6, 4, 3)), r"conv2d: expected weight of shape \(out_channels, in_channels // groups, kH, kW\), got \(6, 4, 3\)"),
    (lambda: _conv(ws=(6, 3, 3, 3)), r"conv2d: input has 4 channels, but weight of shape \(6, 3, 3, 3\) with groups=1 expects 3"),
    (lambda: _conv(ws=(6, 4, 3, 3), groups=2), r"groups=2 expects 8 channels"),
    (lambda: _conv(xs=(2, 3, 8, 8), ws=(6, 1, 3, 3), groups=2), r"conv2d: in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: _conv(ws=(5, 2, 3, 3), groups=2), r"conv2d: out_channels \(5\) must be divisible by groups \(2\)"),
    (lambda: _conv(groups=0), r"conv2d: groups must be a positive integer, got 0"),
    (lambda: _conv(stride=0), r"conv2d: stride must be >= 1, got 0"),
    (lambda: _conv(stride=(1, 0)), r"conv2d: stride must be >= 1, got \(1, 0\)"),
    (lambda: _conv(dilation=0), r"conv2d: dilation must be >= 1, got 0"),
    (lambda: _conv(padding=-1), r"conv2d: padding must be >= 0, got -1"),
    (lambda: _conv(padding="full"), r"conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    (lambda: _conv(padding=(1, 2, 3)), r"conv2d: padding must be an int or a pair of ints, got \(1, 2, 3\)"),
    (lambda: _conv(xs=(1, 4, 4, 4), ws=(2, 4, 5, 5)),
     r"conv2d: the kernel \(dilated: 5x5\) is larger than the padded input \(4x4\)"),
    (lambda: _conv(xs=(1, 4, 4, 4), ws=(2, 4, 3, 3), dilation=2, padding=(0, 1)),
     r"conv2d: the kernel \(dilated: 5x5\) is larger than the padded input \(4x6\)"),
    (lambda: _conv(bs=(5,)), r"conv2d: expected bias of shape \(6,\), got \(5,\)"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4), dtype=np.int64), np.zeros((1, 1, 3, 3), dtype=np.int64)),
     r"conv2d: expected floating-point input and weight, got int64 and int64"),
    (lambda: F.conv1d(np.zeros((2, 4, 8, 8)), np.zeros((2, 4, 3))), r"conv1d: expected input of shape \(N, C, L\), got \(2, 4, 8, 8\)"),
    (lambda: F.conv1d(np.zeros((2, 4, 8)), np.zeros((2, 4, 3, 3))), r"conv1d: expected weight of shape \(out_channels, in_channels // groups, K\)"),
    (lambda: F.conv1d(np.zeros((2, 4, 3)), np.zeros((2, 4, 5))), r"conv1d: the kernel \(dilated: 5\) is larger than the padded input \(3\)"),
    (lambda: F.conv1d(np.zeros((2, 4, 8)), np.zeros((2, 4, 3)), stride=(1, 2)), r"conv1d: stride must be an int, got \(1, 2\)"),
    (lambda: F.linear(np.zeros((3, 5)), np.zeros((4, 6))),
     r"linear: input has 5 features \(last axis of \(3, 5\)\), but weight of shape \(4, 6\) expects in_features = 6"),
    (lambda: F.linear(np.zeros((3, 5)), np.zeros((4, 5, 1))), r"linear: expected weight of shape \(out_features, in_features\), got \(4, 5, 1\)"),
    (lambda: F.linear(np.zeros((3, 5)), np.zeros((4, 5)), np.zeros(5)), r"linear: expected bias of shape \(4,\), got \(5,\)"),
])
def test_bad_input_raises_a_clear_error(call, match):
    error = TypeError if "floating-point" in match else ValueError
    with pytest.raises(error, match=match):
        call()
