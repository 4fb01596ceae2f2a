"""The Tensor operators: arithmetic with NumPy broadcasting, reductions, shape ops, indexing.

Each is a Function with its backward next to its forward. Broadcasting is undone in one place,
`unbroadcast`. Python scalars and plain arrays take the tensor's float dtype; two float tensors
of different dtypes raise TypeError in `Function.apply` (no silent upcast).
"""
import builtins

import numpy as np

from ..device import to_device
from ..kernels import lookup
from ..tensor import Function, Tensor, unbroadcast


def _E(a):
    """The elementwise kernels where `a` lives (NumPy on the CPU, kernels/cuda on the GPU)."""
    return lookup("elementwise", a)


def as_tensor(value, like=None):
    """A Tensor for an operand: Tensors pass through; scalars and arrays take `like`'s float dtype."""
    if isinstance(value, Tensor):
        return value
    arr = np.asarray(value)
    if like is not None and like.dtype.kind == "f" and arr.dtype.kind in "biuf":
        t = Tensor(arr, dtype=like.dtype)
    else:
        t = Tensor(arr)
    if like is not None and like.device != "cpu":  # a number meeting a GPU tensor goes there too
        t = Tensor(to_device(t.data, like.device))
    return t


def _operands(a, b):
    like = a if isinstance(a, Tensor) else b
    a, b = as_tensor(a, like), as_tensor(b, like)
    # an integer or bool tensor meeting a float tensor is cast to the float's dtype
    if a.dtype.kind == "f" and b.dtype.kind in "biu":
        b = Tensor(b.data, dtype=a.dtype)
    elif b.dtype.kind == "f" and a.dtype.kind in "biu":
        a = Tensor(a.data, dtype=b.dtype)
    return a, b


# ---- arithmetic ---------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return _E(a).add(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return _E(a).sub(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(_E(g).neg(g), sb)


class Mul(Function):
    """out = a * b;  d/da = g * b,  d/db = g * a: each operand is kept only for the other's
    gradient (x * 3 keeps the 3, not x)."""

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.shapes = a.shape, b.shape
        return _E(a).mul(a, b)

    @staticmethod
    def backward(ctx, g):
        (a, b), (sa, sb), E = ctx.saved, ctx.shapes, _E(g)
        return (None if b is None else unbroadcast(E.mul(g, b), sa),
                None if a is None else unbroadcast(E.mul(g, a), sb))


class Div(Function):
    """out = a / b;  d/da = g / b,  d/db = -g * a / b^2 (a kept only for b's gradient)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        ctx.shapes = a.shape, b.shape
        return _E(a).div(a, b)

    @staticmethod
    def backward(ctx, g):
        (a, b), (sa, sb), E = ctx.saved, ctx.shapes, _E(g)
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(E.div(g, b), sa) if need_a else None,
                unbroadcast(E.div(E.mul(E.neg(g), a), E.mul(b, b)), sb) if need_b else None)


class Pow(Function):
    """out = a ** b;  d/da = b * a**(b-1),  d/db = out * log(a) (0 where a == 0 and b >= 0)."""

    @staticmethod
    def forward(ctx, a, b):
        out = _E(a).pow(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved
        E = _E(g)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(E.mul(E.mul(g, b), E.pow(a, E.sub(b, 1))), a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(E.mul(E.mul(g, out), E.safe_log(a)), b.shape)
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return _E(a).neg(a)

    @staticmethod
    def backward(ctx, g):
        return _E(g).neg(g)


class MatMul(Function):
    """a @ b with NumPy's rules: 1-D operands are promoted, batch dimensions broadcast."""

    @staticmethod
    def forward(ctx, a, b):
        _check_matmul(tuple(a.shape), tuple(b.shape))
        ctx.save_for_backward(a, b)
        a2 = a.reshape((1,) + tuple(a.shape)) if a.ndim == 1 else a    # (K,) -> (1, K)
        b2 = b.reshape(tuple(b.shape) + (1,)) if b.ndim == 1 else b    # (K,) -> (K, 1)
        out = lookup("gemm", a).matmul(a2, b2)
        return out.reshape(_matmul_shape(a.shape, b.shape, out.shape))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        a2 = a.reshape((1,) + tuple(a.shape)) if a.ndim == 1 else a    # (K,) -> (1, K)
        b2 = b.reshape(tuple(b.shape) + (1,)) if b.ndim == 1 else b    # (K,) -> (K, 1)
        sa, sb = tuple(a2.shape), tuple(b2.shape)
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        g2 = g.reshape(batch + (sa[-2], sb[-1]))  # give back the promoted axes
        G = lookup("gemm", g)
        ga = G.matmul(g2, b2, trans_b=True)       # g @ b^T, b read transposed: no copy
        gb = G.matmul(a2, g2, trans_a=True)       # a^T @ g
        ga = unbroadcast(ga, sa).reshape(a.shape)
        gb = unbroadcast(gb, sb).reshape(b.shape)
        return ga, gb


