"""The model zoo: exact parameter counts, the papers' per-layer output shapes, torchvision's
state_dict names, train/eval behaviour, the small_input stems, and that a small model of each
family can overfit a tiny batch.

Forward passes of the big nets at full size run under `mc.no_grad()` with batch 1; the rest
use small widths (`width_mult`) or small inputs so the file stays fast on 2 cores.
"""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import models, nn, optim


def n_params(model):
    return sum(p.size for p in model.parameters())


@pytest.fixture
def fast_init(monkeypatch):
    """Parameter counts depend only on shapes: skip drawing ~100M random numbers per big net."""
    monkeypatch.setattr(nn.init, "uniform_", lambda tensor, *args, **kwargs: tensor)
    monkeypatch.setattr(nn.init, "normal_", lambda tensor, *args, **kwargs: tensor)


def image(shape, seed=0):
    return mc.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def walk(layers, x):
    """Run `x` through the layers one by one; the output shape (without N) after each."""
    shapes = []
    for layer in layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return x, shapes


def shapes_after(layers, x, kinds):
    """Output shapes (without N) after each layer whose type is in `kinds`."""
    shapes = []
    for layer in layers:
        x = layer(x)
        if isinstance(layer, kinds):
            shapes.append(tuple(x.shape[1:]))
    return x, shapes


# ---- exact parameter counts -------------------------------------------------------------
COUNTS = [
    ("lenet5", {}, 61_706),
    ("alexnet", {}, 60_965_224),
    ("alexnet", {"variant": "paper"}, 60_965_224),
    ("alexnet", {"variant": "torchvision"}, 61_100_840),
    ("alexnet", {"variant": "bn"}, 62_381_096),
    ("zfnet", {}, 107_627_624),
    ("vgg11", {}, 132_863_336),
    ("vgg13", {}, 133_047_848),
    ("vgg16", {}, 138_357_544),
    ("vgg19", {}, 143_667_240),
    ("vgg16_bn", {}, 138_365_992),
    ("googlenet", {}, 13_378_280),
    ("googlenet", {"aux_logits": False}, 6_998_552),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("resnet101", {}, 44_549_160),
    ("resnet152", {}, 60_192_808),
    ("plain18", {}, 11_515_688),
    ("plain34", {}, 21_623_848),
    ("alphago_policy", {}, 3_882_793),
]


@pytest.mark.parametrize("name, kwargs, expected", COUNTS, ids=[f"{c[0]}{c[1]}" for c in COUNTS])
def test_parameter_count(fast_init, name, kwargs, expected):
    assert n_params(models.get_model(name, **kwargs)) == expected


@pytest.mark.parametrize("cfg, expected", [("A", 132_863_336), ("A-LRN", 132_863_336),
                                           ("B", 133_047_848), ("C", 133_638_952),
                                           ("D", 138_357_544), ("E", 143_667_240)])
def test_vgg_cfg_counts(fast_init, cfg, expected):
    # the paper's Table 2: 133, 133, 133, 134, 138, 144 million
    model = models.vgg(cfg)
    assert n_params(model) == expected
    assert round(expected / 1e6) == {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}[cfg]


