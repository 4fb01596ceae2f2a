"""The Numba kernels (kernels/cpu) against the reference kernels (kernels/reference) for the
activation, loss and dropout families: hypothesis-drawn shapes, float32 and float64.

Kernels whose Numba loop does the same arithmetic in the same order (relu, leaky_relu, maxout,
the cross-entropy and nll backward, mse, dropout) must agree bit for bit; those that call exp,
tanh or log, or sum a row in another order, agree to a few units in the last place. Also: NaN in
gives NaN out, and a race stress test with chunk size 1.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.kernels.cpu import _exp as C_exp
from minicnn.kernels.cpu import activation as C_act
from minicnn.kernels.cpu import dropout as C_drop
from minicnn.kernels.cpu import loss as C_loss
from minicnn.kernels.reference import activation as R_act
from minicnn.kernels.reference import dropout as R_drop
from minicnn.kernels.reference import loss as R_loss

DTYPES = [np.float32, np.float64]
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


def close(dtype):
    """A few units in the last place, for transcendental functions and reordered sums."""
    return dict(rtol=4e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)


def data(rng, shape, dtype, scale=3.0):
    """Random values with some exact zeros mixed in: the kinks must be handled alike."""
    x = rng.standard_normal(shape) * scale
    x[rng.random(shape) < 0.1] = 0.0
    return x.astype(dtype)


def assert_same(new, ref, exact, dtype, magnitude=1.0):
    """`magnitude`: the size of the numbers a result was computed from. log-softmax is x - lse,
    whose rounding error is a few ulp of |lse|, not of the (possibly tiny) difference; the
    probabilities e^(x - lse) inherit that error as a relative one."""
    assert new.dtype == ref.dtype and new.shape == ref.shape
    if exact:
        np.testing.assert_array_equal(new, ref)
    else:
        tol = close(dtype)
        scale = max(1.0, magnitude)
        np.testing.assert_allclose(new, ref, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale)


# ---- activations ---------------------------------------------------------------------------
@numba.njit
def _powers_of_two(js, like):
    out = np.empty(js.size, type(like))
    for i in range(js.size):
        out[i] = C_exp._pow2_neg(js[i], like)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_helper_builds_powers_of_two_exactly(dtype):
    """kernels/cpu/_exp.py puts 2^-j together from its bits: exactly 2^-j for every j the range
    reduction can make, normal, subnormal, and 0 past the smallest subnormal (as NumPy's ldexp)."""
    js = np.arange(1100)
    np.testing.assert_array_equal(_powers_of_two(js, dtype(0)), np.ldexp(dtype(1), -js))


@given(shapes, dtypes, seeds, st.floats(-1, 1), st.floats(0.1, 3))
def test_activation_kernels(shape, dtype, seed, slope, alpha):
    rng = np.random.default_rng(seed)
    x, g = data(rng, shape, dtype), data(rng, shape, dtype)
    cases = [("relu", (), True), ("leaky_relu", (slope,), True), ("elu", (alpha,), False),
             ("sigmoid", (), False), ("tanh", (), False)]
    for name, params, exact in cases:
        fwd_new = getattr(C_act, name + "_forward")(x, *params)
        fwd_ref = getattr(R_act, name + "_forward")(x, *params)
        assert_same(fwd_new, fwd_ref, exact, dtype)
        saved = fwd_ref if name in ("sigmoid", "tanh") else x  # these two differentiate from y
        bwd_new = getattr(C_act, name + "_backward")(saved, g, *params)
        bwd_ref = getattr(R_act, name + "_backward")(saved, g, *params)
        assert_same(bwd_new, bwd_ref, exact, dtype)


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(1, 6), dtypes, seeds,
       st.booleans())
def test_maxout_kernels(N, CO, pieces, S, dtype, seed, ties):
    rng = np.random.default_rng(seed)
    shape = (N, CO * pieces, S)
    # with ties: few distinct values, so the first-winner rule is exercised
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal((N, CO, S)).astype(dtype)
    out_new, arg_new = C_act.maxout_forward(x, pieces)
    out_ref, arg_ref = R_act.maxout_forward(x, pieces)
    assert_same(out_new, out_ref, True, dtype)
    np.testing.assert_array_equal(arg_new, arg_ref)
    assert_same(C_act.maxout_backward(g, arg_ref, pieces), R_act.maxout_backward(g, arg_ref, pieces), True, dtype)


