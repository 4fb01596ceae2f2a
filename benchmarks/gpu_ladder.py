"""The speed ladder on the GPU: forward+backward of the same layers as benchmarks/ladder.py, with
minicnn's numba.cuda kernels on "cuda", against PyTorch on the GPU, plus the tiled SGEMM's TFLOP/s
against cuBLAS (through PyTorch and/or CuPy, whichever is installed).

    python benchmarks/gpu_ladder.py           # writes benchmarks/results/gpu_ladder.{json,md}
    python benchmarks/gpu_ladder.py --quick   # fewer repeats, nothing saved
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_ladder.py --smoke   # tiny shapes in the
                                              # simulator: checks the script runs, times mean nothing

Needs a CUDA GPU and `pip install -e ".[cuda,bench]"`. Every timed call ends with
cuda.synchronize() (kernel launches are asynchronous); methods are interleaved as in ladder.py.
Not run on the machines this was written on (no GPU there): the numbers are yours to make.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ladder  # noqa: E402  (the same cases as the CPU ladder)
import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
from numba import cuda  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
    TORCH_CUDA = torch.cuda.is_available()
except ImportError:
    torch, TF, TORCH_CUDA = None, None, False
try:
    import cupy
except ImportError:
    cupy = None

RESULTS = os.path.join(HERE, "results")
SMOKE_CONV = {"smoke 2x3x8x8 -> 4 3x3": (2, 3, 8, 8, 4, 3, 1, 1, 1)}


def sync():
    cuda.synchronize()
    if TORCH_CUDA:
        torch.cuda.synchronize()


def ours(op, arrays, grad):
    """minicnn forward+backward with every array already on the GPU."""
    dev = [cuda.to_device(a) for a in arrays]
    g = cuda.to_device(grad)

    def run():
        ts = [mc.Tensor(a, requires_grad=True) for a in dev]
        op(*ts).backward(g)
        sync()
    return run


def theirs(op, arrays, grad):
    if not TORCH_CUDA:
        return None
    dev = [torch.from_numpy(a).cuda() for a in arrays]
    g = torch.from_numpy(np.ascontiguousarray(grad)).cuda()

    def run():
        ts = [a.detach().requires_grad_(True) for a in dev]
        op(*ts).backward(g)
        sync()
    return run


median_times = ladder.median_times  # interleaved medians; the GPU methods synchronise themselves


def conv_rows(cases, repeats):
    rng = np.random.default_rng(0)
    rows = []
    for name, (n, c, h, w, o, k, s, p, g) in cases.items():
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((o, c // g, k, k)) * 0.1).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        oh = (h + 2 * p - k) // s + 1
        grad = rng.standard_normal((n, o, oh, oh)).astype(np.float32)
        methods = {"cuda": ours(lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=s, padding=p, groups=g),
                                (x, wt, b), grad),
                   "pytorch_cuda": theirs(lambda x_, w_, b_: TF.conv2d(x_, w_, b_, stride=s, padding=p, groups=g),
                                          (x, wt, b), grad)}
        row = {"case": f"conv2d {name}", "kind": "conv", **median_times(methods, repeats)}
        flops = 3 * 2 * n * o * oh * oh * (c // g) * k * k
        row["cuda_tflops"] = flops / row["cuda"] / 1e12
        rows.append(row)
    return rows


def layer_rows(repeats, smoke=False):
    rng = np.random.default_rng(1)
    big = (2, 3, 9, 9) if smoke else (32, 96, 55, 55)
    x55 = rng.standard_normal(big).astype(np.float32)
    cases = [
        ("max_pool2d 3x3/2", (x55,), lambda t: F.max_pool2d(t, 3, 2), lambda t: TF.max_pool2d(t, 3, 2)),
        ("avg_pool2d 3x3/2", (x55,), lambda t: F.avg_pool2d(t, 3, 2), lambda t: TF.avg_pool2d(t, 3, 2)),
        # PyTorch divides alpha by size: alpha*size gives the paper's formula
        ("lrn n=5", (x55,), lambda t: F.local_response_norm(t, 5, 1e-4, 0.75, 2.0),
         lambda t: TF.local_response_norm(t, 5, 5e-4, 0.75, 2.0)),
        ("relu", (x55,), F.relu, TF.relu if TF else None),
        ("sigmoid", (x55,), F.sigmoid, torch.sigmoid if torch else None),
    ]
    rows = []
    for name, arrays, op, top in cases:
        with mc.no_grad():
            shape = op(*[mc.Tensor(a) for a in arrays]).shape
        grad = rng.standard_normal(shape).astype(np.float32)
        methods = {"cuda": ours(op, arrays, grad), "pytorch_cuda": theirs(top, arrays, grad)}
        rows.append({"case": f"{name} {'x'.join(map(str, big))}", "kind": "layer", **median_times(methods, repeats)})
    M, C = (4, 5) if smoke else (256, 1000)
    logits = rng.standard_normal((M, C)).astype(np.float32)
    target = rng.integers(0, C, M)
    tt = torch.from_numpy(target).cuda() if TORCH_CUDA else None
    one = np.float32(1.0).reshape(())
    methods = {"cuda": ours(lambda t: F.cross_entropy(t, target), (logits,), one),
               "pytorch_cuda": theirs(lambda t: TF.cross_entropy(t, tt), (logits,), one)}
    rows.append({"case": f"cross_entropy {M}x{C}", "kind": "layer", **median_times(methods, repeats)})
    return rows


def sgemm_rows(sizes, repeats):
    """The tiled shared-memory SGEMM (kernels/cuda/gemm.py) against cuBLAS, in TFLOP/s."""
    from minicnn.kernels.cuda import gemm
    rng = np.random.default_rng(3)
    rows = []
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        da, db = cuda.to_device(a), cuda.to_device(b)
        out = cuda.device_array((n, n), np.float32)

        def ours_(da=da, db=db, out=out):
            gemm.matmul(da, db, out=out)
            sync()
        methods = {"cuda": ours_}
        if TORCH_CUDA:
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            methods["pytorch_cuda"] = lambda ta=ta, tb=tb: (torch.matmul(ta, tb), sync())
        if cupy is not None:
            ca, cb = cupy.asarray(a), cupy.asarray(b)
            methods["cupy"] = lambda ca=ca, cb=cb: (cupy.matmul(ca, cb), cupy.cuda.Device().synchronize())
        t = median_times(methods, repeats)
        flops = 2 * n ** 3
        np.testing.assert_allclose(out.copy_to_host(), a @ b, rtol=1e-3, atol=1e-2 * np.sqrt(n))
        rows.append({"case": f"sgemm {n}x{n}x{n}", "kind": "sgemm", **t,
                     **{f"{k}_tflops": flops / v / 1e12 for k, v in t.items()}})
    return rows


def machine():
    info = {"numba": __import__("numba").__version__, "simulator": bool(os.environ.get("NUMBA_ENABLE_CUDASIM"))}
    try:
        dev = cuda.get_current_device()
        info["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        info["compute_capability"] = ".".join(map(str, dev.compute_capability))
    except Exception as exc:  # noqa: BLE001 (the simulator's fake device)
        info["gpu"] = f"unknown ({exc})"
    if torch is not None:
        info["torch"] = torch.__version__
    if cupy is not None:
        info["cupy"] = cupy.__version__
    return info


def markdown(result):
    lines = [f"# GPU speed ladder ({result['date']})", "",
             "Forward+backward medians in milliseconds on the GPU; ratio < 1 means minicnn is faster.", "",
             "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()), "",
             "| case | minicnn cuda | PyTorch cuda | cuda/PyTorch | minicnn TFLOP/s |", "|---|---|---|---|---|"]

    def ms(v):
        return f"{v * 1e3:.3f}" if v else "-"
    for r in result["rows"]:
        if r["kind"] == "sgemm":
            continue
        ratio = f"{r['cuda'] / r['pytorch_cuda']:.2f}x" if r.get("pytorch_cuda") else "-"
        tf = f"{r['cuda_tflops']:.2f}" if r.get("cuda_tflops") else "-"
        lines.append(f"| {r['case']} | {ms(r['cuda'])} | {ms(r.get('pytorch_cuda'))} | {ratio} | {tf} |")
    lines += ["", "## Tiled SGEMM (kernels/cuda/gemm.py) vs cuBLAS", "",
              "| size | minicnn TFLOP/s | PyTorch TFLOP/s | CuPy TFLOP/s |", "|---|---|---|---|"]
    for r in result["rows"]:
        if r["kind"] == "sgemm":
            def tf(k):
                return f"{r[k]:.2f}" if r.get(k) else "-"
            lines.append(f"| {r['case']} | {tf('cuda_tflops')} | {tf('pytorch_cuda_tflops')} | {tf('cupy_tflops')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 9; nothing saved")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, 1 repeat, nothing saved (simulator)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    if not cuda.is_available():
        sys.exit("gpu_ladder: no CUDA GPU (numba.cuda.is_available() is False); "
                 "use --smoke with NUMBA_ENABLE_CUDASIM=1 to check the script only")
    repeats = 1 if args.smoke else (3 if args.quick else 9)
    rows = (conv_rows(SMOKE_CONV if args.smoke else ladder.CONV_CASES, repeats)
            + layer_rows(repeats, smoke=args.smoke)
            + sgemm_rows([16] if args.smoke else [1024, 2048, 4096], repeats))
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "repeats": repeats, "rows": rows}
    text = markdown(result)
    print(text)
    if not (args.quick or args.smoke or args.no_save):
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "gpu_ladder.json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(RESULTS, "gpu_ladder.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
