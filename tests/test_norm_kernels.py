"""The Numba norm kernels (kernels/cpu/norm.py) against the NumPy reference (kernels/reference/norm.py).

Every kernel works on (N, C, S) arrays. The Numba versions must agree with the reference for
float32 and float64, keep the dtype, be race-free under the smallest parallel chunks, and let a
NaN through.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.kernels.cpu import norm as KC
from minicnn.kernels.reference import norm as KR

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def assert_close(got, want, dtype):
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])


@st.composite
def ncs(draw):
    """(shape, dtype, seed) of a small (N, C, S) problem."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 40)))
    return shape, draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**31 - 1))


lrn_params = st.tuples(st.integers(1, 8),                       # size, even and > C included
                       st.sampled_from([1e-4, 0.1, 0.5, 2.0]),  # alpha
                       st.sampled_from([0.5, 0.75, 1.0, 1.5]),  # beta
                       st.sampled_from([0.5, 1.0, 2.0]))        # k


# ---- numba == reference over drawn configurations -------------------------------------------
@given(ncs(), lrn_params)
def test_lrn_forward_numba_equals_reference(problem, params):
    (shape, dtype, seed), (size, alpha, beta, k) = problem, params
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    out, scale = KC.lrn_forward(x, size, alpha, beta, k)
    ref_out, ref_scale = KR.lrn_forward(x, size, alpha, beta, k)
    assert_close(scale, ref_scale, dtype)
    assert_close(out, ref_out, dtype)


@given(ncs(), lrn_params)
def test_lrn_backward_numba_equals_reference(problem, params):
    (shape, dtype, seed), (size, alpha, beta, k) = problem, params
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    out, scale = KR.lrn_forward(x, size, alpha, beta, k)
    assert_close(KC.lrn_backward(x, out, scale, g, size, alpha, beta, k),
                 KR.lrn_backward(x, out, scale, g, size, alpha, beta, k), dtype)


def _bn_inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # an offset: the mean matters
    g = rng.standard_normal(shape).astype(dtype)
    mean = rng.standard_normal(C).astype(dtype)
    invstd = rng.uniform(0.5, 2.0, C).astype(dtype)
    weight, bias = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    return x, g, mean, invstd, weight, bias


@given(ncs())
def test_batch_norm_stats_numba_equals_reference(problem):
    x = _bn_inputs(*problem)[0]
    dtype = problem[1]
    for got, want in zip(KC.batch_norm_stats(x), KR.batch_norm_stats(x)):
        assert got.shape == (x.shape[1],)
        assert_close(got, want, dtype)


@given(ncs())
def test_batch_norm_forward_numba_equals_reference(problem):
    x, _, mean, invstd, weight, bias = _bn_inputs(*problem)
    assert_close(KC.batch_norm_forward(x, mean, invstd, weight, bias),
                 KR.batch_norm_forward(x, mean, invstd, weight, bias), problem[1])


@given(ncs(), st.sampled_from([0.0, 1e-5, 0.1]))
def test_batch_norm_train_forward_numba_equals_reference(problem, eps):
    x, _, _, _, weight, bias = _bn_inputs(*problem)
    dtype = problem[1]
    if x.shape[0] * x.shape[2] == 1 and eps == 0.0:
        eps = 1e-5  # a single value has variance 0: keep invstd finite
    got = KC.batch_norm_train_forward(x, weight, bias, eps)
    want = KR.batch_norm_train_forward(x, weight, bias, eps)
    for a, b in zip(got, want):
        assert_close(a, b, dtype)
    # the pieces agree with the separate kernels
    mean, var = KR.batch_norm_stats(x)
    assert_close(got[1], mean, dtype)
    assert_close(got[2], var, dtype)


@pytest.mark.parametrize("name", ["batch_norm_backward", "batch_norm_backward_eval"])
@given(problem=ncs())
def test_batch_norm_backward_numba_equals_reference(name, problem):
    x, g, mean, invstd, weight, _ = _bn_inputs(*problem)
    dtype = problem[1]
    got = getattr(KC, name)(g, x, mean, invstd, weight)
    want = getattr(KR, name)(g, x, mean, invstd, weight)
    # the sums run over M = N*S values; scale the tolerance of dweight/dbias by their size
    assert_close(got[0], want[0], dtype)
    for a, b in zip(got[1:], want[1:]):
        assert a.dtype == np.dtype(dtype) and a.shape == (x.shape[1],)
        np.testing.assert_allclose(a, b, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * x.size)


def test_stats_are_accurate_for_float32_with_a_large_offset():
    # a one-pass E[x^2] - E[x]^2 in float32 would lose every digit here; two passes in float64 keep them
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((16, 3, 1000))).astype(np.float32)
    exact = x.astype(np.float64).var(axis=(0, 2))
    for K in (KC, KR):
        mean, var = K.batch_norm_stats(x)
        assert mean.dtype == var.dtype == np.float32
        np.testing.assert_allclose(var, exact, rtol=1e-5)
        np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-7)


# ---- races: the smallest chunks, many repeats ----------------------------------------------
@pytest.fixture
def chunksize_one():
    numba.set_parallel_chunksize(1)
    yield
    numba.set_parallel_chunksize(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 7])