# ---- softmax, log-softmax and the losses ---------------------------------------------------
@given(st.integers(1, 8), st.integers(1, 12), dtypes, seeds, st.sampled_from([1.0, 10.0, 1e3]))
def test_row_kernels(M, C, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    x = data(rng, (M, C), dtype, scale)
    g = data(rng, (M, C), dtype)
    g_rows = data(rng, (M,), dtype)
    target = rng.integers(0, C, M)

    y = R_loss.softmax_forward(x)
    assert_same(C_loss.softmax_forward(x), y, False, dtype)
    assert_same(C_loss.softmax_backward(y, g), R_loss.softmax_backward(y, g), False, dtype)

    ly = R_loss.log_softmax_forward(x)
    lse = float(np.abs(x).max()) + np.log(C)  # bounds |lse| of every row
    assert_same(C_loss.log_softmax_forward(x), ly, False, dtype, lse)
    assert_same(C_loss.log_softmax_backward(ly, g), R_loss.log_softmax_backward(ly, g), False, dtype)

    loss_new, probs_new = C_loss.softmax_cross_entropy_forward(x, target)
    loss_ref, probs_ref = R_loss.softmax_cross_entropy_forward(x, target)
    assert_same(loss_new, loss_ref, False, dtype, lse)
    assert_same(probs_new, probs_ref, False, dtype, lse)
    assert_same(C_loss.softmax_cross_entropy_backward(probs_ref, target, g_rows),
                R_loss.softmax_cross_entropy_backward(probs_ref, target, g_rows), True, dtype)

    assert_same(C_loss.nll_forward(x, target), R_loss.nll_forward(x, target), True, dtype)
    assert_same(C_loss.nll_backward(g_rows, target, C), R_loss.nll_backward(g_rows, target, C), True, dtype)


@given(shapes, dtypes, seeds)
def test_mse_kernels(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b, g = data(rng, shape, dtype), data(rng, shape, dtype), data(rng, shape, dtype)
    assert_same(C_loss.mse_forward(a, b), R_loss.mse_forward(a, b), True, dtype)
    assert_same(C_loss.mse_backward(a, b, g), R_loss.mse_backward(a, b, g), True, dtype)


# ---- dropout -------------------------------------------------------------------------------
@given(shapes, dtypes, seeds, st.floats(0, 0.99))
def test_dropout_kernels(shape, dtype, seed, p):
    rng = np.random.default_rng(seed)
    x, g = data(rng, shape, dtype), data(rng, shape, dtype)
    u = rng.random(shape, dtype=dtype)
    out_new, mask_new = C_drop.dropout_forward(x, u, p)
    out_ref, mask_ref = R_drop.dropout_forward(x, u, p)
    assert_same(out_new, out_ref, True, dtype)
    assert_same(mask_new, mask_ref, True, dtype)
    assert_same(C_drop.dropout_backward(g, mask_ref), R_drop.dropout_backward(g, mask_ref), True, dtype)


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 9), dtypes, seeds, st.floats(0, 0.99))
def test_dropout2d_kernels(N, C, S, dtype, seed, p):
    rng = np.random.default_rng(seed)
    x, g = data(rng, (N, C, S), dtype), data(rng, (N, C, S), dtype)
    u = rng.random((N, C), dtype=dtype)
    out_new, mask_new = C_drop.dropout2d_forward(x, u, p)
    out_ref, mask_ref = R_drop.dropout2d_forward(x, u, p)
    assert_same(out_new, out_ref, True, dtype)
    assert_same(mask_new, mask_ref, True, dtype)
    assert_same(C_drop.dropout2d_backward(g, mask_ref), R_drop.dropout2d_backward(g, mask_ref), True, dtype)


def test_draws_exactly_at_p_are_kept_alike():
    # u == p exactly: kept (u >= p) by both, also in float32 where p is rounded to u's dtype
    for dtype in DTYPES:
        u = np.array([0.25, np.nextafter(dtype(0.25), dtype(0)), 0.75], dtype=dtype)
        x = np.ones(3, dtype)
        out_new, _ = C_drop.dropout_forward(x, u, 0.25)
        out_ref, _ = R_drop.dropout_forward(x, u, 0.25)
        np.testing.assert_array_equal(out_new, out_ref)
        np.testing.assert_array_equal(out_ref, np.array([4 / 3, 0, 4 / 3], dtype=dtype))


