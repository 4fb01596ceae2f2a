"""LeNet-5 on the real MNIST: minicnn against PyTorch, same model, data and hyper-parameters,
each framework in a process of its own (benchmarks/fair.py says how and why).

    MINICNN_DATA=../shared/data python benchmarks/mnist_lenet.py          # 5 epochs each
    python benchmarks/mnist_lenet.py --epochs 1 --no-torch                # a quick look

Both frameworks train the same LeNet-5 (ReLU, max pooling, 61,706 parameters; PyTorch's default
initialisation in both) with SGD (momentum 0.9), a cosine learning-rate schedule, batch 64, on
the 60,000 standardised training images, and are scored on the 10,000 test images after every
epoch. Each framework runs in a worker process started with the user's environment unchanged
(its own threads, allocator and OpenMP settings); the epochs alternate between the two workers
(minicnn epoch 1, PyTorch epoch 1, PyTorch epoch 2, minicnn epoch 2, ...), one working at a time,
so a busy spell of a shared machine slows both. Seconds per epoch count the training pass only
(minicnn's first epoch includes Numba's compile unless the cache is warm; the median leaves the
first epoch out for both). Targets: >= 99.0% test accuracy within 5 epochs; seconds per epoch
<= 1.0x PyTorch's. Results go to benchmarks/results/mnist_lenet.{json,md}, with the machine.
PyTorch is a benchmark-only dependency (pip install -e ".[bench]"); the package never imports it.
(Until 2026-12-04 both ran in one process; PyTorch's epochs were 1.65x slower there when it
read minicnn's OMP_WAIT_POLICY: results from before then are not comparable.)
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import fair  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")


def load_mnist():
    import numpy as np
    from minicnn import data
    os.environ.setdefault("MINICNN_DATA", os.path.join(ROOT, "..", "shared", "data"))
    sets = []
    for split in (True, False):
        ds = data.MNIST(train=split)
        ds.images -= np.float32(data.MNIST.mean[0])  # standardise once, as the CLI does
        ds.images /= np.float32(data.MNIST.std[0])
        sets.append(ds)
    return sets


# ---- minicnn ------------------------------------------------------------------------------------
class Ours:
    def __init__(self, train_set, test_set, args):
        import minicnn as mc
        from minicnn import data, models, optim, train
        self.train, self.mc = train, mc
        mc.manual_seed(args.seed)
        self.model = models.lenet5()
        self.opt = optim.SGD(self.model.parameters(), lr=args.lr, momentum=args.momentum)
        sched = optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=args.epochs)
        loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
        self.test_loader = data.DataLoader(test_set, batch_size=1000)
        self.trainer = train.Trainer(self.model, self.opt, loader, scheduler=sched, quiet=True)

    def epoch(self):
        self.trainer.fit(self.trainer.epoch + 1)
        record = self.trainer.history[-1]
        seconds = record["seconds"]  # no validation loader: the training pass alone
        result = self.train.evaluate(self.model, self.test_loader)
        return {"train_loss": record["train_loss"], "seconds": seconds, "test_top1": result.top1}


# ---- PyTorch ------------------------------------------------------------------------------------
class Theirs:
    def __init__(self, train_set, test_set, args):
        import numpy as np
        import torch
        self.torch, nn = torch, torch.nn
        torch.manual_seed(args.seed)
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=args.momentum)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=args.epochs)
        self.x, self.y = torch.from_numpy(train_set.images), torch.from_numpy(train_set.labels)
        self.tx, self.ty = torch.from_numpy(test_set.images), torch.from_numpy(test_set.labels)
        self.rng = np.random.default_rng(args.seed)
        self.batch_size = args.batch_size

    def epoch(self):
        torch, F = self.torch, self.torch.nn.functional
        self.model.train()
        order = torch.from_numpy(self.rng.permutation(len(self.y)))
        total, n = 0.0, 0
        start = time.perf_counter()
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            x, y = self.x[idx], self.y[idx]
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        seconds = time.perf_counter() - start
        self.sched.step()
        self.model.eval()
        with torch.no_grad():
            pred = torch.cat([self.model(self.tx[i:i + 1000]).argmax(1) for i in range(0, len(self.ty), 1000)])
        return {"train_loss": total / n, "seconds": seconds,
                "test_top1": float((pred == self.ty).float().mean())}


# ---- the workers -------------------------------------------------------------------------------
def versions(name):
    """What the worker runs on: versions and thread counts as the framework set them itself."""
    import numpy as np
    info = {"numpy": np.__version__}
    if name == "minicnn":
        import numba
        import minicnn as mc
        info.update(numba=numba.__version__, numba_threads=numba.get_num_threads(), minicnn=mc.__version__)
    else:
        import torch
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def worker(name, args):
    if args.threads:
        if name == "minicnn":
            import numba
            numba.set_num_threads(args.threads)
        else:
            import torch
            torch.set_num_threads(args.threads)
    train_set, test_set = load_mnist()
    run = (Ours if name == "minicnn" else Theirs)(train_set, test_set, args)

    def handle(command):
        return versions(name) if command.get("versions") else run.epoch()
    fair.answer_commands(handle)


def machine():
    return {**fair.machine(), "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None}


def markdown(result):
    m, a = result["machine"], result["args"]
    ours = result["versions"]["minicnn"]
    theirs = result["versions"].get("pytorch")
    lines = ["# LeNet-5 on MNIST: minicnn vs PyTorch, each in its own process", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {ours['numpy']}, "
             f"Numba {ours['numba']} ({ours['numba_threads']} threads)"
             + (f", PyTorch {theirs['torch']} ({theirs['torch_threads']} threads)" if theirs else "")
             + f"; load average at start {m['load_average_at_start']}.", "",
             f"SGD lr {a['lr']} momentum {a['momentum']}, cosine schedule, batch {a['batch_size']}, "
             f"{a['epochs']} epochs, seed {a['seed']}; seconds = training pass of one epoch.", "",
             "| epoch | minicnn test acc | minicnn s | PyTorch test acc | PyTorch s |",
             "|---|---|---|---|---|"]
    theirs = result.get("pytorch") or [{} for _ in result["minicnn"]]
    for i, (o, t) in enumerate(zip(result["minicnn"], theirs), 1):
        tacc = f"{100 * t['test_top1']:.2f}%" if t else "-"
        tsec = f"{t['seconds']:.1f}" if t else "-"
        lines.append(f"| {i} | {100 * o['test_top1']:.2f}% | {o['seconds']:.1f} | {tacc} | {tsec} |")
    s = result["summary"]
    lines += ["", f"minicnn: best test accuracy {100 * s['minicnn_best_top1']:.2f}%, median seconds "
                  f"per epoch {s['minicnn_median_seconds']:.2f} (epoch 1, with compile: "
                  f"{s['minicnn_first_epoch_seconds']:.2f})."]
    if "pytorch_median_seconds" in s:
        lines.append(f"PyTorch: best test accuracy {100 * s['pytorch_best_top1']:.2f}%, median "
                     f"seconds per epoch {s['pytorch_median_seconds']:.2f}. Ratio minicnn / PyTorch: "
                     f"{s['seconds_ratio']:.2f}x.")
    lines.append(f"Targets: >= 99.0% within 5 epochs: {'met' if s['accuracy_target_met'] else 'NOT met'}"
                 + (f"; <= 1.0x PyTorch's seconds per epoch: {'met' if s['speed_target_met'] else 'NOT met'}"
                    if "speed_target_met" in s else "") + ".")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", choices=["minicnn", "pytorch"], help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torch", action="store_true", help="minicnn only")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both frameworks (default: Numba's and PyTorch's own defaults)")
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args)
    names = ["minicnn"]
    if not args.no_torch:
        import importlib.util
        if importlib.util.find_spec("torch") is None:   # found, not imported: this process stays clean
            print("PyTorch is not installed: minicnn only (pip install -e '.[bench]')")
        else:
            names.append("pytorch")
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
              if k in ("epochs", "batch_size", "lr", "momentum", "seed", "threads") and v is not None]
    workers = {name: fair.Worker(__file__, name, passed) for name in names}
    try:
        result = {"args": vars(args), "machine": machine(),
                  "versions": {name: w.ask(versions=True) for name, w in workers.items()},
                  **{name: [] for name in names}}
        for epoch in range(1, args.epochs + 1):
            order = names if epoch % 2 else names[::-1]   # alternate who goes first
            for name in order:
                time.sleep(fair.SETTLE_S)
                rec = workers[name].ask(epoch=epoch)
                result[name].append(rec)
                print(f"{name:8s} epoch {epoch}: loss {rec['train_loss']:.4f}  test top-1 "
                      f"{100 * rec['test_top1']:.2f}%  {rec['seconds']:.2f}s", flush=True)
    finally:
        for w in workers.values():
            w.close()
    ours = result["minicnn"]
    summary = {"minicnn_best_top1": max(r["test_top1"] for r in ours),
               "minicnn_first_epoch_seconds": ours[0]["seconds"],
               "minicnn_median_seconds": statistics.median(r["seconds"] for r in ours[1:] or ours)}
    summary["accuracy_target_met"] = summary["minicnn_best_top1"] >= 0.99
    if "pytorch" in result:
        theirs = result["pytorch"]
        summary.update(pytorch_best_top1=max(r["test_top1"] for r in theirs),
                       pytorch_median_seconds=statistics.median(r["seconds"] for r in theirs[1:] or theirs))
        summary["seconds_ratio"] = summary["minicnn_median_seconds"] / summary["pytorch_median_seconds"]
        summary["speed_target_met"] = summary["seconds_ratio"] <= 1.0
    result["summary"] = summary
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "mnist_lenet.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.out, "mnist_lenet.md"), "w") as f:
        f.write(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
