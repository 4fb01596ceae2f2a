"""Fetching data files over HTTP(S) with the standard library, verified by md5.

`fetch_verified(filename, mirrors, dest_dir, md5)` tries each mirror in turn
(`mirror + filename`), checks the md5 of the UNCOMPRESSED bytes (so a re-compressed copy of the
same data is accepted), and writes the file atomically: to a temporary file in the destination
folder first, then `os.replace`, so an interrupted download never leaves a half-written file
under the real name.
"""
import gzip
import hashlib
import os
import sys
import tempfile
import urllib.request
import zlib


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected md5."""


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def uncompressed(data, filename):
    """`data` gunzipped when `filename` ends in `.gz`, else `data` itself."""
    if not filename.endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not a valid gzip file ({exc})") from exc


def write_atomic(path, data):
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def fetch_verified(filename, mirrors, dest_dir, md5, timeout=30.0, hint=""):
    """Download `filename` from the first mirror that serves it with the right md5.

    `mirrors` are base URLs (`"https://host/path/"`); the file's URL is `mirror + filename`.
    `md5` is the hex digest of the uncompressed content. Returns the path written. Raises
    `DownloadError` listing what went wrong at every mirror, followed by `hint`.
    """
    failures = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += filename
        try:
            print(f"minicnn: downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
            got = md5_hex(uncompressed(data, filename))
            if got != md5:
                raise ValueError(f"md5 mismatch: expected {md5}, got {got}")
        except Exception as exc:  # network errors, HTTP errors, bad gzip, wrong md5: try the next
            failures.append(f"  {url}: {exc}")
            continue
        path = os.path.join(dest_dir, filename)
        write_atomic(path, data)
        return path
    tried = "\n".join(failures) if failures else "  (no mirrors given)"
    raise DownloadError(f"could not download {filename} from any mirror:\n{tried}\n{hint}".rstrip())