# ---- NaN in, NaN out -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates_through_the_numba_kernels(dtype):
    x = np.array([[1.0, np.nan, -2.0, 0.5], [0.0, -1.0, 3.0, 2.0]], dtype=dtype)
    g = np.ones_like(x)
    for name, params in [("relu", ()), ("leaky_relu", (0.1,)), ("elu", (1.0,)), ("sigmoid", ()),
                         ("tanh", ())]:
        y = getattr(C_act, name + "_forward")(x, *params)
        assert np.isnan(y[0, 1]) and np.all(np.isfinite(np.delete(y.ravel(), 1))), name
    # a NaN gradient arriving where the unit is active passes through
    g_nan = np.array([np.nan, 1.0], dtype=dtype)
    assert np.isnan(C_act.relu_backward(np.array([1.0, 1.0], dtype), g_nan)[0])
    assert np.isnan(C_act.sigmoid_backward(np.array([0.5, 0.5], dtype), g_nan)[0])

    out, arg = C_act.maxout_forward(x.reshape(2, 4, 1), 2)   # pairs (1, nan), (-2, 0.5) / ...
    assert np.isnan(out[0, 0, 0]) and arg[0, 0, 0] == 1 and out[0, 1, 0] == 0.5
    out, _ = C_act.maxout_forward(np.array([[[np.nan], [5.0]]], dtype), 2)  # NaN first: still NaN
    assert np.isnan(out[0, 0, 0])

    # a NaN in a row makes that whole row NaN (its normaliser is NaN); other rows are untouched
    for fn in (C_loss.softmax_forward, C_loss.log_softmax_forward):
        y = fn(x)
        assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))
    loss, probs = C_loss.softmax_cross_entropy_forward(x, np.array([0, 2]))
    assert np.isnan(loss[0]) and np.isfinite(loss[1]) and np.all(np.isnan(probs[0]))
    assert np.isnan(C_loss.nll_forward(x, np.array([1, 0]))[0])
    assert np.isnan(C_loss.mse_forward(x, np.zeros_like(x))[0, 1])

    # dropout multiplies: a NaN unit stays NaN even when it is dropped (NaN * 0 = NaN)
    out, _ = C_drop.dropout_forward(x, np.zeros_like(x), 0.5)   # every unit dropped
    assert np.isnan(out[0, 1]) and np.all(np.delete(out.ravel(), 1) == 0)
    out, _ = C_drop.dropout2d_forward(x.reshape(1, 2, 4), np.ones((1, 2), dtype), 0.5)
    assert np.isnan(out[0, 0, 1])


# ---- race stress: every prange iteration must own what it writes ---------------------------
@pytest.fixture
def chunksize_one():
    numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(0)


@pytest.mark.parametrize("N,CO", [(64, 1), (1, 64)])
def test_race_stress(chunksize_one, N, CO):
    rng = np.random.default_rng(0)
    pieces, S = 3, 7
    x = rng.integers(-2, 3, (N, CO * pieces, S)).astype(np.float64)
    g = rng.standard_normal((N, CO, S))
    out_ref, arg_ref = R_act.maxout_forward(x, pieces)
    grad_ref = R_act.maxout_backward(g, arg_ref, pieces)
    probs = R_loss.softmax_forward(rng.standard_normal((N * CO, 1)))  # one class: p = 1
    target = np.zeros(N * CO, dtype=np.int64)
    g_rows = rng.standard_normal(N * CO)
    u = rng.random((N * CO, 1))
    xd = rng.standard_normal((N * CO, 1, S))
    for _ in range(50):
        out, arg = C_act.maxout_forward(x, pieces)
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(arg, arg_ref)
        np.testing.assert_array_equal(C_act.maxout_backward(g, arg_ref, pieces), grad_ref)
        np.testing.assert_array_equal(C_loss.softmax_cross_entropy_backward(probs, target, g_rows),
                                      R_loss.softmax_cross_entropy_backward(probs, target, g_rows))
        np.testing.assert_array_equal(C_loss.nll_backward(g_rows, target, 1),
                                      R_loss.nll_backward(g_rows, target, 1))
        np.testing.assert_array_equal(C_drop.dropout2d_forward(xd, u, 0.5)[0],
                                      R_drop.dropout2d_forward(xd, u, 0.5)[0])
