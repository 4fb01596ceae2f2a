"""The three kernel sets (kernels/reference, kernels/cpu, kernels/cuda) expose, family by family,
the same public functions with the same parameters, so the three files can be diffed side by
side and an op can call whichever `lookup` hands it (DESIGN.md, "The three versions of every hot
loop").

What counts as a family's public function, in each set's module for the family F:
    a name without a leading underscore, bound to a Python function (or to a Numba dispatcher or
    CUDA kernel, read through the Python function it compiles; not a class) that was written in
    one of the three F files: kernels/reference/F.py, kernels/cpu/F.py or kernels/cuda/F.py.
So a cpu file that re-exports the reference function (no hot loop to compile) exposes it; a
helper imported from a private module (_jit.py, _launch.py, _threads.py, ...), from another
family, from NumPy or from Numba (prange, njit, float32) is not part of the family's API.

Parameters are compared by name, kind and order, defaults included.
"""
import importlib
import inspect
import pkgutil

import pytest

import minicnn.kernels.reference

FAMILIES = sorted(m.name for m in pkgutil.iter_modules(minicnn.kernels.reference.__path__)
                  if not m.name.startswith("_"))


def _cuda_importable():
    try:
        from numba import cuda
    except ImportError:
        return False
    return cuda.is_available()  # a GPU, or the simulator (conftest.py sets NUMBA_ENABLE_CUDASIM)


SETS = ("reference", "cpu", "cuda") if _cuda_importable() else ("reference", "cpu")


def _python_function(obj):
    """The plain Python function behind obj: a Numba CPU dispatcher or CUDA kernel keeps it as
    .py_func (the CUDA simulator's kernel as .fn); None when obj is not a function at all."""
    for attr in ("py_func", "fn"):
        inner = getattr(obj, attr, None)
        if inspect.isfunction(inner):
            return inner
    return obj if inspect.isfunction(obj) else None


def public_functions(set_name, family):
    """{name: Python function} of the family's public API in one kernel set (rule above)."""
    module = importlib.import_module(f"minicnn.kernels.{set_name}.{family}")
    homes = {f"minicnn.kernels.{s}.{family}" for s in ("reference", "cpu", "cuda")}
    found = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.isclass(obj):
            continue
        fn = _python_function(obj)
        if fn is not None and fn.__module__ in homes:
            found[name] = fn
    return found


def _parameters(fn):
    """'(a, b, out=None)': names, kinds, order and defaults; annotations left out."""
    sig = inspect.signature(fn)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def test_every_set_has_the_same_family_files():
    for set_name in SETS:
        package = importlib.import_module(f"minicnn.kernels.{set_name}")
        families = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
        assert families == FAMILIES, f"kernels/{set_name} has families {families}, kernels/reference has {FAMILIES}"


@pytest.mark.parametrize("family", FAMILIES)
def test_same_public_functions_and_parameters(family):
    apis = {s: public_functions(s, family) for s in SETS}
    problems = []
    every = sorted(set().union(*apis.values()))
    for s in SETS:
        missing = [n for n in every if n not in apis[s]]
        if missing:
            problems.append(f"kernels/{s}/{family}.py lacks {', '.join(missing)}")
    for name in every:
        sigs = {s: _parameters(apis[s][name]) for s in SETS if name in apis[s]}
        if len(set(sigs.values())) > 1:
            problems.append(f"{name} differs: " + "; ".join(f"{s}{p}" for s, p in sigs.items()))
    assert not problems, f"family {family!r}:\n  " + "\n  ".join(problems)
