"""ImageFolder: images stored as `root/<class name>/<image file>`, as torchvision's.

    root/cat/001.png
    root/cat/002.jpg
    root/dog/xyz.png

Classes are the sub-folder names, sorted (`classes`, `class_to_idx`); `samples` lists
(path, class index) sorted by class and file name. Images are read lazily, one per `ds[i]`, with
Pillow (imported only then), converted to RGB (`mode="RGB"`, torchvision's default) or grey
(`mode="L"`), and returned as float32 (C, H, W) in [0, 1] before `transform` is applied.
A file that cannot be decoded raises `ImageFileError` (an OSError) naming it.
"""
import os
import struct

import numpy as np

from .dataset import Dataset

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageFileError(OSError):
    """An image file that Pillow cannot read (not an image, truncated, damaged); the message names
    the file. An OSError, as Pillow's own errors are."""


def load_image(path, mode="RGB"):
    """The image file at `path` as float32 (C, H, W) in [0, 1]; `ImageFileError` naming the file
    when it cannot be read or decoded."""
    from PIL import Image  # lazily: only folder datasets need Pillow

    # What Pillow raises on a bad file: OSError (truncated, unidentified, broken stream), SyntaxError
    # (broken PNG chunks), ValueError/EOFError/struct.error (bad headers), DecompressionBombError.
    bad_file = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
    if mode not in getattr(Image, "MODES", (mode,)):   # first: a bad mode is not a bad file
        raise ValueError(f"load_image: unknown mode {mode!r}; expected 'RGB', 'L' or another Pillow mode")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert(mode))
    except bad_file as exc:
        raise ImageFileError(f"cannot read the image {path}: {exc} (delete or replace the file)") from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)


class ImageFolder(Dataset):
    """A dataset of image files in one sub-folder per class; see the module docstring."""

    def __init__(self, root, transform=None, mode="RGB", extensions=IMG_EXTENSIONS):
        self.root = os.fspath(root)
        self.transform, self.mode = transform, mode
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: root folder {self.root} does not exist")
        self.classes = sorted(e.name for e in os.scandir(self.root)
                              if e.is_dir() and not e.name.startswith("."))
        if not self.classes:
            raise FileNotFoundError(f"ImageFolder: found no class folders in {self.root}; expected "
                                    f"root/<class>/<image> with one sub-folder per class")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        extensions = tuple(e.lower() for e in extensions)
        self.samples = []
        for c in self.classes:
            folder = os.path.join(self.root, c)
            for dirpath, dirnames, filenames in sorted(os.walk(folder, followlinks=True)):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.lower().endswith(extensions) and not name.startswith("."):
                        self.samples.append((os.path.join(dirpath, name), self.class_to_idx[c]))
        if not self.samples:
            raise FileNotFoundError(f"ImageFolder: found no image files ({', '.join(extensions)}) "
                                    f"in the class folders of {self.root}")
        self.targets = [t for _, t in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        image = load_image(path, self.mode)
        if self.transform is not None:
            image = self.transform(image)
        return image, target

    def __repr__(self):
        return (f"ImageFolder(root={self.root!r}, n={len(self)}, classes={len(self.classes)}, "
                f"transform={self.transform!r})")
