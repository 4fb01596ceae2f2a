"""Kernels larger than 3x3 through Winograd's F(2x2, 3x3): the kernel cut into 3x3 pieces, the
pieces stacked as input channels, one 3x3 convolution (kernels/cpu/winograd.py) for the layer.

Shapes
    N, C, H, W   input;  O output channels;  G groups;  Cg = C / G
    kh, kw       kernel (stride 1, no dilation);  oh, ow output
    ph, pw       pieces down and across: ceil(kh / 3), ceil(kw / 3);  P = ph * pw
    xs           (N, G*P*Cg, oh + 2, ow + 2): the stacked windows
    ws           (O, P*Cg, 3, 3): the stacked pieces

Pad the kernel with zeros to 3ph x 3pw and cut it into pieces w_ab = w[:, :, 3a:3a+3, 3b:3b+3].
With xp the input padded (and with zeros below and to the right for the kernel's zero rows),

    y[n, o, oy, ox] = sum_{c, i, j} xp[n, c, oy + i, ox + j] w[o, c, i, j]
                    = sum_{a, b} sum_{c, i < 3, j < 3} xp[n, c, oy + 3a + i, ox + 3b + j] w_ab[o, c, i, j]

and each (a, b) term is a 3x3 convolution, without padding, of the window
xp[:, :, 3a : 3a + oh + 2, 3b : 3b + ow + 2]. Stack the windows as channels (xs) and the pieces
as the weight's input channels (ws), group by group, and the layer is one 3x3 convolution:

    y = conv3x3(xs, ws)          (G groups, P*Cg input channels each)

Winograd computes it with 16 multiplications per 2x2 tile, i.e. 4P per output and input channel
against kh*kw directly (5x5: 16 against 25, 1.56x fewer), in one product per transformed-tile
position over all P*Cg channels. The backward is that convolution's backward, its gradients
taken back through the stacking (its adjoint):
    dx[n, c] = sum_{a, b} the gradient of window (a, b), added where the window was read
               (the padding cropped away)
    dw       = the pieces' gradients put back together, the zero rows and columns cropped away
The price: xs holds P copies of the input (kept for the backward), and the input transform
works on P times the channels. PIECES_MIN_SAVING says when the multiplications saved pay for it.
Figures: benchmarks/results/cpu_measurements.md.
"""
import types

import numpy as np
from numba import prange

from ..geometry import ConvGeometry
from . import _winograd_f4
from ._jit import kernel

PIECES_MIN_SAVING = 1.4     # kh*kw / (4*ph*pw) at least this: 5x5 (1.56x) and 6x6, not 7x7 (1.36x)


