"""minicnn.train: the loop learns, history and checkpoints are written, resume is exact,
Ctrl-C saves, a crashed checkpoint write keeps the old file, evaluate and ensemble_predict."""
import json
import os

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import data, metrics, nn, optim, train


class Tiny(nn.Module):
    """A small CNN for 16x16 Shapes: conv 3x3 -> ReLU -> max pool -> dropout -> linear."""

    def __init__(self, aux=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)  # uses the global RNG: resume must restore it
        self.fc = nn.Linear(6 * 8 * 8, 10)
        self.aux = nn.Linear(6 * 8 * 8, 10) if aux else None

    def forward(self, x):
        h = F.flatten(self.drop(self.pool(F.relu(self.conv(x)))), 1)
        if self.aux is not None and self.training:
            return self.fc(h), self.aux(h)
        return self.fc(h)


def three_classes(ds):
    """circle, cross and stripes only: a tiny subset a tiny model learns within seconds."""
    keep = np.isin(ds.labels, [0, 3, 4])
    return data.ArrayDataset(ds.images[keep], ds.labels[keep])


@pytest.fixture(scope="module")
def shapes():
    return (three_classes(data.Shapes(n=600, size=16, seed=3)),
            three_classes(data.Shapes(n=200, size=16, train=False, seed=3)))


def make_run(shapes, seed=0, loader_seed=None, lr=0.05, aux=False):
    """A freshly seeded model, optimiser, scheduler and loaders: what a new process would build."""
    train_set, val_set = shapes
    mc.manual_seed(seed)
    model = Tiny(aux=aux)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_loader = data.DataLoader(train_set, batch_size=32, shuffle=True, seed=loader_seed)
    val_loader = data.DataLoader(val_set, batch_size=64)
    return model, opt, sched, train_loader, val_loader


def test_the_loop_learns_a_tiny_shapes_subset():
    train_set = three_classes(data.Shapes(n=160, size=16, seed=3))  # 48 images
    mc.manual_seed(0)
    model = Tiny()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    hist = train.fit(model, opt, data.DataLoader(train_set, batch_size=16, shuffle=True),
                     epochs=25, quiet=True)
    assert hist[0]["train_loss"] > 1.5 and hist[-1]["train_loss"] < 0.4, hist
    assert hist[-1]["train_acc"] > 0.9
    assert hist[-1]["val_loss"] is None and hist[-1]["val_top1"] is None
    result = train.evaluate(model, data.DataLoader(train_set, batch_size=16))
    assert result.top1 > 0.9 and result.loss < 0.4


