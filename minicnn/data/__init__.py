"""Datasets, transforms and the DataLoader.

    from minicnn import data
    train = data.MNIST(transform=data.transforms.Normalize(data.MNIST.mean, data.MNIST.std))
    loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for x, y in loader:      # x: Tensor float32 (64, 1, 28, 28), y: Tensor int64 (64,)
        ...

Datasets return `(image float32 (C, H, W), label int)` from `ds[i]`, have `len(ds)` and
`ds.classes`; the in-memory ones (MNIST, Shapes) also hold `ds.images` and `ds.labels` arrays.
"""
from . import transforms
from .dataset import ArrayDataset, Dataset
from .folder import ImageFileError, ImageFolder
from .loader import DataLoader
from .mnist import MNIST
from .sampler import DistributedSampler
from .shapes import Shapes

__all__ = ["DataLoader", "Dataset", "ArrayDataset", "MNIST", "Shapes", "ImageFolder", "ImageFileError",
           "transforms", "DistributedSampler"]
