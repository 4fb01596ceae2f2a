"""`nn.summary(model, input_shape)`: the layer table of the lecture slides.

One forward pass at batch 1 (eval mode, no graph) with a hook on every module records, for each
layer that does work (each leaf module, and any module holding parameters of its own):

    name (type)   output shape   HxWxC (the slides' 55x55x96)   parameters   multiply-adds

Multiply-adds for one image:
    Conv:   out elements * (C_in / groups) * kH * kW     (out elements = C_out * OH * OW)
    Linear: out elements * in_features
    other layers: 0 (their adds/compares are small next to these)
Totals at the bottom: parameters (all / trainable), multiply-adds, and memory for one image:
the input plus every recorded layer output (the activations a forward pass of minicnn keeps).

The result is a `str` (print it, search it) that also carries the numbers as attributes
(`total_params`, `trainable_params`, `total_macs`, `activation_bytes`, `rows`) and `as_dict()`.
"""
from dataclasses import asdict, dataclass

import numpy as np

from .._grad_mode import no_grad
from ..tensor import Tensor
from .conv import Conv1d, Conv2d, Linear


@dataclass
class SummaryRow:
    name: str             # dotted module name, e.g. "features.0"
    type: str             # class name, e.g. "Conv2d"
    output_shape: tuple   # with the batch axis (batch 1); a list of shapes for tuple outputs
    output_hwc: str       # the slides' form: "55x55x96" for (1, 96, 55, 55)
    params: int           # parameters held directly by this module (counted at its first call)
    macs: int             # multiply-adds for one image
    output_bytes: int     # memory of the output for one image


def hwc(shape):
    """(1, C, H, W) -> "HxWxC", (1, C, L) -> "LxC", (1, F) -> "F" (the batch axis is dropped)."""
    shape = tuple(shape)[1:]
    if len(shape) >= 2:
        shape = shape[1:] + shape[:1]   # channels last, as the slides write it
    return "x".join(str(s) for s in shape) if shape else "1"


def count_macs(module, output):
    """Multiply-adds of one call of `module` for one image (0 for layers without weights)."""
    per_image = output.size // max(output.shape[0], 1)
    if isinstance(module, (Conv2d, Conv1d)):
        return per_image * (module.in_channels // module.groups) * int(np.prod(module.kernel_size))
    if isinstance(module, Linear):
        return per_image * module.in_features
    return 0


def _outputs(out):
    """The Tensors of a module's output (a Tensor, or a tuple/list of them)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _outputs(o)]
    return []


def _fmt_bytes(n):
    return f"{n / 2 ** 20:,.2f} MB"


class ModelSummary(str):
    """The summary table as text, with the numbers attached (see the module docstring)."""

    def __new__(cls, model_name, input_shape, rows, total_params, trainable_params, input_bytes,
                param_bytes, output_shape):
        total_macs = sum(r.macs for r in rows)
        activation_bytes = input_bytes + sum(r.output_bytes for r in rows)
        text = _table(model_name, input_shape, rows, total_params, trainable_params, total_macs,
                      input_bytes, activation_bytes, param_bytes)
        self = super().__new__(cls, text)
        self.model_name, self.input_shape, self.rows = model_name, tuple(input_shape), rows
        self.output_shape = output_shape
        self.total_params, self.trainable_params = total_params, trainable_params
        self.non_trainable_params = total_params - trainable_params
        self.total_macs, self.input_bytes, self.param_bytes = total_macs, input_bytes, param_bytes
        self.activation_bytes = activation_bytes
        return self

    def __repr__(self):
        return str(self)

    def as_dict(self):
        return {"model": self.model_name, "input_shape": self.input_shape, "output_shape": self.output_shape,
                "rows": [asdict(r) for r in self.rows], "total_params": self.total_params,
                "trainable_params": self.trainable_params, "non_trainable_params": self.non_trainable_params,
                "total_macs": self.total_macs, "input_bytes": self.input_bytes,
                "activation_bytes": self.activation_bytes, "param_bytes": self.param_bytes}


def _table(model_name, input_shape, rows, total_params, trainable_params, total_macs, input_bytes,
           activation_bytes, param_bytes):
    header = ("Layer (type)", "Output shape", "HxWxC", "Params", "Mult-adds")
    body = [(f"{r.name} ({r.type})" if r.name else r.type,
             str(r.output_shape),
             r.output_hwc, f"{r.params:,}", f"{r.macs:,}") for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(5)]

    def fmt(line):
        left = "  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths[:3]))
        right = "  ".join(cell.rjust(w) for cell, w in zip(line[3:], widths[3:]))
        return left + "  " + right

    rule = "=" * len(fmt(header))
    lines = [f"{model_name} summary, input {tuple(input_shape)} (batch 1)", rule, fmt(header), rule]
    lines += [fmt(line) for line in body]
    lines += [rule,
              f"Total params: {total_params:,}",
              f"Trainable params: {trainable_params:,}",
              f"Non-trainable params: {total_params - trainable_params:,}",
              f"Total mult-adds: {total_macs:,} ({total_macs / 1e9:.2f} G)",
              rule,
              f"Input size (one image): {_fmt_bytes(input_bytes)}",
              f"Activation memory (one image, forward): {_fmt_bytes(activation_bytes)}",
              f"Params size: {_fmt_bytes(param_bytes)}",
              rule]
    return "\n".join(lines)


def summary(model, input_shape, dtype=None):
    """Run `model` once on a batch of one random input of shape `input_shape` (no batch axis, e.g.
    `(3, 227, 227)`) and return the layer table (a `ModelSummary`, a str with attributes).

    The model runs in eval mode under `no_grad`; every module's training flag is restored after.
    """
    input_shape = tuple(int(s) for s in ((input_shape,) if np.isscalar(input_shape) else input_shape))
    params = list(model.parameters())
    if dtype is None:
        dtype = params[0].dtype if params else np.float32
    names = {id(m): name for name, m in model.named_modules()}
    rows, counted, handles = [], set(), []

    def hook(module, inputs, output):
        own = [p for p in module._parameters.values() if p is not None and id(p) not in counted]
        counted.update(id(p) for p in own)
        outs = _outputs(output)
        shapes = [t.shape for t in outs]
        rows.append(SummaryRow(
            name=names.get(id(module), ""), type=type(module).__name__,
            output_shape=tuple(shapes) if len(shapes) != 1 else shapes[0],
            output_hwc=", ".join(hwc(s) for s in shapes),
            params=sum(p.size for p in own),
            macs=sum(count_macs(module, t) for t in outs[:1]),
            output_bytes=sum(t.size // max(t.shape[0], 1) * t.dtype.itemsize for t in outs)))

    modes = [(m, m.training) for m in model.modules()]
    try:
        for m in model.modules():
            leaf = not any(True for _ in m.children())
            if leaf or any(p is not None for p in m._parameters.values()):
                handles.append(m.register_forward_hook(hook))
        model.eval()
        x = Tensor(np.random.default_rng(0).standard_normal((1,) + input_shape), dtype=dtype)
        with no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    out_shapes = [t.shape for t in _outputs(out)]
    return ModelSummary(
        model_name=type(model).__name__, input_shape=input_shape, rows=rows,
        total_params=sum(p.size for p in params),
        trainable_params=sum(p.size for p in params if p.requires_grad),
        input_bytes=int(np.prod(input_shape, dtype=np.int64)) * np.dtype(dtype).itemsize,
        param_bytes=sum(p.size * p.dtype.itemsize for p in params),
        output_shape=out_shapes[0] if len(out_shapes) == 1 else tuple(out_shapes))
