"""Fine-tuning: start from trained weights, freeze the feature extractor, train a new head.

    model = models.resnet34(num_classes=2, weights="resnet34.safetensors")  # new 2-class fc
    finetune.freeze(model, "features")       # everything but the head stops learning
    train_tf, eval_tf = finetune.transforms(224)

The course's practice (Dogs vs Cats from ImageNet weights) in these few lines; the command line
does the same with `minicnn train --weights FILE --freeze features`. A frozen parameter has
`requires_grad = False`: backward gives it no `.grad`, and the optimisers skip parameters without
one (as PyTorch's), so it keeps its value. Batch norm layers of a frozen part still update their
running statistics in training mode, as in PyTorch; call `.eval()` on that part to keep them.
"""
from .data import transforms as T

DEGREES = 30   # the practice's RandomRotation


def transforms(size=224, degrees=DEGREES):
    """(train, eval) transforms for images in [0, 1] going into a net trained on ImageNet:
    train = RandomRotation(degrees), RandomResizedCrop(size), RandomHorizontalFlip, Normalize;
    eval = Resize(size * 256 // 224), CenterCrop(size), Normalize (ImageNet's mean and std)."""
    normalize = T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)
    train = T.Compose([T.RandomRotation(degrees), T.RandomResizedCrop(size),
                       T.RandomHorizontalFlip(), normalize])
    evaluate = T.Compose([T.Resize(size * 256 // 224), T.CenterCrop(size), normalize])
    return train, evaluate


def backbone_names(model):
    """The names of the parameters of `model` outside its classifier head (`model.head_names`,
    e.g. ("fc",) for a ResNet): what "features" means for a model without a part of that name."""
    heads = tuple(getattr(model, "head_names", ()))
    return [name for name, _ in model.named_parameters()
            if not any(name.startswith(head + ".") for head in heads)]


def freeze(model, *prefixes):
    """`model.freeze(*prefixes)`, where "features" also means the whole feature extractor of a
    model that has no part of that name: everything but the head (`backbone_names`; a ResNet's
    conv1 ... layer4, all but `fc`). A model with `features` (VGG, AlexNet) freezes just that and
    keeps its whole classifier learning, as the practice does. Returns the names frozen."""
    named = [name for name, _ in model.named_parameters()]
    resolved = []
    for prefix in prefixes:
        has = any(n == prefix or n.startswith(prefix + ".") for n in named)
        resolved += backbone_names(model) if prefix == "features" and not has else [prefix]
    return model.freeze(*resolved)
