"""VGG (Simonyan & Zisserman, 2014): configurations A, A-LRN, B, C, D, E of the paper's Table 1.

Every conv is 3x3, stride 1, pad 1 (the map size is kept), except the 1x1 convs of C (pad 0);
each is followed by ReLU (and a BatchNorm2d before the ReLU when batch_norm=True, as
torchvision's vgg*_bn). Five max pools 2x2/2 halve the map: 224 -> 112 -> 56 -> 28 -> 14 -> 7.

    cfg (weight layers)  A (11)    A-LRN (11)  B (13)    C (16)       D (16)    E (19)
    224 x 224            64        64, LRN     64 64     64 64        64 64     64 64
    pool -> 112          128       128         128 128   128 128      128 128   128 128
    pool -> 56           256 256   256 256     256 256   256 256 256* 256 x3    256 x4
    pool -> 28           512 512   512 512     512 512   512 512 512* 512 x3    512 x4
    pool -> 14           512 512   512 512     512 512   512 512 512* 512 x3    512 x4
    pool -> 7            then FC 25088 -> 4096 -> 4096 -> num_classes (ReLU, dropout 0.5)
    parameters (1000)    132.9M    132.9M      133.0M    133.6M       138.4M    143.7M
    (* = conv1-256 / conv1-512: a 1x1 conv)

Exact: A 132,863,336; B 133,047,848; C 133,638,952; D 138,357,544; E 143,667,240.
torchvision's names: `features.N` (convs, ReLUs, pools, batch norms by index),
`avgpool` = AdaptiveAvgPool2d((7, 7)), `classifier.0/.3/.6` the linears (Linear, ReLU, Dropout,
Linear, ReLU, Dropout, Linear); vgg11/13/16/19 are A/B/D/E. A-LRN puts LRN (size 5,
alpha 1e-4, beta 0.75, k 2) after the first conv's ReLU; C is not in torchvision.
Initialisation is torchvision's: kaiming_normal_(fan_out, relu) for convs, N(0, 0.01) for
linears, zero biases, BN weight 1 / bias 0.

small_input=True (32x32 images, as CIFAR VGGs): the same features (32 -> 1 after five pools),
avgpool = AdaptiveAvgPool2d((1, 1)), and fc6 reads 512 features instead of 512 x 7 x 7.
"""
from .. import functional as F
from .. import nn
from ._utils import check_choice, check_common, scaled, with_weights

# ints: 3x3 convs with that many filters; (n, 1): a 1x1 conv; "M": max pool 2x2/2; "LRN"
CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_features(cfg, in_channels, batch_norm, width_mult):
    """The conv part as one nn.Sequential, indexed as torchvision indexes it."""
    layers, channels = [], in_channels
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif item == "LRN":
            layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            out, k = item if isinstance(item, tuple) else (item, 3)
            out = scaled(out, width_mult)
            layers.append(nn.Conv2d(channels, out, kernel_size=k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
    return nn.Sequential(*layers), channels


class VGG(nn.Module):
    head_names = ("classifier.6",)   # the layer whose size is the number of classes

    def __init__(self, features, channels, num_classes=1000, width_mult=1.0, small_input=False):
        super().__init__()
        side = 1 if small_input else 7
        hidden = scaled(4096, width_mult)
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        self.classifier = nn.Sequential(
            nn.Linear(channels * side * side, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def vgg(cfg, batch_norm=False, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False,
        weights=None):
    """VGG with configuration `cfg` in "A", "A-LRN", "B", "C", "D", "E" (see the table above);
    `weights`: a weight file to load (see minicnn.weights.load_weights)."""
    check_choice("vgg", "cfg", cfg, tuple(CFGS))
    check_common("vgg", num_classes, in_channels, width_mult)
    features, channels = make_features(CFGS[cfg], in_channels, batch_norm, width_mult)
    return with_weights(VGG(features, channels, num_classes, width_mult, small_input), weights)


def vgg11(batch_norm=False, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False,
          weights=None):
    """VGG-11, configuration A: 132,863,336 parameters (torchvision's vgg11)."""
    return vgg("A", batch_norm, num_classes, in_channels, width_mult, small_input, weights)


def vgg13(batch_norm=False, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False,
          weights=None):
    """VGG-13, configuration B: 133,047,848 parameters (torchvision's vgg13)."""
    return vgg("B", batch_norm, num_classes, in_channels, width_mult, small_input, weights)


def vgg16(batch_norm=False, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False,
          weights=None):
    """VGG-16, configuration D: 138,357,544 parameters (torchvision's vgg16)."""
    return vgg("D", batch_norm, num_classes, in_channels, width_mult, small_input, weights)


def vgg19(batch_norm=False, num_classes=1000, in_channels=3, width_mult=1.0, small_input=False,
          weights=None):
    """VGG-19, configuration E: 143,667,240 parameters (torchvision's vgg19)."""
    return vgg("E", batch_norm, num_classes, in_channels, width_mult, small_input, weights)
