"""Weights in and out: safetensors files, and loading a weight file into a model.

    sd = mc.load_safetensors("resnet34.safetensors")        # name -> numpy array
    mc.save_safetensors(model.state_dict(), "mine.safetensors", metadata={"epochs": "3"})
    model = models.resnet34(num_classes=2, weights="resnet34.safetensors")   # see load_weights

A .safetensors file is 8 bytes (N, the header's length, little-endian), N bytes of JSON
    {"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [0, 37632]}, ...,
     "__metadata__": {"format": "pt"}}
and then the raw arrays back to back. Reading one runs no code, unlike a PyTorch `.pth` file (a
pickle, which can run anything when loaded): minicnn reads published weights only as safetensors
and never unpickles. The `safetensors` package (the `weights` extra) reads and writes the format;
this module adds what minicnn promises on top: errors that name the file, 16-bit floats cast to
float32, and atomic writes.

A torchvision `.pth` becomes a safetensors file with PyTorch (the `bench` extra), once:
    import torchvision
    from safetensors.torch import save_file
    save_file(torchvision.models.resnet34(weights="IMAGENET1K_V1").state_dict(), "resnet34.safetensors")
"""
import json
import os
import struct
import warnings
import zipfile
from collections import namedtuple

import numpy as np

from .serialization import CheckpointError, ZIP_MAGIC, write_atomic
from .tensor import Tensor

INSTALL_HINT = "pip install 'minicnn[weights]' (or pip install safetensors)"
PICKLE_MAGIC = b"\x80"          # pickle protocol 2 and later start with the PROTO opcode
HALF_DTYPES = ("F16", "BF16")   # cast to float32 on load, with a warning


def _safetensors():
    try:
        import safetensors
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(f"minicnn reads and writes .safetensors files with the safetensors "
                          f"package, which is not installed: {INSTALL_HINT}") from exc
    return safetensors


# ---- reading ------------------------------------------------------------------------------------
def load_safetensors(path):
    """The arrays of the safetensors file at `path`: dict name -> NumPy array, in the file's order.

    float16 and bfloat16 arrays are cast to float32 (minicnn computes in float32), with a warning
    naming how many; other dtypes keep theirs (int64 `num_batches_tracked` stays int64). A missing
    file raises FileNotFoundError; a file that is not safetensors (damaged, truncated, a PyTorch
    pickle or zip renamed `.safetensors`) raises `mc.CheckpointError` naming the file and what it
    looks like instead. Never unpickles anything."""
    path = os.fspath(path)
    _refuse_other_formats(path)
    safetensors = _safetensors()
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            kinds = {name: f.get_slice(name).get_dtype() for name in f.keys()}
            unsupported = {k: d for k, d in kinds.items() if d not in _NUMPY_DTYPES + HALF_DTYPES}
            if unsupported:
                listed = ", ".join(f"{k} ({d})" for k, d in list(unsupported.items())[:5])
                raise CheckpointError(f"load_safetensors: {path} holds tensors of a dtype minicnn "
                                      f"cannot compute with: {listed}; expected float, int or bool")
            arrays = {name: (f.get_tensor(name) if kind != "BF16" else None)
                      for name, kind in kinds.items()}
    except safetensors.SafetensorError as exc:
        raise CheckpointError(f"load_safetensors: {path} is not a valid safetensors file, or is "
                              f"truncated or damaged ({exc})") from exc
    for name in [k for k, kind in kinds.items() if kind == "BF16"]:
        arrays[name] = _read_bfloat16(path, name)
    halves = [k for k, kind in kinds.items() if kind in HALF_DTYPES]
    for name in halves:
        arrays[name] = arrays[name].astype(np.float32)
    if halves:
        warnings.warn(f"load_safetensors: {path}: cast {len(halves)} float16/bfloat16 tensor(s) to "
                      f"float32 (e.g. {halves[0]!r})", stacklevel=2)
    return arrays


