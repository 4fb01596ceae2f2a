"""Helpers shared by the CUDA kernel files (not kernels themselves).

    THREADS      threads per block for the one-thread-per-output kernels (a multiple of 32)
    blocks(n)    how many blocks cover n threads: ceil(n / THREADS); every kernel checks
                 `if i < n` because the last block sticks out past the data
    empty, zeros device arrays (numba.cuda.device_array); zeros launches a fill kernel
    on_device(a) a host array (a dropout draw, integer targets) copied over; device arrays
                 pass through untouched
    flat(a)      a contiguous array seen as 1-D, for the elementwise kernels
"""
import numpy as np
from numba import cuda

THREADS = 128


def blocks(n, threads=None):
    threads = THREADS if threads is None else threads
    return max(1, (int(n) + threads - 1) // threads)


def is_device(a):
    return hasattr(a, "copy_to_host") and not isinstance(a, np.ndarray)


def on_device(a):
    if is_device(a):
        return a
    a = np.asarray(a)  # a 0-d array stays 0-d (ascontiguousarray would make it (1,))
    return cuda.to_device(a if a.flags.c_contiguous else np.ascontiguousarray(a))


def empty(shape, dtype):
    return cuda.device_array(tuple(int(s) for s in shape), dtype=np.dtype(dtype))


@cuda.jit
def _fill_kernel(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


def full(shape, value, dtype):
    out = empty(shape, dtype)
    if out.size:
        _fill_kernel[blocks(out.size), THREADS](flat(out), np.dtype(dtype).type(value))
    return out


def zeros(shape, dtype):
    return full(shape, 0, dtype)


def flat(a):
    if not a.is_c_contiguous():
        raise ValueError(f"cuda kernels: expected a C-contiguous device array, got strides {a.strides}")
    return a.reshape(a.size) if a.ndim != 1 else a


def scalar(value, dtype):
    """A Python number in the data's precision (numba then compiles float32 arithmetic)."""
    return np.dtype(dtype).type(value)
