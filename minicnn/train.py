"""The training loop: fit, evaluate, checkpoints and exact resume, ensembles.

    model = models.lenet5()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train.fit(model, opt, train_loader, val_loader, epochs=5, out_dir="runs/lenet")
    loss, top1, top5 = train.evaluate(model, test_loader)

One epoch of `fit`:
  1. train: for each batch (x, y) from the loader: out = model(x); loss = loss_fn(out, y);
     optimizer.zero_grad(); loss.backward(); optimizer.step()   (a tqdm bar shows the running
     loss, accuracy and images/s; it is hidden when stderr is not a terminal or `quiet=True`);
  2. validate: `evaluate(model, val_loader)` -> loss, top-1 and top-5 accuracy;
  3. the LR scheduler steps: `ReduceLROnPlateau` on the validation top-1 accuracy when its mode
     is "max" (AlexNet's recipe: divide the LR by 10 when validation accuracy stops improving)
     or on the validation loss when its mode is "min" (train metrics when there is no
     validation loader); every other scheduler steps once per epoch with no argument;
  4. one record is appended to the history and, when `out_dir` is given, `history.json` and the
     checkpoint `checkpoint.npz` are (re)written there, each atomically.

History record (one per epoch, also what `history.json` holds as a JSON list):
  epoch (1-based), train_loss, train_acc, val_loss, val_top1, val_top5 (accuracies are
  fractions; val_* are null without a validation loader), lr (the LR used during the epoch),
  seconds (train + validation wall time), images_per_s (training throughput).

Checkpoints (`mc.save`: an .npz without pickle, written atomically; see `save_checkpoint`) hold
the model's state_dict, the optimiser's and the scheduler's, the global RNG state
(`minicnn.random.get_state()`), the loaders' state when they have a `state_dict`, the number of
finished epochs, the history and a free-form `meta` dict (the command line stores there which
model, data set and arguments built the run). `fit(..., resume=path)` restores all of it and
continues: with the same seed on the CPU its losses are EXACTLY those of an uninterrupted run.

Divergence: a training loss that is nan or inf (checked before its optimiser step), a validation
loss that is, or weights that are after an epoch stop `fit` with `DivergedError` (a
FloatingPointError naming the epoch) before that epoch writes its history or checkpoint: the
checkpoint on disk stays the last good one.

Ctrl-C (KeyboardInterrupt) during `fit` saves `interrupted.npz` (the weights reached so far;
`epoch` = the finished epochs) before the exception goes on. Resuming from it restarts the
interrupted epoch from its beginning with those weights (exactness holds only for the
end-of-epoch `checkpoint.npz`).

Models that return a tuple in training mode (GoogLeNet: `(logits, aux1, aux2)`) are trained on
`loss(logits) + aux_weight * (loss(aux1) + loss(aux2))` with `aux_weight=0.3` (the paper's
weight); accuracy is always measured on the first output.

Under MPI (`mpiexec -n R`, after `minicnn.distributed.init()`), `fit` trains data-parallel: the
optimiser is wrapped in `DistributedOptimizer` if it is not already, rank 0's weights are
broadcast before the first epoch, the training sampler (`data.DistributedSampler`) gets
`set_epoch(epoch)` before each epoch, and rank 0's batch-norm running statistics are copied to
every rank after it. The progress bar, the per-epoch lines, `history.json`, the curves and the
checkpoints come from rank 0 only; train, validation and test metrics are summed over all ranks
(a loader with a `DistributedSampler(pad=False)` counts every sample once). Checkpoints hold
each rank's RNG and loader state (`ranks`), and resume restores every rank (rank 0 reads the
file and sends it to the others). An exception in one rank does not reach the others: run under
`python -m mpi4py` or `minicnn train --distributed`, which abort the whole job. docs/distributed.md.
"""
import json
import math
import os
import sys
import tempfile
import time
from collections import namedtuple

import numpy as np

from . import distributed as _dist
from . import functional as F
from . import random as _random
from ._grad_mode import no_grad
from .metrics import topk_correct
from .serialization import CheckpointError
from .serialization import load as _load
from .serialization import save as _save
from .tensor import Tensor

