"""softmax, log_softmax and the losses: cross_entropy, nll_loss, mse_loss.

softmax and log_softmax work along any axis of any rank: the op moves that axis last, flattens
the rest into rows (M, C), runs the row kernel and undoes the move. The class losses take
logits/log-probabilities (N, C) with integer targets (N,), or (N, C, d1, d2, ...) with targets
(N, d1, d2, ...) as PyTorch does (then the class axis is 1 and every position is a row), or an
unbatched (C,) with a scalar target. reduction is "mean" (average over the rows), "sum" or
"none" (one loss per row, shaped like the target). cross_entropy uses the fused
softmax-cross-entropy kernel: its backward is simply (p - onehot(target)) * g.
"""
import numbers

import numpy as np

from ..kernels import lookup
from ..tensor import Function, Tensor
from .basic import as_tensor

REDUCTIONS = ("mean", "sum", "none")


# ---- helpers ------------------------------------------------------------------------------
def _float_input(name, x, what="input"):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point {what}, got dtype {x.dtype}")
    return x


def _check_axis(name, axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name}: axis must be an integer, got {axis!r}")
    n = max(ndim, 1)
    if not -n <= axis < n:
        raise ValueError(f"{name}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % n


def _to_rows(a, axis):
    """Move `axis` last and flatten the rest: (..., C) -> (M, C) (a view when axis is last)."""
    order = tuple(i for i in range(a.ndim) if i != axis) + (axis,)
    moved = lookup("elementwise", a).permute(a, order) if axis != a.ndim - 1 else a
    moved_shape = tuple(moved.shape)
    M = int(np.prod(moved_shape[:-1], dtype=np.int64))  # not -1: M or C may be 0
    return lookup("elementwise", a).contiguous(moved).reshape(M, moved_shape[-1]), moved_shape


def _from_rows(rows, moved_shape, axis):
    moved = rows.reshape(moved_shape)
    if axis == len(moved_shape) - 1:
        return moved
    order = tuple(range(axis)) + (len(moved_shape) - 1,) + tuple(range(axis, len(moved_shape) - 1))
    return lookup("elementwise", rows).permute(moved, order)


def _check_reduction(name, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_target(name, scores, target):
    """Check the targets against (N, C, d1, ...) scores; return them as int64 rows (M,).

    Errors come before any computation: non-integer targets (TypeError), a wrong rank, a
    target shape that does not match the batch, or a class index outside [0, C) (ValueError).
    """
    if isinstance(target, Tensor):
        target = target.numpy()
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class targets, got dtype {target.dtype}")
    if scores.ndim == 0:
        raise ValueError(f"{name}: expected input of shape (N, C) or (N, C, d1, ...), "
                         f"got a 0-dimensional tensor of shape {scores.shape}")
    if scores.ndim == 1:  # unbatched (C,) with a scalar target, as PyTorch
        expected = ()
        if target.shape != expected:
            raise ValueError(f"{name}: expected input of shape (N, C) or (N, C, d1, ...) with targets "
                             f"(N,) or (N, d1, ...); a 1-D input of shape {scores.shape} needs a "
                             f"scalar target, got target shape {target.shape}")
    else:
        expected = (scores.shape[0],) + scores.shape[2:]
        if target.shape != expected:
            raise ValueError(f"{name}: target shape {target.shape} does not match the input: input "
                             f"of shape {scores.shape} needs targets of shape {expected}")
    C = scores.shape[0] if scores.ndim == 1 else scores.shape[1]
    if target.size:
        bad = target[(target < 0) | (target >= C)]
        if bad.size:
            raise ValueError(f"{name}: target value {int(bad.flat[0])} is out of range for C={C} "
                             f"classes (expected 0 <= target < {C})")
    return target.astype(np.int64).reshape(-1)


def _class_rows(a):
    """Scores (N, C, d1, ...) -> rows (M, C) with the class axis last; (C,) -> (1, C)."""
    if a.ndim == 1:
        return a.reshape(1, -1), None
    return _to_rows(a, 1)


def _reduce(rows, reduction, out_shape):
    """Per-row losses (M,) -> the loss the user asked for."""
    if reduction == "none":
        return rows.reshape(out_shape)
    E = lookup("elementwise", rows)
    total = lookup("reduce", rows).sum(rows)
    if reduction == "sum":
        return total
    return E.div(total, rows.size) if rows.size else E.full((), np.nan, rows.dtype)


def _grad_rows(g, reduction, M, dtype):
    """The gradient of the reduced loss with respect to each row's loss: (M,)."""
    E = lookup("elementwise", g)
    if reduction == "none":
        return E.contiguous(g, dtype).reshape(M)
    if reduction == "mean":
        g = E.div(E.contiguous(g, dtype), max(M, 1))
    return E.broadcast_to(E.contiguous(g, dtype), (M,))


# ---- softmax and log-softmax --------------------------------------------------------------
class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        rows, ctx.moved = _to_rows(x, axis)
        ctx.axis = axis
        y = lookup("loss", x).softmax_forward(rows) if rows.size else rows.copy()
        ctx.save_for_backward(y)
        return _from_rows(y, ctx.moved, axis)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        g_rows, _ = _to_rows(g, ctx.axis)
        dx = lookup("loss", y).softmax_backward(y, g_rows) if y.size else g_rows.copy()
        return _from_rows(dx, ctx.moved, ctx.axis)


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        rows, ctx.moved = _to_rows(x, axis)
        ctx.axis = axis
        y = lookup("loss", x).log_softmax_forward(rows) if rows.size else rows.copy()
        ctx.save_for_backward(y)
        return _from_rows(y, ctx.moved, axis)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        g_rows, _ = _to_rows(g, ctx.axis)
        dx = lookup("loss", y).log_softmax_backward(y, g_rows) if y.size else g_rows.copy()
        return _from_rows(dx, ctx.moved, ctx.axis)


def _softmax_input(name, x, axis):
    x = _float_input(name, x)
    axis = _check_axis(name, axis, x.ndim)
    if x.ndim == 0:  # a single number: softmax 1, log_softmax 0, as PyTorch
        x = x.reshape(1)
        return x, axis, True
    return x, axis, False


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, computed stably (the row maximum is subtracted)."""
    x, axis, scalar = _softmax_input("softmax", x, axis)
    out = Softmax.apply(x, axis=axis)
    return out.reshape(()) if scalar else out


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, computed stably."""
    x, axis, scalar = _softmax_input("log_softmax", x, axis)
    out = LogSoftmax.apply(x, axis=axis)
    return out.reshape(()) if scalar else out


# ---- cross-entropy and negative log-likelihood ---------------------------------------------
class CrossEntropy(Function):
    """Fused log_softmax + nll over the class axis; target and reduction are parameters."""

    @staticmethod
    def forward(ctx, logits, target, reduction, out_shape):
        rows, _ = _class_rows(logits)
        loss_rows, probs = lookup("loss", logits).softmax_cross_entropy_forward(rows, target)
        ctx.save_for_backward(probs, target)
        ctx.shape, ctx.reduction = logits.shape, reduction
        return _reduce(loss_rows, reduction, out_shape)

    @staticmethod
    def backward(ctx, g):
        probs, target = ctx.saved
        grad_rows = _grad_rows(g, ctx.reduction, probs.shape[0], probs.dtype)
        dx = lookup("loss", probs).softmax_cross_entropy_backward(probs, target, grad_rows)
        if len(ctx.shape) == 1:
            return dx.reshape(ctx.shape)
        moved = (ctx.shape[0],) + ctx.shape[2:] + (ctx.shape[1],)
        return _from_rows(dx, moved, 1)


class NLLLoss(Function):
    @staticmethod
    def forward(ctx, log_probs, target, reduction, out_shape):
        rows, _ = _class_rows(log_probs)
        loss_rows = lookup("loss", log_probs).nll_forward(rows, target)
        ctx.save_for_backward(target)
        ctx.shape, ctx.reduction, ctx.dtype = log_probs.shape, reduction, log_probs.dtype
        return _reduce(loss_rows, reduction, out_shape)

    @staticmethod
    def backward(ctx, g):
        (target,) = ctx.saved
        shape = ctx.shape
        C = shape[0] if len(shape) == 1 else shape[1]
        grad_rows = _grad_rows(g, ctx.reduction, target.shape[0], ctx.dtype)
        dlog = lookup("loss", grad_rows).nll_backward(grad_rows, target, C)
        if len(shape) == 1:
            return dlog.reshape(shape)
        return _from_rows(dlog, (shape[0],) + shape[2:] + (shape[1],), 1)


def _class_loss(name, fn, scores, target, reduction):
    scores = _float_input(name, scores)
    _check_reduction(name, reduction)
    rows_target = _class_target(name, scores, target)
    C = scores.shape[0] if scores.ndim == 1 else scores.shape[1]
    if C == 0:
        raise ValueError(f"{name}: input of shape {scores.shape} has no classes (C=0)")
    out_shape = () if scores.ndim == 1 else (scores.shape[0],) + scores.shape[2:]
    return fn.apply(scores, target=rows_target, reduction=reduction, out_shape=out_shape)


def cross_entropy(logits, target, reduction="mean"):
    """-log softmax(logits)[target], from raw logits (N, C) and integer targets (N,).

    Also (N, C, d1, ...) logits with (N, d1, ...) targets, and (C,) with a scalar target.
    """
    return _class_loss("cross_entropy", CrossEntropy, logits, target, reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """-log_probs[target]: cross_entropy for inputs that are already log-probabilities."""
    return _class_loss("nll_loss", NLLLoss, log_probs, target, reduction)


# ---- mean squared error -------------------------------------------------------------------
class MSELoss(Function):
    @staticmethod
    def forward(ctx, a, b, reduction):
        ctx.save_for_backward(a, b)
        ctx.reduction = reduction
        sq = lookup("loss", a).mse_forward(a, b)
        if reduction == "none":
            return sq
        return _reduce(sq.reshape(-1), reduction, ())

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        E = lookup("elementwise", a)
        if ctx.reduction == "none":
            g_full = g
        else:
            g1 = E.contiguous(g, a.dtype)
            g_full = E.broadcast_to(E.div(g1, max(a.size, 1)) if ctx.reduction == "mean" else g1, a.shape)
        da = lookup("loss", a).mse_backward(a, b, g_full)
        return (da if ctx.needs_input_grad[0] else None,
                E.neg(da) if ctx.needs_input_grad[1] else None)


def mse_loss(input, target, reduction="mean"):  # noqa: A002 (PyTorch's argument name)
    """mean((input - target)^2); shapes must match exactly (no silent broadcasting)."""
    _check_reduction("mse_loss", reduction)
    like = input if isinstance(input, Tensor) else (target if isinstance(target, Tensor) else None)
    a, b = as_tensor(input, like), as_tensor(target, like)
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        raise TypeError(f"mse_loss: expected floating-point input and target, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"mse_loss: input shape {a.shape} and target shape {b.shape} must match "
                         f"exactly (no broadcasting)")
    return MSELoss.apply(a, b, reduction=reduction)
