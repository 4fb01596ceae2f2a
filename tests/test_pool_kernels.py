"""The Numba pooling kernels against the reference ones (the specification).

Every kernel on hypothesis-drawn configurations in float32 and float64; the backward kernels
exactly (same additions in the same order); a race stress test with chunk size 1; NaN in ->
NaN out; whole ops under use_kernels("numba") against use_kernels("reference").
"""
import numba
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.functional.pool import pool_output_size
from minicnn.kernels.cpu import pool as nb
from minicnn.kernels.reference import pool as ref
from minicnn.testing.pool import pool2d_configs

DTYPES = [np.float32, np.float64]


def kernel_args(cfg):
    """(kh, kw, sh, sw, ph, pw, oh, ow) for a Pool2dConfig."""
    (kh, kw), (sh, sw), (ph, pw) = cfg.pairs
    oh = pool_output_size(cfg.H, kh, sh, ph, cfg.ceil_mode)
    ow = pool_output_size(cfg.W, kw, sw, pw, cfg.ceil_mode)
    return kh, kw, sh, sw, ph, pw, oh, ow


def draw_input(seed, shape, dtype, ties):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many ties, so both must pick the same (first) winner
        return rng.integers(-2, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def tol(dtype):
    return dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)


# ---- numba == reference ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=pool2d_configs(max_batch=3, max_channels=3, max_size=10), seed=st.integers(0, 2**16),
       ties=st.booleans())
def test_max_pool2d_kernels_match(dtype, cfg, seed, ties):
    x = draw_input(seed, cfg.shape, dtype, ties)
    args = kernel_args(cfg)
    out_r, arg_r = ref.max_pool2d_forward(x, *args)
    out_n, arg_n = nb.max_pool2d_forward(x, *args)
    assert out_n.dtype == dtype and arg_n.dtype == np.int64
    np.testing.assert_array_equal(out_n, out_r)
    np.testing.assert_array_equal(arg_n, arg_r)
    g = np.random.default_rng(seed + 1).standard_normal(out_r.shape).astype(dtype)
    dx_r = ref.max_pool2d_backward(g, arg_r, cfg.H, cfg.W)
    for serial_below in (0, 1 << 30):  # the parallel loops, then their serial twin
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("minicnn.kernels.cpu._jit.SERIAL_BELOW", serial_below)
            dx_n = nb.max_pool2d_backward(g, arg_r, cfg.H, cfg.W)
        assert dx_n.dtype == dtype and dx_n.shape == cfg.shape
        np.testing.assert_array_equal(dx_n, dx_r)


@pytest.mark.parametrize("dtype", DTYPES)
@given(N=st.integers(1, 3), C=st.integers(1, 3), H=st.integers(2, 13), W=st.integers(2, 13),
       seed=st.integers(0, 2**16), ties=st.booleans(), specials=st.booleans())
def test_max_pool_2x2_stride2_kernel_matches(dtype, N, C, H, W, seed, ties, specials):
    """2x2/2 without padding has its own kernel (LeNet's pooling): the reference's values and
    argmax on odd and even sizes (the last odd row/column is left out), ties (the first wins),
    NaN (the first NaN wins) and -inf; and that kernel is the one that ran."""
    x = draw_input(seed, (N, C, H, W), dtype, ties)
    if specials:
        rng = np.random.default_rng(seed)
        x.reshape(-1)[rng.integers(0, x.size, 3)] = [np.nan, -np.inf, np.nan]
    args = (2, 2, 2, 2, 0, 0, H // 2, W // 2)
    ran = []
    fast = nb._max_pool_2x2_stride2
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nb, "_max_pool_2x2_stride2", lambda *a: (ran.append(1), fast(*a))[1])
        out_n, arg_n = nb.max_pool2d_forward(x, *args)
    out_r, arg_r = ref.max_pool2d_forward(x, *args)
    assert ran and out_n.dtype == dtype and arg_n.dtype == np.int64
    np.testing.assert_array_equal(out_n, out_r)    # NaN == NaN here
    np.testing.assert_array_equal(arg_n, arg_r)


