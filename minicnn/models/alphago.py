"""AlphaGo's policy network (Silver et al., 2016), the supervised-learning "SL policy network".

A fully convolutional net on the 19 x 19 board: every layer keeps the board size.

    layer       filters                          output (C x 19 x 19)   parameters (k=192)
    input       48 feature planes                48
    conv1       k  5x5, pad 2, ReLU              192                    48*192*25 + 192 =   230,592
    conv2..12   k  3x3, pad 1, ReLU (eleven)     192                    11 * (192*192*9 + 192)
                                                                                        = 3,651,648
    conv13      1  1x1, NO bias of its own       1                      192
    bias        one per board point              361 logits             361
                                                                            total 3,882,793

The last layer's bias is position dependent (the paper: "a different bias for each position"),
so the 1x1 conv has `bias=False` and `position_bias` holds board_size**2 biases, added after
flattening. The model returns the 361 logits; `F.softmax(logits, axis=1)` is the move map
(the paper's final softmax). Names: features.0 conv1, features.2 .. features.22 conv2..12,
head (conv13), position_bias.
`width_mult` scales k; `in_channels` is another name for `in_planes`.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ._utils import check_common, scaled, with_weights


class AlphaGoPolicy(nn.Module):
    def __init__(self, k=192, in_planes=48, board_size=19, width_mult=1.0):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"alphago_policy: expected k to be a positive int, got {k!r}")
        if isinstance(board_size, bool) or not isinstance(board_size, (int, np.integer)) or board_size < 1:
            raise ValueError(f"alphago_policy: expected board_size to be a positive int, got {board_size!r}")
        check_common("alphago_policy", board_size * board_size, in_planes, width_mult)
        k = scaled(k, width_mult)
        layers = [nn.Conv2d(in_planes, k, kernel_size=5, padding=2), nn.ReLU()]
        for _ in range(11):
            layers += [nn.Conv2d(k, k, kernel_size=3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(k, 1, kernel_size=1, bias=False)
        self.position_bias = nn.Parameter(np.zeros(board_size * board_size, dtype=np.float32))
        self.board_size = board_size
        self.in_planes = in_planes

    def forward(self, x):
        if x.ndim != 4 or x.shape[1:] != (self.in_planes, self.board_size, self.board_size):
            b = self.board_size
            raise ValueError(f"alphago_policy: expected input of shape (N, {self.in_planes}, {b}, {b}), "
                             f"got {x.shape}")
        x = self.head(self.features(x))     # (N, 1, 19, 19)
        return F.flatten(x, 1) + self.position_bias   # (N, 361) logits


def alphago_policy(k=192, in_planes=48, board_size=19, num_classes=None, in_channels=None,
                   width_mult=1.0, weights=None):
    """AlphaGo's SL policy net: 3,882,793 parameters for k=192, 48 planes, 19x19.

    Returns (N, board_size**2) logits. `num_classes`, if given, must equal board_size**2 (one
    class per point); `in_channels`, if given, replaces `in_planes`. `weights`: a weight file to
    load (see minicnn.weights.load_weights).
    """
    if num_classes is not None and num_classes != board_size * board_size:
        raise ValueError(f"alphago_policy: num_classes must be board_size**2 = {board_size * board_size}"
                         f" (one class per board point), got {num_classes}")
    if in_channels is not None:
        in_planes = in_channels
    return with_weights(AlphaGoPolicy(k, in_planes, board_size, width_mult), weights)
