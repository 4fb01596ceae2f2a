"""nn.summary: rows, shapes in both forms, parameter and multiply-add totals computed by hand."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import nn


def small_net():
    mc.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),      # (1, 8, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),                    # (1, 8, 4, 4)
        nn.Conv2d(8, 16, 3, groups=2),      # (1, 16, 2, 2)
        nn.Dropout(0.5),
        nn.Flatten(),                       # (1, 64)
        nn.Linear(64, 10),                  # (1, 10)
        nn.BatchNorm1d(10),
    )


# by hand:
#   conv0:  params 8*3*3*3 + 8 = 224;   MACs (8*8*8 outputs) * 3*3*3       = 13,824
#   conv3:  params 16*4*3*3 + 16 = 592; MACs (16*2*2 outputs) * (8/2)*3*3  = 2,304
#   linear: params 64*10 + 10 = 650;    MACs 10 outputs * 64               = 640
#   bn:     params 10 + 10 = 20 (its running statistics are buffers, not parameters)
TOTAL_PARAMS = 224 + 592 + 650 + 20
TOTAL_MACS = 13824 + 2304 + 640


def test_rows_shapes_params_and_macs_by_hand():
    s = nn.summary(small_net(), (3, 8, 8))
    assert [(r.name, r.type) for r in s.rows] == [
        ("0", "Conv2d"), ("1", "ReLU"), ("2", "MaxPool2d"), ("3", "Conv2d"), ("4", "Dropout"), ("5", "Flatten"),
        ("6", "Linear"), ("7", "BatchNorm1d")]
    assert [r.output_shape for r in s.rows] == [(1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 4, 4), (1, 16, 2, 2),
                                                (1, 16, 2, 2), (1, 64), (1, 10), (1, 10)]
    assert [r.output_hwc for r in s.rows] == ["8x8x8", "8x8x8", "4x4x8", "2x2x16", "2x2x16", "64", "10", "10"]
    assert [r.params for r in s.rows] == [224, 0, 0, 592, 0, 0, 650, 20]
    assert [r.macs for r in s.rows] == [13824, 0, 0, 2304, 0, 0, 640, 0]
    assert s.total_params == TOTAL_PARAMS == sum(r.params for r in s.rows)
    assert s.trainable_params == TOTAL_PARAMS and s.non_trainable_params == 0
    assert s.total_macs == TOTAL_MACS
    assert s.output_shape == (1, 10)


def test_activation_memory_for_one_image():
    s = nn.summary(small_net(), (3, 8, 8))
    # float32: the input (3*8*8) plus every row's output
    elements = 3 * 64 + (512 + 512 + 128 + 64 + 64 + 64 + 10 + 10)
    assert s.input_bytes == 3 * 64 * 4
    assert s.activation_bytes == 4 * elements
    assert s.param_bytes == 4 * TOTAL_PARAMS


def test_text_table_contains_every_row_and_the_totals():
    s = nn.summary(small_net(), (3, 8, 8))
    text = str(s)
    assert isinstance(s, str) and text == s
    lines = text.splitlines()
    conv_line = next(line for line in lines if line.startswith("0 (Conv2d)"))
    assert "(1, 8, 8, 8)" in conv_line and "8x8x8" in conv_line and "224" in conv_line and "13,824" in conv_line
    assert any(line.startswith("6 (Linear)") and "640" in line for line in lines)
    assert f"Total params: {TOTAL_PARAMS:,}" in text
    assert f"Trainable params: {TOTAL_PARAMS:,}" in text
    assert f"Total mult-adds: {TOTAL_MACS:,}" in text
    assert "Activation memory (one image, forward)" in text
    assert repr(s) == text


def test_as_dict_has_rows_and_totals():
    d = nn.summary(small_net(), (3, 8, 8)).as_dict()
    assert d["total_params"] == TOTAL_PARAMS and d["total_macs"] == TOTAL_MACS
    assert d["trainable_params"] == TOTAL_PARAMS and d["input_shape"] == (3, 8, 8)
    assert d["rows"][0] == {"name": "0", "type": "Conv2d", "output_shape": (1, 8, 8, 8), "output_hwc": "8x8x8",
                            "params": 224, "macs": 13824, "output_bytes": 2048}


def test_frozen_parameters_are_not_trainable():
    net = small_net()
    net[0].requires_grad_(False)
    s = nn.summary(net, (3, 8, 8))
    assert s.total_params == TOTAL_PARAMS and s.trainable_params == TOTAL_PARAMS - 224
    assert "Non-trainable params: 224" in s


def test_runs_in_eval_without_graph_and_restores_every_mode():
    net = small_net()
    net[4].eval()                                  # a mixed state must come back as it was
    s = nn.summary(net, (3, 8, 8))
    assert s.total_params == TOTAL_PARAMS
    assert [m.training for m in net.modules()] == [True, True, True, True, True, False, True, True, True]
    assert int(net[7].num_batches_tracked.data) == 0       # batch norm ran in eval: no update
    assert all(p.grad is None for p in net.parameters())
    assert all(not m._forward_hooks for m in net.modules())   # hooks removed


def test_hooks_are_removed_even_when_the_forward_fails():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))
    with pytest.raises(ValueError):
        nn.summary(net, (4,))
    assert all(not m._forward_hooks for m in net.modules()) and net.training


class TwoHeads(nn.Module):
    """Returns a tuple, like GoogLeNet with its auxiliary classifiers, and owns a parameter."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(8, 3)
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        h = self.body(x)
        return self.head(h.reshape(h.shape[0], -1)) * self.scale, h


def test_models_returning_tuples_and_modules_with_own_parameters():
    s = nn.summary(TwoHeads(), (1, 4, 4))
    assert s.output_shape == ((1, 3), (1, 2, 2, 2))
    assert [(r.name, r.type) for r in s.rows] == [("body", "Conv2d"), ("head", "Linear"), ("", "TwoHeads")]
    root = s.rows[-1]
    assert root.output_shape == ((1, 3), (1, 2, 2, 2)) and root.output_hwc == "3, 2x2x2" and root.params == 1
    assert s.total_params == (2 * 9 + 2) + (8 * 3 + 3) + 1
    assert s.total_macs == 2 * 2 * 2 * 9 + 3 * 8


def test_shared_module_called_twice_gets_two_rows_but_params_counted_once():
    lin = nn.Linear(4, 4)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    s = nn.summary(net, (4,))
    assert [r.params for r in s.rows] == [20, 0, 0]
    assert [r.macs for r in s.rows] == [16, 0, 16]
    assert s.total_params == 20 and s.total_macs == 32


def test_conv1d_macs_and_float64_models():
    net = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2)).double()
    s = nn.summary(net, (2, 9))
    assert s.rows[0].output_shape == (1, 4, 4) and s.rows[0].output_hwc == "4x4"
    assert s.total_macs == 4 * 4 * 2 * 3
    assert s.input_bytes == 2 * 9 * 8
