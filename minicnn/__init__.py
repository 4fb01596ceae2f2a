"""minicnn: a from-scratch NumPy/Numba framework for learning and teaching CNNs.

    import minicnn as mc
    import minicnn.functional as F
    from minicnn import nn, optim, models, data
"""
import importlib

import numpy as np

from ._grad_mode import enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .kernels import use_kernels
from .random import get_rng, manual_seed
from .tensor import Function, Tensor
from . import functional, nn, optim  # noqa: E402,F401
from .serialization import CheckpointError, load, save  # noqa: E402
from .weights import load_safetensors, save_safetensors  # noqa: E402

__version__ = "0.1.0"


def tensor(data, requires_grad=False, dtype=None):
    """The same as `Tensor(data, requires_grad, dtype)`."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def ones(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def randn(*shape, rng=None, dtype=np.float32, requires_grad=False):
    """Standard normal samples from `rng` (a numpy Generator) or the global seeded one."""
    rng = get_rng() if rng is None else rng
    return Tensor(rng.standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad, dtype=dtype)


_LAZY = ("models", "data", "train", "metrics", "viz", "testing", "cli", "finetune")


def __getattr__(name):
    # the heavier parts (matplotlib, datasets) load on first use, keeping `import minicnn` fast
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")
