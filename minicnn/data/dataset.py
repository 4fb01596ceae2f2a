"""The dataset protocol the DataLoader relies on, and a dataset held in two arrays.

A dataset is anything with `__len__` and `__getitem__(i) -> (image, label)`, the image a float32
array (C, H, W) and the label an int. Datasets may also offer `get_batch(indices) -> (images,
labels)`: the loader then asks for a whole batch at once instead of one image at a time in Python.
"""
import numpy as np


class Dataset:
    """Base class: subclasses define `__len__` and `__getitem__`; `get_batch` stacks items."""

    transform = None

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def get_batch(self, indices):
        """(images (B, C, H, W), labels (B,)) for the given indices, one `__getitem__` each."""
        items = [self[int(i)] for i in indices]
        return stack_batch(items, type(self).__name__)


def stack_batch(items, name="dataset"):
    """Stack a list of (image, label) pairs into (float32 (B, C, H, W), int64 (B,)) arrays."""
    images = [np.asarray(getattr(x, "data", x)) for x, _ in items]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"{name}: images in one batch must have the same shape, got "
                         f"{sorted(shapes)}; add a Resize/CenterCrop transform")
    x = np.stack(images).astype(np.float32, copy=False) if images else np.zeros((0,), np.float32)
    y = np.asarray([np.asarray(getattr(t, "data", t)) for _, t in items])
    y = y.astype(np.int64, copy=False) if y.dtype.kind in "biu" else y.astype(np.float32, copy=False)
    return x, y


class ArrayDataset(Dataset):
    """Images and labels held in two arrays: `images` float32 (N, C, H, W), `labels` int64 (N,).

    Without a transform, `get_batch` is one fancy-indexing copy per batch (no Python loop per
    image); with a transform each image goes through it one at a time, as in PyTorch.
    """

    def __init__(self, images, labels, transform=None, classes=None):
        images = np.asarray(images, dtype=np.float32)
        labels = np.asarray(labels).astype(np.int64, copy=False)
        if images.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected images of shape (N, C, H, W), "
                             f"got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{type(self).__name__}: expected labels of shape ({images.shape[0]},), "
                             f"got {labels.shape}")
        self.images, self.labels, self.transform = images, labels, transform
        if classes is None:
            classes = [str(c) for c in range(int(labels.max()) + 1)] if labels.size else []
        self.classes = list(classes)

    @property
    def targets(self):
        """torchvision's name for the labels."""
        return self.labels

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image.copy())  # transforms may write in place
        return image, int(self.labels[index])

    def get_batch(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        if self.transform is not None:
            return super().get_batch(indices)
        return self.images[indices], self.labels[indices]

    def __repr__(self):
        return (f"{type(self).__name__}(n={len(self)}, image shape={self.images.shape[1:]}, "
                f"classes={len(self.classes)}, transform={self.transform!r})")
