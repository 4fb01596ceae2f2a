"""The `minicnn` command line: train end to end (a subprocess of `python -m minicnn`), resume,
evaluate, summary, help, and the errors for a bad model, data set or missing MNIST."""
import json
import math
import os
import subprocess
import sys

import pytest

from minicnn import cli, train

TINY = ["--train-size", "100", "--test-size", "40", "--batch-size", "25", "--val-fraction", "0.2"]
METRIC_KEYS = {"model", "dataset", "epochs", "test_loss", "test_top1", "test_top5",
               "test_top1_error", "test_top5_error", "seconds", "images_per_s", "train_size",
               "test_size", "checkpoint"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny run of `python -m minicnn train`, shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    cmd = [sys.executable, "-m", "minicnn", "train", "--epochs", "1", *TINY, "--out", str(out),
           "--metrics-json", str(out / "metrics.json"), "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "lenet5 on shapes (80 train, 20 validation, 40 test images)" in proc.stdout
    assert "test: loss" in proc.stdout and "top-5" in proc.stdout
    return out


def test_train_end_to_end_writes_checkpoint_history_curves_metrics(run_dir):
    assert {"checkpoint.npz", "history.json", "curves.png", "metrics.json"} <= set(os.listdir(run_dir))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["model"] == "lenet5" and metrics["dataset"] == "shapes"
    assert metrics["epochs"] == 1 and metrics["train_size"] == 80 and metrics["test_size"] == 40
    assert 0 <= metrics["test_top1"] <= metrics["test_top5"] <= 1
    assert metrics["test_top1_error"] == pytest.approx(1 - metrics["test_top1"])
    assert metrics["seconds"] > 0 and metrics["images_per_s"] > 0
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 1 and history[0]["val_top1"] is not None
    ckpt = train.load_checkpoint(run_dir / "checkpoint.npz")
    assert ckpt["epoch"] == 1
    assert ckpt["meta"]["model"] == "lenet5" and ckpt["meta"]["dataset"] == "shapes"
    assert ckpt["meta"]["args"]["seed"] == 3 and ckpt["meta"]["model_kwargs"]["num_classes"] == 10


def test_evaluate_reproduces_the_test_metrics(run_dir, capsys, tmp_path):
    assert cli.main(["evaluate", str(run_dir / "checkpoint.npz"),
                     "--metrics-json", str(tmp_path / "eval.json")]) == 0
    out = capsys.readouterr().out
    assert "lenet5 on shapes test (40 images, 1 epochs trained)" in out and "top-1" in out
    got = json.loads((tmp_path / "eval.json").read_text())
    want = json.loads((run_dir / "metrics.json").read_text())
    assert got["test_top1"] == want["test_top1"] and got["test_top5"] == want["test_top5"]
    assert got["test_loss"] == pytest.approx(want["test_loss"], rel=1e-6)


def test_resume_continues_the_run(run_dir, tmp_path, capsys):
    out = tmp_path / "resumed"
    code = cli.main(["train", "--resume", str(run_dir / "checkpoint.npz"), "--epochs", "2",
                     "--out", str(out), "--lr", "0.5", "--metrics-json", str(out / "m.json")])
    assert code == 0
    err = capsys.readouterr().err
    assert "keeping the checkpoint's --lr" in err  # model/data/optimiser come from the checkpoint
    history = json.loads((out / "history.json").read_text())
    first = json.loads((run_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[0] == first[0]
    assert json.loads((out / "m.json").read_text())["epochs"] == 2
    # --resume without a path takes the newest checkpoint in --out; nothing left to do at 2 epochs
    assert cli.main(["train", "--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert len(json.loads((out / "history.json").read_text())) == 2


def test_summary_prints_the_table(capsys):
    assert cli.main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "features.0 (Conv2d)" in out and "28x28x6" in out
    assert "Total params: 61,706" in out
    assert cli.main(["summary", "lenet5", "--input-shape", "2", "28", "28", "--num-classes", "4",
                     "--model-kw", "in_channels=2"]) == 0
    out = capsys.readouterr().out
    assert "input (2, 28, 28)" in out and "(1, 4)" in out
    assert cli.main(["summary", "lenet5", "--input-shape", "1", "32", "32"]) == 2
    assert "lenet5 does not accept input (1, 32, 32)" in capsys.readouterr().err
    assert cli.main(["summary", "--list"]) == 0
    assert "alexnet" in capsys.readouterr().out.split()


def test_help_lists_the_commands_and_options():
    proc = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    assert all(cmd in proc.stdout for cmd in ("train", "evaluate", "summary"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0


def test_unknown_model_lists_the_choices(capsys):
    assert cli.main(["train", "--model", "lenet7"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet7'; choose one of:" in err and "resnet18" in err and "lenet5" in err
    assert cli.main(["summary", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_unknown_dataset_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "imagenet"])
    err = capsys.readouterr().err
    assert "invalid choice: 'imagenet' (choose from" in err
    assert all(name in err for name in ("shapes", "mnist", "folder"))


def test_missing_mnist_says_how_to_get_it(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "MNIST: could not find" in err and "MINICNN_DATA" in err and "--download" in err


def test_folder_needs_a_data_dir(capsys):
    assert cli.main(["train", "--dataset", "folder"]) == 2
    assert "--dataset folder needs --data-dir PATH" in capsys.readouterr().err


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "no checkpoint.npz or interrupted.npz in" in capsys.readouterr().err


@pytest.mark.parametrize("scheduler, first, total, lrs", [
    # cosine over 2 epochs, then over 4: epochs 3 and 4 get the 4-epoch schedule's rates (not 0)
    ("cosine", 2, 4, [0.05, 0.025, 0.025, 0.05 * (1 + math.cos(3 * math.pi / 4)) / 2]),
    # step divides by 10 every max(1, epochs // 3) epochs: every epoch for 3, every 2nd for 6
    ("step", 3, 6, [0.05, 0.005, 0.0005, 0.005, 0.0005, 0.0005]),
])
def test_resume_with_more_epochs_rebuilds_the_schedule(tmp_path, capsys, scheduler, first, total, lrs):
    """Resuming with a larger --epochs continues on the schedule of the new total (the old one
    would train on at its end: lr 0 for cosine); --help says so."""
    out = tmp_path / "R"
    tiny = ["--train-size", "40", "--test-size", "20", "--batch-size", "20", "--val-fraction", "0"]
    assert cli.main(["train", "--epochs", str(first), "--scheduler", scheduler, *tiny,
                     "--out", str(out)]) == 0   # not --quiet: the resumed run would keep it
    assert cli.main(["train", "--resume", "--epochs", str(total), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"the {scheduler} LR schedule now spans {total} epochs (was {first})" in err
    history = json.loads((out / "history.json").read_text())
    assert [r["lr"] for r in history] == pytest.approx(lrs)
    assert train.load_checkpoint(out / "checkpoint.npz")["meta"]["args"]["epochs"] == total
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "rebuilds the LR schedule" in " ".join(capsys.readouterr().out.split())
