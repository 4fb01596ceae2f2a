"""Indexing: `t[idx]` as a gather through flat offsets, and its backward as a scatter.

The specification of kernels/cuda/index.py (kernels/cpu/index.py re-exports it: NumPy's fancy
indexing is already a compiled loop). The op turns any index (slices, integers, None, Ellipsis,
integer arrays) into `src` on the host: geometry only, the data is never read there.

Legend
    x       the indexed array, any shape, read flat (C order): size = x.size elements
    src     int64, the RESULT's shape: src[i] = the flat offset in x of result element i
    g       the gradient of the result (src's shape)

    take:         out[i]   = x_flat[src[i]]
    scatter:      grad[j]  = g[i] where src[i] == j, else 0     (src has no repeats: basic slicing)
    scatter_add:  grad[j]  = sum over every i with src[i] == j of g[i]
                                               (integer arrays may repeat an index: it gets each share)
The backward kernels return grad flat, (size,); the op reshapes it to x's shape.
"""
import numpy as np


def take(x, src):
    return np.asarray(x.reshape(-1)[src])


def scatter(g, src, size):
    grad = np.zeros(size, dtype=g.dtype)
    grad[src.reshape(-1)] = g.reshape(-1)
    return grad


def scatter_add(g, src, size):
    grad = np.zeros(size, dtype=g.dtype)
    np.add.at(grad, src.reshape(-1), g.reshape(-1))  # add.at, not +=: a repeated index adds twice
    return grad
