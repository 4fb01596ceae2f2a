"""The speed ladder: forward+backward of the hot ops, from naive loops to Numba, against PyTorch.

    python benchmarks/ladder.py              # full table, writes benchmarks/results/ladder.{json,md}
    python benchmarks/ladder.py --quick      # fewer repeats, for a look while editing

Rungs, per case: naive Python loops (tiny shapes only), the NumPy reference kernels, the Numba
kernels, and for convolutions the GEMM ceiling: the conv's FLOPs at this machine's measured sgemm
rate; these minicnn rungs are interleaved in this process (each repeat runs every method once)
so that a slow spell of the machine hits them all. The comparison with PyTorch (when installed:
pip install -e ".[bench]") is fair: minicnn's Numba kernels and PyTorch each in a worker process
of its own, with its own defaults, turns alternated over rounds (benchmarks/fair.py); the
"Numba/PyTorch" ratio is those two workers' medians. This process never imports torch.
Also measured: `import minicnn`, the first conv with a cold Numba cache and with a warm one.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fair  # noqa: E402  (first: it keeps the user's environment for the workers, before the
#                            kernels' import sets OMP_WAIT_POLICY)

import numpy as np  # noqa: E402

import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
import minicnn.kernels.cpu.conv as conv_module  # noqa: E402  (the CPU plan: WINOGRAD switch)

torch = TF = None   # only the PyTorch worker imports it (worker_steps)
HAVE_TORCH = importlib.util.find_spec("torch") is not None

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# name: (N, C, H, W, O, k, stride, pad, groups). All but LeNet's conv1 are the shapes issue #3
# names; the summary gives the median over those six and over all seven.
CONV_CASES = {
    "lenet.conv1 b64": (64, 1, 28, 28, 6, 5, 1, 2, 1),
    "lenet.conv2 b128": (128, 6, 14, 14, 16, 5, 1, 0, 1),
    "alexnet.conv2 b32": (32, 96, 27, 27, 256, 5, 1, 2, 2),
    "alexnet.conv3 b32": (32, 256, 13, 13, 384, 3, 1, 1, 1),
    "vgg 3x3 64->64 56x56 b8": (8, 64, 56, 56, 64, 3, 1, 1, 1),
    "resnet 1x1 256->64 56x56 b8": (8, 256, 56, 56, 64, 1, 1, 0, 1),
    "resnet 3x3 64->64 56x56 b8": (8, 64, 56, 56, 64, 3, 1, 1, 1),
}


# ---- one forward+backward per method --------------------------------------------------------
def ours(op, arrays, grad):
    """Forward then backward through minicnn with the current kernel set."""
    def run():
        ts = [mc.Tensor(a, requires_grad=True) for a in arrays]
        op(*ts).backward(grad)
    return run


def theirs(op, arrays, grad):
    if torch is None:
        return None
    g = torch.from_numpy(grad)

    def run():
        ts = [torch.from_numpy(a).requires_grad_(True) for a in arrays]
        op(*ts).backward(g)
    return run


def without_winograd(fn):
    def run():
        conv_module.WINOGRAD = False
        try:
            fn()
        finally:
            conv_module.WINOGRAD = True
    return run


def with_kernels(name, fn):
    def run():
        with mc.use_kernels(name):
            fn()
    return run


def naive_conv(x, w, stride, pad):
    """The seven loops of the lecture (forward only; times are scaled x3 for fwd+bwd)."""
    n_, c_, h_, w_ = x.shape
    o_, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h_ + 2 * pad - k) // stride + 1
    out = np.zeros((n_, o_, oh, oh), dtype=x.dtype)
    for n, o, i, j in np.ndindex(out.shape):
        acc = 0.0
        for c in range(c_):
            for di in range(k):
                for dj in range(k):
                    acc += xp[n, c, i * stride + di, j * stride + dj] * w[o, c, di, dj]
        out[n, o, i, j] = acc
    return out


def median_times(methods, repeats):
    """Interleaved timing: every repeat runs each method once; returns the median seconds.
    Methods given as None (e.g. PyTorch when it is not installed) are left out."""
    methods = {name: fn for name, fn in methods.items() if fn is not None}
    for fn in methods.values():
        fn()  # warm up: compile Numba kernels, fault in memory
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def sgemm_rate(size=2048, repeats=15):
    """The machine's sgemm rate in FLOP/s: the fastest of several square products. The fastest,
    not the median: it is a ceiling, and on a shared 2-core VM a median taken while a neighbour
    is busy came out at 67 instead of ~200 GFLOP/s, putting convolutions at "176% of sgemm"."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.copy()
    np.matmul(a, b)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b)
        ts.append(time.perf_counter() - t0)
    return 2 * size ** 3 / float(np.min(ts))