# the safetensors dtypes NumPy holds as they are
_NUMPY_DTYPES = ("F64", "F32", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL")


def safetensors_metadata(path):
    """The file's `__metadata__` (a dict of strings; {} when it has none)."""
    path = os.fspath(path)
    _refuse_other_formats(path)
    safetensors = _safetensors()
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            return dict(f.metadata() or {})
    except safetensors.SafetensorError as exc:
        raise CheckpointError(f"safetensors_metadata: {path} is not a valid safetensors file "
                              f"({exc})") from exc


def _refuse_other_formats(path):
    """A clear CheckpointError for the files people mistake for safetensors: PyTorch's zip
    `.pth`/`.pt`, a minicnn/NumPy `.npz` (zip as well), a bare pickle, a short file. A
    safetensors file starts with its header's length (8 bytes) and then the JSON's `{`."""
    with open(path, "rb") as f:   # a missing file: open's own FileNotFoundError, naming it
        head = f.read(9)
    if head[8:9] == b"{":
        return                    # looks right; the safetensors package checks the rest
    if head[:4] in ZIP_MAGIC:
        kind = _zip_kind(path)
        raise CheckpointError(f"load_safetensors: {path} is not a safetensors file but {kind}")
    if head[:1] == PICKLE_MAGIC:
        raise CheckpointError(
            f"load_safetensors: {path} is not a safetensors file but a Python pickle (an old PyTorch "
            f".pth/.pt file?). minicnn never unpickles (loading a pickle can run any code); convert "
            f"it once with PyTorch: safetensors.torch.save_file(torch.load(path), "
            f"'weights.safetensors')")
    raise CheckpointError(f"load_safetensors: {path} is not a safetensors file: it does not start "
                          f"with a header length and a JSON header (its first bytes: {head!r})")


def _zip_kind(path):
    """What a zip archive is, for the error message."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return "a damaged zip archive"
    if any(n.endswith("data.pkl") for n in names):
        return ("a PyTorch .pth/.pt file (a zip holding a pickle). minicnn never unpickles; convert "
                "it once with PyTorch: safetensors.torch.save_file(torch.load(path), "
                "'weights.safetensors')")
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive (a minicnn checkpoint?): read it with mc.load"
    return "a zip archive"


def _read_bfloat16(path, name):
    """A bfloat16 array as float32. bfloat16 is the top half of a float32 (sign, 8 exponent
    bits, 7 mantissa bits), so shifting its 16 bits up by 16 gives the float32 exactly. NumPy has
    no bfloat16, so the bytes are read here, where the header (already checked by the
    safetensors package) says they are."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        entry = json.loads(f.read(n))[name]
        begin, end = entry["data_offsets"]
        f.seek(8 + n + begin)
        raw = np.frombuffer(f.read(end - begin), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


# ---- writing ------------------------------------------------------------------------------------
def save_safetensors(state_dict, path, metadata=None):
    """Write `state_dict` (name -> array or Tensor; a Module is taken as its `state_dict()`) to
    `path` as safetensors, atomically. `metadata`: a dict of strings stored in the header.

    Arrays keep their dtype (float32 weights, int64 `num_batches_tracked`), so a minicnn model's
    file loads into PyTorch with `safetensors.torch.load_file` and `load_state_dict` under
    torchvision's names. Everything is checked before the file is touched."""
    safetensors = _safetensors()
    if hasattr(state_dict, "state_dict") and callable(state_dict.state_dict):
        state_dict = state_dict.state_dict()
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save_safetensors: expected a dict name -> array (or a Module), got "
                        f"{type(state_dict).__name__}")
    arrays = {name: _as_plain_array(name, value) for name, value in state_dict.items()}
    metadata = _checked_metadata(metadata)
    data = safetensors.numpy.save(arrays, metadata=metadata)
    write_atomic(path, lambda f: f.write(data), "save_safetensors")


def _as_plain_array(name, value):
    """`value` as a C-contiguous little-endian NumPy array of numbers or bools."""
    if not isinstance(name, str) or name == "__metadata__":
        raise TypeError(f"save_safetensors: names must be strings other than '__metadata__', got "
                        f"{name!r}")
    array = value.numpy() if isinstance(value, Tensor) else value
    if not isinstance(array, (np.ndarray, np.generic)):
        raise TypeError(f"save_safetensors: {name!r} is a {type(value).__name__}, expected a NumPy "
                        f"array or a Tensor")
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"save_safetensors: {name!r} has dtype {array.dtype}; safetensors stores "
                        f"numbers and bools only")
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)   # keeps 0-d shapes


