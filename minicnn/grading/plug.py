"""Run a real network on a student's own kernels: `student_kernels`.

    with grading.student_kernels(globals()) as used:
        train.fit(models.lenet5(), ...)        # conv, pooling, ReLU, loss, SGD/Adam: yours
    print(used.calls)                          # how many times each of your functions ran

Each op of minicnn asks `minicnn.kernels.lookup(family)` for its kernels ("conv", "pool",
"activation", "loss", "optim"); inside the `with` block the families the student wrote are
answered by a small adapter that calls the student's functions, translating the kernel
signatures of kernels/reference into the assignments' (and back). Whatever the student did not
write (adaptive pooling, ELU, log-softmax, ...) still runs minicnn's own kernels. Only the CPU
is swapped; inside the block, the adapters refuse what the assignments left out (groups,
asymmetric "same" padding, ceil_mode, weight decay) with an error that says so.

Which functions swap what (each pair is all or nothing):
    conv2d_forward + conv2d_backward              every Conv2d / conv2d / Conv1d
    max_pool_forward + max_pool_backward          MaxPool2d / max_pool2d
    avg_pool_forward + avg_pool_backward          AvgPool2d / avg_pool2d (count_include_pad=True)
    relu_forward + relu_backward, sigmoid_..., tanh_..., leaky_relu_...   the activations
    cross_entropy_forward + cross_entropy_backward     F.cross_entropy
    sgd_step; adam_step                           optim.SGD (no weight decay, no dampening), optim.Adam
"""
import collections
import contextlib

import numpy as np

from .. import kernels

PAIRS = {
    "conv": [("conv2d_forward", "conv2d_backward")],
    "pool": [("max_pool_forward", "max_pool_backward"), ("avg_pool_forward", "avg_pool_backward")],
    "activation": [("relu_forward", "relu_backward"), ("leaky_relu_forward", "leaky_relu_backward"),
                   ("sigmoid_forward", "sigmoid_backward"), ("tanh_forward", "tanh_backward")],
    "loss": [("cross_entropy_forward", "cross_entropy_backward")],
    "optim": [("sgd_step",), ("adam_step",)],
}


class Used:
    """What `student_kernels` swapped in: `.functions` (names), `.calls` (name -> count)."""

    def __init__(self):
        self.functions, self.calls = [], collections.Counter()

    def __repr__(self):
        return f"Used(functions={self.functions}, calls={dict(self.calls)})"


class _Adapter:
    """Stands in for one kernel family: the student's functions where given, minicnn's own
    kernels (`base`) for everything else."""

    def __init__(self, base, overrides):
        self._base = base
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._base, name)


def _unsupported(what):
    raise NotImplementedError(f"student_kernels: your kernels do not cover {what}; run this layer "
                              f"outside the `with grading.student_kernels(...)` block")


def _result(name, value, shape, dtype):
    """The student's array, checked for shape and given the framework's dtype."""
    if value is None:
        raise ValueError(f"student_kernels: your {name} returned None")
    value = np.asarray(value)
    if value.shape != tuple(shape):
        raise ValueError(f"student_kernels: your {name} returned shape {value.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(value, dtype=dtype)


def _counted(used, name, fn):
    def call(*args):
        used.calls[name] += 1
        return fn(*args)
    return call


# ---- the adapters, one per family --------------------------------------------------------------
def _conv(fns):
    forward, backward = fns["conv2d_forward"], fns["conv2d_backward"]

    def hyper(geom):
        if geom.groups != 1:
            _unsupported(f"groups={geom.groups}")
        if (geom.pt, geom.pl) != (geom.pb, geom.pr):
            _unsupported("asymmetric padding (padding='same' with an even kernel)")
        return (geom.sh, geom.sw), (geom.pt, geom.pl), (geom.dil_h, geom.dil_w)

    def conv2d_forward(x, weight, bias, geom):
        b = np.zeros(weight.shape[0], dtype=x.dtype) if bias is None else bias
        out = forward(x, weight, b, *hyper(geom))
        shape = (x.shape[0], weight.shape[0], geom.oh, geom.ow)
        return _result("conv2d_forward", out, shape, x.dtype), (x, weight, geom)

    def conv2d_backward(saved, g, needs):
        x, weight, geom = saved
        dx, dw, db = backward(x, weight, g, *hyper(geom))
        return (_result("conv2d_backward's dx", dx, x.shape, x.dtype) if needs[0] else None,
                _result("conv2d_backward's dweight", dw, weight.shape, x.dtype) if needs[1] else None,
                _result("conv2d_backward's dbias", db, (weight.shape[0],), x.dtype)
                if len(needs) > 2 and needs[2] else None)

    return {"conv2d_forward": conv2d_forward, "conv2d_backward": conv2d_backward}


def _max_pool(forward, backward):
    def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow):
        hyper = ((kh, kw), (sh, sw), (ph, pw))
        out = _result("max_pool_forward", forward(x, *hyper), x.shape[:2] + (oh, ow), x.dtype)
        return out, (x, hyper)   # kept where minicnn keeps the argmax: backward gets it back

    def max_pool2d_backward(grad_out, saved, H, W):
        x, hyper = saved
        return _result("max_pool_backward", backward(x, grad_out, *hyper), x.shape, x.dtype)

    return {"max_pool2d_forward": max_pool2d_forward, "max_pool2d_backward": max_pool2d_backward}