def test_fit_writes_history_checkpoint_and_curves(shapes, tmp_path):
    model, opt, sched, tl, vl = make_run(shapes)
    seen = []

    def on_epoch(trainer, event, logs):
        if event == "epoch_end":  # the checkpoint of this epoch is on disk already
            seen.append(train.load_checkpoint(tmp_path / "checkpoint.npz")["epoch"])

    hist = train.fit(model, opt, tl, vl, epochs=4, scheduler=sched, out_dir=tmp_path,
                     quiet=True, callbacks=[on_epoch], meta={"note": "tiny"})
    assert seen == [1, 2, 3, 4]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert [r["lr"] for r in hist] == pytest.approx([0.05, 0.025, 0.0125, 0.00625])
    on_disk = json.loads((tmp_path / "history.json").read_text())
    assert on_disk == json.loads(json.dumps(hist))
    assert set(on_disk[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_top1",
                               "val_top5", "lr", "seconds", "images_per_s"}
    assert all(0 <= r["val_top1"] <= r["val_top5"] <= 1 for r in on_disk)
    ckpt = train.load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["epoch"] == 4 and ckpt["interrupted"] is False
    assert ckpt["meta"] == {"note": "tiny"}
    assert ckpt["history"] == json.loads(json.dumps(hist))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(ckpt["model"][name], value)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


@pytest.mark.parametrize("loader_seed", [None, 11])
def test_resume_gives_exactly_the_uninterrupted_losses(shapes, tmp_path, loader_seed):
    # three epochs straight
    model, opt, sched, tl, vl = make_run(shapes, loader_seed=loader_seed)
    straight = train.fit(model, opt, tl, vl, epochs=3, scheduler=sched, quiet=True)
    straight_weights = model.state_dict()

    # one epoch, then a "new process": everything rebuilt with the same seed, resumed for two more
    model, opt, sched, tl, vl = make_run(shapes, loader_seed=loader_seed)
    train.fit(model, opt, tl, vl, epochs=1, scheduler=sched, out_dir=tmp_path, quiet=True, plot=False)
    mc.manual_seed(999)  # whatever happened in between must not matter
    model, opt, sched, tl, vl = make_run(shapes, seed=5, loader_seed=loader_seed)
    resumed = train.fit(model, opt, tl, vl, epochs=3, scheduler=sched, out_dir=tmp_path,
                        resume=tmp_path / "checkpoint.npz", quiet=True, plot=False)

    assert len(resumed) == 3
    for key in ("train_loss", "train_acc", "val_loss", "val_top1", "val_top5", "lr"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key  # exactly equal
    for name, value in straight_weights.items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)
    assert json.loads((tmp_path / "history.json").read_text())[2]["train_loss"] == straight[2]["train_loss"]


def test_keyboard_interrupt_saves_a_checkpoint(shapes, tmp_path):
    model, opt, sched, tl, vl = make_run(shapes)

    def stop(trainer, event, logs):
        if event == "batch_end" and logs["epoch"] == 2 and logs["batch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(model, opt, tl, vl, epochs=3, scheduler=sched, out_dir=tmp_path, quiet=True,
                  callbacks=[stop])
    ckpt = train.load_checkpoint(tmp_path / "interrupted.npz")
    assert ckpt["interrupted"] is True
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    for name, value in model.state_dict().items():  # the weights reached mid-epoch 2
        np.testing.assert_array_equal(ckpt["model"][name], value)
    assert ckpt["loaders"]["train"]["batches_done"] == 3
    assert train.latest_checkpoint(tmp_path) == str(tmp_path / "interrupted.npz")
    # the end-of-epoch checkpoint is still the one of epoch 1
    assert train.load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == 1

    # resuming from it finishes the run
    model, opt, sched, tl, vl = make_run(shapes)
    hist = train.fit(model, opt, tl, vl, epochs=3, scheduler=sched, out_dir=tmp_path,
                     resume=tmp_path / "interrupted.npz", quiet=True, plot=False)
    assert [r["epoch"] for r in hist] == [1, 2, 3]


def test_interrupted_checkpoint_write_leaves_the_old_one(shapes, tmp_path, monkeypatch):
    model, opt, sched, tl, vl = make_run(shapes)
    real_savez = np.savez

    def crash_in_epoch_two(trainer, event, logs):
        if event == "epoch_end" and logs["epoch"] == 1:
            def half_written(file, *args, **kwargs):
                file.write(b"PK\x03\x04 half a zip file")
                raise OSError("disk full (simulated)")
            monkeypatch.setattr(np, "savez", half_written)

    with pytest.raises(OSError, match="disk full"):
        train.fit(model, opt, tl, vl, epochs=2, scheduler=sched, out_dir=tmp_path, quiet=True,
                  callbacks=[crash_in_epoch_two])
    monkeypatch.setattr(np, "savez", real_savez)
    ckpt = train.load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["epoch"] == 1
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "history.json"]


def test_not_a_training_checkpoint(tmp_path):
    mc.save({"w": np.zeros(3)}, tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="is not a minicnn training checkpoint"):
        train.load_checkpoint(tmp_path / "plain.npz")


def test_plateau_scheduler_steps_on_validation_accuracy(shapes):
    model, opt, _, tl, vl = make_run(shapes)
    seen = []

    class Spy(optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metric):
            seen.append(metric)
            super().step(metric)

    sched = Spy(opt, mode="max", patience=0)
    hist = train.fit(model, opt, tl, vl, epochs=2, scheduler=sched, quiet=True)
    assert seen == [r["val_top1"] for r in hist]


