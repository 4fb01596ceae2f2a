"""dropout and dropout2d: inverted dropout with masks from the global seeded generator.

Eval and p=0 are the identity; kept units are x / (1 - p); the mean is preserved in
expectation; dropout2d zeroes whole channels; one seed gives one mask; gradients by gradcheck
(which replays the generator's state, so every call sees the same mask); a naive-loop oracle
built from the same uniform draws; errors; Numba kernels against the reference.
"""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F

KERNELS = ["reference", "numba"]


def naive_dropout(x, u, p):
    """Unit by unit: dropped when its draw u < p, otherwise scaled by 1 / (1 - p)."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = 0.0 if u[idx] < p else x[idx] / (1 - p)
    return out


def naive_dropout2d(x, u, p):
    """Plane by plane: channel (n, c) dropped when u[n, c] < p."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        n, c = idx[:2]
        out[idx] = 0.0 if u[n, c] < p else x[idx] / (1 - p)
    return out


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_matches_naive_loop_on_the_same_draws(rng, kernels, p):
    x = rng.standard_normal((3, 4, 5))
    mc.manual_seed(7)
    u = mc.get_rng().random(x.shape)  # the op draws exactly this from the same state
    mc.manual_seed(7)
    with mc.use_kernels(kernels):
        out = F.dropout(mc.Tensor(x, dtype=np.float64), p=p).numpy()
    np.testing.assert_allclose(out, naive_dropout(x, u, p), rtol=1e-15)


@pytest.mark.parametrize("kernels", KERNELS)
def test_dropout2d_matches_naive_loop_on_the_same_draws(rng, kernels):
    x = rng.standard_normal((3, 6, 4, 5))
    mc.manual_seed(11)
    u = mc.get_rng().random(x.shape[:2])
    mc.manual_seed(11)
    with mc.use_kernels(kernels):
        out = F.dropout2d(mc.Tensor(x, dtype=np.float64), p=0.4).numpy()
    np.testing.assert_allclose(out, naive_dropout2d(x, u, 0.4), rtol=1e-15)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_eval_and_p_zero_are_the_identity(rng, kernels, fn):
    x = mc.Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    with mc.use_kernels(kernels):
        for out in (fn(x, p=0.5, training=False), fn(x, p=0.0), fn(x, p=0.0, training=False)):
            np.testing.assert_array_equal(out.numpy(), x.numpy())
            assert out.dtype == x.dtype


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_kept_units_are_scaled_and_the_rest_are_zero(rng, kernels, dtype, p):
    x = mc.Tensor(rng.uniform(0.5, 2.0, (50, 40)), dtype=dtype)  # no zeros: a zero means dropped
    with mc.use_kernels(kernels):
        out = F.dropout(x, p=p).numpy()
    kept = out != 0
    assert 0 < kept.sum() < out.size
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(out[kept], x.numpy()[kept] / (1 - p), rtol=tol)
    assert out.dtype == dtype


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("p", [0.3, 0.7])
def test_mean_is_preserved_in_expectation(kernels, p):
    # out = x * keep / (1 - p) with keep ~ Bernoulli(1 - p): E[out] = x. For x = 1 the mean of n
    # outputs has standard deviation sqrt(p / (1 - p) / n) <= 1.6e-3 for n = 10**6, p <= 0.7;
    # the bound 1e-2 is more than 6 standard deviations, and the dropped fraction is checked too.
    n = 10**6
    mc.manual_seed(2024)
    with mc.use_kernels(kernels):
        out = F.dropout(mc.ones(n), p=p).numpy()
    assert abs(out.mean(dtype=np.float64) - 1.0) < 1e-2
    assert abs((out == 0).mean() - p) < 5e-3  # std sqrt(p (1-p) / n) <= 5e-4


