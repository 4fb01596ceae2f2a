"""The command line walked the way a user would walk it: every option with a bad value, missing,
damaged and foreign files, no GPU. A user error is one line on stderr, `minicnn <command>: error:
...`, exit status 2, no traceback; a diverged run exits 1 and keeps its last good checkpoint; a bug
in minicnn shows its traceback and how to report it."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import cli, optim, train

TINY = ["--train-size", "40", "--test-size", "20", "--batch-size", "20", "--quiet"]


def run(argv, capsys):
    """cli.main as the shell runs it: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:   # argparse's errors and --help leave through SystemExit
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def user_error(argv, capsys, *says, command="train"):
    """Run argv; check it is a one-line user error that contains each of `says`; return the line."""
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    prefix = f"minicnn {command}: error: " if command else "minicnn: error: "
    assert lines[0].startswith(prefix), err
    for text in says:
        assert str(text) in lines[0], (text, err)
    return lines[0]


# ---- every option with a bad value ----------------------------------------------------------------
BAD_OPTIONS = [
    (["train", "--lr", "-1"], "argument --lr: expected a number > 0, got '-1'"),
    (["train", "--lr", "0"], "argument --lr: expected a number > 0, got '0'"),
    (["train", "--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["train", "--lr", "fast"], "argument --lr: expected a number > 0, got 'fast'"),
    (["train", "--lr"], "argument --lr: expected one argument"),
    (["train", "--epochs", "-1"], "argument --epochs: expected an integer >= 0, got '-1'"),
    (["train", "--epochs", "1.5"], "argument --epochs: expected an integer >= 0, got '1.5'"),
    (["train", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got '0'"),
    (["train", "--momentum", "-0.9"], "argument --momentum: expected a number >= 0"),
    (["train", "--weight-decay", "inf"], "argument --weight-decay: expected a number >= 0"),
    (["train", "--val-fraction", "1"], "argument --val-fraction: expected a fraction in [0, 1)"),
    (["train", "--train-size", "0"], "argument --train-size: expected an integer >= 1"),
    (["train", "--test-size", "-5"], "argument --test-size: expected an integer >= 1"),
    (["train", "--image-size", "0"], "argument --image-size: expected an integer >= 1"),
    (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["train", "--workers", "-2"], "argument --workers: expected an integer >= 0"),
    (["train", "--out", ""], "argument --out: expected a path, got ''"),
    (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
    (["train", "--scheduler", "linear"], "argument --scheduler: invalid choice: 'linear'"),
    (["train", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["train", "--kernels", "fast"], "argument --kernels: invalid choice: 'fast'"),
    (["train", "--channels", "2"], "argument --channels: invalid choice: 2"),
    (["train", "--model-kw", "width"], "expected KEY=VALUE"),
    (["train", "--nope"], "unrecognized arguments: --nope"),
    (["evaluate"], "the following arguments are required: CKPT"),
    (["evaluate", "x.npz", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
    (["summary", "lenet5", "--input-shape", "0", "28", "28"], "argument --input-shape: expected an integer >= 1"),
    (["summary", "lenet5", "--num-classes", "0"], "argument --num-classes: expected an integer >= 1"),
]


@pytest.mark.parametrize("argv, says", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_option_value_is_one_line_and_status_2(argv, says, capsys):
    line = user_error(argv, capsys, says, command=argv[0])
    assert f"(see `minicnn {argv[0]} --help`)" in line


def test_an_unknown_command_is_one_line(capsys):
    user_error(["fly"], capsys, "invalid choice: 'fly'", command=None)


# ---- the things around the options: files, folders, GPUs ----------------------------------------
def test_no_gpu_for_device_cuda(capsys, monkeypatch):
    def no_gpu():
        raise RuntimeError("device 'cuda': no CUDA GPU is visible (numba.cuda.is_available() is False).")

    monkeypatch.setattr("minicnn.device.cuda_module", no_gpu)
    user_error(["train", "--device", "cuda"], capsys, "--device cuda: device 'cuda': no CUDA GPU",
               "Or use --device cpu")
    user_error(["evaluate", "x.npz", "--device", "cuda"], capsys, "--device cuda:", command="evaluate")


def test_out_that_is_a_file_or_lies_under_one(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    user_error(["train", "--out", file], capsys, f"--out {file}: this is a file; expected a folder")
    user_error(["train", "--out", file / "run"], capsys, f"{file} is a file, so no folder can be made there")
    assert file.read_text() == "x"


def test_metrics_json_that_is_a_folder(tmp_path, capsys):
    user_error(["train", "--metrics-json", tmp_path, "--out", tmp_path / "o"], capsys,
               f"--metrics-json {tmp_path}: this is a folder; expected a file name")
    assert not (tmp_path / "o").exists()   # refused before anything was written


def test_folder_data_set_errors_name_the_folder_or_the_file(tmp_path, capsys):
    pytest.importorskip("PIL")
    user_error(["train", "--dataset", "folder", "--data-dir", tmp_path / "nope"], capsys,
               f"--data-dir {tmp_path / 'nope'}: no such folder")
    (tmp_path / "a").mkdir()
    for k in range(5):   # 4 to train on, 1 to test: the first one read is the one named
        (tmp_path / "a" / f"x{k}.png").write_text("a text file named .png\n")
    user_error(["train", "--dataset", "folder", "--data-dir", tmp_path, "--out", tmp_path / "o"],
               capsys, f"cannot read the image {tmp_path / 'a' / 'x'}")


def test_a_damaged_mnist_file_is_named(tmp_path, capsys):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(10))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(10))
    user_error(["train", "--dataset", "mnist", "--data-dir", tmp_path, "--quiet"], capsys,
               str(tmp_path / "train-images-idx3-ubyte"), "is truncated")


def test_image_sizes_a_data_set_or_model_cannot_take(tmp_path, capsys):
    user_error(["train", "--image-size", "8", *TINY, "--out", tmp_path], capsys,
               "Shapes: expected n >= 0, size >= 16", "--image-size")
    user_error(["train", "--image-size", "20", *TINY, "--out", tmp_path], capsys,
               "model 'lenet5' does not take 1 x 20 x 20 images (--image-size, --channels, --model-kw)")


def test_model_arguments_the_builder_refuses(tmp_path, capsys):
    user_error(["train", "--model-kw", "bogus=1", *TINY, "--out", tmp_path], capsys, "model 'lenet5':")
    user_error(["summary", "lenet5", "--model-kw", "bogus=1"], capsys, "model 'lenet5':", command="summary")


def test_val_fraction_that_leaves_nothing_to_train_on(tmp_path, capsys):
    user_error(["train", "--train-size", "1", "--test-size", "5", "--val-fraction", "0.9", "--out", tmp_path], capsys,
               "--val-fraction 0.9 holds out all 1 training images")


# ---- checkpoints: missing, damaged, foreign ----------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A real one-epoch checkpoint of a tiny run, and a folder to put damaged copies in."""
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--epochs", "1", *TINY, "--val-fraction", "0", "--out", str(out)]) == 0
    return out / "checkpoint.npz"


def damaged_copies(ckpt, folder):
    """{what: path} of files a user might hand over as a checkpoint."""
    raw = ckpt.read_bytes()
    files = {"half": raw[: len(raw) // 2], "random": bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8)),
             "text": b"epoch 3, loss 0.1\n", "empty": b""}
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.npz"
        paths[name].write_bytes(data)
    paths["plain"] = folder / "plain.npz"
    mc.save({"w": np.zeros(3)}, paths["plain"])
    state = mc.load(ckpt)
    state["model"]["features.0.weight"] = np.zeros((2, 2), np.float32)
    paths["misfit"] = folder / "misfit.npz"
    mc.save(state, paths["misfit"])
    state = mc.load(ckpt)
    state["meta"]["args"]["lr"] = -5.0
    paths["bad_args"] = folder / "bad_args.npz"
    mc.save(state, paths["bad_args"])
    return paths


EXPECTED = {"half": "is truncated or damaged", "random": "is not a minicnn file",
            "text": "is not a minicnn file", "empty": "is not a minicnn file",
            "plain": "is not a minicnn training checkpoint"}


@pytest.mark.parametrize("what", sorted(EXPECTED))
def test_evaluate_and_resume_a_damaged_or_foreign_file(what, ckpt, tmp_path, capsys):
    path = damaged_copies(ckpt, tmp_path)[what]
    line = user_error(["evaluate", path], capsys, str(path), EXPECTED[what], command="evaluate")
    assert "allow_pickle" not in line
    user_error(["train", "--resume", path, "--out", tmp_path / "o"], capsys, "--resume:", str(path),
               EXPECTED[what])


def test_evaluate_and_resume_a_missing_checkpoint(tmp_path, capsys):
    user_error(["evaluate", tmp_path / "nope.npz"], capsys, f"no such checkpoint file: {tmp_path / 'nope.npz'}",
               command="evaluate")
    user_error(["train", "--resume", tmp_path / "nope.npz"], capsys, "--resume: no such checkpoint file")
    user_error(["train", "--resume", tmp_path], capsys, f"--resume: no checkpoint.npz or interrupted.npz in {tmp_path}")


def test_weights_that_do_not_fit_the_model_they_name(ckpt, tmp_path, capsys):
    path = damaged_copies(ckpt, tmp_path)["misfit"]
    user_error(["evaluate", path], capsys, f"{path}: its weights do not fit the lenet5 it names",
               "size mismatch for features.0.weight", command="evaluate")
    user_error(["train", "--resume", path, "--out", tmp_path / "o"], capsys,
               f"--resume: {path} does not fit the model and optimiser")


def test_arguments_a_checkpoint_brings_are_checked_too(ckpt, tmp_path, capsys):
    path = damaged_copies(ckpt, tmp_path)["bad_args"]
    user_error(["train", "--resume", path, "--out", tmp_path / "o"], capsys,
               "--lr: expected a number > 0, got -5.0")
    user_error(["evaluate", path], capsys, "--lr: expected a number > 0, got -5.0", command="evaluate")


def test_real_processes_exit_2_with_one_line(ckpt, tmp_path):
    """The same through `python -m minicnn`, as the shell sees it."""
    half = damaged_copies(ckpt, tmp_path)["half"]
    for argv, says in ((["train", "--lr", "-1"], "minicnn train: error: argument --lr"),
                       (["evaluate", str(half)], f"minicnn evaluate: error: load: {half} is truncated")):
        proc = subprocess.run([sys.executable, "-m", "minicnn", *argv], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "MINICNN_DEBUG": ""})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(says), proc.stderr


# ---- --debug, MINICNN_DEBUG and bugs ------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--debug", "train"], ["train", "--debug"]])
def test_debug_shows_the_traceback_of_a_user_error(argv, tmp_path, capsys):
    file = tmp_path / "f"
    file.write_text("x")
    code, _, err = run([*argv, "--out", file], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "CLIError" in err
    assert err.strip().splitlines()[-1].startswith("minicnn train: error: --out")


def test_minicnn_debug_variable_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINICNN_DEBUG", "1")
    code, _, err = run(["evaluate", tmp_path / "nope.npz"], capsys)
    assert code == 2 and "Traceback" in err


def test_a_bug_shows_its_traceback_and_how_to_report_it(capsys, monkeypatch):
    def broken(ns):
        return 1 / 0

    monkeypatch.setitem(cli.COMMANDS, "summary", broken)
    code, _, err = run(["summary", "lenet5"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    assert "minicnn summary: internal error: ZeroDivisionError: division by zero" in err
    assert "bug in minicnn" in err and "minicnn --version" in err


# ---- a diverged run exits 1, names the epoch, keeps the last good checkpoint ---------------------
def test_lr_1e30_diverges_with_status_1(tmp_path, capsys):
    code, out, err = run(["train", "--lr", "1e30", "--epochs", "2", *TINY, "--out", tmp_path,
                          "--metrics-json", tmp_path / "m.json"], capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("minicnn train: error: the run diverged at epoch 1: ")
    assert "Lower the learning rate (--lr 1e+30; try --lr 1e+29)" in line
    assert "Traceback" not in err and "RuntimeWarning" not in err
    assert not (tmp_path / "m.json").exists()   # a diverged run writes no final metrics


def test_divergence_in_epoch_2_keeps_the_checkpoint_of_epoch_1(tmp_path, capsys, monkeypatch):
    def exploding(args, optimizer):   # a schedule whose LR jumps to 1e30 after the first epoch
        return optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 if e < 1 else 1e31)

    monkeypatch.setattr(cli, "build_scheduler", exploding)
    code, _, err = run(["train", "--epochs", "3", *TINY, "--out", tmp_path], capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert "the run diverged at epoch 2" in line
    assert f"the last good checkpoint {tmp_path / 'checkpoint.npz'} is kept" in line
    kept = train.load_checkpoint(tmp_path / "checkpoint.npz")
    assert kept["epoch"] == 1 and all(np.isfinite(v).all() for v in kept["model"].values())


def test_a_nan_test_loss_is_a_diverged_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: train.Evaluation(math.nan, 0.1, 0.5))
    code, _, err = run(["train", "--epochs", "1", *TINY, "--val-fraction", "0", "--out", tmp_path], capsys)
    assert code == 1
    assert "the run diverged at epoch 1: the test loss is nan" in err
