"""im2col / col2im: the Numba kernels against the NumPy reference, the adjoint identity, races, NaN;
and the whole conv2d under both kernel sets."""
from unittest import mock

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn.kernels.cpu import conv as numba_conv
from minicnn.kernels.cpu._address import address_of, call_at
from minicnn.kernels.cpu._jit import serial_twin
from minicnn.kernels.reference import conv as ref_conv
from minicnn.functional.conv import conv_geometry
from minicnn.kernels.geometry import ConvGeometry
from minicnn.testing.conv import conv2d_configs


@st.composite
def geometries(draw, max_size=9):
    """(input shape, ConvGeometry), with any bottom/right padding (asymmetric, as TensorFlow's
    "same" makes it) and an output of at least 1x1."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    dims = []
    for _ in range(2):
        size, k, s, d = (draw(st.integers(1, max_size)), draw(st.integers(1, 4)),
                         draw(st.integers(1, 3)), draw(st.integers(1, 2)))
        before, after = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        extent = d * (k - 1) + 1
        if size + before + after < extent:
            after = extent - size - before
        dims.append((size, k, s, before, after, d, (size + before + after - extent) // s + 1))
    (H, kh, sh, pt, pb, dil_h, oh), (W, kw, sw, pl, pr, dil_w, ow) = dims
    return (N, C, H, W), ConvGeometry(kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, 1, oh, ow)


def _args(g):
    return g


# The CPU's im2col and col2im copy rows, or on maps of short rows (ow < GATHER_BELOW) go through
# a table of taps: these tests run every geometry both ways.
PATHS = {"rows": 0, "table": 10**9}


def _path(name):
    return mock.patch.object(numba_conv, "GATHER_BELOW", PATHS[name])


def _geom(kh, kw, sh, sw, pt, pl, dil_h, dil_w, oh, ow, H, W):
    """A ConvGeometry whose bottom/right padding is what the last window needs."""
    pb = max(0, (oh - 1) * sh + (kh - 1) * dil_h + 1 - H - pt)
    pr = max(0, (ow - 1) * sw + (kw - 1) * dil_w + 1 - W - pl)
    return ConvGeometry(kh, kw, sh, sw, pt, pl, pb, pr, dil_h, dil_w, 1, oh, ow)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=30)
@given(g=geometries(), seed=st.integers(0, 2**31 - 1))
def test_numba_kernels_equal_reference(dtype, path, g, seed):
    rng = np.random.default_rng(seed)
    shape, args = _args(g)
    x = rng.standard_normal(shape).astype(dtype)
    cols = ref_conv.im2col(x, args)
    with _path(path):
        got = numba_conv.im2col(x, args)
    assert got.dtype == cols.dtype == dtype
    assert cols.shape == (shape[0], shape[1] * args[0] * args[1], args[-2] * args[-1])
    np.testing.assert_array_equal(got, cols)

    c = rng.standard_normal(cols.shape).astype(dtype)
    dx_ref = ref_conv.col2im(c, args, shape[2], shape[3])
    with _path(path):
        dx = numba_conv.col2im(c, args, shape[2], shape[3])
    assert dx.dtype == dx_ref.dtype == dtype and dx.shape == shape
    # same summation order in both: equal to the last bit
    np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("path", PATHS)
def test_im2col_layout_by_hand(path):
    # x = 1..9 in one 3x3 plane; 2x2 kernel, stride 1, padding 1 on top/left only, output 2x2
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    cols = ref_conv.im2col(x, _geom(2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3))
    # row i*kw + j, column oy*ow + ox, reading pixel (oy - 1 + i, ox - 1 + j); 0 in the padding
    want = np.array([[0, 0, 0, 1],   # (i, j) = (0, 0): pixels (-1,-1) (-1,0) (0,-1) (0,0)
                     [0, 0, 1, 2],   # (0, 1): (-1,0) (-1,1) (0,0) (0,1)
                     [0, 1, 0, 4],   # (1, 0): (0,-1) (0,0) (1,-1) (1,0)
                     [1, 2, 4, 5]],  # (1, 1): (0,0) (0,1) (1,0) (1,1)
                    dtype=float)
    np.testing.assert_array_equal(cols[0], want)
    with _path(path):
        np.testing.assert_array_equal(numba_conv.im2col(x, _geom(2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3)), cols)


@settings(max_examples=30)
@given(g=geometries(), seed=st.integers(0, 2**31 - 1))
@pytest.mark.parametrize("impl, path", [(ref_conv, "rows"), (numba_conv, "rows"), (numba_conv, "table")],
                         ids=["reference", "numba-rows", "numba-table"])
def test_col2im_is_the_adjoint_of_im2col(impl, path, g, seed):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col's transpose."""
    rng = np.random.default_rng(seed)
    shape, args = _args(g)
    x = rng.standard_normal(shape)
    with _path(path):
        cols = impl.im2col(x, args)
        c = rng.standard_normal(cols.shape)
        lhs = np.sum(cols * c)
        rhs = np.sum(x * impl.col2im(c, args, shape[2], shape[3]))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args", [
    _geom(3, 3, 1, 1, 1, 1, 1, 1, 32, 32, 32, 32),    # heavy overlap: every pixel under 9 windows
    _geom(5, 5, 2, 2, 2, 2, 1, 1, 16, 16, 32, 32),
    _geom(3, 3, 1, 1, 2, 2, 2, 2, 32, 32, 32, 32),    # dilated
])
@pytest.mark.parametrize("path", PATHS)
def test_col2im_has_no_race(args, path):
    """One channel, one thread-chunk per iteration, many repeats: any scatter-add race would show."""
    rng = np.random.default_rng(7)
    cols = rng.standard_normal((3, args.kh * args.kw, args.oh * args.ow))
    want = ref_conv.col2im(cols, args, 32, 32)
    numba.set_parallel_chunksize(1)
    try:
        with _path(path):
            for _ in range(50):
                np.testing.assert_array_equal(numba_conv.col2im(cols, args, 32, 32), want)
                np.testing.assert_array_equal(numba_conv.im2col(want, args), ref_conv.im2col(want, args))
    finally:
        numba.set_parallel_chunksize(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_in_nan_out(dtype):
    x = np.ones((1, 2, 5, 5), dtype=dtype)
    x[0, 1, 2, 3] = np.nan
    args = _geom(3, 3, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5)
    cols = numba_conv.im2col(x, args)
    np.testing.assert_array_equal(np.isnan(cols), np.isnan(ref_conv.im2col(x, args)))
    assert np.isnan(cols).sum() == 9      # the pixel is in 9 windows
    dx = numba_conv.col2im(cols, args, 5, 5)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(ref_conv.col2im(cols, args, 5, 5)))
    assert np.isnan(dx).sum() == 1 and np.isnan(dx[0, 1, 2, 3])  # all 9 entries go back to that pixel
    out = F.conv2d(x, np.ones((1, 2, 3, 3), dtype=dtype), padding=1)
    assert np.isnan(out.data).sum() == 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=15)