def _avg_pool(forward, backward):
    def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
        if not count_include_pad:
            _unsupported("count_include_pad=False")
        out = forward(x, (kh, kw), (sh, sw), (ph, pw))
        return _result("avg_pool_forward", out, x.shape[:2] + (oh, ow), x.dtype)

    def avg_pool2d_backward(grad_out, H, W, kh, kw, sh, sw, ph, pw, count_include_pad):
        shape = grad_out.shape[:2] + (H, W)
        dx = backward(grad_out, shape, (kh, kw), (sh, sw), (ph, pw))
        return _result("avg_pool_backward", dx, shape, grad_out.dtype)

    return {"avg_pool2d_forward": avg_pool2d_forward, "avg_pool2d_backward": avg_pool2d_backward}


def _pool(fns):
    adapted = {}
    if "max_pool_forward" in fns:
        adapted.update(_max_pool(fns["max_pool_forward"], fns["max_pool_backward"]))
    if "avg_pool_forward" in fns:
        adapted.update(_avg_pool(fns["avg_pool_forward"], fns["avg_pool_backward"]))
    return adapted


def _activation(fns):
    def same_shape(name, fn):
        def call(first, *rest):
            return _result(name, fn(first, *rest), first.shape, first.dtype)
        return call
    return {name: same_shape(name, fn) for name, fn in fns.items()}


def _loss(fns):
    forward, backward = fns["cross_entropy_forward"], fns["cross_entropy_backward"]

    def softmax_cross_entropy_forward(x, target):
        loss = _result("cross_entropy_forward", forward(x, target), (x.shape[0],), x.dtype)
        return loss, x   # the logits stand where minicnn keeps the probabilities

    def softmax_cross_entropy_backward(logits, target, grad_rows):
        return _result("cross_entropy_backward", backward(logits, target, grad_rows), logits.shape, logits.dtype)

    return {"softmax_cross_entropy_forward": softmax_cross_entropy_forward,
            "softmax_cross_entropy_backward": softmax_cross_entropy_backward}


def _optim(fns):
    adapted = {}
    if "sgd_step" in fns:
        step = fns["sgd_step"]

        def sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
            if dampening or weight_decay or maximize:
                _unsupported("SGD's dampening, weight_decay or maximize")
            if buf is not None and first:
                buf[...] = 0   # the assignment's buffer starts at zeros
            state = np.zeros_like(p) if buf is None else buf
            new_p, new_buf = step(p, grad, state, lr, momentum, nesterov)
            p[...] = _result("sgd_step's p", new_p, p.shape, p.dtype)
            if buf is not None:
                buf[...] = _result("sgd_step's buf", new_buf, p.shape, p.dtype)

        adapted["sgd_update"] = sgd_update
    if "adam_step" in fns:
        step = fns["adam_step"]

        def adam_update(p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                        maximize, t):
            if weight_decay or amsgrad or maximize:
                _unsupported("Adam's weight_decay, amsgrad or maximize")
            new_p, new_m, new_v = step(p, grad, m, v, t, lr, beta1, beta2, eps)
            p[...], m[...], v[...] = (_result(f"adam_step's {n}", a, p.shape, p.dtype)
                                      for n, a in (("p", new_p), ("m", new_m), ("v", new_v)))

        adapted["adam_update"] = adam_update
    return adapted


_ADAPTERS = {"conv": _conv, "pool": _pool, "activation": _activation, "loss": _loss, "optim": _optim}


def _pick(namespace, functions):
    space = dict(namespace if isinstance(namespace, dict) else vars(namespace)) if namespace is not None else {}
    space.update(functions)
    chosen = {}
    for family, pairs in PAIRS.items():
        for pair in pairs:
            present = [n for n in pair if callable(space.get(n))]
            if present and len(present) < len(pair):
                missing = [n for n in pair if n not in present]
                raise ValueError(f"student_kernels: {present[0]} needs {', '.join(missing)} too "
                                 "(a forward without its backward cannot train)")
            if present:
                chosen.setdefault(family, {}).update({n: space[n] for n in pair})
    return chosen


@contextlib.contextmanager
def student_kernels(namespace=None, **functions):
    """Inside the `with` block, minicnn's ops run the student's kernels (see the module docstring).

    `namespace`: a dict such as globals(), or a module, searched for the assignment functions by
    name; `functions`: the same by keyword (conv2d_forward=my_conv, ...), which win. Yields a
    `Used` whose `.functions` lists what was swapped and `.calls` counts each function's calls.
    """
    chosen = _pick(namespace, functions)
    if not chosen:
        raise ValueError("student_kernels: none of the assignment functions was given (e.g. "
                         "conv2d_forward and conv2d_backward)")
    used = Used()
    with contextlib.ExitStack() as stack:
        for family, fns in chosen.items():
            counted = {n: _counted(used, n, fn) for n, fn in fns.items()}
            used.functions += list(fns)
            base = kernels.lookup(family, "cpu")
            stack.enter_context(kernels.swap(family, _Adapter(base, _ADAPTERS[family](counted))))
        yield used
