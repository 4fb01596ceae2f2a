"""Pooling ops: max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d.

Forward against naive loops written here (np.ndindex over outputs), gradients by gradcheck at
float64, the lecture's worked example, PyTorch's output sizes and divisors written out by hand,
properties, dtypes and error messages.
"""
import numpy as np
import pytest
from conftest import tie_free
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.testing.pool import pool2d_configs

KERNEL_SETS = ["numba", "reference"]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- naive oracles ---------------------------------------------------------------------------
def oracle_out_size(size, k, s, p, ceil_mode):
    """Count the windows one by one. Window o covers input rows o*s - p ... o*s - p + k - 1.
    floor mode: it must end inside the padded input. ceil mode: it may overhang the padded input
    by less than a stride, but must start inside the input or the top/left padding."""
    n = 0
    while True:
        start = n * s - p
        end = start + k
        if ceil_mode:
            fits = end - (size + p) < s and start < size
        else:
            fits = end <= size + p
        if not fits:
            return n
        n += 1


def oracle_max_pool(x, k, s, p, ceil_mode):
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(s), pair(p)
    N, C, H, W = x.shape
    out = np.empty((N, C, oracle_out_size(H, kh, sh, ph, ceil_mode), oracle_out_size(W, kw, sw, pw, ceil_mode)))
    for n, c, oy, ox in np.ndindex(out.shape):
        best = -np.inf  # padding: never wins
        for i in range(kh):
            for j in range(kw):
                h, w = oy * sh - ph + i, ox * sw - pw + j
                if 0 <= h < H and 0 <= w < W:
                    best = max(best, x[n, c, h, w])
        out[n, c, oy, ox] = best
    return out


def oracle_avg_pool(x, k, s, p, ceil_mode, count_include_pad):
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(s), pair(p)
    N, C, H, W = x.shape
    out = np.empty((N, C, oracle_out_size(H, kh, sh, ph, ceil_mode), oracle_out_size(W, kw, sw, pw, ceil_mode)))
    for n, c, oy, ox in np.ndindex(out.shape):
        total, real, padded = 0.0, 0, 0
        for i in range(kh):
            for j in range(kw):
                h, w = oy * sh - ph + i, ox * sw - pw + j
                if h < H + ph and w < W + pw:  # a cell of the padded input (not ceil's overhang)
                    padded += 1
                if 0 <= h < H and 0 <= w < W:
                    total += x[n, c, h, w]
                    real += 1
        out[n, c, oy, ox] = total / (padded if count_include_pad else real)
    return out


def oracle_adaptive_avg_pool(x, oh, ow):
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow))
    for n, c, i, j in np.ndindex(out.shape):
        rows = range(int(np.floor(i * H / oh)), int(np.ceil((i + 1) * H / oh)))
        cols = range(int(np.floor(j * W / ow)), int(np.ceil((j + 1) * W / ow)))
        out[n, c, i, j] = np.mean([x[n, c, h, w] for h in rows for w in cols])
    return out


def t64(x, grad=False):
    return mc.Tensor(x, dtype=np.float64, requires_grad=grad)


# ---- forward against the oracles -------------------------------------------------------------
@given(cfg=pool2d_configs(), seed=st.integers(0, 2**16))
def test_max_pool2d_matches_naive_loops(cfg, seed):
    x = np.random.default_rng(seed).standard_normal(cfg.shape)
    out = F.max_pool2d(t64(x), **cfg.kwargs)
    expected = oracle_max_pool(x, cfg.kernel, cfg.stride, cfg.padding, cfg.ceil_mode)
    assert out.shape == expected.shape == cfg.output_shape
    np.testing.assert_array_equal(out.numpy(), expected)


