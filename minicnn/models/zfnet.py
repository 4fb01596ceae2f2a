"""ZFNet (Zeiler & Fergus, 2013): AlexNet with a gentler first layer, and wider conv3-5.

The paper's Figure 3 net with conv3/4/5 widened to 512/1024/512 (their best single model).
Each of the first two layers is conv -> ReLU -> max pool 3x3/2 -> LRN ("contrast normalized
across feature maps"; the AlexNet LRN with size 5, alpha 1e-4, beta 0.75, k 2).

    layer   filters / units                       output (C x H x W)   parameters
    input                                         3 x 224 x 224
    conv1   96   7x7, stride 2, pad 1             96 x 110 x 110           14,208
    pool1   max 3x3, stride 2, ceil_mode          96 x 55 x 55
    conv2   256  5x5, stride 2, pad 0             256 x 26 x 26           614,656
    pool2   max 3x3, stride 2, ceil_mode          256 x 13 x 13
    conv3   512  3x3, stride 1, pad 1             512 x 13 x 13         1,180,160
    conv4   1024 3x3, stride 1, pad 1             1024 x 13 x 13        4,719,616
    conv5   512  3x3, stride 1, pad 1             512 x 13 x 13         4,719,104
    pool5   max 3x3, stride 2                     512 x 6 x 6
    fc6     18432 -> 4096, ReLU, dropout 0.5      4096                 75,501,568
    fc7     4096 -> 4096, ReLU, dropout 0.5       4096                 16,781,312
    fc8     4096 -> 1000                          1000                  4,097,000
                                                                 total 107,627,624

How the paddings were worked out (OH = (H + 2P - K) // S + 1; ceil_mode uses ceil instead):
    conv1  (224 + 2*1 - 7) // 2 + 1 = 110     (pad 0 would give 109)
    pool1  ceil((110 - 3) / 2) + 1  = 55      (floor would give 54; Caffe-style rounding)
    conv2  (55 - 5) // 2 + 1        = 26
    pool2  ceil((26 - 3) / 2) + 1   = 13
    pool5  (13 - 3) // 2 + 1        = 6

Names: features.0 conv1, .4 conv2, .8/.10/.12 conv3-5; classifier.0/.3/.6 fc6-8.
small_input=True (32x32 images): conv1 7x7 stride 1 pad 3 and conv2 5x5 stride 1 pad 2, so the
maps are 32 -> pool 16 -> 16 -> pool 8 -> 8 -> pool 3 and fc6 reads 512 x 3 x 3.
"""
from .. import functional as F
from .. import nn
from ._utils import check_common, scaled, with_weights

LRN_ARGS = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)


class ZFNet(nn.Module):
    head_names = ("classifier.6",)   # the layer whose size is the number of classes

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False):
        super().__init__()
        check_common("zfnet", num_classes, in_channels, width_mult)
        c1, c2, c3, c4, c5 = (scaled(c, width_mult) for c in (96, 256, 512, 1024, 512))
        hidden = scaled(4096, width_mult)
        if small_input:
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=7, stride=1, padding=3)
            conv2 = nn.Conv2d(c1, c2, kernel_size=5, stride=1, padding=2)
            side, size = 3, 32
        else:
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=7, stride=2, padding=1)
            conv2 = nn.Conv2d(c1, c2, kernel_size=5, stride=2, padding=0)
            side, size = 6, 224
        self.features = nn.Sequential(
            conv1,                                                   # 0  conv1
            nn.ReLU(),                                               # 1
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 2
            nn.LocalResponseNorm(**LRN_ARGS),                        # 3
            conv2,                                                   # 4  conv2
            nn.ReLU(),                                               # 5
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 6
            nn.LocalResponseNorm(**LRN_ARGS),                        # 7
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),             # 8  conv3
            nn.ReLU(),                                               # 9
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),             # 10 conv4
            nn.ReLU(),                                               # 11
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),             # 12 conv5
            nn.ReLU(),                                               # 13
            nn.MaxPool2d(kernel_size=3, stride=2),                   # 14
        )
        self.classifier = nn.Sequential(
            nn.Linear(c5 * side * side, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
        self.feature_shape = (c5, side, side)
        self.input_hint = f"(N, {in_channels}, {size}, {size})"

    def forward(self, x):
        in_shape = x.shape
        x = self.features(x)
        if tuple(x.shape[1:]) != self.feature_shape:
            raise ValueError(f"zfnet: expected input of shape {self.input_hint}, got {in_shape}")
        x = F.flatten(x, 1)
        return self.classifier(x)


def zfnet(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ZFNet for 224x224 inputs (or 32x32 with small_input); see the module docstring.
    `weights`: a weight file to load (see minicnn.weights.load_weights)."""
    return with_weights(ZFNet(num_classes, in_channels, width_mult, small_input), weights)
