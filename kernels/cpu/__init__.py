"""The Numba CPU kernels: the same functions as kernels/reference/, compiled with @njit.

Loading them also lets malloc keep large freed buffers for reuse (see _memory.py): without it,
every batch's big arrays fault in their pages afresh, which costs as much as computing them.
"""
from ._memory import keep_large_buffers

MALLOC_TUNED = keep_large_buffers()
