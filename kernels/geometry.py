"""ConvGeometry: where every window of a convolution lies, resolved once and passed by name.

The op (minicnn/functional/conv.py `conv_geometry`) checks the hyper-parameters and builds one;
every kernel set (reference, cpu, cuda) reads the same fields:

    kh, kw          kernel height and width
    sh, sw          stride
    pt, pl, pb, pr  zero padding at the top, left, bottom and right (TensorFlow's "same" puts
                    the odd extra pixel at the bottom/right, so they may differ)
    dil_h, dil_w    dilation: the gap between kernel taps (1 = an ordinary dense kernel)
    groups          channels are split into this many independent convolutions
    oh, ow          output height and width:
                        OH = (H + pt + pb - dil_h*(kh-1) - 1) // sh + 1

    window (oy, ox), tap (i, j) reads input pixel (oy*sh - pt + i*dil_h, ox*sw - pl + j*dil_w)

A NamedTuple of ints: Numba kernels take it as one argument and read its fields by name.
"""
from typing import NamedTuple


class ConvGeometry(NamedTuple):
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    pb: int
    pr: int
    dil_h: int
    dil_w: int
    groups: int
    oh: int
    ow: int

    @property
    def winograd_shaped(self):
        """A window Winograd's F(2x2, 3x3) computes: 3x3, stride 1, no dilation, padding <= 2 on
        the top and left (the CPU and GPU plans add their own channel threshold)."""
        return (self.kh == self.kw == 3 and self.sh == self.sw == self.dil_h == self.dil_w == 1
                and 0 <= self.pt <= 2 and 0 <= self.pl <= 2)
