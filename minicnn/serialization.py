"""`mc.save(obj, path)` and `mc.load(path)`: checkpoints as plain `.npz` files, never pickle.

`obj` is a state dict (name -> array) or a nested structure of dicts, lists and tuples whose
leaves are arrays (or Tensors, saved as arrays), ints, floats, strings, bools and None, e.g.

    mc.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.npz")

The file holds every array under its path ("model/conv1.weight", "optimizer/state/0/exp_avg")
plus one entry, `__minicnn__`, a JSON text describing the structure and holding the other values.
It loads with `np.load(path, allow_pickle=False)`; `mc.load` reads it itself and never unpickles,
so loading a file cannot run code, and a damaged or foreign file raises `CheckpointError`.

Writes are atomic: the data goes to a temporary file in the same folder, is flushed and fsync'ed,
and only then renamed over `path` (os.replace). A crash mid-write leaves the old file intact.
"""
import errno
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib

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


def save(obj, path):
    """Write `obj` (a state dict or a nested structure of them, see the module docstring) to
    `path` as an `.npz` file, atomically. The file name is used exactly as given."""
    arrays = {}
    structure = _encode(obj, (), arrays)      # all type checks happen before any file is touched
    arrays[STRUCTURE_KEY] = np.array(json.dumps({"format": FORMAT, "root": structure}))
    write_atomic(path, lambda f: np.savez(f, **arrays), "save")


def write_atomic(path, write, caller):
    """Create or replace the file at `path` atomically: `write(f)` fills a temporary file in the
    same folder, which is flushed, fsync'ed and renamed over `path` (os.replace); a crash
    mid-write leaves the old file intact. OSErrors name `path` (not the temporary file) and start
    with `caller`, the public function's name (`save`, `save_safetensors`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"{caller}: cannot write {path}: its folder {folder} "
                                              f"does not exist")
    try:
        _write_temp_then_rename(write, path, folder)
    except OSError as exc:  # name the user's path, not the temporary file's
        raise _naming(exc, f"{caller}: cannot write {path}") from exc
    _fsync_folder(folder)


def _write_temp_then_rename(write, path, folder):
    """`write(f)` into a temporary file in `folder`, fsync'ed, then renamed over `path`."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _naming(exc, what):
    """An OSError of the same kind as `exc` whose message starts with `what` (which names the
    file): OSError(errno, text) picks the subclass (FileNotFoundError, PermissionError, ...)."""
    if exc.errno is None:
        return OSError(f"{what}: {exc}")
    return OSError(exc.errno, f"{what}: {exc.strerror}")


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


