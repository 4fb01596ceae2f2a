"""NumPy's own OpenBLAS GEMM, callable from inside a Numba kernel.

    gemm_for(dtype) -> the C function cblas_?gemm (ctypes), or None when it cannot be found

A kernel takes the function as an argument and calls it like any other (Numba compiles a call
through the pointer it is given, so the on-disk cache stays valid from one run to the next):

    gemm(ROW_MAJOR, NO_TRANS | TRANS, NO_TRANS | TRANS, M, N, K,
         alpha, A.ctypes.data, lda, B.ctypes.data, ldb, beta, C.ctypes.data, ldc)
    C (M, N) = alpha * op(A) @ op(B) + beta * C,  op(A) (M, K), op(B) (K, N), row-major

Why: a batch of small products (LeNet's) is fastest cut into one slice per core; done from
Python threads, every slice hands the GIL back and forth between its steps, and each hand-over
waits for the waiting thread to be woken. One Numba kernel call per slice that runs its
im2col, GEMMs and col2im without the GIL avoids all of that (kernels/cpu/conv.py, plan 2).

Only the 64-bit-integer interface that NumPy's wheels ship (scipy-openblas64: symbols ending in
64_) is used, so the integer arguments are int64 everywhere. With another BLAS (MKL, Accelerate,
a 32-bit-integer OpenBLAS) gemm_for returns None and the callers keep their NumPy path.
"""
import ctypes

import numpy as np

from ._threads import openblas_libraries

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

_SYMBOLS = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "cblas_sgemm64_", ctypes.c_float),
            np.dtype(np.float64): ("scipy_cblas_dgemm64_", "cblas_dgemm64_", ctypes.c_double)}
_found = {}


def gemm_for(dtype):
    """cblas_sgemm / cblas_dgemm (64-bit integers) of NumPy's OpenBLAS for this dtype, or None."""
    dtype = np.dtype(dtype)
    if dtype not in _SYMBOLS:
        return None
    if dtype not in _found:
        _found[dtype] = _load(*_SYMBOLS[dtype])
    return _found[dtype]


def _load(name, alias, real):
    """The first loaded OpenBLAS that exports `name` (or `alias`), with its argument types set."""
    for library in openblas_libraries():
        try:
            lib = ctypes.CDLL(library.filepath)
        except OSError:
            continue
        fn = getattr(lib, name, None) or getattr(lib, alias, None)
        if fn is not None:
            return _declare(fn, real)
    return None


def _declare(fn, real):
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    # order, trans_a, trans_b (C enums: int), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    fn.argtypes = [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
    fn.restype = None
    return fn
