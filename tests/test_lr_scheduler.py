"""optim.lr_scheduler: each schedule's learning-rate sequence against hand-written lists."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn, optim
from minicnn.optim import lr_scheduler as S


def make_opt(lr=0.1, groups=1):
    ps = [nn.Parameter(np.zeros(1)) for _ in range(groups)]
    return optim.SGD([{"params": [p]} for p in ps], lr=lr, momentum=0.9)


def lrs(sched, opt, epochs, metrics=None):
    """The lr used in epoch 0, 1, ..., epochs (step() once per epoch, after optimizer.step())."""
    out = [opt.param_groups[0]["lr"]]
    for e in range(epochs):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[e])
        out.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr()[0] == out[-1]
    return out


def test_steplr_sequence():
    opt = make_opt(0.1)
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1]
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
    np.testing.assert_allclose(lrs(sched, opt, 9), expected, rtol=1e-12)
    assert sched.last_epoch == 9


def test_steplr_default_gamma_and_alexnet_style_divide_by_ten():
    opt = make_opt(0.01)
    got = lrs(S.StepLR(opt, step_size=2), opt, 6)
    np.testing.assert_allclose(got, [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4, 1e-5], rtol=1e-12)


def test_multisteplr_sequence_with_repeated_milestone():
    opt = make_opt(1.0)
    sched = S.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.1)
    expected = [1.0, 1.0, 0.1, 0.1, 0.1, 0.001, 0.001, 0.001]
    np.testing.assert_allclose(lrs(sched, opt, 7), expected, rtol=1e-12)


def test_cosine_annealing_closed_form_values():
    opt = make_opt(0.1)
    sched = S.CosineAnnealingLR(opt, T_max=4, eta_min=0.02)
    # eta_min + (0.1 - 0.02) * (1 + cos(pi * t / 4)) / 2 for t = 0 .. 8
    c = math.sqrt(2) / 2
    expected = [0.1, 0.02 + 0.04 * (1 + c), 0.06, 0.02 + 0.04 * (1 - c), 0.02,
                0.02 + 0.04 * (1 - c), 0.06, 0.02 + 0.04 * (1 + c), 0.1]
    np.testing.assert_allclose(lrs(sched, opt, 8), expected, rtol=1e-12)


def test_lambdalr_and_per_group_base_lrs():
    opt = make_opt(0.1, groups=2)
    opt.param_groups[1]["lr"] = 1.0
    sched = S.LambdaLR(opt, lambda e: 0.5 ** e)
    assert sched.base_lrs == [0.1, 1.0]
    for _ in range(3):
        opt.step()
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.1 / 8, 1.0 / 8], rtol=1e-12)


def test_scheduler_changes_every_group_and_keeps_initial_lr():
    opt = make_opt(0.1, groups=2)
    opt.param_groups[1]["lr"] = 0.5
    sched = S.StepLR(opt, 1, gamma=0.1)
    opt.step()
    sched.step()
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.01, 0.05], rtol=1e-12)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_reduce_on_plateau_min_mode_patience():
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    losses = [1.0, 0.9, 0.9, 0.95, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85]
    # bad epochs: 0.9(1) 0.95(2) 0.91(3 > 2: reduce, reset) 0.8 best; then 0.85 x3 -> reduce at the third
    expected = [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert lrs(sched, opt, len(losses), losses) == expected


def test_reduce_on_plateau_max_mode_with_cooldown_for_validation_accuracy():
    opt = make_opt(0.01)
    sched = S.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=1, cooldown=2)
    acc = [0.50, 0.60, 0.60, 0.59, 0.58, 0.57, 0.56, 0.55, 0.70, 0.69, 0.68]
    # 0.60 again (bad 1), 0.59 (bad 2 > 1): reduce to 1e-3, cooldown 2 epochs (0.58, 0.57 not counted),
    # 0.56 bad 1, 0.55 bad 2: reduce to 1e-4, cooldown; 0.70 is better; 0.69 cooldown; 0.68 cooldown
    expected = [0.01, 0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4]
    np.testing.assert_allclose(lrs(sched, opt, len(acc), acc), expected, rtol=1e-12)
    assert sched.best == 0.70


def test_reduce_on_plateau_threshold_modes_and_min_lr():
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0, threshold=0.1, threshold_mode="abs",
                                min_lr=0.3)
    # improvement needs loss < best - 0.1: 1.0 best, 0.95 bad -> 0.5, 0.85 better, 0.8 bad -> 0.3 (min_lr)
    assert lrs(sched, opt, 5, [1.0, 0.95, 0.85, 0.8, 0.5]) == [1.0, 1.0, 0.5, 0.5, 0.3, 0.3]
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0, threshold=0.1)   # rel
    # improvement needs acc > best * 1.1: 1.0 best, 1.05 bad, 1.2 better
    assert lrs(sched, opt, 3, [1.0, 1.05, 1.2]) == [1.0, 1.0, 0.5, 0.5]


def test_reduce_on_plateau_accepts_a_tensor_metric_and_validates():
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, patience=0)
    sched.step(mc.Tensor(np.array(2.0)))
    assert sched.best == 2.0
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode 'up' is unknown"):
        S.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold_mode 'x' is unknown"):
        S.ReduceLROnPlateau(opt, threshold_mode="x")
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        S.StepLR(opt, 0)


@pytest.mark.parametrize("make", [
    lambda o: S.StepLR(o, 2, gamma=0.5),
    lambda o: S.MultiStepLR(o, [1, 3], gamma=0.5),
    lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
])
def test_state_dict_round_trip_through_mc_save(make, tmp_path):
    opt = make_opt(0.1)
    full = lrs(make(opt), opt, 6)
    opt = make_opt(0.1)
    sched = make(opt)
    lrs(sched, opt, 3)
    mc.save({"scheduler": sched.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "s.npz")
    ck = mc.load(tmp_path / "s.npz")
    opt2 = make_opt(0.1)
    sched2 = make(opt2)
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert sched2.last_epoch == 3
    assert lrs(sched2, opt2, 3)[1:] == full[4:]


def test_plateau_state_dict_round_trip(tmp_path):
    opt = make_opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="max", patience=1)
    for m in [0.5, 0.4]:
        sched.step(m)
    mc.save(sched.state_dict(), tmp_path / "p.npz")
    sched2 = S.ReduceLROnPlateau(make_opt(1.0), mode="max", patience=1)
    sched2.load_state_dict(mc.load(tmp_path / "p.npz"))
    assert (sched2.best, sched2.num_bad_epochs, sched2.last_epoch) == (0.5, 1, 2)