@given(cfg=pool2d_configs(), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool2d_matches_naive_loops(cfg, count_include_pad, seed):
    x = np.random.default_rng(seed).standard_normal(cfg.shape)
    out = F.avg_pool2d(t64(x), **cfg.kwargs, count_include_pad=count_include_pad)
    expected = oracle_avg_pool(x, cfg.kernel, cfg.stride, cfg.padding, cfg.ceil_mode, count_include_pad)
    assert out.shape == expected.shape == cfg.output_shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       oh=st.integers(1, 9), ow=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_naive_loops(N, C, H, W, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    out = F.adaptive_avg_pool2d(t64(x), (oh, ow))
    np.testing.assert_allclose(out.numpy(), oracle_adaptive_avg_pool(x, oh, ow), rtol=1e-12, atol=1e-14)


# ---- the lecture's example and hand-written PyTorch numbers ------------------------------------
LECTURE = np.array([[1, 2, 2, 4],
                    [4, 5, 6, 8],
                    [3, 2, 1, 0],
                    [1, 2, 3, 4]], dtype=np.float32)[None, None]


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_lecture_example_2x2_stride_2(kernels):
    with mc.use_kernels(kernels):
        np.testing.assert_array_equal(F.max_pool2d(mc.Tensor(LECTURE), 2, 2).numpy()[0, 0], [[5, 8], [3, 4]])
        np.testing.assert_array_equal(F.avg_pool2d(mc.Tensor(LECTURE), 2, 2).numpy()[0, 0], [[3, 5], [2, 2]])
        # stride defaults to the kernel size
        np.testing.assert_array_equal(F.max_pool2d(mc.Tensor(LECTURE), 2).numpy()[0, 0], [[5, 8], [3, 4]])


@pytest.mark.parametrize("H, k, s, p, ceil_mode, expected", [
    (5, 2, 2, 0, False, 2), (5, 2, 2, 0, True, 3),
    (6, 3, 2, 1, False, 3), (6, 3, 2, 1, True, 4),
    (55, 3, 2, 0, False, 27), (27, 3, 2, 0, False, 13), (13, 3, 2, 0, False, 6),  # AlexNet
    (112, 3, 2, 0, False, 55), (112, 3, 2, 0, True, 56),                           # GoogLeNet
    (3, 3, 2, 0, True, 1),
    # ceil mode's last window would start in the padding: PyTorch drops it
    (4, 2, 3, 1, True, 2), (5, 3, 3, 1, True, 2), (10, 4, 3, 2, True, 4),
    # ceil mode keeps one window overhanging an input smaller than the kernel
    (1, 2, 2, 0, True, 1),
])
def test_output_size_matches_pytorch(H, k, s, p, ceil_mode, expected):
    x = mc.zeros(1, 1, H, H)
    assert F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode).shape == (1, 1, expected, expected)
    assert F.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode).shape == (1, 1, expected, expected)
    assert oracle_out_size(H, k, s, p, ceil_mode) == expected  # the oracle agrees with PyTorch too


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_avg_divisor_in_ceil_mode_matches_pytorch(kernels):
    # ones 4x4, 3x3/2, padding 1, ceil mode: rows of the windows are [-1, 2), [1, 4), [3, 5):
    # real rows 2, 3, 1; counted rows (padding in, ceil's overhang out) 3, 3, 2.
    x = mc.ones(1, 1, 4, 4)
    with mc.use_kernels(kernels):
        out = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True).numpy()[0, 0]
        np.testing.assert_allclose(out * 36, [[16, 24, 12], [24, 36, 18], [12, 18, 9]], rtol=1e-6)
        out = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).numpy()[0, 0]
        np.testing.assert_allclose(out, np.ones((3, 3)), rtol=1e-6)


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_adaptive_bins_for_7_to_3(kernels):
    # bins [0, 3), [2, 5), [4, 7): they overlap, and their means on 0..6 are 1, 3, 5
    x = mc.Tensor(np.tile(np.arange(7.0), (7, 1))[None, None])
    with mc.use_kernels(kernels):
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 3).numpy()[0, 0], [[1, 3, 5]] * 3, rtol=1e-6)
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (1, None)).numpy()[0, 0], [np.arange(7.0)], rtol=1e-6)
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (1, 1, 7, 2)


def test_adaptive_backward_counts_overlapping_bins_twice():
    # 7 -> 3 along W only: column 2 lies in bins 0 and 1, column 4 in bins 1 and 2
    x = mc.Tensor(np.zeros((1, 1, 1, 7)), requires_grad=True)
    F.adaptive_avg_pool2d(x, (1, 3)).sum().backward()
    np.testing.assert_allclose(x.grad[0, 0, 0], np.array([1, 1, 2, 1, 2, 1, 1]) / 3, rtol=1e-6)


