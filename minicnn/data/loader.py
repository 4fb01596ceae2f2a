"""DataLoader: batches of (images, labels) from a dataset, optionally shuffled and prefetched.

    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    for epoch in range(3):
        for x, y in loader:     # x: Tensor float32 (B, C, H, W), y: Tensor int64 (B,)
            loss = F.cross_entropy(model(x), y)

What it yields: a pair of minicnn Tensors, images as float32 and labels as int64 (float32 if the
dataset's labels are not integers). Neither requires grad; `x.data`/`y.data` are the numpy arrays.

Order and randomness:
- `shuffle=True` draws a new permutation every epoch (every `for` over the loader).
- `seed=None`: the permutations come from the global generator `minicnn.random.get_rng()`, so
  `mc.manual_seed(s)` makes the whole run repeatable. `seed=s`: the loader owns a generator
  seeded with `s`; two loaders with the same seed give the same sequence of epochs.
- Random transforms: every batch gets its own generator (seeded from the loader's), installed with
  `transforms.rng_scope` while the batch is built, so augmentation is identical with and without
  background workers. The loader only draws random numbers when it shuffles or the dataset has a
  transform, so an evaluation loader leaves the global generator alone.

Exact resume: `state_dict()` captures where the loader is (epoch, batches already yielded in the
current epoch, that epoch's order) and, with `seed` given, its own generator; `load_state_dict`
restores it, and the next `for` continues the interrupted epoch (or starts the next one). With
`seed=None` save `minicnn.random.get_state()` too (the training checkpoint does).

A `sampler` (e.g. `DistributedSampler`: this rank's share of a data-parallel run) decides
which samples an epoch visits and in which order: `iter(sampler)` is read once at the start of
each epoch (call its `set_epoch` between epochs), and `len(sampler)` replaces the dataset's
length. It excludes `shuffle=True`, as in PyTorch.

`num_workers > 0` builds up to `num_workers * prefetch_factor` batches ahead in background
threads (NumPy and Pillow release the GIL for the heavy parts). Threads, not processes: `fork()`
after Numba's OpenMP threads have started kills the child, and threads need no pickling.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..random import get_rng
from ..tensor import Tensor
from .dataset import stack_batch
from .transforms import rng_scope


class DataLoader:
    """Iterate over `dataset` in batches; see the module docstring."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 num_workers=0, prefetch_factor=2, sampler=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a dataset with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        for name, value, least in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                   ("prefetch_factor", prefetch_factor, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"DataLoader: {name} must be an integer >= {least}, got {value!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler "
                             "decides the order; DistributedSampler has its own shuffle)")
        self.dataset, self.sampler = dataset, sampler
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.seed = seed
        self.num_workers, self.prefetch_factor = int(num_workers), int(prefetch_factor)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.epoch = 0          # epochs started so far
        self._order = None      # this epoch's sample order, and one seed per batch
        self._batch_seeds = None
        self._done = 0          # batches of the current epoch already handed out

    # ---- sizes ------------------------------------------------------------------------------------
    def _num_samples(self):
        """Samples per epoch: the sampler's share when there is one, else the whole dataset."""
        return len(self.dataset) if self.sampler is None else len(self.sampler)

    def __len__(self):
        n = self._num_samples()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def generator(self):
        """The generator the loader draws from: its own (seed given) or the global one."""
        return self._rng if self._rng is not None else get_rng()

    # ---- one epoch --------------------------------------------------------------------------------
    def _needs_rng(self):
        return self.shuffle or getattr(self.dataset, "transform", None) is not None

    def _start_epoch(self):
        n, batches = len(self.dataset), len(self)
        if self._needs_rng():
            rng = self.generator
            self._order = rng.permutation(n) if self.shuffle else np.arange(n)
            self._batch_seeds = rng.integers(0, 2 ** 63 - 1, size=batches, dtype=np.int64)
        else:
            self._order, self._batch_seeds = np.arange(n), None
        if self.sampler is not None:
            self._order = np.fromiter(iter(self.sampler), dtype=np.int64, count=len(self.sampler))
        self._done = 0
        self.epoch += 1

    def _indices(self, b):
        return self._order[b * self.batch_size:(b + 1) * self.batch_size]

    def _load(self, b):
        """Batch number b of the current epoch as numpy arrays (runs in a worker thread too)."""
        indices = self._indices(b)
        if self._batch_seeds is None:
            return self._fetch(indices)
        with rng_scope(np.random.default_rng(int(self._batch_seeds[b]))):
            return self._fetch(indices)

    def _fetch(self, indices):
        if hasattr(self.dataset, "get_batch"):
            x, y = self.dataset.get_batch(indices)
        else:
            x, y = stack_batch([self.dataset[int(i)] for i in indices], type(self.dataset).__name__)
        y = np.asarray(y)
        y = y.astype(np.int64, copy=False) if y.dtype.kind in "biu" else y.astype(np.float32, copy=False)
        return np.asarray(x, dtype=np.float32), y

    def __iter__(self):
        if self._order is None or self._done >= len(self):
            self._start_epoch()
        return self._iterate()

    def _iterate(self):
        start, batches = self._done, len(self)
        if self.num_workers == 0:
            for b in range(start, batches):
                x, y = self._load(b)
                self._done = b + 1
                yield Tensor(x), Tensor(y)
            return
        ahead = self.num_workers * self.prefetch_factor
        pool = ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="minicnn-loader")
        try:
            pending = {}
            for b in range(start, batches):
                for k in range(b, min(b + ahead, batches)):  # keep `ahead` batches in flight
                    if k not in pending:
                        pending[k] = pool.submit(self._load, k)
                x, y = pending.pop(b).result()
                self._done = b + 1
                yield Tensor(x), Tensor(y)
        finally:  # also when the consumer breaks out of the loop early
            pool.shutdown(wait=True, cancel_futures=True)

    # ---- exact resume -----------------------------------------------------------------------------
    def state_dict(self):
        """Where the loader is: plain values and numpy arrays (fits in a checkpoint)."""
        return {
            "epoch": self.epoch,
            "batches_done": self._done,
            "order": None if self._order is None else self._order.copy(),
            "batch_seeds": None if self._batch_seeds is None else self._batch_seeds.copy(),
            "rng_state": None if self._rng is None else self._rng.bit_generator.state,
        }

    def load_state_dict(self, state):
        if (state["rng_state"] is None) != (self._rng is None):
            raise ValueError("DataLoader.load_state_dict: the state was saved from a loader "
                             f"{'without' if state['rng_state'] is None else 'with'} a seed, "
                             f"this one has seed={self.seed!r}")
        if state["order"] is not None and len(state["order"]) != self._num_samples():
            raise ValueError(f"DataLoader.load_state_dict: the state is for an epoch of "
                             f"{len(state['order'])} items, this loader's has {self._num_samples()}")
        self.epoch = int(state["epoch"])
        self._done = int(state["batches_done"])
        self._order = None if state["order"] is None else np.asarray(state["order"]).copy()
        seeds = state["batch_seeds"]
        self._batch_seeds = None if seeds is None else np.asarray(seeds).copy()
        if self._rng is not None:
            self._rng.bit_generator.state = state["rng_state"]

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
                f"num_workers={self.num_workers})")
