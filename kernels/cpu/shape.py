"""The CPU version of the "shape" family: NumPy's compiled copies are already what a Numba loop
would be, so this re-exports kernels/reference/shape.py unchanged."""
from ..reference.shape import *  # noqa: F401,F403
from ..reference.shape import __doc__ as _spec  # noqa: F401
