"""minicnn.nn.init: PyTorch's fan rules, gains, and the statistics of each initialiser."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.nn import init


def big(shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype), dtype=dtype)


def test_fan_in_and_fan_out_follow_pytorch():
    assert init._calculate_fan_in_and_fan_out(big((64, 3, 11, 11))) == (3 * 121, 64 * 121)
    assert init._calculate_fan_in_and_fan_out(big((10, 20))) == (20, 10)
    assert init._calculate_fan_in_and_fan_out(big((6, 4, 5))) == (20, 30)
    with pytest.raises(ValueError, match="fewer than 2 dimensions, got shape \\(5,\\)"):
        init.kaiming_uniform_(big((5,)))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_kaiming_normal_std_is_sqrt_two_over_fan_in():
    mc.manual_seed(0)
    w = init.kaiming_normal_(big((256, 64, 3, 3)), nonlinearity="relu")
    std = math.sqrt(2 / (64 * 9))
    assert abs(w.data.std() / std - 1) < 0.01 and abs(w.data.mean()) < 0.01 * std
    w = init.kaiming_normal_(big((256, 64, 3, 3)), mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() / math.sqrt(2 / (256 * 9)) - 1) < 0.01


def test_kaiming_uniform_bound():
    mc.manual_seed(1)
    w = init.kaiming_uniform_(big((128, 50)), a=0, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 50)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    w = init.kaiming_uniform_(big((128, 50)), a=math.sqrt(5))    # the default layers' choice
    assert np.abs(w.data).max() <= 1 / math.sqrt(50) and np.abs(w.data).max() > 0.99 / math.sqrt(50)


def test_xavier_uniform_is_keras_glorot_uniform_and_xavier_normal_std():
    mc.manual_seed(2)
    w = init.xavier_uniform_(big((100, 300)))
    limit = math.sqrt(6 / (300 + 100))
    assert np.abs(w.data).max() <= limit and np.abs(w.data).max() > 0.99 * limit
    w = init.xavier_uniform_(big((100, 300)), gain=2.0)
    assert np.abs(w.data).max() <= 2 * limit and np.abs(w.data).max() > 1.98 * limit
    w = init.xavier_normal_(big((200, 50, 3, 3)), gain=init.calculate_gain("tanh"))
    std = 5 / 3 * math.sqrt(2 / (50 * 9 + 200 * 9))
    assert abs(w.data.std() / std - 1) < 0.01


def test_simple_fills_in_place_keep_dtype_and_return_the_tensor():
    t = big((3, 4), np.float64)
    arr = t.data
    assert init.constant_(t, 0.25) is t and t.data is arr and t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.full((3, 4), 0.25))
    np.testing.assert_array_equal(init.ones_(t).data, np.ones((3, 4)))
    np.testing.assert_array_equal(init.zeros_(t).data, np.zeros((3, 4)))
    mc.manual_seed(3)
    u = init.uniform_(big((100, 100)), -0.5, 2.0)
    assert u.data.min() >= -0.5 and u.data.max() < 2.0 and abs(u.data.mean() - 0.75) < 0.02
    n = init.normal_(big((100, 100)), mean=1.0, std=0.1)
    assert abs(n.data.mean() - 1.0) < 0.005 and abs(n.data.std() - 0.1) < 0.005
    tn = init.trunc_normal_(big((100, 100)), std=1.0, a=-1.0, b=1.0)
    assert tn.data.min() >= -1.0 and tn.data.max() <= 1.0
    raw = np.zeros((2, 2), np.float32)
    assert init.ones_(raw) is raw and raw.sum() == 4


def test_init_is_repeatable_with_manual_seed_or_a_generator():
    mc.manual_seed(5)
    a = init.kaiming_normal_(big((4, 4))).numpy()
    mc.manual_seed(5)
    b = init.kaiming_normal_(big((4, 4))).numpy()
    np.testing.assert_array_equal(a, b)
    c = init.kaiming_normal_(big((4, 4)), generator=np.random.default_rng(9)).numpy()
    d = init.kaiming_normal_(big((4, 4)), generator=np.random.default_rng(9)).numpy()
    np.testing.assert_array_equal(c, d)


def test_bad_mode_and_bad_target_are_clear_errors():
    with pytest.raises(ValueError, match="mode 'fan_avg' is not supported"):
        init.kaiming_normal_(big((3, 3)), mode="fan_avg")
    with pytest.raises(TypeError, match="expected a Tensor, Parameter or NumPy array, got list"):
        init.zeros_([1.0, 2.0])


def test_model_apply_with_custom_init():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(8, 2))

    def init_weights(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(m.weight, nonlinearity="relu")
            init.zeros_(m.bias)

    net.apply(init_weights)
    assert all(not m.bias.data.any() for m in (net[0], net[2]))
