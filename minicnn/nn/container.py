"""Containers: Sequential, ModuleList, ModuleDict, and the two shape-only layers Identity and
Flatten. Children of a Sequential or ModuleList are named "0", "1", ... as in PyTorch, so
`features.0.weight` names the weight of the first layer of `features`."""
import operator
from collections import OrderedDict

import minicnn.functional as F

from .module import Module


def _index(fn, idx, n):
    """A valid non-negative index into n children, or a clear IndexError."""
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"{fn}: index {idx} is out of range for {n} modules")
    return idx % n


class Sequential(Module):
    """Calls its children in order, feeding each one's output to the next.

    `Sequential(conv, relu, pool)` names them "0", "1", "2";
    `Sequential(OrderedDict([("conv1", conv), ("relu1", relu)]))` keeps the given names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index("Sequential", idx, len(self))]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index("Sequential", idx, len(self))]
        self.add_module(key, module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_index("Sequential", idx, len(self))]]):
            del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self


class ModuleList(Module):
    """A list of sub-modules that are registered (their parameters are found), named "0", "1", ...
    It has no forward: the owner decides how to call them."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(_index("ModuleList", idx, len(self)))]

    def __setitem__(self, idx, module):
        self.add_module(str(_index("ModuleList", idx, len(self))), module)

    def __delitem__(self, idx):
        mods = list(self._modules.values())
        del mods[idx if isinstance(idx, slice) else _index("ModuleList", idx, len(self))]
        self._modules.clear()
        for i, m in enumerate(mods):   # renumber so names stay "0", "1", ...
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)


class ModuleDict(Module):
    """A dict of registered sub-modules, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self.add_module(key, module)


class Identity(Module):
    """Returns its input unchanged (any constructor arguments are ignored, as PyTorch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flattens axes `start_axis` ... last into one: (N, C, H, W) -> (N, C*H*W) by default.
    (`start_dim` is accepted as PyTorch's name for the same thing.)"""

    def __init__(self, start_axis=1, start_dim=None):
        super().__init__()
        self.start_axis = start_axis if start_dim is None else start_dim

    def forward(self, x):
        return F.flatten(x, start_axis=self.start_axis)

    def extra_repr(self):
        return f"start_axis={self.start_axis}"
