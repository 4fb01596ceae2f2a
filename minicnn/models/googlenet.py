"""GoogLeNet, Inception v1 (Szegedy et al., 2014), as in the paper's Table 1 (no batch norm).

    layer          patch/stride  output (H x W x C)  #1x1  #3x3r  #3x3  #5x5r  #5x5  pool proj
    conv1          7x7/2         112 x 112 x 64
    maxpool1       3x3/2         56 x 56 x 64
    lrn1 (LocalResponseNorm)     56 x 56 x 64
    conv2 (reduce) 1x1/1         56 x 56 x 64
    conv3          3x3/1         56 x 56 x 192
    lrn2, maxpool2 3x3/2         28 x 28 x 192
    inception3a                  28 x 28 x 256       64    96     128   16     32    32
    inception3b                  28 x 28 x 480       128   128    192   32     96    64
    maxpool3       3x3/2         14 x 14 x 480
    inception4a                  14 x 14 x 512       192   96     208   16     48    64
    inception4b                  14 x 14 x 512       160   112    224   24     64    64
    inception4c                  14 x 14 x 512       128   128    256   24     64    64
    inception4d                  14 x 14 x 528       112   144    288   32     64    64
    inception4e                  14 x 14 x 832       256   160    320   32     128   128
    maxpool4       3x3/2         7 x 7 x 832
    inception5a                  7 x 7 x 832         256   160    320   32     128   128
    inception5b                  7 x 7 x 1024        384   192    384   48     128   128
    avgpool        7x7/1         1 x 1 x 1024
    dropout (40%), fc            num_classes

Every conv (also the 1x1 reductions and the pool projections) is followed by ReLU. The max
pools 3x3/2 round up (ceil_mode, as Caffe and torchvision): 112 -> 56 -> 28 -> 14 -> 7.
An inception module concatenates, along channels, four branches on the same input:
    branch1: 1x1 conv;  branch2: 1x1 reduce -> 3x3 conv (pad 1);
    branch3: 1x1 reduce -> 5x5 conv (pad 2);  branch4: max pool 3x3/1 (pad 1) -> 1x1 proj.

Auxiliary classifiers (aux1 on 4a's output, aux2 on 4d's): avg pool 5x5/3 (14x14 -> 4x4),
1x1 conv 128 + ReLU, FC 2048 -> 1024 + ReLU, dropout 0.7, FC 1024 -> num_classes.
With aux_logits=True, training mode returns `(logits, aux1, aux2)`; eval mode returns the
logits alone. The paper adds the aux losses with weight 0.3: `googlenet_loss` does that.

Parameters for 1000 classes (weights and biases): 6,998,552 without the aux classifiers (the
paper's table, which rounds and leaves out biases, sums to about 6.8M), 13,378,280 with them.
Names are this module's own (conv1, inception3a.branch2.2.weight, aux1.fc1.weight, fc, ...).
torchvision's GoogLeNet (batch norm, other names) is `googlenet(variant="torchvision")`, in
googlenet_torchvision.py; its ImageNet weights load there.

small_input=True (32x32 images): conv1 is 3x3/1 (pad 1) and maxpool1 is skipped (Identity), so
the maps are 32 -> maxpool2 16 (3a, 3b) -> 8 (4a-4e) -> 4 (5a, 5b) -> global average; the aux
classifiers average-pool their 8x8 input to 4x4 adaptively (same FC sizes as the paper's).
"""
from .. import functional as F
from .. import nn
from ._utils import check_choice, check_common, scaled, with_weights

LRN_ARGS = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
AUX_WEIGHT = 0.3

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), the paper's Table 1
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def conv_relu(in_channels, out_channels, kernel_size, stride=1, padding=0):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU())


