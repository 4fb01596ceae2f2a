"""Activation layers: thin Modules over the functions in `minicnn.functional`. None has
parameters. `inplace=` is accepted (PyTorch code passes it) and ignored: minicnn never
overwrites an input that backward may need."""
import minicnn.functional as F

from .module import Module


class ReLU(Module):
    """max(0, x)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Maxout(Module):
    """Goodfellow et al. (2013): output channel c = max of input channels c*pieces ... c*pieces + pieces - 1;
    (N, C, ...) -> (N, C // pieces, ...)."""

    def __init__(self, pieces):
        super().__init__()
        if not isinstance(pieces, int) or isinstance(pieces, bool) or pieces <= 0:
            raise ValueError(f"Maxout: pieces must be a positive int, got {pieces!r}")
        self.pieces = pieces

    def forward(self, x):
        return F.maxout(x, self.pieces)

    def extra_repr(self):
        return f"pieces={self.pieces}"


class Softmax(Module):
    """exp(x_i) / sum_j exp(x_j) along `axis` (`dim` is accepted as PyTorch's name)."""

    def __init__(self, axis=-1, dim=None):
        super().__init__()
        self.axis = axis if dim is None else dim

    def forward(self, x):
        return F.softmax(x, axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Module):
    def __init__(self, axis=-1, dim=None):
        super().__init__()
        self.axis = axis if dim is None else dim

    def forward(self, x):
        return F.log_softmax(x, axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
