"""F.local_response_norm and F.batch_norm: oracles, gradients, conventions, errors.

The oracles below loop over every output with np.ndindex and use nothing from minicnn, so a
mistake in the kernels cannot hide in them.
"""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F


def t64(a, requires_grad=True):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, dtype=np.float64)


# ---- oracles -------------------------------------------------------------------------------
def lrn_oracle(x, size, alpha, beta, k):
    """b_c = a_c / (k + alpha * sum over channels max(0, c - size//2) .. min(C-1, c + (size-1)//2) of a_j^2) ** beta"""
    C = x.shape[1]
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        n, c, rest = idx[0], idx[1], idx[2:]
        total = 0.0
        for j in range(max(0, c - size // 2), min(C - 1, c + (size - 1) // 2) + 1):
            total += float(x[(n, j) + rest]) ** 2
        out[idx] = float(x[idx]) / (k + alpha * total) ** beta
    return out


def channel_values(x, c):
    return [float(x[idx]) for idx in np.ndindex(*x.shape) if idx[1] == c]


def bn_oracle(x, mean, var, weight, bias, eps):
    """y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c] for the channel c of each element"""
    out = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        c = idx[1]
        out[idx] = (float(x[idx]) - mean[c]) / np.sqrt(var[c] + eps) * weight[c] + bias[c]
    return out


def bn_batch_stats(x):
    """Per-channel mean and biased variance over every other axis, one value at a time."""
    means, variances = [], []
    for c in range(x.shape[1]):
        vals = channel_values(x, c)
        m = sum(vals) / len(vals)
        means.append(m)
        variances.append(sum((v - m) ** 2 for v in vals) / len(vals))
    return np.array(means), np.array(variances)


KERNELS = ["reference", "numba"]


# ---- local response normalisation: forward --------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape,size,alpha,beta,k", [
    ((2, 7, 3, 4), 5, 0.5, 0.75, 2.0),
    ((2, 7, 3, 4), 4, 0.5, 0.75, 2.0),    # even size: one channel further down than up
    ((1, 6, 5), 3, 1.0, 0.5, 1.0),        # (N, C, L)
    ((3, 2, 2, 2), 5, 0.5, 0.75, 2.0),    # C smaller than size
    ((4, 9), 7, 0.3, 1.2, 0.5),           # (N, C)
    ((2, 5, 2, 2), 1, 0.5, 0.75, 2.0),    # size 1: each channel alone
    ((2, 96, 2, 2), 5, 1e-4, 0.75, 2.0),  # AlexNet's hyper-parameters
])
def test_lrn_forward_matches_oracle(kernels, shape, size, alpha, beta, k, rng):
    x = rng.standard_normal(shape) * 2
    with mc.use_kernels(kernels):
        out = F.local_response_norm(t64(x, False), size=size, alpha=alpha, beta=beta, k=k)
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), lrn_oracle(x, size, alpha, beta, k), rtol=1e-12, atol=1e-14)


def test_lrn_defaults_are_alexnets(rng):
    x = rng.standard_normal((2, 8, 3, 3)) * 30  # large values so that alpha=1e-4 shows
    out = F.local_response_norm(t64(x, False))
    np.testing.assert_allclose(out.numpy(), lrn_oracle(x, 5, 1e-4, 0.75, 2.0), rtol=1e-12)