@given(cfg=conv2d_configs(max_channels=6), seed=st.integers(0, 2**31 - 1))
def test_conv2d_numba_equals_reference(dtype, cfg, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(cfg.input_shape).astype(dtype)
    w0 = rng.standard_normal(cfg.weight_shape).astype(dtype)
    b0 = rng.standard_normal(cfg.out_channels).astype(dtype)
    g = rng.standard_normal(cfg.output_shape).astype(dtype)
    results = {}
    for name in ("reference", "numba"):
        with mc.use_kernels(name):
            x, w, b = (mc.Tensor(a, requires_grad=True, dtype=dtype) for a in (x0, w0, b0))
            out = F.conv2d(x, w, b, **cfg.kwargs())
            out.backward(g)
            results[name] = (out.data, x.grad, w.grad, b.grad)
    for ref, got in zip(results["reference"], results["numba"]):
        assert got.dtype == dtype
        # the kernels agree bit for bit and the GEMMs are the same calls
        np.testing.assert_array_equal(got, ref)


def test_cpu_gemm_runs_small_products_on_one_blas_thread_and_restores_the_count():
    """kernels/cpu/gemm.py: a product under SMALL_MACS multiply-adds runs on one OpenBLAS thread,
    a larger one is cut into pieces of one-thread BLAS calls (OpenBLAS's own workers never wake),
    and the count is back to the default afterwards."""
    from threadpoolctl import threadpool_info

    from minicnn.kernels.cpu import _threads, gemm

    set_threads, default = _threads.openblas()[0], _threads.blas_threads_now()
    if set_threads is None or default <= 1:
        pytest.skip("needs OpenBLAS with more than one thread")
    calls = []
    _threads._blas[0] = lambda n: (calls.append(n), set_threads(n))
    try:
        a = np.ones((8, 8), np.float32)
        np.testing.assert_array_equal(gemm.matmul(a, a, trans_b=True), 8)
        assert calls == [1, default]
        calls.clear()
        big = np.ones((256, 256), np.float32)       # 2^24 multiply-adds: SMALL_MACS
        np.testing.assert_array_equal(gemm.matmul(big, big), 256)
        assert calls == ([1, default] if gemm.gemm_for(np.float32) is not None else [])
    finally:
        _threads._blas[0] = set_threads
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "openblas"]
    assert counts and all(n == default for n in counts)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("given_out", [False, True])