CHECKPOINT = "checkpoint.npz"
INTERRUPTED = "interrupted.npz"
HISTORY = "history.json"
CURVES = "curves.png"
CHECKPOINT_KIND = "minicnn-training-checkpoint"


class DivergedError(FloatingPointError):
    """The run diverged: a loss became nan or inf, or the weights did. Raised by `fit` before the
    diverged epoch writes anything, so the last checkpoint on disk is the last good one.
    `epoch` is the (1-based) epoch in which it happened."""

    def __init__(self, what, epoch):
        super().__init__(f"fit: the run diverged at epoch {epoch}: {what}; try a smaller learning rate")
        self.what, self.epoch = what, epoch


# ---- small helpers ------------------------------------------------------------------------------
def _model_device(model):
    first = next(iter(model.parameters()), None)
    return "cpu" if first is None else first.device


def _batch(batch, device):
    """(x Tensor on `device`, y Tensor on `device`, y as a numpy array) from a loader's batch,
    which may hold numpy arrays or Tensors."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"train: expected the loader to yield (images, labels) pairs, got "
                         f"{type(batch).__name__}")
    x, y = batch
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    y_np = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
    y = y if isinstance(y, Tensor) else Tensor(y_np)
    if device != "cpu":
        x, y = x.to(device), y.to(device)
    return x, y, y_np


def _main_output(out):
    """The logits of a model that may return (logits, aux1, aux2, ...)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _total_loss(loss_fn, out, y, aux_weight):
    """loss(main) + aux_weight * sum(loss(aux)) for tuple outputs (GoogLeNet), else loss(out)."""
    if isinstance(out, (tuple, list)):
        loss = loss_fn(out[0], y)
        for aux in out[1:]:
            loss = loss + aux_weight * loss_fn(aux, y)
        return loss
    return loss_fn(out, y)


def _loader_len(loader):
    try:
        return len(loader)
    except TypeError:
        return None


def _write_json_atomic(obj, path):
    """Write JSON to a temp file in the same folder, then rename it over `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _is_plateau(scheduler):
    try:
        from .optim.lr_scheduler import ReduceLROnPlateau
    except ImportError:  # pragma: no cover - optim always has it once written
        return type(scheduler).__name__ == "ReduceLROnPlateau"
    return isinstance(scheduler, ReduceLROnPlateau)


def _fmt_pct(x):
    return "  -  " if x is None else f"{100 * x:5.2f}%"


# ---- evaluation ---------------------------------------------------------------------------------
class Evaluation(namedtuple("Evaluation", ["loss", "top1", "top5"])):
    """What `evaluate` returns: mean loss, top-1 and top-5 ACCURACY (fractions); unpacks as a
    tuple `loss, top1, top5`. `top1_error`/`top5_error` are 1 - accuracy."""

    __slots__ = ()
    top1_error = property(lambda self: 1.0 - self.top1)
    top5_error = property(lambda self: 1.0 - self.top5)


def evaluate(model, loader, loss_fn=None, device=None, comm=None):
    """Mean loss and top-1/top-5 accuracy of `model` over every batch of `loader`.

    Runs in eval mode under `no_grad` (the model's mode is restored afterwards). Tuple outputs
    are scored on the first one. top-5 with fewer than 5 classes is clipped (it is then 1.0).
    When the loader's sampler is a rank's share (a DistributedSampler over several ranks), the
    sums are added up over the ranks of `comm` (default: the world of `distributed.init()`).
    """
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    device = _model_device(model) if device is None else device
    was_training = model.training
    model.eval()
    total_loss, correct1, correct5, n = 0.0, 0, 0, 0
    try:
        with no_grad():
            for batch in loader:
                x, y, y_np = _batch(batch, device)
                out = _main_output(model(x))
                total_loss += float(loss_fn(out, y).item()) * len(y_np)
                c1, c5 = topk_correct(out.numpy(), y_np, (1, 5))
                correct1, correct5, n = correct1 + c1, correct5 + c5, n + len(y_np)
    finally:
        model.train(was_training)
    if _is_sharded(loader):
        comm = _dist.world() if comm is None else comm
        total_loss, correct1, correct5, n = _sum_over_ranks(comm, total_loss, correct1, correct5, n)
        correct1, correct5, n = int(correct1), int(correct5), int(n)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return Evaluation(total_loss / n, correct1 / n, correct5 / n)


@no_grad()
def ensemble_predict(models, x):
    """The average of several models' softmax outputs: (N, num_classes) class probabilities.

    AlexNet's ImageNet entry averaged the predictions of seven CNNs this way (top-5 error 15.3%
    instead of 16.4% for one). Each model runs in eval mode (its mode is restored afterwards);
    a model returning a tuple contributes its first output. Returns a Tensor.
    """
    models = list(models)
    if not models:
        raise ValueError("ensemble_predict: expected at least one model, got none")
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    total = None
    for model in models:
        was_training = model.training
        model.eval()
        try:
            probs = F.softmax(_main_output(model(x)), axis=1).numpy()
        finally:
            model.train(was_training)
        if total is not None and probs.shape != total.shape:
            raise ValueError(f"ensemble_predict: models disagree on the output shape: "
                             f"{total.shape} and {probs.shape}")
        total = probs if total is None else total + probs
    return Tensor(total / len(models), dtype=total.dtype)


def _is_sharded(loader):
    """True when `loader` yields one rank's share of a data set split over several ranks."""
    return getattr(getattr(loader, "sampler", None), "num_replicas", 1) > 1