@pytest.mark.parametrize("kernels", KERNELS)
def test_dropout2d_zeroes_whole_channels(rng, kernels):
    x = mc.Tensor(rng.uniform(0.5, 2.0, (8, 16, 5, 5)))
    with mc.use_kernels(kernels):
        out = F.dropout2d(x, p=0.5).numpy()
    planes = out.reshape(8, 16, -1)
    zero_planes = np.all(planes == 0, axis=2)
    full_planes = np.all(planes != 0, axis=2)
    assert np.all(zero_planes | full_planes)                   # never a partly dropped channel
    assert 0 < zero_planes.sum() < zero_planes.size
    np.testing.assert_allclose(out[full_planes], (x.numpy() * 2)[full_planes], rtol=1e-6)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_same_seed_same_mask(rng, kernels, fn):
    x = mc.Tensor(rng.uniform(0.5, 2.0, (4, 8, 3, 3)))
    with mc.use_kernels(kernels):
        mc.manual_seed(3)
        a = fn(x, p=0.5).numpy()
        b = fn(x, p=0.5).numpy()
        mc.manual_seed(3)
        c = fn(x, p=0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # the generator moves on between calls


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_backward_uses_the_forward_mask(rng, kernels, fn):
    x = mc.Tensor(rng.uniform(0.5, 2.0, (3, 4, 2, 2)), requires_grad=True, dtype=np.float64)
    g = rng.standard_normal(x.shape)
    with mc.use_kernels(kernels):
        out = fn(x, p=0.6)
        out.backward(g)
    mask = out.numpy() / x.numpy()  # 0 or 1 / (1 - p), per unit
    np.testing.assert_allclose(x.grad, g * mask, rtol=1e-14)


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
@pytest.mark.parametrize("p", [0.25, 0.5])
def test_gradcheck(rng, fn, p):
    mc.manual_seed(5)
    x = mc.Tensor(rng.standard_normal((2, 4, 3, 3)), requires_grad=True, dtype=np.float64)
    assert mc.gradcheck(lambda t: fn(t, p=p), [x])


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_p_one_drops_everything(fn):
    """As PyTorch: p=1 gives zeros (x * 0, so a NaN stays NaN) and a zero gradient."""
    x0 = np.arange(24.0).reshape(2, 3, 2, 2)
    x0[0, 0, 0, 0] = np.nan
    x = mc.Tensor(x0, requires_grad=True, dtype=np.float64)
    out = fn(x, p=1.0)
    assert np.isnan(out.data[0, 0, 0, 0])
    np.testing.assert_array_equal(out.data.reshape(-1)[1:], 0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    np.testing.assert_array_equal(fn(x, p=1.0, training=False).data, x0)   # eval: the identity


def test_errors():
    x = mc.Tensor(np.zeros((2, 3, 4, 4)))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\].*got p={bad}"):
            F.dropout(x, p=bad)
        with pytest.raises(ValueError, match=rf"dropout2d: p must be in \[0, 1\].*got p={bad}"):
            F.dropout2d(x, p=bad)
        with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
            F.dropout(x, p=bad, training=False)  # checked in eval mode too, as PyTorch does
    with pytest.raises(TypeError, match=r"dropout: p must be a number"):
        F.dropout(x, p="0.5")
    with pytest.raises(ValueError, match=r"dropout2d: expected input of shape \(N, C, H, W\), got \(3, 4, 4\)"):
        F.dropout2d(mc.Tensor(np.zeros((3, 4, 4))), p=0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_numba_op_equals_reference_op(rng, dtype, fn):
    x0 = rng.standard_normal((4, 6, 5, 5))
    g = rng.standard_normal(x0.shape).astype(dtype)
    results = {}
    for kernels in KERNELS:
        mc.manual_seed(99)
        x = mc.Tensor(x0, requires_grad=True, dtype=dtype)
        with mc.use_kernels(kernels):
            out = fn(x, p=0.3)
            out.backward(g)
        results[kernels] = out.numpy(), x.grad
    for ref, new in zip(results["reference"], results["numba"]):
        np.testing.assert_array_equal(new, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 4, 5), (4, 6)])
def test_numba_dropout_mask_equals_reference(rng, dtype, shape):
    from minicnn.kernels.cpu import dropout as C
    from minicnn.kernels.reference import dropout as R
    for u in (rng.random(shape), rng.random(shape).astype(np.float32)):
        for p in (0.0, 0.3, 0.9):
            new, ref = C.dropout_mask(u, p, dtype), R.dropout_mask(u, p, dtype)
            assert new.dtype == ref.dtype and new.shape == ref.shape
            np.testing.assert_array_equal(new, ref)