@pytest.mark.parametrize("way", ["kernel", "threads"])
def test_cpu_gemm_split_batches_equal_numpy(monkeypatch, trans_a, trans_b, given_out, way):
    """Batches of small products are spread over the cores, one-thread BLAS calls each, from one
    Numba kernel (`kernel`) or, for operands it does not take, in parts run by Python threads
    (`threads`): the same numbers as one np.matmul, with a shared (broadcast) operand, a batch of
    both, and an odd batch size."""
    from minicnn.kernels.cpu import _blas, _threads, gemm

    set_threads, default = _threads.openblas()[0], _threads.blas_threads_now()
    if set_threads is None or default <= 1:
        pytest.skip("needs OpenBLAS with more than one thread")
    if way == "kernel" and _blas.gemm_for(np.float32) is None:
        pytest.skip("needs NumPy's 64-bit-integer OpenBLAS")
    split = []
    if way == "kernel":
        batched = gemm._batched
        monkeypatch.setattr(gemm, "_batched", lambda *args: (split.append(default), batched(*args))[1])
    else:
        in_parts = gemm._in_parts
        monkeypatch.setattr(gemm, "_batched_suits", lambda *args: False)
        monkeypatch.setattr(gemm, "_in_parts", lambda *args: (split.append(args[-1]), in_parts(*args))[1])
    rng = np.random.default_rng(0)
    cases = [((2, 16, 150), (33, 2, 150, 100)),      # a shared weight (G, Og, Kg) against a batch
             ((33, 1, 16, 100), (33, 1, 100, 150)),  # both batched (the weight gradient)
             ((1, 6, 25), (64, 1, 25, 784))]         # a leading 1 that broadcasts
    for sa, sb in cases:
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        if trans_a:
            a = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        if trans_b:
            b = np.ascontiguousarray(np.swapaxes(b, -1, -2))
        want = np.matmul(np.swapaxes(a, -1, -2) if trans_a else a, np.swapaxes(b, -1, -2) if trans_b else b)
        macs = want.shape[-2] * want.shape[-1] * (a.shape[-2] if trans_a else a.shape[-1])
        assert macs < gemm.SMALL_MACS and macs * np.prod(want.shape[:-2]) >= gemm.SPLIT_MACS
        out = np.full(want.shape, np.nan, np.float32) if given_out else None
        got = gemm.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
        assert got.shape == want.shape and got.dtype == want.dtype
        if given_out:
            assert got is out
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)   # the same BLAS kernels
        assert split and split[-1] == (min(default, want.shape[0]) if way == "threads" else default)
        split.clear()


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_gemm_cut_large_products_equal_numpy(monkeypatch, trans_a, trans_b, dtype):
    """Large products are cut into pieces along their longer side, rows or columns, spread over
    Numba's threads (gemm.py rule 3): the same numbers as np.matmul for sides that are not
    multiples of the pieces' 16-element alignment, a side shorter than two pieces, a weight
    broadcast over a batch, a batch that does not divide among the threads, and a given out."""
    from minicnn.kernels.cpu import _blas, _threads, gemm

    if _threads.blas_threads_now() <= 1 or _blas.gemm_for(dtype) is None:
        pytest.skip("needs NumPy's 64-bit-integer OpenBLAS with more than one thread")
    cut = []
    real = gemm._cut
    monkeypatch.setattr(gemm, "_cut", lambda *args: (cut.append(args[-1]), real(*args))[1])
    rng = np.random.default_rng(1)
    cases = [((), 300, 170, 333, ()),        # wide: cut by columns
             ((), 701, 250, 97, ()),         # tall: cut by rows
             ((), 20, 43000, 21, ()),        # both sides under two aligned pieces
             ((3,), 130, 400, 333, (3,)),    # three products on two threads: each cut
             ((2,), 256, 300, 257, ())]      # a weight pair against one shared operand
    for batch_a, M, K, N, batch_b in cases:
        a = rng.standard_normal(batch_a + ((K, M) if trans_a else (M, K))).astype(dtype)
        b = rng.standard_normal(batch_b + ((N, K) if trans_b else (K, N))).astype(dtype)
        want = np.matmul(np.swapaxes(a, -1, -2) if trans_a else a, np.swapaxes(b, -1, -2) if trans_b else b)
        assert M * K * N >= gemm.SMALL_MACS
        for out in (None, np.full(want.shape, np.nan, dtype)):
            got = gemm.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
            assert got.shape == want.shape and got.dtype == dtype and (out is None or got is out)
            np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                       atol=1e-3 if dtype == np.float32 else 1e-9)
        assert cut and cut[-1] == (1 if np.prod(want.shape[:-2]) % _threads.blas_threads_now() == 0
                                   else _threads.blas_threads_now())
        cut.clear()