def test_aux_outputs_add_0_3_times_their_loss(shapes):
    model, opt, sched, _, _ = make_run(shapes, aux=True)
    x, y = shapes[0].images[:32], shapes[0].labels[:32]
    loader = [(mc.Tensor(x), mc.Tensor(y))]  # any iterable of (x, y) pairs works
    state = model.state_dict()
    rng_state = mc.random.get_state()
    main, aux = model(mc.Tensor(x))
    want = F.cross_entropy(main, y).item() + 0.3 * F.cross_entropy(aux, y).item()
    model.load_state_dict(state)
    mc.random.set_state(rng_state)  # the same dropout mask inside fit
    losses = []
    train.fit(model, opt, loader, epochs=1, quiet=True,
              callbacks=[lambda t, e, logs: losses.append(logs.get("loss"))])
    assert losses[0] == pytest.approx(want, rel=1e-6)


def test_evaluate_matches_topk_accuracy_and_restores_mode(shapes):
    model, _, _, _, _ = make_run(shapes)
    test_set = shapes[1]
    model.train()
    result = train.evaluate(model, data.DataLoader(test_set, batch_size=24))
    assert model.training
    loss, top1, top5 = result
    model.eval()
    with mc.no_grad():
        logits = model(mc.Tensor(test_set.images))
        want_loss = F.cross_entropy(logits, test_set.labels).item()
    assert (top1, top5) == metrics.topk_accuracy(logits, test_set.labels, k=(1, 5))
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert result.top1_error == 1 - top1


def test_ensemble_predict_averages_softmaxes(shapes):
    models = [make_run(shapes, seed=s)[0] for s in (1, 2, 3)]
    x = shapes[1].images[:5]
    probs = train.ensemble_predict(models, x)
    for m in models:
        assert m.training  # mode restored
    want = 0
    for m in models:
        m.eval()
        with mc.no_grad():
            z = m(mc.Tensor(x)).numpy().astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        want = want + e / e.sum(axis=1, keepdims=True) / 3
    assert isinstance(probs, mc.Tensor) and probs.shape == (5, 10)
    np.testing.assert_allclose(probs.numpy(), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="ensemble_predict: expected at least one model"):
        train.ensemble_predict([], x)


def test_diverging_loss_stops_with_a_clear_error(shapes):
    model, opt, sched, tl, vl = make_run(shapes, lr=1e30)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="the run diverged"):
        train.fit(model, opt, tl, vl, epochs=2, quiet=True)


def test_progress_bar_on_a_terminal_and_epoch_lines_otherwise(shapes, capsys, monkeypatch):
    model, opt, sched, tl, vl = make_run(shapes)
    train.fit(model, opt, tl, vl, epochs=1)  # stderr is not a terminal here: no bar, one line
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1/1  train loss") and "top-5" in out and "img/s" in out
    assert "img_s=" not in err
    import sys
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train.fit(model, opt, tl, vl, epochs=2)
    out, err = capsys.readouterr()
    assert "epoch 2/2" in err and "loss=" in err and "acc=" in err and "img_s=" in err
    train.fit(model, opt, tl, vl, epochs=3, quiet=True)
    assert capsys.readouterr() == ("", "")


