"""Compiling a model's CPU kernels in a second process, beside its first training step.

On a fresh machine Numba's cache is empty, and the first training step compiles each kernel the
moment it first runs: the forward's in layer order, then the backward's in reverse, then the
optimiser's, one after another on one core (5.3-5.5 s to LeNet-5's first batch on a 2-core
machine; 3.5-3.7 s with this helper).
`minicnn train` starts this helper on such a first run. It compiles the same kernels on the
other core in the opposite order: the loss first, then every layer alone, forward and backward,
from the last layer back to the first, then the optimiser's update. Whatever it has finished
when the training step reaches a kernel, the step loads from the cache instead of compiling;
the two meet in the middle.

The kernels (and so the cache entries) are the same only if every layer sees the input shapes,
dtypes and batch size of the training step: they are recorded from a batch of two images through
the model on the NumPy reference kernels (nothing to compile), and the batch axis set to the
training batch. The number of classes is a hint (it only decides array sizes). Everything here is
best effort: a layer that fails alone is skipped, and the worst a wrong guess costs is kernels
compiled that the run does not use. Run as `python -m minicnn.precompile SPEC` (SPEC a JSON
object: model, model_kwargs, image_shape, batch_size, optimizer), with its output discarded.
"""
import json
import os
import sys

import numpy as np


def leaf_calls(model, image_shape):
    """[(module, input shape without the batch axis, input requires grad)] for every call of a
    module without children in one forward, in the order they ran, and the model's output
    (a Tensor or a tuple of them)."""
    import minicnn as mc
    calls = []

    def record(module, args):
        if args and isinstance(args[0], mc.Tensor):
            calls.append((module, args[0].shape[1:], args[0].requires_grad))
    handles = [m.register_forward_pre_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with mc.use_kernels("reference"):     # two images: batch norm needs more than one value
            out = model(mc.zeros(2, *image_shape))
    finally:
        for handle in handles:
            handle.remove()
    return calls, out


def compile_in_reverse(model, optimizer, image_shape, batch_size, seed=0):
    """Run the loss, then every layer alone (last layer first), forward and backward on random
    data of the training step's shapes, then one optimiser step: each kernel compiles on its
    first run and lands in Numba's cache."""
    import minicnn as mc
    calls, out = leaf_calls(model, image_shape)
    rng = np.random.default_rng(seed)
    for logits in out if isinstance(out, (tuple, list)) else [out]:
        classes = logits.shape[1]
        z = mc.tensor(rng.standard_normal((batch_size, classes), dtype=np.float32), requires_grad=True)
        y = mc.tensor(rng.integers(0, classes, batch_size))
        mc.functional.cross_entropy(z, y).backward()
    for module, shape, needs_grad in reversed(calls):
        x = mc.tensor(rng.standard_normal((batch_size, *shape), dtype=np.float32), requires_grad=needs_grad)
        try:
            y = module(x)
            if isinstance(y, mc.Tensor) and y.requires_grad:
                y.backward(mc.tensor(np.ones(y.shape, dtype=y.dtype)))
        except Exception:   # a layer that does not run alone: the training step compiles it
            continue
    optimizer.step()


def main(argv=None):
    spec = json.loads((argv or sys.argv[1:])[0])
    try:
        os.nice(10)   # the training step comes first when the two want the same core
    except (AttributeError, OSError):
        pass
    import minicnn as mc
    from minicnn.cli import build_model, build_optimizer
    mc.manual_seed(0)
    model = build_model(spec["model"], **spec["model_kwargs"])
    optimizer = build_optimizer(spec["optimizer"], model.parameters())
    with np.errstate(all="ignore"):
        compile_in_reverse(model, optimizer, tuple(spec["image_shape"]), spec["batch_size"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
