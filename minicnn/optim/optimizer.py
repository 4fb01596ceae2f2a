"""The `Optimizer` base: parameter groups, per-parameter state, zero_grad, state_dict.

    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    opt = optim.SGD([{"params": model.features.parameters()},
                     {"params": model.classifier.parameters(), "lr": 0.1}], lr=0.01)

`param_groups` is a list of dicts: "params" (the Parameters) plus every hyper-parameter, filled
from the constructor's defaults where a group leaves it out. Schedulers change "lr" there.
`state[p]` holds a parameter's running arrays (momentum buffers, Adam moments, ...).

Subclasses implement `_update(p, grad, state, group)`: the update rule for ONE parameter on
NumPy arrays, in place on `p`'s data, in its dtype. `step()` walks the groups and skips
parameters whose `.grad` is None. Subclasses whose `_update` calls the "optim" kernels through
`lookup` (SGD, Adam, AdamW) set `_device_update = True`: their parameters on "cuda" are updated
there, state included; the others update a host copy and copy it back.
"""
import copy

import numpy as np

from ..device import array_device, to_device
from ..tensor import Tensor


class Optimizer:
    _device_update = False

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}            # Parameter -> dict of arrays / numbers
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                            f"got a single Tensor (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    # ---- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a dict with "params" (and optional settings overriding the defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: parameters must be an ordered collection (list, generator), not a set")
        else:
            params = list(params) if params is not None else []
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating-point Tensors, got {p.dtype}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group contains the same parameter more than once")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group):
        """Raise ValueError for settings out of range (subclasses extend it)."""
        _check(self, group["lr"] >= 0, f"Invalid learning rate: {group['lr']} (expected lr >= 0)")

    # ---- the step -------------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: `.grad = None` (PyTorch's default) or, if not set_to_none, zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(np.asarray(to_device(p.grad, "cpu")))
                    if p.device != "cpu":
                        p.grad = to_device(p.grad, p.device)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure` (re-evaluates the model and
        returns the loss) is called first if given, and its loss returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                on_gpu = array_device(p.data) == "cuda"
                state = self.state.setdefault(p, {})
                if on_gpu and self._device_update:                  # the kernels update it in place
                    for k, v in state.items():                      # (a loaded state comes as numpy)
                        if isinstance(v, np.ndarray):
                            state[k] = to_device(v, "cuda")
                    self._update(p.data, to_device(p.grad, "cuda"), state, group)
                    continue
                data = p.data.copy_to_host() if on_gpu else p.data   # GPU: update a host copy
                grad = np.asarray(to_device(p.grad, "cpu"))
                if grad.dtype != data.dtype:
                    grad = grad.astype(data.dtype)
                self._update(data, grad, state, group)
                if on_gpu:
                    p.data = to_device(data, "cuda")
        return loss

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    # ---- saving -------------------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: array or number}}, "param_groups": [settings + "params": [indices]]}.
        Parameters are numbered in group order, as PyTorch does; arrays are copies."""
        index, groups, n = {}, [], 0
        for group in self.param_groups:
            settings = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            settings["params"] = list(range(n, n + len(group["params"])))
            for p in group["params"]:
                index[id(p)] = n
                n += 1
            groups.append(settings)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (np.array(to_device(v, "cpu"), copy=True)
                                               if isinstance(v, np.ndarray) or array_device(v) == "cuda" else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and settings saved by `state_dict()` (also after `mc.save`/`mc.load`).
        All or nothing: every entry is checked and converted before the optimiser changes."""
        name = type(self).__name__
        groups, saved_groups = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(f"{name}: loaded state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}: loaded state dict's parameter group {i} has {len(s['params'])} "
                                 f"parameters, the optimizer's has {len(g['params'])}")
        by_index = {}
        for g, s in zip(groups, saved_groups):
            by_index.update(zip(s["params"], g["params"]))
        state = {}   # built aside and assigned at the end: a failure leaves the optimiser as it was
        for key, values in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"{name}: loaded state dict has state for parameter {key}, which "
                                 f"none of its parameter groups lists")
            p = by_index[int(key)]
            state[p] = {k: (np.array(v, dtype=p.dtype if np.asarray(v).dtype.kind == "f" else None, copy=True)
                            if isinstance(v, np.ndarray) else v)
                        for k, v in values.items()}
        self.state = state
        for g, s in zip(groups, saved_groups):
            for k, v in s.items():
                if k != "params":
                    g[k] = copy.deepcopy(v)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _check(opt, ok, message):
    if not ok:
        raise ValueError(f"{type(opt).__name__}: {message}")
