"""e^v and e^v - 1 for v <= 0, in arithmetic the compiler can vectorise (Numba helpers).

Used by activation.py (sigmoid, tanh, elu) and loss.py (softmax, log-sum-exp, cross-entropy).

Why not `math.exp`: it compiles to a call into the C maths library, one element at a time, and a
loop with such a call cannot use SIMD registers (tanh was 8x slower than PyTorch that way; the
fused cross-entropy 2.9x). Every exponential those kernels need has an argument v <= 0 (e^-|x|,
e^(x - max), ...), and for v <= 0 a short range reduction and a Taylor polynomial suffice:

    e^v = 2^-j * e^r,   j = round(-v / ln 2),   r = v + j ln 2   (|r| <= ln2 / 2)
    e^r - 1 = r + r^2/2! + ... + r^13/13!       (Taylor: < 1 ulp of float64 on that range)

2^-j comes from a table; the sums run in float64 and the caller rounds once to the data's dtype.
NaN in -> NaN out. Arguments > 0 are NOT supported (the table has no 2^+j): callers make sure.

Numba's cache does not notice edits to this file: a cached kernel in activation.py or loss.py
keeps the helper it was compiled with (the cache is keyed on the kernel's own source file). After
changing anything here, delete kernels/cpu/__pycache__ (or touch activation.py and loss.py).
"""
import math

import numpy as np

from ._jit import kernel

_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # ln 2 split in two (fdlibm): j * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_LOWEST = -745.2                         # e^v rounds to 0 in float64 below this
_POW2_NEG = 2.0 ** -np.arange(1077.0)    # 2^-j for j = 0 ... 1076 (the last ones are 0)
_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, 0, -1))  # 1/13!, ..., 1/2!, 1/1!


@kernel(parallel=False)
def exp_split(v):
    """For v <= 0 (or NaN): (s, q) with e^v = s * (1 + q), s = 2^-j exactly, q = e^r - 1."""
    if v < _LOWEST:                      # also -inf; NaN fails the test and stays NaN
        v = _LOWEST
    j = math.floor(-v * _INV_LN2 + 0.5)
    if j != j:                           # NaN: any valid table index; q carries the NaN
        j = 0.0
    r = (v + j * _LN2_HI) + j * _LN2_LO
    q = 0.0
    for c in _TAYLOR:                    # Horner: q = r (1 + r (1/2 + r (1/6 + ...)))
        q = (q + c) * r
    return _POW2_NEG[int(j)], q


@kernel(parallel=False)
def exp_nonpos(v):
    """e^v for v <= 0."""
    s, q = exp_split(v)
    return s + s * q


@kernel(parallel=False)
def expm1_nonpos(v):
    """e^v - 1 for v <= 0, accurate also near 0 (where j = 0 and it is just q)."""
    s, q = exp_split(v)
    return s * q + (s - 1.0)