# ---- divergence: stopped with the epoch named, the last good checkpoint kept ---------------------
def test_divergence_keeps_the_last_good_checkpoint(shapes, tmp_path):
    """Epoch 1 is fine; at its end the LR jumps to 1e30, so epoch 2 diverges: nothing of epoch 2
    reaches the disk, and checkpoint.npz and history.json still hold epoch 1."""
    model, opt, sched, tl, vl = make_run(shapes)

    def explode(trainer, event, logs):
        if event == "epoch_end":
            for group in opt.param_groups:
                group["lr"] = 1e30

    with np.errstate(all="ignore"), pytest.raises(train.DivergedError) as info:
        train.fit(model, opt, tl, vl, epochs=3, out_dir=tmp_path, quiet=True, plot=False,
                  callbacks=[explode])
    assert info.value.epoch == 2 and isinstance(info.value, FloatingPointError)
    assert "at epoch 2" in str(info.value) and "smaller learning rate" in str(info.value)
    ckpt = train.load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["epoch"] == 1
    assert all(np.isfinite(v).all() for v in ckpt["model"].values())
    assert [r["epoch"] for r in json.loads((tmp_path / "history.json").read_text())] == [1]
    assert not (tmp_path / "interrupted.npz").exists()


def test_a_nan_validation_loss_stops_the_run(shapes, tmp_path):
    """The training loss may stay finite while the validation loss is not (here: eval mode only)."""
    model, opt, sched, tl, vl = make_run(shapes)
    forward = model.forward
    model.forward = lambda x: forward(x) if model.training else forward(x) * float("nan")
    with np.errstate(all="ignore"), pytest.raises(train.DivergedError,
                                                  match="the run diverged at epoch 1: the validation loss became nan"):
        train.fit(model, opt, tl, vl, epochs=2, out_dir=tmp_path, quiet=True, plot=False)
    assert not (tmp_path / "checkpoint.npz").exists()   # no good epoch: nothing written


def test_weights_blown_up_by_the_last_step_stop_the_run(shapes, tmp_path):
    """Without validation, a non-finite weight after the epoch's last step is still caught."""
    model, opt, sched, tl, _ = make_run(shapes)
    batches = len(tl)

    def poison(trainer, event, logs):
        if event == "batch_end" and logs["batch"] == batches:
            model.fc.weight.data[0, 0] = np.inf

    with pytest.raises(train.DivergedError, match=r"at epoch 1: the weights became nan or inf \(fc\.weight\)"):
        train.fit(model, opt, tl, epochs=1, out_dir=tmp_path, quiet=True, plot=False, callbacks=[poison])
    assert not (tmp_path / "checkpoint.npz").exists()


# ---- loading checkpoints: damaged files and misfits leave the trainer as it was -----------------
def test_a_damaged_training_checkpoint_is_a_checkpoint_error(shapes, tmp_path):
    model, opt, sched, tl, vl = make_run(shapes)
    trainer = train.Trainer(model, opt, tl, vl, scheduler=sched, out_dir=tmp_path, quiet=True)
    path = trainer.save_checkpoint()
    raw = (tmp_path / "checkpoint.npz").read_bytes()
    (tmp_path / "half.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mc.CheckpointError, match=r"half\.npz is truncated or damaged"):
        train.load_checkpoint(tmp_path / "half.npz")
    state = mc.load(path)
    state["history"] = "not a list"
    mc.save(state, tmp_path / "odd.npz")
    with pytest.raises(mc.CheckpointError, match=r"odd\.npz is damaged: its 'history' is str, expected list"):
        train.load_checkpoint(tmp_path / "odd.npz")


def test_trainer_load_checkpoint_is_all_or_nothing(shapes, tmp_path):
    """The model fits, the optimiser state does not: the model is put back as it was."""
    model, opt, sched, tl, vl = make_run(shapes)
    path = train.Trainer(model, opt, tl, vl, out_dir=tmp_path, quiet=True).save_checkpoint()
    state = mc.load(path)
    state["model"] = {k: v + 1 for k, v in state["model"].items()}      # loads fine...
    state["optimizer"]["param_groups"].append(dict(state["optimizer"]["param_groups"][0]))  # ...this not
    mc.save(state, tmp_path / "misfit.npz")
    before = model.state_dict()
    trainer = train.Trainer(model, opt, tl, vl, quiet=True)
    with pytest.raises(ValueError, match="parameter groups"):
        trainer.load_checkpoint(tmp_path / "misfit.npz")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert trainer.epoch == 0 and trainer.history == []
