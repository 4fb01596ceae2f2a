"""minicnn.optim: each optimiser against PyTorch's documented algorithm written out step by step
with plain Python floats, plus groups, validation, zero_grad and state dicts."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn, optim

P0 = [1.0, -2.0, 0.5]
GRADS = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.7], [-0.4, 0.2, 0.9], [1.5, -0.5, 0.05]]


def run(make_opt, dtype=np.float64, grads=GRADS):
    p = nn.Parameter(np.array(P0, dtype=dtype), dtype=dtype)
    opt = make_opt([p])
    history = []
    for g in grads:
        p.grad = np.array(g, dtype=dtype)
        opt.step()
        history.append(p.data.copy())
    return history, p, opt


# ---- the algorithms, one element at a time, with Python floats --------------------------------
def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    out, ps, bufs = [], list(P0), [None] * len(P0)
    for g_t in GRADS:
        for i in range(len(ps)):
            g = g_t[i] + weight_decay * ps[i]
            if momentum != 0:
                bufs[i] = g if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * g
        out.append(list(ps))
    return out


def adam_reference(lr, b1, b2, eps, weight_decay=0.0, amsgrad=False, decoupled=False):
    out, ps = [], list(P0)
    m, v, vmax = [0.0] * 3, [0.0] * 3, [0.0] * 3
    for t, g_t in enumerate(GRADS, start=1):
        for i in range(3):
            g = g_t[i]
            if decoupled:
                ps[i] = ps[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = max(vmax[i], v[i])
            v_used = vmax[i] if amsgrad else v[i]
            m_hat_step = lr / (1 - b1 ** t)
            denom = math.sqrt(v_used) / math.sqrt(1 - b2 ** t) + eps
            ps[i] = ps[i] - m_hat_step * m[i] / denom
        out.append(list(ps))
    return out


def rmsprop_reference(lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    out, ps = [], list(P0)
    sq, ga, buf = [0.0] * 3, [0.0] * 3, [0.0] * 3
    for g_t in GRADS:
        for i in range(3):
            g = g_t[i] + weight_decay * ps[i]
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g
            if centered:
                ga[i] = alpha * ga[i] + (1 - alpha) * g
                denom = math.sqrt(sq[i] - ga[i] ** 2) + eps
            else:
                denom = math.sqrt(sq[i]) + eps
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / denom
                ps[i] = ps[i] - lr * buf[i]
            else:
                ps[i] = ps[i] - lr * g / denom
        out.append(list(ps))
    return out


def assert_trajectory(got, expected, rtol=1e-12):
    assert len(got) == len(expected)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-14, err_msg=f"step {step + 1}")


# ---- SGD ---------------------------------------------------------------------------------------------
def test_sgd_plain_first_step_by_hand():
    history, _, _ = run(lambda ps: optim.SGD(ps, lr=0.1))
    np.testing.assert_allclose(history[0], [1.0 - 0.05, -2.0 + 0.1, 0.5 - 0.2])


def test_sgd_momentum_first_step_is_the_gradient_without_dampening():
    # step 1: buf = g (dampening is not applied on the first step, as PyTorch)
    history, _, opt = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5), grads=GRADS[:2])
    np.testing.assert_allclose(history[0], [1.0 - 0.1 * 0.5, -2.0 + 0.1, 0.5 - 0.1 * 2.0])
    # step 2: buf = 0.9 * g1 + 0.5 * g2
    buf2 = [0.9 * 0.5 + 0.5 * 0.1, 0.9 * -1.0 + 0.5 * 0.3, 0.9 * 2.0 + 0.5 * -0.7]
    np.testing.assert_allclose(history[1], [h - 0.1 * b for h, b in zip(history[0], buf2)])
    np.testing.assert_allclose(next(iter(opt.state.values()))["momentum_buffer"], buf2)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.01, momentum=0.9, weight_decay=5e-4),
    dict(lr=0.01, momentum=0.8, weight_decay=0.1, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
])
def test_sgd_matches_pytorch_algorithm(kw):
    history, _, _ = run(lambda ps: optim.SGD(ps, **kw))
    assert_trajectory(history, sgd_reference(**kw))


def test_sgd_maximize_ascends():
    history, _, _ = run(lambda ps: optim.SGD(ps, lr=0.1, maximize=True), grads=GRADS[:1])
    np.testing.assert_allclose(history[0], [1.05, -2.1, 0.7])


# ---- Adam, AdamW --------------------------------------------------------------------------------------
def test_adam_first_step_moves_every_element_by_about_lr():
    # t=1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g)
    history, _, _ = run(lambda ps: optim.Adam(ps, lr=0.01), grads=GRADS[:1])
    np.testing.assert_allclose(np.array(history[0]) - P0, [-0.01, 0.01, -0.01], rtol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(lr=0.1, betas=(0.8, 0.99)),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.05, amsgrad=True),
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.01, amsgrad=True),
])
def test_adam_matches_pytorch_algorithm(kw):
    full = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False) | kw
    history, _, opt = run(lambda ps: optim.Adam(ps, **kw))
    (b1, b2) = full["betas"]
    assert_trajectory(history, adam_reference(full["lr"], b1, b2, full["eps"], full["weight_decay"], full["amsgrad"]))
    state = next(iter(opt.state.values()))
    assert state["step"] == len(GRADS)
    assert ("max_exp_avg_sq" in state) == full["amsgrad"]


@pytest.mark.parametrize("kw", [dict(), dict(lr=0.05, weight_decay=0.3), dict(lr=0.05, amsgrad=True)])
def test_adamw_decouples_weight_decay(kw):
    full = dict(lr=1e-3, weight_decay=1e-2, amsgrad=False) | kw
    history, _, opt = run(lambda ps: optim.AdamW(ps, **kw))
    assert opt.param_groups[0]["weight_decay"] == full["weight_decay"]
    assert_trajectory(history, adam_reference(full["lr"], 0.9, 0.999, 1e-8, full["weight_decay"],
                                              full["amsgrad"], decoupled=True))
    coupled, _, _ = run(lambda ps: optim.Adam(ps, **full))
    assert not np.allclose(history[-1], coupled[-1], rtol=1e-9, atol=0)   # a different rule


# ---- RMSprop --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [
    dict(),
    dict(lr=0.001, alpha=0.9),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.01, centered=True),
    dict(lr=0.01, alpha=0.95, eps=1e-4, weight_decay=0.05, momentum=0.5, centered=True),
])
def test_rmsprop_matches_pytorch_algorithm(kw):
    full = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False) | kw
    history, _, _ = run(lambda ps: optim.RMSprop(ps, **kw))
    assert_trajectory(history, rmsprop_reference(**full))


# ---- mechanics -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True, weight_decay=0.01),
])
def test_float32_parameters_stay_float32_in_place(make):
    history, p, opt = run(make, dtype=np.float32)
    assert p.dtype == np.float32 and all(h.dtype == np.float32 for h in history)
    for value in opt.state[p].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32
    ref, _, _ = run(make, dtype=np.float64)
    np.testing.assert_allclose(history[-1], ref[-1], rtol=1e-5, atol=1e-6)


def test_update_is_in_place_on_the_parameter_array():
    p = nn.Parameter(np.ones(2, np.float32))
    arr = p.data
    opt = optim.SGD([p], lr=0.5)
    p.grad = np.ones(2, np.float32)
    opt.step()
    assert p.data is arr
    np.testing.assert_array_equal(arr, [0.5, 0.5])


def test_step_skips_parameters_without_grad_and_zero_grad_sets_none():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, [1, 1])
    assert b not in opt.state and a in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    a.grad = np.ones(2, np.float32)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0, 0])


def test_param_groups_with_their_own_settings_and_add_param_group():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = optim.SGD([{"params": net[0].parameters()}, {"params": net[1].parameters(), "lr": 1.0}],
                    lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    for p in net.parameters():
        p.grad = np.ones(p.shape, np.float32)
    before = [p.numpy() for p in net.parameters()]
    opt.step()
    for p, old, lr in zip(net.parameters(), before, [0.1, 0.1, 1.0, 1.0]):
        np.testing.assert_allclose(p.data, old - lr, rtol=1e-6)
    extra = nn.Parameter(np.zeros(3))
    opt.add_param_group({"params": extra, "lr": 0.01})
    assert opt.param_groups[-1]["params"] == [extra] and opt.param_groups[-1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [extra]})


@pytest.mark.parametrize("make, match", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "SGD: Invalid learning rate: -0.1"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "Invalid momentum value: -1"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "Adam: Invalid beta parameter at index 0: 1.0"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (lambda ps: optim.AdamW(ps, eps=-1), "AdamW: Invalid epsilon value"),
    (lambda ps: optim.RMSprop(ps, alpha=-0.5), "RMSprop: Invalid alpha value"),
    (lambda ps: optim.RMSprop(ps, lr=-1), "Invalid learning rate"),
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_bad_hyper_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter(np.zeros(2))])


def test_params_must_be_tensors_in_an_ordered_collection():
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD([{"params": {nn.Parameter(np.zeros(2))}}], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(nn.Parameter(np.zeros(2)), lr=0.1)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.05),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
])
def test_state_dict_round_trip_through_mc_save_resumes_identically(make, tmp_path):
    full, _, _ = run(make, grads=GRADS)
    _, p, opt = run(make, grads=GRADS[:2])
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and 0 in sd["state"]
    mc.save({"optimizer": sd, "param": p.numpy()}, tmp_path / "opt.npz")
    loaded = mc.load(tmp_path / "opt.npz")
    p2 = nn.Parameter(loaded["param"], dtype=np.float64)
    opt2 = make([p2])
    opt2.param_groups[0]["lr"] = 123.0                 # overwritten by the loaded settings
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    resumed = []
    for g in GRADS[2:]:
        p2.grad = np.array(g)
        opt2.step()
        resumed.append(p2.data.copy())
    assert_trajectory(resumed, full[2:], rtol=0)       # bit-identical continuation


def test_state_dict_is_a_copy_and_load_checks_group_sizes():
    _, p, opt = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), grads=GRADS[:1])
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][0] = 1e9
    assert opt.state[p]["momentum_buffer"][0] != 1e9
    other = optim.SGD([nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="parameter group 0 has 1 parameters, the optimizer's has 2"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="has 1 parameter groups, the optimizer has 2"):
        optim.SGD([{"params": [nn.Parameter(np.zeros(3))]}, {"params": [nn.Parameter(np.zeros(1))]}],
                  lr=0.1).load_state_dict(opt.state_dict())


def test_load_state_dict_is_all_or_nothing():
    """A state naming a parameter no group lists is refused and the optimiser stays as it was."""
    _, p, opt = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), grads=GRADS[:1])
    buffer = opt.state[p]["momentum_buffer"].copy()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = sd["state"][0]["momentum_buffer"] + 1   # would be copied...
    sd["state"][5] = {"momentum_buffer": np.zeros(3)}                            # ...but this fails
    sd["param_groups"][0]["lr"] = 7.0
    with pytest.raises(ValueError, match="state for parameter 5, which none of its parameter groups lists"):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"], buffer)
    assert opt.param_groups[0]["lr"] == 0.1


def test_training_a_tiny_linear_model_reduces_the_loss():
    mc.manual_seed(0)
    rng = np.random.default_rng(0)
    x = mc.Tensor(rng.standard_normal((32, 3)).astype(np.float32))
    y = mc.Tensor((x.data @ np.array([[1.0], [-2.0], [0.5]], np.float32)) + 0.3)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(model.weight.data.ravel(), [1.0, -2.0, 0.5], atol=1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_optim_kernels_equal_the_reference(dtype):
    """kernels/cpu/optim.py (one fused pass per parameter) against the NumPy reference, for every
    switch of SGD and Adam, over three steps; a non-contiguous gradient takes the reference's path."""
    from minicnn.kernels.cpu import optim as fast
    from minicnn.kernels.reference import optim as ref
    rng = np.random.default_rng(7)
    # float32: the kernel may fuse a multiply and an add (fastmath "contract"): last-bit differences
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for nesterov, wd, maximize, damp in [(False, 0.0, False, 0.0), (True, 1e-2, False, 0.0), (False, 1e-2, True, 0.3)]:
        p0 = rng.standard_normal((40, 50)).astype(dtype)
        ps, bufs = [p0.copy(), p0.copy()], [np.empty_like(p0), np.empty_like(p0)]
        for step in range(3):
            g = rng.standard_normal(p0.shape).astype(dtype)
            for k, (p, buf) in zip((ref, fast), zip(ps, bufs)):
                k.sgd_update(p, g, buf, 0.1, 0.9, damp, wd, nesterov, maximize, step == 0)
            np.testing.assert_allclose(ps[1], ps[0], **tol)
    for decoupled, amsgrad, wd in [(False, False, 0.0), (True, True, 1e-2), (False, True, 1e-2)]:
        p0 = rng.standard_normal((30, 7)).astype(dtype)
        state = [[p0.copy()] + [np.zeros_like(p0) for _ in range(3)] for _ in range(2)]
        for step in range(1, 4):
            g = rng.standard_normal(p0.shape).astype(dtype)
            g = g if step < 3 else np.asfortranarray(g)   # the last step: another layout
            for k, (p, m, v, vmax) in zip((ref, fast), state):
                k.adam_update(p, g, m, v, vmax if amsgrad else None, 1e-2, 0.9, 0.999, 1e-8, wd,
                              decoupled, amsgrad, False, step)
            for a, b in zip(state[1], state[0]):
                np.testing.assert_allclose(a, b, **tol)
