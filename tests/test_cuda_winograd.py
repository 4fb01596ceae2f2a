"""The CUDA Winograd F(2x2, 3x3) transforms (kernels/cuda/winograd.py) against the reference
(kernels/reference/winograd.py) on tiny random shapes, float32 and float64.

No GPU here: conftest.py sets NUMBA_ENABLE_CUDASIM=1, so the kernels run in Numba's simulator
(each thread as Python: shapes stay tiny, examples few). tests/test_ptx.py compiles them to PTX.
The CUDA kernels apply each transform as two passes of add/subtract formulas, the reference as
one einsum: the same sums in another order, so they agree to a few units in the last place of
the largest value summed (atol scales with the inputs' magnitude).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed (pip install 'minicnn[cuda]')")
if not cuda.is_available():
    pytest.skip("no CUDA GPU and no simulator (NUMBA_ENABLE_CUDASIM=1)", allow_module_level=True)

from minicnn.kernels.cuda import winograd as GW  # noqa: E402
from minicnn.kernels.reference import winograd as RW  # noqa: E402
from oracles import naive_conv2d  # noqa: E402

FEW = settings(max_examples=6)  # the simulator runs every thread in Python
dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**31 - 1)


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(a):
    assert not isinstance(a, np.ndarray), "a CUDA kernel returned a host array"
    return a.copy_to_host()


def close(got, ref, inputs):
    """got (device) == ref to a few ulp: rtol ~ 8 ulp, atol the same relative to the largest
    input (a transform sums up to 16 of them; cancellation leaves an absolute, not relative,
    rounding error)."""
    got = host(got)
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, got.dtype, ref.shape, ref.dtype)
    rtol = 1e-6 if ref.dtype == np.float32 else 1e-12
    scale = max(float(np.max(np.abs(inputs), initial=0.0)), 1.0)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def geometry(draw):
    """(N, C, H, W, pt, pl, oh, ow) of a 3x3 stride-1 convolution padded pt/pb, pl/pr."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    pt, pb = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    pl, pr = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    oh, ow = H + pt + pb - 2, W + pl + pr - 2
    if oh < 1 or ow < 1:  # fold the invalid ones onto the symmetric padding the brief names
        pt = pb = max(pt, (3 - H + 1) // 2)
        pl = pr = max(pl, (3 - W + 1) // 2)
        oh, ow = H + pt + pb - 2, W + pl + pr - 2
    return N, C, H, W, pt, pl, oh, ow


def test_tiles_matches_reference():
    for oh in range(1, 9):
        for ow in range(1, 9):
            assert GW.tiles(oh, ow) == RW.tiles(oh, ow)


@FEW
@given(geometry(), dtypes, seeds)
def test_input_transform(geom, dtype, seed):
    N, C, H, W, pt, pl, oh, ow = geom
    x = randn(np.random.default_rng(seed), (N, C, H, W), dtype)
    close(GW.input_transform(dev(x), pt, pl, oh, ow), RW.input_transform(x, pt, pl, oh, ow), x)


@FEW
@given(geometry(), dtypes, seeds)
def test_input_grad_transform(geom, dtype, seed):
    N, C, H, W, pt, pl, oh, ow = geom
    th, tw = RW.tiles(oh, ow)
    dv = randn(np.random.default_rng(seed), (16, C, N * th * tw), dtype)
    close(GW.input_grad_transform(dev(dv), N, H, W, pt, pl, oh, ow),
          RW.input_grad_transform(dv, N, H, W, pt, pl, oh, ow), dv)


@FEW
@given(geometry(), st.integers(1, 3), dtypes, seeds)
def test_output_and_grad_output_transform(geom, O, dtype, seed):
    N, _, _, _, _, _, oh, ow = geom
    th, tw = RW.tiles(oh, ow)
    rng = np.random.default_rng(seed)
    m = randn(rng, (16, O, N * th * tw), dtype)
    close(GW.output_transform(dev(m), N, oh, ow), RW.output_transform(m, N, oh, ow), m)
    b = randn(rng, (O,), dtype)                        # the bias joins in the output transform
    close(GW.output_transform(dev(m), N, oh, ow, dev(b)), RW.output_transform(m, N, oh, ow, b), m)
    g = randn(rng, (N, O, oh, ow), dtype)
    close(GW.grad_output_transform(dev(g)), RW.grad_output_transform(g), g)


@FEW
@given(st.integers(1, 3), st.integers(1, 3), dtypes, seeds)
def test_weight_and_weight_grad_transform(O, Cg, dtype, seed):
    rng = np.random.default_rng(seed)
    w = randn(rng, (O, Cg, 3, 3), dtype)
    close(GW.weight_transform(dev(w)), RW.weight_transform(w), w)
    du = randn(rng, (16, O, Cg), dtype)
    close(GW.weight_grad_transform(dev(du)), RW.weight_grad_transform(du), du)


def test_transforms_are_adjoint_pairs():
    """<output_transform(m), g> = <m, grad_output_transform(g)>, the same for input_transform and
    input_grad_transform, and <weight_transform(w), du> = <w, weight_grad_transform(du)>, on the
    CUDA kernels alone."""
    rng = np.random.default_rng(7)
    N, O, Cg, oh, ow = 2, 2, 3, 5, 3                 # odd sizes: the cropped tile edges count
    th, tw = GW.tiles(oh, ow)
    m = randn(rng, (16, O, N * th * tw), np.float64)
    g = randn(rng, (N, O, oh, ow), np.float64)
    lhs = np.sum(host(GW.output_transform(dev(m), N, oh, ow)) * g)
    rhs = np.sum(m * host(GW.grad_output_transform(dev(g))))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    H, W, pt, pl = oh, ow, 1, 1                      # <input_transform(x), dV> = <x, input_grad(dV)>
    x = randn(rng, (N, O, H, W), np.float64)
    dv = randn(rng, (16, O, N * th * tw), np.float64)
    lhs = np.sum(host(GW.input_transform(dev(x), pt, pl, oh, ow)) * dv)
    rhs = np.sum(x * host(GW.input_grad_transform(dev(dv), N, H, W, pt, pl, oh, ow)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    w = randn(rng, (O, Cg, 3, 3), np.float64)
    du = randn(rng, (16, O, Cg), np.float64)
    lhs = np.sum(host(GW.weight_transform(dev(w))) * du)
    rhs = np.sum(w * host(GW.weight_grad_transform(dev(du))))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_transforms_compute_a_convolution(dtype):
    """The whole forward through the CUDA transforms (M = U @ V on the host) is a 3x3 conv."""
    rng = np.random.default_rng(3)
    N, C, O, H, W, pt, pl, oh, ow = 2, 2, 3, 5, 6, 1, 0, 4, 5     # asymmetric: pb = 0, pr = 1
    x = randn(rng, (N, C, H, W), dtype)
    w = randn(rng, (O, C, 3, 3), dtype)
    v = host(GW.input_transform(dev(x), pt, pl, oh, ow))
    u = host(GW.weight_transform(dev(w)))
    y = host(GW.output_transform(dev(np.matmul(u, v)), N, oh, ow))
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, naive_conv2d(x.astype(np.float64), w.astype(np.float64), padding=(pt, pl), out_size=(oh, ow)),
                               rtol=tol, atol=tol * 10)


def test_nan_propagates():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, 1] = np.nan
    v = host(GW.input_transform(dev(x), 0, 0, 2, 2))
    assert np.isnan(v[5, 0, 0])  # (B^T d B)[1, 1] uses d[1, 1]
    w = np.ones((1, 1, 3, 3), dtype=np.float64)
    w[0, 0, 0, 0] = np.nan
    assert np.isnan(host(GW.weight_transform(dev(w)))[0, 0, 0])
