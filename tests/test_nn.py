"""minicnn.nn: Module mechanics (registration, names, state dicts, modes, hooks, devices), the
containers, and every layer's defaults, parameter shapes, default initialisation and forward."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn
from oracles import naive_conv2d


# ---- small modules built from Tensor operators only -----------------------------------------
class Affine(nn.Module):
    """y = x * scale + shift, with a buffer that counts calls."""

    def __init__(self, n):
        super().__init__()
        self.scale = nn.Parameter(np.arange(1, n + 1, dtype=np.float32))
        self.shift = nn.Parameter(np.zeros(n, dtype=np.float32))
        self.register_buffer("calls", np.array(0, dtype=np.int64))

    def forward(self, x):
        self.calls.data += 1
        return x * self.scale + self.shift


class Block(nn.Module):
    """Names as in torchvision's BasicBlock: conv, bn, and a Sequential `downsample`."""

    def __init__(self):
        super().__init__()
        self.conv1 = Affine(2)
        self.downsample = nn.Sequential(Affine(2), Affine(2))

    def forward(self, x):
        return self.conv1(x) + self.downsample(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(Affine(2), nn.Identity(), Affine(2))
        self.layer1 = nn.Sequential(Block())
        self.heads = nn.ModuleList([Affine(2), Affine(2)])

    def forward(self, x):
        x = self.layer1(self.features(x))
        return self.heads[0](x) + self.heads[1](x)


EXPECTED_PARAMS = ["features.0.scale", "features.0.shift", "features.2.scale", "features.2.shift",
                   "layer1.0.conv1.scale", "layer1.0.conv1.shift",
                   "layer1.0.downsample.0.scale", "layer1.0.downsample.0.shift",
                   "layer1.0.downsample.1.scale", "layer1.0.downsample.1.shift",
                   "heads.0.scale", "heads.0.shift", "heads.1.scale", "heads.1.shift"]


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    assert isinstance(p, mc.Tensor) and p.requires_grad and p.dtype == np.float32
    assert nn.Parameter(mc.Tensor(np.ones(2), dtype=np.float64)).dtype == np.float64
    assert not nn.Parameter(np.ones(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


def test_named_parameters_use_pytorch_dotted_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == EXPECTED_PARAMS
    assert len(list(net.parameters())) == len(EXPECTED_PARAMS)
    assert net.num_parameters() == 2 * len(EXPECTED_PARAMS)
    assert [n for n, _ in net.named_buffers()] == [n.rsplit(".", 1)[0] + ".calls"
                                                   for n in EXPECTED_PARAMS[::2]]
    names = [n for n, _ in net.named_modules()]
    assert names[:4] == ["", "features", "features.0", "features.1"]
    assert "layer1.0.downsample.1" in names and "heads.1" in names
    assert [n for n, _ in net.named_children()] == ["features", "layer1", "heads"]
    assert list(net.children()) == [net.features, net.layer1, net.heads]
    assert len(list(net.modules())) == len(names)


def test_state_dict_has_parameters_then_buffers_per_module_in_order_as_copies():
    net = Net()
    sd = net.state_dict()
    assert list(sd)[:3] == ["features.0.scale", "features.0.shift", "features.0.calls"]
    assert len(sd) == len(EXPECTED_PARAMS) * 3 // 2
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["features.0.calls"].dtype == np.int64 and sd["features.0.calls"].shape == ()
    sd["features.0.scale"][0] = 99.0          # a copy: the model is untouched
    assert net.features[0].scale.data[0] == 1.0
    kv = net.state_dict(keep_vars=True)
    assert kv["features.0.scale"] is net.features[0].scale


def test_shared_parameter_listed_once_but_named_twice_in_state_dict():
    a = Affine(2)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.scale", "0.shift", "0.calls", "1.scale", "1.shift", "1.calls"]


def test_non_persistent_buffer_is_not_in_state_dict():
    m = nn.Module()
    m.register_buffer("kept", np.zeros(2))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]


def test_attribute_assignment_registers_and_reassignment_replaces():
    m = nn.Module()
    m.w = nn.Parameter(np.zeros(3))
    m.child = nn.Identity()
    m.plain = 5
    assert [n for n, _ in m.named_parameters()] == ["w"]
    assert list(m._modules) == ["child"] and m.plain == 5
    m.w = None                                   # a parameter slot may be emptied
    assert list(m.parameters()) == []
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'w'"):
        m.w = np.zeros(3)
    m.child = nn.Linear(2, 3)                    # a module replaces a module
    assert [n for n, _ in m.named_parameters()] == ["child.weight", "child.bias"]
    del m.child
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        m.missing


def test_assignment_before_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Bad()


def test_train_eval_propagate_to_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.layer1.train(False)
    assert net.training and not net.layer1[0].downsample[1].training


def test_forward_and_backward_through_nested_modules():
    net = Net()
    x = mc.Tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    out = net(x)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    assert net.features[0].calls.data == 1 and net.heads[1].calls.data == 1
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_zero_grad_set_to_none_false_gives_zeros():
    m = Affine(3)
    (m(mc.Tensor(np.ones(3))) * 2).sum().backward()
    np.testing.assert_array_equal(m.scale.grad, [2, 2, 2])
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m.scale.grad, [0, 0, 0])


def test_load_state_dict_round_trip_copies_in_place_and_keeps_dtype():
    src, dst = Net(), Net()
    for p in src.parameters():
        p.data[...] = np.random.default_rng(0).standard_normal(p.shape)
    before = dst.features[0].scale
    sd = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in src.state_dict().items()}
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.features[0].scale is before and before.dtype == np.float32   # same object, own dtype
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k], v)