@pytest.mark.parametrize("M, K, N", [(1, 7, 5), (8, 300, 1000), (64, 400, 120), (5, 3, 5), (20, 9, 3)])
@pytest.mark.parametrize("given_out", [False, True])
def test_cpu_gemm_linear_forward_read_the_other_way(monkeypatch, M, K, N, given_out):
    """x (M, K) @ W (N, K)^T with more rows in W than in x is computed as (W @ x^T)^T (gemm.py
    rule 4): the same numbers as np.matmul, C-contiguous, into a given out too; with N <= M
    it is not swapped (and the swapped product is never swapped back)."""
    from minicnn.kernels.cpu import gemm

    swapped = []
    real = gemm._swapped
    monkeypatch.setattr(gemm, "_swapped", lambda *args: (swapped.append(1), real(*args))[1])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((N, K)).astype(np.float32)
    out = np.full((M, N), np.nan, np.float32) if given_out else None
    got = gemm.matmul(x, w, trans_b=True, out=out)
    np.testing.assert_allclose(got, x @ w.T, rtol=1e-5, atol=1e-4)
    assert got.flags.c_contiguous and got.shape == (M, N) and (out is None or got is out)
    assert swapped == ([1] if N > M else [])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20)
@given(g=geometries())
def test_serial_twins_equal_reference(dtype, path, g):
    """The serial twins (what a slice of a batch runs, kernels/cpu/_threads.py; what a small
    im2col runs) compute what the parallel kernels and the reference compute, bit for bit."""
    shape, args = _args(g)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    cols = ref_conv.im2col(x, args)
    im2col, col2im = ((numba_conv._im2col, numba_conv._col2im) if path == "rows" else
                      (numba_conv._im2col_gather, numba_conv._col2im_gather))
    got = np.full_like(cols, np.nan)                    # every entry must be written
    serial_twin(im2col)(x, got, args, False)
    np.testing.assert_array_equal(got, cols)
    dx = np.full_like(x, np.nan)
    serial_twin(col2im)(cols, dx, args, False)
    np.testing.assert_array_equal(dx, ref_conv.col2im(cols, args, *shape[2:]))