def test_lrn_alpha_is_not_divided_by_size(rng):
    # PyTorch divides alpha by size; the paper and this function do not. With a single channel
    # of value a and size 5: s = k + alpha * a^2, not k + alpha / 5 * a^2.
    a = 3.0
    out = F.local_response_norm(t64([[a]], False), size=5, alpha=0.5, beta=1.0, k=2.0)
    assert out.numpy()[0, 0] == pytest.approx(a / (2.0 + 0.5 * a * a), rel=1e-14)
    assert out.numpy()[0, 0] != pytest.approx(a / (2.0 + 0.5 / 5 * a * a), rel=1e-3)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_alpha_zero_is_x_over_k_to_the_beta(kernels, dtype, rng):
    x = rng.standard_normal((2, 6, 4, 4)).astype(dtype)
    with mc.use_kernels(kernels):
        out = F.local_response_norm(mc.Tensor(x, dtype=dtype), size=5, alpha=0.0, beta=0.75, k=3.0)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), x / 3.0 ** 0.75, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("size,j,touched", [
    (5, 3, {1, 2, 3, 4, 5}),  # odd: c - 2 ... c + 2
    (3, 3, {2, 3, 4}),        # odd: c - 1 ... c + 1
    (4, 3, {2, 3, 4, 5}),     # even: window(c) = c - 2 ... c + 1, so j is in it for c = j-1 ... j+2
    (2, 3, {3, 4}),           # even: window(c) = c - 1 ... c
    (5, 0, {0, 1, 2}),        # clipped at the first channel
    (4, 7, {6, 7}),           # clipped at the last channel
])
def test_lrn_window_convention(kernels, size, j, touched):
    # all channels 1 except channel j: exactly the outputs whose window holds j change
    C = 8
    base = np.ones((1, C, 2, 2))
    bumped = base.copy()
    bumped[:, j] = 3.0
    with mc.use_kernels(kernels):
        b0 = F.local_response_norm(t64(base, False), size=size, alpha=0.5).numpy()
        b1 = F.local_response_norm(t64(bumped, False), size=size, alpha=0.5).numpy()
    changed = {c for c in range(C) if not np.array_equal(b0[:, c], b1[:, c])}
    assert changed == touched


# ---- local response normalisation: gradients ------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape,size,beta,k", [
    ((2, 7, 2, 3), 3, 0.75, 2.0),
    ((2, 7, 2, 3), 5, 0.75, 2.0),
    ((2, 7, 2, 3), 4, 0.75, 2.0),   # even size: the reversed window is not the window
    ((2, 6, 3), 2, 1.3, 1.0),       # (N, C, L), even size
    ((2, 3, 2, 2), 5, 0.75, 2.0),   # C smaller than size
    ((3, 5), 4, 0.6, 0.5),          # (N, C)
])
def test_lrn_gradcheck(kernels, shape, size, beta, k, rng):
    x = t64(rng.standard_normal(shape) * 1.5)
    with mc.use_kernels(kernels):
        assert mc.gradcheck(lambda x: F.local_response_norm(x, size=size, alpha=0.5, beta=beta, k=k), [x])


def test_lrn_gradcheck_catches_a_shifted_window(rng):
    # the effect size is visible: the gradient of size=4 is far from that of a centred window
    x = t64(rng.standard_normal((1, 6, 2, 2)) * 1.5)
    fn = lambda x: F.local_response_norm(x, size=4, alpha=0.5)  # noqa: E731
    fn(x).backward(np.ones((1, 6, 2, 2)))
    g4 = x.grad.copy()
    x.grad = None
    F.local_response_norm(x, size=3, alpha=0.5).backward(np.ones((1, 6, 2, 2)))
    assert np.abs(g4 - x.grad).max() > 1e-2


# ---- batch norm: forward, training ----------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 5), (1, 3, 2, 2)])
def test_batch_norm_training_matches_oracle(kernels, shape, rng):
    x = rng.standard_normal(shape) * 3 + 2
    C = shape[1]
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    with mc.use_kernels(kernels):
        y = F.batch_norm(t64(x, False), None, None, t64(w, False), t64(b, False), training=True, eps=1e-3)
    mean, var = bn_batch_stats(x)
    np.testing.assert_allclose(y.numpy(), bn_oracle(x, mean, var, w, b, 1e-3), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape", [(16, 4), (5, 3, 7), (4, 3, 5, 6)])
def test_batch_norm_training_output_has_mean_0_and_biased_var_1(kernels, shape, rng):
    x = rng.standard_normal(shape) * 4 + 7
    with mc.use_kernels(kernels):
        y = F.batch_norm(t64(x, False), None, None, training=True, eps=0.0).numpy()
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, rtol=1e-12)  # np.var is the biased one