def test_lenet5_and_alexnet_per_layer_counts(fast_init):
    lenet = models.lenet5()
    assert [p.size for p in lenet.parameters()] == [150, 6, 2400, 16, 48000, 120, 10080, 84, 840, 10]
    alex = models.alexnet()
    per_layer = {name: sum(p.size for p in m.parameters()) for name, m in alex.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert per_layer == {
        "features.0": 34_944, "features.4": 307_456, "features.8": 885_120, "features.10": 663_936,
        "features.12": 442_624, "classifier.0": 37_752_832, "classifier.3": 16_781_312,
        "classifier.6": 4_097_000}


def test_num_classes_changes_only_the_last_layer(fast_init):
    assert n_params(models.resnet18(num_classes=10)) == 11_689_512 - 990 * 513
    assert n_params(models.alexnet(num_classes=10)) == 60_965_224 - 990 * 4097
    assert n_params(models.lenet5(num_classes=5)) == 61_706 - 5 * 85


# ---- structure: groups, LRN, batch norm, 1x1 convs ----------------------------------------
def test_alexnet_paper_structure(fast_init):
    f = models.alexnet().features
    convs = [m for m in f.children() if isinstance(m, nn.Conv2d)]
    assert [m.weight.shape for m in convs] == [
        (96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3)]
    kinds = [type(m).__name__ for m in f.children()]
    # LRN after the ReLU of conv1 and conv2, then the overlapping pool
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2
    lrn = f[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    pool = f[3]
    assert (pool.kernel_size, pool.stride) in [((3, 3), (2, 2)), (3, 2)]


def test_alexnet_bn_structure(fast_init):
    model = models.alexnet(variant="bn")
    kinds = [type(m).__name__ for m in model.features.children()]
    assert kinds.count("BatchNorm2d") == 5 and "LocalResponseNorm" not in kinds
    for i, kind in enumerate(kinds):
        if kind == "Conv2d":
            assert kinds[i + 1:i + 3] == ["ReLU", "BatchNorm2d"]


def test_vgg_variants_structure():
    small = dict(width_mult=1 / 16, num_classes=10)
    a_lrn = [type(m).__name__ for m in models.vgg("A-LRN", **small).features.children()]
    assert a_lrn[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    c_convs = [m for m in models.vgg("C", **small).features.children() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in c_convs].count((1, 1)) == 3
    assert [i for i, m in enumerate(c_convs) if m.kernel_size == (1, 1)] == [6, 9, 12]
    bn = [type(m).__name__ for m in models.vgg16(batch_norm=True, **small).features.children()]
    assert bn[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"] and bn.count("BatchNorm2d") == 13


# ---- torchvision names ---------------------------------------------------------------------
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def resnet18_torchvision_keys():
    keys = ["conv1.weight"] + [f"bn1.{k}" for k in BN_KEYS]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}."
            keys += [p + "conv1.weight"] + [p + f"bn1.{k}" for k in BN_KEYS]
            keys += [p + "conv2.weight"] + [p + f"bn2.{k}" for k in BN_KEYS]
            if layer > 1 and block == 0:
                keys += [p + "downsample.0.weight"] + [p + f"downsample.1.{k}" for k in BN_KEYS]
    return keys + ["fc.weight", "fc.bias"]


def test_resnet18_state_dict_names_match_torchvision():
    sd = models.resnet18(width_mult=1 / 16).state_dict()
    expected = resnet18_torchvision_keys()
    assert len(expected) == 122
    assert set(sd) == set(expected)


def test_resnet_state_dict_shapes(fast_init):
    sd = models.resnet18().state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["layer2.0.conv1.weight"].shape == (128, 64, 3, 3)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer4.1.bn2.running_var"].shape == (512,)
    assert sd["fc.weight"].shape == (1000, 512)
    sd50 = models.resnet50().state_dict()
    # torchvision's resnet50: the stride on the 3x3, a projection in layer1.0 (64 -> 256)
    assert sd50["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd50["layer3.5.conv3.weight"].shape == (1024, 256, 1, 1)
    assert "layer3.6.conv1.weight" not in sd50 and "layer3.22.conv1.weight" in models.resnet101(
        width_mult=1 / 16).state_dict()
    assert sd50["fc.weight"].shape == (1000, 2048)
    assert models.resnet50().layer2[0].conv2.stride == (2, 2)
    assert models.resnet50().layer2[0].conv1.stride == (1, 1)


def test_vgg16_state_dict_names_match_torchvision(fast_init):
    sd = models.vgg16().state_dict()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    expected = [f"features.{i}.{k}" for i in convs for k in ("weight", "bias")]
    expected += [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]
    assert set(sd) == set(expected)
    assert sd["classifier.0.weight"].shape == (4096, 25088)
    assert sd["features.28.weight"].shape == (512, 512, 3, 3)
    assert isinstance(models.vgg16().avgpool, nn.AdaptiveAvgPool2d)


def test_vgg16_bn_state_dict_names_match_torchvision():
    sd = models.vgg16(batch_norm=True, width_mult=1 / 16).state_dict()
    convs = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    expected = [f"features.{i}.{k}" for i in convs for k in ("weight", "bias")]
    expected += [f"features.{i + 1}.{k}" for i in convs for k in BN_KEYS]
    expected += [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]
    assert set(sd) == set(expected)


def test_alexnet_torchvision_state_dict_names(fast_init):
    sd = models.alexnet(variant="torchvision").state_dict()
    expected = {f"features.{i}.{k}" for i in (0, 3, 6, 8, 10) for k in ("weight", "bias")}
    expected |= {f"classifier.{i}.{k}" for i in (1, 4, 6) for k in ("weight", "bias")}
    assert set(sd) == expected
    assert [sd[f"features.{i}.weight"].shape[0] for i in (0, 3, 6, 8, 10)] == [64, 192, 384, 256, 256]
    assert sd["features.0.weight"].shape == (64, 3, 11, 11)
    assert sd["classifier.1.weight"].shape == (4096, 9216)


def test_state_dict_round_trip():
    a, b = models.resnet18(width_mult=1 / 16, num_classes=3), models.resnet18(width_mult=1 / 16, num_classes=3)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = image((1, 3, 32, 32))
    with mc.no_grad():
        np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_plain_nets_have_no_shortcuts():
    for build, blocks in ((models.plain18, 8), (models.plain34, 16)):
        model = build(width_mult=1 / 16)
        names = [name for name, _ in model.named_modules()]
        assert not any("downsample" in name for name in names)
        assert sum(isinstance(m, nn.Module) and type(m).__name__ == "BasicBlock" for m in model.modules()) == blocks
    assert any("downsample" in name for name, _ in models.resnet18(width_mult=1 / 16).named_modules())


def test_shortcut_is_what_differs():
    """With every conv weight zero, a residual block passes relu(x) through; a plain one gives 0."""
    res, plain = models.resnet18(width_mult=1 / 16), models.plain18(width_mult=1 / 16)
    x = mc.Tensor(np.abs(image((2, 4, 8, 8)).numpy()) + 0.5)   # positive: relu(x) == x
    for model in (res, plain):
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data[...] = 0.0
    with mc.no_grad():
        np.testing.assert_allclose(res.layer1[0](x).numpy(), x.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(plain.layer1[0](x).numpy(), np.zeros(x.shape, np.float32))


# ---- per-layer output shapes, the papers' tables --------------------------------------------
def test_lenet5_shapes():
    model = models.lenet5()
    x = image((2, 1, 28, 28))
    with mc.no_grad():
        feats, shapes = walk(model.features.children(), x)
        out = model(x)
    assert shapes == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]
    assert out.shape == (2, 10) and out.dtype == np.float32


def test_alexnet_paper_lecture_walk():
    model = models.alexnet().eval()
    x = image((1, 3, 227, 227))
    with mc.no_grad():
        feats, conv_shapes = shapes_after(model.features.children(), x, (nn.Conv2d, nn.MaxPool2d))
        _, fc_shapes = shapes_after(model.classifier.children(), F.flatten(feats, 1), nn.Linear)
    assert conv_shapes == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13),
                           (384, 13, 13), (256, 13, 13), (256, 6, 6)]
    assert fc_shapes == [(4096,), (4096,), (1000,)]


def test_alexnet_rejects_wrong_input_size():
    model = models.alexnet(width_mult=1 / 16)
    with pytest.raises(ValueError, match=r"alexnet: expected input of shape \(N, 3, 227, 227\), got \(1, 3, 224, 224\)"):
        with mc.no_grad():
            model(image((1, 3, 224, 224)))


def test_alexnet_torchvision_and_bn_forward():
    tv = models.alexnet(variant="torchvision", width_mult=1 / 8).eval()
    with mc.no_grad():
        feats = tv.features(image((1, 3, 224, 224)))
        assert feats.shape == (1, 32, 6, 6)
        assert tv(image((1, 3, 224, 224))).shape == (1, 1000)
        # the adaptive pool lets it take other sizes that survive the pools
        assert tv(image((1, 3, 160, 160))).shape == (1, 1000)
    bn = models.alexnet(variant="bn", width_mult=1 / 8, num_classes=7).eval()
    with mc.no_grad():
        assert bn(image((1, 3, 227, 227))).shape == (1, 7)


def test_zfnet_maps():
    model = models.zfnet().eval()
    x = image((1, 3, 224, 224))
    with mc.no_grad():
        feats, shapes = shapes_after(model.features.children(), x, (nn.Conv2d, nn.MaxPool2d))
        _, fc_shapes = shapes_after(model.classifier.children(), F.flatten(feats, 1), nn.Linear)
    assert shapes == [(96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13), (512, 13, 13),
                      (1024, 13, 13), (512, 13, 13), (512, 6, 6)]
    assert fc_shapes == [(4096,), (4096,), (1000,)]


def test_vgg16_shapes():
    model = models.vgg16(width_mult=1 / 8).eval()
    x = image((1, 3, 224, 224))
    with mc.no_grad():
        _, pools = shapes_after(model.features.children(), x, nn.MaxPool2d)
        out = model(x)
    assert pools == [(8, 112, 112), (16, 56, 56), (32, 28, 28), (64, 14, 14), (64, 7, 7)]
    assert out.shape == (1, 1000)


def googlenet_stages(model, x):
    """The outputs after each row of the paper's Table 1 (eval mode, no aux)."""
    shapes = {}
    for name in ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2", "inception3a",
                 "inception3b", "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d",
                 "inception4e", "maxpool4", "inception5a", "inception5b", "avgpool"]:
        x = getattr(model, name)(x)
        shapes[name] = tuple(x.shape[1:])
    return shapes


def test_googlenet_table1_shapes():
    model = models.googlenet().eval()
    with mc.no_grad():
        shapes = googlenet_stages(model, image((1, 3, 224, 224)))
    expected = {
        "conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv3": (192, 56, 56),
        "maxpool2": (192, 28, 28), "inception3a": (256, 28, 28), "inception3b": (480, 28, 28),
        "maxpool3": (480, 14, 14), "inception4a": (512, 14, 14), "inception4b": (512, 14, 14),
        "inception4c": (512, 14, 14), "inception4d": (528, 14, 14), "inception4e": (832, 14, 14),
        "maxpool4": (832, 7, 7), "inception5a": (832, 7, 7), "inception5b": (1024, 7, 7),
        "avgpool": (1024, 1, 1)}
    assert {k: shapes[k] for k in expected} == expected


def test_googlenet_aux_outputs_train_and_eval():
    model = models.googlenet(width_mult=1 / 8, num_classes=5)
    x = image((2, 3, 224, 224))
    with mc.no_grad():
        model.train()
        out = model(x)
        assert isinstance(out, tuple) and len(out) == 3
        assert [o.shape for o in out] == [(2, 5)] * 3
        # aux heads: 5x5/3 average pool turns 14x14 into 4x4, 1x1 conv to 128 (scaled: 16)
        assert model.aux1.fc1.weight.shape == (128, 16 * 4 * 4)
        model.eval()
        out = model(x)
        assert isinstance(out, mc.Tensor) and out.shape == (2, 5)
        no_aux = models.googlenet(width_mult=1 / 8, num_classes=5, aux_logits=False).train()
        assert isinstance(no_aux(x), mc.Tensor)
    assert not any(name.startswith("aux") for name, _ in no_aux.named_parameters())


def test_googlenet_full_aux_head_sizes(fast_init):
    model = models.googlenet()
    assert model.aux1.conv.weight.shape == (128, 512, 1, 1)
    assert model.aux2.conv.weight.shape == (128, 528, 1, 1)
    assert model.aux1.fc1.weight.shape == (1024, 2048) and model.aux1.fc2.weight.shape == (1000, 1024)
    assert model.aux1.dropout.p == 0.7 and model.dropout.p == 0.4


def test_googlenet_loss_weights_aux_by_0_3():
    rng = np.random.default_rng(3)
    logits, a1, a2 = (mc.Tensor(rng.standard_normal((4, 6))) for _ in range(3))
    target = np.array([0, 5, 2, 1])
    ce = lambda t: F.cross_entropy(t, target).item()  # noqa: E731
    total = models.googlenet_loss((logits, a1, a2), target).item()
    np.testing.assert_allclose(total, ce(logits) + 0.3 * (ce(a1) + ce(a2)), rtol=1e-6)
    np.testing.assert_allclose(models.googlenet_loss(logits, target).item(), ce(logits), rtol=1e-6)


def test_resnet_stage_shapes():
    model = models.resnet18().eval()
    x = image((1, 3, 224, 224))
    with mc.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        assert x.shape == (1, 64, 56, 56)
        stages = []
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            x = layer(x)
            stages.append(tuple(x.shape[1:]))
        assert stages == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
        assert model.fc(F.flatten(model.avgpool(x), 1)).shape == (1, 1000)


def test_resnet50_stage_shapes_small():
    model = models.resnet50(width_mult=1 / 8).eval()
    x = image((1, 3, 64, 64))
    with mc.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        stages = []
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            x = layer(x)
            stages.append(tuple(x.shape[1:]))
    assert stages == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2)]   # 256/512/1024/2048 / 8