# ---- gradients ---------------------------------------------------------------------------------
MAX_CONFIGS = [  # (shape, kernel, stride, padding, ceil_mode)
    ((2, 2, 6, 6), 2, None, 0, False),
    ((2, 2, 7, 7), 3, 2, 0, False),            # overlapping 3x3/2
    ((1, 3, 7, 6), 3, 2, 1, False),            # with padding
    ((2, 1, 6, 7), 3, 2, 1, True),             # ceil mode
    ((1, 2, 5, 6), (2, 3), (1, 2), (1, 0), True),
    ((2, 2, 5, 5), 1, 1, 0, False),
]


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("shape, k, s, p, ceil_mode", MAX_CONFIGS)
def test_max_pool2d_gradcheck(kernels, shape, k, s, p, ceil_mode, rng):
    x = t64(tie_free(rng, shape), grad=True)
    with mc.use_kernels(kernels):
        assert mc.gradcheck(lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil_mode), [x])


AVG_CONFIGS = MAX_CONFIGS + [((1, 2, 4, 4), 3, 2, 1, True), ((1, 1, 1, 3), 2, 2, 0, True)]


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape, k, s, p, ceil_mode", AVG_CONFIGS)
def test_avg_pool2d_gradcheck(kernels, count_include_pad, shape, k, s, p, ceil_mode, rng):
    x = t64(rng.standard_normal(shape), grad=True)
    with mc.use_kernels(kernels):
        assert mc.gradcheck(lambda t: F.avg_pool2d(t, k, s, p, ceil_mode=ceil_mode,
                                                   count_include_pad=count_include_pad), [x])


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("shape, size", [((2, 2, 7, 7), 3), ((1, 2, 5, 9), (2, 4)), ((1, 1, 3, 4), 5),
                                         ((2, 3, 6, 6), (None, 2)), ((2, 1, 4, 4), 1)])
def test_adaptive_avg_pool2d_gradcheck(kernels, shape, size, rng):
    x = t64(rng.standard_normal(shape), grad=True)
    with mc.use_kernels(kernels):
        assert mc.gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), [x])


def test_global_avg_pool2d_gradcheck_and_values(rng):
    xs = rng.standard_normal((3, 4, 5, 6))
    out = F.global_avg_pool2d(t64(xs))
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out.numpy(), xs.mean(axis=(2, 3)), rtol=1e-12)
    assert mc.gradcheck(F.global_avg_pool2d, [t64(rng.standard_normal((2, 3, 4, 3)), grad=True)])


def test_gradcheck_with_a_non_contiguous_upstream_gradient(rng):
    # the transpose makes the gradient reaching the pooling backward a non-contiguous view
    x = t64(tie_free(rng, (2, 2, 6, 5)), grad=True)
    assert mc.gradcheck(lambda t: F.max_pool2d(t, 2, 1).transpose(0, 1, 3, 2), [x])
    assert mc.gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1).transpose(3, 2, 1, 0), [x])


def test_unbatched_input(rng):
    x = rng.standard_normal((3, 7, 6))
    for op in (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 2),
               lambda t: F.adaptive_avg_pool2d(t, 3)):
        batched = op(t64(x[None])).numpy()[0]
        np.testing.assert_array_equal(op(t64(x)).numpy(), batched)
    assert F.global_avg_pool2d(t64(x)).shape == (3,)
    assert mc.gradcheck(lambda t: F.max_pool2d(t, 2), [t64(tie_free(rng, (2, 4, 4)), grad=True)])


# ---- properties ---------------------------------------------------------------------------------
@given(cfg=pool2d_configs(), unpadded=pool2d_configs(padding=False), value=st.floats(-100, 100))
def test_avg_of_a_constant_is_that_constant(cfg, unpadded, value):
    x = mc.Tensor(np.full(cfg.shape, value), dtype=np.float64)
    out = F.avg_pool2d(x, **cfg.kwargs, count_include_pad=False).numpy()
    np.testing.assert_allclose(out, value, rtol=1e-12, atol=1e-12)
    x = mc.Tensor(np.full(unpadded.shape, value), dtype=np.float64)
    for count_include_pad in (True, False):  # without padding the flag does not matter
        out = F.avg_pool2d(x, **unpadded.kwargs, count_include_pad=count_include_pad).numpy()
        np.testing.assert_allclose(out, value, rtol=1e-12, atol=1e-12)


