"""The `minicnn` command line (also `python -m minicnn`).

    minicnn train                          LeNet-5 on the built-in Shapes data (offline, < 2 min)
    minicnn train --dataset mnist --epochs 5
    minicnn train --model resnet18 --dataset folder --data-dir ~/pets --image-size 64
    minicnn train --model resnet34 --dataset folder --data-dir ~/dogs-vs-cats --epochs 3
                  --weights resnet34.safetensors --freeze features      fine-tuning (docs/fine_tuning.md)
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

Resuming: `--resume` continues a run with the checkpoint's model, data and optimiser settings.
A different `--epochs` on resume rebuilds the LR schedule (step, cosine) for the new total: the
remaining epochs get the learning rates a run of that many epochs would have had from the start.

Data-parallel (`mpiexec -n N minicnn train --distributed ...`, with `pip install 'minicnn[mpi]'`):
N processes, each on its share of every batch; `--batch-size` is the GLOBAL batch, split evenly
over the N ranks (N must divide it), so a run on N processes takes the same steps on the same
batches as one process would. Only rank 0 prints and writes --out; metrics count every image
once. Each rank uses cores/N threads (MINICNN_THREADS=n overrides). An error in any rank ends
every rank. docs/distributed.md tells how to run it on several machines.

Exit status: 0 done; 1 the run diverged (a training, validation or test loss became nan or inf:
the message names the epoch, and the last good checkpoint.npz is kept) or minicnn hit a bug (then
with a traceback); 2 a user error, printed as one line `minicnn <command>: error: ...` (a bad
option, a missing or damaged file, no GPU); 130 Ctrl-C. `--debug` or MINICNN_DEBUG=1 shows the
traceback of any error.
"""
import argparse
import inspect
import json
import math
import os
import sys
import time
import traceback

import numpy as np

DATASETS = ("shapes", "mnist", "folder")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau")
TRANSFORMS = ("auto", "resize", "finetune")   # folder images: see _folder_transforms

# The defaults of `minicnn train`. Options are parsed with default None so that a resumed run
# can tell which ones were given on the command line.
TRAIN_DEFAULTS = {
    "model": "lenet5", "dataset": "shapes", "data_dir": None, "download": False,
    "epochs": 8, "batch_size": 64, "lr": None, "optimizer": "sgd", "momentum": 0.9,
    "weight_decay": 0.0, "scheduler": "cosine", "device": "cpu", "out": None,
    "metrics_json": None, "seed": 0, "quiet": False, "train_size": None, "test_size": None,
    "val_fraction": 0.1, "image_size": None, "channels": None, "model_kw": [], "workers": 0,
    "kernels": None, "distributed": False, "weights": None, "freeze": [], "transforms": "auto",
}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
# What a resumed run may change; everything else (model, data, optimiser) comes from the checkpoint.
RESUME_OVERRIDES = ("epochs", "out", "metrics_json", "quiet", "device", "workers", "kernels",
                    "distributed")


class CLIError(Exception):
    """A user mistake: printed as `minicnn <command>: error: ...` without a traceback, exit 2.
    Errors that other layers raise about what the user typed or gave (a damaged checkpoint, a
    missing data file) are turned into this at the place the command line hands them over."""

    status = 2


class RunDiverged(CLIError):
    """A loss became nan or inf: printed as an error (what, when, what to change), exit 1."""

    status = 1


REPORT_BUGS = ("this is a bug in minicnn, not in what you typed: please report it with the "
               "command line, the traceback above and the output of `minicnn --version`")


# ---- option values ------------------------------------------------------------------------------
def _option(parse, ok, expected):
    """An argparse `type`: `parse` the text, then check it with `ok`; the error says what was
    expected. `.valid(value)` checks a value that did not come from the command line (resume)."""
    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    def valid(value):
        wanted = (int, float) if parse is float else parse   # JSON may store 1.0 as 1
        return isinstance(value, wanted) and not isinstance(value, bool) and ok(value)

    convert.valid, convert.expected = valid, expected
    return convert


