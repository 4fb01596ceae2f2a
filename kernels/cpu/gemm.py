"""The CPU version of the "gemm" family: NumPy's compiled loops (and BLAS) are already what a
Numba loop would be, so this re-exports kernels/reference/gemm.py unchanged."""
from ..reference.gemm import *  # noqa: F401,F403
from ..reference.gemm import __doc__ as _spec  # noqa: F401
