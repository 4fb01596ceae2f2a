"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) in three variants.

variant="paper" (default): the paper's two-GPU net on one device, 227x227 inputs. The two GPU
halves become `groups=2` in conv2, conv4 and conv5 (the layers that only saw their own GPU's
maps); conv3 and the FC layers saw both halves, so they are ordinary layers.

    layer   filters / units                          output (C x H x W)   parameters
    input                                            3 x 227 x 227
    conv1   96  11x11, stride 4, pad 0               96 x 55 x 55             34,944
            ReLU, LRN(size=5, alpha=1e-4, beta=0.75, k=2)
    pool1   max 3x3, stride 2 (overlapping)          96 x 27 x 27
    conv2   256 5x5, pad 2, groups 2                 256 x 27 x 27           307,456
            ReLU, LRN
    pool2   max 3x3, stride 2                        256 x 13 x 13
    conv3   384 3x3, pad 1                           384 x 13 x 13           885,120
    conv4   384 3x3, pad 1, groups 2                 384 x 13 x 13           663,936
    conv5   256 3x3, pad 1, groups 2                 256 x 13 x 13           442,624
    pool5   max 3x3, stride 2                        256 x 6 x 6
    fc6     9216 -> 4096, ReLU, dropout 0.5          4096                 37,752,832
    fc7     4096 -> 4096, ReLU, dropout 0.5          4096                 16,781,312
    fc8     4096 -> 1000                             1000                  4,097,000
                                                                   total 60,965,224

    OH = (H + 2P - K) // S + 1:  (227 - 11) // 4 + 1 = 55,  (55 - 3) // 2 + 1 = 27, ...
    Names: features.0 conv1, .4 conv2, .8 conv3, .10 conv4, .12 conv5; classifier.0/.3/.6 fc6-8.
    As in the paper, dropout acts on the OUTPUTS of fc6 and fc7 (Linear, ReLU, Dropout).

variant="torchvision": torchvision's single-GPU AlexNet ("One weird trick", 64/192/384/256/256
filters, no LRN, no groups) with its names and indices: features.0/3/6/8/10 convs,
avgpool = AdaptiveAvgPool2d((6, 6)), classifier.1/4/6 linears (dropout BEFORE fc6 and fc7):
61,100,840 parameters for 1000 classes. Takes any input size that survives the pools (224x224).

variant="bn": the Keras tutorial version, 227x227: the paper's filter counts without the
GPU split (no groups), no LRN, and a BatchNorm2d after the ReLU of every conv (Keras writes
`Conv2D(..., activation="relu")` followed by `BatchNormalization()`); classifier as "paper".
Names: features.0/4/8/11/14 convs, features.2/6/10/13/16 batch norms: 62,381,096 parameters.

