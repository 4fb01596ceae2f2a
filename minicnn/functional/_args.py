"""Argument helpers shared by the ops: ints and pairs of ints, checked with the op's name."""
import numpy as np


def is_int(v):
    """A Python or NumPy integer, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def pair(name, what, value):
    """An int or a pair of ints -> a pair of Python ints, or a ValueError naming `name`."""
    if is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}")


def positive_pair(name, what, value):
    """pair(...), each >= 1."""
    result = pair(name, what, value)
    if min(result) < 1:
        raise ValueError(f"{name}: {what} must be >= 1, got {value!r}")
    return result
