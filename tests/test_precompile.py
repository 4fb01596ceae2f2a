"""minicnn/precompile.py: the helper that compiles a model's kernels from the last layer back
while the first training step compiles them from the first layer on."""
import json
import os
import subprocess
import sys

import numpy as np

import minicnn as mc
from minicnn import precompile
from minicnn.models import lenet5, resnet18


def test_leaf_calls_records_each_layer_input_in_forward_order():
    model = lenet5(num_classes=4)
    calls, out = precompile.leaf_calls(model, (1, 28, 28))
    names = [type(m).__name__ for m, _, _ in calls]
    assert names == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                     "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    shapes = [shape for _, shape, _ in calls]
    assert shapes[:4] == [(1, 28, 28), (6, 28, 28), (6, 28, 28), (6, 14, 14)] and shapes[6] == (400,)
    assert [grad for _, _, grad in calls] == [False] + [True] * 10   # the images need no gradient
    assert out.shape == (2, 4)


def test_compile_in_reverse_runs_every_layer_alone_and_steps_the_optimiser():
    """Every parameter gets a gradient (each layer ran forward and backward alone, last first),
    and the optimiser moved them; a model with residual blocks and batch norm works too."""
    for model, shape in ((lenet5(num_classes=4), (1, 28, 28)),
                         (resnet18(num_classes=10, small_input=True, width_mult=0.25), (3, 32, 32))):
        before = [p.numpy().copy() for p in model.parameters()]
        optimizer = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        precompile.compile_in_reverse(model, optimizer, shape, batch_size=4)
        assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())
        assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))


def test_precompile_runs_as_a_process(tmp_path):
    """`python -m minicnn.precompile SPEC`, as `minicnn train` starts it, exits cleanly."""
    spec = {"model": "lenet5", "model_kwargs": {"num_classes": 4, "in_channels": 1},
            "image_shape": [1, 28, 28], "batch_size": 8,
            "optimizer": {"optimizer": "sgd", "lr": None, "momentum": 0.9, "weight_decay": 0.0}}
    done = subprocess.run([sys.executable, "-m", "minicnn.precompile", json.dumps(spec)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr


def test_train_starts_the_helper_on_a_first_run_only(monkeypatch, tmp_path):
    """The helper starts when the model's compiled-marker is missing, and not once it is there."""
    from minicnn import cli
    started = []
    monkeypatch.setattr(cli, "_start_precompile", lambda args: started.append(args["model"]))
    marker = tmp_path / "marker"
    monkeypatch.setattr("minicnn.kernels.cpu._jit.compiled_marker", lambda name: str(marker))
    argv = ["train", "--epochs", "1", "--train-size", "64", "--test-size", "32", "--quiet",
            "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    assert started == ["lenet5"] and marker.exists()
    assert cli.main(argv) == 0
    assert started == ["lenet5"]


def test_start_precompile_starts_a_process_unless_switched_off(monkeypatch):
    from minicnn import cli
    args = dict(cli.TRAIN_DEFAULTS)
    monkeypatch.setenv("MINICNN_PRECOMPILE", "0")
    assert cli._start_precompile(args) is None
    monkeypatch.setenv("MINICNN_PRECOMPILE", "1")
    helper = cli._start_precompile(args)
    if (os.cpu_count() or 1) < 2:
        assert helper is None
        return
    try:
        assert helper.poll() is None or helper.returncode == 0
    finally:
        cli._stop_precompile(helper)
    assert helper.poll() is not None
