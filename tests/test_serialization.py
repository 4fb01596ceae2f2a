"""mc.save / mc.load: npz without pickle, nested structures, dtypes, atomic writes."""
import os
import zipfile

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn, optim
from minicnn import serialization


def test_state_dict_round_trip_keeps_names_order_values_and_dtypes(tmp_path):
    mc.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    sd = net.state_dict()
    mc.save(sd, tmp_path / "net.npz")
    back = mc.load(tmp_path / "net.npz")
    assert list(back) == list(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype and back[k].shape == sd[k].shape
        np.testing.assert_array_equal(back[k], sd[k])
    assert back["1.num_batches_tracked"].dtype == np.int64
    net2 = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    net2.load_state_dict(back)
    np.testing.assert_array_equal(net2[0].weight.data, net[0].weight.data)


def test_nested_checkpoint_round_trip(tmp_path):
    obj = {
        "model": {"conv1.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "fc.bias": np.array([1.5, -2.5], dtype=np.float64),
                  "bn.num_batches_tracked": np.array(7, dtype=np.int64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2, np.float32)}},
                      "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "amsgrad": False, "params": [0, 1]}]},
        "epoch": 3, "best_acc": 0.875, "name": "alexnet", "note": None, "flags": [True, False],
        "rng": {"bit_generator": "PCG64", "state": {"state": 2 ** 100 + 1, "inc": 12345}},
        "mask": np.array([True, False]), "uint8": np.arange(3, dtype=np.uint8),
    }
    mc.save(obj, tmp_path / "ck.npz")
    back = mc.load(tmp_path / "ck.npz")
    assert back.keys() == obj.keys()
    assert back["epoch"] == 3 and back["best_acc"] == 0.875 and back["name"] == "alexnet"
    assert back["note"] is None and back["flags"] == [True, False]
    assert back["rng"] == obj["rng"]                                   # big ints survive (JSON)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)   # tuples stay tuples
    assert isinstance(back["optimizer"]["param_groups"][0]["params"], list)
    assert list(back["optimizer"]["state"]) == [0]                     # int keys stay ints
    assert back["optimizer"]["state"][0]["step"] == 3
    for path in (("model", "conv1.weight"), ("model", "fc.bias"), ("model", "bn.num_batches_tracked"),
                 ("mask",), ("uint8",)):
        a, b = obj, back
        for key in path:
            a, b = a[key], b[key]
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_the_file_is_a_plain_npz_that_loads_without_pickle(tmp_path):
    mc.save({"model": {"w": np.ones(2, np.float32)}, "epoch": 1}, tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as data:
        assert set(data.files) == {"model/w", serialization.STRUCTURE_KEY}
        np.testing.assert_array_equal(data["model/w"], [1, 1])


def test_rng_state_round_trip_resumes_the_generator(tmp_path):
    mc.manual_seed(42)
    mc.get_rng().standard_normal(5)
    mc.save({"rng": mc.random.get_state()}, tmp_path / "r.npz")
    expected = mc.get_rng().standard_normal(3)
    mc.manual_seed(0)
    mc.random.set_state(mc.load(tmp_path / "r.npz")["rng"])
    np.testing.assert_array_equal(mc.get_rng().standard_normal(3), expected)


def test_tensors_are_saved_as_arrays(tmp_path):
    mc.save({"t": mc.Tensor(np.ones(3), dtype=np.float64)}, tmp_path / "t.npz")
    back = mc.load(tmp_path / "t.npz")["t"]
    assert isinstance(back, np.ndarray) and back.dtype == np.float64


def test_object_arrays_and_unknown_types_are_refused_before_writing(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="'model/w' has dtype object, which can only be stored with pickle"):
        mc.save({"model": {"w": np.array([1, "a", None], dtype=object)}}, path)
    with pytest.raises(TypeError, match="cannot store an object of type set at 'a'"):
        mc.save({"a": {1, 2}}, path)
    with pytest.raises(TypeError, match="dict keys must be strings or ints"):
        mc.save({(1, 2): 3}, path)
    assert os.listdir(tmp_path) == []


def test_loading_a_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        mc.load(path)["x"]


def test_plain_npz_without_structure_loads_as_dict(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(2), b=np.zeros(3, np.int32))
    back = mc.load(tmp_path / "plain.npz")
    assert set(back) == {"a", "b"} and back["b"].dtype == np.int32


def test_save_overwrites_atomically_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "ck.npz"
    mc.save({"v": np.array([1.0])}, path)
    mc.save({"v": np.array([2.0])}, str(path))
    assert mc.load(path)["v"][0] == 2.0
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_crash_during_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    mc.save({"model": {"w": np.arange(4.0)}, "epoch": 1}, path)
    old_bytes = path.read_bytes()
    real_savez = np.savez

    def crashing_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip ...")   # part of the data reaches the disk
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(OSError, match="disk full"):
        mc.save({"model": {"w": np.zeros(4)}, "epoch": 2}, path)
    monkeypatch.setattr(np, "savez", real_savez)
    assert os.listdir(tmp_path) == ["ck.npz"]            # no temp file left behind
    assert path.read_bytes() == old_bytes
    back = mc.load(path)
    assert back["epoch"] == 1 and zipfile.is_zipfile(path)
    np.testing.assert_array_equal(back["model"]["w"], np.arange(4.0))


def test_crash_during_first_write_leaves_nothing(tmp_path, monkeypatch):
    def crashing_savez(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        mc.save({"a": np.ones(1)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_full_training_checkpoint_resume(tmp_path):
    mc.manual_seed(1)
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = mc.Tensor(np.ones((4, 3), np.float32))
    for _ in range(2):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    mc.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, tmp_path / "ck.npz")
    ck = mc.load(tmp_path / "ck.npz")
    model2 = nn.Linear(3, 2)
    opt2 = optim.Adam(model2.parameters(), lr=0.5)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        (m(x) ** 2).mean().backward()
        o.step()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)


# ---- property: any nested structure of the allowed leaves round-trips exactly -------------------
from hypothesis import given, strategies as st  # noqa: E402

_arrays = st.builds(
    lambda dtype, shape, seed: np.asarray(np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype),
    st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]),
    st.lists(st.integers(0, 3), max_size=3).map(tuple), st.integers(0, 2 ** 32 - 1))
