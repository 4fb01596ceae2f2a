"""The `minicnn` command line (also `python -m minicnn`).

    minicnn train                          LeNet-5 on the built-in Shapes data (offline, < 2 min)
    minicnn train --dataset mnist --epochs 5
    minicnn train --model resnet18 --dataset folder --data-dir ~/pets --image-size 64
    minicnn train --resume                 continue the run in --out (or a given checkpoint)
    minicnn evaluate runs/lenet5-shapes/checkpoint.npz
    minicnn summary alexnet                the layer table: output shapes, parameters, mult-adds

`minicnn train` writes into `--out` (default runs/<model>-<dataset>): checkpoint.npz (every
epoch), history.json (per-epoch metrics), curves.png (loss, top-1/top-5 and LR against the
epoch) and, on Ctrl-C, interrupted.npz. Validation after every epoch uses `--val-fraction` of
the training split (held out, never trained on); the test split is scored once at the end.

Data sets (`--dataset`):
  shapes  built-in procedural images (no files); `--train-size`/`--test-size` set their number.
  mnist   the four IDX files in `--data-dir`, else $MINICNN_DATA/mnist, else ~/.cache/minicnn/mnist
          (`--download` fetches them). Pixels are standardised with MNIST's mean and std.
  folder  `--data-dir PATH` with PATH/train/<class>/<image> and PATH/test/<class>/<image>
          (or PATH/val/...); a PATH holding only class folders is split 80/20 by `--seed`.
          Images are resized and centre-cropped to `--image-size`.
`--train-size`/`--test-size` also take the first N images of MNIST or a folder (quick runs).
"""
import argparse
import inspect
import json
import os
import sys
import time

import numpy as np

DATASETS = ("shapes", "mnist", "folder")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau")

# The defaults of `minicnn train`. Options are parsed with default None so that a resumed run
# can tell which ones were given on the command line.
TRAIN_DEFAULTS = {
    "model": "lenet5", "dataset": "shapes", "data_dir": None, "download": False,
    "epochs": 8, "batch_size": 64, "lr": None, "optimizer": "sgd", "momentum": 0.9,
    "weight_decay": 0.0, "scheduler": "cosine", "device": "cpu", "out": None,
    "metrics_json": None, "seed": 0, "quiet": False, "train_size": None, "test_size": None,
    "val_fraction": 0.1, "image_size": None, "channels": None, "model_kw": [], "workers": 0,
    "kernels": None,
}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
# What a resumed run may change; everything else (model, data, optimiser) comes from the checkpoint.
RESUME_OVERRIDES = ("epochs", "out", "metrics_json", "quiet", "device", "workers", "kernels")


class CLIError(Exception):
    """A user mistake: printed as `minicnn: error: ...` without a traceback."""


