"""Matrix products: the NumPy specification of the tiled shared-memory SGEMM in
kernels/cuda/gemm.py.

Legend
    a (..., M, K), b (..., K, N) -> out (..., M, N), batch axes broadcast as np.matmul does
    trans_a: a holds (..., K, M) and is read transposed (trans_b likewise: b holds (..., N, K)),
             so no transposed copy is ever made
    out      optional output array of the result's shape

    out[..., i, j] = sum_k A[..., i, k] * B[..., k, j]
"""
import numpy as np


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    A = np.swapaxes(a, -1, -2) if trans_a else a
    B = np.swapaxes(b, -1, -2) if trans_b else b
    return np.matmul(A, B, out=out)

