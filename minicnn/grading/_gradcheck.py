"""gradcheck of a student's backward: the forward is the reference kernel, the backward is the
student's, and `mc.gradcheck` compares it with central differences of sum(forward * R) in
float64 for a random R. A failure names the input by its name (x, weight, ...)."""
import numpy as np

from ..gradcheck import GradcheckError, gradcheck
from ..tensor import Function, Tensor


def check_backward(forward, backward, inputs, names, seed=0):
    """forward(*arrays) -> output array; backward(arrays, grad_out) -> one gradient per input
    (a tuple, or a bare array for a single input). `inputs` are float64 arrays; every one is
    checked. Raises GradcheckError naming the input."""

    class Probe(Function):
        @staticmethod
        def forward(ctx, *arrays):
            ctx.arrays = arrays
            return np.asarray(forward(*arrays), dtype=np.float64)

        @staticmethod
        def backward(ctx, g):
            grads = backward(tuple(a.copy() for a in ctx.arrays), g.copy())
            grads = grads if isinstance(grads, (tuple, list)) else (grads,)
            return tuple(None if d is None else np.asarray(d, dtype=np.float64) for d in grads)

    tensors = [Tensor(np.array(a, dtype=np.float64), requires_grad=True, dtype=np.float64) for a in inputs]
    try:
        gradcheck(lambda *ts: Probe.apply(*ts), tensors, seed=seed)
    except GradcheckError as exc:
        text = str(exc)
        for i, name in enumerate(names):
            text = text.replace(f"input {i} (", f"{name} (")
        raise GradcheckError(text.replace("gradcheck: ", "")) from None