def _checked_metadata(metadata):
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TypeError(f"save_safetensors: metadata must be a dict of strings to strings, got "
                        f"{metadata!r}")
    return dict(metadata)


# ---- into a model -------------------------------------------------------------------------------
LoadedWeights = namedtuple("LoadedWeights", ["missing_keys", "unexpected_keys", "new_head_keys"])


def read_weights(path):
    """name -> array from a weight file: safetensors, or a minicnn `.npz` (a state dict saved
    with `mc.save`, or a training checkpoint, whose "model" entry is used)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) in ZIP_MAGIC
    if not is_zip:
        return load_safetensors(path)
    from .serialization import load
    try:
        state = load(path)
    except CheckpointError:
        return load_safetensors(path)   # its error says what kind of zip this is (e.g. a .pth)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"read_weights: {path} is a minicnn file but not a state dict or a "
                              f"training checkpoint")
    return state


def load_weights(model, path, strict=True):
    """Load the weight file at `path` (see `read_weights`) into `model`, as a fine-tuner expects:

    - the head: when the file's classifier head has another number of classes than the model's
      (`model.head_names`, e.g. ("fc",) for ResNets), every other weight is loaded and the
      model keeps its new, randomly initialised head; a warning says so;
    - optional parts (`model.optional_names`, e.g. GoogLeNet's aux classifiers): the file's are
      dropped when the model has none, and the model's keep their initialisation (with a
      warning) when the file has none;
    - everything else follows `load_state_dict(strict=strict)`: a missing, unexpected or
      mis-shaped key raises StateDictError, whose message starts with the file's path.
    Returns (missing_keys, unexpected_keys, new_head_keys)."""
    from .nn.module import StateDictError
    state = dict(read_weights(path))
    own = model.state_dict()
    name = type(model).__name__
    notes = []
    optional = tuple(n + "." for n in getattr(model, "optional_names", ()))
    for key in [k for k in state if k.startswith(optional) and k not in own]:
        del state[key]                                      # e.g. aux classifiers the model lacks
    absent = [k for k in own if k.startswith(optional) and k not in state]
    if absent:
        notes.append(f"{path} has no {', '.join(sorted({k.split('.')[0] for k in absent}))}: "
                     f"kept their random initialisation")
    heads = tuple(n + "." for n in getattr(model, "head_names", ()))
    new_head = [k for k in own if k.startswith(heads) and k in state
                and np.shape(state[k]) != own[k].shape]
    if new_head:
        shapes = ", ".join(f"{k} {tuple(np.shape(state[k]))} -> {own[k].shape}" for k in new_head)
        notes.append(f"the head of {path} does not fit this model's number of classes ({shapes}): "
                     f"loaded everything else and kept a new, randomly initialised head")
    for key in new_head + absent:
        state[key] = own[key]                               # keep the model's own values
    try:
        result = model.load_state_dict(state, strict=strict)
    except StateDictError as exc:
        raise StateDictError(f"{path}: these weights do not fit {name}: {exc}") from exc
    for note in notes:
        warnings.warn(f"{name}: {note}", stacklevel=2)
    return LoadedWeights(result.missing_keys, result.unexpected_keys, new_head)
