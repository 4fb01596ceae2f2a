"""Fair comparisons: each framework in a process of its own, with its own defaults, turns alternated.

Why not one process: there, minicnn's process-wide settings (malloc tuning, GOMP_SPINCOUNT for
Numba's threads; kernels/__init__.py lists them) reach PyTorch, and PyTorch's OpenMP threads, still
spinning after its call, take the cores from minicnn's next timed call. Both happened: the MNIST
benchmark's PyTorch step took ~9 ms in minicnn's process against 4.5-7 ms in a process of its own.

How (one `compare` call):
    1. one worker process per framework: `python SCRIPT --worker NAME ...`. The parent imports
       neither framework and passes its own environment unchanged, so each worker starts as a
       user's process would. A worker builds each case once, when first asked.
    2. rounds: round r asks every framework for every case, in turn (the frameworks' order is
       reversed on odd rounds); only one worker works at any moment, and each turn starts after
       a pause (SETTLE_S) in which the last worker's idle threads go to sleep.
    3. a turn: untimed warm-up calls (median_seconds says how many), then `repeats` timed calls; the worker answers their
       median. The result per case is the median over the rounds of those medians.
Memory is measured apart (`peak_growth` in the worker, one fresh process per case): the growth of
the resident set from just before a first step to the peak during it.

The worker side is `serve(prepare)`: `prepare(case)` returns a zero-argument callable that runs
one step (with an optional `info` dict, sent back with every answer: the parameter count, say).
Commands come as JSON lines on stdin, answers go as JSON lines on the real stdout; the
worker's own prints go to stderr. A benchmark with other turns (an epoch of training) uses
`Worker.ask` and `answer_commands` directly (mnist_lenet.py).
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

SETTLE_S = 0.3  # OpenBLAS's and libgomp's idle threads spin for up to ~0.1 s before sleeping
# The environment the user started the benchmark with, taken when this module is imported (before
# any minicnn kernel runs in the parent: the first one sets GOMP_SPINCOUNT in os.environ, which
# a PyTorch worker started with os.environ would inherit). Every worker starts with this one.
USER_ENV = dict(os.environ)


def machine():
    """The machine a result was measured on: processor, cores, Python, OS, and the versions of
    the packages compared (read from their metadata: this process imports neither framework)."""
    from importlib import metadata
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    for package in ("numpy", "numba", "torch"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info


# ---- the parent -----------------------------------------------------------------------------
class Worker:
    """One framework's process, answering one command at a time."""

    def __init__(self, script, name, args=()):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, script, "--worker", name, *args], env=USER_ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker ended without answering {command} "
                               f"(exit status {self.proc.wait()}; its error is above)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.name} worker failed on {command}: {answer['error']}")
        return answer

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def compare(script, frameworks, cases, rounds=3, repeats=5, args=(), log=print):
    """{case: {framework: median over rounds of the per-round median seconds}}, plus, per case,
    framework + "_rounds": every round's median, and framework + "_info": the step's info."""
    workers = {name: Worker(script, name, args) for name in frameworks}
    per_round = {case: {name: [] for name in frameworks} for case in cases}
    info = {case: {} for case in cases}
    try:
        for r in range(rounds):
            order = list(frameworks) if r % 2 == 0 else list(reversed(frameworks))
            for case in cases:
                for name in order:
                    time.sleep(SETTLE_S)
                    answer = workers[name].ask(case=case, repeats=repeats)
                    seconds = answer.pop("median_s")
                    info[case][name] = answer
                    per_round[case][name].append(seconds)
                    log(f"round {r + 1}/{rounds}  {case:32s} {name:8s} {seconds * 1e3:9.2f} ms")
    finally:
        for w in workers.values():
            w.close()
    result = {}
    for case, by_name in per_round.items():
        result[case] = {}
        for name, times in by_name.items():
            result[case][name] = statistics.median(times)
            result[case][name + "_rounds"] = times
            result[case][name + "_info"] = info[case][name]
    return result


def memory(script, frameworks, cases, args=(), log=print):
    """{case: {framework: peak resident-set growth of one step in bytes}}, each case and framework
    in a fresh process (a process's peak cannot be lowered again on every kernel)."""
    result = {case: {} for case in cases}
    for case in cases:
        for name in frameworks:
            w = Worker(script, name, args)
            try:
                result[case][name] = w.ask(case=case, memory=True)["peak_growth_bytes"]
            finally:
                w.close()
            log(f"memory  {case:32s} {name:8s} {result[case][name] / 2**20:9.1f} MiB")
    return result


# ---- the worker -----------------------------------------------------------------------------
def answer_commands(handle):
    """The worker's loop: for each JSON command on stdin, write `handle(command)` (a dict) as one
    JSON line to the real stdout, or {"error": ...} when it raised. The worker's own prints go
    to stderr, so they cannot be taken for an answer."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except Exception as e:  # report, then keep serving: the parent decides
            answer = {"error": f"{type(e).__name__}: {e}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def serve(prepare):
    """Answer compare's and memory's commands. `prepare(case, small=False)` returns a callable
    that runs one step of that case (`small=True`: the same model on a batch of one, used to
    load and compile everything before a memory measurement)."""
    steps = {}

    def handle(command):
        case = command["case"]
        if command.get("memory"):
            return {"peak_growth_bytes": peak_growth(prepare, case)}
        if case not in steps:
            steps[case] = prepare(case)
        return {"median_s": median_seconds(steps[case], command["repeats"]), **getattr(steps[case], "info", {})}
    answer_commands(handle)


def median_seconds(step, repeats, warmup_s=0.5):
    """Median of `repeats` timed calls, after warm-up calls (at least two, and at least warmup_s
    seconds of them): compiles, faults memory in, lets oneDNN build its primitives."""
    t0, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - t0 < warmup_s:
        step()
        calls += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_growth(prepare, case):
    """Bytes by which the first full-size step raises the resident set above what the process
    held with the model and its batch built: gradients, optimiser state, activations, workspace.
    Kernels are compiled and loaded first, by a step of a batch of one on a model of its own;
    what that freed is handed back to the system (malloc_trim) so that neither framework's
    allocator starts the step with a stock of free memory. Then the peak marker is reset (Linux:
    writing 5 to /proc/self/clear_refs) and one full step runs."""
    import ctypes
    import gc
    prepare(case, small=True)()
    gc.collect()
    trim = ctypes.CDLL("libc.so.6").malloc_trim
    trim(0)
    step = prepare(case)
    gc.collect()
    trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    step()
    return (_status_kb("VmHWM") - before) * 1024