@given(cfg=pool2d_configs(), seed=st.integers(0, 2**16))
def test_max_is_at_least_the_average(cfg, seed):
    x = t64(np.random.default_rng(seed).standard_normal(cfg.shape))
    mx = F.max_pool2d(x, **cfg.kwargs).numpy()
    avg = F.avg_pool2d(x, **cfg.kwargs, count_include_pad=False).numpy()
    assert np.all(mx >= avg - 1e-12)


@given(cfg=pool2d_configs(), seed=st.integers(0, 2**16))
def test_padding_never_wins(cfg, seed):
    # all-negative input: a zero-padded max would output 0 at the border; -inf padding never does
    rng = np.random.default_rng(seed)
    x = t64(-1.0 - rng.random(cfg.shape), grad=True)
    out = F.max_pool2d(x, **cfg.kwargs)
    assert np.all(out.numpy() < 0)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    # every output's gradient lands on a real input cell: none is lost in the padding
    np.testing.assert_allclose(x.grad.sum(), g.sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_max_gradient_goes_to_the_winner(kernels):
    x = mc.Tensor(LECTURE, requires_grad=True)
    with mc.use_kernels(kernels):
        F.max_pool2d(x, 2).backward(np.array([[[[1, 2], [3, 4]]]], dtype=np.float32))
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[2, 0], expected[3, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(x.grad[0, 0], expected)


# ---- dtypes and errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(kernels, dtype, rng):
    ops = [lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
           lambda t: F.adaptive_avg_pool2d(t, 3), F.global_avg_pool2d]
    with mc.use_kernels(kernels):
        for op in ops:
            x = mc.Tensor(rng.standard_normal((2, 3, 7, 7)), dtype=dtype, requires_grad=True)
            out = op(x)
            assert out.dtype == dtype
            out.backward(np.ones(out.shape, dtype=dtype))
            assert x.grad.dtype == dtype


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_errors(op):
    f = getattr(F, op)
    x = mc.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match=rf"{op}: expected input of shape \(N, C, H, W\), got \(4, 4\)"):
        f(mc.zeros(4, 4), 2)
    with pytest.raises(ValueError, match=rf"{op}: kernel size \(5, 5\) is larger than the padded input \(4, 4\)"):
        f(x, 5)
    with pytest.raises(ValueError, match=rf"{op}: kernel size \(7, 2\) is larger than the padded input \(6, 4\)"):
        f(x, (7, 2), padding=(1, 0))
    with pytest.raises(ValueError, match=rf"{op}: stride must be >= 1, got 0"):
        f(x, 2, 0)
    with pytest.raises(ValueError, match=rf"{op}: stride must be >= 1, got \(1, -1\)"):
        f(x, 2, (1, -1))
    with pytest.raises(ValueError, match=rf"{op}: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        f(x, 3, 1, 2)
    with pytest.raises(ValueError, match=rf"{op}: padding must be >= 0, got -1"):
        f(x, 3, 1, -1)
    with pytest.raises(ValueError, match=rf"{op}: kernel_size must be >= 1, got 0"):
        f(x, 0)
    with pytest.raises(ValueError, match=rf"{op}: kernel_size must be an int or a pair of ints, got \(1, 2, 3\)"):
        f(x, (1, 2, 3))
    with pytest.raises(TypeError, match=rf"{op}: expected a float32 or float64 input, got int64"):
        f(mc.Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2)


def test_adaptive_and_global_errors():
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 1, got \(0, 3\)"):
        F.adaptive_avg_pool2d(mc.zeros(1, 1, 4, 4), (0, 3))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 1, got 0"):
        F.adaptive_avg_pool2d(mc.zeros(1, 1, 4, 4), 0)
    with pytest.raises(ValueError,
                       match=r"adaptive_avg_pool2d: expected input of shape \(N, C, H, W\), got \(1, 2, 3, 4, 5\)"):
        F.adaptive_avg_pool2d(mc.zeros(1, 2, 3, 4, 5), 2)
    with pytest.raises(ValueError, match=r"global_avg_pool2d: expected input of shape \(N, C, H, W\), got \(8,\)"):
        F.global_avg_pool2d(mc.zeros(8))