def test_short_rows_take_the_table_and_long_rows_the_row_copies(monkeypatch):
    """GATHER_BELOW decides by the output's row length, in im2col, col2im and their folded forms."""
    calls = []
    for name in ("_im2col", "_col2im", "_im2col_gather", "_col2im_gather"):
        monkeypatch.setattr(numba_conv, name, (lambda name: lambda *a: calls.append(name))(name))
    monkeypatch.setattr(numba_conv, "sized", lambda k, n: k)
    short, long_ = _geom(3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2), _geom(3, 3, 1, 1, 1, 1, 1, 1, 8, 8, 8, 8)
    for g, H in ((short, 2), (long_, 8)):
        x = np.zeros((2, 3, H, H), np.float32)
        numba_conv.im2col(x, g)
        numba_conv._folded_im2col(x, g)
        numba_conv.col2im(np.zeros((2, 27, H * H), np.float32), g, H, H)
        numba_conv._folded_col2im(np.zeros((27, 2 * H * H), np.float32), g, 2, H, H)
    assert calls == ["_im2col_gather"] * 2 + ["_col2im_gather"] * 2 + ["_im2col"] * 2 + ["_col2im"] * 2


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=20)
@given(g=geometries())
def test_folded_columns_are_the_columns_with_the_batch_inside(path, g):
    """Plan 3's layout: _folded_im2col writes row k of sample n at columns n*L .. n*L+L-1 of row
    k, and _folded_col2im reads it back: the reference's, bit for bit."""
    shape, args = _args(g)
    x = np.random.default_rng(1).standard_normal(shape)
    cols = ref_conv.im2col(x, args)                                   # (N, CKK, L)
    N, CKK, L = cols.shape
    with _path(path):
        folded = numba_conv._folded_im2col(x, args)
        np.testing.assert_array_equal(folded, cols.transpose(1, 0, 2).reshape(CKK, N * L))
        dx = numba_conv._folded_col2im(folded, args, N, *shape[2:])
    np.testing.assert_array_equal(dx, ref_conv.col2im(cols, args, *shape[2:]))


