"""Weights in and out: safetensors files, builders' weights=, freezing. No PyTorch needed (the
comparisons with torchvision are in test_torchvision_weights.py)."""
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import pytest

import minicnn as mc
from minicnn import finetune, models, nn, optim
from minicnn.nn.module import StateDictError

pytest.importorskip("safetensors", reason="safetensors is not installed (pip install -e '.[weights]')")


def raw_safetensors(path, header, data=b""):
    """A file written byte by byte: 8-byte length, the JSON header, the data."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


# ---- the file format ----------------------------------------------------------------------------
def test_round_trip_keeps_names_shapes_dtypes_values_and_metadata(tmp_path):
    sd = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
          "bn.num_batches_tracked": np.array(7, dtype=np.int64),
          "double": np.linspace(0, 1, 5),
          "mask": np.array([True, False]),
          "tensor": mc.Tensor(np.ones((2, 2), np.float32)),
          "strided": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
          "big_endian": np.arange(3, dtype=">f4")}
    path = tmp_path / "w.safetensors"
    mc.save_safetensors(sd, path, metadata={"epochs": "3"})
    back = mc.load_safetensors(path)
    assert set(back) == set(sd)
    for k, v in sd.items():
        want = v.numpy() if isinstance(v, mc.Tensor) else v
        assert back[k].shape == want.shape and back[k].dtype == want.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[k], want)
    assert mc.weights.safetensors_metadata(path) == {"epochs": "3"}
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]   # no temporary file left


def test_a_module_is_saved_as_its_state_dict(tmp_path):
    mc.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    mc.save_safetensors(net, tmp_path / "net.safetensors")
    back = mc.load_safetensors(tmp_path / "net.safetensors")
    assert set(back) == set(net.state_dict())
    np.testing.assert_array_equal(back["0.weight"], net[0].weight.data)


@pytest.mark.parametrize("bad, message", [
    ({"a": np.array(["x"])}, "numbers and bools"),
    ({"a": [1.0, 2.0]}, "expected a NumPy array"),
    ({1: np.zeros(2)}, "names must be strings"),
    ({"__metadata__": np.zeros(2)}, "names must be strings"),
])
def test_save_refuses_what_safetensors_cannot_hold_and_writes_nothing(tmp_path, bad, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(TypeError, match=message):
        mc.save_safetensors(bad, path)
    assert path.read_bytes() == b"old"


def test_save_refuses_metadata_that_is_not_strings(tmp_path):
    with pytest.raises(TypeError, match="metadata must be a dict of strings"):
        mc.save_safetensors({"a": np.zeros(1)}, tmp_path / "w.safetensors", metadata={"epochs": 3})


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "w.safetensors"
    with pytest.raises(FileNotFoundError, match="save_safetensors: cannot write .*w.safetensors"):
        mc.save_safetensors({"a": np.zeros(1)}, path)


def test_float16_is_cast_to_float32_with_a_warning(tmp_path):
    path = tmp_path / "half.safetensors"
    half = np.array([1.5, -2.0, 65504.0], dtype=np.float16)
    mc.save_safetensors({"w": half, "n": np.array(3, np.int64)}, path)
    with pytest.warns(UserWarning, match=r"cast 1 float16/bfloat16 tensor\(s\) to float32"):
        back = mc.load_safetensors(path)
    assert back["w"].dtype == np.float32 and back["n"].dtype == np.int64
    np.testing.assert_array_equal(back["w"], half.astype(np.float32))


def test_bfloat16_is_widened_exactly(tmp_path):
    # bfloat16 is the top 16 bits of a float32: these values are exact in it
    values = np.array([[1.0, -2.5], [3.140625, 0.0]], dtype=np.float32)
    top = (values.view(np.uint32) >> 16).astype("<u2")
    path = raw_safetensors(tmp_path / "bf16.safetensors",
                           {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}},
                           top.tobytes())
    with pytest.warns(UserWarning, match="float16/bfloat16"):
        back = mc.load_safetensors(path)
    assert back["w"].dtype == np.float32
    np.testing.assert_array_equal(back["w"], values)


def test_dtypes_minicnn_cannot_compute_with_are_refused_by_name(tmp_path):
    path = raw_safetensors(tmp_path / "f8.safetensors",
                           {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}},
                           b"\x01\x02")
    with pytest.raises(mc.CheckpointError, match=r"f8.safetensors .*w \(F8_E4M3\)"):
        mc.load_safetensors(path)


def _truncated(tmp_path):
    path = tmp_path / "t.safetensors"
    mc.save_safetensors({"w": np.ones(100, np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-40])
    return path


def _lying_offsets(tmp_path):
    return raw_safetensors(tmp_path / "lie.safetensors",
                           {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 400]}}, b"\0" * 16)


def _bad_json(tmp_path):
    path = tmp_path / "json.safetensors"
    path.write_bytes(struct.pack("<Q", 10) + b"{not json}")
    return path


def _huge_header(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2 ** 62) + b"{}")
    return path


def _garbage(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(bytes(range(7, 107)))
    return path


def _pickle(tmp_path):
    path = tmp_path / "model.safetensors"   # a pickle renamed: it is never unpickled
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    return path


def _torch_zip(tmp_path):
    path = tmp_path / "resnet.safetensors"  # the layout of a PyTorch .pth (a zip with a pickle)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/data/0", b"\0" * 8)
    return path


def _npz(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    with open(path, "wb") as f:
        np.savez(f, w=np.zeros(2))
    return path


def _short(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"abc")
    return path


def _empty(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("make, says", [
    (_truncated, "not a valid safetensors file, or is truncated or damaged"),
    (_lying_offsets, "not a valid safetensors file"),
    (_bad_json, "not a valid safetensors file"),
    (_huge_header, "not a valid safetensors file"),
    (_garbage, "not a safetensors file: it does not start with a header length"),
    (_pickle, "a Python pickle .* never unpickles"),
    (_torch_zip, "a PyTorch .pth/.pt file .* never unpickles"),
    (_npz, r"a NumPy .npz archive .* mc.load"),
    (_short, "not a safetensors file"),
    (_empty, "not a safetensors file"),
], ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "")
def test_damaged_and_foreign_files_raise_checkpoint_error_naming_the_file(tmp_path, make, says):
    path = make(tmp_path)
    with pytest.raises(mc.CheckpointError, match=says) as info:
        mc.load_safetensors(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        mc.load_safetensors(tmp_path / "nothing.safetensors")


def test_without_the_safetensors_package_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r"minicnn\[weights\]"):
        mc.save_safetensors({"a": np.zeros(1)}, tmp_path / "w.safetensors")


# ---- load_state_dict and num_batches_tracked ----------------------------------------------------
def bn_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))


def test_state_dict_without_num_batches_tracked_loads_strictly_and_keeps_the_count():
    mc.manual_seed(0)
    src, dst = bn_net(), bn_net()
    dst[1].num_batches_tracked.data[...] = 5
    old = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    result = dst.load_state_dict(old)   # strict
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(dst[1].num_batches_tracked.data) == 5
    np.testing.assert_array_equal(dst[1].running_var.data, src[1].running_var.data)


def test_state_dict_with_num_batches_tracked_loads_it():
    src, dst = bn_net(), bn_net()
    src[1].num_batches_tracked.data[...] = 42
    dst.load_state_dict(src.state_dict())
    assert int(dst[1].num_batches_tracked.data) == 42


def test_other_missing_buffers_are_still_reported():
    sd = {k: v for k, v in bn_net().state_dict().items() if not k.endswith("running_mean")}
    with pytest.raises(StateDictError, match='Missing key.*"1.running_mean"'):
        bn_net().load_state_dict(sd)


# ---- builders take weights ------------------------------------------------------------------------
SMALL = dict(width_mult=0.25, small_input=True)
ZOO = {
    "lenet5": (lambda **kw: models.lenet5(**kw), (1, 28, 28), {}),
    "alexnet": (lambda **kw: models.alexnet(**kw), (3, 32, 32), SMALL),
    "alexnet_tv": (lambda **kw: models.alexnet(variant="torchvision", **kw), (3, 32, 32), SMALL),
    "alexnet_bn": (lambda **kw: models.alexnet(variant="bn", **kw), (3, 32, 32), SMALL),
    "zfnet": (lambda **kw: models.zfnet(**kw), (3, 32, 32), SMALL),
    "vgg11_bn": (lambda **kw: models.vgg11(batch_norm=True, **kw), (3, 32, 32), SMALL),
    "googlenet": (lambda **kw: models.googlenet(**kw), (3, 32, 32), SMALL),
    "googlenet_tv": (lambda **kw: models.googlenet(variant="torchvision", **kw), (3, 32, 32), SMALL),
    "resnet18": (lambda **kw: models.resnet18(**kw), (3, 32, 32), SMALL),
    "resnet50": (lambda **kw: models.resnet50(**kw), (3, 32, 32), SMALL),
    "plain18": (lambda **kw: models.plain18(**kw), (3, 32, 32), SMALL),
    "alphago": (lambda **kw: models.alphago_policy(k=8, board_size=9, in_planes=4, **kw), (4, 9, 9), {}),
}


def trained_looking(model, seed):
    """Random values in every floating parameter and buffer (batch norm statistics too; the
    variances positive)."""
    rng = np.random.default_rng(seed)
    for name, t in model.state_dict(keep_vars=True).items():
        if t.dtype.kind == "f":
            values = rng.uniform(0.5, 1.5, t.shape) if name.endswith("running_var") \
                else 0.1 * rng.standard_normal(t.shape)
            t.data[...] = values
    return model


@pytest.mark.parametrize("name", list(ZOO))
def test_every_builder_loads_its_saved_weights_with_identical_outputs(tmp_path, name):
    build, shape, kw = ZOO[name]
    mc.manual_seed(0)
    src = trained_looking(build(**kw), 1)
    path = tmp_path / f"{name}.safetensors"
    mc.save_safetensors(src.state_dict(), path)
    mc.manual_seed(1)   # a different initialisation, overwritten by the file
    dst = build(weights=path, **kw)
    x = mc.randn(2, *shape, rng=np.random.default_rng(2))
    src.eval()
    dst.eval()
    with mc.no_grad():
        # the same numbers up to float32 rounding: OpenBLAS may round a product differently for
        # operands at another alignment in memory (two models' buffers), never by more
        np.testing.assert_allclose(dst(x).numpy(), src(x).numpy(), rtol=1e-5, atol=1e-6)
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k], v)


def test_a_file_with_another_head_loads_all_but_the_head_and_says_so(tmp_path):
    mc.manual_seed(0)
    src = trained_looking(models.vgg11(num_classes=10, **SMALL), 3)
    mc.save_safetensors(src, tmp_path / "vgg.safetensors")
    with pytest.warns(UserWarning, match=r"classifier\.6\.weight \(10, 1024\) -> \(2, 1024\)"):
        dst = models.vgg11(num_classes=2, weights=tmp_path / "vgg.safetensors", **SMALL)
    assert dst.classifier[6].weight.shape == (2, 1024)
    for k, v in src.state_dict().items():
        if not k.startswith("classifier.6."):
            np.testing.assert_array_equal(dst.state_dict()[k], v)


def test_weights_that_do_not_fit_elsewhere_raise_naming_the_file_and_the_keys(tmp_path):
    mc.manual_seed(0)
    mc.save_safetensors(models.resnet18(in_channels=1, **SMALL), tmp_path / "grey.safetensors")
    with pytest.raises(StateDictError, match=r"(?s)grey.safetensors: these weights do not fit ResNet.*"
                                             r"size mismatch for conv1.weight"):
        models.resnet18(in_channels=3, weights=tmp_path / "grey.safetensors", **SMALL)
    sd = models.resnet18(**SMALL).state_dict()
    sd["extra.weight"] = np.zeros(2, np.float32)
    del sd["layer1.0.conv1.weight"]
    mc.save_safetensors(sd, tmp_path / "odd.safetensors")
    with pytest.raises(StateDictError, match=r'(?s)Missing key.*"layer1.0.conv1.weight".*'
                                             r'Unexpected key.*"extra.weight"') as info:
        models.resnet18(weights=tmp_path / "odd.safetensors", **SMALL)
    assert "odd.safetensors" in str(info.value)
    loaded = mc.weights.load_weights(models.resnet18(**SMALL), tmp_path / "odd.safetensors", strict=False)
    assert loaded.missing_keys == ["layer1.0.conv1.weight"] and loaded.unexpected_keys == ["extra.weight"]


def test_aux_classifiers_are_optional_both_ways(tmp_path):
    mc.manual_seed(0)
    with_aux = models.googlenet(num_classes=5, **SMALL)
    mc.save_safetensors(with_aux, tmp_path / "aux.safetensors")
    models.googlenet(num_classes=5, aux_logits=False, weights=tmp_path / "aux.safetensors", **SMALL)
    mc.save_safetensors(models.googlenet(num_classes=5, aux_logits=False, **SMALL),
                        tmp_path / "plain.safetensors")
    with pytest.warns(UserWarning, match="has no aux1, aux2: kept their random initialisation"):
        models.googlenet(num_classes=5, weights=tmp_path / "plain.safetensors", **SMALL)


def test_a_minicnn_training_checkpoint_is_a_weight_file_too(tmp_path):
    mc.manual_seed(0)
    src = trained_looking(models.lenet5(), 4)
    mc.save({"model": src.state_dict(), "epoch": 3}, tmp_path / "checkpoint.npz")
    dst = models.lenet5(weights=tmp_path / "checkpoint.npz")
    np.testing.assert_array_equal(dst.classifier[4].weight.data, src.classifier[4].weight.data)


# ---- freezing -------------------------------------------------------------------------------------
def test_freeze_takes_whole_name_parts_and_unknown_prefixes_are_refused():
    net = nn.Sequential(*[nn.Linear(2, 2) for _ in range(11)])
    assert net.freeze("1") == ["1.weight", "1.bias"]          # not 10.weight
    assert [n for n, p in net.named_parameters() if not p.requires_grad] == ["1.weight", "1.bias"]
    net.unfreeze()
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(KeyError, match=r"no parameter named 'features'.*top-level names are 0, 1, 10"):
        net.freeze("features")


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_frozen_parameters_get_no_gradient_and_do_not_change(make_opt):
    mc.manual_seed(0)
    model = models.resnet18(num_classes=3, **SMALL)
    frozen = finetune.freeze(model, "features")   # a ResNet has none: all but fc
    assert frozen and not any(n.startswith("fc.") for n in frozen)
    assert model.num_parameters(trainable_only=True) == model.fc.num_parameters()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = make_opt(model.parameters())
    x = mc.randn(4, 3, 32, 32, rng=np.random.default_rng(0))
    for _ in range(2):
        opt.zero_grad()
        loss = mc.functional.cross_entropy(model(x), np.array([0, 1, 2, 0]))
        loss.backward()
        for name, p in model.named_parameters():
            assert (p.grad is None) == (name in frozen), name
        opt.step()
    after = model.state_dict()
    for name in frozen:
        np.testing.assert_array_equal(after[name], before[name])
    assert not np.array_equal(after["fc.weight"], before["fc.weight"])
    assert all(p not in opt.state or not opt.state[p] for n, p in model.named_parameters() if n in frozen)


def test_freeze_features_on_vgg_keeps_its_whole_classifier_learning():
    model = models.vgg11(num_classes=2, **SMALL)
    frozen = finetune.freeze(model, "features")
    assert all(n.startswith("features.") for n in frozen)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"classifier.{i}.{w}" for i in (0, 3, 6) for w in ("weight", "bias")}


def test_requires_grad_false_freezes_a_whole_module_and_a_new_head_learns():
    model = models.resnet18(**SMALL).requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, 2)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_finetune_transforms_normalise_with_imagenet_statistics():
    train_tf, eval_tf = finetune.transforms(32)
    img = np.full((3, 40, 48), 0.5, np.float32)
    mc.manual_seed(0)
    assert train_tf(img).shape == (3, 32, 32)
    out = eval_tf(img)
    assert out.shape == (3, 32, 32)
    want = (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(out[:, 16, 16], want, rtol=1e-5)


def test_save_is_atomic_an_error_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    mc.save_safetensors({"a": np.zeros(2, np.float32)}, path)
    old = path.read_bytes()

    def boom(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="save_safetensors: cannot write .*w.safetensors"):
        mc.save_safetensors({"a": np.ones(2, np.float32)}, path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