def _matmul_shape(a_shape, b_shape, out_shape):
    """np.matmul's result shape: the axes added for 1-D operands are removed again."""
    shape = tuple(out_shape)
    if len(b_shape) == 1:
        shape = shape[:-1]
    if len(a_shape) == 1:
        shape = shape[:-2] + shape[-1:] if len(b_shape) > 1 else shape[:-1]
    return shape


def _check_matmul(sa, sb):
    """A ValueError naming both shapes, and a right operand that would fit, when a @ b is undefined
    (NumPy's own text speaks of gufunc signatures and core dimensions)."""
    if not sa or not sb:
        raise ValueError(f"matmul: {sa} @ {sb}: both operands need at least one dimension")
    k_left, k_right = sa[-1], sb[-2] if len(sb) > 1 else sb[0]
    if k_left != k_right:
        which = "second-to-last" if len(sb) > 1 else "only"
        fits = sb[:-2] + (k_left, sb[-1]) if len(sb) > 1 else (k_left,)
        raise ValueError(f"matmul: {sa} @ {sb}: the left operand's last axis ({k_left}) must equal "
                         f"the right operand's {which} axis ({k_right}); a right operand of shape "
                         f"{fits} would fit")
    problem = _broadcast_problem(sa[:-2], sb[:-2])
    if problem:
        raise ValueError(f"matmul: {sa} @ {sb}: the batch axes {sa[:-2]} and {sb[:-2]} do not "
                         f"broadcast ({problem})")


def _broadcast_problem(sa, sb):
    """None when shapes `sa` and `sb` broadcast, else which axis conflicts, in words."""
    for axis in range(1, min(len(sa), len(sb)) + 1):
        m, n = sa[-axis], sb[-axis]
        if m != n and m != 1 and n != 1:
            return (f"aligned from the right, each axis must be equal or 1; axis {-axis} is "
                    f"{m} vs {n}")
    return None


def _binary(fn, symbol, a, b):
    """fn applied to the operands; a shape error names both shapes and the axis in conflict."""
    a, b = _operands(a, b)
    try:
        return fn(a, b)
    except ValueError:
        problem = _broadcast_problem(a.shape, b.shape)
        if problem is None:
            raise
    raise ValueError(f"{a.shape} {symbol} {b.shape}: the shapes do not broadcast: {problem}")


def add(a, b): return _binary(Add.apply, "+", a, b)
def sub(a, b): return _binary(Sub.apply, "-", a, b)
def mul(a, b): return _binary(Mul.apply, "*", a, b)
def div(a, b): return _binary(Div.apply, "/", a, b)
def pow(a, b): return _binary(Pow.apply, "**", a, b)  # noqa: A001 (mirrors the operator name)
def matmul(a, b): return MatMul.apply(*_operands(a, b))
def neg(a): return Neg.apply(a)


def compare(op, a, b):
    """A bool tensor; comparisons have no gradient. `op` is NumPy's ufunc (np.less, ...): its name
    picks the comparison in the elementwise kernels, so it runs where the data lives."""
    def run(a, b):
        return Tensor(_E(a.data).compare(a.data, b.data, op.__name__))
    return _binary(run, _COMPARE_SYMBOLS.get(op.__name__, op.__name__), a, b)


_COMPARE_SYMBOLS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
                    "equal": "==", "not_equal": "!="}


