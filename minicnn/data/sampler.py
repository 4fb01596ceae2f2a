"""DistributedSampler: which samples each rank of a data-parallel run takes (PyTorch's rules).

    sampler = data.DistributedSampler(train_set, shuffle=True, seed=0)   # rank, size from init()
    loader = data.DataLoader(train_set, batch_size=32, sampler=sampler)
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)
        for x, y in loader: ...

Every epoch, every rank draws the SAME permutation of 0 ... N-1 (from `seed` and the epoch, not
from any global generator), pads it to a multiple of R by repeating its start, and takes every
R-th index from position `rank` on:

    order  = permutation(N; seed, epoch)      (0, 1, ..., N-1 when shuffle=False)
    order += order[:pad]                      pad = R * ceil(N / R) - N     (drop_last=False)
    shard  = order[rank::R]                   ceil(N / R) indices on every rank

so the shards are disjoint (but for the <= R-1 repeated samples), their union is the data set,
and every rank has the same number of batches: no rank waits in an Allreduce another never makes.
`drop_last=True` drops the tail instead (floor(N / R) each). `set_epoch` changes the order;
without it every epoch repeats the first one's (as in PyTorch; `train.fit` calls it).

`pad=False` (evaluation) takes order[rank::R] without padding: every sample exactly once, the
shards one sample apart in length. Use it where the ranks' sums are reduced afterwards
(`train.evaluate` does), not for training, where the batches must match up.
"""
import math

import numpy as np


class DistributedSampler:
    """This rank's share of `dataset`'s indices for the current epoch; see the module docstring.

    num_replicas, rank   default: `minicnn.distributed.world_size()` and `rank()`
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False, pad=True):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: expected a dataset with __len__, got "
                            f"{type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from .. import distributed
            num_replicas = distributed.world_size() if num_replicas is None else num_replicas
            rank = distributed.rank() if rank is None else rank
        for name, value, least in (("num_replicas", num_replicas, 1), ("rank", rank, 0),
                                   ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"DistributedSampler: {name} must be an integer >= {least}, "
                                 f"got {value!r}")
        if rank >= num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}] for "
                             f"num_replicas={num_replicas}, got {rank}")
        if drop_last and not pad:
            raise ValueError("DistributedSampler: drop_last=True and pad=False contradict each other")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        self.epoch = 0

    def set_epoch(self, epoch):
        """The epoch whose order the next pass draws (the same on every rank for one epoch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: expected an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    @property
    def total_size(self):
        """Indices handed out over all ranks per epoch (N padded up or cut down to R's multiple)."""
        n, r = len(self.dataset), self.num_replicas
        if not self.pad:
            return n
        return (n // r) * r if self.drop_last else math.ceil(n / r) * r

    def __len__(self):
        n, r = self.total_size, self.num_replicas
        return len(range(self.rank, n, r))

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        total = self.total_size
        if total > n:   # pad by repeating the start (again and again if R > N)
            order = np.resize(order, total)
        return order[:total][self.rank::self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __repr__(self):
        return (f"DistributedSampler({type(self.dataset).__name__}, rank {self.rank} of "
                f"{self.num_replicas}, shuffle={self.shuffle}, seed={self.seed}, "
                f"epoch={self.epoch})")
