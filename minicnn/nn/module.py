"""`Module` and `Parameter`: the bookkeeping every layer shares.

A Module keeps three ordered registries, filled by plain attribute assignment:

    self.weight = Parameter(...)        -> _parameters["weight"]   (learned, in state_dict)
    self.register_buffer("running_mean", arr)  -> _buffers          (not learned, in state_dict)
    self.conv1 = Conv2d(...)            -> _modules["conv1"]       (children, walked recursively)

Names are PyTorch's: a parameter of a child is `child.name`, so `features.0.weight` or
`layer1.0.downsample.1.weight`, and a PyTorch state dict converted to NumPy loads as is.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from ..device import check_device, to_device
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable: `requires_grad=True` by default.

    A Tensor argument keeps its dtype (so `Parameter(x.double())` stays float64); other data
    follows `Tensor`'s rule (floats become float32 unless `dtype` is given).
    """

    def __init__(self, data, requires_grad=True, dtype=None):
        if dtype is None and isinstance(data, Tensor):
            dtype = data.dtype
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(RuntimeError, ValueError):
    """`load_state_dict` found missing, unexpected or mis-shaped entries (PyTorch raises a
    RuntimeError; it is also a ValueError, minicnn's type for bad shapes)."""


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by `register_forward_hook`; `handle.remove()` takes the hook out again."""

    _next_id = 0

    def __init__(self, hooks):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _as_buffer(name, value):
    """Buffers are Tensors that never require grad; arrays and numbers are wrapped, dtype kept."""
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        arr = np.asarray(value)
        return Tensor(arr, dtype=arr.dtype)
    raise TypeError(f"register_buffer: buffer {name!r} must be a Tensor, a NumPy array or None, "
                    f"got {type(value).__name__}")


class Module:
    """Base class of every layer and model. Subclasses set attributes in `__init__` (after
    calling `super().__init__()`) and define `forward`; call the module, not `forward`."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # ---- registration by attribute assignment --------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attribute {name!r}")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter "
                                f"{name!r} (expected a Parameter or None)")
            self._parameters[name] = None
        elif name in self._buffers:
            self._buffers[name] = _as_buffer(name, value)
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to child "
                                f"module {name!r} (expected a Module or None)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove `name` from every registry and from the plain attributes."""
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if any(name in r for r in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._check_name("register_parameter", name)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A non-learned state array (e.g. batch norm's running mean); in `state_dict()` unless
        `persistent=False`; moved by `to()`."""
        self._check_name("register_buffer", name)
        self._forget(name)
        self._buffers[name] = _as_buffer(name, tensor)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._check_name("add_module", name)
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, fn, name):
        if not isinstance(name, str):
            raise TypeError(f"{fn}: the name must be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{fn}: the name must be non-empty and contain no '.', got {name!r}")

    # ---- calling ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook):
        """`hook(module, inputs, output)` runs after every forward; a non-None return replaces
        the output. Returns a handle whose `remove()` takes the hook out."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook):
        """`hook(module, inputs)` runs before every forward; a non-None return replaces the inputs."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ---- walking the tree ---------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module ("") and every descendant, depth first, in order."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, Parameter) pairs with PyTorch's dotted names; a shared parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call `fn(module)` on every child (recursively) and then on this module; returns self.
        The usual use is custom initialisation: `model.apply(init_weights)`."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only=False):
        """How many numbers the model learns (shared parameters counted once)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes and gradients --------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active, batch norm uses and updates batch statistics) on
        this module and every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """The same as `train(False)`."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set `requires_grad` of every parameter (False freezes the whole module); returns self.
        A frozen parameter gets no `.grad` in backward, so optimisers leave it as it is."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def freeze(self, *prefixes):
        """Freeze (`requires_grad = False`) the parameters named by `prefixes`: a prefix takes the
        parameter of that name and everything under it ("features" takes `features.0.weight`,
        "layer1.0" takes `layer1.0.conv1.weight`; "layer1" does not take `layer10.*`). With no
        prefix, every parameter. Returns the names frozen; a prefix that names no parameter raises
        KeyError listing the top-level names there are. `unfreeze` undoes it."""
        return self._set_requires_grad("freeze", prefixes, False)

    def unfreeze(self, *prefixes):
        """The parameters under `prefixes` (all with none) learn again; see `freeze`."""
        return self._set_requires_grad("unfreeze", prefixes, True)

    def _set_requires_grad(self, fn, prefixes, flag):
        named = list(self.named_parameters())
        for prefix in prefixes:
            if not isinstance(prefix, str):
                raise TypeError(f"{fn}: expected parameter name prefixes (strings), got {prefix!r}")
            if not any(_under(name, prefix) for name, _ in named):
                tops = sorted({name.split(".")[0] for name, _ in named})
                raise KeyError(f"{fn}: {type(self).__name__} has no parameter named {prefix!r} or "
                               f"under it; its top-level names are {', '.join(tops)}")
        chosen = [(name, p) for name, p in named
                  if not prefixes or any(_under(name, prefix) for prefix in prefixes)]
        for _, p in chosen:
            p.requires_grad_(flag)
        return [name for name, _ in chosen]

    def zero_grad(self, set_to_none=True):
        """Forget accumulated gradients: `.grad = None` (PyTorch's default), or zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.grad) if p.device == "cpu" else to_device(np.zeros(p.shape, p.dtype), p.device)

    # ---- devices and dtypes -----------------------------------------------------------------------
    def _map_tensors(self, fn):
        """Replace the data of every parameter and buffer (and parameter grad) by fn(array)."""
        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is None:
                    continue
                t.data = fn(t.data)
                if t.grad is not None:
                    t.grad = fn(t.grad)
        return self

    def to(self, device=None, dtype=None):
        """Move parameters and buffers to `device` ("cpu" or "cuda") and/or cast floating ones to
        `dtype`, in place; returns self. `to("float64")` alone is read as a dtype."""
        if device is not None and not _looks_like_device(device) and _is_dtype(device):
            device, dtype = None, device if dtype is None else dtype
        if device is not None:
            device = check_device(device)
            if device == "cuda":
                from ..device import cuda_module
                cuda_module()  # the clear error when no GPU is present, before anything moves
            self._map_tensors(lambda a: to_device(a, device))
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"Module.to: only floating-point dtypes are allowed, got {dtype}")

            def cast(a):
                if np.dtype(a.dtype).kind != "f":
                    return a
                host = to_device(a, "cpu").astype(dtype)
                return host if array_is_cpu(a) else to_device(host, "cuda")
            self._map_tensors(cast)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    # ---- state dict ---------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """name -> NumPy array copy, parameters and persistent buffers, in registration order
        (a module's own entries, then its children's). `keep_vars=True` gives the Tensors."""
        out = OrderedDict() if destination is None else destination
        for name, module in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            dot = name + "." if name else ""
            for key, p in module._parameters.items():
                if p is not None:
                    out[dot + key] = p if keep_vars else p.numpy()
            for key, b in module._buffers.items():
                if b is not None and key not in module._non_persistent:
                    out[dot + key] = b if keep_vars else b.numpy()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into the parameters and buffers, keeping each one's dtype
        and device. All or nothing: every key, shape, dtype and cast is checked before the first
        copy, and one error lists every problem: missing and unexpected keys (only when `strict`),
        shape mismatches (always, as PyTorch) and values that are not numeric arrays.
        Entries a layer lists in `_optional_state` may be absent (batch norm's
        `num_batches_tracked`, which older PyTorch files lack): they keep their value, as PyTorch
        does. Returns `(missing_keys, unexpected_keys)`."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a dict name -> array, got "
                            f"{type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        optional = self._optional_state_keys()
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        problems, values = [], {}
        for key, target in own.items():
            if key in state_dict:
                value, problem = _cast_for(key, state_dict[key], target)
                if problem:
                    problems.append(problem)
                values[key] = value
        if strict:
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                problems.insert(1 if missing else 0,
                                "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(problems))
        on_gpu = {k: to_device(np.ascontiguousarray(v), own[k].device)   # copies that may fail
                  for k, v in values.items() if own[k].device != "cpu"}   # (memory) come first
        for key, value in values.items():   # nothing below can fail: every value is ready
            if key in on_gpu:
                own[key].data = on_gpu[key]
            else:
                np.copyto(own[key].data, value)   # in place: optimisers keep their references
        return IncompatibleKeys(missing, unexpected)

    _optional_state = ()   # names of buffers a state dict may leave out (see load_state_dict)

    def _optional_state_keys(self):
        return {prefix + ("." if prefix else "") + key
                for prefix, module in self.named_modules(remove_duplicate=False)
                for key in module._optional_state}

    # ---- printing -----------------------------------------------------------------------------------
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (layers override it)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not self._modules:
            return f"{self._get_name()}({self.extra_repr()})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


def _cast_for(key, value, target):
    """(value as a NumPy array of target's shape and dtype, None) or (None, the problem)."""
    try:
        value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    except (ValueError, TypeError) as exc:   # e.g. a ragged nested list
        return None, f"{key} is not an array: {exc}"
    if value.dtype.kind not in "biuf":
        return None, (f"{key} has dtype {value.dtype}, expected numbers "
                      f"(the parameter is {target.dtype})")
    if tuple(value.shape) != target.shape:
        return None, (f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                      f"from checkpoint, the shape in current model is {target.shape}.")
    return value.astype(target.dtype, copy=False), None


def _under(name, prefix):
    """Whether the dotted `name` is `prefix` or lies under it (whole name parts only)."""
    return name == prefix or name.startswith(prefix + ".")


def _looks_like_device(value):
    return isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda")


def _is_dtype(value):
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def array_is_cpu(a):
    return isinstance(a, np.ndarray)
