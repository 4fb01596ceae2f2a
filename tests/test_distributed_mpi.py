"""Data-parallel training with real processes: `mpiexec -n 2` from the virtual environment (the
`mpich` wheel of the [mpi] extra, which [test] includes). Every run has a time limit twice over:
MPIEXEC_TIMEOUT (hydra kills the job) and the subprocess timeout."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from distributed_cases import reference

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
LIMIT = 90   # seconds per job

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no {MPIEXEC}: pip install -e '.[mpi]'")


def mpiexec(*args, n=2, limit=LIMIT, env=None):
    """Run `mpiexec -n n args...` under the time limit; returns the CompletedProcess."""
    env = {**os.environ, "MPIEXEC_TIMEOUT": str(limit), "PYTHONPATH": str(HERE), **(env or {})}
    return subprocess.run([str(MPIEXEC), "-n", str(n), *map(str, args)], capture_output=True,
                          text=True, timeout=limit + 30, env=env, cwd=HERE.parent)


def python_case(case, out, **kw):
    return mpiexec(sys.executable, "-m", "mpi4py", HERE / "distributed_cases.py", case, out, **kw)


def test_two_processes_on_half_batches_equal_one_process_on_the_whole_batch(tmp_path):
    proc = python_case("equivalence", tmp_path)
    assert proc.returncode == 0, proc.stderr
    want = reference()
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for name, value in want.items():
        err = np.max(np.abs(ranks[0][name] - value)) / np.max(np.abs(value))
        assert err < 1e-10, (name, err)
        np.testing.assert_array_equal(ranks[1][name], ranks[0][name])


def test_two_processes_have_bit_identical_parameters_after_training(tmp_path):
    proc = python_case("hash", tmp_path)
    assert proc.returncode == 0, proc.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert int(ranks[0]["size"]) == 2
    assert str(ranks[0]["hash"]) == str(ranks[1]["hash"])
    assert float(ranks[0]["val_top1"]) == float(ranks[1]["val_top1"])


def test_resume_restores_every_rank_exactly(tmp_path):
    """A run resumed from its epoch-1 checkpoint ends with the weights of an uninterrupted run,
    dropout differing per rank (so each rank must get its own generator and loader back)."""
    proc = python_case("resume", tmp_path)
    assert proc.returncode == 0, proc.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert int(ranks[0]["epochs"]) == 2
    assert str(ranks[0]["resumed"]) == str(ranks[0]["full"]) == str(ranks[1]["resumed"])
    from minicnn import train
    ckpt = train.load_checkpoint(tmp_path / "checkpoint.npz")
    assert len(ckpt["ranks"]) == 2 and ckpt["ranks"][0]["rng"] != ckpt["ranks"][1]["rng"]


def test_a_rank_that_raises_ends_the_job_with_an_error_in_time(tmp_path):
    start = time.perf_counter()
    proc = python_case("raise", tmp_path, limit=60)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr
    assert time.perf_counter() - start < 60


def test_a_cli_error_on_one_rank_aborts_the_other(tmp_path):
    """Rank 1 is given a data folder that does not exist; rank 0 would wait for it forever in
    the first broadcast. The job ends with rank 1's error and status 2."""
    script = ("import sys; from mpi4py import MPI; from minicnn import cli; "
              "bad = ['--dataset', 'folder', '--data-dir', 'nowhere'] * (MPI.COMM_WORLD.rank == 1); "
              f"sys.exit(cli.main(['train', '--distributed', '--out', {str(tmp_path)!r}, "
              "'--train-size', '40', '--test-size', '20', '--epochs', '1', '--quiet', *bad]))")
    start = time.perf_counter()
    proc = mpiexec(sys.executable, "-c", script, limit=60)
    assert proc.returncode == 2, proc.stderr
    assert "minicnn train: error: [rank 1 of 2] --data-dir nowhere: no such folder" in proc.stderr
    assert time.perf_counter() - start < 60


def test_minicnn_train_distributed_on_shapes_reaches_the_band_of_one_process(tmp_path):
    """Same global batch and epochs: 2 processes x 16 images per step == 1 process x 32."""
    args = ["train", "--train-size", "3000", "--test-size", "500", "--epochs", "6",
            "--batch-size", "32", "--val-fraction", "0.1", "--quiet"]
    script = Path(sys.executable).parent / "minicnn"
    two = mpiexec(script, *args, "--distributed", "--out", tmp_path / "two",
                  "--metrics-json", tmp_path / "two.json", limit=150)
    assert two.returncode == 0, two.stderr
    one = subprocess.run([str(script), *args, "--out", str(tmp_path / "one"), "--metrics-json",
                          str(tmp_path / "one.json")], capture_output=True, text=True, timeout=180)
    assert one.returncode == 0, one.stderr
    m1, m2 = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("one", "two"))
    assert m2["world_size"] == 2 and m2["train_size"] == m1["train_size"] == 2700
    assert m1["test_top1"] > 0.8 and abs(m2["test_top1"] - m1["test_top1"]) < 0.05, (m1, m2)
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert len(history) == 6 and not (tmp_path / "two" / "interrupted.npz").exists()
