"""The CPU version of the "index" family: NumPy's compiled copies are already what a Numba loop
would be, so this re-exports kernels/reference/index.py unchanged."""
from ..reference.index import *  # noqa: F401,F403
from ..reference.index import __doc__ as _spec  # noqa: F401