# ---- loading ------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """`mc.load` found a file it cannot trust: not a minicnn/.npz file, truncated or damaged, or
    describing a structure it does not hold. The message names the file."""


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive with members / an empty one
_CHUNK = 1 << 22                              # bytes read at a time from a zip member

# What the zip and .npy readers raise on bytes they cannot parse. Reading a damaged file can only
# fail with one of these; each becomes a CheckpointError naming the file.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError,
            NotImplementedError, RuntimeError, OverflowError, OSError, struct.error,
            *((zipfile.lzma.LZMAError,) if getattr(zipfile, "lzma", None) else ()))


def load(path):
    """Read a file written by `save` (arrays come back as NumPy arrays with their dtypes; tuples,
    ints, dict keys that were ints, etc. as they were). A plain `.npz` without minicnn's structure
    entry loads as a dict name -> array. Never unpickles anything.

    A missing or unreadable file raises the OSError `open` raises (FileNotFoundError, ...); a file
    that is not a minicnn/.npz file, is truncated or damaged raises `CheckpointError` (a
    ValueError) naming the file. Nothing is returned unless the whole file was read."""
    path = os.fspath(path)
    arrays = _read_arrays(path)
    if STRUCTURE_KEY not in arrays:
        return arrays
    root = _structure(arrays.pop(STRUCTURE_KEY), path)
    try:
        return _decode(root, arrays, path)
    except RecursionError:
        raise CheckpointError(f"load: {path} is damaged: its structure is nested too deeply") from None


def _read_arrays(path):
    """name -> array for every member of the .npz (zip) archive at `path`."""
    with open(path, "rb") as f:   # a missing or unreadable file: open's own error, naming it
        head = f.read(4)
        if head not in ZIP_MAGIC:
            raise CheckpointError(f"load: {path} is not a minicnn file (a checkpoint is an .npz, "
                                  f"i.e. zip, archive; this file starts with {head!r})")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as archive:
                return {_member_name(info, path): _read_member(archive, info, path)
                        for info in archive.infolist()}
        except CheckpointError:
            raise
        except _DAMAGED as exc:
            raise CheckpointError(f"load: {path} is truncated or damaged ({type(exc).__name__}: "
                                  f"{exc})") from exc


def _member_name(info, path):
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"load: {path} is not a minicnn file: it holds {info.filename!r}, "
                              f"which is not a NumPy array (.npy)")
    return info.filename[:-len(".npy")]


def _read_member(archive, info, path):
    """One .npy member as an array. The size its header promises is checked against the member's
    size before any memory is taken, so a damaged header cannot ask for terabytes."""
    fmt = np.lib.format
    with archive.open(info) as f:
        version = fmt.read_magic(f)
        name = info.filename[:-len(".npy")]
        if version not in ((1, 0), (2, 0)):
            raise CheckpointError(f"load: {path} holds {name!r} in .npy format {version}, which "
                                  f"minicnn does not read (1.0 and 2.0 only)")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if dtype.hasobject:
            raise CheckpointError(f"load: {path} holds {name!r} as pickled Python objects; mc.load "
                                  f"never unpickles (allow_pickle=False): unpickling can run code")
        nbytes = math.prod(shape) * dtype.itemsize
        held = info.file_size - f.tell()
        if held != nbytes:
            raise CheckpointError(f"load: {path} is truncated or damaged: the array {name!r} of "
                                  f"shape {shape} needs {nbytes} bytes, the file holds {held}")
        data = _read_exactly(f, nbytes)
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array if array.flags.aligned else array.copy()


def _read_exactly(f, nbytes):
    """`nbytes` bytes of `f` in a writable buffer, read in chunks (no second full-size copy)."""
    data = bytearray(nbytes)
    view, done = memoryview(data), 0
    while done < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - done))
        if not chunk:
            raise EOFError(f"the data ends after {done} of {nbytes} bytes")
        view[done:done + len(chunk)] = chunk
        done += len(chunk)
    return data


def _structure(entry, path):
    """The root node of the structure entry (a JSON text in a 0-d string array)."""
    if entry.dtype.kind != "U" or entry.ndim != 0:
        raise CheckpointError(f"load: {path} is damaged: its {STRUCTURE_KEY!r} entry is not a text")
    try:
        meta = json.loads(str(entry))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"load: {path} is damaged: its structure is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or "root" not in meta:
        raise CheckpointError(f"load: {path} is damaged: its structure has no root")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} has checkpoint format {meta.get('format')!r}, "
                              f"this minicnn reads {FORMAT!r}")
    return meta["root"]


_SCALARS = (type(None), bool, int, float, str)


def _decode(node, arrays, path):
    """The object a structure node describes; every node is checked, since the file may lie."""
    if not isinstance(node, dict) or len(node) != 1:
        raise CheckpointError(f"load: {path} is damaged: unexpected structure entry {str(node)[:80]}")
    (kind, value), = node.items()
    if kind == "array":
        if not isinstance(value, str) or value not in arrays:
            raise CheckpointError(f"load: {path} is damaged: it refers to an array {value!r} it "
                                  f"does not contain")
        return arrays[value]
    if kind == "value" and isinstance(value, _SCALARS):
        return value
    if kind in ("list", "tuple") and isinstance(value, list):
        items = [_decode(v, arrays, path) for v in value]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(value, list) and all(_is_item(kv) for kv in value):
        return {k: _decode(v, arrays, path) for k, v in value}
    raise CheckpointError(f"load: {path} is damaged: unexpected structure entry {str(node)[:80]}")


def _is_item(pair):
    """A dict entry as `save` writes it: [key (str or int), node]."""
    return (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
            and not isinstance(pair[0], bool))