def test_load_state_dict_strict_lists_all_problems_in_one_error_and_copies_nothing():
    net = Net()
    sd = net.state_dict()
    del sd["features.0.scale"], sd["heads.1.calls"]
    sd["extra.weight"] = np.zeros(1)
    sd["layer1.0.conv1.shift"] = np.zeros(5)
    sd["features.2.shift"] = np.full(2, 7.0, np.float32)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "features.0.scale", "heads.1.calls".' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight".' in msg
    assert "size mismatch for layer1.0.conv1.shift: copying a param with shape (5,) from checkpoint, " \
           "the shape in current model is (2,)." in msg
    assert isinstance(info.value, ValueError)
    assert net.features[2].shift.data[0] == 0.0   # nothing was copied


def test_load_state_dict_non_strict_reports_and_loads_the_rest():
    net = Net()
    sd = net.state_dict()
    del sd["features.0.scale"]
    sd["extra"] = np.zeros(1)
    sd["heads.0.scale"] = np.array([5.0, 6.0])
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["features.0.scale"] and unexpected == ["extra"]
    np.testing.assert_array_equal(net.heads[0].scale.data, [5.0, 6.0])
    sd["heads.0.scale"] = np.zeros(3)     # shape mismatches raise even when not strict (as PyTorch)
    with pytest.raises(RuntimeError, match="size mismatch for heads.0.scale"):
        net.load_state_dict(sd, strict=False)


def test_load_state_dict_accepts_tensors():
    m = nn.Linear(2, 3)
    m.load_state_dict({"weight": mc.Tensor(np.ones((3, 2))), "bias": np.arange(3.0)})
    np.testing.assert_array_equal(m.bias.data, [0, 1, 2])


@pytest.mark.parametrize("bad", [
    np.array([["a", "b"], ["c", "d"], ["e", "f"]]),    # strings: no cast to float32
    np.array([[1 + 2j, 0], [0, 0], [0, 0]]),            # complex: the imaginary part would be lost
    [[1.0, 2.0], [3.0]],                                # ragged: not an array at all
    None,
])
def test_load_state_dict_is_all_or_nothing_when_a_value_cannot_be_cast(bad):
    """The valid entries listed before the bad one are not copied either."""
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
    before = net.state_dict()
    sd = {k: v + 1 for k, v in before.items()}          # every value valid and different...
    sd["1.weight"] = bad                                # ...but one
    with pytest.raises(nn.StateDictError, match=r"1\.weight"):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])     # nothing was copied


