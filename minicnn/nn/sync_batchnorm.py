"""SyncBatchNorm: batch norm whose statistics are taken over the batches of ALL ranks.

Plain batch norm under data parallelism normalises each rank's B/R images with their own mean
and variance. SyncBatchNorm sums over the ranks instead (PyTorch's nn.SyncBatchNorm), so R ranks
compute exactly what one process computes on the whole batch. Per channel c, over the M values
of every rank (M = the global N*H*W):

    forward   mean = 1/M sum x          (one Allreduce of the ranks' sums and counts)
              var  = 1/M sum (x - mean)^2                   (a second Allreduce)
              xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias
    backward  dweight = sum_local g * xhat,   dbias = sum_local g
              dx = weight / sqrt(var + eps) * (g - 1/M SUM g - xhat * 1/M SUM g * xhat)

where SUM is over every rank (one Allreduce of the two per-channel sums; the ranks' own sums
stay theirs for dweight and dbias, which DistributedOptimizer averages like every gradient).
Each rank's loss is the mean over its own batch: the average over the ranks of these gradients
is the whole batch's. The running statistics are updated with the global mean and the unbiased
global variance, the same on every rank. In eval mode it is BatchNorm (running statistics, no
communication). CPU only.

    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)     # every BatchNorm*d replaced
"""
import numpy as np

from ..functional.norm import running_average_factor
from ..tensor import Function
from .normalization import _BatchNorm


def _channel_axes(x):
    """The axes a channel's statistics run over: all but axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, x):
    """A (C,) vector shaped to broadcast against x (1, C, 1, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def global_moments(x, comm):
    """(mean, biased variance, M) per channel of x over every rank's batch: two Allreduces,
    first the sums and counts, then the squared deviations from the global mean."""
    axes = _channel_axes(x)
    sums = np.append(x.sum(axes, dtype=np.float64), x.size // x.shape[1])
    comm.Allreduce(sums)
    count = sums[-1]
    mean = sums[:-1] / count
    squares = ((x - _per_channel(mean, x)) ** 2).sum(axes, dtype=np.float64)
    comm.Allreduce(squares)
    return mean.astype(x.dtype), (squares / count).astype(x.dtype), int(count)


class SyncBatchNormFunction(Function):
    """y = weight * (x - mean) / sqrt(var + eps) + bias with the global `mean` and `var`; the
    backward sums the two per-channel terms of dx over the ranks (module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean=None, var=None, count=None, eps=1e-5, comm=None):
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
        xhat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
        y = xhat if weight is None else xhat * _per_channel(weight, x)
        y = y if bias is None else y + _per_channel(bias, x)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.count, ctx.comm = count, comm
        return y

    @staticmethod
    def backward(ctx, g):
        xhat, inv_std, weight = ctx.saved
        axes = _channel_axes(g)
        dbias = g.sum(axes)
        dweight = (g * xhat).sum(axes)
        totals = np.concatenate([dbias, dweight]).astype(np.float64)
        ctx.comm.Allreduce(totals)                    # SUM g and SUM g * xhat over every rank
        g_mean, gx_mean = np.split(totals.astype(g.dtype) / g.dtype.type(ctx.count), 2)
        scale = inv_std if weight is None else weight * inv_std
        dx = _per_channel(scale, g) * (g - _per_channel(g_mean, g) - xhat * _per_channel(gx_mean, g))
        return (dx, None if weight is None else dweight, dbias if ctx.needs_input_grad[2] else None)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) with statistics reduced over every rank of `comm` (default:
    the world of `minicnn.distributed.init()`); arguments and buffers as BatchNorm2d's."""

    _expected = (2, 3, 4, 5)
    _shape_text = "(N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 comm=None, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype=dtype)
        self.comm = comm

    def forward(self, x):
        if not self.training and self.track_running_stats:
            return super().forward(x)                 # eval: the running statistics, no messages
        if x.ndim not in self._expected or x.shape[1] != self.num_features:
            return super().forward(x)                 # its error names the shape expected
        if x.device != "cpu":
            raise NotImplementedError(f"SyncBatchNorm: runs on the CPU only, got input on {x.device}")
        from .. import distributed
        comm = distributed.world() if self.comm is None else self.comm
        mean, var, count = global_moments(x.data, comm)
        if count <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all "
                             f"ranks when training, got input of shape {x.shape} on each")
        if self.track_running_stats:
            self._update_running(mean, var, count)
        return SyncBatchNormFunction.apply(x, self.weight, self.bias, mean=mean, var=var,
                                           count=count, eps=self.eps, comm=comm)

    def _update_running(self, mean, var, count):
        """running = (1 - f) * running + f * batch statistic (the variance unbiased: M / (M - 1))."""
        self.num_batches_tracked.data[...] += 1
        f = running_average_factor(self.momentum, self.num_batches_tracked)
        unbiased = var * (count / max(count - 1, 1))
        self.running_mean.data[...] = (1 - f) * self.running_mean.data + f * mean
        self.running_var.data[...] = (1 - f) * self.running_var.data + f * unbiased

    @classmethod
    def convert_sync_batchnorm(cls, module, comm=None):
        """`module` with every BatchNorm1d/2d replaced by a SyncBatchNorm holding the same
        parameters and buffers (in place for children; returns the new module if `module` is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, comm=comm)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(sync, name, getattr(module, name))
            for name, buf in module._buffers.items():
                sync._buffers[name] = buf
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            module.add_module(name, cls.convert_sync_batchnorm(child, comm))
        return module
