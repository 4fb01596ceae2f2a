"""The autograd core: Tensor, Function and the backward walk over the graph.

Define-by-run: every op is a `Function` whose `apply` runs `forward` on raw arrays and, when a
gradient is wanted, records a `Context` node that remembers where its inputs came from.
`Tensor.backward` sorts those nodes in reverse topological order and calls each node's
hand-written `backward` once, after every consumer of its outputs has added its share of the
gradient. A node then drops the arrays its forward kept for it, so the activations go as the
walk passes them (as in PyTorch: a second backward through such a node needs retain_graph=True).

Everything op-specific (add, conv2d, ...) lives in `minicnn.functional`; this file only knows
how to build and walk the graph.
"""
import types

import numpy as np

from . import _grad_mode
from .device import array_device, to_device
from .kernels import lookup

DEFAULT_FLOAT = np.float32


def _as_array(data, dtype):
    """The array a Tensor holds: floats default to float32, integers and bools stay as they are."""
    if dtype is not None:
        return np.asarray(data, dtype=np.dtype(dtype))
    arr = np.asarray(data)
    if arr.dtype.kind == "f" or arr.dtype == object:
        return arr.astype(DEFAULT_FLOAT, copy=False)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: cannot hold data of dtype {arr.dtype}")
    return arr


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    `Tensor(data, requires_grad=False, dtype=None)`: Python floats and float arrays become
    float32 unless `dtype` says otherwise; integer and bool data keep their dtype.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if array_device(data) == "cpu":
            data = _as_array(data, dtype)
        self.data = data
        self.grad = None
        self._node = None     # the Context that produced this tensor (None for a leaf)
        self._index = 0       # which output of that node this tensor is
        self._retain = False  # keep .grad on a non-leaf (see retain_grad)
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    # ---- plain properties -------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: np.dtype(self.data.dtype))
    size = property(lambda self: int(self.data.size))
    device = property(lambda self: array_device(self.data))
    is_leaf = property(lambda self: self._node is None)

    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep `.grad` on this intermediate tensor too (leaves always keep theirs)."""
        if self._node is not None and not self._retain:
            self._node.retained.append((self._index, self))
        self._retain = True
        return self

    def numpy(self):
        """A NumPy copy of the data, fetched from the GPU when needed."""
        return np.array(to_device(self.data, "cpu"), copy=True)

    def item(self):
        if self.size != 1:
            raise ValueError(f"Tensor.item: only one-element tensors convert to a number, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data, dtype=self.dtype)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        return f"Tensor({np.array2string(self.numpy(), precision=4, separator=', ')}, dtype={self.dtype}{dev}{grad})"

    # ---- backward ---------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Add d(self)/d(leaf) * grad into `.grad` of every leaf that requires grad. Each node's
        saved arrays are freed once its backward has run, unless retain_graph (PyTorch's rule)."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward: grad can be omitted only for a one-element tensor, "
                                   f"this one has shape {self.shape}")
            grad = lookup("elementwise", self.device).full(self.shape, 1, self.dtype)
        grad = grad.data if isinstance(grad, Tensor) else grad
        if array_device(grad) == "cpu":
            grad = to_device(np.asarray(grad, dtype=self.dtype), self.device)
        if tuple(grad.shape) != self.shape:
            raise ValueError(f"backward: grad has shape {tuple(grad.shape)}, the tensor has shape {self.shape}")
        if self._node is None:
            self._accumulate(grad)
            return
        grads = {(id(self._node), self._index): grad}
        handed = {}  # buffers a leaf must not keep as its own: the caller's, and those given out
        _hand(grad, handed)
        for node in reversed(_topological_order(self._node)):
            outs = [grads.pop((id(node), i), None) for i in range(len(node.out_meta))]
            ran = node.run_backward(outs, grads, handed)
            if ran and not retain_graph:
                node.free()

    def _accumulate(self, grad, owned=False):
        """Add into .grad; a fresh array that nothing else holds (`owned`) is kept without a copy."""
        E = lookup("elementwise", grad)  # the same line on the CPU and on the GPU
        if self.grad is None:
            self.grad = grad if owned else E.copy(grad)
        else:
            self.grad = E.add(self.grad, grad)

    # ---- operators: each is a Function in minicnn/functional/basic.py -------------------
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pos__(self): return self
    def __getitem__(self, idx): return _ops.getitem(self, idx)
    # comparisons give bool tensors and carry no gradient
    def __lt__(self, other): return _ops.compare(np.less, self, other)
    def __le__(self, other): return _ops.compare(np.less_equal, self, other)
    def __gt__(self, other): return _ops.compare(np.greater, self, other)
    def __ge__(self, other): return _ops.compare(np.greater_equal, self, other)
    def __eq__(self, other): return _ops.compare(np.equal, self, other)
    def __ne__(self, other): return _ops.compare(np.not_equal, self, other)
    __hash__ = object.__hash__  # tensors are used as dict keys (optimiser state)

    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return -_ops.max(-self, axis, keepdims)
    def argmax(self, axis=None): return Tensor(np.argmax(self.numpy(), axis=axis))
    def reshape(self, *shape): return _ops.reshape(self, *shape)
    def transpose(self, *axes): return _ops.transpose(self, *axes)
    T = property(lambda self: _ops.transpose(self))
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def abs(self): return _ops.abs(self)
    def astype(self, dtype): return _ops.astype(self, dtype)
    def float(self): return _ops.astype(self, np.float32)
    def double(self): return _ops.astype(self, np.float64)
    def to(self, device): return _ops.to(self, device)


def _topological_order(root):
    """Nodes so that each one comes after every node that produced one of its inputs."""
    order, seen, stack = [], {id(root)}, [(root, False)]
    while stack:  # iterative depth-first search: deep nets would overflow Python's recursion
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t._node is not None and id(t._node) not in seen:
                seen.add(id(t._node))
                stack.append((t._node, False))
    return order


class Context:
    """One recorded op: what backward needs (saved arrays, any attributes) plus the graph edges."""

    def __init__(self, fn):
        self.fn = fn
        self.saved = ()
        self.inputs = []           # one per positional input: a leaf Tensor, an Output, or None
        self.out_meta = []         # (shape, dtype) of each output, to make zero grads
        self.retained = []         # outputs that asked for retain_grad, by index
        self.needs_input_grad = ()
        self.device = "cpu"        # where the outputs (and so their gradients) live
        self.freed = False         # its saved arrays were dropped after its backward ran

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def free(self):
        """Drop every float array the forward kept (in ctx.saved, in any attribute, in a kernel's
        saved namespace), keeping the graph and the rest (shapes, flags, index arrays, a
        kernel's plan): the memory of the activations."""
        for name, value in list(vars(self).items()):
            if name in _GRAPH_FIELDS:
                continue
            kernel_state = isinstance(value, types.SimpleNamespace)
            owner, fields = (value, vars(value)) if kernel_state else (self, {name: value})
            for field, v in list(fields.items()):
                if _holds_arrays(v):
                    setattr(owner, field, None)
                    self.freed = True

    def run_backward(self, out_grads, grads, handed):
        """Run this node's backward and hand the input gradients on. -> False when there was
        nothing to do (no gradient reached any output)."""
        for i, out in self.retained:
            if out_grads[i] is not None:
                out._accumulate(out_grads[i])
        if all(g is None for g in out_grads):
            return False
        if self.freed:
            raise RuntimeError(f"{self.fn.__name__}.backward: a backward already ran through this graph and "
                               f"freed the arrays its ops saved; run the forward again, or pass "
                               f"retain_graph=True to the first backward (as in PyTorch)")
        E = lookup("elementwise", self.device)
        out_grads = [E.zeros(s, d) if g is None else g for g, (s, d) in zip(out_grads, self.out_meta)]
        in_grads = self.fn.backward(self, *out_grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) != len(self.inputs):
            raise RuntimeError(f"{self.fn.__name__}.backward returned {len(in_grads)} gradients "
                               f"for {len(self.inputs)} inputs")
        for t, g in zip(self.inputs, in_grads):
            if t is None or g is None:
                continue
            if tuple(g.shape) != t.shape:
                raise RuntimeError(f"{self.fn.__name__}.backward: gradient of shape {tuple(g.shape)} "
                                   f"for an input of shape {t.shape}")
            if t._node is None:
                # a fresh buffer is kept; a view of another array, or one already given out, is copied
                t._accumulate(g, _fresh(g) and _buffer(g) not in handed)
                _hand(g, handed)
            else:
                key = (id(t._node), t._index)
                grads[key] = g if key not in grads else lookup("elementwise", g).add(grads[key], g)
        return True


_GRAPH_FIELDS = ("fn", "inputs", "out_meta", "retained", "needs_input_grad", "device", "freed")


def _holds_arrays(value):
    """Whether a saved value holds a floating-point array of one element or more (NumPy's or a
    device's, or a tuple or list holding one): the activations and their like, what
    Context.free drops. Integer arrays (pooling's argmax, indexing's offsets: a fraction of the
    memory) and 0-d arrays (a Python number an op turned into a tensor) are kept, as PyTorch
    keeps scalars."""
    if isinstance(value, (tuple, list)):
        return any(_holds_arrays(v) for v in value)
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    return isinstance(shape, tuple) and len(shape) > 0 and getattr(dtype, "kind", None) in ("f", "c")


class Output:
    """How a node remembers an input that another node computed: which node, which of its
    outputs, and its shape; not the tensor. An activation no backward saved is then freed as
    soon as the forward is done with it (a BatchNorm's output, once the ReLU after it has run),
    as in PyTorch. Leaves (parameters, the user's tensors) are remembered as themselves."""
    __slots__ = ("_node", "_index", "shape")

    def __init__(self, t):
        self._node, self._index, self.shape = t._node, t._index, t.shape


def _buffer(a):
    """The id of the memory a holds: its own, or that of the object it views."""
    base = getattr(a, "base", None)   # (a GPU array has none: it is copied, never kept)
    return id(a if base is None else base)


def _fresh(a):
    """A NumPy array that owns its memory, or views memory compiled code allocated for it (an
    array a Numba kernel returned): nothing but a itself can reach that memory."""
    return isinstance(a, np.ndarray) and (a.flags.owndata or not isinstance(a.base, np.ndarray))


def _hand(a, handed):
    """Note a's buffer as given out (kept alive in `handed`, so its id is not reused meanwhile)."""
    handed[_buffer(a)] = a


class Function:
    """Base of every op. Subclasses define two staticmethods on raw arrays:

        forward(ctx, *arrays, **params) -> array or tuple of arrays
        backward(ctx, *grad_outputs)    -> one gradient (or None) per positional input

    and are called as `MyOp.apply(*tensors, **params)`.
    """

    @staticmethod
    def forward(ctx, *args, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **params):
        _check_one_float_dtype(cls.__name__, args)
        _check_one_device(cls.__name__, args)
        ctx = Context(cls)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        out = cls.forward(ctx, *raw, **params)
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        record = _grad_mode.enabled and any(ctx.needs_input_grad)
        tensors = tuple(Tensor(o, dtype=o.dtype) for o in outs)
        if record:
            ctx.inputs = [None if not need else a if a._node is None else Output(a)
                          for a, need in zip(args, ctx.needs_input_grad)]
            ctx.out_meta = [(o.shape, o.dtype) for o in outs]
            ctx.device = tensors[0].device
            for i, t in enumerate(tensors):
                if t.dtype.kind == "f":
                    t.requires_grad, t._node, t._index = True, ctx, i
        return tensors if multi else tensors[0]


def _check_one_float_dtype(name, args):
    dtypes = {a.dtype for a in args if isinstance(a, Tensor) and a.dtype.kind == "f"}
    if len(dtypes) > 1:
        names = " and ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"{name}: inputs mix dtypes {names}; cast one explicitly (e.g. x.astype('float32'))")


def _check_one_device(name, args):
    devices = {a.device for a in args if isinstance(a, Tensor)}
    if len(devices) > 1:
        raise RuntimeError(f"{name}: inputs are on different devices {sorted(devices)}; move them with .to()")


def unbroadcast(grad, shape):
    """Sum a gradient back down to `shape`, undoing NumPy broadcasting (the one place that does)."""
    shape = tuple(shape)
    R = lookup("reduce", grad)  # the reductions run where the gradient lives
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = R.sum(grad, tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = R.sum(grad, axes, keepdims=True)
    return grad.reshape(shape)


from .functional import basic as _ops  # noqa: E402  (the operators above need Tensor defined first)
