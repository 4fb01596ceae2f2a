"""The model ladder: one training step of every zoo model, minicnn against PyTorch, each framework
in a process of its own (benchmarks/fair.py says how and why).

    python benchmarks/model_ladder.py            # writes benchmarks/results/model_ladder.{json,md}
    python benchmarks/model_ladder.py --quick    # 1 round, 3 repeats, nothing saved
    python benchmarks/model_ladder.py --only resnet   # cases whose name contains "resnet"

A step: forward in training mode, cross-entropy (GoogLeNet: plus 0.3 x each auxiliary loss),
backward, SGD with momentum 0.9 and weight decay 5e-4; float32, random images and labels, the
same sizes in both frameworks. PyTorch's twins: benchmarks/torch_twins.py (parameter counts are
checked equal before anything is timed). Memory: the peak growth of the resident set during one
step, each case and framework in a fresh process (fair.peak_growth).
Targets (issue #15): every step <= 1.0x PyTorch's time, the median <= 0.85x; peak memory growth
<= 1.2x PyTorch's on ResNet-18 (batch 32) and VGG-11.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fair  # noqa: E402

RESULTS = os.path.join(HERE, "results")

# case: (model, batch, input C x H x W, classes). The sizes of issue #15's table.
CASES = {
    "lenet5 b64 28x28": ("lenet5", 64, (1, 28, 28), 10),
    "alexnet(paper) b8 227x227": ("alexnet", 8, (3, 227, 227), 1000),
    "vgg11 b8 64x64": ("vgg11", 8, (3, 64, 64), 1000),
    "resnet18 b16 64x64": ("resnet18", 16, (3, 64, 64), 1000),
    "resnet50 b8 64x64": ("resnet50", 8, (3, 64, 64), 1000),
    "googlenet(small) b8 64x64": ("googlenet", 8, (3, 64, 64), 1000),
    "alphago_policy b16 48x19x19": ("alphago_policy", 16, (48, 19, 19), 361),
}
MEMORY_CASES = {
    "resnet18 b32 64x64": ("resnet18", 32, (3, 64, 64), 1000),
    "vgg11 b8 64x64": CASES["vgg11 b8 64x64"],
}
ALL = {**CASES, **MEMORY_CASES}
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


# ---- the workers: one training step in each framework ---------------------------------------
def minicnn_step(case, small=False):
    import numpy as np
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import models, optim
    from minicnn.models.googlenet import googlenet_loss
    name, batch, shape, classes = ALL[case]
    batch = 1 if small else batch
    build = {"alexnet": lambda: models.alexnet(variant="paper"),
             "googlenet": lambda: models.googlenet(small_input=True)}.get(name, getattr(models, name, None))
    model = build()
    model.train()
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(0)
    x = mc.Tensor(rng.standard_normal((batch, *shape)).astype(np.float32))
    y = rng.integers(0, classes, batch)
    loss_fn = googlenet_loss if name == "googlenet" else F.cross_entropy

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    step.info = {"params": int(sum(p.size for p in model.parameters()))}
    return step


def pytorch_step(case, small=False):
    import torch
    import torch_twins
    name, batch, shape, classes = ALL[case]
    batch = 1 if small else batch
    model = torch_twins.build(name)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *shape), generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)

    def loss_fn(out):
        if isinstance(out, tuple):  # GoogLeNet in training mode: (logits, aux1, aux2)
            return torch.nn.functional.cross_entropy(out[0], y) + sum(
                0.3 * torch.nn.functional.cross_entropy(a, y) for a in out[1:])
        return torch.nn.functional.cross_entropy(out, y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x))
        loss.backward()
        opt.step()
    step.info = {"params": int(sum(p.numel() for p in model.parameters()))}
    return step


WORKERS = {"minicnn": minicnn_step, "pytorch": pytorch_step}


# ---- the report -----------------------------------------------------------------------------
def markdown(result):
    lines = [f"# Model ladder ({result['date']})", "",
             "One training step (forward, cross-entropy, backward, SGD momentum + weight decay), float32.",
             "Each framework in its own process with its own defaults; "
             f"{result['rounds']} rounds alternated, {result['repeats']} timed steps a turn after warm-up steps;",
             "the median over rounds of each round's median (benchmarks/fair.py). Ratios < 1: minicnn is faster.",
             "", "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()), "",
             "| model, batch, input | parameters | minicnn ms | PyTorch ms | minicnn / PyTorch | rounds (minicnn / PyTorch ms) |",
             "|---|---|---|---|---|---|"]
    for case, r in result["time"].items():
        rounds = " ".join(f"{a * 1e3:.0f}/{b * 1e3:.0f}" for a, b in zip(r["minicnn_rounds"], r["pytorch_rounds"]))
        lines.append(f"| {case} | {r['params']:,} | {r['minicnn'] * 1e3:.1f} | {r['pytorch'] * 1e3:.1f} | "
                     f"{r['ratio']:.2f}x | {rounds} |")
    s = result.get("summary")
    if s:
        lines += ["", f"Median ratio: {s['median_ratio']:.2f}x (target <= 0.85x); worst: {s['worst_ratio']:.2f}x "
                  f"({s['worst_case']}; target <= 1.0x each)."]
    if result.get("memory"):
        lines += ["", "## Peak memory growth of one training step", "",
                  "| model, batch, input | minicnn MiB | PyTorch MiB | minicnn / PyTorch |", "|---|---|---|---|"]
        for case, m in result["memory"].items():
            lines.append(f"| {case} | {m['minicnn'] / 2**20:.0f} | {m['pytorch'] / 2**20:.0f} | {m['ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 repeats; nothing saved")
    ap.add_argument("--rounds", type=int, default=5)   # ResNet-18 moved 0.88-1.10x over 3
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="", help="cases whose name contains this text; nothing saved")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args(argv)
    if args.worker:
        return fair.serve(WORKERS[args.worker])
    rounds, repeats = (1, 3) if args.quick else (args.rounds, args.repeats)
    cases = [c for c in CASES if args.only in c]
    times = fair.compare(__file__, ["minicnn", "pytorch"], cases, rounds, repeats, log=print)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": fair.machine(), "rounds": rounds,
              "repeats": repeats, "time": {}, "memory": {}}
    for case in cases:
        r = times[case]
        ours, theirs = r.pop("minicnn_info")["params"], r.pop("pytorch_info")["params"]
        if ours != theirs:  # a twin that is not the same model makes the ratio meaningless
            raise SystemExit(f"{case}: minicnn has {ours:,} parameters, its PyTorch twin {theirs:,}")
        result["time"][case] = {**r, "params": ours}
    ratios = {c: times[c]["minicnn"] / times[c]["pytorch"] for c in cases}
    for c in cases:
        result["time"][c]["ratio"] = ratios[c]
    if ratios:   # (--only may name memory cases alone)
        worst = max(ratios, key=ratios.get)
        result["summary"] = {"median_ratio": statistics.median(ratios.values()), "worst_ratio": ratios[worst],
                             "worst_case": worst}
    if not args.no_memory:
        mem_cases = [c for c in MEMORY_CASES if args.only in c]
        mem = fair.memory(__file__, ["minicnn", "pytorch"], mem_cases, log=print)
        for c in mem_cases:
            result["memory"][c] = {**mem[c], "ratio": mem[c]["minicnn"] / mem[c]["pytorch"]}
    text = markdown(result)
    print(text)
    if not (args.quick or args.only):
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "model_ladder.json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(RESULTS, "model_ladder.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
