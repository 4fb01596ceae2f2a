"""Cold start: how long a first `minicnn train` on a fresh machine takes to reach its first batch.

    python benchmarks/cold_start.py              # 3 runs on an empty Numba cache, 1 on a warm one
    python benchmarks/cold_start.py --runs 5

Each run is the README's first command, `minicnn train` (LeNet-5 on the built-in Shapes data),
in a fresh process whose NUMBA_CACHE_DIR is a new empty folder: nothing compiled, as on a fresh
machine, so the run compiles its kernels (and starts its compile helper, minicnn/precompile.py,
as a first run does). The time is the wall clock from starting the process to the end of the
first training batch (the Trainer's first "batch_end" event, where the run stops). A last run
reuses one of those folders: the time a later run takes, with the kernels loaded from the cache.
Issue #15's target: <= 5 s to the first batch on an empty cache. Results go to
benchmarks/results/cold_start.{json,md}, with the machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fair  # noqa: E402

RESULTS = os.path.join(os.path.dirname(HERE), "benchmarks", "results")
TARGET_S = 5.0
FIRST_BATCH = "first batch done"


def worker():
    """`minicnn train` as the command line runs it, stopped at the end of its first batch."""
    import atexit

    import minicnn.train as train
    from minicnn.cli import main

    build = train.Trainer.__init__

    def stop_after_first_batch(self, *args, **kwargs):
        build(self, *args, **kwargs)

        def callback(trainer, event, logs):
            if event == "batch_end":
                print(FIRST_BATCH, flush=True)
                atexit._run_exitfuncs()      # stops the compile helper, as a run's end does
                os._exit(0)
        self.callbacks.append(callback)
    train.Trainer.__init__ = stop_after_first_batch
    main(["train", "--out", tempfile.mkdtemp(prefix="minicnn-cold-"), "--quiet"])
    raise SystemExit("minicnn train finished without a batch")


def one_run(cache_dir):
    """Seconds from starting `minicnn train` to its first batch, with this Numba cache folder."""
    env = dict(fair.USER_ENV, NUMBA_CACHE_DIR=cache_dir)
    with tempfile.TemporaryFile("w+") as errors:     # a file, not a pipe: it never fills up
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, stdout=subprocess.PIPE,
                                stderr=errors, text=True)
        for line in proc.stdout:
            if line.strip() == FIRST_BATCH:
                seconds = time.perf_counter() - start
                break
        else:
            proc.wait()
            errors.seek(0)
            raise SystemExit(f"the run never reached a batch:\n{errors.read()[-3000:]}")
        proc.wait()
    return seconds


def markdown(result):
    m = result["machine"]
    cold, warm = result["cold_s"], result["warm_s"]
    return "\n".join([
        "# Cold start: a first `minicnn train` to its first batch", "",
        f"Measured {result['date']} on {m['cpu']}, {m['cores']} cores; Python {m['python']}, "
        f"NumPy {m.get('numpy')}, Numba {m.get('numba')}.", "",
        "`minicnn train` (LeNet-5 on Shapes) in a fresh process, wall clock from its start to the end "
        "of its first batch (`benchmarks/cold_start.py`).", "",
        "| Numba cache | runs (s) | median s |", "|---|---|---|",
        f"| empty (a first run: compiles, with its helper process) | {' '.join(f'{s:.2f}' for s in cold)} "
        f"| {statistics.median(cold):.2f} |",
        f"| filled by a run before | {warm:.2f} | {warm:.2f} |", "",
        f"Target <= {TARGET_S:.0f} s on an empty cache: {'met' if result['met'] else 'NOT met'}.", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args()
    if args.worker:
        return worker()
    folders = [tempfile.mkdtemp(prefix="minicnn-numba-cache-") for _ in range(args.runs)]
    cold = []
    for i, folder in enumerate(folders):
        cold.append(one_run(folder))
        print(f"run {i + 1}/{args.runs}, empty cache: {cold[-1]:.2f} s", flush=True)
    warm = one_run(folders[0])
    print(f"a later run, cache filled: {warm:.2f} s")
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": fair.machine(), "cold_s": cold,
              "warm_s": warm, "target_s": TARGET_S, "met": statistics.median(cold) <= TARGET_S}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cold_start.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = markdown(result)
    with open(os.path.join(args.out, "cold_start.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
