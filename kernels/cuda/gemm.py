"""Matrix products on the GPU: a tiled shared-memory GEMM (numba.cuda), the same function and
signature as kernels/reference/gemm.py. conv2d, conv1d, linear and `@` use it on "cuda".

Legend
    a (..., M, K), b (..., K, N) -> out (..., M, N); with trans_a, a holds (..., K, M) and is read
    transposed (trans_b: b holds (..., N, K)): no transposed copy is made.
    Batch axes are flattened to one batch index z. An operand with fewer batch entries Bx than
    the output's B (B a multiple of Bx: NumPy broadcasting of a trailing part of the batch
    shape, e.g. conv's (G, Og, Kg) weight against (n, G, Kg, L) columns) is read at z % Bx.

        out[z, i, j] = sum_k A[z % Ba, i, k] * B[z % Bb, k, j]

Thread-to-data mapping (TILE = 16)
    grid (ceil(N / TILE), ceil(M / TILE), batch), block (TILE, TILE): thread (tx, ty) of block
    (bx, by, z) computes out[z, by*TILE + ty, bx*TILE + tx]. The K axis is walked in tiles:
    each step the block's 256 threads copy one TILE x TILE tile of A and one of B into shared
    memory (one element each, 0 past the edges), syncthreads, then every thread does TILE
    multiply-adds from shared memory, syncthreads again before the next tiles overwrite them.
    Each element of A and B is read from global memory N/TILE (M/TILE) times instead of N (M)
    times. Shared memory: 2 * TILE * TILE * itemsize = 2 KiB (float32) or 4 KiB (float64).
    float32 and float64 get one kernel each (the shared arrays' type is fixed at compile time).
"""
import numpy as np
from numba import cuda, float32, float64

from ._launch import empty

TILE = 16


def _make_gemm(nbtype):
    @cuda.jit
    def gemm(a, b, out, trans_a, trans_b, zero):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        z = cuda.blockIdx.z
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        M, N = out.shape[1], out.shape[2]
        K = a.shape[1] if trans_a else a.shape[2]
        za = z % a.shape[0]
        zb = z % b.shape[0]
        sa = cuda.shared.array((TILE, TILE), nbtype)
        sb = cuda.shared.array((TILE, TILE), nbtype)
        acc = zero
        for k0 in range(0, K, TILE):
            ka = k0 + tx                       # this thread loads A[row, ka] and B[kb, col]
            kb = k0 + ty
            if row < M and ka < K:
                sa[ty, tx] = a[za, ka, row] if trans_a else a[za, row, ka]
            else:
                sa[ty, tx] = 0
            if kb < K and col < N:
                sb[ty, tx] = b[zb, col, kb] if trans_b else b[zb, kb, col]
            else:
                sb[ty, tx] = 0
            cuda.syncthreads()
            for k in range(TILE):
                acc += sa[ty, k] * sb[k, tx]
            cuda.syncthreads()
        if row < M and col < N:
            out[z, row, col] = acc
    return gemm


_KERNELS = {np.dtype(np.float32): _make_gemm(float32), np.dtype(np.float64): _make_gemm(float64)}


def _batch(shape, out_batch):
    """Batch entries of an operand, checking it broadcasts by the `z % Bx` rule."""
    shape = tuple(int(n) for n in shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    if shape and tuple(out_batch[len(out_batch) - len(shape):]) != shape:
        raise NotImplementedError(f"gemm.matmul (cuda): batch shape {shape} broadcasts against "
                                  f"{tuple(out_batch)} in a way this kernel does not support")
    return int(np.prod(shape, dtype=np.int64))


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"gemm.matmul: expected operands with at least 2 dimensions, got {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"gemm.matmul: operands have dtypes {a.dtype} and {b.dtype}")
    sa, sb = tuple(a.shape), tuple(b.shape)   # plain tuples: the simulator's shapes refuse [-1]
    M, Ka = (sa[-1], sa[-2]) if trans_a else (sa[-2], sa[-1])
    Kb, N = (sb[-1], sb[-2]) if trans_b else (sb[-2], sb[-1])
    if Ka != Kb:
        raise ValueError(f"gemm.matmul: inner sizes differ: {Ka} (from {a.shape}) and {Kb} (from {b.shape})")
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    Ba, Bb = _batch(sa[:-2], batch), _batch(sb[:-2], batch)
    B = int(np.prod(batch, dtype=np.int64))
    shape = tuple(batch) + (M, N)
    if out is None:
        out = empty(shape, a.dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"gemm.matmul: out has shape {tuple(out.shape)}, the product has shape {shape}")
    if out.size == 0:
        return out
    a3 = a.reshape(Ba, sa[-2], sa[-1])
    b3 = b.reshape(Bb, sb[-2], sb[-1])
    grid = ((N + TILE - 1) // TILE, (M + TILE - 1) // TILE, B)
    _KERNELS[np.dtype(a.dtype)][grid, (TILE, TILE)](a3, b3, out.reshape(B, M, N), bool(trans_a),
                                                    bool(trans_b), a.dtype.type(0))
    return out
