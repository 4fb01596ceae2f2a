"""One seeded NumPy Generator shared by initialisation, dropout and shuffling.

`mc.manual_seed(s)` makes all three repeatable; code that wants randomness calls `get_rng()`.
"""
import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Reseed the global generator (and return it)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng():
    return _rng


def get_state():
    """The generator's state, a dict of plain values (checkpoints store it)."""
    return _rng.bit_generator.state


def set_state(state):
    _rng.bit_generator.state = state
