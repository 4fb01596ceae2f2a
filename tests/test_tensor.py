"""The autograd core: dtypes, every Tensor operator forward and backward, the graph walk."""
import types
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc


def t64(a, grad=True):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


# ---- dtypes and construction --------------------------------------------------------------
def test_floats_default_to_float32_and_float64_is_kept_when_asked():
    assert mc.Tensor(1.5).dtype == np.float32
    assert mc.Tensor([1.0, 2.0]).dtype == np.float32
    assert mc.Tensor(np.zeros(3)).dtype == np.float32
    assert mc.Tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    assert mc.Tensor(np.zeros(3), dtype="float64").dtype == np.float64
    assert mc.tensor([1.0], dtype=np.float64).dtype == np.float64


def test_integer_data_stays_integer_and_cannot_require_grad():
    t = mc.Tensor(np.arange(4))
    assert t.dtype.kind == "i"
    assert mc.Tensor([True, False]).dtype == np.bool_
    with pytest.raises(TypeError, match="floating-point"):
        mc.Tensor(np.arange(3), requires_grad=True)


def test_mixing_float32_and_float64_raises_naming_both():
    a = mc.Tensor(np.ones(3), requires_grad=True)
    b = mc.Tensor(np.ones(3), dtype=np.float64)
    with pytest.raises(TypeError, match="float32 and float64"):
        a + b
    with pytest.raises(TypeError, match="float32 and float64"):
        a @ b


def test_python_scalars_and_int_tensors_take_the_tensors_dtype():
    a = mc.Tensor(np.ones(3), dtype=np.float64)
    assert (a * 2).dtype == np.float64
    assert (2.5 - a).dtype == np.float64
    b = mc.Tensor(np.ones(3))
    assert (b / 3.0).dtype == np.float32
    assert (b + mc.Tensor(np.arange(3))).dtype == np.float32
    assert (np.arange(3) + b).dtype == np.float32


def test_properties_and_numpy_copy():
    t = mc.Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.device == "cpu"
    n = t.numpy()
    n[0, 0] = 99
    assert t.data[0, 0] == 0
    assert mc.Tensor(3.0).item() == 3.0
    assert "Tensor(" in repr(t)


def test_constructors_and_seed():
    assert mc.zeros((2, 3)).shape == (2, 3) and mc.zeros(2, 3).dtype == np.float32
    assert float(mc.ones(4).sum().item()) == 4.0
    mc.manual_seed(7)
    a = mc.randn(3, 4).numpy()
    mc.manual_seed(7)
    b = mc.randn(3, 4).numpy()
    np.testing.assert_array_equal(a, b)
    c = mc.randn(2, 2, rng=np.random.default_rng(0)).numpy()
    np.testing.assert_array_equal(c, np.random.default_rng(0).standard_normal((2, 2)).astype(np.float32))


# ---- each operator: forward equals NumPy, backward passes gradcheck --------------------------
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_binary_operators_broadcast_forward_and_backward(name, shapes, seed):
    ours, ref = BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.uniform(0.5, 2.0, sa)  # positive and away from 0: safe for div and pow
    b = rng.uniform(0.5, 2.0, sb)
    out = ours(t64(a), t64(b))
    np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-12)
    assert out.shape == np.broadcast_shapes(sa, sb)
    assert mc.gradcheck(ours, [t64(a), t64(b)])


