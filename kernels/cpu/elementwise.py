"""The CPU version of the "elementwise" family: NumPy's compiled loops (and BLAS) are already what a
Numba loop would be, so this re-exports kernels/reference/elementwise.py unchanged."""
from ..reference.elementwise import *  # noqa: F401,F403
from ..reference.elementwise import __doc__ as _spec  # noqa: F401
