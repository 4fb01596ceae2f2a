"""`mc.save(obj, path)` and `mc.load(path)`: checkpoints as plain `.npz` files, never pickle.

`obj` is a state dict (name -> array) or a nested structure of dicts, lists and tuples whose
leaves are arrays (or Tensors, saved as arrays), ints, floats, strings, bools and None, e.g.

    mc.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.npz")

The file holds every array under its path ("model/conv1.weight", "optimizer/state/0/exp_avg")
plus one entry, `__minicnn__`, a JSON text describing the structure and holding the other values.
It loads with `np.load(path, allow_pickle=False)`, so loading a file cannot run code.

Writes are atomic: the data goes to a temporary file in the same folder, is flushed and fsync'ed,
and only then renamed over `path` (os.replace). A crash mid-write leaves the old file intact.
"""
import json
import os
import tempfile

import numpy as np

from .device import array_device
from .tensor import Tensor

STRUCTURE_KEY = "__minicnn__"
FORMAT = "minicnn-checkpoint-1"


def _encode(obj, path, arrays):
    """A JSON-able description of `obj`; its arrays go into `arrays` under unique keys."""
    where = "/".join(path) or "<root>"
    if isinstance(obj, Tensor):
        obj = obj.numpy()
    elif array_device(obj) == "cuda":
        obj = np.asarray(obj.copy_to_host())
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"save: the array at {where!r} has dtype {obj.dtype}, which can only be stored "
                            f"with pickle; minicnn.save refuses pickle (store numbers or strings instead)")
        key = "/".join(path) or "array"
        if not key.isprintable() or not key.isascii():
            key = f"array{len(arrays)}"  # zip member names cannot hold NUL and friends faithfully
        while key in arrays or key == STRUCTURE_KEY:   # keys with '/' in them could collide
            key += "_"
        arrays[key] = obj
        return {"array": key}
    if obj is None or isinstance(obj, (bool, str)):
        return {"value": obj}
    if isinstance(obj, np.generic):          # numpy scalars become Python numbers
        return _encode(obj.item(), path, arrays)
    if isinstance(obj, int):
        return {"value": int(obj)}
    if isinstance(obj, float):
        return {"value": float(obj)}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, path + (str(i),), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, np.integer):
                k = int(k)
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be strings or ints, got {k!r} at {where!r}")
            items.append([k, _encode(v, path + (str(k),), arrays)])
        return {"dict": items}
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {where!r}; expected "
                    f"arrays, Tensors, numbers, strings, bools, None, or dicts/lists/tuples of them")


def _decode(node, arrays):
    if "array" in node:
        return arrays[node["array"]]
    if "value" in node:
        return node["value"]
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    if "dict" in node:
        return {k: _decode(v, arrays) for k, v in node["dict"]}
    raise ValueError(f"load: unknown entry {node!r} in the checkpoint's structure")


def save(obj, path):
    """Write `obj` (a state dict or a nested structure of them, see the module docstring) to
    `path` as an `.npz` file, atomically. The file name is used exactly as given."""
    arrays = {}
    structure = _encode(obj, (), arrays)      # all type checks happen before any file is touched
    arrays[STRUCTURE_KEY] = np.array(json.dumps({"format": FORMAT, "root": structure}))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path):
    """Read a file written by `save` (arrays come back as NumPy arrays with their dtypes; tuples,
    ints, dict keys that were ints, etc. as they were). A plain `.npz` without minicnn's structure
    entry loads as a dict name -> array. Never unpickles anything."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if STRUCTURE_KEY not in arrays:
        return arrays
    meta = json.loads(str(arrays.pop(STRUCTURE_KEY)))
    if meta.get("format") != FORMAT:
        raise ValueError(f"load: {path!r} has checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    return _decode(meta["root"], arrays)