PLAN_CASES = [
    dict(x=(64, 6, 14, 14), w=(16, 6, 5, 5)),                             # LeNet-5's conv2
    dict(x=(64, 1, 28, 28), w=(6, 1, 5, 5), padding=2, needs=(False, True, True)),  # conv1: no dx
    dict(x=(33, 8, 48, 48), w=(16, 4, 3, 3), stride=2, groups=2, bias=False),  # odd batch
    dict(x=(64, 32, 16, 16), w=(32, 32, 1, 1)),                           # pointwise
    dict(x=(3, 16, 9, 10), w=(32, 8, 3, 3), padding=1, groups=2),         # Winograd's
    dict(x=(2, 3, 11, 9), w=(4, 3, 3, 2), stride=(2, 1), dilation=2),     # small: chunks
    dict(x=(8, 16, 5, 5), w=(120, 16, 5, 5)),                 # kernel = input (C5): no im2col
    dict(x=(5, 4, 3, 4), w=(6, 2, 3, 4), stride=2, groups=2),  # ... grouped, strided, chunks
    dict(x=(4, 4, 5, 5), w=(6, 4, 5, 5), padding=1),          # ... but padded: im2col runs
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PLAN_CASES)
@pytest.mark.parametrize("chunk_bytes", [None, 1, "no slices"], ids=["default", "one sample a chunk", "no slices"])
def test_cpu_conv_plan_equals_reference(monkeypatch, dtype, case, chunk_bytes):
    """kernels/cpu/conv.py's conv2d_forward/backward against the reference's, for every plan
    (Winograd, slices, folded, chunks; the slices' layers in chunks too), twice backward (kept
    columns, then recomputed)."""
    if chunk_bytes is not None:                 # the slices' layers go in chunks
        monkeypatch.setattr(numba_conv, "SLICES", False)
    if chunk_bytes == 1:
        monkeypatch.setattr(numba_conv.winograd, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = (rng.standard_normal(case["w"]) * 0.1).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype) if case.get("bias", True) else None
    kwargs = {k: case[k] for k in ("stride", "padding", "groups", "dilation") if k in case}
    geom = conv_geometry("conv2d", x.shape, w.shape, kwargs.get("stride", 1), kwargs.get("padding", 0),
                         kwargs.get("dilation", 1), kwargs.get("groups", 1))
    needs = case.get("needs", (True, True, b is not None))
    want_out, saved = ref_conv.conv2d_forward(x, w, b, geom)
    g = np.cos(np.arange(want_out.size, dtype=dtype)).reshape(want_out.shape)
    want = ref_conv.conv2d_backward(saved, g, needs)
    out, saved = numba_conv.conv2d_forward(x, w, b, geom)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want_out, **tol)
    for _ in range(2):
        got = numba_conv.conv2d_backward(saved, g, needs)
        for ref, mine in zip(want, got):
            if ref is None:
                assert mine is None
            else:
                assert mine.dtype == dtype
                np.testing.assert_allclose(mine, ref, **tol)


@pytest.mark.parametrize("layout", ["strided", "read-only"])
def test_slices_plan_takes_any_layout_of_input(layout):
    """The slices plan calls _slice through an address looked up per kind of argument
    (kernels/cpu/_address.py): a strided or read-only input and gradient are other kinds, compiled
    for and called as such, with the reference's answers."""
    rng = np.random.default_rng(2)
    big = rng.standard_normal((32, 6, 16, 16)).astype(np.float32)
    x = big[:, :, 1:-1, 1:-1] if layout == "strided" else big[:, :, 1:-1, 1:-1].copy()
    x.flags.writeable = layout == "strided"
    w = (rng.standard_normal((16, 6, 5, 5)) * 0.1).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, 0, 1, 1)
    want_out, ref_saved = ref_conv.conv2d_forward(x, w, b, geom)
    out, saved = numba_conv.conv2d_forward(x, w, b, geom)
    if numba_conv.gemm_for(x.dtype) is None or saved.plan != "slices":
        pytest.skip("the slices plan needs NumPy's 64-bit-integer OpenBLAS and BLAS threads")
    g = np.cos(np.arange(2 * out.size, dtype=x.dtype)).reshape(out.shape[0], -1, *out.shape[2:])[:, ::2]
    g.flags.writeable = layout == "strided"
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-4)
    for ref, mine in zip(ref_conv.conv2d_backward(ref_saved, g, (True, True, True)),
                         numba_conv.conv2d_backward(saved, g, (True, True, True))):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-4)


def test_call_at_runs_the_kernel_and_passes_its_errors_on():
    """call_at(address_of(k, args), args) is k(*args) inside a kernel, through the address:
    k's exception reaches the caller; arguments of another kind get another compilation."""
    @numba.njit
    def scale(a, k):
        if k < 0:
            raise ValueError("scale: k must be >= 0")
        for i in range(a.size):
            a[i] *= k

    @numba.njit
    def caller(at, a, k):
        call_at(at, (a, k))

    a = np.ones(3)
    at = address_of(scale, (a, 2.0))
    caller(at, a, 2.0)
    np.testing.assert_array_equal(a, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="k must be >= 0"):
        caller(at, a, -1.0)
    assert address_of(scale, (a, 3.0)) == at
    assert address_of(scale, (a[::2], 2.0)) != at
    assert address_of(scale, (a.astype(np.float32), 2.0)) != at


