"""Dropout masks on the GPU (numba.cuda): the same functions and signatures as
kernels/reference/dropout.py (inverted dropout: mask = [u >= p] / (1 - p)).

Randomness stays OUT of the kernels: the op draws u from the global NumPy generator (seeded by
`mc.manual_seed`) and hands it in; a host array u is copied to the device here. So a seed gives
the same masks on the CPU and on the GPU, and the tests compare the two bit for bit.

Shapes
    x, out    any shape (dropout), (N, C, S) for dropout2d
    u, mask   x's shape (dropout); (N, C) for dropout2d, one draw per channel plane

Thread-to-data mapping: one thread per element of x (flat index); dropout2d's thread reads the
mask of its plane (n, c) = divmod(i // S, C).
"""
from numba import cuda

from ._launch import THREADS, blocks, empty, flat, on_device, scalar


@cuda.jit
def _mask_kernel(u, p, scale, mask):
    i = cuda.grid(1)
    if i < u.size:
        mask[i] = scale if u[i] >= p else 0


@cuda.jit
def _mul_kernel(x, mask, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] * mask[i]


@cuda.jit
def _mul_plane_kernel(x, mask, S, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] * mask[i // S]       # (n, c) plane i // S of the flat (N*C, S) layout


def dropout_mask(u, p, dtype):
    u = on_device(u)
    mask = empty(u.shape, dtype)
    if mask.size:
        _mask_kernel[blocks(u.size), THREADS](flat(u), scalar(p, u.dtype), scalar(1 / (1 - p), dtype),
                                              flat(mask))
    return mask


def _times(x, mask):
    out = empty(x.shape, x.dtype)
    if x.size:
        _mul_kernel[blocks(x.size), THREADS](flat(x), flat(mask), flat(out))
    return out


def _times_plane(x, mask):
    out = empty(x.shape, x.dtype)
    if x.size:
        _mul_plane_kernel[blocks(x.size), THREADS](flat(x), flat(mask), x.shape[2], flat(out))
    return out


def dropout_forward(x, u, p):
    mask = dropout_mask(u, p, x.dtype)
    return _times(x, mask), mask


def dropout_backward(grad_out, mask):
    return _times(grad_out, mask)


def dropout2d_forward(x, u, p):
    mask = dropout_mask(u, p, x.dtype)
    return _times_plane(x, mask), mask


def dropout2d_backward(grad_out, mask):
    return _times_plane(grad_out, mask)
