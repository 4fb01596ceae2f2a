"""Normalisation layers: BatchNorm1d, BatchNorm2d and the AlexNet paper's LocalResponseNorm.

Batch norm (Ioffe & Szegedy, 2015), per channel c over the batch (and the spatial positions):
    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
Training uses the batch's statistics and updates the running ones in place (inside F.batch_norm):
    running = (1 - momentum) * running + momentum * batch_stat     (unbiased variance)
`momentum=None` makes it the cumulative average: momentum = 1 / num_batches_tracked.
Evaluation uses the running statistics. Buffers and names are PyTorch's, so its state dicts load.
"""
import numpy as np

import minicnn.functional as F

from . import init
from .module import Module, Parameter


class _BatchNorm(Module):
    _expected = ()   # allowed input ranks
    _optional_state = ("num_batches_tracked",)   # older PyTorch files lack it: kept as it is
    _shape_text = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=np.float32):
        super().__init__()
        fn = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"{fn}: num_features must be a positive int, got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"{fn}: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{fn}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = np.dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype), dtype=dtype)
            self.bias = Parameter(np.zeros(self.num_features, dtype), dtype=dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if device is not None:
            self.to(device)

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        if x.ndim not in self._expected:
            raise ValueError(f"{type(self).__name__}: expected input of shape {self._shape_text}, got {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels (axis 1), "
                             f"got input of shape {x.shape}")
        if self.training and self.track_running_stats:
            # batch statistics; F.batch_norm counts the batch in num_batches_tracked and updates
            # the running statistics in place (momentum=None: factor 1/num_batches_tracked)
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=True,
                                momentum=self.momentum, eps=self.eps, num_batches_tracked=self.num_batches_tracked)
        if self.running_mean is None:   # no running statistics: always the batch's own, as PyTorch
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) (after a Linear layer) or (N, C, L)."""
    _expected = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W): one mean and variance per channel over N*H*W values."""
    _expected = (4,)
    _shape_text = "(N, C, H, W)"


class LocalResponseNorm(Module):
    """The AlexNet paper's LRN across channels:
        b_c = a_c / (k + alpha * sum_{j in window(c)} a_j^2) ** beta
    (alpha is NOT divided by size, unlike PyTorch's LocalResponseNorm)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        self.size, self.alpha, self.beta, self.k = int(size), alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