def test_load_state_dict_wants_a_mapping():
    with pytest.raises(TypeError, match="load_state_dict: expected a dict name -> array, got list"):
        nn.Linear(2, 2).load_state_dict([np.ones((2, 2)), np.ones(2)])


def test_repr_matches_pytorch_layout():
    net = nn.Sequential(nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
                        nn.MaxPool2d(3, 2), nn.Flatten(), nn.Linear(64, 10, bias=False))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))\n"
        "  (1): ReLU(inplace=True)\n"
        "  (2): MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_axis=1)\n"
        "  (4): Linear(in_features=64, out_features=10, bias=False)\n"
        ")")
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.Conv2d(4, 8, 3, padding="same", groups=2, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=same, groups=2, bias=False)"
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"


def test_sequential_indexing_slicing_iteration_and_ordereddict_form():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c] and list(sub._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    named = nn.Sequential(OrderedDict([("conv1", nn.Linear(2, 2)), ("relu1", a)]))
    assert [n for n, _ in named.named_parameters()] == ["conv1.weight", "conv1.bias"]
    assert named[1] is a
    seq.append(nn.Identity())
    assert len(seq) == 4 and list(seq._modules)[-1] == "3"
    x = mc.Tensor(np.array([-1.0, 0.5]))
    np.testing.assert_allclose(seq(x).data, 1 / (1 + np.exp(-np.tanh(np.maximum(x.data, 0)))), rtol=1e-6)


def test_modulelist_registers_and_renumbers():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 3)])
    ml.append(nn.Linear(3, 1))
    assert len(ml) == 3 and [n for n, _ in ml.named_parameters()][-1] == "2.bias"
    del ml[0]
    assert list(ml._modules) == ["0", "1"] and ml[0].out_features == 3
    ml.insert(0, nn.Identity())
    assert isinstance(ml[0], nn.Identity) and list(ml._modules) == ["0", "1", "2"]
    with pytest.raises(NotImplementedError):
        ml(mc.Tensor(np.zeros(2)))


def test_forward_hooks_run_and_are_removable():
    m = Affine(2)
    seen = []
    h = m.register_forward_hook(lambda mod, inp, out: seen.append((mod, out.shape)))
    pre = m.register_forward_pre_hook(lambda mod, inp: (inp[0] * 2,))
    out = m(mc.Tensor(np.ones(2)))
    np.testing.assert_array_equal(out.data, [2, 4])      # the pre-hook doubled the input
    assert seen == [(m, (2,))]
    h.remove()
    pre.remove()
    np.testing.assert_array_equal(m(mc.Tensor(np.ones(2))).data, [1, 2])
    assert len(seen) == 1


def test_apply_visits_children_first_and_requires_grad_():
    net = Net()
    order = []
    net.apply(lambda m: order.append(type(m).__name__))
    assert order[-1] == "Net" and order[0] == "Affine"
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert net.num_parameters(trainable_only=True) == 0


def test_to_cpu_and_dtype_casts_floats_only():
    m = nn.BatchNorm2d(3)
    assert m.to("cpu") is m
    m.double()
    assert m.weight.dtype == np.float64 and m.running_var.dtype == np.float64
    assert m.num_batches_tracked.dtype == np.int64
    m.to("float32")
    assert m.weight.dtype == np.float32
    with pytest.raises(ValueError, match="unknown device"):
        m.to("tpu")


def test_to_cuda_without_gpu_is_a_clear_error():
    from numba import cuda
    if cuda.is_available():
        m = nn.Linear(2, 3).to("cuda")
        assert m.weight.device == "cuda"
        assert m.state_dict()["weight"].shape == (3, 2)
    else:
        with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
            nn.Linear(2, 3).to("cuda")