def test_batch_norm_normalises_per_channel_not_per_activation(rng):
    # pixel (0, 0) of every image sits 10 higher than the rest: per-channel statistics keep it
    # high after normalising, per-activation statistics (wrong for conv layers) would not
    x = rng.standard_normal((8, 2, 3, 3))
    x[:, :, 0, 0] += 10.0
    y = F.batch_norm(t64(x, False), None, None, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert (y[:, :, 0, 0].mean(axis=0) > 2.0).all()  # a per-activation version gives 0 here
    per_activation = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    assert np.abs(y - per_activation).max() > 1.0


# ---- batch norm: running statistics ---------------------------------------------------------
@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("shape", [(10, 3), (4, 3, 5, 2)])
def test_batch_norm_updates_running_stats_with_unbiased_var(as_tensor, shape, rng):
    x = rng.standard_normal(shape) * 2 + 1
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = rm0.copy(), rv0.copy()
    if as_tensor:
        rm, rv = mc.Tensor(rm, dtype=np.float64), mc.Tensor(rv, dtype=np.float64)
    F.batch_norm(t64(x, False), rm, rv, training=True, momentum=0.3)
    rm = rm.numpy() if as_tensor else rm
    rv = rv.numpy() if as_tensor else rv
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(rm, 0.7 * rm0 + 0.3 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.7 * rv0 + 0.3 * x.var(axis=axes, ddof=1), rtol=1e-12)
    # ddof=1 and ddof=0 really differ here (M is small)
    assert not np.allclose(rv, 0.7 * rv0 + 0.3 * x.var(axis=axes), rtol=1e-6)


def test_batch_norm_updates_the_same_objects_in_place(rng):
    rm, rv = np.zeros(3), np.ones(3)
    rmt, rvt = mc.zeros(3), mc.ones(3)
    ids = id(rm), id(rv), id(rmt.data), id(rvt.data)
    x = mc.Tensor(rng.standard_normal((5, 3)))
    F.batch_norm(x, rm, rv, training=True)
    F.batch_norm(x, rmt, rvt, training=True)
    assert (id(rm), id(rv), id(rmt.data), id(rvt.data)) == ids
    assert np.abs(rm).max() > 0 and np.abs(rmt.numpy()).max() > 0
    np.testing.assert_allclose(rmt.numpy(), rm, rtol=1e-6)


def test_batch_norm_default_momentum_is_0_1(rng):
    x = rng.standard_normal((6, 2))
    rm, rv = np.zeros(2), np.ones(2)
    F.batch_norm(t64(x, False), rm, rv, training=True)
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)


def test_batch_norm_running_stats_keep_their_dtype(rng):
    x = mc.Tensor(rng.standard_normal((6, 2, 3)).astype(np.float32))
    rm, rv = np.zeros(2, np.float64), np.ones(2, np.float64)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    assert y.dtype == np.float32 and rm.dtype == rv.dtype == np.float64
    np.testing.assert_allclose(rm, 0.5 * x.numpy().astype(np.float64).mean(axis=(0, 2)), rtol=1e-6)
    y = F.batch_norm(x, rm, rv, training=False)  # float64 running stats, float32 input
    assert y.dtype == np.float32


def test_batch_norm_momentum_none_is_a_cumulative_average(rng):
    batches = [rng.standard_normal((5, 3)) * (i + 1) + i for i in range(4)]
    rm, rv = np.zeros(3), np.ones(3)
    counter = np.array(0, dtype=np.int64)
    for x in batches:
        F.batch_norm(t64(x, False), rm, rv, training=True, momentum=None, num_batches_tracked=counter)
    assert counter == 4
    np.testing.assert_allclose(rm, np.mean([x.mean(axis=0) for x in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0), rtol=1e-12)
    # the counter may be a Tensor (BatchNorm's buffer); momentum given still counts batches
    count = mc.Tensor(np.array(2, dtype=np.int64))
    F.batch_norm(t64(batches[0], False), rm, rv, training=True, momentum=0.1, num_batches_tracked=count)
    assert count.item() == 3


def test_running_average_factor():
    from minicnn.functional.norm import running_average_factor
    assert running_average_factor(0.1) == 0.1
    assert running_average_factor(0.1, np.array(7)) == 0.1
    assert running_average_factor(None, np.array(4)) == 0.25
    assert running_average_factor(None, mc.Tensor(np.array(1))) == 1.0
    with pytest.raises(ValueError, match="momentum=None .* needs num_batches_tracked"):
        running_average_factor(None, None)


def test_batch_norm_momentum_none_without_counter_raises_before_updating(rng):
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"batch_norm: momentum=None .* needs num_batches_tracked"):
        F.batch_norm(t64(rng.standard_normal((4, 3)), False), rm, rv, training=True, momentum=None)
    assert (rm == 0).all() and (rv == 1).all()