@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=pool2d_configs(max_batch=3, max_channels=3, max_size=10), count_include_pad=st.booleans(),
       seed=st.integers(0, 2**16))
def test_avg_pool2d_kernels_match(dtype, cfg, count_include_pad, seed):
    x = draw_input(seed, cfg.shape, dtype, ties=False)
    args = kernel_args(cfg)
    out_r = ref.avg_pool2d_forward(x, *args, count_include_pad)
    out_n = nb.avg_pool2d_forward(x, *args, count_include_pad)
    assert out_n.dtype == dtype
    np.testing.assert_allclose(out_n, out_r, **tol(dtype))  # sums in a different order
    g = np.random.default_rng(seed + 1).standard_normal(out_r.shape).astype(dtype)
    back = (cfg.H, cfg.W) + args[:6] + (count_include_pad,)
    dx_r = ref.avg_pool2d_backward(g, *back)
    dx_n = nb.avg_pool2d_backward(g, *back)
    assert dx_n.dtype == dtype and dx_n.shape == cfg.shape
    np.testing.assert_array_equal(dx_n, dx_r)


@pytest.mark.parametrize("dtype", DTYPES)
@given(N=st.integers(1, 3), C=st.integers(1, 3), H=st.integers(1, 11), W=st.integers(1, 11),
       oh=st.integers(1, 11), ow=st.integers(1, 11), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_kernels_match(dtype, N, C, H, W, oh, ow, seed):
    x = draw_input(seed, (N, C, H, W), dtype, ties=False)
    out_r = ref.adaptive_avg_pool2d_forward(x, oh, ow)
    out_n = nb.adaptive_avg_pool2d_forward(x, oh, ow)
    assert out_n.dtype == dtype
    np.testing.assert_allclose(out_n, out_r, **tol(dtype))
    g = np.random.default_rng(seed + 1).standard_normal(out_r.shape).astype(dtype)
    dx_n = nb.adaptive_avg_pool2d_backward(g, H, W)
    assert dx_n.dtype == dtype
    np.testing.assert_array_equal(dx_n, ref.adaptive_avg_pool2d_backward(g, H, W))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_all_minus_inf_window(dtype):
    # no cell beats -inf: the winner is still a real cell (the first), never the padding
    x = np.full((1, 2, 3, 3), -np.inf, dtype=dtype)
    for module in (ref, nb):
        out, argmax = module.max_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 2, 2)
        assert np.all(out == -np.inf)
        np.testing.assert_array_equal(argmax[0, 0], [[0, 1], [3, 4]])


# ---- races -------------------------------------------------------------------------------------
@pytest.fixture
def chunksize_one():
    numba.set_parallel_chunksize(1)  # hand out one prange iteration at a time: races show up
    yield
    numba.set_parallel_chunksize(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_kernels_race_free(dtype, chunksize_one, monkeypatch):
    # one channel, many planes, heavily overlapping windows (3x3 stride 1, overlapping bins):
    # every cell receives several additions, which must come out exactly as the reference's
    monkeypatch.setattr("minicnn.kernels.cpu._jit.SERIAL_BELOW", 0)  # the parallel loops, however small
    rng = np.random.default_rng(0)
    N, C, H, W = 16, 1, 13, 11
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    cases = []
    for kh, kw, sh, sw, ph, pw in [(3, 3, 1, 1, 1, 1), (3, 3, 2, 2, 0, 0), (4, 2, 1, 2, 2, 1)]:
        oh, ow = pool_output_size(H, kh, sh, ph, True), pool_output_size(W, kw, sw, pw, True)
        _, argmax = ref.max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow)
        g = rng.standard_normal((N, C, oh, ow)).astype(dtype)
        cases.append(("max_pool2d_backward", (g, argmax, H, W)))
        cases.append(("avg_pool2d_backward", (g, H, W, kh, kw, sh, sw, ph, pw, True)))
        cases.append(("avg_pool2d_backward", (g, H, W, kh, kw, sh, sw, ph, pw, False)))
    cases.append(("adaptive_avg_pool2d_backward", (rng.standard_normal((N, C, 9, 4)).astype(dtype), H, W)))
    for name, args in cases:
        expected = getattr(ref, name)(*args)
        for _ in range(30):
            np.testing.assert_array_equal(getattr(nb, name)(*args), expected, err_msg=name)


