"""flatten, concat and pad2d: forward against plain NumPy, backward by gradcheck, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F


def t64(a, grad=True):
    return mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def test_flatten():
    x = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    assert F.flatten(t64(x)).shape == (2, 60)
    assert F.flatten(t64(x), start_axis=2).shape == (2, 3, 20)
    assert F.flatten(t64(x), start_axis=0).shape == (120,)
    np.testing.assert_array_equal(F.flatten(t64(x)).numpy(), x.reshape(2, -1))
    assert mc.gradcheck(lambda a: F.flatten(a), [t64(np.random.default_rng(0).standard_normal((2, 3, 2)))])
    with pytest.raises(ValueError, match="flatten: start_axis 4"):
        F.flatten(t64(x), start_axis=4)


def test_concat_forward_backward_and_errors():
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((2, c, 3, 3)) for c in (1, 3, 2)]
    out = F.concat([t64(p) for p in parts], axis=1)
    np.testing.assert_array_equal(out.numpy(), np.concatenate(parts, axis=1))
    assert mc.gradcheck(lambda a, b, c: F.concat([a, b, c], axis=1), [t64(p) for p in parts])
    assert mc.gradcheck(lambda a, b: F.concat([a, b], axis=-1), [t64(parts[0]), t64(parts[0])])
    with pytest.raises(ValueError, match=r"concat: shapes \(2, 1, 3, 3\) and \(2, 3, 4, 3\)"):
        F.concat([t64(parts[0]), t64(rng.standard_normal((2, 3, 4, 3)))], axis=1)
    with pytest.raises(TypeError, match="float32 and float64"):
        F.concat([t64(parts[0]), mc.Tensor(parts[0])])


@given(top=st.integers(0, 3), bottom=st.integers(0, 3), left=st.integers(0, 3), right=st.integers(0, 3))
def test_pad2d_matches_a_naive_copy(top, bottom, left, right):
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    out = F.pad2d(t64(x), (left, right, top, bottom), value=-1.5).numpy()
    expected = np.full((1, 2, 3 + top + bottom, 4 + left + right), -1.5)
    for n, c, h, w in np.ndindex(x.shape):
        expected[n, c, h + top, w + left] = x[n, c, h, w]
    np.testing.assert_array_equal(out, expected)


def test_pad2d_int_pair_gradient_and_errors():
    x = np.random.default_rng(2).standard_normal((2, 1, 3, 3))
    assert F.pad2d(t64(x), 1).shape == (2, 1, 5, 5)
    assert F.pad2d(t64(x), (1, 2)).shape == (2, 1, 5, 7)
    assert mc.gradcheck(lambda a: F.pad2d(a, (0, 1, 2, 1)), [t64(x)])
    with pytest.raises(ValueError, match="pad2d: padding must be non-negative"):
        F.pad2d(t64(x), -1)
    with pytest.raises(ValueError, match="pad2d: expected at least 2 dimensions"):
        F.pad2d(t64([1.0]), 1)