def test_batch_norm_without_running_stats_updates_nothing(rng):
    counter = np.array(5, dtype=np.int64)
    y = F.batch_norm(t64(rng.standard_normal((4, 3)), False), None, None, training=True,
                     num_batches_tracked=counter)
    assert counter == 5 and y.shape == (4, 3)


# ---- batch norm: eval -----------------------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("shape", [(4, 3), (1, 3), (2, 3, 5), (2, 3, 4, 4)])
def test_batch_norm_eval_uses_running_stats(kernels, shape, rng):
    x = rng.standard_normal(shape)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    rm0, rv0 = rm.copy(), rv.copy()
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    with mc.use_kernels(kernels):
        y = F.batch_norm(t64(x, False), rm, rv, t64(w, False), t64(b, False), training=False, eps=1e-2)
    np.testing.assert_allclose(y.numpy(), bn_oracle(x, rm, rv, w, b, 1e-2), rtol=1e-12, atol=1e-13)
    assert (rm == rm0).all() and (rv == rv0).all()  # eval never updates


def test_batch_norm_training_is_the_default_false(rng):
    x = rng.standard_normal((4, 3))
    rm, rv = np.full(3, 5.0), np.full(3, 4.0)
    y = F.batch_norm(t64(x, False), rm, rv)
    np.testing.assert_allclose(y.numpy(), (x - 5.0) / np.sqrt(4.0 + 1e-5), rtol=1e-12)


# ---- batch norm: gradients ------------------------------------------------------------------
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4), (2, 3, 3, 2)])
def test_batch_norm_gradcheck(kernels, training, shape, rng):
    C = shape[1]
    x = t64(rng.standard_normal(shape) * 2 + 1)
    w, b = t64(rng.standard_normal(C)), t64(rng.standard_normal(C))
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    with mc.use_kernels(kernels):
        assert mc.gradcheck(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training),
                            [x, w, b])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_without_affine(training, rng):
    x = t64(rng.standard_normal((4, 2, 3)))
    rm, rv = np.zeros(2), np.ones(2)
    assert mc.gradcheck(lambda x: F.batch_norm(x, rm, rv, training=training), [x])


def test_batch_norm_gradcheck_weight_only_and_two_samples(rng):
    # M = 2 values per channel: the smallest batch that trains, with large gradients through var
    x = t64(rng.standard_normal((2, 3)))
    w = t64(rng.standard_normal(3))
    assert mc.gradcheck(lambda x, w: F.batch_norm(x, None, None, w, None, training=True), [x, w])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_keep_float32(training, rng):
    x = mc.Tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True)
    w = mc.Tensor(np.ones(3, np.float32), requires_grad=True)
    b = mc.Tensor(np.zeros(3, np.float32), requires_grad=True)
    y = F.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), w, b, training=training)
    y.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert y.dtype == x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_lrn_gradient_keeps_float32(rng):
    x = mc.Tensor(rng.standard_normal((2, 6, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.local_response_norm(x, size=3, alpha=0.5)
    y.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert y.dtype == x.grad.dtype == np.float32


# ---- whole ops: numba == reference ----------------------------------------------------------
def _run(kernels, fn, arrays, grad):
    with mc.use_kernels(kernels):
        ts = [mc.Tensor(a, requires_grad=True, dtype=a.dtype) for a in arrays]
        y = fn(*ts)
        y.backward(grad)
        return [y.numpy()] + [t.grad for t in ts]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 9), (3, 10, 7), (2, 12, 5, 6)])