def _sum_over_ranks(comm, *values):
    """The sums over every rank of a few numbers (one small Allreduce), as floats."""
    sums = np.array(values, dtype=np.float64)
    if comm.size > 1:
        comm.Allreduce(sums)
    return tuple(float(v) for v in sums)


# ---- checkpoints --------------------------------------------------------------------------------
def load_checkpoint(path):
    """A checkpoint written by `Trainer.save_checkpoint`, as a dict: model, optimizer,
    scheduler (if any) and loaders' states, rng, epoch, history (a list), meta (a dict),
    interrupted (True for the one Ctrl-C wrote)."""
    ckpt = _load(path)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"load_checkpoint: {path} is not a minicnn training checkpoint (it "
                              f"has no kind={CHECKPOINT_KIND!r}; files written by mc.save of a bare "
                              f"state_dict load with model.load_state_dict(mc.load(path)))")
    for key, kind in _CHECKPOINT_FIELDS.items():
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"load_checkpoint: {path} is damaged: its {key!r} is "
                                  f"{type(ckpt.get(key)).__name__}, expected {kind.__name__}")
    return ckpt


# What every training checkpoint holds, and of which type (a foreign file could lie).
_CHECKPOINT_FIELDS = {"epoch": int, "model": dict, "optimizer": dict, "rng": dict, "loaders": dict,
                      "history": list, "meta": dict}


def latest_checkpoint(out_dir):
    """The newer of `checkpoint.npz` and `interrupted.npz` in `out_dir`, or None."""
    paths = [os.path.join(out_dir, name) for name in (CHECKPOINT, INTERRUPTED)]
    paths = [p for p in paths if os.path.isfile(p)]
    return max(paths, key=os.path.getmtime) if paths else None


