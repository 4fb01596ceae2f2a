"""MNIST: IDX parsing (plain and gzip), clear errors, verified download from a local server,
and the real files when they are present."""
import functools
import gzip
import hashlib
import http.server
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import MNIST
from minicnn.data import mnist as mnist_mod
from minicnn.data._idx import read_idx
from minicnn.data.download import DownloadError

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


# ---- IDX files written by hand, independent of the reader under test ----------------------------

def idx_bytes(array, type_code=0x08):
    """The IDX encoding of `array`: 0, 0, type, ndim, big-endian int32 sizes, big-endian data."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += b"".join(struct.pack(">i", s) for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, raw, gz=False):
    path = Path(str(path) + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_split(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def make_root(root, gz, n_train=7, n_test=3):
    """Four fake MNIST files in `root`; returns the raw bytes by name."""
    root.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = fake_split(n_train, 0)
    te_x, te_y = fake_split(n_test, 1)
    raws = {NAMES[0]: idx_bytes(tr_x), NAMES[1]: idx_bytes(tr_y),
            NAMES[2]: idx_bytes(te_x), NAMES[3]: idx_bytes(te_y)}
    for name, raw in raws.items():
        write(root / name, raw, gz)
    return raws, (tr_x, tr_y, te_x, te_y)


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzip(tmp_path, gz):
    _, (tr_x, tr_y, te_x, te_y) = make_root(tmp_path, gz)
    train, test = MNIST(root=tmp_path), MNIST(root=tmp_path, train=False)
    assert len(train) == 7 and len(test) == 3
    assert train.images.shape == (7, 1, 28, 28) and train.images.dtype == np.float32
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[:, 0], tr_x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(train.labels, tr_y)
    np.testing.assert_array_equal(test.images[:, 0] * 255, te_x.astype(np.float32))
    np.testing.assert_array_equal(test.labels, te_y)
    x, y = train[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and type(y) is int and y == tr_y[3]
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert train.classes == [str(d) for d in range(10)]


def test_transform_and_normalisation_constants(tmp_path):
    make_root(tmp_path, gz=True)
    seen = []
    ds = MNIST(root=tmp_path, transform=lambda im: seen.append(im.shape) or im * 2)
    x, _ = ds[0]
    assert seen == [(1, 28, 28)]
    np.testing.assert_array_equal(x, ds.images[0] * 2)
    assert MNIST.mean == (0.1307,) and MNIST.std == (0.3081,)


def test_truncated_file_names_file_and_sizes(tmp_path):
    raws, _ = make_root(tmp_path, gz=False)
    path = tmp_path / NAMES[0]
    path.write_bytes(raws[NAMES[0]][:-100])
    full = len(raws[NAMES[0]])
    with pytest.raises(ValueError, match=rf"{NAMES[0]} is truncated: shape \(7, 28, 28\) needs "
                                         rf"{full} bytes, got {full - 100}"):
        MNIST(root=tmp_path)


def test_truncated_gzip_stream(tmp_path):
    raws, _ = make_root(tmp_path, gz=True)
    gz_path = tmp_path / (NAMES[1] + ".gz")
    gz_path.write_bytes(gz_path.read_bytes()[:-12])  # cut inside the gzip trailer/stream
    with pytest.raises(ValueError, match=rf"{NAMES[1]}\.gz is not a complete gzip file"):
        MNIST(root=tmp_path)


def test_too_long_file(tmp_path):
    raws, _ = make_root(tmp_path, gz=False)
    (tmp_path / NAMES[1]).write_bytes(raws[NAMES[1]] + b"\x00\x00")
    with pytest.raises(ValueError, match=r"longer than its header says: shape \(7,\) needs 15 bytes, got 17"):
        MNIST(root=tmp_path)


def test_wrong_magic_number(tmp_path):
    raws, _ = make_root(tmp_path, gz=True)
    # swap: a labels file (magic 2049) where the images file (2051) should be
    write(tmp_path / NAMES[0], raws[NAMES[1]], gz=True)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz has magic number 2049, expected 2051"):
        MNIST(root=tmp_path)


def test_wrong_image_size_and_label_count(tmp_path):
    make_root(tmp_path, gz=False)
    write(tmp_path / NAMES[0], idx_bytes(np.zeros((7, 32, 32), np.uint8)))
    with pytest.raises(ValueError, match=r"images of shape \(N, 28, 28\), got \(7, 32, 32\)"):
        MNIST(root=tmp_path)
    make_root(tmp_path, gz=False)
    write(tmp_path / NAMES[1], idx_bytes(np.zeros(6, np.uint8)))
    with pytest.raises(ValueError, match=r"labels of shape \(6,\), expected \(7,\)"):
        MNIST(root=tmp_path)


def test_read_idx_other_types(tmp_path):
    for code, dtype in [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                        (0x0D, np.float32), (0x0E, np.float64)]:
        arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
        path = write(tmp_path / f"a{code}", idx_bytes(arr, code), gz=code % 2 == 0)
        out = read_idx(path)
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        np.testing.assert_array_equal(out, arr)
    bad = write(tmp_path / "bad", b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="does not start with a valid IDX header"):
        read_idx(bad)


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"could not find train-images-idx3-ubyte") as info:
        MNIST(root=tmp_path / "nowhere")
    msg = str(info.value)
    assert str(tmp_path / "nowhere") in msg and "MINICNN_DATA" in msg and "download=True" in msg
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match=r"\$MINICNN_DATA/mnist") as info:
        MNIST(train=False)
    assert str(tmp_path / "data" / "mnist") in str(info.value)


def test_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path))
    assert mnist_mod.default_root() == os.path.join(str(tmp_path), "mnist")
    make_root(tmp_path / "mnist", gz=True)
    assert len(MNIST()) == 7
    monkeypatch.delenv("MINICNN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist_mod.default_root() == os.path.join(str(tmp_path / "home"), ".cache", "minicnn", "mnist")


# ---- download against a local HTTP server --------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _fake_md5s(monkeypatch, raws):
    table = {name: hashlib.md5(raw).hexdigest() for name, raw in raws.items()}
    monkeypatch.setattr(mnist_mod, "MD5", table)


def test_download_tries_next_mirror(tmp_path, server, monkeypatch):
    url, www = server
    raws, (tr_x, tr_y, _, _) = make_root(www / "good", gz=True)
    _fake_md5s(monkeypatch, raws)
    root = tmp_path / "root"
    mirrors = [url + "missing/", url + "good/"]  # the first answers 404
    ds = MNIST(root=root, download=True, mirrors=mirrors)
    np.testing.assert_array_equal(ds.labels, tr_y)
    np.testing.assert_array_equal(ds.images[:, 0] * 255, tr_x.astype(np.float32))
    assert sorted(os.listdir(root)) == [NAMES[0] + ".gz", NAMES[1] + ".gz"]  # no temp files left
    # already there: no network needed
    assert len(MNIST(root=root, download=True, mirrors=[url + "missing/"])) == 7


def test_download_mirrors_from_environment(tmp_path, server, monkeypatch):
    url, www = server
    raws, _ = make_root(www / "good", gz=True)
    _fake_md5s(monkeypatch, raws)
    monkeypatch.setenv("MINICNN_MNIST_MIRRORS", f"{url}missing/, {url}good/")
    ds = MNIST(root=tmp_path / "root", train=False, download=True)
    assert len(ds) == 3


def test_download_rejects_md5_mismatch(tmp_path, server, monkeypatch):
    url, www = server
    raws, _ = make_root(www / "good", gz=True)
    _fake_md5s(monkeypatch, raws)
    corrupt = dict(raws)
    corrupt[NAMES[0]] = raws[NAMES[0]][:-1] + bytes([raws[NAMES[0]][-1] ^ 1])  # one bit flipped
    (www / "corrupt").mkdir()
    for name, raw in corrupt.items():
        write(www / "corrupt" / name, raw, gz=True)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match=r"md5 mismatch: expected [0-9a-f]{32}, got [0-9a-f]{32}"):
        MNIST(root=root, download=True, mirrors=[url + "corrupt/"])
    assert not root.exists() or not any(p.name.startswith(NAMES[0]) for p in root.iterdir())
    # a corrupt first mirror, then a good one: the good copy is used
    ds = MNIST(root=root, download=True, mirrors=[url + "corrupt/", url + "good/"])
    assert len(ds) == 7


def test_download_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod, "MD5", {n: "0" * 32 for n in NAMES})
    closed = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused
    with pytest.raises(DownloadError, match="could not download train-images-idx3-ubyte.gz from any mirror") as info:
        MNIST(root=tmp_path / "r", download=True, mirrors=[closed])
    msg = str(info.value)
    assert closed + "train-images-idx3-ubyte.gz" in msg
    assert "offline" in msg and "MINICNN_DATA" in msg and str(tmp_path / "r") in msg


# ---- the real files, when present ------------------------------------------------------------------

CANONICAL = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _real_root():
    base = os.environ.get("MINICNN_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    root = Path(base) / "mnist"
    ok = all((root / n).is_file() or (root / (n + ".gz")).is_file() for n in NAMES)
    return root if ok else None


@pytest.mark.skipif(_real_root() is None, reason="the real MNIST files are not present "
                    "($MINICNN_DATA/mnist or ../shared/data/mnist); this environment has no copy")
def test_real_mnist_files():
    root = _real_root()
    assert mnist_mod.MD5 == CANONICAL
    for name, md5 in CANONICAL.items():
        path = root / name if (root / name).is_file() else root / (name + ".gz")
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        assert hashlib.md5(raw).hexdigest() == md5, name
    train, test = MNIST(root=root), MNIST(root=root, train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(train.labels).tolist()[:2] == [5923, 6742]
    assert abs(float(train.images.mean()) - 0.1307) < 1e-3
    assert abs(float(train.images.std()) - 0.3081) < 1e-3
