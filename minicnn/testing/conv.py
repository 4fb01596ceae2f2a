"""Hypothesis strategies for convolution tests, and the output-size formula.

    from hypothesis import given
    from minicnn.testing.conv import conv2d_configs, output_size

    @given(conv2d_configs())
    def test_my_conv(cfg):
        x = rng.standard_normal(cfg.input_shape)
        w = rng.standard_normal(cfg.weight_shape)
        out = F.conv2d(x, w, stride=cfg.stride, padding=cfg.padding,
                       dilation=cfg.dilation, groups=cfg.groups)
        assert out.shape == cfg.output_shape

Every drawn configuration is valid: the output has at least one row and column, and `groups`
divides both channel counts. Sizes are kept small so that naive-loop oracles and gradient
checks stay fast.
"""
from typing import NamedTuple, Tuple, Union

from hypothesis import strategies as st

Pair = Tuple[int, int]


def output_size(H, K, S=1, P=0, D=1):
    """Output length of a convolution along one axis: (H + 2P - D*(K-1) - 1) // S + 1.

    With D = 1 this is the lecture's (N - F + 2P) // S + 1.
    """
    return (H + 2 * P - D * (K - 1) - 1) // S + 1


def same_output_size(H, S=1):
    """Output length with padding "same" (TensorFlow's rule): ceil(H / S)."""
    return -(-H // S)


def _out(H, K, S, P, D):
    if P == "same":
        return same_output_size(H, S)
    return output_size(H, K, S, 0 if P == "valid" else P, D)


class Conv2dConfig(NamedTuple):
    """One conv2d configuration; kernel, stride, padding and dilation are (h, w) pairs, except
    that padding may also be the string "same" or "valid"."""
    N: int
    C: int
    H: int
    W: int
    out_channels: int
    kernel: Pair
    stride: Pair
    padding: Union[Pair, str]
    dilation: Pair
    groups: int

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.out_channels, self.C // self.groups) + tuple(self.kernel)

    @property
    def output_shape(self):
        pad = self.padding if isinstance(self.padding, str) else None
        ph, pw = (pad, pad) if pad else self.padding
        return (self.N, self.out_channels,
                _out(self.H, self.kernel[0], self.stride[0], ph, self.dilation[0]),
                _out(self.W, self.kernel[1], self.stride[1], pw, self.dilation[1]))

    def kwargs(self):
        """The keyword arguments for F.conv2d / nn.Conv2d."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)


class Conv1dConfig(NamedTuple):
    """One conv1d configuration (all ints; padding may be "same" or "valid")."""
    N: int
    C: int
    L: int
    out_channels: int
    kernel: int
    stride: int
    padding: Union[int, str]
    dilation: int
    groups: int

    @property
    def input_shape(self):
        return (self.N, self.C, self.L)

    @property
    def weight_shape(self):
        return (self.out_channels, self.C // self.groups, self.kernel)

    @property
    def output_shape(self):
        return (self.N, self.out_channels, _out(self.L, self.kernel, self.stride, self.padding, self.dilation))

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)


@st.composite
def _axis(draw, max_size, max_kernel, max_stride, max_padding, max_dilation, mode):
    """(size, kernel, stride, padding, dilation) along one axis with output >= 1.
    `mode` is "same", "valid" or "int" (an explicit padding)."""
    size = draw(st.integers(1, max_size))
    stride = draw(st.integers(1, max_stride))
    dilation = draw(st.integers(1, max_dilation))
    padding = draw(st.integers(0, max_padding)) if mode == "int" else 0
    if mode == "same":
        kernel = draw(st.integers(1, max_kernel))  # "same" pads whatever the kernel needs
    else:
        # the dilated kernel D*(K-1)+1 must fit in the padded input H + 2P
        largest = (size + 2 * padding - 1) // dilation + 1
        kernel = draw(st.integers(1, max(1, min(max_kernel, largest))))
    return size, kernel, stride, padding, dilation


@st.composite
def _groups_channels(draw, max_channels, groups):
    g = draw(st.integers(1, max_channels)) if groups else 1
    c = g * draw(st.integers(1, max(1, max_channels // g)))
    o = g * draw(st.integers(1, max(1, max_channels // g)))
    return g, c, o


@st.composite
def conv2d_configs(draw, max_batch=2, max_channels=4, max_size=9, max_kernel=4, max_stride=3,
                   max_padding=2, max_dilation=2, groups=True, string_padding=True, pairs=True):
    """A valid `Conv2dConfig` (N, C, H, W, out_channels, kernel, stride, padding, dilation, groups).

    groups (when allowed) divides C and out_channels, and both stay <= max_channels. padding is
    a pair of ints, or "same"/"valid" when `string_padding`; with `pairs=False` every pair has
    two equal entries (a square kernel, one stride, ...).
    """
    N = draw(st.integers(1, max_batch))
    G, C, O = draw(_groups_channels(max_channels, groups))
    modes = ["int", "same", "valid"] if string_padding else ["int"]
    mode = draw(st.sampled_from(modes))
    limits = (max_size, max_kernel, max_stride, max_padding, max_dilation, mode)
    H, kh, sh, ph, dh = draw(_axis(*limits))
    if pairs:
        W, kw, sw, pw, dw = draw(_axis(*limits))
    else:
        W = draw(st.integers(1, max_size))
        kw, sw, pw, dw = kh, sh, ph, dh
        if mode != "same" and W + 2 * pw < dw * (kw - 1) + 1:
            W = dw * (kw - 1) + 1 - 2 * pw  # <= H, since the same kernel fits along H
    padding = mode if mode != "int" else (ph, pw)
    return Conv2dConfig(N, C, H, W, O, (kh, kw), (sh, sw), padding, (dh, dw), G)


@st.composite
def conv1d_configs(draw, max_batch=2, max_channels=4, max_size=12, max_kernel=4, max_stride=3,
                   max_padding=2, max_dilation=2, groups=True, string_padding=True):
    """A valid `Conv1dConfig` (N, C, L, out_channels, kernel, stride, padding, dilation, groups)."""
    N = draw(st.integers(1, max_batch))
    G, C, O = draw(_groups_channels(max_channels, groups))
    mode = draw(st.sampled_from(["int", "same", "valid"] if string_padding else ["int"]))
    L, k, s, p, d = draw(_axis(max_size, max_kernel, max_stride, max_padding, max_dilation, mode))
    return Conv1dConfig(N, C, L, O, k, s, mode if mode != "int" else p, d, G)