# ---- the trainer --------------------------------------------------------------------------------
class Trainer:
    """Holds a model, its optimiser, loaders and history; `fit(epochs)` trains up to `epochs`.

    Arguments as in `fit`. `callbacks` are called as `callback(trainer, event, logs)` with
    event "batch_end" (logs: epoch, batch, loss, batch_size) and "epoch_end" (logs: the history
    record); raising `KeyboardInterrupt` from one stops training as Ctrl-C does.
    """

    def __init__(self, model, optimizer, train_loader, val_loader=None, *, loss_fn=None,
                 scheduler=None, out_dir=None, device=None, aux_weight=0.3, callbacks=(),
                 quiet=False, meta=None, plot=True):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.loss_fn = F.cross_entropy if loss_fn is None else loss_fn
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.device = _model_device(model) if device is None else device
        self.aux_weight = float(aux_weight)
        self.callbacks = list(callbacks)
        self.quiet, self.plot = bool(quiet), bool(plot)
        self.meta = dict(meta or {})
        self.history = []
        self.epoch = 0  # finished epochs
        self.checkpoint_path = None
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
        self._setup_distributed()

    # -- data parallel (a world of one: nothing changes) ----------------------------------------
    def _setup_distributed(self):
        """Under MPI: the communicator (the DistributedOptimizer's, else `distributed.world()`),
        the optimiser wrapped so that it averages gradients, and only rank 0 talking."""
        self.comm = getattr(self.optimizer, "comm", None) or _dist.world()
        self.is_main = self.comm.rank == 0
        if self.comm.size == 1:
            return
        if not isinstance(self.optimizer, _dist.DistributedOptimizer):
            self.optimizer = _dist.DistributedOptimizer(self.optimizer, self.model, self.comm)
        self.quiet = self.quiet or not self.is_main
        if self.is_main and not _is_sharded(self.train_loader):
            print(f"fit: {self.comm.size} ranks but the training loader has no DistributedSampler: "
                  f"every rank trains on the whole data set", file=sys.stderr, flush=True)

    def _rank_states(self, state, gather=True):
        """A checkpoint of several ranks: every rank's RNG and loader states in state["ranks"],
        gathered on rank 0. `gather=False` (after Ctrl-C, when a collective could hang): no
        per-rank states, and a resume restarts the interrupted epoch. Returns the state to write
        on rank 0, None on the others."""
        mine = {"rng": state["rng"], "loaders": state["loaders"]}
        ranks = self.comm.gather(mine, root=0) if gather else None
        if not self.is_main:
            return None
        state = {**state, "loaders": {}}   # a rank's loaders fit that rank only: in "ranks"
        if ranks is not None:
            state["ranks"] = ranks
        return state

    # -- state ----------------------------------------------------------------------------------
    def _loaders(self):
        return {"train": self.train_loader, "val": self.val_loader}

    def state(self, interrupted=False):
        """Everything a checkpoint holds, as a dict `mc.save` can write."""
        loaders = {name: loader.state_dict() for name, loader in self._loaders().items()
                   if loader is not None and hasattr(loader, "state_dict")}
        state = {
            "kind": CHECKPOINT_KIND,
            "epoch": self.epoch,
            "interrupted": bool(interrupted),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": _random.get_state(),
            "loaders": loaders,
            "history": self.history,
            "meta": self.meta,
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def save_checkpoint(self, path=None, interrupted=False):
        """Write the checkpoint (atomically, via `mc.save`) and return its path."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("save_checkpoint: no path given and the trainer has no out_dir")
            path = os.path.join(self.out_dir, INTERRUPTED if interrupted else CHECKPOINT)
        state = self.state(interrupted)
        if self.comm.size > 1:   # rank 0 writes what every rank needs to resume
            state = self._rank_states(state, gather=not interrupted)
        if state is not None:
            _save(state, path)
        self.checkpoint_path = path
        return path

    def load_checkpoint(self, path):
        """Restore model, optimiser, scheduler, RNG, loaders, epoch and history from `path`.
        All or nothing: when a part does not fit this trainer (another model or optimiser), what
        was restored already is put back as it was before the error goes on."""
        ckpt = load_checkpoint(path) if self.comm.size == 1 else self._load_on_main(path)
        before = self.state()
        if self.comm.size > 1:   # a rollback puts back this rank's own RNG and loaders
            before["ranks"] = [{"rng": before["rng"], "loaders": before["loaders"]}] * self.comm.size
        try:
            self._restore(ckpt)
        except Exception:
            self._restore(before)
            raise
        if not self.meta:
            self.meta = dict(ckpt["meta"])
        return ckpt

    def _load_on_main(self, path):
        """Rank 0 reads the checkpoint and sends it to every rank (no shared disk needed); its
        error, if any, is raised on every rank."""
        try:
            found = load_checkpoint(path) if self.is_main else None
        except Exception as exc:   # noqa: BLE001 - sent to the other ranks, raised on all
            found = exc
        found = self.comm.bcast(found, root=0)
        if isinstance(found, Exception):
            raise found
        return found

    def _this_rank(self, ckpt):
        """(rng state, loader states) of this rank in `ckpt`. A checkpoint of another number of
        ranks has no loader state that fits: the loaders start their next epoch afresh, and each
        rank's generator is derived from rank 0's and the rank (so dropout still differs)."""
        ranks = ckpt.get("ranks")
        if isinstance(ranks, list) and len(ranks) == self.comm.size:
            mine = ranks[self.comm.rank]
            return mine["rng"], mine["loaders"]
        if self.comm.size == 1:
            return ckpt["rng"], ckpt["loaders"]
        _random.set_state(ckpt["rng"])
        seed = int(_random.get_rng().integers(2 ** 63 - 1))
        return _random.manual_seed([seed, self.comm.rank]).bit_generator.state, {}

    def _restore(self, ckpt):
        rng, loader_states = self._this_rank(ckpt)
        ckpt = {**ckpt, "rng": rng, "loaders": loader_states}
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and "scheduler" in ckpt:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        for name, loader in self._loaders().items():
            if loader is not None and name in ckpt["loaders"] and hasattr(loader, "load_state_dict"):
                loader.load_state_dict(ckpt["loaders"][name])
        _random.set_state(ckpt["rng"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])

    # -- one epoch ------------------------------------------------------------------------------
    def _progress(self, total, epoch, epochs):
        from tqdm import tqdm  # tqdm.auto would warn in notebooks without ipywidgets
        disable = self.quiet or not sys.stderr.isatty()
        return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                    disable=disable, file=sys.stderr, dynamic_ncols=True)

    def _emit(self, event, logs):
        for callback in self.callbacks:
            callback(self, event, logs)

    def train_epoch(self, epoch, epochs):
        """One pass over the training loader; returns (mean loss, accuracy, seconds, images)
        (under MPI: over every rank's images)."""
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)   # read when the loader starts its next epoch
        self.model.train()
        total_loss, correct, n = 0.0, 0, 0
        start = time.perf_counter()
        with self._progress(_loader_len(self.train_loader), epoch, epochs) as bar:
            for i, batch in enumerate(self.train_loader):
                x, y, y_np = _batch(batch, self.device)
                out = self.model(x)
                loss = _total_loss(self.loss_fn, out, y, self.aux_weight)
                value = float(loss.item())
                if not math.isfinite(value):   # checked before the step: it would spread the nan
                    raise DivergedError(f"the training loss became {value} (batch {i + 1})", epoch)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()

                b = len(y_np)
                total_loss += value * b
                correct += topk_correct(_main_output(out).numpy(), y_np, 1)
                n += b
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / n:.4f}", acc=f"{100 * correct / n:.1f}%",
                                img_s=f"{n / (time.perf_counter() - start):.0f}", refresh=False)
                self._emit("batch_end", {"epoch": epoch, "batch": i + 1, "loss": value,
                                         "batch_size": b})
            bar.refresh()  # draw the epoch's final numbers even when it ran faster than a redraw
        if self.comm.size > 1:
            total_loss, correct, n = _sum_over_ranks(self.comm, total_loss, correct, n)
            n = int(n)
        if n == 0:
            raise ValueError("fit: the training loader yielded no samples")
        return total_loss / n, correct / n, time.perf_counter() - start, n

    def _step_scheduler(self, record):
        if self.scheduler is None:
            return
        if _is_plateau(self.scheduler):
            maximise = getattr(self.scheduler, "mode", "min") == "max"
            if record["val_loss"] is not None:
                metric = record["val_top1"] if maximise else record["val_loss"]
            else:
                metric = record["train_acc"] if maximise else record["train_loss"]
            self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def _report(self, record, epochs):
        if self.quiet:
            return
        line = (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  "
                f"train loss {record['train_loss']:.4f} acc {_fmt_pct(record['train_acc'])}")
        if record["val_loss"] is not None:
            line += (f"  val loss {record['val_loss']:.4f} top-1 {_fmt_pct(record['val_top1'])} "
                     f"top-5 {_fmt_pct(record['val_top5'])}")
        line += (f"  lr {record['lr']:.3g}  {record['seconds']:.1f}s "
                 f"({record['images_per_s']:.0f} img/s)")
        print(line, flush=True)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, epochs, resume=None):
        """Train until `epochs` epochs are finished (counting those of a resumed checkpoint);
        returns the history (a list of per-epoch dicts)."""
        if resume is not None:
            self.load_checkpoint(resume)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if self.comm.size > 1:   # every rank starts from rank 0's weights
            _dist.broadcast_parameters(self.model, comm=self.comm)
        try:
            while self.epoch < epochs:
                self._run_epoch(self.epoch + 1, epochs)
        except KeyboardInterrupt:
            if self.out_dir is not None:
                path = self.save_checkpoint(interrupted=True)
                if not self.quiet:
                    print(f"\ninterrupted: saved {path} (finished epochs: {self.epoch})",
                          file=sys.stderr, flush=True)
            raise
        if self.out_dir is not None and self.plot and self.history and self.is_main:
            save_curves(self.history, os.path.join(self.out_dir, CURVES))
        return self.history

    def _run_epoch(self, epoch, epochs):
        start = time.perf_counter()
        lr = float(self.optimizer.param_groups[0]["lr"])
        train_loss, train_acc, train_seconds, images = self.train_epoch(epoch, epochs)
        if self.comm.size > 1:   # batch norm's running statistics: rank 0's on every rank
            _dist.broadcast_buffers(self.model, comm=self.comm)
        val = None if self.val_loader is None else evaluate(self.model, self.val_loader,
                                                               self.loss_fn, self.device, self.comm)
        if val is not None and not math.isfinite(val.loss):
            raise DivergedError(f"the validation loss became {val.loss}", epoch)
        _check_finite_weights(self.model, epoch)   # before anything of this epoch is written
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": None if val is None else val.loss,
            "val_top1": None if val is None else val.top1,
            "val_top5": None if val is None else val.top5,
            "lr": lr,
            "seconds": time.perf_counter() - start,
            "images_per_s": images / train_seconds if train_seconds > 0 else float("nan"),
        }
        self._step_scheduler(record)
        self.history.append(record)
        self.epoch = epoch
        if self.out_dir is not None:
            if self.is_main:
                _write_json_atomic(self.history, os.path.join(self.out_dir, HISTORY))
            self.save_checkpoint()
        self._report(record, epochs)
        self._emit("epoch_end", record)