def test_alphago_policy():
    model = models.alphago_policy(k=8)
    x = image((2, 48, 19, 19))
    with mc.no_grad():
        logits = model(x)
        probs = F.softmax(logits, axis=1)
    assert logits.shape == (2, 361)
    np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert model.head.bias is None and model.position_bias.shape == (361,)
    convs = [m for m in model.features.children() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in convs] == [(5, 5)] + [(3, 3)] * 11
    # one bias per point: raising point 100's bias raises only logit 100
    model.position_bias.data[100] += 1.0
    with mc.no_grad():
        diff = model(x).numpy() - logits.numpy()
    np.testing.assert_allclose(diff[:, 100], 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.delete(diff, 100, axis=1), 0.0, atol=1e-6)
    small = models.alphago_policy(k=4, in_planes=3, board_size=9)
    with mc.no_grad():
        assert small(image((1, 3, 9, 9))).shape == (1, 81)
    with pytest.raises(ValueError, match=r"alphago_policy: expected input of shape \(N, 3, 9, 9\)"):
        small(image((1, 3, 19, 19)))


# ---- small_input stems, width_mult, errors, registry --------------------------------------
SMALL = [
    ("alexnet", {"variant": "paper"}), ("alexnet", {"variant": "torchvision"}), ("alexnet", {"variant": "bn"}),
    ("zfnet", {}), ("vgg11", {}), ("vgg16", {"batch_norm": True}), ("googlenet", {}),
    ("resnet18", {}), ("resnet50", {}), ("plain18", {}),
]