def _one(*index):
    mask = np.zeros((2, 2, 2, 2), dtype=bool)
    mask[index] = True
    return mask


# ---- NaN in -> NaN out ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates(dtype):
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(dtype)
    x[1, 0, 2, 3] = np.nan
    args = (3, 3, 2, 2, 1, 1, 3, 3)
    # the windows (rows and columns 2*o - 1 ... 2*o + 1) that contain cell (2, 3)
    touched = np.zeros((2, 2, 3, 3), dtype=bool)
    touched[1, 0, 1, 1:3] = True
    out, argmax = nb.max_pool2d_forward(x, *args)
    np.testing.assert_array_equal(np.isnan(out), touched)
    assert np.all(argmax[touched] == 2 * 6 + 3)  # the NaN won those windows
    for cip in (True, False):
        np.testing.assert_array_equal(np.isnan(nb.avg_pool2d_forward(x, *args, cip)), touched)
    # adaptive 6 -> 2: bins [0, 3) and [3, 6); cell (2, 3) is in row bin 0, column bin 1
    np.testing.assert_array_equal(np.isnan(nb.adaptive_avg_pool2d_forward(x, 2, 2)),
                                  _one(1, 0, 0, 1))
    # a NaN gradient reaches exactly the input cells its window sends gradient to
    g = np.zeros((2, 2, 3, 3), dtype=dtype)
    g[0, 1, 2, 0] = np.nan
    dx = nb.max_pool2d_backward(g, argmax, 6, 6)
    assert np.isnan(dx).sum() == 1 and np.isnan(dx[0, 1].reshape(-1)[argmax[0, 1, 2, 0]])
    dx = nb.avg_pool2d_backward(g, 6, 6, 3, 3, 2, 2, 1, 1, True)
    # that window is rows 3..5 and columns -1..1: six real cells
    assert np.isnan(dx).sum() == 6 and np.all(np.isnan(dx[0, 1, 3:6, 0:2]))


def test_max_pool2d_first_nan_wins_in_both():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]])
    for module in (ref, nb):
        out, argmax = module.max_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
        assert np.isnan(out[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1


# ---- whole ops ------------------------------------------------------------------------------------
def run_op(kernels, op, x, g):
    with mc.use_kernels(kernels):
        t = mc.Tensor(x, dtype=x.dtype, requires_grad=True)
        out = op(t)
        out.backward(g)
        return out.numpy(), t.grad


@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=pool2d_configs(), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_ops_numba_equal_reference(dtype, cfg, count_include_pad, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.shape).astype(dtype)
    ops = [lambda t: F.max_pool2d(t, **cfg.kwargs),
           lambda t: F.avg_pool2d(t, **cfg.kwargs, count_include_pad=count_include_pad),
           lambda t: F.adaptive_avg_pool2d(t, (max(cfg.H // 2, 1), cfg.W + 1)),
           F.global_avg_pool2d]
    for op in ops:
        with mc.no_grad():
            shape = op(mc.Tensor(x, dtype=dtype)).shape
        g = rng.standard_normal(shape).astype(dtype)
        out_r, dx_r = run_op("reference", op, x, g)
        out_n, dx_n = run_op("numba", op, x, g)
        assert out_n.dtype == dx_n.dtype == dtype
        np.testing.assert_allclose(out_n, out_r, **tol(dtype))
        np.testing.assert_allclose(dx_n, dx_r, **tol(dtype))