# ---- parser -------------------------------------------------------------------------------------
def _model_kw(text):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. width_mult=0.5), got {text!r}")
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # a bare string, e.g. variant=torchvision
    return key, value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minicnn", description="Train, evaluate and inspect the minicnn CNNs.",
        epilog="`minicnn <command> --help` describes each command.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,summary}")

    t = sub.add_parser(
        "train", help="train a model (default: LeNet-5 on the built-in Shapes data)",
        description="Train a model; writes checkpoint.npz, history.json and curves.png into --out. "
                    "With no options: LeNet-5 on Shapes, offline, in under two minutes.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_train_epilog())
    d = TRAIN_DEFAULTS
    t.add_argument("--model", help=f"model name (default {d['model']}); `minicnn summary --list` shows them")
    t.add_argument("--model-kw", action="append", type=_model_kw, metavar="KEY=VALUE",
                   help="extra builder argument, repeatable, e.g. --model-kw width_mult=0.5")
    t.add_argument("--dataset", choices=DATASETS, help=f"data set (default {d['dataset']})")
    t.add_argument("--data-dir", metavar="PATH", help="mnist: folder of the IDX files; folder: its root")
    t.add_argument("--download", action="store_true", default=None, help="mnist: fetch missing files")
    t.add_argument("--epochs", type=int, help=f"epochs in total (default {d['epochs']})")
    t.add_argument("--batch-size", type=int, help=f"default {d['batch_size']}")
    t.add_argument("--lr", type=float, help="learning rate (default 0.05 for sgd, 1e-3 otherwise)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d['optimizer']}")
    t.add_argument("--momentum", type=float, help=f"sgd/rmsprop momentum (default {d['momentum']})")
    t.add_argument("--weight-decay", type=float, help=f"L2 penalty (default {d['weight_decay']})")
    t.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"LR schedule over the epochs (default {d['scheduler']}); plateau divides "
                        f"the LR by 10 when validation top-1 stops improving")
    t.add_argument("--device", choices=("cpu", "cuda"), help=f"default {d['device']}")
    t.add_argument("--out", metavar="DIR", help="output folder (default runs/<model>-<dataset>)")
    t.add_argument("--resume", nargs="?", const="auto", metavar="CKPT",
                   help="continue from CKPT (default: the newest checkpoint in --out); model, data "
                        "and optimiser settings come from the checkpoint")
    t.add_argument("--metrics-json", metavar="PATH", help="write the final test metrics here")
    t.add_argument("--seed", type=int, help=f"seed for initialisation, shuffling, data (default {d['seed']})")
    t.add_argument("--quiet", action="store_true", default=None, help="print nothing but errors")
    t.add_argument("--train-size", type=int, metavar="N", help="number of training images")
    t.add_argument("--test-size", type=int, metavar="N", help="number of test images")
    t.add_argument("--val-fraction", type=float, metavar="F",
                   help=f"share of the training split held out for validation (default {d['val_fraction']}; 0: none)")
    t.add_argument("--image-size", type=int, metavar="S",
                   help="image side (default 28 for lenet5, 32 for others, which then get small_input=True)")
    t.add_argument("--channels", type=int, choices=(1, 3), help="shapes/folder image channels (default: the model's)")
    t.add_argument("--workers", type=int, metavar="N", help="background loader threads (default 0)")
    t.add_argument("--kernels", choices=("numba", "reference"), help="CPU kernels (default numba)")

    e = sub.add_parser("evaluate", help="top-1/top-5 of a checkpoint on the test split",
                       description="Rebuild the model and data set a checkpoint was trained with "
                                   "and score it on the test split.")
    e.add_argument("checkpoint", metavar="CKPT")
    e.add_argument("--data-dir", metavar="PATH", help="where the data is now, if it moved")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    e.add_argument("--metrics-json", metavar="PATH", help="write the metrics here as JSON")

    s = sub.add_parser("summary", help="print a model's layer table (nn.summary)",
                       description="Print one row per layer: output shape, parameters, mult-adds.")
    s.add_argument("model", nargs="?", help="model name, e.g. lenet5, alexnet, resnet50")
    s.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="input shape without the batch axis (default: the model's own)")
    s.add_argument("--num-classes", type=int, help="default: the builder's")
    s.add_argument("--model-kw", action="append", type=_model_kw, metavar="KEY=VALUE",
                   help="extra builder argument, e.g. --model-kw variant=torchvision")
    s.add_argument("--list", action="store_true", help="list the model names")
    return parser


def _train_epilog():
    return __doc__[__doc__.index("`minicnn train` writes"):]


def _version():
    from . import __version__
    return f"minicnn {__version__}"


# ---- models -------------------------------------------------------------------------------------
def _check_model(name):
    from . import models
    if name not in models.list_models() and name != "vgg":
        raise CLIError(f"unknown model {name!r}; choose one of: {', '.join(models.list_models())}")


def _takes(builder, name):
    try:
        return name in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def _builder(name):
    from . import models
    return models.vgg if name == "vgg" else models.MODELS[name]


def build_model(name, **kwargs):
    """models.get_model with a clear command-line error for a bad name or argument."""
    from . import models
    _check_model(name)
    try:
        return models.get_model(name, **kwargs)
    except TypeError as exc:
        raise CLIError(f"model {name!r}: {exc}") from exc


def default_input_shape(name, kwargs):
    """The input a model is built for, without the batch axis."""
    c = kwargs.get("in_channels")
    if name == "lenet5":
        return (c or 1, 28, 28)
    if name == "alphago_policy":
        board = kwargs.get("board_size", 19)
        return (kwargs.get("in_planes", 48), board, board)
    if kwargs.get("small_input"):
        return (c or 3, 32, 32)
    if name == "alexnet" and kwargs.get("variant", "paper") != "torchvision":
        return (c or 3, 227, 227)
    return (c or 3, 224, 224)