POSITIVE_INT = _option(int, lambda v: v >= 1, "an integer >= 1")
COUNT = _option(int, lambda v: v >= 0, "an integer >= 0")
POSITIVE_FLOAT = _option(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
NON_NEGATIVE_FLOAT = _option(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
FRACTION = _option(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
PATH = _option(str, lambda v: v != "", "a path")

# The checked options of `minicnn train`; a resumed run checks the checkpoint's values with them.
TRAIN_TYPES = {"epochs": COUNT, "batch_size": POSITIVE_INT, "lr": POSITIVE_FLOAT,
               "momentum": NON_NEGATIVE_FLOAT, "weight_decay": NON_NEGATIVE_FLOAT, "seed": COUNT,
               "train_size": POSITIVE_INT, "test_size": POSITIVE_INT, "val_fraction": FRACTION,
               "image_size": POSITIVE_INT, "workers": COUNT, "weights": PATH}


TRAIN_CHOICES = {"dataset": DATASETS, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS,
                 "device": ("cpu", "cuda"), "kernels": (None, "numba", "reference"),
                 "channels": (None, 1, 3), "transforms": TRANSFORMS}


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (`minicnn train: error: ...`), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


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
    parser = _Parser(
        prog="minicnn", description="Train, evaluate and inspect the minicnn CNNs.",
        epilog="`minicnn <command> --help` describes each command.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # --debug is also taken after the command; SUPPRESS keeps the subcommand from resetting it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,summary,check}",
                                parser_class=_Parser)

    t = sub.add_parser(
        "train", parents=[common], help="train a model (default: LeNet-5 on the built-in Shapes data)",
        description="Train a model; writes checkpoint.npz, history.json and curves.png into --out. "
                    "With no options: LeNet-5 on Shapes, offline, in under two minutes.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_train_epilog())
    d = TRAIN_DEFAULTS
    t.add_argument("--model", help=f"model name (default {d['model']}); `minicnn summary --list` shows them")
    t.add_argument("--model-kw", action="append", type=_model_kw, metavar="KEY=VALUE",
                   help="extra builder argument, repeatable, e.g. --model-kw width_mult=0.5")
    t.add_argument("--dataset", choices=DATASETS, help=f"data set (default {d['dataset']})")
    t.add_argument("--data-dir", metavar="PATH", type=PATH, help="mnist: folder of the IDX files; folder: its root")
    t.add_argument("--download", action="store_true", default=None, help="mnist: fetch missing files")
    t.add_argument("--epochs", type=COUNT,
                   help=f"epochs in total (default {d['epochs']}); with --resume, a new total "
                        f"rebuilds the LR schedule for it (the remaining epochs get the rates a "
                        f"run of that many epochs would have had)")
    t.add_argument("--batch-size", type=POSITIVE_INT,
                   help=f"default {d['batch_size']}; the global batch: with --distributed it is "
                        f"split evenly over the ranks (N must divide it)")
    t.add_argument("--lr", type=POSITIVE_FLOAT, help="learning rate (default 0.05 for sgd, 1e-3 otherwise)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d['optimizer']}")
    t.add_argument("--momentum", type=NON_NEGATIVE_FLOAT, help=f"sgd/rmsprop momentum (default {d['momentum']})")
    t.add_argument("--weight-decay", type=NON_NEGATIVE_FLOAT, help=f"L2 penalty (default {d['weight_decay']})")
    t.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"LR schedule over the epochs (default {d['scheduler']}); plateau divides "
                        f"the LR by 10 when validation top-1 stops improving")
    t.add_argument("--device", choices=("cpu", "cuda"), help=f"default {d['device']}")
    t.add_argument("--out", metavar="DIR", type=PATH, help="output folder (default runs/<model>-<dataset>)")
    t.add_argument("--resume", nargs="?", const="auto", metavar="CKPT", type=PATH,
                   help="continue from CKPT (default: the newest checkpoint in --out); model, data "
                        "and optimiser settings come from the checkpoint")
    t.add_argument("--metrics-json", metavar="PATH", type=PATH, help="write the final test metrics here")
    t.add_argument("--seed", type=COUNT, help=f"seed for initialisation, shuffling, data (default {d['seed']})")
    t.add_argument("--quiet", action="store_true", default=None, help="print nothing but errors")
    t.add_argument("--train-size", type=POSITIVE_INT, metavar="N", help="number of training images")
    t.add_argument("--test-size", type=POSITIVE_INT, metavar="N", help="number of test images")
    t.add_argument("--val-fraction", type=FRACTION, metavar="F",
                   help=f"share of the training split held out for validation (default {d['val_fraction']}; 0: none)")
    t.add_argument("--image-size", type=POSITIVE_INT, metavar="S",
                   help="image side (default 28 for lenet5, 32 for others, which then get small_input=True)")
    t.add_argument("--channels", type=int, choices=(1, 3), help="shapes/folder image channels (default: the model's)")
    t.add_argument("--workers", type=COUNT, metavar="N", help="background loader threads (default 0)")
    t.add_argument("--kernels", choices=("numba", "reference"), help="CPU kernels (default numba)")
    t.add_argument("--distributed", action="store_true", default=None,
                   help="data-parallel over the ranks of `mpiexec -n N minicnn train "
                        "--distributed` (needs the [mpi] extra); --batch-size stays the global "
                        "batch, split over the N ranks; rank 0 prints and writes --out")
    t.add_argument("--weights", metavar="FILE", type=PATH,
                   help="start from these weights (.safetensors with torchvision's names, or a "
                        "minicnn .npz); a head for another number of classes is replaced by a new one")
    t.add_argument("--freeze", action="append", metavar="PREFIX", type=PATH,
                   help="keep the parameters under PREFIX fixed (repeatable), e.g. --freeze layer1; "
                        "'features' means all but the head on models without a 'features' part")
    t.add_argument("--transforms", choices=TRANSFORMS,
                   help="folder images: resize (resize + centre crop) or finetune (RandomRotation, "
                        "RandomResizedCrop, flip, ImageNet mean/std; eval: resize + crop + the same "
                        "Normalize); default auto: finetune with --weights, else resize")

    e = sub.add_parser("evaluate", parents=[common], help="top-1/top-5 of a checkpoint on the test split",
                       description="Rebuild the model and data set a checkpoint was trained with "
                                   "and score it on the test split.")
    e.add_argument("checkpoint", metavar="CKPT", type=PATH)
    e.add_argument("--data-dir", metavar="PATH", type=PATH, help="where the data is now, if it moved")
    e.add_argument("--batch-size", type=POSITIVE_INT, default=256)
    e.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    e.add_argument("--metrics-json", metavar="PATH", type=PATH, help="write the metrics here as JSON")

    s = sub.add_parser("summary", parents=[common], help="print a model's layer table (nn.summary)",
                       description="Print one row per layer: output shape, parameters, mult-adds.")
    s.add_argument("model", nargs="?", help="model name, e.g. lenet5, alexnet, resnet50")
    s.add_argument("--input-shape", type=POSITIVE_INT, nargs=3, metavar=("C", "H", "W"),
                   help="input shape without the batch axis (default: the model's own)")
    s.add_argument("--num-classes", type=POSITIVE_INT, help="default: the builder's")
    s.add_argument("--model-kw", action="append", type=_model_kw, metavar="KEY=VALUE",
                   help="extra builder argument, e.g. --model-kw variant=torchvision")
    s.add_argument("--list", action="store_true", help="list the model names")
    _add_check_parser(sub, common)
    return parser


def _add_check_parser(sub, common):
    c = sub.add_parser("check", parents=[common], help="grade a coursework solution (minicnn.grading)",
                       description="Check every function of an assignment (A1 ... A6) that a Python "
                                   "file defines against minicnn's reference kernels; exit status 0 "
                                   "when all pass, 1 when one fails or is missing.")
    c.add_argument("assignment", metavar="ASSIGNMENT", help="A1, A2, A3, A4, A5 or A6")
    c.add_argument("file", metavar="FILE", type=PATH, help="a .py file with your functions")
    c.add_argument("--seed", type=COUNT, default=0, help="which generated cases (default 0)")


DEBUG_HELP = "show the Python traceback of any error (also: MINICNN_DEBUG=1)"


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
    except (TypeError, ValueError) as exc:   # an argument the builder refuses (--model-kw, ...)
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
    if args.get("weights") and args["model"] not in ("lenet5", "alphago_policy"):
        return 224   # the size ImageNet weights were trained at (and no small_input stem)
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
    from .data.download import DownloadError
    name, size, channels, seed = args["dataset"], _image_size(args), _channels(args), args["seed"]
    if name == "shapes":
        try:
            train = data.Shapes(n=args["train_size"], train=True, size=size, channels=channels, seed=seed)
            test = data.Shapes(n=args["test_size"], train=False, size=size, channels=channels, seed=seed)
        except ValueError as exc:   # Shapes checks the sizes the options gave it
            raise CLIError(f"{exc} (from --image-size, --channels, --train-size, --test-size)") from exc
        return train, test
    if name == "mnist":
        if size != 28 or channels != 1:
            raise CLIError(f"mnist images are 1 x 28 x 28; got --image-size {size} --channels {channels}")
        try:
            train = data.MNIST(root=args["data_dir"], train=True, download=bool(args["download"]))
            test = data.MNIST(root=args["data_dir"], train=False, download=bool(args["download"]))
        except FileNotFoundError as exc:
            raise CLIError(f"{exc} (or run `minicnn train --dataset mnist --download`)") from exc
        except (ValueError, DownloadError) as exc:   # a damaged IDX file (named), or no mirror
            raise CLIError(str(exc)) from exc
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
    train_tf, test_tf = _folder_transforms(args, size, channels)
    mode = "L" if channels == 1 else "RGB"
    try:
        train_dir = os.path.join(root, "train")
        test_dir = next((os.path.join(root, s) for s in ("test", "val")
                         if os.path.isdir(os.path.join(root, s))), None)
        if os.path.isdir(train_dir) and test_dir is not None:
            train = data.ImageFolder(train_dir, transform=train_tf, mode=mode)
            test = data.ImageFolder(test_dir, transform=test_tf, mode=mode)
            if test.classes != train.classes:
                raise CLIError(f"{train_dir} and {test_dir} hold different class folders")
        else:  # one folder of classes: a fixed 80/20 split
            full = data.ImageFolder(root, transform=train_tf, mode=mode)
            full_test = full if test_tf is train_tf else data.ImageFolder(root, transform=test_tf, mode=mode)
            order = np.random.default_rng(args["seed"]).permutation(len(full))
            cut = int(round(0.8 * len(full)))
            train, test = Subset(full, np.sort(order[:cut])), Subset(full_test, np.sort(order[cut:]))
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    return _first(train, args["train_size"]), _first(test, args["test_size"])


def _folder_transforms(args, size, channels):
    """(train, test) transforms of folder images: "resize" (the same resize and centre crop for
    both) or "finetune" (finetune.transforms: the practice's augmentation and ImageNet's mean and
    std, what ImageNet weights expect); "auto" is finetune when --weights is given (RGB only)."""
    from .data import transforms as T
    from .finetune import transforms as finetune_transforms
    chosen = args["transforms"]
    if chosen == "auto":
        chosen = "finetune" if args["weights"] and channels == 3 else "resize"
    if chosen == "resize":
        plain = T.Compose([T.Resize(size), T.CenterCrop(size)])
        return plain, plain
    if channels != 3:
        raise CLIError(f"--transforms finetune normalises RGB images with ImageNet's mean and std; "
                       f"got --channels {channels}")
    return finetune_transforms(size)


def split_validation(train, fraction, seed):
    """(train part, validation part): a random `fraction` of `train` held out, by `seed`."""
    if not 0.0 <= fraction < 1.0:
        raise CLIError(f"--val-fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * len(train)))
    if n_val == 0:
        return train, None
    if n_val == len(train):
        raise CLIError(f"--val-fraction {fraction} holds out all {len(train)} training images; "
                       f"lower it or use more images")
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


def rescheduled(args, optimizer, finished):
    """A resumed run's step or cosine schedule rebuilt for its new total `args["epochs"]`: the
    schedule a run of that many epochs would have, at the `finished` epochs reached (its closed
    form). The base LRs come from the optimiser's `initial_lr`, which the checkpoint restored."""
    scheduler = build_scheduler(args, optimizer)
    scheduler.step(finished)
    return scheduler


# ---- checks of what the user gave ----------------------------------------------------------------
def _check_train_args(args):
    """The run's arguments, also those a resumed checkpoint brought (which could be damaged)."""
    _check_model(args["model"])
    for key, kind in TRAIN_TYPES.items():
        value = args[key]
        if value is not None and not kind.valid(value):
            raise CLIError(f"--{key.replace('_', '-')}: expected {kind.expected}, got {value!r}")
    for key, choices in TRAIN_CHOICES.items():
        if args[key] not in choices:
            raise CLIError(f"--{key}: expected one of {choices}, got {args[key]!r}")
    if not all(isinstance(kv, (list, tuple)) and len(kv) == 2 and isinstance(kv[0], str)
               for kv in args["model_kw"]):
        raise CLIError(f"--model-kw: expected KEY=VALUE pairs, got {args['model_kw']!r}")
    if not isinstance(args["freeze"], list) or not all(isinstance(p, str) and p for p in args["freeze"]):
        raise CLIError(f"--freeze: expected parameter name prefixes, got {args['freeze']!r}")


def _check_device(device):
    """`--device cuda` on a machine without a usable GPU is refused before anything is built."""
    if device == "cuda":
        from .device import cuda_module
        try:
            cuda_module()
        except RuntimeError as exc:
            raise CLIError(f"--device cuda: {exc} Or use --device cpu.") from exc


def _check_folder(path, option):
    """`path` is a folder that exists or can be created and written (nothing is created here)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{option} {path}: this is a file; expected a folder (created if missing)")
    _check_writable_parent(path, option)


def _check_file(path, option):
    """`path` is a file that can be written (its folders are created if missing)."""
    if os.path.isdir(path):
        raise CLIError(f"{option} {path}: this is a folder; expected a file name")
    _check_writable_parent(os.path.dirname(os.path.abspath(path)), option, path)


def _check_writable_parent(folder, option, path=None):
    """The nearest existing folder at or above `folder` must be a writable folder."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    shown = f"{option} {path or folder}"
    if not os.path.isdir(existing):
        raise CLIError(f"{shown}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{shown}: the folder {existing} is not writable")


def _check_not_empty(train_set, test):
    if len(train_set) == 0 or len(test) == 0:
        raise CLIError(f"the data set has {len(train_set)} training and {len(test)} test images; "
                       f"both need at least one")


def _check_input_fits(model, shape, args):
    """One image through the model (eval mode, no graph) before training: a model that cannot
    take this image size fails here, with the options to change, not in the middle of epoch 1.
    On the CPU it goes through the NumPy reference kernels: the same shape checks, and nothing
    for Numba to compile (a batch of one takes other plans than the training batches, whose
    kernels would cost a first run seconds)."""
    import minicnn as mc
    x = mc.zeros(1, *shape)
    if args["device"] != "cpu":
        x = x.to(args["device"])
    model.eval()
    try:
        with mc.no_grad(), mc.use_kernels("reference"):
            model(x)
    except ValueError as exc:
        raise CLIError(f"model {args['model']!r} does not take {shape[0]} x {shape[1]} x {shape[2]} "
                       f"images (--image-size, --channels, --model-kw): {exc}") from exc
    finally:
        model.train()


def _load_checkpoint(path, option):
    """train.load_checkpoint with a command-line error for a missing, damaged or foreign file."""
    from .train import load_checkpoint
    if not os.path.isfile(path):
        raise CLIError(f"{option}no such checkpoint file: {path}")
    try:
        return load_checkpoint(path)
    except ValueError as exc:   # CheckpointError: not a checkpoint, truncated, damaged
        raise CLIError(f"{option}{exc}") from exc


# ---- commands -----------------------------------------------------------------------------------
def _resolve_train_args(ns):
    """The run's arguments as a dict: the command line over the defaults, or, when resuming,
    the checkpoint's arguments with only RESUME_OVERRIDES taken from the command line.
    Returns (args, the checkpoint's path or None, the checkpoint's planned epochs or None)."""
    from .train import latest_checkpoint
    given = {k: v for k, v in vars(ns).items() if k in TRAIN_DEFAULTS and v is not None}
    args = {**TRAIN_DEFAULTS, **given}
    args["model_kw"] = [list(kv) for kv in args["model_kw"]]
    resume = ns.resume
    if resume is None:
        args["out"] = args["out"] or _default_out(args)
        return args, None, None
    if resume == "auto" or os.path.isdir(resume):
        folder = (args["out"] or _default_out(args)) if resume == "auto" else resume
        resume = latest_checkpoint(folder)
        if resume is None:
            raise CLIError(f"--resume: no checkpoint.npz or interrupted.npz in {folder}; "
                           f"pass the checkpoint's path: --resume PATH")
    ckpt = _load_checkpoint(resume, "--resume: ")
    stored = ckpt["meta"].get("args")
    if not isinstance(stored, dict) or not stored:
        raise CLIError(f"--resume: {resume} does not record how it was trained (no meta.args); "
                       f"resume it from Python with train.fit(..., resume=path)")
    ignored = sorted(k for k in given if k not in RESUME_OVERRIDES and given[k] != stored.get(k))
    if ignored and not args["quiet"]:
        print(f"minicnn: resuming {resume}: keeping the checkpoint's "
              f"{', '.join('--' + k.replace('_', '-') for k in ignored)}", file=sys.stderr)
    args = {**TRAIN_DEFAULTS, **stored, **{k: given[k] for k in RESUME_OVERRIDES if k in given}}
    if "out" not in given:
        args["out"] = os.path.dirname(os.path.abspath(resume))
    return args, resume, stored.get("epochs")


def _default_out(args):
    return os.path.join("runs", f"{args['model']}-{args['dataset']}")


def _model_kwargs(args, num_classes, channels):
    kwargs = dict(args["model_kw"])
    builder = _builder(args["model"])
    kwargs.setdefault("num_classes", num_classes)
    kwargs.setdefault("in_channels", channels)
    if _takes(builder, "small_input") and _image_size(args) < 64:
        kwargs.setdefault("small_input", True)
    if args["weights"] and kwargs.get("variant") == "torchvision" and _takes(builder, "transform_input"):
        kwargs.setdefault("transform_input", True)   # as torchvision sets for its weights
    return kwargs


def cmd_train(ns):
    args, resume, planned_epochs = _resolve_train_args(ns)
    _check_train_args(args)
    comm = _init_distributed(args)   # a world of one without --distributed
    _check_device(args["device"])
    _check_folder(args["out"], "--out")
    if args["metrics_json"]:
        _check_file(args["metrics_json"], "--metrics-json")
    import minicnn as mc
    from . import data
    from .train import DivergedError, Trainer, evaluate

    started = time.perf_counter()
    if args["kernels"]:
        mc.use_kernels(args["kernels"])
    mc.manual_seed(args["seed"])
    quiet = args["quiet"] or comm.rank != 0
    marker = _first_run_notice(args, quiet)   # before the data: making it takes a while too
    if marker is not None and comm.size == 1:
        _start_precompile(args)
    train_full, test = build_datasets(args)
    train_set, val_set = split_validation(train_full, args["val_fraction"], args["seed"])
    _check_not_empty(train_set, test)
    num_classes = len(getattr(train_full, "classes", None) or []) or int(np.max(_labels(train_full))) + 1
    image_shape = train_full[0][0].shape
    kwargs = _model_kwargs(args, num_classes, image_shape[0])
    model = build_model(args["model"], **kwargs)
    frozen = _freeze(model, args["freeze"])   # checked first: a bad prefix costs no weight loading
    if args["weights"] and resume is None:   # a resumed run's checkpoint holds the weights
        _load_weights(model, args["weights"], quiet)
    if frozen and not quiet:
        print(f"minicnn train: froze {len(frozen)} parameter tensors under {', '.join(args['freeze'])}; "
              f"{model.num_parameters(trainable_only=True):,} of {model.num_parameters():,} "
              f"numbers learn", file=sys.stderr)
    if args["device"] != "cpu":
        model.to(args["device"])
    _check_input_fits(model, image_shape, args)
    optimizer = build_optimizer(args, model.parameters())
    scheduler = build_scheduler(args, optimizer)
    bs, workers = args["batch_size"], args["workers"]
    train_loader = data.DataLoader(train_set, batch_size=bs, shuffle=True, num_workers=workers)
    val_loader = None if val_set is None else data.DataLoader(val_set, batch_size=256, num_workers=workers)
    test_loader = data.DataLoader(test, batch_size=256, num_workers=workers)
    if comm.size > 1:   # each rank its share of every batch; rank 0's weights; averaged gradients
        train_loader, val_loader, test_loader = distributed_loaders(args, train_set, val_set, test, comm)
        mc.manual_seed([args["seed"], comm.rank])   # dropout and augmentation differ per rank
        from .distributed import DistributedOptimizer
        optimizer = DistributedOptimizer(optimizer, model, comm)
        if not quiet:
            print(f"minicnn train: data-parallel over {comm.size} ranks, {bs // comm.size} of the "
                  f"{bs} images of each batch per rank", flush=True)
    meta = {"model": args["model"], "model_kwargs": kwargs, "dataset": args["dataset"],
            "num_classes": num_classes, "classes": [str(c) for c in (getattr(train_full, "classes", None) or [])],
            "args": args}
    if not quiet:
        print(f"minicnn train: {args['model']} on {args['dataset']} ({len(train_set)} train, "
              f"{0 if val_set is None else len(val_set)} validation, {len(test)} test images), "
              f"{args['epochs']} epochs, writing to {args['out']}", flush=True)
    trainer = Trainer(model, optimizer, train_loader, val_loader, scheduler=scheduler,
                      out_dir=args["out"], device=args["device"], quiet=quiet, meta=meta)
    if resume is not None:
        _resume(trainer, resume, args, planned_epochs)
    fit_start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is
            history = trainer.fit(args["epochs"])                          # reported below
    except KeyboardInterrupt:
        if trainer.checkpoint_path:
            print(f"minicnn: interrupted; resume with: minicnn train --resume {trainer.checkpoint_path}",
                  file=sys.stderr)
        return 130
    except DivergedError as exc:
        raise _diverged(exc.what, exc.epoch, args, trainer.checkpoint_path or resume) from exc
    fit_seconds = time.perf_counter() - fit_start
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = evaluate(model, test_loader, device=args["device"])
    if not math.isfinite(result.loss):
        raise _diverged(f"the test loss is {result.loss}", trainer.epoch, args,
                        trainer.checkpoint_path or resume)
    metrics = _metrics(args, history, result, len(train_set), len(test), fit_seconds,
                       time.perf_counter() - started, trainer.checkpoint_path)
    if not quiet:
        print(f"test: loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}% (error "
              f"{100 * result.top1_error:.2f}%)  top-5 {100 * result.top5:.2f}%  "
              f"[{fit_seconds:.1f}s training]")
        print(f"wrote {args['out']}: checkpoint.npz, history.json, curves.png")
    metrics["world_size"] = comm.size
    _mark_compiled(marker)
    if args["metrics_json"] and comm.rank == 0:
        _write_metrics(metrics, args["metrics_json"])
    return 0


COMPILE_ESTIMATE = "about 4 s for LeNet-5 on a 2-core machine, more for larger models"


def _first_run_notice(args, quiet):
    """On the first CPU run of a model on this machine (no marker in Numba's cache), say that its
    kernels are being compiled, so that a quiet first minute is not taken for a hang. Returns
    the marker to write when the run succeeds (None: nothing to write)."""
    if args["device"] != "cpu" or args["kernels"] == "reference":
        return None
    from minicnn.kernels.cpu._jit import compiled_marker
    marker = compiled_marker(args["model"])
    if marker is None or os.path.exists(marker):
        return None
    if not quiet:
        print(f"minicnn train: first run of {args['model']} here: compiling its kernels with Numba "
              f"({COMPILE_ESTIMATE}; once: later runs load them from the cache)",
              file=sys.stderr, flush=True)
    return marker


def _start_precompile(args):
    """On a model's first run, a second process compiles its kernels from the last layer back
    while the first training step compiles them from the first layer on (minicnn/precompile.py).
    It is stopped when this process exits. Only with a core to spare; the class count is a
    guess until the data is made (it only sizes the logits)."""
    import atexit
    import subprocess
    if (os.cpu_count() or 1) < 2 or os.environ.get("MINICNN_PRECOMPILE", "1") == "0":
        return None
    from .data import Shapes
    classes = len(Shapes.classes) if args["dataset"] == "shapes" else 10
    channels, size = _channels(args), _image_size(args)
    optimizer = {k: args[k] for k in ("optimizer", "lr", "momentum", "weight_decay")}
    spec = {"model": args["model"], "model_kwargs": _model_kwargs(args, classes, channels),
            "image_shape": [channels, size, size], "batch_size": args["batch_size"], "optimizer": optimizer}
    try:
        helper = subprocess.Popen([sys.executable, "-m", "minicnn.precompile", json.dumps(spec)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    except (OSError, TypeError, ValueError):   # no interpreter to start, arguments JSON refuses
        return None
    atexit.register(_stop_precompile, helper)
    return helper


def _stop_precompile(helper):
    if helper.poll() is None:
        helper.kill()
        helper.wait()


def _mark_compiled(marker):
    if marker is not None:
        try:
            with open(marker, "w") as f:
                f.write("the kernels this model uses are in Numba's cache beside this file\n")
        except OSError:   # a read-only cache: the notice shows again next time, nothing worse
            pass


def _init_distributed(args):
    """The communicator of this run: MPI's world under `mpiexec ... --distributed` (threads set
    per rank), else a world of one. The global --batch-size must split evenly over the ranks."""
    from . import distributed
    if not args["distributed"]:
        return distributed.SingleComm()
    try:
        comm = distributed.init()
    except (RuntimeError, ValueError) as exc:   # mpi4py missing, a bad MINICNN_THREADS
        raise CLIError(f"--distributed: {exc}") from exc
    if comm.size == 1 and not args["quiet"]:
        print("minicnn train: --distributed without mpiexec: training in one process (start it "
              "as `mpiexec -n N minicnn train --distributed ...`)", file=sys.stderr)
    if args["batch_size"] % comm.size:
        raise CLIError(f"--batch-size {args['batch_size']} is the global batch and must split "
                       f"evenly over the {comm.size} ranks")
    return comm


def distributed_loaders(args, train_set, val_set, test, comm):
    """(train, validation, test) loaders of one rank: a DistributedSampler share of every
    epoch's order (padded to equal lengths) with batch_size / ranks images per step; the
    evaluation sets split without padding, so every image is scored once."""
    from . import data

    def share(dataset, **kw):
        return data.DistributedSampler(dataset, comm.size, comm.rank, **kw)

    workers = args["workers"]
    train_loader = data.DataLoader(train_set, batch_size=args["batch_size"] // comm.size,
                                   sampler=share(train_set, shuffle=True, seed=args["seed"]),
                                   num_workers=workers)
    val_loader = None if val_set is None else data.DataLoader(
        val_set, batch_size=256, sampler=share(val_set, shuffle=False, pad=False), num_workers=workers)
    test_loader = data.DataLoader(test, batch_size=256, sampler=share(test, shuffle=False, pad=False),
                                  num_workers=workers)
    return train_loader, val_loader, test_loader
def _load_weights(model, path, quiet):
    """--weights: load the file into the model (a new head when the classes differ, said on
    stderr); a missing, damaged or ill-fitting file is a user error naming it."""
    import warnings
    from .weights import load_weights
    if not os.path.isfile(path):
        raise CLIError(f"--weights: no such file: {path}")
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        try:
            load_weights(model, path)
        except ImportError as exc:   # the safetensors package is missing
            raise CLIError(f"--weights: {exc}") from exc
        except ValueError as exc:   # CheckpointError (damaged, a pickle), StateDictError (misfit)
            raise CLIError(f"--weights: {exc}") from exc
    if not quiet:
        for note in notes:
            print(f"minicnn train: note: {note.message}", file=sys.stderr)


def _freeze(model, prefixes):
    """--freeze: fix the parameters under each prefix (finetune.freeze: 'features' means all but
    the head on models without a features part); returns the names frozen."""
    from .finetune import freeze
    if not prefixes:
        return []
    try:
        return freeze(model, *prefixes)
    except KeyError as exc:
        raise CLIError(f"--freeze: {exc.args[0].removeprefix('freeze: ')}") from exc


def _resume(trainer, path, args, planned_epochs):
    """Restore the trainer from the checkpoint at `path`; a new --epochs total rebuilds the LR
    schedule (see `rescheduled`)."""
    try:
        trainer.load_checkpoint(path)
    except (ValueError, KeyError, TypeError) as exc:   # the saved state does not fit: damaged
        raise CLIError(f"--resume: {path} does not fit the model and optimiser its own arguments "
                       f"describe (damaged, or written by another version?): {exc}") from exc
    if args["epochs"] != planned_epochs and args["scheduler"] in ("step", "cosine"):
        trainer.scheduler = rescheduled(args, trainer.optimizer, trainer.epoch)
        if not args["quiet"]:
            print(f"minicnn: resuming at epoch {trainer.epoch}: the {args['scheduler']} LR schedule "
                  f"now spans {args['epochs']} epochs (was {planned_epochs}); next LR "
                  f"{trainer.optimizer.param_groups[0]['lr']:.3g}", file=sys.stderr)


def _diverged(what, epoch, args, checkpoint):
    """RunDiverged saying in which epoch, what to change, and which checkpoint was kept."""
    lr = DEFAULT_LR[args["optimizer"]] if args["lr"] is None else args["lr"]
    kept = (f"the last good checkpoint {checkpoint} is kept" if checkpoint
            else "no checkpoint was written")
    return RunDiverged(f"the run diverged at epoch {epoch}: {what}. Lower the learning rate "
                       f"(--lr {lr:g}; try --lr {lr / 10:g}); {kept}.")


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
    from .train import evaluate
    _check_device(ns.device)
    if ns.metrics_json:
        _check_file(ns.metrics_json, "--metrics-json")
    ckpt = _load_checkpoint(ns.checkpoint, "")
    meta = ckpt["meta"]
    if not isinstance(meta.get("args"), dict) or not isinstance(meta.get("model_kwargs"), dict):
        raise CLIError(f"{ns.checkpoint} does not record which model and data built it")
    args = {**TRAIN_DEFAULTS, **meta["args"]}
    if ns.data_dir:
        args["data_dir"] = ns.data_dir
    _check_train_args(args)
    mc.manual_seed(args["seed"])
    _, test = build_datasets(args)
    model = build_model(args["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except ValueError as exc:   # StateDictError: the weights do not fit the model they name
        raise CLIError(f"{ns.checkpoint}: its weights do not fit the {args['model']} it names: "
                       f"{exc}") from exc
    if ns.device != "cpu":
        model.to(ns.device)
    result = evaluate(model, data.DataLoader(test, batch_size=ns.batch_size), device=ns.device)
    print(f"{args['model']} on {args['dataset']} test ({len(test)} images, {ckpt['epoch']} epochs "
          f"trained): loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}% (error "
          f"{100 * result.top1_error:.2f}%)  top-5 {100 * result.top5:.2f}% (error "
          f"{100 * result.top5_error:.2f}%)")
    if not math.isfinite(result.loss):
        raise RunDiverged(f"the test loss of {ns.checkpoint} is {result.loss}: its weights give "
                          f"non-finite outputs (from a diverged run?)")
    if ns.metrics_json:
        _write_metrics({"model": args["model"], "dataset": args["dataset"], "epochs": ckpt["epoch"],
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


def cmd_check(ns):
    import importlib.util
    try:
        from . import grading
    except ImportError as exc:
        raise CLIError(f"{exc}: pip install 'minicnn[grading]'") from exc
    name = ns.assignment.upper()
    if name not in grading.ASSIGNMENTS:
        raise CLIError(f"no assignment {ns.assignment!r}; choose one of {', '.join(grading.ASSIGNMENTS)}")
    if not os.path.isfile(ns.file):
        raise CLIError(f"{ns.file}: no such file (expected a .py file with your functions)")
    spec = importlib.util.spec_from_file_location("student_solution", ns.file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the student's file: any error is theirs, one line
        raise CLIError(f"{ns.file} did not run: {type(exc).__name__}: {exc}") from exc
    results = grading.check_assignment(name, module, seed=ns.seed)
    passed = sum(1 for r in results.values() if r is not None and r.passed)
    print(f"{name}: {passed} of {len(results)} functions passed")
    return 0 if passed == len(results) else 1


ABORT_GRACE_S = 0.2   # a CI run once lost a failing rank's error message to MPICH's abort

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary, "check": cmd_check}


def main(argv=None):
    """Entry point of the `minicnn` script; returns the exit status (see the module docstring).
    Under MPI (`--distributed` with several ranks) a rank that fails (any status but 0) ends the
    whole job with its status: the other ranks would otherwise wait for it forever."""
    status = _main(argv)
    from .distributed import world
    comm = world()
    if status and comm.size > 1:
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)   # mpiexec forwards the message before the abort tears its pipes down
        comm.Abort(status)
    return status


def _main(argv=None):
    """`main` in one process: parse, run the command, turn errors into messages and a status.

    The one place that turns errors into messages: a user error (CLIError, and the OSErrors of
    files, folders and disks, which name their path) is one line and status 2; anything else is a
    bug in minicnn: its traceback and how to report it, status 1."""
    parser = build_parser()
    ns, extras = parser.parse_known_args(argv)   # a bad option: one line from _Parser.error, status 2
    if extras:   # reported here, where the command is known (argparse would say just "minicnn")
        prog = f"minicnn {ns.command}" if ns.command else "minicnn"
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)} "
                       f"(see `{prog} --help`)\n")
    if ns.command is None:
        parser.print_help()
        return 2
    debug = getattr(ns, "debug", False) or os.environ.get("MINICNN_DEBUG", "0") not in ("", "0")
    try:
        return COMMANDS[ns.command](ns)
    except KeyboardInterrupt:
        print(f"minicnn {ns.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, OSError, MemoryError) as exc:
        if debug:
            traceback.print_exc()
        print(f"minicnn {ns.command}: error: {_user_message(exc)}", file=sys.stderr)
        return getattr(exc, "status", 2)
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, reported as one
        traceback.print_exc()
        print(f"minicnn {ns.command}: internal error: {_rank_tag()}{type(exc).__name__}: {_one_line(str(exc))}\n"
              f"{REPORT_BUGS}", file=sys.stderr)
        return 1


def _user_message(exc):
    """One line for a user error; an OSError says which file and what went wrong with it."""
    if isinstance(exc, MemoryError):
        detail = f" ({exc})" if str(exc) else ""
        return f"out of memory{detail}; try a smaller --batch-size, --image-size or --train-size"
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    return _rank_tag() + _one_line(text)


def _rank_tag():
    """"[rank r of N] " in a run of several ranks (which one failed), else ""."""
    from .distributed import world
    comm = world()
    return f"[rank {comm.rank} of {comm.size}] " if comm.size > 1 else ""


def _one_line(text):
    """Messages that span lines (load_state_dict lists its problems) joined with '; '."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