@pytest.mark.parametrize("name, kwargs", SMALL, ids=[f"{s[0]}{s[1]}" for s in SMALL])
def test_small_input_runs_on_32x32(name, kwargs):
    model = models.get_model(name, num_classes=10, width_mult=1 / 16, small_input=True, **kwargs).eval()
    with mc.no_grad():
        out = model(image((2, 3, 32, 32)))
    assert out.shape == (2, 10) and np.isfinite(out.numpy()).all()


def test_width_mult_scales_channels():
    assert models.resnet18(width_mult=0.5).layer4[1].conv2.weight.shape == (256, 256, 3, 3)
    # grouped convs stay divisible by their 2 groups
    alex = models.alexnet(width_mult=0.3, small_input=True)
    assert all(m.out_channels % 2 == 0 and m.in_channels % 2 == 0
               for m in alex.features.children() if isinstance(m, nn.Conv2d) and m.groups == 2)
    assert models.lenet5(width_mult=2).features[0].out_channels == 12


def test_in_channels_and_dtype():
    model = models.resnet18(in_channels=1, num_classes=4, width_mult=1 / 16, small_input=True).eval()
    assert model.conv1.weight.shape == (4, 1, 3, 3)
    with mc.no_grad():
        out = model(image((1, 1, 32, 32)))
    assert out.shape == (1, 4) and out.dtype == np.float32


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="alexnet: expected variant to be one of 'paper', 'torchvision', 'bn', got 'keras'"):
        models.alexnet(variant="keras")
    with pytest.raises(ValueError, match="vgg: expected cfg to be one of .*got 'F'"):
        models.vgg("F")
    with pytest.raises(ValueError, match="resnet18: expected width_mult > 0, got 0"):
        models.resnet18(width_mult=0)
    with pytest.raises(ValueError, match="lenet5: expected num_classes to be a positive int, got 0"):
        models.lenet5(num_classes=0)
    with pytest.raises(TypeError, match="googlenet: expected in_channels to be a positive int, got 2.5"):
        models.googlenet(in_channels=2.5)
    with pytest.raises(ValueError, match="alphago_policy: num_classes must be board_size\\*\\*2 = 361"):
        models.alphago_policy(num_classes=10)
    with pytest.raises(ValueError, match="get_model: unknown model 'resnet19'"):
        models.get_model("resnet19")


