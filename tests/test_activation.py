"""Activations: relu, leaky_relu, elu, sigmoid, tanh, maxout.

Forward against naive loops written here, gradients by mc.gradcheck (float64, tie-free inputs
away from the kinks), PyTorch's conventions at the kink x = 0, stability at +-1e4, dtypes,
error messages, and the whole ops under the Numba kernels against the reference kernels.
"""
import math
import warnings

import numpy as np
import pytest
from conftest import tie_free

import minicnn as mc
import minicnn.functional as F

KERNELS = ["reference", "numba"]
SHAPES = [(7,), (3, 5), (2, 3, 4, 4)]


# ---- naive oracles: one element at a time, straight from the definitions -------------------
def naive_elementwise(fn, x):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = fn(float(x[idx]))
    return out


ORACLES = {
    "relu": lambda v: v if v > 0 else 0.0,
    "leaky_relu": lambda v: v if v > 0 else 0.01 * v,
    "elu": lambda v: v if v > 0 else 1.0 * (math.exp(v) - 1),
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "tanh": math.tanh,
}

OPS = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
}


def naive_maxout(x, pieces):
    N, C = x.shape[:2]
    out = np.empty((N, C // pieces) + x.shape[2:], dtype=x.dtype)
    for idx in np.ndindex(out.shape):
        n, c, rest = idx[0], idx[1], idx[2:]
        out[idx] = max(x[(n, c * pieces + k) + rest] for k in range(pieces))
    return out


# ---- forward against the oracles -----------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_naive_loop(rng, kernels, name, shape):
    x = rng.standard_normal(shape) * 3
    with mc.use_kernels(kernels):
        out = OPS[name](mc.Tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(out, naive_elementwise(ORACLES[name], x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kernels", KERNELS)
def test_parameters_are_used(rng, kernels):
    x = rng.standard_normal((4, 6)) * 3
    t = mc.Tensor(x, dtype=np.float64)
    with mc.use_kernels(kernels):
        leaky = F.leaky_relu(t, negative_slope=0.3).numpy()
        elu = F.elu(t, alpha=2.5).numpy()
    np.testing.assert_allclose(leaky, naive_elementwise(lambda v: v if v > 0 else 0.3 * v, x), rtol=1e-14)
    np.testing.assert_allclose(elu, naive_elementwise(lambda v: v if v > 0 else 2.5 * (math.exp(v) - 1), x),
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape,pieces", [((4, 6), 2), ((4, 6), 3), ((2, 6, 3, 5), 3), ((2, 4, 2, 2), 4),
                                          ((3, 5), 1)])
def test_maxout_matches_naive_loop(rng, kernels, shape, pieces):
    x = rng.standard_normal(shape)
    with mc.use_kernels(kernels):
        out = F.maxout(mc.Tensor(x, dtype=np.float64), pieces).numpy()
    assert out.shape == (shape[0], shape[1] // pieces) + shape[2:]
    np.testing.assert_array_equal(out, naive_maxout(x, pieces))


# ---- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck(rng, name, shape):
    x = mc.Tensor(tie_free(rng, shape, -3, 3), requires_grad=True, dtype=np.float64)
    assert mc.gradcheck(OPS[name], [x])


@pytest.mark.parametrize("slope,alpha", [(0.2, 0.5), (-0.4, 2.0)])
def test_gradcheck_with_parameters(rng, slope, alpha):
    x = mc.Tensor(tie_free(rng, (3, 4, 2), -3, 3), requires_grad=True, dtype=np.float64)
    assert mc.gradcheck(lambda t: F.leaky_relu(t, negative_slope=slope), [x])
    assert mc.gradcheck(lambda t: F.elu(t, alpha=alpha), [x])


@pytest.mark.parametrize("shape,pieces", [((4, 6), 2), ((2, 6, 3, 3), 3), ((2, 8, 2, 3), 4)])
def test_maxout_gradcheck(rng, shape, pieces):
    x = mc.Tensor(tie_free(rng, shape), requires_grad=True, dtype=np.float64)
    assert mc.gradcheck(lambda t: F.maxout(t, pieces), [x])


@pytest.mark.parametrize("kernels", KERNELS)
def test_maxout_gradient_goes_to_the_first_winner_on_a_tie(kernels):
    x = mc.Tensor([[1.0, 3.0, 3.0, -1.0]], requires_grad=True, dtype=np.float64)
    with mc.use_kernels(kernels):
        out = F.maxout(x, 4)
        out.backward(np.array([[5.0]]))
    assert out.numpy().tolist() == [[3.0]]
    assert x.grad.tolist() == [[0.0, 5.0, 0.0, 0.0]]


@pytest.mark.parametrize("kernels", KERNELS)
def test_gradients_at_the_kink_follow_pytorch(kernels):
    # PyTorch: relu'(0) = 0; leaky_relu'(0) = negative_slope; elu'(0) = alpha (x > 0 is linear)
    def grad_at_zero(fn):
        x = mc.Tensor([0.0], requires_grad=True, dtype=np.float64)
        fn(x).backward(np.array([1.0]))
        return x.grad[0]

    with mc.use_kernels(kernels):
        assert grad_at_zero(F.relu) == 0.0
        assert grad_at_zero(lambda t: F.leaky_relu(t, 0.25)) == 0.25
        assert grad_at_zero(lambda t: F.elu(t, 1.5)) == 1.5
        assert grad_at_zero(F.sigmoid) == 0.25
        assert grad_at_zero(F.tanh) == 1.0


@pytest.mark.parametrize("kernels", KERNELS)
def test_backward_formulas_on_known_values(kernels):
    x = mc.Tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True, dtype=np.float64)
    g = np.array([1.0, 2.0, 3.0, 4.0])
    with mc.use_kernels(kernels):
        F.relu(x).backward(g)
        np.testing.assert_array_equal(x.grad, [0, 0, 3, 4])
        x.grad = None
        F.leaky_relu(x, 0.1).backward(g)
        np.testing.assert_allclose(x.grad, [0.1, 0.2, 3, 4], rtol=1e-15)
        x.grad = None
        F.elu(x, 2.0).backward(g)
        np.testing.assert_allclose(x.grad, [2 * math.exp(-2), 4 * math.exp(-0.5), 3, 4], rtol=1e-14)
        x.grad = None
        F.sigmoid(x).backward(g)
        s = 1 / (1 + np.exp(-x.numpy()))
        np.testing.assert_allclose(x.grad, g * s * (1 - s), rtol=1e-14)
        x.grad = None
        F.tanh(x).backward(g)
        np.testing.assert_allclose(x.grad, g * (1 - np.tanh(x.numpy()) ** 2), rtol=1e-14)


# ---- stability, dtypes, layouts ------------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_large_magnitudes(kernels, dtype):
    x = mc.Tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True, dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"), mc.use_kernels(kernels):
        warnings.simplefilter("error")
        s = F.sigmoid(x)
        s.backward(np.ones(5, dtype))
        assert np.all(np.isfinite(x.grad))
        np.testing.assert_allclose(s.numpy()[[0, 2, 4]], [0.0, 0.5, 1.0])
        assert x.grad[0] == 0 and x.grad[4] == 0
        x.grad = None
        e = F.elu(x)
        e.backward(np.ones(5, dtype))
        assert e.numpy()[0] == -1.0 and e.numpy()[4] == 1e4
        assert np.all(np.isfinite(x.grad))
        t = F.tanh(x).numpy()
        assert t[0] == -1.0 and t[4] == 1.0


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [F.relu, F.leaky_relu, F.elu, F.sigmoid, F.tanh, lambda t: F.maxout(t, 2)])
def test_dtype_is_kept(rng, kernels, dtype, op):
    x = mc.Tensor(rng.standard_normal((2, 4, 3, 3)), requires_grad=True, dtype=dtype)
    with mc.use_kernels(kernels):
        out = op(x)
        out.backward(np.ones(out.shape, dtype))
    assert out.dtype == dtype and x.grad.dtype == dtype


@pytest.mark.parametrize("kernels", KERNELS)
def test_non_contiguous_input(rng, kernels):
    base = rng.standard_normal((4, 6, 3, 3))
    x = mc.Tensor(base.transpose(1, 0, 3, 2), requires_grad=True, dtype=np.float64)
    with mc.use_kernels(kernels):
        out = F.elu(x)
        out.backward(np.ones(out.shape))
        np.testing.assert_allclose(out.numpy(), naive_elementwise(ORACLES["elu"], x.numpy()), rtol=1e-13,
                                   atol=1e-15)
        np.testing.assert_array_equal(F.maxout(x, 2).numpy(), naive_maxout(x.numpy(), 2))
    assert x.grad.shape == x.shape


# ---- Numba kernels against the reference, whole ops ----------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [F.relu, lambda t: F.leaky_relu(t, 0.2), lambda t: F.elu(t, 0.7), F.sigmoid,
                                F.tanh, lambda t: F.maxout(t, 3)])
@pytest.mark.parametrize("serial_below", [0, 1 << 30])   # the parallel kernels, their serial twins
def test_numba_op_equals_reference_op(rng, monkeypatch, dtype, op, serial_below):
    monkeypatch.setattr("minicnn.kernels.cpu._jit.SERIAL_BELOW", serial_below)
    x0 = rng.standard_normal((3, 6, 5, 4)) * 2
    g = rng.standard_normal((3, 6, 5, 4))
    results = {}
    for kernels in KERNELS:
        x = mc.Tensor(x0, requires_grad=True, dtype=dtype)
        with mc.use_kernels(kernels):
            out = op(x)
            out.backward(g[:, :out.shape[1]].astype(dtype))
        results[kernels] = out.numpy(), x.grad
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    for ref, new in zip(results["reference"], results["numba"]):
        np.testing.assert_allclose(new, ref, **tol)


# ---- errors --------------------------------------------------------------------------------
def test_maxout_errors():
    x = mc.Tensor(np.zeros((2, 6, 3, 3)))
    with pytest.raises(ValueError, match=r"maxout: the number of channels C=6 is not divisible by pieces=4"):
        F.maxout(x, 4)
    with pytest.raises(ValueError, match=r"maxout: pieces must be at least 1, got 0"):
        F.maxout(x, 0)
    with pytest.raises(ValueError, match=r"maxout: pieces must be at least 1, got -2"):
        F.maxout(x, -2)
    with pytest.raises(TypeError, match=r"maxout: pieces must be an integer, got 2.5"):
        F.maxout(x, 2.5)
    with pytest.raises(ValueError, match=r"maxout: expected input of shape \(N, C\) or \(N, C, H, W\), "
                                         r"got \(6, 3, 3\)"):
        F.maxout(mc.Tensor(np.zeros((6, 3, 3))), 2)


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match=r"relu: expected a floating-point tensor, got dtype int64"):
        F.relu(mc.Tensor(np.arange(4, dtype=np.int64)))
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number"):
        F.leaky_relu(mc.Tensor(np.zeros(3)), negative_slope="0.1")
