"""Dropout layers (inverted dropout: kept units are scaled by 1/(1-p) while training, so eval is
the identity). They follow the module's `.training` flag: `model.eval()` turns them off."""
import minicnn.functional as F

from .module import Module


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p!r}")
        self.p, self.inplace = float(p), inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p."""

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels (N, C, H, W) -> each (n, c) plane kept or dropped together."""

    def forward(self, x):
        return F.dropout2d(x, self.p, training=self.training)
