"""The CPU version of the "optim" family: NumPy's compiled loops (and BLAS) are already what a
Numba loop would be, so this re-exports kernels/reference/optim.py unchanged."""
from ..reference.optim import *  # noqa: F401,F403
from ..reference.optim import __doc__ as _spec  # noqa: F401