def test_cpu_conv_plan_choice(monkeypatch):
    """Which plan runs: Winograd for 3x3 stride-1 layers of >= WINOGRAD_MIN_CHANNELS channels per
    group with >= WINOGRAD_MIN_TILES output tiles in the batch; the batch folded into one product
    for small maps under many weights; slices for a batch of small products (where NumPy's
    OpenBLAS can be called from the kernel and BLAS has threads, and SLICES: Numba's threads
    sleep between kernels); chunks otherwise. WINOGRAD =
    False turns Winograd off."""
    from minicnn.kernels.cpu import _blas, _threads

    def plan(x_shape, w_shape, padding=0):
        x, w = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)
        geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding, 1, 1)
        return numba_conv.conv2d_forward(x, w, None, geom)[1].plan
    n = numba_conv.WINOGRAD_MIN_CHANNELS
    assert 2 * 16 < numba_conv.WINOGRAD_MIN_TILES <= 8 * 16     # the shapes below sit either side
    assert plan((8, n, 8, 8), (n, n, 3, 3), padding=1) == "winograd"         # 8 * 16 tiles
    assert plan((8, n - 1, 8, 8), (n, n - 1, 3, 3), padding=1) != "winograd"
    assert plan((2, 64, 8, 8), (64, 64, 3, 3), padding=1) == "folded"       # 32 tiles: too few
    assert plan((8, 512, 2, 2), (2048, 512, 1, 1)) == "folded"              # ResNet-50's last 1x1
    assert plan((1, 512, 2, 2), (2048, 512, 1, 1)) == "chunks"              # nothing to fold
    monkeypatch.setattr(numba_conv, "WINOGRAD", False)
    assert plan((8, n, 8, 8), (n, n, 3, 3), padding=1) == "chunks"          # 16 * 144 weights
    sliced = _threads.blas_threads_now() > 1 and _blas.gemm_for(np.float32) is not None
    assert plan((64, 6, 14, 14), (16, 6, 5, 5)) == ("slices" if sliced else "chunks")   # LeNet's conv2
    assert plan((64, 32, 16, 16), (32, 32, 1, 1)) == ("slices" if sliced else "chunks")  # no im2col
    assert plan((8, 6, 14, 14), (16, 6, 5, 5)) == "chunks"             # too few multiply-adds to cut
    monkeypatch.setattr(numba_conv, "SLICES", False)
    assert plan((64, 6, 14, 14), (16, 6, 5, 5)) == "chunks"


@pytest.mark.parametrize("G, R, S", [(1, 1, 1), (1, 33, 65), (2, 70, 31), (3, 64, 96)])
def test_weight_gradient_transposed_in_blocks(monkeypatch, G, R, S):
    """The chunk and slice plans' dW, summed as its transpose (G, Kg, Og), comes back as (O, Cg,
    kh, kw) through a blocked transpose: exactly the transpose, at sizes that are and are not
    multiples of its 32x32 blocks."""
    monkeypatch.setattr(numba_conv, "TRANSPOSE_IN_BLOCKS", 1)    # the kernel, not NumPy's copy
    dwt = np.random.default_rng(0).standard_normal((G, R, S)).astype(np.float32)
    got = numba_conv._as_weight(dwt, (G * S, R, 1, 1))
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got.reshape(G, S, R), dwt.transpose(0, 2, 1))


@pytest.mark.parametrize("shapes", [((3, 8, 5, 5), (70, 8, 3, 3), 1, 1), ((4, 12, 6, 6), (72, 6, 3, 3), 2, 2),
                                    ((5, 600, 2, 2), (8, 600, 1, 1), 1, 0)])