# ---- the cases ----------------------------------------------------------------------------
def conv_rows(repeats, flops_per_s, only=None, measure=None):
    """One row per conv case; `measure(methods, repeats)` times them (default median_times)."""
    measure = measure or median_times
    rng = np.random.default_rng(0)
    rows = []
    for name, (n, c, h, w, o, k, s, p, g) in CONV_CASES.items():
        if only and only not in name:
            continue
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((o, c // g, k, k)) * 0.1).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        oh = (h + 2 * p - k) // s + 1
        grad = rng.standard_normal((n, o, oh, oh)).astype(np.float32)

        def op(x_, w_, b_, s=s, p=p, g=g):   # bound now: worker_steps calls it after the loop
            return F.conv2d(x_, w_, b_, stride=s, padding=p, groups=g)

        def top(x_, w_, b_, s=s, p=p, g=g):
            return TF.conv2d(x_, w_, b_, stride=s, padding=p, groups=g)
        fn = ours(op, (x, wt, b), grad)
        methods = {"numba": with_kernels("numba", fn), "reference": with_kernels("reference", fn)}
        if k == 3 and s == 1 and conv_module.WINOGRAD and min(c, o) // g >= conv_module.WINOGRAD_MIN_CHANNELS:
            methods["numba_im2col"] = without_winograd(with_kernels("numba", fn))  # what Winograd gains
        if torch is not None:
            methods["pytorch"] = theirs(top, (x, wt, b), grad)
        row = {"case": f"conv2d {name}", "kind": "conv", **measure(methods, repeats)}
        flops = 3 * 2 * n * o * oh * oh * (c // g) * k * k  # forward, dX and dW: three GEMMs' worth
        row["gemm_ceiling"] = flops / flops_per_s
        row["numba_gflops"] = flops / row["numba"] / 1e9
        rows.append(row)
    if only:
        return rows
    # the naive loops, on a tiny shape only (they are ~1e4 times slower)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((1, 4, 10, 10)).astype(np.float32)
    fn = ours(lambda a, b: F.conv2d(a, b), (x, wt), g)
    methods = {"numba": with_kernels("numba", fn), "reference": with_kernels("reference", fn),
               "naive_loops": lambda: [naive_conv(x, wt, 1, 0) for _ in range(3)]}
    if torch is not None:
        methods["pytorch"] = theirs(lambda a, b: TF.conv2d(a, b), (x, wt), g)
    rows.append({"case": "conv2d tiny 1x3x12x12 3x3", "kind": "conv", **measure(methods, 3)})
    return rows


def layer_rows(repeats, only=None, measure=None):
    measure = measure or median_times
    rng = np.random.default_rng(1)
    x55 = rng.standard_normal((32, 96, 55, 55)).astype(np.float32)
    x27 = rng.standard_normal((32, 256, 27, 27)).astype(np.float32)
    x28 = rng.standard_normal((64, 6, 28, 28)).astype(np.float32)  # LeNet's conv1 output, batch 64
    xbn = rng.standard_normal((8, 64, 56, 56)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 64).astype(np.float32)
    beta = rng.standard_normal(64).astype(np.float32)
    cases = [
        ("max_pool2d 3x3/2 32x96x55x55", (x55,), lambda t: F.max_pool2d(t, 3, 2),
         lambda t: TF.max_pool2d(t, 3, 2)),
        ("max_pool2d 3x3/2 32x256x27x27", (x27,), lambda t: F.max_pool2d(t, 3, 2),
         lambda t: TF.max_pool2d(t, 3, 2)),
        ("max_pool2d 2x2/2 64x6x28x28", (x28,), lambda t: F.max_pool2d(t, 2, 2),
         lambda t: TF.max_pool2d(t, 2, 2)),
        ("avg_pool2d 3x3/2 32x96x55x55", (x55,), lambda t: F.avg_pool2d(t, 3, 2),
         lambda t: TF.avg_pool2d(t, 3, 2)),
        # PyTorch divides alpha by size: pass alpha*size to get the paper's formula
        ("lrn n=5 32x96x55x55", (x55,), lambda t: F.local_response_norm(t, 5, 1e-4, 0.75, 2.0),
         lambda t: TF.local_response_norm(t, 5, 5e-4, 0.75, 2.0)),
        ("batch_norm train 8x64x56x56", (xbn, gamma, beta),
         lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True),
         lambda t, w, b: TF.batch_norm(t, None, None, w, b, training=True)),
        ("relu 32x96x55x55", (x55,), F.relu, TF.relu if torch else None),
        ("sigmoid 32x96x55x55", (x55,), F.sigmoid, torch.sigmoid if torch else None),
        ("tanh 32x96x55x55", (x55,), F.tanh, torch.tanh if torch else None),
        ("relu 64x6x28x28", (x28,), F.relu, TF.relu if torch else None),
        ("cross_entropy 256x1000", None, None, None),
    ]
    rows = []
    for name, arrays, op, top in cases:
        if only and only not in name:
            continue
        if arrays is None:  # cross-entropy needs an integer target that is not differentiated
            logits = rng.standard_normal((256, 1000)).astype(np.float32)
            target = rng.integers(0, 1000, 256)
            arrays, tt = (logits,), (torch.from_numpy(target) if torch else None)
            op = lambda t: F.cross_entropy(t, target)  # noqa: E731
            top = (lambda t: TF.cross_entropy(t, tt)) if torch else None  # noqa: E731
            grad = np.ones((), dtype=np.float32)
        else:
            with mc.no_grad():
                grad = rng.standard_normal(op(*[mc.Tensor(a) for a in arrays]).shape).astype(np.float32)
        fn = ours(op, arrays, grad)
        methods = {"numba": with_kernels("numba", fn), "reference": with_kernels("reference", fn)}
        if torch is not None:
            methods["pytorch"] = theirs(top, arrays, grad)
        rows.append({"case": name, "kind": "layer", **measure(methods, repeats)})
    return rows


def kernel_rows(repeats):
    """The two kernels the issue names for Numba-vs-reference: col2im and the pooling backward."""
    from minicnn.kernels.cpu import conv as cconv, pool as cpool
    from minicnn.kernels.reference import conv as rconv, pool as rpool
    rng = np.random.default_rng(2)
    cols = rng.standard_normal((32, 256 * 9, 13 * 13)).astype(np.float32)
    from minicnn.kernels.geometry import ConvGeometry
    geom = ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 13, 13)
    x = rng.standard_normal((32, 96, 55, 55)).astype(np.float32)
    out, arg = rpool.max_pool2d_forward(x, 3, 3, 2, 2, 0, 0, 27, 27)
    g = rng.standard_normal(out.shape).astype(np.float32)
    rows = []
    for name, ref, fast in [
        ("col2im 32x(256*9)x169", lambda: rconv.col2im(cols, geom, 13, 13), lambda: cconv.col2im(cols, geom, 13, 13)),
        ("max_pool2d_backward 32x96x55x55", lambda: rpool.max_pool2d_backward(g, arg, 55, 55),
         lambda: cpool.max_pool2d_backward(g, arg, 55, 55)),
    ]:
        rows.append({"case": f"kernel {name}", "kind": "kernel",
                     **median_times({"numba": fast, "reference": ref}, repeats)})
    return rows


# ---- the fair comparison: each framework's worker process ------------------------------------
def worker_steps(framework):
    """{case: its forward+backward in this framework}: the rows' own methods, collected by
    running conv_rows and layer_rows with the timing replaced by a note of what would be timed."""
    global torch, TF
    if framework == "pytorch":
        import torch as torch_
        import torch.nn.functional as tf_
        torch, TF = torch_, tf_
    collected = []

    def note(methods, repeats):
        collected.append(methods)
        return {"numba": 1.0}   # a stand-in time: conv_rows divides by it
    rows = conv_rows(1, 1.0, measure=note) + layer_rows(1, measure=note)
    key = "numba" if framework == "minicnn" else "pytorch"
    return {r["case"]: m[key] for r, m in zip(rows, collected) if key in m}


def worker(framework):
    steps = worker_steps(framework)
    fair.serve(lambda case, small=False: steps[case])


def fair_rows(rows, rounds, repeats):
    """Numba and PyTorch columns measured each in a process of its own (fair.compare)."""
    cases = [r["case"] for r in rows if r["kind"] in ("conv", "layer")]
    times = fair.compare(__file__, ["minicnn", "pytorch"], cases, rounds, repeats)
    for r in rows:
        if r["case"] in times:
            t = times[r["case"]]
            r.update(numba_own_process=t["minicnn"], pytorch=t["pytorch"],
                     numba_vs_pytorch=t["minicnn"] / t["pytorch"])


# ---- cold start ---------------------------------------------------------------------------
FIRST_CONV = ("import time; t0 = time.perf_counter(); import numpy as np, minicnn as mc, "
              "minicnn.functional as F; x = mc.Tensor(np.ones((2, 3, 16, 16)), requires_grad=True); "
              "w = mc.Tensor(np.ones((4, 3, 3, 3)), requires_grad=True); "
              "F.conv2d(x, w, padding=1).sum().backward(); print(time.perf_counter() - t0)")


def cold_start():
    def seconds(code, env):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    cache = tempfile.mkdtemp(prefix="minicnn-bench-cache-")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    imports = [seconds("import time; t0 = time.perf_counter(); import minicnn; print(time.perf_counter() - t0)", env)
               for _ in range(5)]
    return {"import_minicnn_s": float(np.median(imports)),
            "first_conv_cold_cache_s": seconds(FIRST_CONV, env),
            "first_conv_warm_cache_s": float(np.median([seconds(FIRST_CONV, env) for _ in range(3)]))}


# ---- report -------------------------------------------------------------------------------
def machine():
    import numba
    info = {**fair.machine(), "numba_threads": numba.get_num_threads()}
    for var in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        info[var] = os.environ.get(var)
    return info


def ratio(a, b):
    return a / b if a and b else None


def markdown(result):
    lines = [f"# Speed ladder ({result['date']})", "",
             "Forward+backward medians in milliseconds; ratios < 1 mean minicnn's Numba kernels are faster.",
             "Numba/PyTorch: minicnn (Numba) and PyTorch each in a worker process of its own, turns alternated",
             f"over {result.get('rounds', 3)} rounds (benchmarks/fair.py); the other columns are minicnn's rungs, "
             "interleaved in one process.",
             "", "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()), "",
             f"Measured sgemm rate: {result['sgemm_gflops']:.1f} GFLOP/s", "",
             "3x3 stride-1 layers with >= 16 channels run Winograd F(2x2, 3x3) (kernels/cpu/conv.py);",
             "the 'Numba im2col' column times them through im2col + GEMM instead. 'Numba % of sgemm' is the",
             "direct convolution's FLOPs over the time, against the measured sgemm rate.", "",
             "| case | naive loops | NumPy reference | Numba | Numba im2col | PyTorch | GEMM ceiling | Numba/PyTorch | reference/Numba | Numba % of sgemm |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def ms(v):
        return f"{v * 1e3:.2f}" if v else "-"

    def x(v):
        return f"{v:.2f}x" if v else "-"
    for r in result["rows"]:
        pct = f"{100 * r['gemm_ceiling'] / r['numba']:.0f}%" if r.get("gemm_ceiling") else "-"
        lines.append(f"| {r['case']} | {ms(r.get('naive_loops'))} | {ms(r.get('reference'))} | {ms(r['numba'])} | "
                     f"{ms(r.get('numba_im2col'))} | {ms(r.get('pytorch'))} | {ms(r.get('gemm_ceiling'))} | {x(r.get('numba_vs_pytorch'))} | "
                     f"{x(ratio(r.get('reference'), r['numba']))} | {pct} |")
    s = result["summary"]
    lines += ["", "## Summary", ""] + [f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}"
                                       for k, v in s.items()]
    lines += ["", "## Cold start", ""] + [f"- {k}: {v:.3f}" for k, v in result["cold_start"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=["minicnn", "pytorch"], help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 9; results not saved")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--rounds", type=int, default=5,   # 3 rounds: the same layer moved 0.65-0.84x
                    help="rounds of the fair comparison against PyTorch (default 5)")
    ap.add_argument("--only", metavar="TEXT", default="",
                    help="time only the conv and layer cases whose name contains TEXT (nothing saved)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    repeats = 3 if args.quick else 9
    rate = sgemm_rate()
    if args.only:
        rows = conv_rows(repeats, rate, args.only) + layer_rows(repeats, args.only)
        for r in rows:   # minicnn alone: the PyTorch comparison is the full run's (fair_rows)
            print(f"{r['case']:40s} numba {r['numba'] * 1e3:8.2f} ms  reference {r['reference'] * 1e3:8.2f} ms")
        return
    rows = conv_rows(repeats, rate) + layer_rows(repeats) + kernel_rows(repeats)
    for r in rows:
        r["numba_vs_pytorch"] = None
    if HAVE_TORCH:
        rounds = 1 if args.quick else args.rounds
        fair_rows(rows, rounds, 3 if args.quick else 5)
    timed = [r for r in rows if r["kind"] == "conv" and r.get("gemm_ceiling") and r["numba_vs_pytorch"]]
    conv = [r["numba_vs_pytorch"] for r in timed]
    named = [r["numba_vs_pytorch"] for r in timed if not r["case"].startswith("conv2d lenet.conv1")]
    layer = [r["numba_vs_pytorch"] for r in rows if r["kind"] == "layer" and r["numba_vs_pytorch"]]
    b32 = [100 * r["gemm_ceiling"] / r["numba"] for r in rows if "b32" in r["case"]]
    summary = {
        "conv_median_numba_vs_pytorch": float(np.median(conv)) if conv else None,
        "conv_median_named_six_numba_vs_pytorch": float(np.median(named)) if named else None,
        "layers_worst_numba_vs_pytorch": float(max(layer)) if layer else None,
        "conv_batch32_pct_of_sgemm_min": float(min(b32)) if b32 else None,
        "kernels_reference_over_numba_min": float(min(r["reference"] / r["numba"] for r in rows if r["kind"] == "kernel")),
    }
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "sgemm_gflops": rate / 1e9,
              "repeats": repeats, "rounds": rounds if HAVE_TORCH else 0, "rows": rows, "summary": summary, "cold_start": cold_start()}
    text = markdown(result)
    print(text)
    if not (args.quick or args.no_save):
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "ladder.json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(RESULTS, "ladder.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