# ---- elementwise functions --------------------------------------------------------------
class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = _E(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return _E(g).mul(g, out)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _E(a).log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return _E(g).div(g, a)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = _E(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        E = _E(g)
        return E.div(g, E.mul(out, 2))


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _E(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        E = _E(g)
        return E.mul(g, E.sign(a))


def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def abs(x): return Abs.apply(x)  # noqa: A001


# ---- reductions ---------------------------------------------------------------------------
def _axes(axis, ndim):
    """Normalise `axis` (None, int or tuple) to a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % builtins.max(ndim, 1))
    return tuple(sorted(out))


def _keep(g, shape, axes):
    """Give a reduced gradient back its reduced axes (size 1) so it broadcasts over the input."""
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        return lookup("reduce", a).sum(a, ctx.axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        return _E(g).broadcast_to(_keep(g, ctx.shape, ctx.axes), ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        ctx.count = int(np.prod([a.shape[i] for i in ctx.axes], dtype=np.int64))
        if ctx.count == 0:  # NumPy's answer (nan, with its warning) for an empty mean
            return np.asarray(a.mean(axis=ctx.axes, keepdims=keepdims), dtype=a.dtype)
        return _E(a).div(lookup("reduce", a).sum(a, ctx.axes, keepdims), ctx.count)

    @staticmethod
    def backward(ctx, g):
        E = _E(g)
        return E.broadcast_to(E.div(_keep(g, ctx.shape, ctx.axes), ctx.count), ctx.shape)


class Max(Function):
    """The gradient goes to the maximum; tied maxima share it equally (as torch.amax)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims = _axes(axis, a.ndim), keepdims
        if a.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {a.shape}")
        out = lookup("reduce", a).max(a, ctx.axes, keepdims=True)
        ctx.save_for_backward(a, out)
        kept = tuple(n for i, n in enumerate(a.shape) if i not in ctx.axes)
        return out if keepdims else out.reshape(kept)

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved
        E = _E(g)
        winners = E.equal(a, out)                 # 1.0 at every maximum, 0.0 elsewhere
        counts = lookup("reduce", g).sum(winners, ctx.axes, keepdims=True)
        return E.mul(winners, E.div(_keep(g, a.shape, ctx.axes), counts))


def sum(x, axis=None, keepdims=False): return Sum.apply(x, axis=axis, keepdims=keepdims)  # noqa: A001
def mean(x, axis=None, keepdims=False): return Mean.apply(x, axis=axis, keepdims=keepdims)
def max(x, axis=None, keepdims=False): return Max.apply(x, axis=axis, keepdims=keepdims)  # noqa: A001


# ---- shape ops ----------------------------------------------------------------------------
def _shape_args(args):
    """Accept both f(2, 3) and f((2, 3))."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Transpose(Function):
    @staticmethod
    def forward(ctx, a, axes):
        axes = tuple(reversed(range(a.ndim))) if not axes else tuple(int(x) % builtins.max(a.ndim, 1) for x in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} dimensions")
        ctx.inverse = tuple(int(i) for i in np.argsort(axes))
        return _E(a).permute(a, axes)

    @staticmethod
    def backward(ctx, g):
        return _E(g).permute(g, ctx.inverse)


def reshape(x, *shape): return Reshape.apply(x, shape=_shape_args(shape))
def transpose(x, *axes): return Transpose.apply(x, axes=_shape_args(axes))


class GetItem(Function):
    """t[idx] for basic slicing and integer-array indexing, as a gather through flat offsets.

    The index is turned into `src` (the flat offset in a of every result element) on the host:
    geometry only, so the data stays where it is. The backward scatters g back through src: a
    plain scatter for basic slicing (no offset repeats), a scatter-add for integer arrays, so
    that an index repeated twice receives the gradient twice."""

    @staticmethod
    def forward(ctx, a, idx):
        ctx.src, ctx.shape, ctx.size = _source_offsets(a.shape, idx), a.shape, a.size
        ctx.repeats = _has_arrays(idx)  # only integer arrays can name an element twice
        return lookup("index", a).take(a, ctx.src)

    @staticmethod
    def backward(ctx, g):
        K = lookup("index", g)
        grad = (K.scatter_add if ctx.repeats else K.scatter)(g, ctx.src, ctx.size)
        return grad.reshape(ctx.shape)


def _source_offsets(shape, idx):
    """int64 array of x[idx]'s shape: the flat (C-order) offset in x of each result element.
    Each axis' coordinate grid (broadcast, no memory) is indexed exactly as x would be, so
    NumPy's own rules decide the result's shape; the offset is sum_k coord_k * stride_k."""
    shape = tuple(int(n) for n in shape)
    src = np.broadcast_to(np.int64(0), shape)[idx]   # the result's shape; raises as x[idx] would
    stride = 1
    for k in range(len(shape) - 1, -1, -1):
        coord = np.arange(shape[k], dtype=np.int64).reshape([-1 if i == k else 1 for i in range(len(shape))])
        src = src + np.broadcast_to(coord, shape)[idx] * stride
        stride *= shape[k]
    return np.array(src, dtype=np.int64, order="C")  # (ascontiguousarray would make a 0-d src 1-d)


def _has_arrays(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(p, np.ndarray) for p in parts)


def _plain_index(idx):
    """Tensors and lists become arrays; a boolean mask becomes its integer coordinates, which
    np.add.at in the backward understands (it would read a bool array as indices 0 and 1)."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for part in parts:
        if isinstance(part, Tensor):
            part = part.numpy()
        if isinstance(part, list):
            part = np.asarray(part)
        if isinstance(part, np.ndarray) and part.dtype == np.bool_:
            out.extend(np.nonzero(part))
        else:
            out.append(part)
    return tuple(out) if isinstance(idx, tuple) or len(out) != 1 else out[0]


def getitem(x, idx): return GetItem.apply(x, idx=_plain_index(idx))


class AsType(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return _E(a).contiguous(a, dtype)  # a cast copy, made where a lives

    @staticmethod
    def backward(ctx, g):
        return _E(g).contiguous(g, ctx.dtype)


def astype(x, dtype):
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind != "f" or x.dtype.kind != "f":
        return Tensor(_E(x.data).contiguous(x.data, dtype), dtype=dtype)
    return AsType.apply(x, dtype=dtype)


class To(Function):
    """Copy to another device; differentiable: the gradient is copied back."""

    @staticmethod
    def forward(ctx, a, device):
        from ..device import array_device
        ctx.source = array_device(a)
        return to_device(a, device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.source)


def to(x, device):
    from ..device import check_device
    if check_device(device) == x.device:
        return x
    return To.apply(x, device=device)