# ---- data ---------------------------------------------------------------------------------------
class Subset:
    """The items of `dataset` at `indices` (a dataset itself; keeps batched access fast)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64)
        self.classes = getattr(dataset, "classes", None)

    transform = property(lambda self: getattr(self.dataset, "transform", None))

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]

    def get_batch(self, indices):
        from .data.dataset import stack_batch
        picked = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(picked)
        return stack_batch([self.dataset[int(i)] for i in picked], type(self.dataset).__name__)


def _first(dataset, n):
    return dataset if n is None or n >= len(dataset) else Subset(dataset, np.arange(n))


def _image_size(args):
    if args["image_size"] is not None:
        return args["image_size"]
    return 28 if args["model"] == "lenet5" else 32


def _channels(args):
    if args["channels"] is not None:
        return args["channels"]
    if args["dataset"] == "mnist":
        return 1
    return 1 if args["model"] == "lenet5" else 3


def build_datasets(args):
    """(train, test) data sets from the run's arguments (a dict; see TRAIN_DEFAULTS)."""
    from . import data
    name, size, channels, seed = args["dataset"], _image_size(args), _channels(args), args["seed"]
    if name == "shapes":
        train = data.Shapes(n=args["train_size"], train=True, size=size, channels=channels, seed=seed)
        test = data.Shapes(n=args["test_size"], train=False, size=size, channels=channels, seed=seed)
        return train, test
    if name == "mnist":
        if size != 28 or channels != 1:
            raise CLIError(f"mnist images are 1 x 28 x 28; got --image-size {size} --channels {channels}")
        try:
            train = data.MNIST(root=args["data_dir"], train=True, download=bool(args["download"]))
            test = data.MNIST(root=args["data_dir"], train=False, download=bool(args["download"]))
        except FileNotFoundError as exc:
            raise CLIError(f"{exc} (or run `minicnn train --dataset mnist --download`)") from exc
        for ds in (train, test):  # standardise once, in place: no per-image transform per batch
            ds.images -= np.float32(data.MNIST.mean[0])
            ds.images /= np.float32(data.MNIST.std[0])
        return _first(train, args["train_size"]), _first(test, args["test_size"])
    if name == "folder":
        return _folder_datasets(args, size, channels)
    raise CLIError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def _folder_datasets(args, size, channels):
    from . import data
    from .data import transforms as T
    root = args["data_dir"]
    if not root:
        raise CLIError("--dataset folder needs --data-dir PATH (PATH/train/<class>/<image> and "
                       "PATH/test/<class>/<image>, or PATH/<class>/<image>)")
    if not os.path.isdir(root):
        raise CLIError(f"--data-dir {root}: no such folder")
    transform = T.Compose([T.Resize(size), T.CenterCrop(size)])
    mode = "L" if channels == 1 else "RGB"
    try:
        train_dir = os.path.join(root, "train")
        test_dir = next((os.path.join(root, s) for s in ("test", "val")
                         if os.path.isdir(os.path.join(root, s))), None)
        if os.path.isdir(train_dir) and test_dir is not None:
            train = data.ImageFolder(train_dir, transform=transform, mode=mode)
            test = data.ImageFolder(test_dir, transform=transform, mode=mode)
            if test.classes != train.classes:
                raise CLIError(f"{train_dir} and {test_dir} hold different class folders")
        else:  # one folder of classes: a fixed 80/20 split
            full = data.ImageFolder(root, transform=transform, mode=mode)
            order = np.random.default_rng(args["seed"]).permutation(len(full))
            cut = int(round(0.8 * len(full)))
            train, test = Subset(full, np.sort(order[:cut])), Subset(full, np.sort(order[cut:]))
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    return _first(train, args["train_size"]), _first(test, args["test_size"])


def split_validation(train, fraction, seed):
    """(train part, validation part): a random `fraction` of `train` held out, by `seed`."""
    if not 0.0 <= fraction < 1.0:
        raise CLIError(f"--val-fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * len(train)))
    if n_val == 0:
        return train, None
    order = np.random.default_rng([int(seed), 7]).permutation(len(train))
    return Subset(train, np.sort(order[n_val:])), Subset(train, np.sort(order[:n_val]))


# ---- optimiser and schedule ---------------------------------------------------------------------
def build_optimizer(args, params):
    from . import optim
    name, wd = args["optimizer"], args["weight_decay"]
    lr = DEFAULT_LR[name] if args["lr"] is None else args["lr"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=args["momentum"], weight_decay=wd)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    return optim.RMSprop(params, lr=lr, momentum=args["momentum"], weight_decay=wd)


def build_scheduler(args, optimizer):
    from .optim import lr_scheduler
    name, epochs = args["scheduler"], args["epochs"]
    if name == "none":
        return None
    if name == "step":  # two divisions by 10 over the run
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=2)