def test_lrn_race_stress(chunksize_one, dtype, C):
    # small integers make every window sum exact, so `scale` must equal the reference bit for bit;
    # out and dx go through pow and a division (last-bit differences from NumPy's pow), so they
    # must be identical on every repeat and close to the reference
    rng = np.random.default_rng(C)
    x = rng.integers(-3, 4, (64 // C, C, 33)).astype(dtype)
    g = rng.integers(-3, 4, x.shape).astype(dtype)
    ref_out, ref_scale = KR.lrn_forward(x, 4, 0.25, 0.75, 1.0)
    ref_dx = KR.lrn_backward(x, ref_out, ref_scale, g, 4, 0.25, 0.75, 1.0)
    first_out, _ = KC.lrn_forward(x, 4, 0.25, 0.75, 1.0)
    first_dx = KC.lrn_backward(x, ref_out, ref_scale, g, 4, 0.25, 0.75, 1.0)
    np.testing.assert_allclose(first_out, ref_out, **TOL[dtype])
    np.testing.assert_allclose(first_dx, ref_dx, **TOL[dtype])
    for _ in range(30):
        out, scale = KC.lrn_forward(x, 4, 0.25, 0.75, 1.0)
        assert np.array_equal(scale, ref_scale) and np.array_equal(out, first_out)
        assert np.array_equal(KC.lrn_backward(x, ref_out, ref_scale, g, 4, 0.25, 0.75, 1.0), first_dx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 5])
def test_batch_norm_race_stress(chunksize_one, dtype, C):
    # dyadic values (integers, powers of two, M a power of two): every kernel is exact, so the
    # Numba results must equal the reference bit for bit on every repeat
    rng = np.random.default_rng(C)
    x = rng.integers(-4, 5, (64, C, 16)).astype(dtype)
    g = rng.integers(-4, 5, x.shape).astype(dtype)
    mean = rng.integers(-2, 3, C).astype(dtype)
    invstd = np.full(C, 0.5, dtype)
    weight, bias = np.full(C, 2.0, dtype), np.full(C, -1.0, dtype)
    # every channel: 512 values mean[c] +- 2 in random order, so mean and var = 4 are exact too
    signs = np.stack([rng.permutation(np.repeat([-2.0, 2.0], 512)) for _ in range(C)], axis=1)
    x2 = (mean[None, :, None] + signs.reshape(64, 16, C).transpose(0, 2, 1)).astype(dtype)
    want = [KR.batch_norm_stats(x), KR.batch_norm_forward(x, mean, invstd, weight, bias),
            KR.batch_norm_backward(g, x, mean, invstd, weight),
            KR.batch_norm_backward_eval(g, x, mean, invstd, weight),
            KR.batch_norm_train_forward(x2, weight, bias, 0.0)]
    assert (want[4][2] == 4).all() and (want[4][3] == 0.5).all()
    for _ in range(30):
        got = [KC.batch_norm_stats(x), KC.batch_norm_forward(x, mean, invstd, weight, bias),
               KC.batch_norm_backward(g, x, mean, invstd, weight),
               KC.batch_norm_backward_eval(g, x, mean, invstd, weight),
               KC.batch_norm_train_forward(x2, weight, bias, 0.0)]
        for a, b in zip(got, want):
            for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                assert np.array_equal(u, v)


# ---- NaN in -> NaN out ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_lrn_nan_propagates(dtype):
    x = np.ones((2, 6, 5), dtype)
    x[1, 2, 3] = np.nan
    out, scale = KC.lrn_forward(x, 3, 0.5, 0.75, 2.0)
    # channels 1, 2, 3 have channel 2 in their window
    assert np.isnan(out[1, 1:4, 3]).all() and np.isnan(scale[1, 1:4, 3]).all()
    assert np.isfinite(np.delete(out[1], 3, axis=1)).all() and np.isfinite(out[0]).all()
    dx = KC.lrn_backward(x, out, scale, np.ones_like(x), 3, 0.5, 0.75, 2.0)
    assert np.isnan(dx[1, 2, 3]) and np.isfinite(dx[0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_nan_propagates(dtype):
    x = np.arange(2 * 3 * 4, dtype=dtype).reshape(2, 3, 4)
    x[0, 1, 2] = np.nan
    mean, var = KC.batch_norm_stats(x)
    assert np.isnan(mean[1]) and np.isnan(var[1])
    assert np.isfinite(mean[[0, 2]]).all() and np.isfinite(var[[0, 2]]).all()
    ones, zeros = np.ones(3, dtype), np.zeros(3, dtype)
    y = KC.batch_norm_forward(x, mean, ones, ones, zeros)
    assert np.isnan(y[:, 1]).all() and np.isfinite(y[:, [0, 2]]).all()
    y, m, v, i = KC.batch_norm_train_forward(x, ones, zeros, 1e-5)
    assert np.isnan(y[:, 1]).all() and np.isnan([m[1], v[1], i[1]]).all()
    assert np.isfinite(y[:, [0, 2]]).all() and np.isfinite(i[[0, 2]]).all()
    g = np.ones_like(x)
    dx, dweight, dbias = KC.batch_norm_backward(g, x, mean, ones, ones)
    assert np.isnan(dx[:, 1]).all() and np.isnan(dweight[1])
    assert np.isfinite(dx[:, [0, 2]]).all() and np.isfinite(dweight[[0, 2]]).all()
    # eval: dx = g * invstd * weight does not read x, but dweight = sum(g * xhat) does
    dx, dweight, dbias = KC.batch_norm_backward_eval(g, x, mean, ones, ones)
    assert np.isfinite(dx).all() and np.isnan(dweight[1]) and np.isfinite(dweight[[0, 2]]).all()
    g[1, 0, 1] = np.nan
    assert np.isnan(KC.batch_norm_backward(g, x, mean, ones, ones)[2][0])
