"""torchvision's models, their weights saved by PyTorch as safetensors, give the same logits in
minicnn's builders; and minicnn's weights load back into torchvision. Needs PyTorch and
torchvision (the `bench` extra); skipped without them. Random weights stand in for ImageNet's
(no download): batch norm statistics and affine parameters are drawn too, so every buffer counts.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]')")
try:
    import torchvision
except ImportError:
    pytest.skip("torchvision is not installed (the bench extra)", allow_module_level=True)
except RuntimeError as exc:   # e.g. PyPI's torchvision (built for CUDA torch) beside a +cpu torch
    pytest.skip(f"torchvision does not fit the installed torch {torch.__version__} (install the "
                f"matching pair from one source, see docs/fine_tuning.md): {exc}",
                allow_module_level=True)
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")

import minicnn as mc  # noqa: E402
from minicnn import models  # noqa: E402


def randomise_batch_norms(net, seed):
    """Non-trivial statistics and affine parameters in every batch norm of a torch model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.num_batches_tracked.fill_(1234)
    return net


def torch_file(tmp_path, net, name):
    """Save `net`'s state dict as PyTorch users do: safetensors.torch.save_file."""
    path = tmp_path / f"{name}.safetensors"
    safetensors_torch.save_file(net.state_dict(), str(path))
    return path


def logits_of(net, x):
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def ours(model, x):
    model.eval()
    with mc.no_grad():
        return model(mc.Tensor(x)).numpy()


def assert_same_logits(a, b):
    scale = float(np.abs(b).max())
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(scale, 1.0))
    assert np.array_equal(a.argmax(1), b.argmax(1))


def image(n, size, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def test_resnet34_from_a_torchvision_file(tmp_path):
    torch.manual_seed(0)
    net = randomise_batch_norms(torchvision.models.resnet34(num_classes=10), 1)
    path = torch_file(tmp_path, net, "resnet34")
    x = image(2, 64)
    model = models.resnet34(num_classes=10, weights=path)
    assert_same_logits(ours(model, x), logits_of(net, x))
    assert int(model.bn1.num_batches_tracked.data) == 1234


def test_vgg16_from_a_torchvision_file(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.vgg16(num_classes=10)   # full size: its classifier reads 512 x 7 x 7
    path = torch_file(tmp_path, net, "vgg16")
    x = image(2, 32)                                 # the smallest input its five pools take
    assert_same_logits(ours(models.vgg16(num_classes=10, weights=path), x), logits_of(net, x))


def test_vgg11_bn_from_a_torchvision_file(tmp_path):
    torch.manual_seed(0)
    net = randomise_batch_norms(torchvision.models.vgg11_bn(num_classes=10), 2)
    path = torch_file(tmp_path, net, "vgg11_bn")
    x = image(2, 32)
    model = models.get_model("vgg11_bn", num_classes=10, weights=path)
    assert_same_logits(ours(model, x), logits_of(net, x))


def test_alexnet_from_a_torchvision_file(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.alexnet(num_classes=10)
    path = torch_file(tmp_path, net, "alexnet")
    x = image(2, 64)
    model = models.alexnet(num_classes=10, variant="torchvision", weights=path)
    assert_same_logits(ours(model, x), logits_of(net, x))


@pytest.mark.parametrize("aux_logits", [True, False])
def test_googlenet_from_a_torchvision_file(tmp_path, aux_logits):
    torch.manual_seed(0)
    # as torchvision loads its ImageNet weights: transform_input=True, the file has aux classifiers
    net = torchvision.models.googlenet(num_classes=10, aux_logits=True, transform_input=True,
                                       init_weights=True)
    randomise_batch_norms(net, 3)
    path = torch_file(tmp_path, net, "googlenet")
    x = image(2, 64)
    model = models.googlenet(num_classes=10, variant="torchvision", aux_logits=aux_logits,
                             weights=path)
    assert model.transform_input       # the default when weights are given, as torchvision
    assert_same_logits(ours(model, x), logits_of(net, x))


def test_googlenet_torchvision_parameter_count_and_names_match():
    net = torchvision.models.googlenet(aux_logits=True, init_weights=False)
    model = models.googlenet(variant="torchvision")
    theirs = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    mine = {k: v.shape for k, v in model.state_dict().items()}
    assert mine == theirs


def test_a_head_for_other_classes_loads_everything_else(tmp_path):
    torch.manual_seed(0)
    net = randomise_batch_norms(torchvision.models.resnet18(num_classes=1000), 4)
    path = torch_file(tmp_path, net, "resnet18")
    with pytest.warns(UserWarning, match=r"head of .*fc\.weight \(1000, 512\) -> \(2, 512\)"):
        model = models.resnet18(num_classes=2, weights=path)
    np.testing.assert_array_equal(model.layer4[1].conv2.weight.data,
                                  net.layer4[1].conv2.weight.detach().numpy())
    model.eval()
    net.eval()
    x = image(2, 64)
    with mc.no_grad():   # the features (everything before fc) are torchvision's
        mine = mc.functional.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(model.layer1(
            model.maxpool(model.relu(model.bn1(model.conv1(mc.Tensor(x)))))))))), 1).numpy()
    with torch.no_grad():
        t = torch.from_numpy(x)
        t = net.maxpool(net.relu(net.bn1(net.conv1(t))))
        theirs = torch.flatten(net.avgpool(net.layer4(net.layer3(net.layer2(net.layer1(t))))), 1).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("builder, tv, size", [
    (lambda: models.resnet18(num_classes=7), lambda: torchvision.models.resnet18(num_classes=7), 64),
    (lambda: models.alexnet(num_classes=7, variant="torchvision"),
     lambda: torchvision.models.alexnet(num_classes=7), 64),
    (lambda: models.googlenet(num_classes=7, variant="torchvision", aux_logits=False),
     lambda: torchvision.models.googlenet(num_classes=7, aux_logits=False, init_weights=False), 64),
], ids=["resnet18", "alexnet", "googlenet"])
def test_minicnn_weights_load_into_torchvision(tmp_path, builder, tv, size):
    mc.manual_seed(0)
    model = builder()
    model.train()
    with mc.no_grad():   # a few batches in training mode give the batch norms real statistics
        for seed in range(2):
            model(mc.Tensor(image(4, size, seed + 10)))
    path = tmp_path / "mine.safetensors"
    mc.save_safetensors(model.state_dict(), path, metadata={"from": "minicnn"})
    net = tv()
    net.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    x = image(2, size)
    assert_same_logits(ours(model, x), logits_of(net, x))


def test_float16_file_from_pytorch_is_cast_with_a_warning(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.alexnet(num_classes=5)
    halves = {k: v.to(torch.bfloat16 if "features" in k else torch.float16) for k, v in net.state_dict().items()}
    path = tmp_path / "half.safetensors"
    safetensors_torch.save_file(halves, str(path))
    with pytest.warns(UserWarning, match="float16/bfloat16"):
        sd = mc.load_safetensors(path)
    for k, v in halves.items():
        assert sd[k].dtype == np.float32
        np.testing.assert_array_equal(sd[k], v.float().numpy())   # exact: both widen exactly
