"""Normalisation layers as functions: local response normalisation and batch norm.

Conventions (each one documented here once and tested in tests/test_norm.py):

* LRN follows the AlexNet paper: `b_c = a_c / (k + alpha * sum_j a_j^2) ** beta` over the window
  of channels `c - size//2 ... c + (size-1)//2` clipped to `[0, C-1]`. `alpha` is NOT divided by
  `size`. PyTorch's `local_response_norm` divides it (it averages the squares), so
  `F.local_response_norm(x, size, alpha, beta, k)` here equals PyTorch's with `alpha * size`.
* Batch norm normalises PER CHANNEL, over the batch and every position (N, H, W), not per
  activation. Training normalises with the batch mean and the BIASED variance, and updates the
  running statistics in place with the UNBIASED one (PyTorch's convention):
      running = (1 - factor) * running + factor * batch_statistic
  where factor = momentum, or 1 / num_batches_tracked when momentum is None (a cumulative
  average). Eval normalises with the running statistics, which are then constants.

The hot loops are in minicnn.kernels (family "norm"); the ops reshape any (N, C, ...) input to
(N, C, S) for them.
"""
import numpy as np

from ..device import array_device, to_device
from ..kernels import lookup
from ..tensor import Function, Tensor
from .basic import as_tensor


def _as_ncs(name, x):
    """(N, C, ...) -> a contiguous (N, C, S) array, S = the product of the trailing sizes."""
    if x.ndim < 2:
        raise ValueError(f"{name}: expected input of shape (N, C), (N, C, L) or (N, C, H, W), "
                         f"got {tuple(x.shape)}")
    return lookup("elementwise", x).contiguous(x.reshape(x.shape[0], x.shape[1], -1))


def _check_float(name, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")


# ---- local response normalisation ----------------------------------------------------------
class LocalResponseNorm(Function):
    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        x3 = _as_ncs("local_response_norm", x)
        K = lookup("norm", x3)
        out, scale = K.lrn_forward(x3, size, alpha, beta, k)
        ctx.save_for_backward(x3, out, scale)  # the scale s_c is what backward needs
        ctx.params, ctx.shape = (size, alpha, beta, k), x.shape
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_out):
        x3, out, scale = ctx.saved
        g3 = lookup("elementwise", grad_out).contiguous(grad_out.reshape(x3.shape))
        dx = lookup("norm", x3).lrn_backward(x3, out, scale, g3, *ctx.params)
        return dx.reshape(ctx.shape)


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """AlexNet's local response normalisation across channels of x (N, C, ...).

        b_c = a_c / (k + alpha * sum_{j=max(0, c-size//2)}^{min(C-1, c+(size-1)//2)} a_j^2) ** beta

    The window holds `size` channels (fewer at the edges); for odd `size` it is the paper's
    centred window, for even `size` it reaches one channel further down than up (PyTorch's).
    `alpha` is used as given: PyTorch's `local_response_norm` divides it by `size`, so this
    function with `alpha` equals PyTorch's with `alpha * size`. Works on (N, C), (N, C, L) and
    (N, C, H, W).
    """
    x = as_tensor(x)
    _check_float("local_response_norm", x)
    if x.ndim < 2:
        raise ValueError(f"local_response_norm: expected input of shape (N, C), (N, C, L) or "
                         f"(N, C, H, W), got {x.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: expected size to be a positive integer, got {size!r}")
    return LocalResponseNorm.apply(x, size=int(size), alpha=float(alpha), beta=float(beta), k=float(k))


