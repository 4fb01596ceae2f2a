"""PyTorch twins of minicnn's zoo models, for the model ladder (benchmarks/model_ladder.py).

Each twin has the same layers, shapes and parameter count as the minicnn builder of the same name
(model_ladder.py checks the counts before timing). torchvision's ResNets and VGGs are used when
torchvision imports; it does not here: the only torchvision wheel on the package index is the CUDA
build, whose C extension needs libc10_cuda next to a CPU-only torch. So they are written out too,
following torchvision's definitions (the same names, strides and layer order).
Imported by the PyTorch worker only: minicnn's process never imports torch.
"""
import torch
from torch import nn

LRN = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)  # torch's LRN divides alpha by size; see lrn()


def lrn():
    # minicnn and the paper: b = a / (k + alpha * sum a^2)^beta; torch: alpha / size * sum
    return nn.LocalResponseNorm(LRN["size"], LRN["alpha"] * LRN["size"], LRN["beta"], LRN["k"])


def lenet5(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(1),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))


def alexnet_paper(num_classes=1000):
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(1),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, num_classes))


def vgg11(num_classes=1000):
    layers, c = [], 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(1),
        nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, num_classes))


class Block(nn.Module):
    """torchvision's BasicBlock (expansion 1) or Bottleneck (expansion 4, stride on the 3x3)."""

    def __init__(self, inplanes, planes, stride, bottleneck):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.body = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out))
        else:
            self.body = nn.Sequential(
                nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes))
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.relu = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.body(x) + shortcut)


def resnet(layers, bottleneck, num_classes=1000):
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    blocks, inplanes = [], 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(n):
            blocks.append(Block(inplanes, planes, 2 if (i > 0 and j == 0) else 1, bottleneck))
            inplanes = planes * (4 if bottleneck else 1)
    return nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(inplanes, num_classes))


class Inception(nn.Module):
    def __init__(self, c, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(c, c1, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(c, c3r, 1), nn.ReLU(), nn.Conv2d(c3r, c3, 3, padding=1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(c, c5r, 1), nn.ReLU(), nn.Conv2d(c5r, c5, 5, padding=2), nn.ReLU())
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, pp, 1), nn.ReLU())
        self.out_channels = c1 + c3 + c5 + pp

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Aux(nn.Module):
    def __init__(self, c, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(c, 128, 1), nn.ReLU(), nn.Flatten(1),
                                  nn.Linear(2048, 1024), nn.ReLU(), nn.Dropout(0.7), nn.Linear(1024, num_classes))

    def forward(self, x):
        return self.body(x)


class GoogLeNetSmall(nn.Module):
    """minicnn's googlenet(small_input=True): the paper's net with a 3x3/1 stem and no first pool,
    for inputs of 32 to 64 pixels; training mode returns (logits, aux1, aux2)."""
    TABLE = [("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)), ("pool", None),
             ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
             ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
             ("4e", (256, 160, 320, 32, 128, 128)), ("pool", None),
             ("5a", (256, 160, 320, 32, 128, 128)), ("5b", (384, 192, 384, 48, 128, 128))]

    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1), nn.ReLU(), lrn(), nn.Conv2d(64, 64, 1), nn.ReLU(),
                                  nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), lrn(),
                                  nn.MaxPool2d(3, 2, ceil_mode=True))
        self.stages, c = nn.ModuleList(), 192
        for name, row in self.TABLE:
            if row is None:
                self.stages.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                self.stages.append(Inception(c, *row))
                c = self.stages[-1].out_channels
            if name == "4a":
                self.aux1 = Aux(c, num_classes)
            if name == "4d":
                self.aux2 = Aux(c, num_classes)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.4), nn.Linear(c, num_classes))

    def forward(self, x):
        x, aux = self.stem(x), []
        for name_row, stage in zip(self.TABLE, self.stages):
            x = stage(x)
            if self.training and name_row[0] in ("4a", "4d"):
                aux.append((self.aux1 if name_row[0] == "4a" else self.aux2)(x))
        logits = self.head(x)
        return (logits, *aux) if self.training else logits


class AlphaGoPolicy(nn.Module):
    def __init__(self, k=192, planes=48, board=19):
        super().__init__()
        layers = [nn.Conv2d(planes, k, 5, padding=2), nn.ReLU()]
        for _ in range(11):
            layers += [nn.Conv2d(k, k, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(k, 1, 1, bias=False)
        self.position_bias = nn.Parameter(torch.zeros(board * board))

    def forward(self, x):
        return torch.flatten(self.head(self.features(x)), 1) + self.position_bias


def build(name):
    try:  # torchvision's own where it imports (see the module docstring)
        import torchvision.models as tv
        if name in ("resnet18", "resnet50", "vgg11"):
            return getattr(tv, name)()
    except Exception:  # noqa: BLE001  (any import failure means: use the twin below)
        pass
    return {"lenet5": lenet5, "alexnet": alexnet_paper, "vgg11": vgg11,
            "resnet18": lambda: resnet((2, 2, 2, 2), False), "resnet50": lambda: resnet((3, 4, 6, 3), True),
            "googlenet": GoogLeNetSmall, "alphago_policy": AlphaGoPolicy}[name]()