@pytest.mark.parametrize("expr", [
    lambda a: -a, lambda a: a.exp(), lambda a: a.log(), lambda a: a.sqrt(), lambda a: a.abs(),
    lambda a: 3.0 - a, lambda a: 2.0 / a, lambda a: a ** 3, lambda a: 2.0 ** a, lambda a: a.T,
    lambda a: a.transpose(1, 0, 2), lambda a: a.transpose(), lambda a: a.reshape(4, 6),
    lambda a: a.reshape((-1,)), lambda a: a.sum(), lambda a: a.sum(axis=1),
    lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.mean(), lambda a: a.mean(axis=-1),
    lambda a: a.max(), lambda a: a.max(axis=0), lambda a: a.max(axis=(1, 2), keepdims=True),
    lambda a: a.min(axis=2), lambda a: a[0], lambda a: a[:, 1:3, ::2], lambda a: a[..., -1],
    lambda a: a[[0, 1, 0]], lambda a: a[np.array([1, 1]), :, np.array([0, 3])],
    lambda a: a[a.data > 1.0], lambda a: a.astype(np.float64) * 2,
])
def test_unary_operators_gradcheck(expr):
    rng = np.random.default_rng(3)
    a = rng.permutation(np.linspace(0.3, 2.0, 24)).reshape(2, 3, 4)  # positive, tie-free
    assert mc.gradcheck(expr, [t64(a)])


def test_unary_forward_matches_numpy():
    a = np.random.default_rng(0).uniform(0.5, 2, (2, 3, 4))
    t = t64(a)
    np.testing.assert_allclose(t.exp().numpy(), np.exp(a))
    np.testing.assert_allclose(t.log().numpy(), np.log(a))
    np.testing.assert_allclose(t.max(axis=1).numpy(), a.max(axis=1))
    np.testing.assert_allclose(t.mean(axis=(0, 2)).numpy(), a.mean(axis=(0, 2)))
    np.testing.assert_allclose(t.transpose(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_allclose(t[1, :, [0, 2]].numpy(), a[1, :, [0, 2]])
    assert t.sum().shape == () and t.mean().shape == ()


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 2))])
def test_matmul_all_ranks(sa, sb):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((t64(a) @ t64(b)).numpy(), a @ b, rtol=1e-12)
    assert mc.gradcheck(lambda x, y: x @ y, [t64(a), t64(b)])
    assert mc.gradcheck(lambda x: x @ b, [t64(a)])  # a plain array operand


def test_comparisons_give_bool_without_grad():
    a = t64([1.0, 2.0, 3.0])
    for r in (a < 2, a <= 2, a > 2, a >= 2, a == 2, a != 2):
        assert r.dtype == np.bool_ and not r.requires_grad
    np.testing.assert_array_equal((a > 1.5).numpy(), [False, True, True])
    assert {a: 1}[a] == 1  # still hashable


def test_max_ties_share_the_gradient():
    a = t64([1.0, 3.0, 3.0])
    a.max().backward()
    np.testing.assert_allclose(a.grad, [0, 0.5, 0.5])


def test_repeated_index_receives_gradient_twice():
    a = t64([1.0, 2.0, 3.0])
    a[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(a.grad, [2, 0, 1])


# ---- the graph walk -----------------------------------------------------------------------
def test_diamond_graph_adds_both_paths():
    x = t64([2.0])
    y = x * 3
    z = y * y + y  # dz/dx = (2y + 1) * 3 = 39
    z.backward()
    np.testing.assert_allclose(x.grad, [39.0])


def test_gradients_accumulate_until_reset():
    x = t64([1.0, 2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_backward_frees_each_nodes_saved_arrays_as_the_walk_passes():
    """Once a node's backward has run, the arrays its forward kept are gone, before the walk
    reaches the nodes below it (the activations' memory, as in PyTorch); plain values stay."""
    kept, seen_below = [], []

    class Keeps(mc.Function):          # y = 2x, keeping a fresh array that only its ctx holds
        @staticmethod
        def forward(ctx, a):
            twice = a * 2
            kept.append(weakref.ref(twice))
            ctx.save_for_backward(twice)
            ctx.factor, ctx.extra = 2, [twice[:1]]
            ctx.state = types.SimpleNamespace(plan="kept", scratch=twice[1:])
            return twice.copy()

        @staticmethod
        def backward(ctx, g):
            (twice,) = ctx.saved
            assert twice is not None and ctx.extra is not None
            return g * ctx.factor

    class Below(mc.Function):          # the identity, looking up at Keeps' array as it runs
        @staticmethod
        def forward(ctx, a):
            return a.copy()

        @staticmethod
        def backward(ctx, g):
            seen_below.append(kept[0]())
            return g

    x = t64(np.arange(6.0))
    y = Keeps.apply(Below.apply(x))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.ones(6))
    assert seen_below == [None] and kept[0]() is None
    node = y._node
    assert node.freed and node.saved is None and node.extra is None and node.factor == 2
    assert node.state.plan == "kept" and node.state.scratch is None


def test_a_second_backward_through_saved_arrays_needs_retain_graph():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match=r"Mul\.backward: a backward already ran.*retain_graph=True"):
        y.backward()


def test_a_graph_that_saved_no_activation_runs_backward_twice_as_in_pytorch():
    """x * 3, x / 2, sums, reshapes and indexing keep numbers, shapes and index arrays only,
    which are not freed."""
    x = t64([1.0, 2.0])
    y = ((x * 3) / 2).reshape(2, 1)[[0, 1, 1]].sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0, 6.0])