small_input=True (any variant) makes it trainable on 32x32 images on a CPU, as CIFAR versions
do: conv1 becomes 5x5, stride 1, pad 2 (no stride-4 stem), so the maps are 32 -> pool 15 -> 15
-> pool 7 -> 7 -> pool 3, and the classifier reads 256 x 3 x 3 (torchvision: avgpool to 3x3).
`width_mult` scales every conv and hidden FC width (kept even where groups=2 needs it).
"""
from .. import functional as F
from .. import nn
from ._utils import check_choice, check_common, scaled, with_weights

VARIANTS = ("paper", "torchvision", "bn")
LRN_ARGS = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    """features -> (avgpool) -> flatten -> classifier."""
    head_names = ("classifier.6",)   # the layer whose size is the number of classes

    def __init__(self, features, classifier, avgpool=None, feature_shape=None, input_hint=""):
        super().__init__()
        self.features = features
        self.has_avgpool = avgpool is not None
        if avgpool is not None:
            self.avgpool = avgpool
        self.classifier = classifier
        self.feature_shape = feature_shape  # the (C, H, W) the classifier was built for
        self.input_hint = input_hint

    def forward(self, x):
        in_shape = x.shape
        x = self.features(x)
        if self.has_avgpool:
            x = self.avgpool(x)
        elif self.feature_shape is not None and tuple(x.shape[1:]) != self.feature_shape:
            raise ValueError(f"alexnet: expected input of shape {self.input_hint}, got {in_shape}")
        x = F.flatten(x, 1)
        return self.classifier(x)


def _conv1(in_channels, out_channels, small_input, padding=0):
    if small_input:
        return nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=1, padding=2)
    return nn.Conv2d(in_channels, out_channels, kernel_size=11, stride=4, padding=padding)


def _classifier(in_features, hidden, num_classes, dropout_first):
    """fc6-fc8. dropout_first: torchvision's order (Dropout, Linear, ReLU) instead of the paper's."""
    if dropout_first:
        return nn.Sequential(
            nn.Dropout(0.5), nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(hidden, num_classes))


def _paper(num_classes, in_channels, w, small_input):
    c1, c2, c3, c4, c5 = (scaled(c, w, divisor=2) for c in (96, 256, 384, 384, 256))
    features = nn.Sequential(
        _conv1(in_channels, c1, small_input),                        # 0  conv1
        nn.ReLU(),                                                   # 1
        nn.LocalResponseNorm(**LRN_ARGS),                            # 2
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 3
        nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=2),       # 4  conv2
        nn.ReLU(),                                                   # 5
        nn.LocalResponseNorm(**LRN_ARGS),                            # 6
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 7
        nn.Conv2d(c2, c3, kernel_size=3, padding=1),                 # 8  conv3
        nn.ReLU(),                                                   # 9
        nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=2),       # 10 conv4
        nn.ReLU(),                                                   # 11
        nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=2),       # 12 conv5
        nn.ReLU(),                                                   # 13
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 14
    )
    return features, c5


def _bn(num_classes, in_channels, w, small_input):
    c1, c2, c3, c4, c5 = (scaled(c, w) for c in (96, 256, 384, 384, 256))
    features = nn.Sequential(
        _conv1(in_channels, c1, small_input), nn.ReLU(), nn.BatchNorm2d(c1),    # 0 1 2
        nn.MaxPool2d(kernel_size=3, stride=2),                                  # 3
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(), nn.BatchNorm2d(c2),  # 4 5 6
        nn.MaxPool2d(kernel_size=3, stride=2),                                  # 7
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(), nn.BatchNorm2d(c3),  # 8 9 10
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(), nn.BatchNorm2d(c4),  # 11 12 13
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(), nn.BatchNorm2d(c5),  # 14 15 16
        nn.MaxPool2d(kernel_size=3, stride=2),                                  # 17
    )
    return features, c5


def _torchvision(num_classes, in_channels, w, small_input):
    c1, c2, c3, c4, c5 = (scaled(c, w) for c in (64, 192, 384, 256, 256))
    features = nn.Sequential(
        _conv1(in_channels, c1, small_input, padding=2),             # 0
        nn.ReLU(),                                                   # 1
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 2
        nn.Conv2d(c1, c2, kernel_size=5, padding=2),                 # 3
        nn.ReLU(),                                                   # 4
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 5
        nn.Conv2d(c2, c3, kernel_size=3, padding=1),                 # 6
        nn.ReLU(),                                                   # 7
        nn.Conv2d(c3, c4, kernel_size=3, padding=1),                 # 8
        nn.ReLU(),                                                   # 9
        nn.Conv2d(c4, c5, kernel_size=3, padding=1),                 # 10
        nn.ReLU(),                                                   # 11
        nn.MaxPool2d(kernel_size=3, stride=2),                       # 12
    )
    return features, c5


def alexnet(num_classes=1000, in_channels=3, width_mult=1.0, variant="paper", small_input=False,
            weights=None):
    """AlexNet; `variant` is "paper" (60,965,224 parameters), "torchvision" (61,100,840) or "bn".

    See the module docstring for the layer table, names and the small_input stem. `weights`: a
    weight file to load (see minicnn.weights.load_weights).
    """
    check_common("alexnet", num_classes, in_channels, width_mult)
    check_choice("alexnet", "variant", variant, VARIANTS)
    build = {"paper": _paper, "torchvision": _torchvision, "bn": _bn}[variant]
    features, channels = build(num_classes, in_channels, width_mult, small_input)
    side = 3 if small_input else 6
    hidden = scaled(4096, width_mult)
    classifier = _classifier(channels * side * side, hidden, num_classes,
                             dropout_first=(variant == "torchvision"))
    if variant == "torchvision":
        return with_weights(AlexNet(features, classifier, avgpool=nn.AdaptiveAvgPool2d((side, side))),
                            weights)
    size = 32 if small_input else 227
    model = AlexNet(features, classifier, feature_shape=(channels, side, side),
                    input_hint=f"(N, {in_channels}, {size}, {size})")
    return with_weights(model, weights)
