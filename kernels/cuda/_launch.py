"""Helpers shared by the CUDA kernel files (not kernels themselves).

    THREADS      threads per block for the one-thread-per-output kernels (a multiple of 32)
    blocks(n)    how many blocks cover n threads: ceil(n / THREADS); every kernel checks
                 `if i < n` because the last block sticks out past the data
    empty, zeros device arrays (numba.cuda.device_array); zeros launches a fill kernel
    on_device(a) a host array (a dropout draw, integer targets) copied over; device arrays
                 pass through untouched
    flat(a)      a contiguous array seen as 1-D, for the elementwise kernels
"""
import sys
import threading

import numpy as np
from numba import cuda

THREADS = 128


def _lock_simulator_shared_arrays():
    """In Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) every thread of a block calls
    cuda.shared.array, and the first call of the block creates the array: the simulator looks it
    up by the caller's file and line, finds none and stores a new one, without a lock
    (numba-cuda 0.30, FakeCUDAShared.array). Two threads could both create one and reduce into
    different arrays: CI once saw batch_norm_stats return a wrong mean for one channel, not
    reproducible. Here the lookup and the creation run under one lock. A real GPU is not
    affected; without the simulator this does nothing."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        return
    from numba.core import types
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support
    if getattr(FakeCUDAShared.array, "locked_by_minicnn", False) or not hasattr(FakeCUDAShared(0), "_allocations"):
        return  # done already, or a simulator that keeps its arrays some other way
    unlocked, lock = FakeCUDAShared.array, threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory, or the simulator's error
            return unlocked(self, shape, dtype, alignment)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)   # the simulator's key
        with lock:
            found = self._allocations.get(caller)
            if found is None:
                dtype = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
                found = self._allocations[caller] = np.empty(shape, dtype)
        return found

    array.locked_by_minicnn = True
    FakeCUDAShared.array = array


_lock_simulator_shared_arrays()


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