# ---- commands -----------------------------------------------------------------------------------
def _resolve_train_args(ns):
    """The run's arguments as a dict: the command line over the defaults, or, when resuming,
    the checkpoint's arguments with only RESUME_OVERRIDES taken from the command line."""
    from .train import latest_checkpoint, load_checkpoint
    given = {k: v for k, v in vars(ns).items() if k in TRAIN_DEFAULTS and v is not None}
    args = {**TRAIN_DEFAULTS, **given}
    args["model_kw"] = [list(kv) for kv in args["model_kw"]]
    ckpt, resume = None, ns.resume
    if resume is not None:
        if resume == "auto":
            out = args["out"] or _default_out(args)
            resume = latest_checkpoint(out)
            if resume is None:
                raise CLIError(f"--resume: no checkpoint.npz or interrupted.npz in {out}; "
                               f"pass the checkpoint's path: --resume PATH")
        if not os.path.isfile(resume):
            raise CLIError(f"--resume: no such checkpoint file: {resume}")
        try:
            ckpt = load_checkpoint(resume)
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
        stored = ckpt["meta"].get("args")
        if not stored:
            raise CLIError(f"--resume: {resume} does not record how it was trained (no meta.args); "
                           f"resume it from Python with train.fit(..., resume=path)")
        ignored = sorted(k for k in given if k not in RESUME_OVERRIDES and given[k] != stored.get(k))
        if ignored and not args["quiet"]:
            print(f"minicnn: resuming {resume}: keeping the checkpoint's "
                  f"{', '.join('--' + k.replace('_', '-') for k in ignored)}", file=sys.stderr)
        args = {**TRAIN_DEFAULTS, **stored, **{k: given[k] for k in RESUME_OVERRIDES if k in given}}
        if "out" not in given:
            args["out"] = os.path.dirname(os.path.abspath(resume))
    if args["out"] is None:
        args["out"] = _default_out(args)
    return args, resume


def _default_out(args):
    return os.path.join("runs", f"{args['model']}-{args['dataset']}")


def _model_kwargs(args, num_classes, channels):
    kwargs = dict(args["model_kw"])
    builder = _builder(args["model"])
    kwargs.setdefault("num_classes", num_classes)
    kwargs.setdefault("in_channels", channels)
    if _takes(builder, "small_input") and _image_size(args) < 64:
        kwargs.setdefault("small_input", True)
    return kwargs


def _check_train_args(args):
    _check_model(args["model"])
    for key in ("epochs", "batch_size"):
        if args[key] < (0 if key == "epochs" else 1):
            raise CLIError(f"--{key.replace('_', '-')} must be >= {0 if key == 'epochs' else 1}, got {args[key]}")
    for key in ("train_size", "test_size"):
        if args[key] is not None and args[key] < 1:
            raise CLIError(f"--{key.replace('_', '-')} must be >= 1, got {args[key]}")


def cmd_train(ns):
    args, resume = _resolve_train_args(ns)
    _check_train_args(args)
    import minicnn as mc
    from . import data
    from .train import Trainer, evaluate

    started = time.perf_counter()
    if args["kernels"]:
        mc.use_kernels(args["kernels"])
    mc.manual_seed(args["seed"])
    quiet = args["quiet"]
    train_full, test = build_datasets(args)
    train_set, val_set = split_validation(train_full, args["val_fraction"], args["seed"])
    num_classes = len(getattr(train_full, "classes", None) or []) or int(np.max(_labels(train_full))) + 1
    channels = train_full[0][0].shape[0]
    kwargs = _model_kwargs(args, num_classes, channels)
    model = build_model(args["model"], **kwargs)
    if args["device"] != "cpu":
        model.to(args["device"])
    optimizer = build_optimizer(args, model.parameters())
    scheduler = build_scheduler(args, optimizer)
    bs, workers = args["batch_size"], args["workers"]
    train_loader = data.DataLoader(train_set, batch_size=bs, shuffle=True, num_workers=workers)
    val_loader = None if val_set is None else data.DataLoader(val_set, batch_size=256, num_workers=workers)
    test_loader = data.DataLoader(test, batch_size=256, num_workers=workers)
    meta = {"model": args["model"], "model_kwargs": kwargs, "dataset": args["dataset"],
            "num_classes": num_classes, "classes": [str(c) for c in (getattr(train_full, "classes", None) or [])],
            "args": args}
    if not quiet:
        print(f"minicnn train: {args['model']} on {args['dataset']} ({len(train_set)} train, "
              f"{0 if val_set is None else len(val_set)} validation, {len(test)} test images), "
              f"{args['epochs']} epochs, writing to {args['out']}", flush=True)
    trainer = Trainer(model, optimizer, train_loader, val_loader, scheduler=scheduler,
                      out_dir=args["out"], device=args["device"], quiet=quiet, meta=meta)
    fit_start = time.perf_counter()
    try:
        history = trainer.fit(args["epochs"], resume=resume)
    except KeyboardInterrupt:
        if trainer.checkpoint_path:
            print(f"minicnn: interrupted; resume with: minicnn train --resume {trainer.checkpoint_path}",
                  file=sys.stderr)
        return 130
    fit_seconds = time.perf_counter() - fit_start
    result = evaluate(model, test_loader, device=args["device"])
    metrics = _metrics(args, history, result, len(train_set), len(test), fit_seconds,
                       time.perf_counter() - started, trainer.checkpoint_path)
    if not quiet:
        print(f"test: loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}% (error "
              f"{100 * result.top1_error:.2f}%)  top-5 {100 * result.top5:.2f}%  "
              f"[{fit_seconds:.1f}s training]")
        print(f"wrote {args['out']}: checkpoint.npz, history.json, curves.png")
    if args["metrics_json"]:
        _write_metrics(metrics, args["metrics_json"])
    return 0


