"""Small helpers shared by the model builders: argument checks and channel scaling."""
import numbers


def check_common(name, num_classes, in_channels, width_mult):
    """Raise ValueError/TypeError for bad builder arguments, naming the builder."""
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected {arg} to be a positive int, got {value!r}")
        if value < 1:
            raise ValueError(f"{name}: expected {arg} to be a positive int, got {value}")
    if isinstance(width_mult, bool) or not isinstance(width_mult, numbers.Real):
        raise TypeError(f"{name}: expected width_mult to be a positive number, got {width_mult!r}")
    if not width_mult > 0:
        raise ValueError(f"{name}: expected width_mult > 0, got {width_mult}")


def scaled(channels, width_mult, divisor=1):
    """`channels * width_mult`, rounded to a multiple of `divisor` (at least `divisor`).

    width_mult = 1.0 gives the paper's counts exactly. `divisor` keeps grouped convolutions
    valid (AlexNet's groups=2 needs even channel counts).
    """
    if width_mult == 1.0:
        return channels
    return max(divisor, int(round(channels * width_mult / divisor)) * divisor)


def check_choice(name, arg, value, choices):
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected {arg} to be one of {listed}, got {value!r}")


def with_weights(model, weights):
    """`model` with the weight file `weights` (a path, or None for none) loaded into it by
    `minicnn.weights.load_weights`: a head for another number of classes is left new (with a
    warning); any other misfit raises StateDictError naming the file."""
    if weights is not None:
        from ..weights import load_weights
        load_weights(model, weights)
    return model
