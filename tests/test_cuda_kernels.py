"""Every CUDA kernel (kernels/cuda) against the reference kernel (kernels/reference) with the
same name, on tiny random shapes, float32 and float64.

No GPU here: conftest.py sets NUMBA_ENABLE_CUDASIM=1, so the kernels run in Numba's simulator
(each thread as Python: shapes stay <= 16, examples few). tests/test_ptx.py compiles the same
kernels to real PTX. Kernels that add in the reference's order agree bit for bit; the others
(exp/log, float64 accumulation, divisions by an int) to a few units in the last place.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed (pip install 'minicnn[cuda]')")
if not cuda.is_available():
    pytest.skip("no CUDA GPU and no simulator (NUMBA_ENABLE_CUDASIM=1)", allow_module_level=True)

from minicnn.kernels.cuda import activation as G_act  # noqa: E402
from minicnn.kernels.cuda import conv as G_conv  # noqa: E402
from minicnn.kernels.cuda import dropout as G_drop  # noqa: E402
from minicnn.kernels.cuda import elementwise as G_el  # noqa: E402
from minicnn.kernels.cuda import gemm as G_gemm  # noqa: E402
from minicnn.kernels.cuda import index as G_index  # noqa: E402
from minicnn.kernels.cuda import loss as G_loss  # noqa: E402
from minicnn.kernels.cuda import norm as G_norm  # noqa: E402
from minicnn.kernels.cuda import optim as G_optim  # noqa: E402
from minicnn.kernels.cuda import pool as G_pool  # noqa: E402
from minicnn.kernels.cuda import reduce as G_red  # noqa: E402
from minicnn.kernels.cuda import shape as G_shape  # noqa: E402
from minicnn.kernels.geometry import ConvGeometry  # noqa: E402
from minicnn.kernels.reference import activation as R_act  # noqa: E402
from minicnn.kernels.reference import conv as R_conv  # noqa: E402
from minicnn.kernels.reference import dropout as R_drop  # noqa: E402
from minicnn.kernels.reference import elementwise as R_el  # noqa: E402
from minicnn.kernels.reference import gemm as R_gemm  # noqa: E402
from minicnn.kernels.reference import index as R_index  # noqa: E402
from minicnn.kernels.reference import loss as R_loss  # noqa: E402
from minicnn.kernels.reference import norm as R_norm  # noqa: E402
from minicnn.kernels.reference import optim as R_optim  # noqa: E402
from minicnn.kernels.reference import pool as R_pool  # noqa: E402
from minicnn.kernels.reference import reduce as R_red  # noqa: E402
from minicnn.kernels.reference import shape as R_shape  # noqa: E402

FEW = settings(max_examples=6)  # the simulator runs every thread in Python
DTYPES = [np.float32, np.float64]
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**31 - 1)


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(a):
    assert not isinstance(a, np.ndarray), "a CUDA kernel returned a host array"
    return a.copy_to_host()


def same(got, ref, exact=False):
    got = host(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, got.dtype, ref.shape, ref.dtype)
    if exact:
        np.testing.assert_array_equal(got, ref)
    else:
        tol = dict(rtol=2e-6, atol=2e-6) if ref.dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, ref, **tol)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- conv ----------------------------------------------------------------------------------
@st.composite
def conv_geometry(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pl = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H, W = draw(st.integers((kh - 1) * dh + 1, 7)), draw(st.integers((kw - 1) * dw + 1, 7))
    oh = (H + 2 * pt - dh * (kh - 1) - 1) // sh + 1
    ow = (W + 2 * pl - dw * (kw - 1) - 1) // sw + 1
    return H, W, ConvGeometry(kh, kw, sh, sw, pt, pl, pt, pl, dh, dw, 1, oh, ow)


@FEW
@given(conv_geometry(), st.integers(1, 2), st.integers(1, 3), dtypes, seeds)
def test_im2col_col2im(geom, N, C, dtype, seed):
    H, W, g = geom
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, H, W), dtype)
    same(G_conv.im2col(dev(x), g), R_conv.im2col(x, g), exact=True)
    cols = randn(rng, R_conv.im2col(x, g).shape, dtype)
    same(G_conv.col2im(dev(cols), g, H, W), R_conv.col2im(cols, g, H, W))


def test_col2im_overlapping_windows_single_channel_exact():
    """Stride 1, 3x3: every pixel gathers up to 9 entries, the reference's order: exact."""
    rng = np.random.default_rng(0)
    g = ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6)
    cols = randn(rng, (1, 9, 36), np.float32)
    for _ in range(3):
        same(G_conv.col2im(dev(cols), g, 6, 6), R_conv.col2im(cols, g, 6, 6), exact=True)