def test_cpu_folded_plan_equals_reference(monkeypatch, shapes):
    """The folded plan (the batch moved inside one product per group) gives the reference's
    output and gradients, with groups, padding and a 1x1 kernel; a second backward too (each
    rebuilds the columns)."""
    x_shape, w_shape, groups, padding = shapes
    monkeypatch.setattr(numba_conv, "FOLD_MIN_WEIGHTS", 1)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding, 1, groups)
    out, saved = numba_conv.conv2d_forward(x, w, b, geom)
    assert saved.plan == "folded"
    want, ref_saved = ref_conv.conv2d_forward(x, w, b, geom)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    want_grads = ref_conv.conv2d_backward(ref_saved, g, (True, True, True))
    for _ in range(2):   # each backward rebuilds the columns from x
        for got, ref in zip(numba_conv.conv2d_backward(saved, g, (True, True, True)), want_grads):
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_a_blas_thread_count_the_user_set_is_kept():
    """minicnn changes OpenBLAS's thread count around small products and slices, and puts back
    the count that was in force, not a default it looked up once."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from minicnn.kernels.cpu import _threads

    if _threads.openblas()[0] is None:
        pytest.skip("needs OpenBLAS")

    def counts():
        return {lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "openblas"}
    x = mc.Tensor(np.ones((64, 6, 14, 14), np.float32), requires_grad=True)
    w = mc.Tensor(np.ones((16, 6, 5, 5), np.float32), requires_grad=True)
    before = counts()
    with threadpool_limits(limits=1, user_api="blas"):
        F.conv2d(x, w).sum().backward()
        a = np.ones((8, 8), np.float32)
        from minicnn.kernels.cpu import gemm
        gemm.matmul(a, a)
        assert counts() == {1}
    assert counts() == before


def test_run_slices_from_two_threads_at_once():
    """While one thread's slices hold the helpers, another thread's run one after another in
    itself: every call still gets all its results, in order."""
    import threading
    import time

    from minicnn.kernels.cpu import _threads

    def fn(lo, hi):
        time.sleep(0.002)
        return (lo, hi, threading.get_ident())

    results, errors = {}, []

    def caller(k):
        try:
            for _ in range(20):
                got = _threads.run_slices(fn, [0, k, 2 * k, 3 * k])
                assert [r[:2] for r in got] == [(0, k), (k, 2 * k), (2 * k, 3 * k)]
            results[k] = True
        except BaseException as exc:   # reported below, in the test's thread
            errors.append(exc)
    threads = [threading.Thread(target=caller, args=(k,)) for k in (1, 5, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == [1, 5, 7]
    assert not _threads.serial()


def test_run_slices_waits_for_all_raises_the_error_and_restores_blas_threads():
    """A failing slice: the others still finish, the error comes out, BLAS's count is back."""
    import threading

    from threadpoolctl import threadpool_info

    from minicnn.kernels.cpu import _threads

    set_threads, default = _threads.openblas()[0], _threads.blas_threads_now()
    if set_threads is None or default <= 1:
        pytest.skip("needs OpenBLAS with more than one thread")
    finished, inside = [], []

    def fn(lo, hi):
        inside.append((_threads.serial(), threading.get_ident()))
        if lo == 0:
            raise ValueError("slice 0 failed")
        finished.append(lo)
        return lo
    with pytest.raises(ValueError, match="slice 0 failed"):
        _threads.run_slices(fn, [0, 5, 10])
    assert finished == [5]
    assert all(flag for flag, _ in inside) and len({t for _, t in inside}) == 2
    assert not _threads.serial()
    assert _threads.run_slices(lambda lo, hi: (lo, hi), [0, 3, 7]) == [(0, 3), (3, 7)]
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "openblas"]
    assert counts and all(n == default for n in counts)
