"""ResNet (He, Zhang, Ren & Sun, 2015) with torchvision's structure and names, and the "plain"
nets of the paper's degradation experiment (the same layers, every shortcut removed).

    stage     output (224 input)   resnet18     resnet34     resnet50/101/152
    conv1     112 x 112            7x7, 64, stride 2, pad 3 (no bias) + bn1 + relu
    maxpool   56 x 56              3x3 max pool, stride 2, pad 1
    layer1    56 x 56   x 64/256   [3x3, 64; 3x3, 64] x 2/3  [1x1, 64; 3x3, 64; 1x1, 256] x 3/3/3
    layer2    28 x 28   x 128/512  x 2 / 4                    [1x1,128; 3x3,128; 1x1,512] x 4/4/8
    layer3    14 x 14   x 256/1024 x 2 / 6                    [.., 256 .., 1024] x 6/23/36
    layer4    7 x 7     x 512/2048 x 2 / 3                    [.., 512 .., 2048] x 3/3/3
    avgpool   1 x 1                AdaptiveAvgPool2d((1, 1)), then fc -> num_classes
    parameters (1000 classes)      resnet18 11,689,512   resnet34 21,797,672   resnet50 25,557,032
                                   resnet101 44,549,160  resnet152 60,192,808

BasicBlock (18, 34):  out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
Bottleneck (50+):     out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
with the stride on the 3x3 conv (conv2) as torchvision ("ResNet v1.5"). The shortcut is the
identity, or `downsample` = 1x1 conv (stride s, no bias) + BatchNorm2d when the block changes
the map size or width (projection shortcut, option B of the paper). Convs have no bias (a
batch norm follows each). Names: conv1, bn1, relu, maxpool, layer1..4 (layer1.0.conv1,
layer1.0.bn1, layer2.0.downsample.0/.1, ...), avgpool, fc, as torchvision's.
Initialisation is torchvision's: kaiming_normal_(fan_out, relu) for convs, BN weight 1 / bias 0,
PyTorch's default for fc.

plain18/plain34: `shortcut=False`: no identity add and no downsample modules at all (the
projections go too), the rest (every conv, batch norm and ReLU) unchanged; such a net gets
harder to train as it gets deeper, which residual nets fix.

small_input=True (32x32 images, as the CIFAR versions): conv1 is 3x3, stride 1, pad 1, and
the max pool is skipped (Identity): stages at 32, 16, 8, 4. `width_mult` scales the stage widths
64/128/256/512 (and conv1's 64).
"""
from .. import functional as F
from .. import nn
from ._utils import check_common, scaled, with_weights


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, shortcut=True):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut
        self.has_downsample = downsample is not None
        if downsample is not None:
            self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + (self.downsample(x) if self.has_downsample else x)
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, shortcut=True):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)  # the stride sits on the 3x3, as torchvision
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.shortcut = shortcut
        self.has_downsample = downsample is not None
        if downsample is not None:
            self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut:
            out = out + (self.downsample(x) if self.has_downsample else x)
        return self.relu(out)


class ResNet(nn.Module):
    head_names = ("fc",)   # the layers whose size is the number of classes

    def __init__(self, block, layers, num_classes=1000, in_channels=3, width_mult=1.0,
                 small_input=False, shortcut=True, name="resnet"):
        super().__init__()
        check_common(name, num_classes, in_channels, width_mult)
        self.shortcut = shortcut
        self.inplanes = scaled(64, width_mult)
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, scaled(64, width_mult), layers[0])
        self.layer2 = self._make_layer(block, scaled(128, width_mult), layers[1], stride=2)
        self.layer3 = self._make_layer(block, scaled(256, width_mult), layers[2], stride=2)
        self.layer4 = self._make_layer(block, scaled(512, width_mult), layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if self.shortcut and (stride != 1 or self.inplanes != planes * block.expansion):
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.shortcut)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, shortcut=self.shortcut))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-18: BasicBlock x [2, 2, 2, 2], 11,689,512 parameters (torchvision's resnet18)."""
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, width_mult, small_input,
                   name="resnet18")
    return with_weights(model, weights)


def resnet34(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-34: BasicBlock x [3, 4, 6, 3], 21,797,672 parameters (torchvision's resnet34)."""
    model = ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, width_mult, small_input,
                   name="resnet34")
    return with_weights(model, weights)


def resnet50(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-50: Bottleneck x [3, 4, 6, 3], 25,557,032 parameters (torchvision's resnet50)."""
    model = ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, width_mult, small_input,
                   name="resnet50")
    return with_weights(model, weights)


def resnet101(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-101: Bottleneck x [3, 4, 23, 3], 44,549,160 parameters (torchvision's resnet101)."""
    model = ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, width_mult, small_input,
                   name="resnet101")
    return with_weights(model, weights)


def resnet152(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-152: Bottleneck x [3, 8, 36, 3], 60,192,808 parameters (torchvision's resnet152)."""
    model = ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, width_mult, small_input,
                   name="resnet152")
    return with_weights(model, weights)


def plain18(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-18's layers with every shortcut (and projection) removed: 11,515,688 parameters."""
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, width_mult, small_input,
                   shortcut=False, name="plain18")
    return with_weights(model, weights)


def plain34(num_classes=1000, in_channels=3, width_mult=1.0, small_input=False, weights=None):
    """ResNet-34's layers with every shortcut (and projection) removed: 21,623,848 parameters."""
    model = ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, width_mult, small_input,
                   shortcut=False, name="plain34")
    return with_weights(model, weights)