# ---- layers: defaults, shapes, initialisation ---------------------------------------------------
def test_layer_parameter_shapes_and_defaults():
    conv = nn.Conv2d(6, 12, 5)
    assert conv.weight.shape == (12, 6, 5, 5) and conv.bias.shape == (12,)
    assert (conv.stride, conv.padding, conv.dilation, conv.groups) == ((1, 1), (0, 0), (1, 1), 1)
    assert nn.Conv2d(48, 256, 5, padding=2, groups=2).weight.shape == (256, 24, 5, 5)
    assert nn.Conv2d(3, 4, (3, 5), bias=False).bias is None
    assert [n for n, _ in nn.Conv2d(3, 4, 3, bias=False).named_parameters()] == ["weight"]
    c1 = nn.Conv1d(4, 6, 3, groups=2)
    assert c1.weight.shape == (6, 2, 3) and c1.kernel_size == (3,)
    lin = nn.Linear(9216, 4096)
    assert lin.weight.shape == (4096, 9216) and lin.bias.shape == (4096,) and lin.weight.dtype == np.float32
    bn = nn.BatchNorm2d(64)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.data, np.ones(64))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(64))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(64))
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)
    assert list(nn.BatchNorm1d(4, affine=False).state_dict()) == ["running_mean", "running_var",
                                                                 "num_batches_tracked"]
    assert list(nn.BatchNorm1d(4, track_running_stats=False).state_dict()) == ["weight", "bias"]
    lrn = nn.LocalResponseNorm()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert nn.Dropout().p == 0.5 and nn.Dropout2d(0.2).p == 0.2
    assert nn.LeakyReLU().negative_slope == 0.01 and nn.ELU().alpha == 1.0
    assert nn.Softmax().axis == -1 and nn.Softmax(dim=1).axis == 1
    assert nn.MaxPool2d(3).stride == 3 and nn.MaxPool2d(3, 2).stride == 2 and nn.AvgPool2d(2).stride == 2
    assert nn.Flatten().start_axis == 1
    for layer in (nn.ReLU(), nn.ReLU(inplace=True), nn.Sigmoid(), nn.Tanh(), nn.Maxout(2), nn.MaxPool2d(2),
                  nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(6), nn.GlobalAvgPool2d(), nn.Identity(), nn.Flatten()):
        assert list(layer.parameters()) == []


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(16, 32, 5), 16 * 25),
    (lambda: nn.Conv2d(16, 32, 3, groups=4), 4 * 9),
    (lambda: nn.Conv1d(8, 64, 7), 8 * 7),
    (lambda: nn.Linear(300, 200), 300),
])
def test_default_init_is_pytorch_uniform_one_over_sqrt_fan_in(make, fan_in):
    mc.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound   # fills U(-bound, bound)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound             # uniform's std
    assert abs(w.mean()) < 0.05 * bound
    assert np.abs(b).max() <= bound


def test_manual_seed_makes_initialisation_repeatable():
    mc.manual_seed(7)
    a = nn.Conv2d(3, 8, 3).state_dict()
    mc.manual_seed(7)
    b = nn.Conv2d(3, 8, 3).state_dict()
    c = nn.Conv2d(3, 8, 3).state_dict()
    np.testing.assert_array_equal(a["weight"], b["weight"])
    assert not np.array_equal(b["weight"], c["weight"])


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "padding must be"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Linear(0, 4), "in_features must be a positive int"),
    (lambda: nn.Dropout(1.5), "dropout probability has to be between 0 and 1"),
    (lambda: nn.BatchNorm2d(0), "num_features must be a positive int"),
    (lambda: nn.Maxout(0), "pieces must be a positive int"),
])
def test_bad_hyper_parameters_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---- layers: forward --------------------------------------------------------------------------------
@pytest.mark.parametrize("stride, pad, groups, bias", [(1, 0, 1, True), (2, 1, 2, True), (1, 2, 1, False)])
def test_conv2d_layer_forward_matches_naive_loops(rng, stride, pad, groups, bias):
    layer = nn.Conv2d(4, 6, 3, stride=stride, padding=pad, groups=groups, bias=bias)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    out = layer(mc.Tensor(x))
    expected = naive_conv2d(x, layer.weight.data, None if not bias else layer.bias.data, stride=stride, padding=pad, groups=groups)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