class Inception(nn.Module):
    """Four parallel branches on one input, concatenated along the channel axis."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(in_channels, ch3x3red, 1), nn.ReLU(),
                                     nn.Conv2d(ch3x3red, ch3x3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, ch5x5red, 1), nn.ReLU(),
                                     nn.Conv2d(ch5x5red, ch5x5, 5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU())
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return F.concat(branches, axis=1)


class InceptionAux(nn.Module):
    """The auxiliary classifier: pool to 4x4, 1x1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, in_channels, num_classes, width_mult=1.0, small_input=False):
        super().__init__()
        conv_ch, hidden = scaled(128, width_mult), scaled(1024, width_mult)
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4)) if small_input else nn.AvgPool2d(5, stride=3)
        self.conv = nn.Conv2d(in_channels, conv_ch, 1)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(conv_ch * 4 * 4, hidden)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.relu(self.conv(self.avgpool(x)))   # 4 x 4 x 128
        x = F.flatten(x, 1)
        x = self.dropout(self.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    head_names = ("fc", "aux1.fc2", "aux2.fc2")   # the layers whose size is the number of classes
    optional_names = ("aux1", "aux2")              # a weight file may have them or not

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, aux_logits=True,
                 small_input=False):
        super().__init__()
        check_common("googlenet", num_classes, in_channels, width_mult)
        s = lambda c: scaled(c, width_mult)  # noqa: E731
        self.aux_logits = bool(aux_logits)
        if small_input:
            self.conv1 = conv_relu(in_channels, s(64), 3, stride=1, padding=1)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = conv_relu(in_channels, s(64), 7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.lrn1 = nn.LocalResponseNorm(**LRN_ARGS)
        self.conv2 = conv_relu(s(64), s(64), 1)
        self.conv3 = conv_relu(s(64), s(192), 3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(**LRN_ARGS)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = add_inceptions(self, Inception, s(192), s, pool4_size=3)
        if self.aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, width_mult, small_input)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, width_mult, small_input)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)) if small_input else nn.AvgPool2d(7, stride=1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self):
        """He initialisation, N(0, 2 / fan_in), and zero biases for every conv and linear layer.

        Without batch norm, PyTorch's default (uniform, variance 1 / (3 fan_in)) shrinks the
        signal about sixfold per ReLU layer and 22 layers deep nothing is left to learn from;
        He's rule keeps the variance steady through the ReLUs. (The BVLC Caffe model used
        "xavier" weights with 0.2 biases for the same reason.)"""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(self.lrn1(x)))))
        return inceptions_and_head(self, x)


def add_inceptions(net, make, channels, s, pool4_size):
    """Inception 3a ... 5b as `net.inception3a` ..., built by `make(in_channels, *widths)` with the
    table's widths scaled by `s`; `maxpool3` (3x3/2) after 3b and `maxpool4` (pool4_size/2) after
    4e, both rounding up. Returns the channels of 5b's output."""
    for name in INCEPTION:
        module = make(channels, *(s(c) for c in INCEPTION[name]))
        setattr(net, "inception" + name, module)
        channels = module.out_channels
        if name == "3b":
            net.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        elif name == "4e":
            net.maxpool4 = nn.MaxPool2d(pool4_size, stride=2, ceil_mode=True)
    return channels


def inceptions_and_head(net, x):
    """From the stem's output to the logits, the part the paper's and torchvision's GoogLeNets
    share: `(logits, aux1, aux2)` in training mode with aux classifiers, else the logits."""
    x = net.maxpool3(net.inception3b(net.inception3a(x)))
    x = net.inception4a(x)
    aux = net.training and net.aux_logits
    aux1 = net.aux1(x) if aux else None
    x = net.inception4d(net.inception4c(net.inception4b(x)))
    aux2 = net.aux2(x) if aux else None
    x = net.maxpool4(net.inception4e(x))
    x = net.inception5b(net.inception5a(x))
    logits = net.fc(net.dropout(F.flatten(net.avgpool(x), 1)))
    return (logits, aux1, aux2) if aux else logits


def googlenet(num_classes=1000, in_channels=3, width_mult=1.0, aux_logits=True, small_input=False,
              variant="paper", transform_input=None, weights=None):
    """GoogLeNet (Inception v1): variant="paper" as in the paper's Table 1 (see the module
    docstring), or variant="torchvision", torchvision's rebuild with batch norm and its names
    (see googlenet_torchvision.py), whose ImageNet weights load with `weights=`.

    `transform_input` (torchvision variant only): take ImageNet-normalised images and map them to
    the [-1, 1] scaling torchvision's ImageNet weights were trained on; by default True when
    `weights` is given, as torchvision does when it loads its weights, else False.
    `weights`: a weight file to load (see minicnn.weights.load_weights); a file with aux
    classifiers loads into a model without them (they are dropped)."""
    check_common("googlenet", num_classes, in_channels, width_mult)
    check_choice("googlenet", "variant", variant, ("paper", "torchvision"))
    if variant == "paper":
        if transform_input:
            raise ValueError("googlenet: transform_input belongs to variant='torchvision'")
        return with_weights(GoogLeNet(num_classes, in_channels, width_mult, aux_logits, small_input),
                            weights)
    from .googlenet_torchvision import GoogLeNetTorchvision
    if transform_input is None:
        transform_input = weights is not None
    model = GoogLeNetTorchvision(num_classes, in_channels, width_mult, aux_logits, transform_input,
                                 small_input)
    return with_weights(model, weights)


def googlenet_loss(outputs, target, aux_weight=AUX_WEIGHT):
    """Cross-entropy of the logits plus `aux_weight` (0.3, the paper's) times each aux loss.

    `outputs` is what GoogLeNet returned: the tuple `(logits, aux1, aux2)` in training mode, or
    the logits alone (then this is the plain cross-entropy).
    """
    if not isinstance(outputs, (tuple, list)):
        return F.cross_entropy(outputs, target)
    logits, *aux = outputs
    loss = F.cross_entropy(logits, target)
    for a in aux:
        loss = loss + aux_weight * F.cross_entropy(a, target)
    return loss