def _check_finite_weights(model, epoch):
    """DivergedError naming the first parameter holding nan or inf (the last optimiser step of an
    epoch can blow the weights up even though every loss measured so far was finite)."""
    for name, p in model.named_parameters():
        host = p.data if p.device == "cpu" else p.numpy()
        if p.dtype.kind == "f" and not np.isfinite(host).all():
            raise DivergedError(f"the weights became nan or inf ({name})", epoch)


def fit(model, optimizer, train_loader, val_loader=None, epochs=1, *, loss_fn=None,
        scheduler=None, out_dir=None, resume=None, device=None, aux_weight=0.3, callbacks=(),
        quiet=False, meta=None, plot=True):
    """Train `model` for `epochs` epochs (in total, counting a resumed checkpoint's) and return
    the history: a list with one dict per epoch (see the module docstring).

    loss_fn        `F.cross_entropy` unless given; called as `loss_fn(logits, target)`
    scheduler      stepped once per epoch (ReduceLROnPlateau on the validation metric)
    out_dir        when given: history.json, checkpoint.npz (each epoch), curves.png (at the end)
    resume         a checkpoint path: restore everything from it and continue
    aux_weight     the weight of auxiliary outputs' losses (GoogLeNet: 0.3)
    callbacks      `callback(trainer, event, logs)`, see `Trainer`
    quiet          no progress bar and no per-epoch lines
    meta           a JSON-able dict stored in every checkpoint (e.g. how the model was built)

    Raises `DivergedError` (naming the epoch) when a loss or the weights become nan or inf; the
    checkpoint on disk is then still the last good epoch's.
    """
    trainer = Trainer(model, optimizer, train_loader, val_loader, loss_fn=loss_fn,
                      scheduler=scheduler, out_dir=out_dir, device=device, aux_weight=aux_weight,
                      callbacks=callbacks, quiet=quiet, meta=meta, plot=plot)
    return trainer.fit(epochs, resume=resume)


# ---- curves -------------------------------------------------------------------------------------
def save_curves(history, path):
    """A PNG with three panels: loss, top-1/top-5 accuracy and the LR, each against the epoch
    (minicnn.viz.plot_curves), written atomically next to the checkpoint."""
    from .viz import plot_curves

    fig = plot_curves(history)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path