def pieces(kh, kw):
    """(ph, pw): the 3x3 pieces a kh x kw kernel is cut into, down and across."""
    return -(-kh // 3), -(-kw // 3)


def suits(geom):
    """A window these pieces compute with fewer multiplications: stride 1, no dilation, larger
    than 3x3, and PIECES_MIN_SAVING fewer multiplications than directly."""
    ph, pw = pieces(geom.kh, geom.kw)
    return (geom.sh == geom.sw == geom.dil_h == geom.dil_w == 1 and max(geom.kh, geom.kw) > 3
            and geom.kh * geom.kw >= PIECES_MIN_SAVING * 4 * ph * pw)


@kernel(parallel=False)
def _window_columns(b, pl, W, ww):
    """Window columns [c0, c1) lie inside the input (input column = window column + 3b - pl);
    the others read padding."""
    shift = 3 * b - pl
    return min(max(0, -shift), ww), max(min(ww, W - shift), 0), shift


@kernel
def _stack_windows(x, xs, ph, pw, pt, pl, groups):
    """xs[n, (grp*P + a*pw + b)*Cg + c, r, q] = xp[n, grp*Cg + c, 3a + r, 3b + q]: the windows
    of the padded input, stacked as channels. One prange iteration per input plane (n, c)."""
    N, C, H, W = x.shape
    wh, ww = xs.shape[2], xs.shape[3]
    Cg, P = C // groups, ph * pw
    for job in prange(N * C):
        n, ch = job // C, job % C
        grp, c = ch // Cg, ch % Cg
        for a in range(ph):
            for b in range(pw):
                dst = xs[n, (grp * P + a * pw + b) * Cg + c]
                c0, c1, shift = _window_columns(b, pl, W, ww)
                for r in range(wh):
                    row = 3 * a + r - pt                  # the input row window row r reads
                    if row < 0 or row >= H:
                        dst[r, :] = 0
                        continue
                    src = x[n, ch, row]
                    dst[r, :c0] = 0
                    for q in range(c0, c1):
                        dst[r, q] = src[q + shift]
                    dst[r, c1:] = 0


@kernel
def _unstack_windows(dxs, dx, ph, pw, pt, pl, groups):
    """dx[n, c] = the sum of the windows' gradients dxs, each added where its window was read:
    the adjoint of _stack_windows. One prange iteration per plane of dx, which it owns."""
    N, C, H, W = dx.shape
    wh, ww = dxs.shape[2], dxs.shape[3]
    Cg, P = C // groups, ph * pw
    for job in prange(N * C):
        n, ch = job // C, job % C
        grp, c = ch // Cg, ch % Cg
        plane = dx[n, ch]
        plane[:] = 0
        for a in range(ph):
            for b in range(pw):
                src = dxs[n, (grp * P + a * pw + b) * Cg + c]
                c0, c1, shift = _window_columns(b, pl, W, ww)
                for r in range(wh):
                    row = 3 * a + r - pt
                    if 0 <= row < H:
                        for q in range(c0, c1):
                            plane[row, q + shift] += src[r, q]


def stack_pieces(weight, ph, pw):
    """ws (O, P*Cg, 3, 3), ws[o, (a*pw + b)*Cg + c] = w_ab[o, c]: the kernel padded with zeros
    to 3ph x 3pw, cut into 3x3 pieces, the pieces laid along the input channels."""
    O, Cg, kh, kw = weight.shape
    padded = np.zeros((O, Cg, 3 * ph, 3 * pw), weight.dtype)
    padded[:, :, :kh, :kw] = weight
    return np.ascontiguousarray(padded.reshape(O, Cg, ph, 3, pw, 3).transpose(0, 2, 4, 1, 3, 5)).reshape(O, -1, 3, 3)


def unstack_pieces(dws, kh, kw):
    """dw (O, Cg, kh, kw) from the pieces' gradients dws (O, P*Cg, 3, 3): the inverse layout of
    stack_pieces, the zero rows and columns dropped."""
    O = dws.shape[0]
    ph, pw = pieces(kh, kw)
    Cg = dws.shape[1] // (ph * pw)
    whole = dws.reshape(O, ph, pw, Cg, 3, 3).transpose(0, 3, 1, 4, 2, 5).reshape(O, Cg, 3 * ph, 3 * pw)
    return np.ascontiguousarray(whole[:, :, :kh, :kw])


def conv2d_forward(x, weight, bias, geom):
    """out = conv3x3(xs, ws) (+ b). -> (out, saved for conv2d_backward)."""
    N = x.shape[0]
    ph, pw = pieces(geom.kh, geom.kw)
    xs = np.empty((N, x.shape[1] * ph * pw, geom.oh + 2, geom.ow + 2), x.dtype)
    _stack_windows(x, xs, ph, pw, geom.pt, geom.pl, geom.groups)
    inner_geom = ConvGeometry(3, 3, 1, 1, 0, 0, 0, 0, 1, 1, geom.groups, geom.oh, geom.ow)
    ws = stack_pieces(weight, ph, pw)
    plan = _winograd_f4.plan_for(xs, ws, inner_geom)
    out, inner = plan.conv2d_forward(xs, ws, bias, inner_geom)
    return out, types.SimpleNamespace(plan="winograd-pieces", x=x, weight=weight, geom=geom,
                                      inner=inner, inner_backward=plan.conv2d_backward)


def conv2d_backward(saved, g, needs):
    """-> (dx, dweight, dbias): the 3x3 convolution's gradients taken back through the stacking."""
    geom = saved.geom
    dxs, dws, db = saved.inner_backward(saved.inner, g, needs)
    dx = dw = None
    if needs[0]:
        ph, pw = pieces(geom.kh, geom.kw)
        dx = np.empty(saved.x.shape, dxs.dtype)
        _unstack_windows(dxs, dx, ph, pw, geom.pt, geom.pl, geom.groups)
    if needs[1]:
        dw = unstack_pieces(dws, geom.kh, geom.kw)
    return dx, dw, db