# ---- pool ----------------------------------------------------------------------------------
@st.composite
def pool_geometry(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H, W = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    return H, W, (kh, kw, sh, sw, ph, pw, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)


@FEW
@given(pool_geometry(), dtypes, seeds, st.booleans())
def test_pool_kernels(geom, dtype, seed, include_pad):
    H, W, g = geom
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.linspace(-1, 1, 2 * H * W)).reshape(2, 1, H, W).astype(dtype)  # no ties
    out, arg = G_pool.max_pool2d_forward(dev(x), *g)
    r_out, r_arg = R_pool.max_pool2d_forward(x, *g)
    same(out, r_out, exact=True)
    same(arg, r_arg, exact=True)
    go = randn(rng, r_out.shape, dtype)
    same(G_pool.max_pool2d_backward(dev(go), arg, H, W), R_pool.max_pool2d_backward(go, r_arg, H, W), exact=True)
    same(G_pool.avg_pool2d_forward(dev(x), *g, include_pad), R_pool.avg_pool2d_forward(x, *g, include_pad))
    same(G_pool.avg_pool2d_backward(dev(go), H, W, *g[:6], include_pad),
         R_pool.avg_pool2d_backward(go, H, W, *g[:6], include_pad))
    oh, ow = g[6], g[7]
    same(G_pool.adaptive_avg_pool2d_forward(dev(x), oh, ow), R_pool.adaptive_avg_pool2d_forward(x, oh, ow))
    same(G_pool.adaptive_avg_pool2d_backward(dev(go), H, W), R_pool.adaptive_avg_pool2d_backward(go, H, W))


def test_max_pool_nan_wins():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, arg = G_pool.max_pool2d_forward(dev(x), 2, 2, 2, 2, 0, 0, 2, 2)
    r_out, r_arg = R_pool.max_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 2, 2)
    same(out, r_out, exact=True)
    same(arg, r_arg, exact=True)


# ---- activations -----------------------------------------------------------------------------
@FEW
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), dtypes, seeds)
def test_activation_kernels(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype) * 3
    x.flat[0] = 0.0
    g = randn(rng, shape, dtype)
    same(G_act.relu_forward(dev(x)), R_act.relu_forward(x), exact=True)
    same(G_act.relu_backward(dev(x), dev(g)), R_act.relu_backward(x, g), exact=True)
    same(G_act.leaky_relu_forward(dev(x), 0.1), R_act.leaky_relu_forward(x, 0.1), exact=True)
    same(G_act.leaky_relu_backward(dev(x), dev(g), 0.1), R_act.leaky_relu_backward(x, g, 0.1), exact=True)
    same(G_act.elu_forward(dev(x), 0.7), R_act.elu_forward(x, 0.7))
    same(G_act.elu_backward(dev(x), dev(g), 0.7), R_act.elu_backward(x, g, 0.7))
    y = R_act.sigmoid_forward(x)
    same(G_act.sigmoid_forward(dev(x)), y)
    same(G_act.sigmoid_backward(dev(y), dev(g)), R_act.sigmoid_backward(y, g), exact=True)
    t = R_act.tanh_forward(x)
    same(G_act.tanh_forward(dev(x)), t)
    same(G_act.tanh_backward(dev(t), dev(g)), R_act.tanh_backward(t, g), exact=True)


def test_activation_nan_propagates():
    x = np.array([np.nan, -1.0, 2.0], dtype=np.float32)
    for name in ("relu_forward", "sigmoid_forward", "tanh_forward"):
        assert np.isnan(host(getattr(G_act, name)(dev(x)))[0]), name
    assert np.isnan(host(G_act.elu_forward(dev(x), 1.0))[0])


@FEW
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), dtypes, seeds)
def test_maxout_kernels(N, CO, pieces, S, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, CO * pieces, S), dtype)
    out, arg = G_act.maxout_forward(dev(x), pieces)
    r_out, r_arg = R_act.maxout_forward(x, pieces)
    same(out, r_out, exact=True)
    same(arg, r_arg, exact=True)
    g = randn(rng, r_out.shape, dtype)
    same(G_act.maxout_backward(dev(g), arg, pieces), R_act.maxout_backward(g, r_arg, pieces), exact=True)


