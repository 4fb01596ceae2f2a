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
