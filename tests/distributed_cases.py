"""What the distributed tests run, in pytest's process (FakeWorld) and under `mpiexec -n 2`:

    mpiexec -n 2 python -m mpi4py tests/distributed_cases.py CASE OUT_DIR

writes OUT_DIR/rank<r>.npz (CASE equivalence, hash or resume) or raises on rank 1 (CASE raise).
`python -m mpi4py` aborts the whole job when a rank raises, so a failure cannot hang.
"""
import hashlib
import os
import sys

import numpy as np

import minicnn as mc
import minicnn.distributed as dist
import minicnn.functional as F
from minicnn import data, nn, optim, train

STEPS, BATCH = 4, 8          # SGD-momentum steps; the global batch, split over the ranks


def small_cnn(dropout=0.0, batch_norm=False):
    """conv 3x3 -> (BN) -> ReLU -> max pool -> (dropout) -> linear, on 1 x 8 x 8 images."""
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if batch_norm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Linear(4 * 4 * 4, 3)]
    return nn.Sequential(*layers)


def batches(seed=5, steps=STEPS, batch=BATCH, dtype=np.float64):
    """`steps` global batches (x (batch, 1, 8, 8), y (batch,)), the same for every caller."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 8, 8)).astype(dtype), rng.integers(0, 3, batch))
            for _ in range(steps)]


def float64_model(seed=0):
    mc.manual_seed(seed)
    return small_cnn().double()


def sgd(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def run_steps(model, optimizer, rank=0, size=1, seed=5):
    """STEPS steps of `optimizer` on rank's share (a contiguous 1/size) of each global batch."""
    for x, y in batches(seed):
        share = len(y) // size
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        optimizer.zero_grad()
        F.cross_entropy(model(mc.Tensor(x, dtype=x.dtype)), y).backward()
        optimizer.step()
    return {name: p.numpy() for name, p in model.named_parameters()}


def equivalence(comm, bucket_mb=0.001):
    """Rank `comm.rank`'s parameters after data-parallel steps; rank 1 starts from other
    weights, which broadcast_parameters must replace. Small buckets: several Allreduces."""
    model = float64_model(seed=comm.rank)
    dist.broadcast_parameters(model, root=0, comm=comm)
    optimizer = dist.DistributedOptimizer(sgd(model), model, comm=comm, bucket_mb=bucket_mb)
    return run_steps(model, optimizer, comm.rank, comm.size)


def reference():
    """The same steps in one process on the whole batch."""
    model = float64_model(seed=0)
    return run_steps(model, sgd(model))


def parameter_hash(model):
    """sha256 over every parameter's and buffer's bytes, in name order."""
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(t).tobytes())
    return digest.hexdigest()


def short_training(comm, epochs=2, out_dir=None, resume=None):
    """fit on Shapes with dropout and batch norm (both differ per rank) for a short while; the
    rank's parameter hash and history."""
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(6 * 6 * 6, len(data.Shapes.classes)))
    mc.manual_seed([0, comm.rank])   # dropout differs per rank
    shapes = data.Shapes(n=96, train=True, size=16, channels=1, seed=0)
    val = data.Shapes(n=30, train=False, size=16, channels=1, seed=0)
    sampler = data.DistributedSampler(shapes, comm.size, comm.rank, shuffle=True, seed=0)
    val_sampler = data.DistributedSampler(val, comm.size, comm.rank, shuffle=False, pad=False)
    loader = data.DataLoader(shapes, batch_size=16 // comm.size, sampler=sampler)
    val_loader = data.DataLoader(val, batch_size=8, sampler=val_sampler)
    optimizer = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                                          model, comm=comm)
    history = train.fit(model, optimizer, loader, val_loader, epochs=epochs, quiet=True,
                        out_dir=out_dir, resume=resume, plot=False)
    return parameter_hash(model), history


def resumed_training(comm, out_dir):
    """(hash after 2 epochs in one go, hash after 1 epoch, a new process state, and a resume to 2).
    Dropout differs per rank: the two agree only if every rank got its own generator back."""
    full, _ = short_training(comm, epochs=2)
    short_training(comm, epochs=1, out_dir=out_dir)
    resumed, history = short_training(comm, epochs=2, resume=os.path.join(out_dir, train.CHECKPOINT))
    return full, resumed, len(history)


def main(case, out_dir):
    comm = dist.init()
    if case == "equivalence":
        params = equivalence(comm)
        np.savez(os.path.join(out_dir, f"rank{comm.rank}.npz"), **params)
    elif case == "hash":
        digest, history = short_training(comm)
        np.savez(os.path.join(out_dir, f"rank{comm.rank}.npz"), hash=digest,
                 val_top1=history[-1]["val_top1"], size=comm.size)
    elif case == "resume":
        full, resumed, epochs = resumed_training(comm, out_dir)
        np.savez(os.path.join(out_dir, f"rank{comm.rank}.npz"), full=full, resumed=resumed,
                 epochs=epochs)
    elif case == "raise":
        if comm.rank == 1:
            raise RuntimeError("rank 1 fails on purpose")
        comm.Allreduce(np.zeros(4))   # rank 0 waits here for a rank that is gone
    else:
        raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