def test_registry_lists_and_builds_everything():
    names = models.list_models()
    for name in ["lenet5", "alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet",
                 "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34",
                 "alphago_policy"]:
        assert name in names
        assert callable(getattr(models, name))
    for name in names:
        kwargs = {} if name == "lenet5" else {"width_mult": 1 / 16}
        assert isinstance(models.get_model(name, **kwargs), nn.Module)
    assert isinstance(models.get_model("vgg", cfg="C", width_mult=1 / 16), nn.Module)
    assert any(isinstance(m, nn.BatchNorm2d) for m in models.get_model("vgg11_bn", width_mult=1 / 16).modules())


# ---- each family can learn: overfit a tiny batch ----------------------------------------------
def overfit(model, x, target, max_steps, lr, train, loss_fn=F.cross_entropy):
    """Adam on one fixed batch until the loss is below 10% of the first; (first, last, steps).

    As in the usual sanity check, regularisation is off where it can be: nets without batch
    norm run in eval mode (dropout off; gradients flow just the same); nets with batch norm
    train in training mode (batch statistics)."""
    opt = optim.Adam(model.parameters(), lr=lr)
    model.train(train)
    first = None
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        last = loss.item()
        first = last if first is None else first
        if last < 0.1 * first:
            break
    return first, last, step


