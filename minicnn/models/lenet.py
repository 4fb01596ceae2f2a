"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998), the course's version for 28x28 MNIST digits.

    layer     filters / units           output (C x H x W)   parameters
    input                                1 x 28 x 28
    conv1     6   5x5, stride 1, pad 2   6 x 28 x 28          6*1*25 + 6    =    156
    pool1     max 2x2, stride 2          6 x 14 x 14
    conv2     16  5x5, stride 1, pad 0   16 x 10 x 10         16*6*25 + 16  =  2,416
    pool2     max 2x2, stride 2          16 x 5 x 5
    fc1       400 -> 120                 120                  400*120 + 120 = 48,120
    fc2       120 -> 84                  84                   120*84 + 84   = 10,164
    fc3       84 -> 10                   10                   84*10 + 10    =    850
                                                                       total = 61,706

Choices, stated once: the default is the modern course version, ReLU after every conv and
hidden FC layer, and MAX pooling. The 1998 paper used a scaled tanh, trainable average
"subsampling" (one weight and bias per map) and a sparse C3 connection table, and read 32x32
images; padding conv1 by 2 lets a 28x28 MNIST digit play the role of that 32x32 input.
`activation="tanh", pool="avg"` gives the classic flavour (plain tanh and plain average
pooling, full C3 connections), with the same 61,706 parameters.

Names: `features.0` conv1, `features.3` conv2, `classifier.0/.2/.4` fc1/fc2/fc3.
"""
from .. import functional as F
from .. import nn
from ._utils import check_choice, check_common, scaled, with_weights


class LeNet5(nn.Module):
    head_names = ("classifier.4",)   # the layer whose size is the number of classes

    def __init__(self, num_classes=10, in_channels=1, width_mult=1.0, activation="relu", pool="max"):
        super().__init__()
        check_common("lenet5", num_classes, in_channels, width_mult)
        check_choice("lenet5", "activation", activation, ("relu", "tanh"))
        check_choice("lenet5", "pool", pool, ("max", "avg"))
        act = nn.ReLU if activation == "relu" else nn.Tanh
        pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        c1, c2 = scaled(6, width_mult), scaled(16, width_mult)
        h1, h2 = scaled(120, width_mult), scaled(84, width_mult)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),  # 28x28 -> 28x28
            act(),
            pool_layer(2, 2),                                        # -> 14x14
            nn.Conv2d(c1, c2, kernel_size=5),                        # -> 10x10
            act(),
            pool_layer(2, 2),                                        # -> 5x5
        )
        self.classifier = nn.Sequential(
            nn.Linear(c2 * 5 * 5, h1),
            act(),
            nn.Linear(h1, h2),
            act(),
            nn.Linear(h2, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def lenet5(num_classes=10, in_channels=1, width_mult=1.0, activation="relu", pool="max", weights=None):
    """LeNet-5 for 28x28 inputs: 61,706 parameters for 10 classes (see the module docstring);
    `weights`: a weight file to load (see minicnn.weights.load_weights)."""
    return with_weights(LeNet5(num_classes, in_channels, width_mult, activation, pool), weights)
