"""Layers (`minicnn.nn`): Module and Parameter, containers, the layers of the classic CNNs,
weight initialisation (`nn.init`) and `nn.summary`. Names and defaults are PyTorch's."""
from . import init
from .activation import ELU, LeakyReLU, LogSoftmax, Maxout, ReLU, Sigmoid, Softmax, Tanh
from .container import Flatten, Identity, ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d, Linear
from .dropout import Dropout, Dropout2d
from .module import IncompatibleKeys, Module, Parameter, RemovableHandle, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .summary import ModelSummary, summary
from .sync_batchnorm import SyncBatchNorm

__all__ = ["init", "summary", "ModelSummary", "Module", "Parameter", "StateDictError", "IncompatibleKeys",
           "RemovableHandle", "Sequential", "ModuleList", "ModuleDict", "Identity", "Flatten",
           "Conv1d", "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "Maxout", "Softmax", "LogSoftmax",
           "Dropout", "Dropout2d", "LocalResponseNorm", "BatchNorm1d", "BatchNorm2d",
           "SyncBatchNorm"]
