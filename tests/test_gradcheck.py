"""mc.gradcheck itself: it must pass right gradients and catch wrong ones, loudly and precisely."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F


def t64(a, grad=True):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


class ScaledSquare(mc.Function):
    """y = c * x**2, with the backward's factor chosen by the test to be right or wrong."""
    factor = 2.0

    @staticmethod
    def forward(ctx, x, c):
        ctx.save_for_backward(x, c)
        return c * x * x

    @staticmethod
    def backward(ctx, g):
        x, c = ctx.saved
        return ScaledSquare.factor * c * x * g, x * x * g


def test_right_gradient_passes_for_every_input():
    x, c = t64([0.5, -1.2, 2.0]), t64([1.5, 0.7, -0.3])
    ScaledSquare.factor = 2.0
    assert mc.gradcheck(lambda a, b: ScaledSquare.apply(a, b), [x, c]) is True


def test_wrong_gradient_is_caught_with_input_element_and_values():
    x, c = t64([0.5, -1.2, 2.0]), t64([1.5, 0.7, -0.3])
    ScaledSquare.factor = 2.2
    try:
        with pytest.raises(mc.GradcheckError, match=r"input 0 .*worst element \(\d+,\).*analytic .* numeric"):
            mc.gradcheck(lambda a, b: ScaledSquare.apply(a, b), [x, c])
    finally:
        ScaledSquare.factor = 2.0
    assert issubclass(mc.GradcheckError, RuntimeError)


def test_the_second_input_is_checked_too():
    class BadSecond(mc.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved
            return g * b, g * b  # wrong for b

    with pytest.raises(mc.GradcheckError, match="input 1"):
        mc.gradcheck(lambda a, b: BadSecond.apply(a, b), [t64([1.0, 2.0]), t64([3.0, -1.0])])


class ZeroBackwardSoftmax(mc.Function):
    """A softmax whose backward returns zeros: invisible to a plain-sum check."""

    @staticmethod
    def forward(ctx, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        return np.zeros_like(g)


def test_zero_backward_softmax_is_caught_because_R_is_random():
    x = t64(np.random.default_rng(0).standard_normal((3, 4)))
    with pytest.raises(mc.GradcheckError):
        mc.gradcheck(lambda a: ZeroBackwardSoftmax.apply(a), [x])
    # the reason for R: the plain sum of a softmax is constant, so its true gradient IS zero
    y = ZeroBackwardSoftmax.apply(x)
    assert np.allclose(y.numpy().sum(axis=-1), 1.0)


def test_float32_inputs_are_checked_in_float64_and_left_untouched():
    x = mc.Tensor(np.array([0.3, -0.7, 1.1]), requires_grad=True)
    before = x.numpy()
    assert mc.gradcheck(lambda a: (a * a).exp(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.dtype == np.float32


def test_inputs_without_requires_grad_and_non_tensors_pass_through():
    x, w = t64([1.0, 2.0]), t64([3.0, 4.0], grad=False)
    assert mc.gradcheck(lambda a, b, k: (a * b) ** k, [x, w, 2])
    with pytest.raises(ValueError, match="nothing to check"):
        mc.gradcheck(lambda a: a * 2, [t64([1.0], grad=False)])


def test_random_ops_replay_the_same_draws():
    mc.manual_seed(0)
    x = t64(np.linspace(-1, 1, 20))
    assert mc.gradcheck(lambda a: F.dropout(a, p=0.5, training=True), [x])


def test_tuple_outputs_are_all_checked():
    x = t64([0.5, 1.5, -2.0, 0.25])
    assert mc.gradcheck(lambda a: (a * 2, a.exp()), [x])
