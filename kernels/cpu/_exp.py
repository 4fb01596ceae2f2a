"""e^v and e^v - 1 for v <= 0, in arithmetic the compiler can vectorise (Numba helpers).

Used by activation.py (sigmoid, tanh, elu) and loss.py (softmax, log-sum-exp, cross-entropy).

Why not `math.exp`: it compiles to a call into the C maths library, one element at a time, and a
loop with such a call cannot use SIMD registers (tanh and the fused cross-entropy were several
times slower than PyTorch's that way; figures: benchmarks/results/cpu_measurements.md). Every
exponential those kernels need has an argument v <= 0 (e^-|x|, e^(x - max), ...), and for v <= 0
a short range reduction and a Taylor polynomial suffice:

    e^v = 2^-j * e^r,   j = round(-v / ln 2),   r = v + j ln 2   (|r| <= ln2 / 2)
    e^r - 1 = r + r^2/2! + ... + r^13/13!       (Taylor: < 1 ulp of float64 on that range;
                                                 float32 stops at r^7/7!)

2^-j is put together from its bits (exponent field and mantissa). Everything runs in the
argument's type: float32 in, float32 arithmetic (twice the SIMD lanes of float64; sigmoid within
2.5 ulp of exact). NaN in -> NaN out. Arguments > 0 are NOT supported (2^-j only for j >= 0):
callers make sure.

Numba's cache does not notice edits to this file: a cached kernel in activation.py or loss.py
keeps the helper it was compiled with (the cache is keyed on the kernel's own source file). After
changing anything here, delete the callers' cache files, kernels/cpu/__pycache__/activation.*
and loss.* (touching activation.py and loss.py is not enough while another process that imported
the old helper can still compile and save them).
"""
import math

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from ._jit import kernel

_INV_LN2 = 1.4426950408889634
_LN2_HI = 0.693145751953125              # ln 2 split in two: HI has 12 significant bits, so
_LN2_LO = 1.4286068203094173e-06         # j * HI is exact in float32 and float64 (j < 2^11)
_LOWEST = -745.2                         # e^v rounds to 0 in float64 below this
_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, 0, -1))  # 1/13!, ..., 1/2!, 1/1!
_TAYLOR32 = _TAYLOR[-7:]                 # 1/7!, ..., 1/1!: r^8/8! < 0.1 ulp of float32


def _pow2_neg(j, v):
    """2^-j in the type of v; a stand-in: Numba compiles the overload below."""
    raise NotImplementedError("only callable from Numba-compiled code")


def _taylor(v):
    """The Taylor coefficients that the type of v needs; Numba compiles the overload below."""
    raise NotImplementedError("only callable from Numba-compiled code")


# Chosen once per type, when a kernel compiles. 2^-j is built from its bits rather than read from
# a table: a table read inside a vectorised loop is a gather, which on the AMD VM cost most of a
# sigmoid (figures: benchmarks/results/cpu_measurements.md).
@overload(_pow2_neg)
def _pow2_neg_for_type(j, v):
    if v == types.float32:
        return _pow2_neg_bits(np.int32, 8, 23)
    return _pow2_neg_bits(np.int64, 11, 52)


def _pow2_neg_bits(int_type, exponent_bits, mantissa_bits):
    """2^-j of the float with these fields, exactly: a normal number (biased exponent bias - j,
    mantissa 0) for j < bias, then a subnormal (one mantissa bit), then 0 (2^-j underflows)."""
    bias = (1 << (exponent_bits - 1)) - 1              # 127, 1023
    last = bias - 1 + mantissa_bits                    # 149, 1074: the smallest subnormal's j

    def pow2_neg(j, v):
        normal = (bias - min(j, bias - 1)) << mantissa_bits
        subnormal = 1 << (last - min(max(j, bias), last))
        bits = normal if j < bias else (subnormal if j <= last else 0)
        return _as_float(int_type(bits))               # (Numba computes small ints as int64)
    return pow2_neg


@intrinsic
def _as_float(typingctx, bits):
    """The float whose bit pattern is `bits`: int32 -> float32, int64 -> float64."""
    if bits not in (types.int32, types.int64):
        return None
    real = types.float32 if bits == types.int32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(real))
    return real(bits), codegen


@overload(_taylor)
def _taylor_for_type(v):
    if v == types.float32:
        return lambda v: _TAYLOR32
    return lambda v: _TAYLOR


@kernel(parallel=False)
def exp_split(v):
    """For v <= 0 (or NaN): (s, q) with e^v = s * (1 + q), s = 2^-j exactly, q = e^r - 1.
    Computed in v's own type T: float32 data gets float32 arithmetic, twice the SIMD lanes."""
    T = type(v)
    if v < T(_LOWEST):                   # also -inf; NaN fails the test and stays NaN
        v = T(_LOWEST)
    j = T(math.floor(-v * T(_INV_LN2) + T(0.5)))
    if j != j:                           # NaN: any j will do; q carries the NaN
        j = T(0)
    r = (v + j * T(_LN2_HI)) + j * T(_LN2_LO)
    q = T(0)
    for c in _taylor(v):                 # Horner: q = r (1 + r (1/2 + r (1/6 + ...)))
        q = (q + T(c)) * r
    return _pow2_neg(int(j), v), q


@kernel(parallel=False)
def exp_nonpos(v):
    """e^v for v <= 0."""
    s, q = exp_split(v)
    return s + s * q


@kernel(parallel=False)
def expm1_nonpos(v):
    """e^v - 1 for v <= 0, accurate also near 0 (where j = 0 and it is just q)."""
    s, q = exp_split(v)
    return s * q + (s - type(v)(1))