# ---- losses ------------------------------------------------------------------------------
@FEW
@given(st.integers(1, 5), st.integers(1, 6), dtypes, seeds)
def test_loss_kernels(M, C, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (M, C), dtype) * 3
    g = randn(rng, (M, C), dtype)
    t = rng.integers(0, C, M)
    gr = randn(rng, (M,), dtype)
    y = R_loss.softmax_forward(x)
    same(G_loss.softmax_forward(dev(x)), y)
    same(G_loss.softmax_backward(dev(y), dev(g)), R_loss.softmax_backward(y, g))
    ly = R_loss.log_softmax_forward(x)
    same(G_loss.log_softmax_forward(dev(x)), ly)
    same(G_loss.log_softmax_backward(dev(ly), dev(g)), R_loss.log_softmax_backward(ly, g))
    loss, probs = G_loss.softmax_cross_entropy_forward(dev(x), t)
    r_loss, r_probs = R_loss.softmax_cross_entropy_forward(x, t)
    same(loss, r_loss)
    same(probs, r_probs)
    same(G_loss.softmax_cross_entropy_backward(dev(r_probs), t, dev(gr)),
         R_loss.softmax_cross_entropy_backward(r_probs, t, gr), exact=True)
    same(G_loss.nll_forward(dev(ly), t), R_loss.nll_forward(ly, t), exact=True)
    same(G_loss.nll_backward(dev(gr), t, C), R_loss.nll_backward(gr, t, C), exact=True)
    b = randn(rng, (M, C), dtype)
    same(G_loss.mse_forward(dev(x), dev(b)), R_loss.mse_forward(x, b), exact=True)
    same(G_loss.mse_backward(dev(x), dev(b), dev(g)), R_loss.mse_backward(x, b, g))


# ---- dropout -----------------------------------------------------------------------------
@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.sampled_from([0.0, 0.3, 0.5]), dtypes, seeds)
def test_dropout_kernels(N, C, S, p, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, S), dtype)
    u = rng.random((N, C, S), dtype=dtype)
    out, mask = G_drop.dropout_forward(dev(x), u, p)   # u as a host array: the op's draw
    r_out, r_mask = R_drop.dropout_forward(x, u, p)
    same(out, r_out, exact=True)
    same(mask, r_mask, exact=True)
    same(G_drop.dropout_backward(dev(x), mask), R_drop.dropout_backward(x, r_mask), exact=True)
    u2 = rng.random((N, C), dtype=dtype)
    out, mask = G_drop.dropout2d_forward(dev(x), dev(u2), p)
    r_out, r_mask = R_drop.dropout2d_forward(x, u2, p)
    same(out, r_out, exact=True)
    same(mask, r_mask, exact=True)
    same(G_drop.dropout2d_backward(dev(x), mask), R_drop.dropout2d_backward(x, r_mask), exact=True)


# ---- norm --------------------------------------------------------------------------------
@FEW
@given(st.integers(1, 2), st.integers(1, 6), st.integers(1, 4), st.integers(1, 5), dtypes, seeds)
def test_lrn_kernels(N, C, S, size, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, S), dtype)
    g = randn(rng, (N, C, S), dtype)
    out, scale = G_norm.lrn_forward(dev(x), size, 0.5, 0.75, 2.0)
    r_out, r_scale = R_norm.lrn_forward(x, size, 0.5, 0.75, 2.0)
    same(out, r_out)
    same(scale, r_scale)
    same(G_norm.lrn_backward(dev(x), dev(r_out), dev(r_scale), dev(g), size, 0.5, 0.75, 2.0),
         R_norm.lrn_backward(x, r_out, r_scale, g, size, 0.5, 0.75, 2.0))