def test_whole_ops_numba_equals_reference(dtype, shape, rng):
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    w, b = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    cases = [
        (lambda x: F.local_response_norm(x, size=5, alpha=0.5), [x]),
        (lambda x: F.local_response_norm(x, size=4, alpha=0.5, beta=1.2, k=1.0), [x]),
        (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b]),
        (lambda x, w, b: F.batch_norm(x, np.full(C, 0.5), np.full(C, 2.0), w, b), [x, w, b]),
    ]
    for fn, arrays in cases:
        ref = _run("reference", fn, arrays, g)
        fast = _run("numba", fn, arrays, g)
        for a, r in zip(fast, ref):
            assert a.dtype == r.dtype == dtype
            np.testing.assert_allclose(a, r, **tol)


# ---- errors ---------------------------------------------------------------------------------
def test_lrn_errors():
    x = mc.zeros(2, 4, 3, 3)
    with pytest.raises(ValueError, match=r"local_response_norm: expected input of shape \(N, C\).*got \(4,\)"):
        F.local_response_norm(mc.zeros(4))
    with pytest.raises(ValueError, match="local_response_norm: expected size to be a positive integer, got 0"):
        F.local_response_norm(x, size=0)
    with pytest.raises(ValueError, match="local_response_norm: expected size to be a positive integer, got 2.5"):
        F.local_response_norm(x, size=2.5)
    with pytest.raises(TypeError, match="local_response_norm: expected a floating-point input, got dtype int64"):
        F.local_response_norm(mc.Tensor(np.ones((2, 3), dtype=np.int64)))


def test_batch_norm_channel_mismatch_errors():
    x = mc.zeros(4, 3, 2, 2)
    three, four = np.zeros(3), np.zeros(4)
    with pytest.raises(ValueError, match=r"batch_norm: expected running_mean of shape \(3,\) .* got \(4,\)"):
        F.batch_norm(x, four, np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: expected running_var of shape \(3,\) .* got \(4,\)"):
        F.batch_norm(x, three, np.ones(4), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected weight of shape \(3,\) .* got \(4,\)"):
        F.batch_norm(x, None, None, mc.ones(4), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected bias of shape \(3,\) .* got \(3, 1\)"):
        F.batch_norm(x, three, np.ones(3), bias=mc.zeros(3, 1))


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_batch_norm_single_value_per_channel_in_training(shape):
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(mc.zeros(*shape), None, None, training=True)
    # eval with one sample is fine
    y = F.batch_norm(mc.zeros(*shape), np.zeros(3), np.ones(3), training=False)
    assert y.shape == shape


def test_batch_norm_other_errors():
    x = mc.zeros(4, 3)
    with pytest.raises(ValueError, match=r"batch_norm: expected input of shape \(N, C\).*got \(3,\)"):
        F.batch_norm(mc.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are required when training=False"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="batch_norm: give both running_mean and running_var, or neither"):
        F.batch_norm(x, np.zeros(3), None, training=True)
    with pytest.raises(TypeError, match="batch_norm: expected a floating-point input, got dtype int64"):
        F.batch_norm(mc.Tensor(np.ones((2, 3), dtype=np.int64)), np.zeros(3), np.ones(3))
    with pytest.raises(TypeError, match="float32 and float64"):
        F.batch_norm(x, np.zeros(3), np.ones(3), mc.Tensor(np.ones(3), dtype=np.float64))


def test_batch_norm_in_place_targets_must_be_arrays(rng):
    x = mc.Tensor(rng.standard_normal((4, 3)))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(TypeError, match="batch_norm: num_batches_tracked must be a numeric array or Tensor.*got int"):
        F.batch_norm(x, rm, rv, training=True, num_batches_tracked=3)
    assert (rm == 0).all() and (rv == 1).all()  # raised before anything was updated
    with pytest.raises(TypeError, match="batch_norm: running statistics must be numpy arrays or Tensors"):
        F.batch_norm(x, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], training=True)
