"""Hypothesis strategies for pooling tests.

    from hypothesis import given
    from minicnn.testing.pool import pool2d_configs

    @given(pool2d_configs())
    def test_my_pool(cfg):
        x = np.random.default_rng(0).standard_normal(cfg.shape)
        out = F.max_pool2d(mc.Tensor(x), **cfg.kwargs)
        assert out.shape == cfg.output_shape

Every drawn configuration is valid for max_pool2d and avg_pool2d (PyTorch's rules): kernel >= 1,
stride >= 1, 0 <= padding <= kernel // 2, and the kernel fits in the padded input, so every
window holds at least one real cell. kernel, stride and padding are each drawn as an int or, when
`pairs=True`, sometimes as a pair (height, width); ceil_mode is drawn unless fixed.
"""
from typing import NamedTuple, Tuple, Union

from hypothesis import strategies as st

IntOrPair = Union[int, Tuple[int, int]]


def _as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Pool2dConfig(NamedTuple):
    """One pooling setup; unpacks as (N, C, H, W, kernel, stride, padding, ceil_mode)."""
    N: int
    C: int
    H: int
    W: int
    kernel: IntOrPair
    stride: IntOrPair
    padding: IntOrPair
    ceil_mode: bool

    @property
    def shape(self):
        """The input shape (N, C, H, W)."""
        return (self.N, self.C, self.H, self.W)

    @property
    def kwargs(self):
        """Keyword arguments for F.max_pool2d / F.avg_pool2d (and nn.MaxPool2d / nn.AvgPool2d)."""
        return dict(kernel_size=self.kernel, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode)

    @property
    def pairs(self):
        """((kH, kW), (sH, sW), (pH, pW)): every hyper-parameter as a pair."""
        return _as_pair(self.kernel), _as_pair(self.stride), _as_pair(self.padding)

    @property
    def output_shape(self):
        """(N, C, OH, OW) by PyTorch's rule: floor or ceil of (H + 2P - K) / S, plus 1; in ceil
        mode a last window that would start in the bottom/right padding is dropped."""
        def size(n, k, s, p):
            span = n + 2 * p - k
            out = (-(-span // s) if self.ceil_mode else span // s) + 1
            return out - 1 if self.ceil_mode and (out - 1) * s >= n + p else out
        (kh, kw), (sh, sw), (ph, pw) = self.pairs
        return (self.N, self.C, size(self.H, kh, sh, ph), size(self.W, kw, sw, pw))


def _int_or_pair(draw, pairs, low, high_h, high_w):
    """(the value as an argument spells it, the same as a pair (h, w))."""
    if pairs and draw(st.booleans()):
        h, w = draw(st.integers(low, high_h)), draw(st.integers(low, high_w))
        return (h, w), (h, w)
    v = draw(st.integers(low, min(high_h, high_w)))
    return v, (v, v)


@st.composite
def pool2d_configs(draw, max_batch=2, max_channels=3, max_size=8, max_kernel=4, max_stride=3,
                   pairs=True, padding=True, ceil_mode=None):
    """A strategy for valid `Pool2dConfig`s.

    max_batch, max_channels: upper bounds of N and C (both >= 1).
    max_size: upper bound of H and W (raised where a drawn kernel needs more room).
    max_kernel, max_stride: upper bounds of the kernel and stride, per axis.
    pairs: also draw kernel/stride/padding as (h, w) pairs, not only as ints.
    padding: draw padding in 0 ... kernel // 2 (False: always 0).
    ceil_mode: None draws it; True or False fixes it.
    """
    N = draw(st.integers(1, max_batch))
    C = draw(st.integers(1, max_channels))
    kernel, (kh, kw) = _int_or_pair(draw, pairs, 1, max_kernel, max_kernel)
    stride, (sh, sw) = _int_or_pair(draw, pairs, 1, max_stride, max_stride)
    if padding:
        pad, (ph, pw) = _int_or_pair(draw, pairs, 0, kh // 2, kw // 2)
    else:
        pad, (ph, pw) = 0, (0, 0)
    # the kernel must fit in the padded input: H + 2*pH >= kH
    H = draw(st.integers(max(1, kh - 2 * ph), max(max_size, kh - 2 * ph)))
    W = draw(st.integers(max(1, kw - 2 * pw), max(max_size, kw - 2 * pw)))
    cm = draw(st.booleans()) if ceil_mode is None else bool(ceil_mode)
    return Pool2dConfig(N, C, H, W, kernel, stride, pad, cm)
