"""Finite-difference gradient checking, done the way DESIGN.md asks.

The scalar that is differentiated is `L = sum(fn(*inputs) * R)` for a fixed random `R`, never a
plain sum: a plain sum has zero gradient through softmax or batch norm, so a backward that
returns zeros would pass. Every input that requires grad is checked, in float64, with central
differences; a failure names the input, the worst element, and both values.
"""
import numpy as np

from . import random as _random
from ._grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by `gradcheck` when analytic and numeric gradients disagree."""


def _float64_copy(x):
    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor(x.numpy().astype(np.float64), requires_grad=x.requires_grad, dtype=np.float64)
    return x


def _outputs(result):
    return result if isinstance(result, (tuple, list)) else (result,)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the analytic gradients of `fn` against central differences.

    `inputs` is a sequence; every floating Tensor with `requires_grad` is checked. float32
    inputs are checked on float64 copies. Returns True or raises GradcheckError.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = [_float64_copy(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    rng_state = _random.get_state()  # replay the same random draws (dropout masks) on every call

    def run():
        _random.set_state(rng_state)
        return _outputs(fn(*inputs))

    outs = run()
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in outs]

    def objective(outputs):
        return sum(float(np.sum(o.numpy().astype(np.float64) * r)) for o, r in zip(outputs, weights))

    # analytic: backward of sum(out * R) is backward(R) on every output
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    wanted = [(o, r) for o, r in zip(outs, weights) if o.requires_grad]
    for k, (o, r) in enumerate(wanted):     # outputs may share nodes: keep them for the next one
        o.backward(r.astype(o.dtype), retain_graph=k < len(wanted) - 1)

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else np.asarray(x.grad, dtype=np.float64)
        numeric = np.zeros(x.shape)
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs the input in place
        with no_grad():
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = objective(run())
                flat[j] = orig - eps
                minus = objective(run())
                flat[j] = orig
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(err > 0) or not np.all(np.isfinite(analytic)):
            bad = np.where(np.isfinite(err), err, np.inf)
            k = np.unravel_index(int(np.argmax(bad)), x.shape) if x.ndim else ()
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) has a wrong gradient; worst element "
                f"{tuple(int(v) for v in k)}: analytic {analytic[k]:.8g}, numeric {numeric[k]:.8g} "
                f"(atol={atol}, rtol={rtol}, eps={eps})")
    return True
