"""softmax, log_softmax, cross_entropy, nll_loss, mse_loss.

Forward against naive loops written here, gradients by mc.gradcheck at float64 over shapes,
axes, reductions and target layouts, properties (hypothesis), a deliberately broken softmax
backward that gradcheck catches and a plain-sum check would not, stability at +-1e4, error
messages, and the whole ops under the Numba kernels against the reference kernels.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F

KERNELS = ["reference", "numba"]
REDUCTIONS = ["mean", "sum", "none"]


def t64(a, requires_grad=False):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, dtype=np.float64)


# ---- naive oracles -------------------------------------------------------------------------
def naive_softmax(x, axis):
    axis = axis % x.ndim
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        row = [x[idx[:axis] + (k,) + idx[axis + 1:]] for k in range(x.shape[axis])]
        total = sum(math.exp(v) for v in row)
        out[idx] = math.exp(x[idx]) / total
    return out


def naive_log_softmax(x, axis):
    axis = axis % x.ndim
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        row = [x[idx[:axis] + (k,) + idx[axis + 1:]] for k in range(x.shape[axis])]
        out[idx] = x[idx] - math.log(sum(math.exp(v) for v in row))
    return out


def naive_cross_entropy(logits, target, reduction):
    """logits (N, C, d...) and target (N, d...): -x[t] + log(sum_k exp(x[k])) per position."""
    losses = np.empty(target.shape)
    for idx in np.ndindex(target.shape):
        n, rest = idx[0], idx[1:]
        row = [logits[(n, k) + rest] for k in range(logits.shape[1])]
        losses[idx] = -row[target[idx]] + math.log(sum(math.exp(v) for v in row))
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


def naive_nll(log_probs, target, reduction):
    losses = np.empty(target.shape)
    for idx in np.ndindex(target.shape):
        losses[idx] = -log_probs[(idx[0], target[idx]) + idx[1:]]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


def naive_mse(a, b, reduction):
    sq = np.empty(a.shape)
    for idx in np.ndindex(a.shape):
        sq[idx] = (a[idx] - b[idx]) ** 2
    return {"none": sq, "sum": sq.sum(), "mean": sq.mean()}[reduction]


SOFTMAX_CASES = [((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 2, 2), 1),
                 ((2, 3, 2, 2), -2), ((6,), 0)]


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_and_log_softmax_match_naive_loops(rng, kernels, shape, axis):
    x = rng.standard_normal(shape) * 3
    with mc.use_kernels(kernels):
        np.testing.assert_allclose(F.softmax(t64(x), axis=axis).numpy(), naive_softmax(x, axis), rtol=1e-12)
        np.testing.assert_allclose(F.log_softmax(t64(x), axis=axis).numpy(), naive_log_softmax(x, axis),
                                   rtol=1e-12, atol=1e-14)


def test_softmax_default_axis_is_last(rng):
    x = rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(F.softmax(t64(x)).numpy(), naive_softmax(x, -1), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(t64(x)).numpy(), naive_log_softmax(x, -1), rtol=1e-12)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (2, 3, 2, 3)])
def test_class_losses_match_naive_loops(rng, kernels, reduction, shape):
    x = rng.standard_normal(shape) * 2
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    with mc.use_kernels(kernels):
        ce = F.cross_entropy(t64(x), target, reduction=reduction).numpy()
        nll = F.nll_loss(t64(x), target, reduction=reduction).numpy()
    expected_shape = target.shape if reduction == "none" else ()
    assert ce.shape == expected_shape and nll.shape == expected_shape
    np.testing.assert_allclose(ce, naive_cross_entropy(x, target, reduction), rtol=1e-12)
    np.testing.assert_allclose(nll, naive_nll(x, target, reduction), rtol=1e-12)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_naive_loop(rng, kernels, reduction):
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    with mc.use_kernels(kernels):
        out = F.mse_loss(t64(a), t64(b), reduction=reduction).numpy()
    assert out.shape == ((3, 4, 2) if reduction == "none" else ())
    np.testing.assert_allclose(out, naive_mse(a, b, reduction), rtol=1e-13)


def test_unbatched_cross_entropy_as_pytorch(rng):
    x = rng.standard_normal(5)
    out = F.cross_entropy(t64(x), np.array(3))
    assert out.shape == ()
    np.testing.assert_allclose(out.item(), -x[3] + math.log(np.exp(x).sum()), rtol=1e-12)
    assert mc.gradcheck(lambda t: F.cross_entropy(t, np.array(3)), [t64(x, True)])
    assert mc.gradcheck(lambda t: F.nll_loss(t, np.array(1), reduction="sum"), [t64(x, True)])


def test_targets_may_be_tensor_or_integer_array(rng):
    x = rng.standard_normal((4, 3))
    target = np.array([0, 2, 1, 2])
    a = F.cross_entropy(t64(x), target).item()
    b = F.cross_entropy(t64(x), mc.Tensor(target)).item()
    c = F.cross_entropy(t64(x), target.astype(np.int32)).item()
    d = F.cross_entropy(t64(x), target.astype(np.uint8)).item()
    assert a == b == c == d


# ---- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_gradcheck(rng, shape, axis):
    x = t64(rng.standard_normal(shape) * 2, requires_grad=True)
    assert mc.gradcheck(lambda t: F.softmax(t, axis=axis), [x])
    assert mc.gradcheck(lambda t: F.log_softmax(t, axis=axis), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (2, 3, 2, 3), (1, 2)])
def test_class_losses_gradcheck(rng, reduction, shape):
    x = t64(rng.standard_normal(shape) * 2, requires_grad=True)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    assert mc.gradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction), [x])
    assert mc.gradcheck(lambda t: F.nll_loss(t, target, reduction=reduction), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 2, 2)])
def test_mse_gradcheck_both_inputs(rng, reduction, shape):
    a = t64(rng.standard_normal(shape), requires_grad=True)
    b = t64(rng.standard_normal(shape), requires_grad=True)
    assert mc.gradcheck(lambda u, v: F.mse_loss(u, v, reduction=reduction), [a, b])


def test_mse_target_without_grad_gets_none_and_array_target_works(rng):
    a = t64(rng.standard_normal((3, 2)), requires_grad=True)
    b = t64(rng.standard_normal((3, 2)))
    F.mse_loss(a, b).backward()
    assert b.grad is None
    np.testing.assert_allclose(a.grad, 2 * (a.numpy() - b.numpy()) / 6, rtol=1e-14)
    assert F.mse_loss(a, b.numpy()).item() == F.mse_loss(a, b).item()


# ---- properties ----------------------------------------------------------------------------
softmax_inputs = st.tuples(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),  # shape
    st.integers(0, 2),                                     # axis (taken modulo the rank)
    st.floats(-50, 50),                                    # shift
    st.integers(0, 2**31 - 1),                             # seed
    st.sampled_from(KERNELS))


@given(softmax_inputs)
def test_softmax_rows_sum_to_one_and_are_shift_invariant(args):
    shape, axis, shift, seed, kernels = args
    axis = axis % len(shape)
    x = np.random.default_rng(seed).standard_normal(shape) * 5
    with mc.use_kernels(kernels):
        y = F.softmax(t64(x), axis=axis).numpy()
        y_shifted = F.softmax(t64(x + shift), axis=axis).numpy()
        logy = F.log_softmax(t64(x), axis=axis).numpy()
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)
    assert np.all(y >= 0)
    np.testing.assert_allclose(y_shifted, y, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(logy, np.log(y), rtol=1e-10, atol=1e-12)


@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**31 - 1), st.sampled_from(REDUCTIONS),
       st.sampled_from(KERNELS))
def test_cross_entropy_equals_nll_of_log_softmax(N, C, seed, reduction, kernels):
    rng = np.random.default_rng(seed)
    x0, target = rng.standard_normal((N, C)) * 3, rng.integers(0, C, N)
    g = rng.standard_normal(target.shape if reduction == "none" else ())
    with mc.use_kernels(kernels):
        a, b = t64(x0, True), t64(x0, True)
        ce = F.cross_entropy(a, target, reduction=reduction)
        nll = F.nll_loss(F.log_softmax(b, axis=1), target, reduction=reduction)
        ce.backward(g)
        nll.backward(g)
    np.testing.assert_allclose(ce.numpy(), nll.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-13)


# ---- a broken backward that only a weighted check can see ----------------------------------
class BrokenSoftmax(mc.Function):
    """Right forward, backward returning zeros: the classic bug gradcheck must catch."""

    @staticmethod
    def forward(ctx, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        return np.zeros_like(g)


def plain_sum_check(fn, x, eps=1e-6):
    """The WRONG way: compare gradients of sum(fn(x)) (what DESIGN.md warns against)."""
    x = t64(x, requires_grad=True)
    fn(x).sum().backward()
    numeric = np.zeros(x.shape)
    flat = x.data.reshape(-1)
    for j in range(flat.size):
        orig = flat[j]
        flat[j] = orig + eps
        plus = fn(x).numpy().sum()
        flat[j] = orig - eps
        minus = fn(x).numpy().sum()
        flat[j] = orig
        numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
    return np.allclose(x.grad, numeric, atol=1e-5, rtol=1e-3)


def test_gradcheck_catches_a_softmax_backward_returning_zeros(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(mc.GradcheckError, match="input 0"):
        mc.gradcheck(BrokenSoftmax.apply, [t64(x, requires_grad=True)])
    # a plain sum would let the same bug through: every softmax row sums to 1, so d(sum)/dx = 0
    assert plain_sum_check(BrokenSoftmax.apply, x)
    # ...while the real softmax passes both
    assert mc.gradcheck(lambda t: F.softmax(t), [t64(x, requires_grad=True)])
    assert plain_sum_check(F.softmax, x)


# ---- stability -----------------------------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_large_logits(kernels, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4], [-1e4, 0.0, 1e4]])
    target = np.array([0, 1, 2, 0])
    with warnings.catch_warnings(), np.errstate(all="raise"), mc.use_kernels(kernels):
        warnings.simplefilter("error")
        x = mc.Tensor(logits, requires_grad=True, dtype=dtype)
        loss = F.cross_entropy(x, target, reduction="none")
        loss.sum().backward()
        y = F.softmax(x, axis=1)
        ly = F.log_softmax(x, axis=1)
        (y * 1.0).sum().backward()
        (ly * 1.0).sum().backward()
    assert np.all(np.isfinite(loss.numpy())) and np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(loss.numpy(), [0.0, 2e4, 2e4 + math.log(2), 2e4], rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), [[1, 0, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 0, 1]], atol=1e-7)
    assert np.all(np.isfinite(ly.numpy()))
    assert loss.dtype == dtype and x.grad.dtype == dtype


# ---- dtypes and the numba kernels against the reference -------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(rng, kernels, dtype):
    x = mc.Tensor(rng.standard_normal((4, 3, 2)), requires_grad=True, dtype=dtype)
    target = rng.integers(0, 3, (4, 2))
    with mc.use_kernels(kernels):
        for out in [F.softmax(x, axis=1), F.log_softmax(x, axis=0), F.cross_entropy(x, target),
                    F.nll_loss(x, target, reduction="sum"), F.mse_loss(x, np.zeros((4, 3, 2)))]:
            x.grad = None
            assert out.dtype == dtype
            out.backward(np.ones(out.shape, dtype))
            assert x.grad.dtype == dtype


OPS = {
    "softmax": lambda x, t: F.softmax(x, axis=1),
    "log_softmax": lambda x, t: F.log_softmax(x, axis=-1),
    "cross_entropy": lambda x, t: F.cross_entropy(x, t, reduction="none"),
    "cross_entropy_mean": lambda x, t: F.cross_entropy(x, t),
    "nll_loss": lambda x, t: F.nll_loss(x, t, reduction="sum"),
    "mse_loss": lambda x, t: F.mse_loss(x, mc.Tensor(np.cos(x.numpy()), dtype=x.dtype), reduction="none"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("serial_below", [0, 1 << 30])   # the parallel kernels, their serial twins
def test_numba_op_equals_reference_op(rng, monkeypatch, dtype, name, serial_below):
    monkeypatch.setattr("minicnn.kernels.cpu._jit.SERIAL_BELOW", serial_below)
    x0 = rng.standard_normal((5, 7, 3)) * 3
    target = rng.integers(0, 7, (5, 3))
    results = {}
    for kernels in KERNELS:
        x = mc.Tensor(x0, requires_grad=True, dtype=dtype)
        with mc.use_kernels(kernels):
            out = OPS[name](x, target)
            out.backward(np.random.default_rng(0).standard_normal(out.shape).astype(dtype))
        results[kernels] = out.numpy(), x.grad
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for ref, new in zip(results["reference"], results["numba"]):
        np.testing.assert_allclose(new, ref, **tol)


# ---- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_class_loss_errors(fn):
    name = fn.__name__
    x = mc.Tensor(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=rf"{name}: expected integer class targets, got dtype float64"):
        fn(x, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(TypeError, match=rf"{name}: expected integer class targets, got dtype float32"):
        fn(x, mc.Tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=rf"{name}: target value 3 is out of range for C=3 classes"):
        fn(x, np.array([0, 3, 1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: target value -1 is out of range for C=3 classes"):
        fn(x, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: target shape \(5,\) does not match the input: input of "
                                         r"shape \(4, 3\) needs targets of shape \(4,\)"):
        fn(x, np.array([0, 1, 1, 2, 0]))
    with pytest.raises(ValueError, match=rf"{name}: target shape \(4, 1\) does not match"):
        fn(x, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, C\) or \(N, C, d1, ...\), "
                                         r"got a 0-dimensional"):
        fn(mc.Tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, C\) or \(N, C, d1, ...\)"):
        fn(mc.Tensor(np.zeros(4)), np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=rf"{name}: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        fn(x, np.array([0, 1, 1, 2]), reduction="avg")


def test_mse_errors():
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(4, 1\) and target shape \(4,\) must match"):
        F.mse_loss(mc.Tensor(np.zeros((4, 1))), mc.Tensor(np.zeros(4)))
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        F.mse_loss(mc.Tensor(np.zeros(4)), mc.Tensor(np.zeros(4)), reduction="max")


def test_softmax_errors():
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for a tensor with 2 dimensions"):
        F.softmax(mc.Tensor(np.zeros((2, 3))), axis=2)
    with pytest.raises(ValueError, match=r"log_softmax: axis -3 is out of range for a tensor with 2 dimensions"):
        F.log_softmax(mc.Tensor(np.zeros((2, 3))), axis=-3)
    with pytest.raises(TypeError, match=r"softmax: expected a floating-point input, got dtype int64"):
        F.softmax(mc.Tensor(np.arange(3)))