def test_mul_and_div_keep_an_operand_only_for_the_other_ones_gradient():
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0], grad=False)
    assert (a * b)._node.saved[0] is None and (a / b)._node.saved[0] is None
    p, q = (b * a)._node.saved, (b / a)._node.saved
    assert p[0] is not None and p[1] is None and q[0] is not None
    y = (b / a).sum()
    y.backward()
    np.testing.assert_allclose(a.grad, -b.data / a.data ** 2)


def test_backward_needs_grad_for_non_scalar_and_checks_its_shape():
    x = t64(np.ones((2, 2)))
    y = x * 2
    with pytest.raises(RuntimeError, match="one-element"):
        y.backward()
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        y.backward(np.ones(3))
    y.backward(mc.Tensor(np.ones((2, 2)), dtype=np.float64))
    np.testing.assert_allclose(x.grad, 2 * np.ones((2, 2)))


def test_backward_on_a_tensor_without_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mc.Tensor([1.0]).sum().backward()


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = t64([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 5000])


def test_no_grad_records_nothing_as_context_and_decorator():
    x = t64([1.0])
    with mc.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf

    @mc.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert (x * 2).requires_grad and mc.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = t64([1.0])
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf


def test_retain_grad_keeps_an_intermediate_gradient():
    x = t64([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad, [6.0, 12.0])
    np.testing.assert_allclose(x.grad, [18.0, 36.0])


def test_an_activation_no_backward_saved_is_freed_after_the_forward():
    # the graph remembers where an input came from, not the tensor: relu saves its output, add
    # saves nothing, so the sum's output lives only as long as the user holds it (as in PyTorch)
    import gc
    import weakref
    x = t64(np.array([-1.0, 2.0]))
    h = x + 1
    gone = weakref.ref(h.data)
    y = mc.functional.relu(h)
    del h
    gc.collect()
    assert gone() is None
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, 6.0])  # d/dx relu(x+1)^2 = 2 relu(x+1) [x+1 > 0]


def test_intermediate_tensors_do_not_keep_grad_by_default():
    x = t64([1.0])
    y = x * 2
    (y * 3).sum().backward()
    assert y.grad is None and x.grad is not None


def test_astype_is_differentiable_and_casts_the_gradient_back():
    x = mc.Tensor(np.ones(3), requires_grad=True)
    y = x.astype(np.float64) * 2
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_float32_gradients_stay_float32():
    x = mc.Tensor(np.ones((2, 3)), requires_grad=True)
    ((x * 2).exp().sum(axis=0) @ np.ones(3)).backward()
    assert x.grad.dtype == np.float32