def test_conv2d_same_padding_keeps_size_and_conv1d_matches_naive(rng):
    layer = nn.Conv2d(2, 3, 3, padding="same")
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    out = layer(mc.Tensor(x))
    np.testing.assert_allclose(out.data, naive_conv2d(x, layer.weight.data, layer.bias.data, stride=1, padding=1, groups=1),
                               rtol=1e-4, atol=1e-5)
    c1 = nn.Conv1d(2, 3, 3, padding=1)
    x1 = rng.standard_normal((2, 2, 6)).astype(np.float32)
    xp = np.pad(x1, ((0, 0), (0, 0), (1, 1)))
    expected = np.zeros((2, 3, 6))
    for n, o, i in np.ndindex(2, 3, 6):
        expected[n, o, i] = (xp[n, :, i:i + 3] * c1.weight.data[o]).sum() + c1.bias.data[o]
    np.testing.assert_allclose(c1(mc.Tensor(x1)).data, expected, rtol=1e-4, atol=1e-5)


def test_linear_layer_forward_matches_naive_loops(rng):
    layer = nn.Linear(5, 3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    expected = np.zeros((4, 3))
    for n, o in np.ndindex(4, 3):
        expected[n, o] = sum(x[n, i] * layer.weight.data[o, i] for i in range(5)) + layer.bias.data[o]
    np.testing.assert_allclose(layer(mc.Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_small_network_gradcheck_in_float64(rng):
    mc.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)).double()
    params = list(net.parameters())
    assert all(p.dtype == np.float64 for p in params)
    slots = [(m, key) for _, m in net.named_modules() for key in m._parameters]
    x = mc.Tensor(rng.standard_normal((2, 2, 3, 3)), dtype=np.float64, requires_grad=True)

    def fn(x, *ps):
        for (m, key), q in zip(slots, ps):   # gradcheck passes copies: run the net on them
            m._parameters[key] = q
        return net(x)

    with mc.use_kernels("reference"):   # layer wiring is under test here; the kernels have their own
        assert mc.gradcheck(fn, [x] + params)


def test_activation_layers_call_their_functions(rng):
    x = mc.Tensor(rng.standard_normal((2, 4, 3, 3)).astype(np.float32))
    pairs = [(nn.ReLU(), F.relu(x)), (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)), (nn.Sigmoid(), F.sigmoid(x)),
             (nn.Tanh(), F.tanh(x)), (nn.ELU(0.5), F.elu(x, 0.5)), (nn.Maxout(2), F.maxout(x, 2)),
             (nn.Softmax(axis=1), F.softmax(x, axis=1)), (nn.Flatten(), F.flatten(x))]
    for layer, expected in pairs:
        np.testing.assert_array_equal(layer(x).data, expected.data)
    np.testing.assert_allclose(nn.Softmax(axis=1)(x).data.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(nn.ReLU()(x).data, np.maximum(x.data, 0))


def test_batchnorm2d_training_updates_running_stats_and_eval_uses_them(rng):
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    out = bn(mc.Tensor(x.astype(np.float32)))
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * mean, rtol=1e-5)
    unbiased = var * 100 / 99
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * unbiased, rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()
    y = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    rm, rv = bn.running_mean.data.copy(), bn.running_var.data.copy()
    out = bn(mc.Tensor(y))
    np.testing.assert_allclose(out.data, (y - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.data, rm)    # eval leaves them alone
    assert int(bn.num_batches_tracked.data) == 1


def test_batchnorm_momentum_none_is_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((6, 2)) + k for k in range(3)]
    for b in batches:
        bn(mc.Tensor(b.astype(np.float32)))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 3


