"""Data-parallel training on one machine: 1 process x 2 threads against 2 processes x 1 thread.

    MINICNN_DATA=../shared/data python benchmarks/distributed.py          # writes the results
    python benchmarks/distributed.py --quick                              # fewer steps, not saved

Cases (the global batch is the same in both layouts; each rank takes its half):
  lenet5    LeNet-5 on the real MNIST training images, global batch 64, SGD momentum 0.9
  resnet18  ResNet-18 (torchvision's, 10 classes) on synthetic 3 x 64 x 64 images, global batch 32
Layouts:
  1x2  one process, Numba and OpenBLAS on 2 threads (MINICNN_THREADS=2)
  2x1  `mpiexec -n 2`, one thread per rank (distributed.init() sets it: 2 cores / 2 ranks)
Per step it measures the compute (forward, backward, optimiser update) and, for 2x1, the gradient
Allreduce (`DistributedOptimizer.synchronize`, timed apart), and it reports the bytes each step's
Allreduce sums and the bytes each rank sends for them (a ring: 2 (R-1)/R x the buffer).

For the estimate in docs/distributed.md it also times one process x 2 threads on AlexNet (the
paper's, 227 x 227) and ResNet-50 (224 x 224), a few steps each: seconds per image of
forward + backward + update on this machine (`--no-large` skips them).
Results: benchmarks/results/distributed.{json,md}; `--report` rewrites the .md (with the
estimate for 8 machines, `estimate()`) from the .json without measuring again.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
os.environ.setdefault("MINICNN_DATA", os.path.join(ROOT, "..", "shared", "data"))

CASES = {   # name: (global batch, timed steps, warm-up steps)
    "lenet5": (64, 200, 20),
    "resnet18": (32, 6, 2),
}
LARGE = {   # name: (batch per step, timed steps) for the seconds-per-image estimate
    "alexnet": (8, 2),
    "resnet50": (8, 2),
}


# ---- one worker: runs under mpiexec or alone ----------------------------------------------------
def build_case(name, rank, size):
    """(model, list of (x, y) batches of this rank) for `name`."""
    import numpy as np

    import minicnn as mc
    from minicnn import data, models
    mc.manual_seed(0)
    batch, steps, warm = CASES.get(name, (None, None, None))
    if name == "lenet5":
        model = models.lenet5()
        mnist = data.MNIST(train=True)
        mnist.images -= np.float32(data.MNIST.mean[0])
        mnist.images /= np.float32(data.MNIST.std[0])
        sampler = data.DistributedSampler(mnist, size, rank, shuffle=True, seed=0)
        loader = data.DataLoader(mnist, batch_size=batch // size, sampler=sampler)
        batches = [(x.data, y.data) for _, (x, y) in zip(range(steps + warm), loader)]
        return model, batches
    if name == "resnet18":
        model = models.resnet18(num_classes=10)
        rng = np.random.default_rng(rank)
        batches = [(rng.standard_normal((batch // size, 3, 64, 64)).astype(np.float32),
                    rng.integers(0, 10, batch // size)) for _ in range(steps + warm)]
        return model, batches
    side = 227 if name == "alexnet" else 224
    batch, steps = LARGE[name]
    model = models.alexnet() if name == "alexnet" else models.resnet50()
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((batch, 3, side, side)).astype(np.float32),
                rng.integers(0, 1000, batch)) for _ in range(steps + 1)]
    return model, batches


def worker(names, quick, out):
    """Time every case in `names` in this process (rank of whatever world init() finds); rank 0
    writes the results to `out` as JSON."""
    import numba
    import numpy as np

    import minicnn as mc
    import minicnn.distributed as dist
    import minicnn.functional as F
    from minicnn import optim
    comm = dist.init()
    results = {}
    for name in names:
        model, batches = build_case(name, comm.rank, comm.size)
        inner = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        opt = dist.DistributedOptimizer(inner, model, comm=comm)
        dist.broadcast_parameters(model, comm=comm)
        warm = CASES[name][2] if name in CASES else 1
        if quick:
            batches = batches[:warm + max(2, (len(batches) - warm) // 10)]
        compute, reduce_ = [], []
        for i, (x, y) in enumerate(batches):
            comm.Allreduce(np.zeros(1))            # a barrier: every rank starts the step together
            t0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(mc.Tensor(x)), y).backward()
            t1 = time.perf_counter()
            if comm.size > 1:
                opt.synchronize()
            t2 = time.perf_counter()
            inner.step()
            t3 = time.perf_counter()
            if i >= warm:
                compute.append((t1 - t0) + (t3 - t2))
                reduce_.append(t2 - t1)
        # the slowest rank sets the pace: the largest per-rank median
        med = np.array([statistics.median(compute), statistics.median(reduce_)])
        worst = np.array(comm.gather(med, root=0) or [med]).max(axis=0)
        n_params = sum(p.size for p in model.parameters())
        batch = len(batches[0][1]) * comm.size
        step = float(worst[0] + worst[1])
        results[name] = {
            "ranks": comm.size, "threads_per_rank": numba.get_num_threads(),
            "global_batch": batch, "timed_steps": len(compute), "parameters": int(n_params),
            "compute_s": float(worst[0]), "allreduce_s": float(worst[1]) if comm.size > 1 else 0.0,
            "step_s": step, "images_per_s": batch / step,
            "allreduce_bytes": opt.bytes_per_allreduce if comm.size > 1 else 0,
            "bytes_sent_per_rank": (2 * (comm.size - 1) / comm.size * opt.bytes_per_allreduce),
            "buckets": len(opt.buckets),
        }
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)


# ---- the driver -----------------------------------------------------------------------------------
def run_layout(names, ranks, quick):
    """The worker's results for `names` under `ranks` processes (1: two threads, no mpiexec)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        me = [sys.executable, os.path.abspath(__file__), "--worker", "--out", out,
              "--cases", ",".join(names)] + (["--quick"] if quick else [])
        env = {**os.environ, "MPIEXEC_TIMEOUT": "1800"}
        if ranks == 1:
            cmd, env["MINICNN_THREADS"] = me, "2"
        else:
            mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
            cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", *me[1:]]
        subprocess.run(cmd, check=True, env=env, timeout=1900)
        with open(out) as f:
            return json.load(f)