def test_simulator_block_threads_share_one_shared_array():
    """In the simulator, all threads of a block must get the same cuda.shared.array: its first
    creation raced (kernels/cuda/_launch.py locks it). A block-wide tree sum over many blocks and
    launches then always comes out right."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        pytest.skip("a real GPU: the simulator is not in use")
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    assert getattr(FakeCUDAShared.array, "locked_by_minicnn", False)
    x = np.arange(2 * 16 * 3, dtype=np.float64).reshape(2, 16, 3) % 7
    for _ in range(20):
        mean, var = G_norm.batch_norm_stats(dev(x))
        np.testing.assert_allclose(host(mean), x.mean(axis=(0, 2)), rtol=1e-12)
        np.testing.assert_allclose(host(var), x.var(axis=(0, 2)), rtol=1e-12)


@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), dtypes, seeds)
def test_batch_norm_kernels(N, C, S, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, S), dtype) * 2 + 1
    g = randn(rng, (N, C, S), dtype)
    w, b = randn(rng, (C,), dtype), randn(rng, (C,), dtype)
    mean, var = G_norm.batch_norm_stats(dev(x))
    r_mean, r_var = R_norm.batch_norm_stats(x)
    same(mean, r_mean)
    same(var, r_var)
    invstd = (1 / np.sqrt(r_var.astype(np.float64) + 1e-5)).astype(dtype)
    same(G_norm.batch_norm_forward(dev(x), dev(r_mean), dev(invstd), dev(w), dev(b)),
         R_norm.batch_norm_forward(x, r_mean, invstd, w, b))
    loose = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    for name in ("batch_norm_backward", "batch_norm_backward_eval"):
        got = getattr(G_norm, name)(dev(g), dev(x), dev(r_mean), dev(invstd), dev(w))
        ref = getattr(R_norm, name)(g, x, r_mean, invstd, w)
        for a, r in zip(got, ref):
            # the reference rounds its float64 sums to the data's dtype first; the GPU keeps float64
            np.testing.assert_allclose(host(a), r, **loose)
            assert host(a).dtype == r.dtype


# ---- gemm, elementwise, reduce --------------------------------------------------------------
@FEW
@given(st.integers(1, 17), st.integers(1, 17), st.integers(1, 17), st.booleans(), st.booleans(), dtypes, seeds)
def test_gemm_tiles_and_transposes(M, K, N, ta, tb, dtype, seed):
    rng = np.random.default_rng(seed)
    a = randn(rng, (K, M) if ta else (M, K), dtype)
    b = randn(rng, (N, K) if tb else (K, N), dtype)
    ref = R_gemm.matmul(a, b, ta, tb)
    got = G_gemm.matmul(dev(a), dev(b), ta, tb)
    np.testing.assert_allclose(host(got), ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_gemm_batch_broadcast_as_conv_uses_it():
    """(G, Og, Kg) @ (n, G, Kg, L): the weight repeats over the samples (z % G)."""
    rng = np.random.default_rng(1)
    w = randn(rng, (2, 3, 5), np.float64)
    cols = randn(rng, (3, 2, 5, 4), np.float64)
    out = dev(np.zeros((3, 2, 3, 4)))
    G_gemm.matmul(dev(w), dev(cols), out=out)
    np.testing.assert_allclose(host(out), R_gemm.matmul(w, cols), rtol=1e-12)
    # and the weight gradient's form: (n, G, Og, L) @ (n, G, Kg, L)^T
    g = randn(rng, (3, 2, 3, 4), np.float64)
    np.testing.assert_allclose(host(G_gemm.matmul(dev(g), dev(cols), trans_b=True)),
                               R_gemm.matmul(g, cols, trans_b=True), rtol=1e-12)


@FEW
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), st.data(), dtypes, seeds)
def test_elementwise_broadcast(shape, data, dtype, seed):
    rng = np.random.default_rng(seed)
    bshape = tuple(data.draw(st.sampled_from([n, 1])) for n in shape)[data.draw(st.integers(0, len(shape))):]
    a, b = randn(rng, shape, dtype), randn(rng, bshape, dtype)
    for name in ("add", "sub", "mul", "div"):
        same(getattr(G_el, name)(dev(a), dev(b)), getattr(R_el, name)(a, b), exact=True)
        same(getattr(G_el, name)(dev(a), 1.5), getattr(R_el, name)(a, 1.5), exact=True)
    same(G_el.equal(dev(a), dev(a[..., :1])), R_el.equal(a, a[..., :1]), exact=True)
    pos = np.abs(a) + 0.5
    for name in ("neg", "abs", "sign"):
        same(getattr(G_el, name)(dev(a)), getattr(R_el, name)(a), exact=True)
    for name in ("exp", "log", "sqrt"):
        same(getattr(G_el, name)(dev(pos)), getattr(R_el, name)(pos))
    axes = tuple(rng.permutation(len(shape)))
    same(G_el.permute(dev(a), axes), R_el.permute(a, axes), exact=True)
    same(G_el.broadcast_to(dev(b), shape), R_el.broadcast_to(b, shape), exact=True)
    other = np.float64 if dtype == np.float32 else np.float32
    same(G_el.contiguous(dev(a), other), R_el.contiguous(a, other), exact=True)
    dst = dev(a.copy())
    G_el.assign(dst, dev(b))
    same(dst, R_el.assign(a.copy(), b), exact=True)
    same(G_el.zeros((2, 3), dtype), R_el.zeros((2, 3), dtype), exact=True)
    same(G_el.full((2,), 7, dtype), R_el.full((2,), 7, dtype), exact=True)
    acc = dev(a.copy())
    G_el.add(acc, dev(b), out=acc)  # in place, as conv's weight gradient accumulates
    same(acc, a + b, exact=True)


@FEW
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), st.data(), st.booleans(), dtypes, seeds)
def test_reductions(shape, data, keepdims, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    same(G_red.sum(dev(x), axes, keepdims), R_red.sum(x, axes, keepdims))
    same(G_red.max(dev(x), axes, keepdims), R_red.max(x, axes, keepdims), exact=True)
    same(G_red.sum(dev(x)), R_red.sum(x))


def test_reduction_longer_than_a_block_and_nan():
    x = np.linspace(-1, 1, 300).reshape(1, 300)
    same(G_red.sum(dev(x), (1,)), R_red.sum(x, (1,)))
    same(G_red.max(dev(x), (1,)), R_red.max(x, (1,)), exact=True)
    x[0, 200] = np.nan
    assert np.isnan(host(G_red.max(dev(x), (1,)))[0])


# ---- optimisers --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov,wd,maximize", [(False, 0.0, False), (True, 0.1, False), (False, 0.1, True)])
def test_sgd_update(dtype, nesterov, wd, maximize):
    rng = np.random.default_rng(3)
    p, buf = randn(rng, (3, 4), dtype), np.zeros((3, 4), dtype)
    dp, dbuf = dev(p), dev(buf)
    for step in range(3):
        g = randn(rng, (3, 4), dtype)
        args = (0.1, 0.9, 0.0 if nesterov else 0.2, wd, nesterov, maximize, step == 0)
        R_optim.sgd_update(p, g, buf, *args)
        G_optim.sgd_update(dp, dev(g), dbuf, *args)
    np.testing.assert_allclose(host(dp), p, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(host(dbuf), buf, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled,amsgrad,wd", [(False, False, 0.0), (False, True, 0.1), (True, False, 0.01)])
def test_adam_update(dtype, decoupled, amsgrad, wd):
    rng = np.random.default_rng(4)
    p = randn(rng, (5,), dtype)
    state = [np.zeros(5, dtype) for _ in range(3)]
    dp, dstate = dev(p), [dev(s) for s in state]
    for step in range(1, 4):
        g = randn(rng, (5,), dtype)
        args = (1e-2, 0.9, 0.999, 1e-8, wd, decoupled, amsgrad, False, step)
        R_optim.adam_update(p, g, *state, *args)
        G_optim.adam_update(dp, dev(g), *dstate, *args)
    np.testing.assert_allclose(host(dp), p, rtol=1e-6 if dtype == np.float32 else 1e-13)


# ---- batch norm: invstd, running statistics, training forward ----------------------------------
@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 5), st.sampled_from([0.1, 0.5, 1.0]), dtypes, seeds)
def test_batch_norm_parameter_kernels(N, C, S, factor, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, S), dtype) * 2 + 1
    w, b = randn(rng, (C,), dtype), randn(rng, (C,), dtype)
    var = np.abs(randn(rng, (C,), dtype))
    same(G_norm.batch_norm_invstd(dev(var), 1e-5, dtype), R_norm.batch_norm_invstd(var, 1e-5, dtype))
    got = G_norm.batch_norm_train_forward(dev(x), dev(w), dev(b), 1e-5)
    for a, r in zip(got, R_norm.batch_norm_train_forward(x, w, b, 1e-5)):
        same(a, r)
    mean, var = R_norm.batch_norm_stats(x)
    for running_dtype in (dtype, np.float64):   # running statistics keep their own dtype
        rm, rv = randn(rng, (C,), running_dtype), np.abs(randn(rng, (C,), running_dtype)) + 0.5
        drm, drv = dev(rm), dev(rv)
        G_norm.batch_norm_update_running(drm, drv, dev(mean), dev(var), factor, N * S)
        R_norm.batch_norm_update_running(rm, rv, mean, var, factor, N * S)
        same(drm, rm)
        same(drv, rv)


# ---- index: gather through flat offsets, scatter, race-free gather-add ---------------------------
@FEW
@given(st.integers(1, 12), st.integers(0, 10), dtypes, seeds)
def test_index_kernels(size, count, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (size,), dtype)
    src = rng.integers(0, size, (count, 1)) if count else np.zeros((0, 1), np.int64)  # repeats likely
    g = randn(rng, src.shape, dtype)
    same(G_index.take(dev(x), src), R_index.take(x, src), exact=True)
    same(G_index.scatter_add(dev(g), src, size), R_index.scatter_add(g, src, size), exact=True)
    unique = rng.permutation(size)[:min(count, size)].reshape(-1, 1)
    gu = randn(rng, unique.shape, dtype)
    same(G_index.scatter(dev(gu), unique, size), R_index.scatter(gu, unique, size), exact=True)


def test_scatter_add_many_shares_of_one_element_exact():
    """Every result element names offset 3: one thread adds all 16 shares, in add.at's order."""
    g = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    src = np.full(16, 3)
    for _ in range(3):
        same(G_index.scatter_add(dev(g), src, 5), R_index.scatter_add(g, src, 5), exact=True)


