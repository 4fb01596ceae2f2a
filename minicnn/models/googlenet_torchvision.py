"""torchvision's GoogLeNet: `googlenet(variant="torchvision")`, so that its ImageNet weights load.

It is the paper's Inception v1 (see googlenet.py for the table) as torchvision rebuilt it, which
differs in ways a weight file notices:

    every conv is a BasicConv2d: conv (no bias) -> BatchNorm2d(eps=0.001) -> ReLU
    no LocalResponseNorm in the stem
    branch3 of every inception module is 1x1 -> 3x3 (the paper: 5x5; torchvision keeps this
        known slip so that its published weights still fit)
    the pool branch's 3x3/1 max pool and every stem pool round up (ceil_mode); maxpool4 is 2x2/2
    aux classifiers: adaptive average pool to 4x4, BasicConv2d 1x1 128, fc1 2048 -> 1024 + ReLU,
        dropout 0.7, fc2; the final dropout is 0.2 and avgpool is adaptive (any input that
        survives the pools, e.g. 64x64)
    transform_input: the ImageNet weights were trained on inputs scaled to [-1, 1]; with
        transform_input=True the model takes ImageNet-normalised images, x = (p - mean) / std,
        and turns them back into (p - 0.5) / 0.5 per channel: x * std / 0.5 + (mean - 0.5) / 0.5.

Names are torchvision's: conv1.conv.weight, conv1.bn.running_mean, inception3a.branch2.1.conv.weight,
inception3a.branch4.1.bn.weight, aux1.conv.conv.weight, aux1.fc1.weight, fc.weight.
6,624,904 parameters for 1000 classes without the aux classifiers, 13,004,888 with them.
As minicnn's paper GoogLeNet (not torchvision's order), training mode with aux_logits returns
`(logits, aux1, aux2)`; eval mode the logits alone.

small_input=True (32x32 images): conv1 3x3/1 (pad 1) and no maxpool1, as the paper variant.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ._utils import scaled
from .googlenet import add_inceptions, inceptions_and_head


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm2d(eps=0.001) -> ReLU, torchvision's building block."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated along channels; branch3 is 1x1 -> 3x3 (see the docstring)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1),
                                     BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1),
                                     BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        return F.concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], axis=1)


class InceptionAux(nn.Module):
    """Adaptive average pool to 4x4, BasicConv2d 1x1 128, fc1 -> 1024, ReLU, dropout 0.7, fc2."""

    def __init__(self, in_channels, num_classes, width_mult=1.0):
        super().__init__()
        conv_ch, hidden = scaled(128, width_mult), scaled(1024, width_mult)
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, conv_ch, 1)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(conv_ch * 4 * 4, hidden)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.flatten(self.conv(self.avgpool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNetTorchvision(nn.Module):
    head_names = ("fc", "aux1.fc2", "aux2.fc2")   # the layers whose size is the number of classes
    optional_names = ("aux1", "aux2")              # a weight file may have them or not

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, aux_logits=True,
                 transform_input=False, small_input=False):
        super().__init__()
        s = lambda c: scaled(c, width_mult)  # noqa: E731
        self.aux_logits, self.transform_input = bool(aux_logits), bool(transform_input)
        if self.transform_input and in_channels != 3:
            raise ValueError(f"googlenet: transform_input=True maps the three ImageNet-normalised "
                             f"RGB channels, got in_channels={in_channels}")
        if small_input:
            self.conv1 = BasicConv2d(in_channels, s(64), 3, stride=1, padding=1)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = BasicConv2d(in_channels, s(64), 7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(s(64), s(64), 1)
        self.conv3 = BasicConv2d(s(64), s(192), 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels = add_inceptions(self, Inception, s(192), s, pool4_size=2)
        if self.aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, width_mult)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, width_mult)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self):
        """torchvision's: N(0, 0.01) truncated at +-2 (i.e. +-200 std, so in effect plain) for
        conv and linear weights; batch norm weight 1, bias 0; linear biases PyTorch's default."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.zeros_(m.bias)

    def _transform(self, x):
        """ImageNet-normalised channels back to (p - 0.5) / 0.5: x * std / 0.5 + (mean - 0.5) / 0.5."""
        scale = (np.array(IMAGENET_STD, np.float32) / 0.5).reshape(1, 3, 1, 1)
        shift = ((np.array(IMAGENET_MEAN, np.float32) - 0.5) / 0.5).reshape(1, 3, 1, 1)
        return x * scale.astype(x.dtype) + shift.astype(x.dtype)

    def forward(self, x):
        if self.transform_input:
            x = self._transform(x)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        return inceptions_and_head(self, x)
