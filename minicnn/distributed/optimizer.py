"""DistributedOptimizer: average the gradients over every rank, then take the wrapped step.

Data parallelism in one equation. Each of the R ranks holds the same weights w and a different
shard B_r of the global batch B (|B_r| = |B| / R). With the mean loss L_B = 1/|B| sum_i l_i,

    grad L_B = 1/R * sum_r grad L_{B_r}

so averaging the ranks' gradients gives every rank the gradient of the whole batch, and the same
optimiser step from the same weights keeps every rank's weights the same (bit for bit: every
rank receives the same summed bits from Allreduce).

How the gradients travel (Horovod's tensor fusion, DDP's buckets): one message per parameter
would pay the network's latency dozens of times a step, so the gradients are copied into a few
flat buffers ("buckets", `bucket_mb` each at most, one dtype each), in the order the optimiser
lists its parameters, which is the same on every rank (checked once, at construction). Each
bucket is summed with one in-place Allreduce and divided by R; the means are copied back into
the `.grad` arrays in place, and the wrapped optimiser's own `step()` runs on them.

A parameter whose `.grad` is None on a rank (it took no part in that rank's forward pass)
contributes zeros; each bucket carries one extra number per parameter (1 if that rank had a
gradient) so that a parameter no rank touched keeps `.grad = None`.
"""
import numpy as np

from ..device import array_device, to_device
from ..optim.optimizer import Optimizer
from .launch import world

DEFAULT_BUCKET_MB = 25   # PyTorch DDP's default bucket size


class Bucket:
    """Parameters of one dtype whose gradients travel together in one flat buffer:
    [grad of p0 (flattened), grad of p1, ..., then one "had a gradient" flag per parameter]."""

    def __init__(self, params, dtype):
        self.params, self.dtype = list(params), np.dtype(dtype)
        sizes = [p.size for p in self.params]
        self.edges = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.numel = int(self.edges[-1])
        self.flat = np.empty(self.numel + len(self.params), self.dtype)

    @property
    def nbytes(self):
        return self.flat.nbytes

    def pack(self):
        """Copy every gradient into the flat buffer (zeros and flag 0 where .grad is None)."""
        flags = self.flat[self.numel:]
        for i, p in enumerate(self.params):
            part = self.flat[self.edges[i]:self.edges[i + 1]]
            if p.grad is None:
                part[...], flags[i] = 0, 0
            else:
                part[...], flags[i] = np.asarray(to_device(p.grad, "cpu")).ravel(), 1

    def unpack(self, ranks):
        """Divide the summed buffer by the number of ranks and copy each mean back into its
        parameter's .grad (in place on the CPU); a parameter no rank had a gradient for keeps None."""
        np.divide(self.flat[:self.numel], ranks, out=self.flat[:self.numel])
        flags = self.flat[self.numel:]
        for i, p in enumerate(self.params):
            if flags[i] == 0:
                continue
            mean = self.flat[self.edges[i]:self.edges[i + 1]].reshape(p.shape)
            if p.grad is not None and array_device(p.grad) == "cpu" and p.grad.dtype == self.dtype:
                np.copyto(p.grad, mean)
            else:   # no gradient here yet, another dtype, or on the GPU: a new array
                p.grad = to_device(mean.copy(), p.device)


def plan_buckets(params, bucket_bytes):
    """Split `params` (in order) into Buckets of one dtype and at most `bucket_bytes` of
    gradients each (a parameter larger than that gets a bucket of its own)."""
    buckets, current, size = [], [], 0
    for p in params:
        nbytes = p.size * p.dtype.itemsize
        if current and (p.dtype != current[0].dtype or size + nbytes > bucket_bytes):
            buckets.append(Bucket(current, current[0].dtype))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(Bucket(current, current[0].dtype))
    return buckets


class DistributedOptimizer(Optimizer):
    """Wraps any optimiser: `step()` averages the gradients over the ranks first (see the module
    docstring), then calls the wrapped `step()`. Everything else (`param_groups`, `state`,
    `zero_grad`, `state_dict`, `load_state_dict`) is the wrapped optimiser's, so schedulers and
    checkpoints see the optimiser they know.

        opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), model)

    model       names the parameters in error messages (and must hold them all)
    comm        the communicator (default: the one `init()` set up)
    bucket_mb   the largest bucket, in MiB of gradients (default 25, as PyTorch's DDP)
    """

    def __init__(self, optimizer, model=None, comm=None, bucket_mb=DEFAULT_BUCKET_MB):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer: expected a minicnn optimiser, got "
                            f"{type(optimizer).__name__}")
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimiser is already distributed")
        if not bucket_mb > 0:
            raise ValueError(f"DistributedOptimizer: bucket_mb must be > 0, got {bucket_mb!r}")
        self.optimizer = optimizer
        self.comm = world() if comm is None else comm
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.names = _parameter_names(params, model)
        self.buckets = plan_buckets(params, int(bucket_mb * 2 ** 20))
        self._check_same_plan()

    def _check_same_plan(self):
        """Every rank must sum the same parameters in the same buckets: compare with rank 0's."""
        plan = [(name, tuple(p.shape), str(p.dtype))
                for name, p in zip(self.names, (p for b in self.buckets for p in b.params))]
        root = self.comm.bcast(plan, root=0)
        for mine, theirs in zip(plan, root):
            if mine != theirs:
                raise ValueError(f"DistributedOptimizer: rank {self.comm.rank} has parameter "
                                 f"{mine}, rank 0 has {theirs} at the same place: every rank must "
                                 f"build the same model and optimiser")
        if len(plan) != len(root):
            raise ValueError(f"DistributedOptimizer: rank {self.comm.rank} has {len(plan)} "
                             f"parameters, rank 0 has {len(root)}")

    # ---- the step ---------------------------------------------------------------------------
    def synchronize(self):
        """Average every parameter's .grad over the ranks, in place, one Allreduce per bucket."""
        for bucket in self.buckets:
            bucket.pack()
            self.comm.Allreduce(bucket.flat)
            bucket.unpack(self.comm.size)

    def step(self, closure=None):
        """Average the gradients over the ranks, then the wrapped optimiser's step. `closure`
        (recomputes the loss and the gradients) runs first, as in every optimiser."""
        loss = closure() if closure is not None else None
        self.synchronize()
        self.optimizer.step()
        return loss

    @property
    def bytes_per_allreduce(self):
        """The bytes one step's Allreduce calls sum (gradients plus the flags)."""
        return sum(b.nbytes for b in self.buckets)

    # ---- the wrapped optimiser ----------------------------------------------------------------
    param_groups = property(lambda self: self.optimizer.param_groups)
    state = property(lambda self: self.optimizer.state)
    defaults = property(lambda self: self.optimizer.defaults)

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group):
        raise NotImplementedError("DistributedOptimizer: add the group to the optimiser before "
                                  "wrapping it (the buckets are planned once)")

    def __repr__(self):
        return (f"DistributedOptimizer({self.optimizer!r}, {len(self.buckets)} buckets, "
                f"rank {self.comm.rank} of {self.comm.size})")


def _parameter_names(params, model):
    """Each parameter's name in `model` ("conv1.weight"), or "param<i>" without a model."""
    if model is None:
        return [f"param{i}" for i in range(len(params))]
    by_id = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(f"DistributedOptimizer: the optimiser's parameter #{missing[0]} (shape "
                         f"{params[missing[0]].shape}) is not a parameter of the model given")
    return [by_id[id(p)] for p in params]