# ---- batch norm ----------------------------------------------------------------------------
class BatchNorm(Function):
    """y = (x - mean) * invstd * weight + bias, per channel.

    training=True: mean and invstd are the batch's own (backward differentiates through them);
    the running statistics, if given, are updated in place with the factor the caller computed.
    training=False: mean and invstd come from the running statistics and are constants.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, factor, eps):
        x3 = _as_ncs("batch_norm", x)
        C = x3.shape[1]
        E, K = lookup("elementwise", x3), lookup("norm", x3)
        w = E.full((C,), 1, x.dtype) if weight is None else E.contiguous(weight)
        b = E.zeros((C,), x.dtype) if bias is None else E.contiguous(bias)
        if training:
            y, mean, var, invstd = K.batch_norm_train_forward(x3, w, b, eps)
            if running_mean is not None:  # in place, where the statistics live (x's device)
                M = x3.shape[0] * x3.shape[2]
                K.batch_norm_update_running(_raw(running_mean), _raw(running_var), mean, var, factor, M)
        else:
            device = array_device(x3)     # constants here: host statistics may be copied over
            mean = E.contiguous(to_device(_raw(running_mean), device), x.dtype)
            invstd = K.batch_norm_invstd(to_device(_raw(running_var), device), eps, x.dtype)
            y = K.batch_norm_forward(x3, mean, invstd, w, b)
        ctx.save_for_backward(x3, mean, invstd, w)
        ctx.training, ctx.shape = training, x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_out):
        x3, mean, invstd, w = ctx.saved
        g3 = lookup("elementwise", grad_out).contiguous(grad_out.reshape(x3.shape))
        K = lookup("norm", x3)
        step = K.batch_norm_backward if ctx.training else K.batch_norm_backward_eval
        dx, dweight, dbias = step(g3, x3, mean, invstd, w)
        need_x, need_w, need_b = ctx.needs_input_grad
        return (dx.reshape(ctx.shape) if need_x else None,
                dweight if need_w else None,
                dbias if need_b else None)


def running_average_factor(momentum, num_batches_tracked=None):
    """The weight of the new batch in the running statistics, as PyTorch's BatchNorm computes it.

    `momentum` (a float) is used as is. `momentum=None` means a cumulative average: the factor is
    1 / num_batches_tracked, the number of batches seen INCLUDING the current one, so the running
    statistic is the plain mean of every batch's statistic so far.
    """
    if momentum is not None:
        return float(momentum)
    if num_batches_tracked is None:
        raise ValueError("batch_norm: momentum=None (a cumulative average) needs num_batches_tracked, "
                         "the counter of batches seen so far; got None")
    count = int(to_device(_raw(num_batches_tracked), "cpu"))  # one number (from the GPU: a sync)
    if count < 1:
        raise ValueError(f"batch_norm: momentum=None needs num_batches_tracked >= 1 after counting "
                         f"the current batch, got {count}")
    return 1.0 / count


def _raw(v):
    return v.data if isinstance(v, Tensor) else v


def _check_channels(name, v, C):
    if v is not None and tuple(np.shape(_raw(v))) != (C,):
        raise ValueError(f"batch_norm: expected {name} of shape ({C},) for an input with {C} "
                         f"channels, got {tuple(np.shape(_raw(v)))}")


def _is_array(v):
    return isinstance(v, np.ndarray) or array_device(v) == "cuda"


def _check_in_place(running_mean, running_var, num_batches_tracked, device):
    """What training updates in place must be arrays (or Tensors holding them) on x's device."""
    for v in (running_mean, running_var):
        if not _is_array(_raw(v)):
            raise TypeError(f"batch_norm: running statistics must be numpy arrays or Tensors (updated "
                            f"in place), got {type(v).__name__}")
    counter = _raw(num_batches_tracked)
    if num_batches_tracked is not None and (not _is_array(counter) or counter.dtype.kind not in "iuf"):
        raise TypeError(f"batch_norm: num_batches_tracked must be a numeric array or Tensor that can "
                        f"be incremented in place, got {type(num_batches_tracked).__name__}")
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("num_batches_tracked", num_batches_tracked)):
        if v is not None and array_device(_raw(v)) != device:
            raise RuntimeError(f"batch_norm: {name} is on {array_device(_raw(v))}, the input on {device}; "
                               f"they are updated in place, so move them with .to('{device}')")


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, num_batches_tracked=None):
    """Batch normalisation of x (N, C), (N, C, L) or (N, C, H, W), per channel (PyTorch's).

    training=True: normalise with the batch mean and biased variance over (N, H, W); if
    running_mean/running_var are given (Tensors or arrays of shape (C,)), update them IN PLACE:
        running_mean = (1 - f) * running_mean + f * batch_mean
        running_var  = (1 - f) * running_var  + f * batch_var * M / (M - 1)   (unbiased)
    with f = running_average_factor(momentum, num_batches_tracked), M = N*H*W values per channel.
    `num_batches_tracked` (optional, a 0-d integer array or Tensor: BatchNorm's buffer of that
    name) is incremented in place by one first; momentum=None needs it.
    running_mean/var may be None in training (then nothing is updated).

    training=False: normalise with running_mean and running_var (required), as constants.

    weight and bias (C,) are optional Tensors and get gradients; running statistics keep their
    own dtype, the output has x's.
    """
    x = as_tensor(x)
    _check_float("batch_norm", x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C), (N, C, L) or (N, C, H, W), "
                         f"got {x.shape}")
    C = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channels(name, v, C)
    M = x.size // C if C else 0
    if training and M <= 1:
        raise ValueError(f"batch_norm: Expected more than 1 value per channel when training, "
                         f"got input of shape {x.shape}")
    if training and running_mean is not None:
        _check_in_place(running_mean, running_var, num_batches_tracked, x.device)
        if momentum is None and num_batches_tracked is None:
            running_average_factor(momentum, num_batches_tracked)  # raises: says what is missing
    if eps < 0:
        raise ValueError(f"batch_norm: expected eps >= 0, got {eps}")
    weight = None if weight is None else as_tensor(weight, like=x)
    bias = None if bias is None else as_tensor(bias, like=x)

    factor = None
    if training and running_mean is not None:
        if num_batches_tracked is not None:
            counter = _raw(num_batches_tracked)
            lookup("elementwise", counter).add(counter, 1, out=counter)  # += 1 in place, on its device
        factor = running_average_factor(momentum, num_batches_tracked)
    # running statistics are keyword parameters, not inputs: they get no gradient and may keep
    # their own dtype
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=bool(training), factor=factor, eps=float(eps))
