"""Data-parallel training on MPI, Horovod's shape with DDP's semantics.

    import minicnn.distributed as dist
    dist.init()                                    # a world of one when not under mpiexec
    model = models.lenet5()
    dist.broadcast_parameters(model, root=0)       # every rank starts from rank 0's weights
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.05, momentum=0.9), model)
    sampler = data.DistributedSampler(train_set, shuffle=True, seed=0)
    loader = data.DataLoader(train_set, batch_size=64 // dist.world_size(), sampler=sampler)
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)                   # a new order every epoch, the same on all ranks
        for x, y in loader:                        # this rank's shard
            opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()

run as `mpiexec -n 2 python train.py` (`train.fit` and `minicnn train --distributed` do all of
this). Each rank is one process with its own copy of the model; after every backward pass the
gradients are averaged over the ranks (`DistributedOptimizer`), so every rank takes the same
step and the weights stay identical. Batch norm normalises with each rank's own batch (as DDP);
`broadcast_buffers` copies rank 0's running statistics to the others (`fit` does so after every
epoch); `nn.SyncBatchNorm` takes the statistics over every rank's batch instead. docs/distributed.md has the details and the estimate for many machines.

Files: comm.py (the collectives: MPI, a world of one, a fake world of threads for tests),
launch.py (init, rank, threads), optimizer.py (DistributedOptimizer and its buckets).
"""
import numpy as np

from ..device import to_device
from .comm import FakeComm, FakeWorld, MPIComm, SingleComm, launched_by_mpi
from .optimizer import DistributedOptimizer
from .launch import init, is_main, rank, set_threads, threads_per_rank, world, world_size

__all__ = ["init", "rank", "world_size", "is_main", "world", "broadcast_parameters",
           "broadcast_buffers", "broadcast_object", "DistributedOptimizer", "FakeWorld",
           "FakeComm", "MPIComm", "SingleComm", "launched_by_mpi", "set_threads",
           "threads_per_rank"]


def broadcast_object(obj, root=0, comm=None):
    """Root's `obj` on every rank (pickled: for small things such as a seed or an epoch)."""
    comm = world() if comm is None else comm
    return comm.bcast(obj, root=root)


def broadcast_parameters(model, root=0, comm=None):
    """Copy root's parameters and buffers (batch norm's running statistics) into every rank's
    `model`, in place: the ranks start from the same weights. Every rank must have built the
    same model (the names, shapes and dtypes are compared with root's first)."""
    _broadcast(model, root, comm, [*model.named_parameters(), *model.named_buffers()])


def broadcast_buffers(model, root=0, comm=None):
    """Copy root's buffers (running statistics) into every rank's `model`, in place."""
    _broadcast(model, root, comm, list(model.named_buffers()))


def _broadcast(model, root, comm, named):
    comm = world() if comm is None else comm
    if comm.size == 1:
        return
    layout = [(name, tuple(t.shape), str(t.dtype)) for name, t in named]
    theirs = comm.bcast(layout, root=root)
    if layout != theirs:
        diff = next((f"{m} here, {t} on rank {root}" for m, t in zip(layout, theirs) if m != t),
                    f"{len(layout)} tensors here, {len(theirs)} on rank {root}")
        raise ValueError(f"broadcast_parameters: rank {comm.rank}'s {type(model).__name__} differs "
                         f"from rank {root}'s: {diff}")
    for _, t in named:
        host = t.numpy() if t.device != "cpu" or not t.data.flags.c_contiguous else t.data
        comm.Bcast(host, root=root)
        if host is not t.data:
            t.data = to_device(np.ascontiguousarray(host), t.device)
