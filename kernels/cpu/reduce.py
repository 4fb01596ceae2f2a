"""The CPU version of the "reduce" family: NumPy's compiled loops (and BLAS) are already what a
Numba loop would be, so this re-exports kernels/reference/reduce.py unchanged."""
from ..reference.reduce import *  # noqa: F401,F403
from ..reference.reduce import __doc__ as _spec  # noqa: F401