def test_take_of_a_scalar_result_is_zero_dimensional():
    x = np.arange(6.0)
    same(G_index.take(dev(x), np.array(4)), R_index.take(x, np.array(4)), exact=True)


# ---- shape: concat, split, pad2d, crop2d ------------------------------------------------------
@FEW
@given(st.lists(st.integers(0, 3), min_size=1, max_size=3), st.integers(0, 2), dtypes, seeds)
def test_concat_split_kernels(sizes, axis, dtype, seed):
    rng = np.random.default_rng(seed)
    base = [2, 3, 2]
    arrays = []
    for n in sizes:
        shape = list(base)
        shape[axis] = n
        arrays.append(randn(rng, shape, dtype))
    ref = R_shape.concat(arrays, axis)
    same(G_shape.concat([dev(a) for a in arrays], axis), ref, exact=True)
    pieces = G_shape.split(dev(ref), sizes, axis)
    assert len(pieces) == len(sizes)
    for got, want in zip(pieces, R_shape.split(ref, sizes, axis)):
        same(got, want, exact=True)


@FEW
@given(st.integers(1, 4), st.integers(1, 4), st.tuples(*[st.integers(0, 2)] * 4), st.booleans(), dtypes, seeds)
def test_pad2d_crop2d_kernels(H, W, pads, batched, dtype, seed):
    rng = np.random.default_rng(seed)
    top, bottom, left, right = pads
    x = randn(rng, (2, 3, H, W) if batched else (H, W), dtype)
    out = R_shape.pad2d(x, top, bottom, left, right, -0.5)
    same(G_shape.pad2d(dev(x), top, bottom, left, right, -0.5), out, exact=True)
    g = randn(rng, out.shape, dtype)
    same(G_shape.crop2d(dev(g), top, left, H, W), R_shape.crop2d(g, top, left, H, W), exact=True)


# ---- elementwise additions: pow, safe_log, comparisons ------------------------------------------
@FEW
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), dtypes, seeds)
def test_pow_safe_log_compare(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = np.abs(randn(rng, shape, dtype)) + 0.1
    b = randn(rng, shape[-1:], dtype)
    same(G_el.pow(dev(a), dev(b)), R_el.pow(a, b))
    same(G_el.pow(dev(a), 2.5), R_el.pow(a, 2.5))
    c = randn(rng, shape, dtype)
    c.flat[0] = 0.0
    same(G_el.safe_log(dev(c)), R_el.safe_log(c))
    for name in R_el.COMPARISONS:
        same(G_el.compare(dev(c), dev(b), name), R_el.compare(c, b, name), exact=True)
        same(G_el.compare(dev(c), 0.0, name), R_el.compare(c, 0.0, name), exact=True)


def test_safe_log_at_zero_negative_and_nan():
    x = np.array([0.0, -1.0, np.nan, np.e])
    got = host(G_el.safe_log(dev(x)))
    assert got[0] == 0.0 and np.isnan(got[1]) and np.isnan(got[2]) and abs(got[3] - 1) < 1e-15
    np.testing.assert_array_equal(got, R_el.safe_log(x))