_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False), st.text(max_size=8), _arrays)
_keys = st.one_of(st.text(min_size=1, max_size=6), st.integers(-5, 50))
_trees = st.recursive(_leaves, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.lists(kids, max_size=3).map(tuple),
    st.dictionaries(_keys, kids, max_size=3)), max_leaves=12)


def _same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


@given(tree=st.dictionaries(_keys, _trees, max_size=4))
def test_random_nested_structures_round_trip(tree, tmp_path_factory):
    path = tmp_path_factory.mktemp("rt") / "x.npz"
    mc.save(tree, path)
    _same(tree, mc.load(path))


# ---- damaged, truncated and foreign files: CheckpointError naming the file -----------------------
import json  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402


def _good_bytes():
    """The bytes of a small but complete checkpoint (nested dicts, a tuple, several dtypes)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "good.npz")
        mc.save({"model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(2)},
                 "epoch": 3, "betas": (0.9, 0.999), "name": "lenet5"}, path)
        with open(path, "rb") as f:
            return f.read()


GOOD = _good_bytes()


def _load_bytes(raw, folder):
    path = folder / "damaged.npz"
    path.write_bytes(raw)
    return path, mc.load(path)


def test_checkpoint_error_is_a_value_error_exported_by_minicnn():
    assert issubclass(mc.CheckpointError, ValueError)
    assert mc.CheckpointError is serialization.CheckpointError


@pytest.mark.parametrize("raw, says", [
    (b"", "is not a minicnn file"),
    (b"hello, I am a text file\n", "is not a minicnn file"),
    (bytes(range(256)) * 4, "is not a minicnn file"),
    (GOOD[:len(GOOD) // 2], "is truncated or damaged"),
    (GOOD[:30], "is truncated or damaged"),
    (b"PK\x03\x04" + bytes(100), "is truncated or damaged"),
])
def test_damaged_files_raise_checkpoint_error_naming_the_file(tmp_path, raw, says):
    with pytest.raises(mc.CheckpointError, match=says) as exc:
        _load_bytes(raw, tmp_path)
    assert str(tmp_path / "damaged.npz") in str(exc.value)
    assert "allow_pickle=True" not in str(exc.value)   # never point at the unsafe load


def test_a_bare_npy_file_is_not_a_minicnn_file(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(mc.CheckpointError, match=r"x\.npy is not a minicnn file"):
        mc.load(tmp_path / "x.npy")


def test_a_foreign_zip_is_not_a_minicnn_file(tmp_path):
    path = tmp_path / "doc.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", "<xml/>")
    with pytest.raises(mc.CheckpointError, match=r"doc\.npz is not a minicnn file: it holds "
                                                 r"'word/document.xml'"):
        mc.load(path)


def _npz_with_structure(path, root, fmt=serialization.FORMAT, **arrays):
    text = json.dumps({"format": fmt, "root": root})
    np.savez(path, **arrays, **{serialization.STRUCTURE_KEY: np.array(text)})


def test_a_structure_naming_a_missing_array(tmp_path):
    path = tmp_path / "lies.npz"
    _npz_with_structure(path, {"dict": [["w", {"array": "nope"}]]}, other=np.ones(2))
    with pytest.raises(mc.CheckpointError, match=r"lies\.npz is damaged: it refers to an array "
                                                 r"'nope' it does not contain"):
        mc.load(path)


@pytest.mark.parametrize("root", [
    {"dict": 5}, {"list": {"a": 1}}, {"what": 1}, [1, 2], {"value": [1]},
    {"dict": [["k"]]}, {"dict": [[True, {"value": 1}]]}, {"array": 3}, {"value": 1, "list": []},
])
def test_malformed_structures_are_damaged_files(tmp_path, root):
    path = tmp_path / "bad.npz"
    _npz_with_structure(path, root)
    with pytest.raises(mc.CheckpointError, match=r"bad\.npz is damaged"):
        mc.load(path)


def test_structure_entry_that_is_not_json_or_of_another_format(tmp_path):
    np.savez(tmp_path / "a.npz", **{serialization.STRUCTURE_KEY: np.array("{not json")})
    with pytest.raises(mc.CheckpointError, match=r"a\.npz is damaged: its structure is not valid JSON"):
        mc.load(tmp_path / "a.npz")
    _npz_with_structure(tmp_path / "b.npz", {"value": 1}, fmt="minicnn-checkpoint-99")
    with pytest.raises(mc.CheckpointError, match=r"b\.npz has checkpoint format 'minicnn-checkpoint-99'"):
        mc.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", **{serialization.STRUCTURE_KEY: np.arange(3)})
    with pytest.raises(mc.CheckpointError, match=r"c\.npz is damaged: its '__minicnn__' entry is not a text"):
        mc.load(tmp_path / "c.npz")


def test_an_array_header_promising_more_than_the_file_holds(tmp_path):
    """A header that claims a huge shape is refused before any memory is taken for it."""
    path = tmp_path / "huge.npz"
    np.savez(path, w=np.zeros(2000, np.float32))      # longer than zipfile's read-ahead: the CRC
    raw = path.read_bytes()                           # is only checked at the member's end
    assert raw.count(b"(2000,)") == 1
    path.write_bytes(raw.replace(b"(2000,)", b"(9000,)"))
    with pytest.raises(mc.CheckpointError, match=r"huge\.npz is truncated or damaged: the array "
                                                 r"'w' of shape \(9000,\) needs 36000 bytes, the "
                                                 r"file holds 8000"):
        mc.load(path)


def test_missing_file_and_folder_raise_oserrors_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mc.load(tmp_path / "nope.npz")
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
        mc.load(tmp_path)


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "no" / "such" / "ck.npz"
    with pytest.raises(FileNotFoundError, match=r"save: cannot write .*ck\.npz: its folder .*such "
                                                r"does not exist"):
        mc.save({"a": np.ones(1)}, path)


def test_savez_compressed_files_load_too(tmp_path):
    np.savez_compressed(tmp_path / "z.npz", a=np.arange(5), b=np.eye(2, dtype=np.float32))
    back = mc.load(tmp_path / "z.npz")
    np.testing.assert_array_equal(back["a"], np.arange(5))
    assert back["b"].dtype == np.float32 and back["b"].flags.writeable


def _flip_bits(raw, positions):
    out = bytearray(raw)
    for bit in positions:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


_damaged = st.one_of(
    st.integers(0, len(GOOD) - 1).map(lambda n: GOOD[:n]),                      # truncated
    st.lists(st.integers(0, 8 * len(GOOD) - 1), min_size=1, max_size=3)
      .map(lambda bits: _flip_bits(GOOD, bits)),                                 # bit flips
    st.binary(max_size=600),                                                     # random bytes
    st.binary(max_size=600).map(lambda b: b"PK\x03\x04" + b),                    # a zip in name only
    st.tuples(st.integers(0, len(GOOD) - 1), st.binary(min_size=1, max_size=40))
      .map(lambda t: GOOD[:t[0]] + t[1] + GOOD[t[0] + len(t[1]):]),              # overwritten bytes
)


@given(raw=_damaged)
def test_load_of_damaged_bytes_returns_or_raises_checkpoint_error_only(raw, tmp_path_factory):
    """Whatever the bytes, mc.load either returns (a flip in a field nothing checks, e.g. a zip
    timestamp) or raises CheckpointError naming the file; never another exception type."""
    folder = tmp_path_factory.mktemp("damaged")
    try:
        _load_bytes(raw, folder)
    except mc.CheckpointError as exc:
        assert str(folder / "damaged.npz") in str(exc)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(
        st.sampled_from(["array", "value", "list", "tuple", "dict", "x"]), kids, max_size=2)),
    max_leaves=10)


@given(root=_json)
def test_load_of_any_structure_returns_or_raises_checkpoint_error_only(root, tmp_path_factory):
    """A well-formed zip whose structure entry says anything at all."""
    path = tmp_path_factory.mktemp("lies") / "lies.npz"
    _npz_with_structure(path, root, w=np.ones(2))
    try:
        mc.load(path)
    except mc.CheckpointError as exc:
        assert str(path) in str(exc)