def test_batchnorm_input_checks_and_pytorch_state_dict_loads():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, C, H, W\), got \(3, 4, 4\)"):
        bn(mc.Tensor(np.zeros((3, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="expected 3 channels"):
        bn(mc.Tensor(np.zeros((2, 4, 4, 4), np.float32)))
    torch_like = {"weight": np.full(3, 2.0, np.float32), "bias": np.zeros(3, np.float32),
                  "running_mean": np.ones(3, np.float32), "running_var": np.full(3, 4.0, np.float32),
                  "num_batches_tracked": np.array(10, np.int64)}
    bn.load_state_dict(torch_like)
    bn.eval()
    out = bn(mc.Tensor(np.full((1, 3, 1, 1), 3.0, np.float32)))
    np.testing.assert_allclose(out.data.ravel(), 2 * (3 - 1) / np.sqrt(4 + 1e-5), rtol=1e-6)


def test_batchnorm1d_on_n_c_l_and_without_running_stats(rng):
    bn = nn.BatchNorm1d(2)
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    out = bn(mc.Tensor(x))
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(out.data, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    np.testing.assert_allclose(free(mc.Tensor(x)).data, out.data, rtol=1e-5, atol=1e-6)   # batch stats in eval


def test_local_response_norm_layer_uses_paper_formula(rng):
    x = rng.standard_normal((1, 6, 2, 2)).astype(np.float32)
    lrn = nn.LocalResponseNorm(size=3, alpha=0.5, beta=0.75, k=2.0)
    expected = np.zeros_like(x, dtype=np.float64)
    for n, c, i, j in np.ndindex(*x.shape):
        lo, hi = max(0, c - 1), min(5, c + 1)
        expected[n, c, i, j] = x[n, c, i, j] / (2.0 + 0.5 * (x[n, lo:hi + 1, i, j] ** 2).sum()) ** 0.75
    np.testing.assert_allclose(lrn(mc.Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_pooling_layers_match_naive_loops(rng):
    x = tie_free_image(rng, (2, 3, 7, 7))
    out = nn.MaxPool2d(3, stride=2)(mc.Tensor(x))          # AlexNet's overlapping pool
    expected = np.zeros((2, 3, 3, 3))
    for n, c, i, j in np.ndindex(*expected.shape):
        expected[n, c, i, j] = x[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max()
    np.testing.assert_array_equal(out.data, expected.astype(np.float32))
    out = nn.AvgPool2d(2)(mc.Tensor(x))
    expected = np.zeros((2, 3, 3, 3))
    for n, c, i, j in np.ndindex(*expected.shape):
        expected[n, c, i, j] = x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean()
    np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-7)
    out = nn.AdaptiveAvgPool2d((2, 3))(mc.Tensor(x))
    expected = np.zeros((2, 3, 2, 3))
    for n, c, i, j in np.ndindex(*expected.shape):   # PyTorch's bins: floor(i*H/OH) .. ceil((i+1)*H/OH)
        r0, r1 = (i * 7) // 2, -((-(i + 1) * 7) // 2)
        c0, c1 = (j * 7) // 3, -((-(j + 1) * 7) // 3)
        expected[n, c, i, j] = x[n, c, r0:r1, c0:c1].mean()
    np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-7)
    out = nn.GlobalAvgPool2d()(mc.Tensor(x))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.data, x.mean(axis=(2, 3)), rtol=1e-6, atol=1e-7)


def tie_free_image(rng, shape):
    return rng.permutation(np.linspace(-2, 2, int(np.prod(shape)))).reshape(shape).astype(np.float32)


def test_dropout_layers_respect_training_flag():
    mc.manual_seed(0)
    x = mc.Tensor(np.ones((8, 4, 5, 5), np.float32))
    drop = nn.Dropout(0.25)
    out = drop(x).data
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (out == 0).mean() < 0.35
    drop.eval()
    assert drop(x).data is x.data or np.array_equal(drop(x).data, x.data)
    drop2 = nn.Dropout2d(0.5)
    out = drop2(x).data
    per_channel = out.reshape(8, 4, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))   # whole channels kept or dropped
    assert set(np.unique(out)) <= {0.0, 2.0}
    drop2.eval()
    np.testing.assert_array_equal(drop2(x).data, x.data)
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9)).eval()
    y = mc.Tensor(np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(net(y).data, net[0](y).data)       # eval() reaches the dropout inside


def test_deepcopy_gives_an_independent_model_and_dtype_device_keywords():
    import copy
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    twin = copy.deepcopy(net)
    twin[0].weight.data[...] = 0
    assert net[0].weight.data.any() and list(twin.state_dict()) == list(net.state_dict())
    lin = nn.Linear(2, 3, device="cpu", dtype=np.float64)
    assert lin.weight.dtype == np.float64 and lin.bias.dtype == np.float64 and lin.weight.device == "cpu"
    assert nn.BatchNorm2d(2, dtype=np.float64).running_mean.dtype == np.float64