def machine():
    import numba
    import numpy as np
    from fair import machine as the_machine
    from mpi4py import MPI
    return {**the_machine(), "numpy": np.__version__, "numba": numba.__version__,
            "mpi": " ".join(MPI.Get_library_version().splitlines()[0].split()),
            "date": time.strftime("%Y-%m-%d")}


# ---- the estimate for many machines (docs/distributed.md) -----------------------------------------
MACHINES = 8
PER_MACHINE_BATCH = {"alexnet": 128, "resnet50": 32}   # AlexNet's 128; Goyal et al.'s 32 per worker
LINKS = {"10 Gb/s": (10e9 / 8, 50e-6), "100 Gb/s": (100e9 / 8, 5e-6)}   # bytes/s, latency per message
BUCKET_BYTES = 25 * 2 ** 20


def estimate(result, machines=MACHINES):
    """Scaling efficiency of `machines` machines like this one, each with PER_MACHINE_BATCH images
    per step, gradients averaged by a ring Allreduce after the backward pass (no overlap):

        T_compute = batch x (measured seconds per image)
        T_comm    = 2 (R-1)/R x S / bandwidth  +  2 (R-1) x buckets x latency     (S: gradient bytes)
        efficiency = T_compute / (T_compute + T_comm),   speed-up = R x efficiency

    and the seconds per image below which communication takes more than half of each step."""
    rows = []
    for name, r in result.get("large", {}).items():
        per_image = r["step_s"] / r["global_batch"]
        batch = PER_MACHINE_BATCH[name]
        grad_bytes = 4 * r["parameters"]
        buckets = -(-grad_bytes // BUCKET_BYTES)
        t_compute = batch * per_image
        for link, (bandwidth, latency) in LINKS.items():
            ring = 2 * (machines - 1) / machines
            t_comm = ring * grad_bytes / bandwidth + 2 * (machines - 1) * buckets * latency
            eff = t_compute / (t_compute + t_comm)
            rows.append({"model": name, "link": link, "machines": machines, "batch_per_machine": batch,
                         "gradient_MB": grad_bytes / 1e6, "sent_per_machine_MB": ring * grad_bytes / 1e6,
                         "compute_s": t_compute, "comm_s": t_comm, "efficiency": eff,
                         "speedup": machines * eff, "half_efficiency_s_per_image": t_comm / batch})
    return rows


def markdown(result):
    m = result["machine"]
    lines = ["# Data-parallel training on one machine: 1 process x 2 threads vs 2 processes x 1 thread",
             "", f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']}, "
             f"Numba {m['numba']}, {m['mpi']}; {m['date']}. Command: `python benchmarks/distributed.py`.",
             "", "Per step: the median over the timed steps of the slowest rank. Compute = forward + "
             "backward + SGD update; Allreduce = averaging the gradients (one in-place Allreduce per "
             "bucket). Bytes sent per rank: 2 (R-1)/R x the Allreduce buffer (a ring).", "",
             "| case | layout | global batch | compute s | allreduce s | step s | images/s | "
             "allreduce buffer | sent per rank per step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in CASES:
        for layout in ("1x2", "2x1"):
            r = result["layouts"][layout].get(name)
            if r is None:
                continue
            lines.append(f"| {name} | {r['ranks']} proc x {r['threads_per_rank']} thr | "
                         f"{r['global_batch']} | {r['compute_s']:.4f} | {r['allreduce_s']:.4f} | "
                         f"{r['step_s']:.4f} | {r['images_per_s']:.0f} | "
                         f"{r['allreduce_bytes'] / 1e6:.2f} MB | {r['bytes_sent_per_rank'] / 1e6:.2f} MB |")
    if result.get("large"):
        lines += ["", "Seconds per image (forward + backward + SGD update), one process x 2 threads, "
                  "for the many-machine estimate in docs/distributed.md:", "",
                  "| model | input | batch | parameters | step s | s per image |", "|---|---|---|---|---|---|"]
        for name, r in result["large"].items():
            side = 227 if name == "alexnet" else 224
            lines.append(f"| {name} | 3x{side}x{side} | {r['global_batch']} | {r['parameters']:,} | "
                         f"{r['step_s']:.2f} | {r['step_s'] / r['global_batch']:.3f} |")
    rows = estimate(result)
    if rows:
        lines += ["", f"Estimate for {MACHINES} machines like this one (`estimate()`: ring Allreduce "
                  "after the backward pass, no overlap; latency per message 50 us at 10 Gb/s, 5 us "
                  "at 100 Gb/s):", "",
                  "| model | link | batch per machine | gradients | sent per machine | compute s | "
                  "allreduce s | efficiency | speed-up | 50% below s/image |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for e in rows:
            lines.append(f"| {e['model']} | {e['link']} | {e['batch_per_machine']} | "
                         f"{e['gradient_MB']:.0f} MB | {e['sent_per_machine_MB']:.0f} MB | "
                         f"{e['compute_s']:.2f} | {e['comm_s']:.3f} | {100 * e['efficiency']:.1f}% | "
                         f"{e['speedup']:.2f}x | {e['half_efficiency_s_per_image'] * 1e3:.2f} ms |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps; nothing saved")
    parser.add_argument("--no-large", action="store_true", help="skip AlexNet and ResNet-50")
    parser.add_argument("--report", action="store_true",
                        help="rewrite results/distributed.md from results/distributed.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.cases.split(",")
    if args.worker:
        return worker(names, args.quick, args.out)
    if args.report:
        with open(os.path.join(RESULTS, "distributed.json")) as f:
            result = json.load(f)
        result["estimate"] = estimate(result)
        return save(result)
    result = {"machine": machine(), "layouts": {}}
    for ranks, layout in ((1, "1x2"), (2, "2x1")):
        result["layouts"][layout] = run_layout(names, ranks, args.quick)
    if not args.no_large:
        result["large"] = run_layout(list(LARGE), 1, args.quick)
        result["estimate"] = estimate(result)
    if args.quick:
        print(markdown(result))
    else:
        save(result)


def save(result):
    text = markdown(result)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "distributed.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(RESULTS, "distributed.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