def _labels(ds):
    labels = getattr(ds, "labels", None)
    if labels is not None:
        return labels
    return [ds[i][1] for i in range(len(ds))]


def _metrics(args, history, result, n_train, n_test, fit_seconds, total_seconds, checkpoint):
    rates = [r["images_per_s"] for r in history if np.isfinite(r["images_per_s"])]
    return {
        "model": args["model"], "dataset": args["dataset"], "epochs": len(history),
        "test_loss": result.loss, "test_top1": result.top1, "test_top5": result.top5,
        "test_top1_error": result.top1_error, "test_top5_error": result.top5_error,
        "val_top1": history[-1]["val_top1"] if history else None,
        "seconds": fit_seconds, "total_seconds": total_seconds,
        "seconds_per_epoch": [r["seconds"] for r in history],
        "images_per_s": float(np.mean(rates)) if rates else None,
        "train_size": n_train, "test_size": n_test, "seed": args["seed"],
        "device": args["device"], "out": args["out"], "checkpoint": checkpoint,
    }


def _write_metrics(metrics, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")


def cmd_evaluate(ns):
    import minicnn as mc
    from . import data
    from .train import evaluate, load_checkpoint
    if not os.path.isfile(ns.checkpoint):
        raise CLIError(f"no such checkpoint file: {ns.checkpoint}")
    try:
        ckpt = load_checkpoint(ns.checkpoint)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    meta = ckpt["meta"]
    if "args" not in meta or "model_kwargs" not in meta:
        raise CLIError(f"{ns.checkpoint} does not record which model and data built it")
    args = {**TRAIN_DEFAULTS, **meta["args"]}
    if ns.data_dir:
        args["data_dir"] = ns.data_dir
    mc.manual_seed(args["seed"])
    _, test = build_datasets(args)
    model = build_model(meta["model"], **meta["model_kwargs"])
    model.load_state_dict(ckpt["model"])
    if ns.device != "cpu":
        model.to(ns.device)
    result = evaluate(model, data.DataLoader(test, batch_size=ns.batch_size), device=ns.device)
    print(f"{meta['model']} on {meta['dataset']} test ({len(test)} images, {ckpt['epoch']} epochs "
          f"trained): loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}% (error "
          f"{100 * result.top1_error:.2f}%)  top-5 {100 * result.top5:.2f}% (error "
          f"{100 * result.top5_error:.2f}%)")
    if ns.metrics_json:
        _write_metrics({"model": meta["model"], "dataset": meta["dataset"], "epochs": ckpt["epoch"],
                        "checkpoint": ns.checkpoint, "test_size": len(test), "test_loss": result.loss,
                        "test_top1": result.top1, "test_top5": result.top5,
                        "test_top1_error": result.top1_error, "test_top5_error": result.top5_error},
                       ns.metrics_json)
    return 0


def cmd_summary(ns):
    from . import models, nn
    if ns.list or not ns.model:
        if not ns.list:
            raise CLIError("name a model, e.g. `minicnn summary alexnet`; "
                           f"choose one of: {', '.join(models.list_models())}")
        print("\n".join(models.list_models()))
        return 0
    kwargs = dict(ns.model_kw or [])
    if ns.num_classes is not None:
        kwargs["num_classes"] = ns.num_classes
    model = build_model(ns.model, **kwargs)
    shape = tuple(ns.input_shape) if ns.input_shape else default_input_shape(ns.model, kwargs)
    try:
        table = nn.summary(model, shape)
    except ValueError as exc:
        raise CLIError(f"{ns.model} does not accept input {shape}: {exc}") from exc
    print(str(table))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary}


def main(argv=None):
    """Entry point of the `minicnn` script; returns the exit status."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[ns.command](ns)
    except CLIError as exc:
        print(f"minicnn {ns.command}: error: {exc}", file=sys.stderr)
        return 2
