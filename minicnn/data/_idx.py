"""Reading IDX files, the simple binary format MNIST comes in.

An IDX file is a header followed by the raw array, row-major, big-endian:

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    then        D sizes, each a big-endian int32
    then        prod(sizes) elements

Read as one big-endian int32, the first four bytes are the "magic number": 2051 (0x00000803) for
MNIST's image files (uint8, 3 dims: count, rows, columns) and 2049 (0x00000801) for its label
files (uint8, 1 dim: count).

Files may be gzip-compressed (name ends in `.gz`); the check is always on the uncompressed bytes.
"""
import gzip
import os
import zlib

import numpy as np

IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_bytes(path):
    """The file's content, uncompressed when the name ends in `.gz`."""
    path = os.fspath(path)
    if not path.endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # a cut-off or damaged gzip stream
        raise ValueError(f"read_idx: {path} is not a complete gzip file ({exc}); "
                         f"delete it and copy or download it again") from exc


def parse_idx(raw, name="<bytes>", expected_magic=None):
    """The array stored in the IDX bytes `raw`; `name` is used in error messages.

    Checks the magic number (when `expected_magic` is given), the element type and that the file
    holds exactly prod(sizes) elements: a truncated (or padded) file is an error, not a short array.
    """
    if len(raw) < 4:
        raise ValueError(f"read_idx: {name} is too short to be an IDX file: "
                         f"expected at least 4 header bytes, got {len(raw)}")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"read_idx: {name} has magic number {magic}, expected {expected_magic} "
                         f"(is it the right file, and uncompressed or named .gz?)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"read_idx: {name} does not start with a valid IDX header "
                         f"(magic number {magic} = 0x{magic:08x})")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {name} is truncated: expected a {header}-byte header, "
                         f"got {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"read_idx: {name} is {what}: shape {shape} needs {expected} bytes, "
                         f"got {len(raw)}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def read_idx(path, expected_magic=None):
    """The array in the IDX file at `path` (`.gz` or plain); see the module docstring."""
    return parse_idx(read_bytes(path), os.fspath(path), expected_magic)