# name, builder kwargs, input shape, max steps (about twice what it needs), lr, train mode
FAMILIES = [
    ("lenet5", {"width_mult": 0.5}, (1, 28, 28), 40, 3e-3, False),
    ("alexnet", {"width_mult": 1 / 16, "small_input": True}, (3, 32, 32), 50, 3e-3, False),
    ("zfnet", {"width_mult": 1 / 16, "small_input": True}, (3, 32, 32), 40, 3e-3, False),
    ("vgg11", {"width_mult": 1 / 16, "small_input": True}, (3, 32, 32), 80, 3e-3, False),
    ("googlenet", {"width_mult": 1 / 16, "small_input": True}, (3, 32, 32), 40, 3e-3, False),
    ("resnet18", {"width_mult": 1 / 16, "small_input": True}, (3, 32, 32), 30, 3e-3, True),
]


@pytest.mark.parametrize("name, kwargs, shape, max_steps, lr, train", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_small_model_overfits_tiny_batch(name, kwargs, shape, max_steps, lr, train):
    mc.manual_seed(0)
    model = models.get_model(name, num_classes=4, **kwargs)
    x = image((8,) + shape, seed=1)
    target = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    first, last, steps = overfit(model, x, target, max_steps, lr, train)
    assert first > 1.0   # starts near ln(4): nothing learned yet
    assert last < 0.1 * first, (first, last, steps)


def test_alphago_policy_overfits_tiny_batch():
    mc.manual_seed(0)
    model = models.alphago_policy(k=8, in_planes=4, board_size=5)
    x = image((6, 4, 5, 5), seed=2)
    target = np.array([0, 7, 12, 18, 24, 3])
    first, last, steps = overfit(model, x, target, 80, 1e-2, train=True)
    assert last < 0.1 * first, (first, last, steps)


def test_googlenet_aux_losses_train_the_aux_heads():
    """In training mode googlenet_loss reaches all three heads; in eval mode the aux heads get
    no gradient (they are not run)."""
    mc.manual_seed(0)
    model = models.googlenet(width_mult=1 / 16, small_input=True, num_classes=4)
    x, target = image((4, 3, 32, 32), seed=4), np.array([0, 1, 2, 3])
    model.train()
    models.googlenet_loss(model(x), target).backward()
    for name in ("aux1.fc2.weight", "aux2.conv.weight", "fc.weight", "inception4a.branch1.0.weight",
                 "inception4e.branch1.0.weight", "conv1.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and np.abs(grad).max() > 0, name
    model.zero_grad()
    model.eval()
    F.cross_entropy(model(x), target).backward()
    assert dict(model.named_parameters())["aux1.fc2.weight"].grad is None
    assert np.abs(dict(model.named_parameters())["fc.weight"].grad).max() > 0
