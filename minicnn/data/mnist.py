"""MNIST: 70,000 handwritten digits, 28x28 grey, from the four standard IDX files.

    train = data.MNIST()                 # 60,000 images
    test = data.MNIST(train=False)       # 10,000 images
    x, y = train[0]                      # float32 (1, 28, 28) in [0, 1], int label 0..9

Where the files are looked for (`root`, the folder that holds them):
  1. the `root` argument;
  2. `$MINICNN_DATA/mnist` when the MINICNN_DATA environment variable is set
     (e.g. `MINICNN_DATA=../shared/data`);
  3. `~/.cache/minicnn/mnist`.
Each file may be plain (`train-images-idx3-ubyte`) or gzipped (`train-images-idx3-ubyte.gz`).

Normalisation: the pixels are only scaled to [0, 1] (byte / 255). For the usual standardised
inputs add the transform `transforms.Normalize(MNIST.mean, MNIST.std)` (0.1307, 0.3081: the
training set's statistics), as in PyTorch's examples.

`download=True` fetches the missing files from `MIRRORS` (override with the `mirrors` argument or
the MINICNN_MNIST_MIRRORS environment variable: base URLs separated by spaces or commas), checks
the md5 of the uncompressed bytes against `MD5`, and tries the next mirror when one fails.
"""
import os

from ._idx import read_idx
from .dataset import ArrayDataset
from .download import fetch_verified

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049

FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# md5 of the UNCOMPRESSED files (the canonical ones; re-compressed copies differ as .gz).
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


def default_root():
    """`$MINICNN_DATA/mnist` if MINICNN_DATA is set, else `~/.cache/minicnn/mnist`."""
    base = os.environ.get("MINICNN_DATA")
    if base:
        return os.path.join(base, "mnist")
    return os.path.join(os.path.expanduser("~"), ".cache", "minicnn", "mnist")


def mirror_list(mirrors=None):
    """The mirrors to try: the argument, else $MINICNN_MNIST_MIRRORS, else `MIRRORS`."""
    if mirrors is None:
        env = os.environ.get("MINICNN_MNIST_MIRRORS", "").replace(",", " ").split()
        mirrors = env or MIRRORS
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    return list(mirrors)


def find_file(root, name):
    """The path of `name` or `name.gz` inside `root`, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


def _how_to_fix(root, looked, offer_download=True):
    text = (f"Looked in {looked}. To fix: copy the four MNIST IDX files (.gz or not) into {root}, "
            f"or set MINICNN_DATA to a folder that contains mnist/ (e.g. MINICNN_DATA=../shared/data)")
    return text + (", or pass download=True to fetch them (needs internet)." if offer_download else ".")


class MNIST(ArrayDataset):
    """The MNIST digits as float32 (1, 28, 28) images in [0, 1] and int64 labels 0..9.

    `images` (N, 1, 28, 28) and `labels` (N,) hold the whole split in memory.
    """

    mean, std = (0.1307,), (0.3081,)
    classes = [str(d) for d in range(10)]

    def __init__(self, root=None, train=True, download=False, transform=None, mirrors=None):
        given = root is not None
        self.root = os.fspath(root) if given else default_root()
        self.train = bool(train)
        looked = self.root if given else (
            f"{self.root} (the default root: $MINICNN_DATA/mnist if MINICNN_DATA is set, "
            f"else ~/.cache/minicnn/mnist)")
        paths = []
        for name in FILES[self.train]:
            path = find_file(self.root, name)
            if path is None and download:
                hint = "If this machine is offline: " + _how_to_fix(self.root, looked, False)
                path = fetch_verified(name + ".gz", mirror_list(mirrors), self.root, MD5[name],
                                      hint=hint)
            if path is None:
                raise FileNotFoundError(f"MNIST: could not find {name} or {name}.gz. "
                                        + _how_to_fix(self.root, looked))
            paths.append(path)
        images = read_idx(paths[0], IMAGES_MAGIC)
        labels = read_idx(paths[1], LABELS_MAGIC)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"MNIST: {paths[0]} should hold images of shape (N, 28, 28), "
                             f"got {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"MNIST: {paths[1]} holds labels of shape {labels.shape}, expected "
                             f"({len(images)},) to match the {len(images)} images in {paths[0]}")
        if labels.size and labels.max() > 9:
            raise ValueError(f"MNIST: {paths[1]} has a label {int(labels.max())}, expected 0..9")
        scaled = images.reshape(-1, 1, 28, 28).astype("float32")
        scaled /= 255.0
        super().__init__(scaled, labels, transform=transform, classes=self.classes)

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"MNIST({split}, n={len(self)}, root={self.root!r}, transform={self.transform!r})"
