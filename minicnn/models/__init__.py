"""The model zoo: the course's classic CNNs, built from minicnn.nn layers.

Every builder takes `num_classes` (default 1000; lenet5: 10), `in_channels` (default 3;
lenet5: 1) and `width_mult` (scales channel and hidden widths; 1.0 gives the papers' counts);
alexnet, zfnet, vgg*, googlenet and resnet* also take `small_input=True` for 32x32 images.
Parameter names match torchvision where torchvision has the model. Each module's docstring has
the paper's table (layer, output size, filters, parameters).

    get_model("resnet18", num_classes=10)    # by name, as `minicnn summary resnet18` does
    list_models()                            # the names get_model knows
"""
from .alexnet import alexnet
from .alphago import alphago_policy
from .googlenet import googlenet, googlenet_loss
from .lenet import lenet5
from .resnet import plain18, plain34, resnet18, resnet34, resnet50, resnet101, resnet152
from .vgg import vgg, vgg11, vgg13, vgg16, vgg19
from .zfnet import zfnet


def _vgg_bn(builder):
    def build(**kwargs):
        kwargs.setdefault("batch_norm", True)
        return builder(**kwargs)
    return build


MODELS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "zfnet": zfnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": _vgg_bn(vgg11), "vgg13_bn": _vgg_bn(vgg13),
    "vgg16_bn": _vgg_bn(vgg16), "vgg19_bn": _vgg_bn(vgg19),
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet101": resnet101, "resnet152": resnet152,
    "plain18": plain18, "plain34": plain34,
    "alphago_policy": alphago_policy,
}


def list_models():
    """The names `get_model` accepts, sorted."""
    return sorted(MODELS)


def get_model(name, **kwargs):
    """Build the model called `name` (see `list_models()`), passing `kwargs` to its builder.

    `get_model("vgg", cfg="C")` also works: "vgg" takes its configuration as `cfg`.
    """
    if name == "vgg":
        return vgg(**kwargs)
    if name not in MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; expected one of {', '.join(list_models())}, vgg")
    return MODELS[name](**kwargs)


__all__ = ["alexnet", "alphago_policy", "get_model", "googlenet", "googlenet_loss", "lenet5",
           "list_models", "plain18", "plain34", "resnet18", "resnet34", "resnet50", "resnet101",
           "resnet152", "vgg", "vgg11", "vgg13", "vgg16", "vgg19", "zfnet", "MODELS"]
