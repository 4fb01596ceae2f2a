"""The hot loops, three times over with one signature each:

    reference/  readable NumPy: the specification a student reads first
    cpu/        Numba @njit(parallel=True, cache=True) versions of the same functions
    cuda/       numba.cuda versions on device arrays

Ops never import these directly: they call `lookup(family, device)`, which picks the module from
the array's device and the `use_kernels` setting. Installed as `minicnn.kernels`.

Each family exposes the same public functions with the same parameters in all three sets
(tests/test_kernel_sets.py), so `diff kernels/reference/pool.py kernels/cpu/pool.py` reads as
"the same loop, another way". Convolution's geometry travels as one ConvGeometry (geometry.py).

Process-wide effects. `import minicnn` changes nothing outside itself; these happen the first
time a kernel set is used (lookup imports it then), each for a reason measured on the machines
this project runs on (benchmarks/results/cpu_measurements.md):
    cpu/__init__.py  glibc's malloc keeps large freed buffers (mallopt), so the next batch's
                     arrays do not page-fault afresh (_memory.py; MINICNN_MALLOC_TUNING=0: off)
    cpu/_jit.py      GOMP_SPINCOUNT=30000 unless the user set it or OMP_WAIT_POLICY: Numba's
                     idle threads spin ~0.5 ms between kernels, then sleep
    cpu/_threads.py  OpenBLAS's thread count is lowered around small products and batch slices,
                     and the count in force before (the user's own, if set) is put back
    cuda/_launch.py  in Numba's CUDA simulator only: cuda.shared.array gets a lock (the
                     simulator could hand two threads of one block two different arrays)
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
    if folder != "cuda" and family in _swapped:  # a stand-in from `swap` (coursework)
        return _swapped[family]
    module = _loaded.get((folder, family))
    if module is None:  # first use: import it (ops call lookup thousands of times a second)
        module = _loaded[folder, family] = _import(folder, family)
    return module


_loaded = {}
_swapped = {}  # family -> the object `swap` put in place of the CPU kernels of that family


class swap:
    """Run the CPU kernels of `family` from `module` instead, inside a `with` block.

    `module` is anything with the family's functions as attributes (the same names and
    signatures as kernels/reference/<family>.py). minicnn.grading.student_kernels uses it to run
    a whole network on a student's own kernels; the GPU kernels are never swapped.
    """

    def __init__(self, family, module):
        self.family, self.module = family, module

    def __enter__(self):
        self._prev = _swapped.get(self.family)
        _swapped[self.family] = self.module
        return self.module

    def __exit__(self, *exc):
        if self._prev is None:
            _swapped.pop(self.family, None)
        else:
            _swapped[self.family] = self._prev
        return False


def _import(folder, family):
    try:
        return importlib.import_module(f"{__name__}.{folder}.{family}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{folder}.{family}":
            raise
        raise NotImplementedError(f"no {folder} kernels for {family!r} (looked for {exc.name})") from None