# ---- user-defined Functions ---------------------------------------------------------------
class Cube(mc.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return 3 * x ** 2 * g  # a bare array for a single input


class SplitHalves(mc.Function):
    """Two outputs: backward gets one gradient per output."""

    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.scale = scale
        n = x.shape[0] // 2
        return x[:n] * scale, x[n:] * 2 * scale

    @staticmethod
    def backward(ctx, g1, g2):
        return (np.concatenate([g1, 2 * g2]) * ctx.scale,)


def test_user_function_single_and_multi_output():
    x = t64([1.0, 2.0, 3.0, 4.0])
    assert mc.gradcheck(lambda t: Cube.apply(t), [x])
    assert mc.gradcheck(lambda t: SplitHalves.apply(t, scale=3.0), [x])
    a, b = SplitHalves.apply(x)
    a.sum().backward()  # b gets no gradient: its share is zeros
    np.testing.assert_allclose(x.grad, [1, 1, 0, 0])


def test_user_function_with_wrong_gradient_shape_is_reported():
    class Bad(mc.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return (g[:1],)

    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Bad.backward"):
        Bad.apply(x).sum().backward()


def test_leaves_never_share_a_gradient_array():
    # Add hands the same upstream array to both inputs; each leaf must own its .grad
    a = t64([1.0, 2.0])
    b = t64([3.0, 4.0])
    g = np.array([1.0, 1.0])
    (a + b).backward(g)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g) and not np.shares_memory(b.grad, g)
    a.grad *= 10  # in-place clipping of one gradient leaves the other alone
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    c = t64(np.ones((2, 3)))
    (c.reshape(6) * 1.0).backward(np.ones(6))  # a view of the upstream gradient is copied
    c.grad[0, 0] = 5
    assert (c * 2).sum().item() == 12.0


# ---- shape errors name both operands' shapes and what would fit ---------------------------------
@pytest.mark.parametrize("a, b, says", [
    ((2, 3), (4, 5), r"matmul: \(2, 3\) @ \(4, 5\): the left operand's last axis \(3\) must equal "
                     r"the right operand's second-to-last axis \(4\); a right operand of shape "
                     r"\(3, 5\) would fit"),
    ((3,), (4,), r"matmul: \(3,\) @ \(4,\): .*only axis \(4\); a right operand of shape \(3,\) would fit"),
    ((2, 2, 3), (7, 3), r"matmul: \(2, 2, 3\) @ \(7, 3\): .*\(3, 3\) would fit"),
    ((2, 4, 3), (5, 3, 6), r"matmul: \(2, 4, 3\) @ \(5, 3, 6\): the batch axes \(2,\) and \(5,\) do "
                           r"not broadcast \(.*axis -1 is 2 vs 5\)"),
    ((), (3,), r"matmul: \(\) @ \(3,\): both operands need at least one dimension"),
])
def test_matmul_shape_errors_name_both_shapes(a, b, says):
    with pytest.raises(ValueError, match=says):
        mc.ones(*a) @ mc.ones(*b)


def test_matmul_shapes_that_fit_still_work():
    assert (mc.ones(2, 3) @ mc.ones(3)).shape == (2,)
    assert (mc.ones(3) @ mc.ones(3, 4)).shape == (4,)
    assert (mc.ones(5, 2, 3) @ mc.ones(3, 4)).shape == (5, 2, 4)


@pytest.mark.parametrize("op, symbol", [
    (lambda a, b: a + b, r"\+"), (lambda a, b: a - b, "-"), (lambda a, b: a * b, r"\*"),
    (lambda a, b: a / b, "/"), (lambda a, b: a ** b, r"\*\*"), (lambda a, b: a < b, "<"),
    (lambda a, b: a == b, "=="),
])
def test_broadcast_errors_name_both_shapes_and_the_axis(op, symbol):
    with pytest.raises(ValueError, match=rf"\(2, 3\) {symbol} \(4, 5\): the shapes do not broadcast: "
                                         rf"aligned from the right, each axis must be equal or 1; "
                                         rf"axis -1 is 3 vs 5"):
        op(mc.ones(2, 3), mc.ones(4, 5))
    assert op(mc.ones(2, 3), mc.ones(1, 3)).shape == (2, 3)   # broadcasting itself is unchanged
