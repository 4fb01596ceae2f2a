"""The hot loops, three times over with one signature each:

    reference/  readable NumPy: the specification a student reads first
    cpu/        Numba @njit(parallel=True, cache=True) versions of the same functions
    cuda/       numba.cuda versions on device arrays

Ops never import these directly: they call `lookup(family, device)`, which picks the module from
the array's device and the `use_kernels` setting. Installed as `minicnn.kernels`.
"""
import importlib

from minicnn.device import array_device

_CPU_CHOICES = {"reference": "reference", "numba": "cpu"}
_current = "numba"


def current():
    """The CPU kernel set in use: "reference" or "numba"."""
    return _current


class use_kernels:
    """Choose the CPU kernels: `mc.use_kernels("reference")` as a call or a `with` block."""

    def __init__(self, name):
        global _current
        if name not in _CPU_CHOICES:
            raise ValueError(f"use_kernels: expected one of {sorted(_CPU_CHOICES)}, got {name!r}")
        self._prev, _current = _current, name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _current
        _current = self._prev
        return False


def lookup(family, device="cpu"):
    """The kernel module for `family` ("conv", "pool", ...) on `device`, e.g. kernels.cpu.conv.

    `device` is "cpu", "cuda", or an array whose device decides.
    """
    if not isinstance(device, str):
        device = array_device(device)
    folder = "cuda" if device == "cuda" else _CPU_CHOICES[_current]
    module = _loaded.get((folder, family))
    if module is None:  # first use: import it (ops call lookup thousands of times a second)
        module = _loaded[folder, family] = _import(folder, family)
    return module


_loaded = {}


def _import(folder, family):
    try:
        return importlib.import_module(f"{__name__}.{folder}.{family}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{folder}.{family}":
            raise
        raise NotImplementedError(f"no {folder} kernels for {family!r} (looked for {exc.name})") from None
