"""Test oracles shared by the suite: the plain loops every fast path is held to."""
import math

import numpy as np


def _two(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


def tf_same(size, k, s, d):
    """TensorFlow's "same": (output size, padding before)."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, total // 2


def naive_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, out_size=None):
    """The convolution in seven plain loops, no im2col: out[n, o, oy, ox] = b[o] +
    sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oy*sh - pt + i*dh, ox*sw - pl + j*dw], 0 outside.

    stride, dilation: int or pair; padding: int, pair, "same" or "valid"; out_size (OH, OW)
    overrides the computed output size (for asymmetric padding at the bottom/right)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (sh, sw), (dh, dw) = _two(stride), _two(dilation)
    if padding == "same":
        OH, pt = tf_same(H, KH, sh, dh)
        OW, pl = tf_same(W, KW, sw, dw)
    else:
        pt, pl = (0, 0) if padding == "valid" else _two(padding)
        OH = (H + 2 * pt - dh * (KH - 1) - 1) // sh + 1
        OW = (W + 2 * pl - dw * (KW - 1) - 1) // sw + 1
    OH, OW = out_size or (OH, OW)
    Og = O // groups
    out = np.zeros((N, O, OH, OW))
    for n, o, oy, ox in np.ndindex(N, O, OH, OW):
        g = o // Og
        acc = 0.0 if b is None else b[o]
        for c in range(Cg):
            for i in range(KH):
                for j in range(KW):
                    y = oy * sh - pt + i * dh
                    xx = ox * sw - pl + j * dw
                    if 0 <= y < H and 0 <= xx < W:
                        acc += w[o, c, i, j] * x[n, g * Cg + c, y, xx]
        out[n, o, oy, ox] = acc
    return out


def random_conv2d_case(layer, seed, dtype):
    """(x, w, b, g, geom) for layer = (x shape, w shape, padding, groups), stride 1: standard
    normal values of that dtype, g the output's gradient."""
    from minicnn.functional.conv import conv_geometry
    x_shape, w_shape, padding, groups = layer
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding, 1, groups)
    g = rng.standard_normal((x_shape[0], w_shape[0], geom.oh, geom.ow)).astype(dtype)
    return x, w, b, g, geom


def assert_conv2d_matches_reference(got, x, w, b, g, geom, atol):
    """got = (out, dx, dw, db) of a conv2d with output gradient g, against the reference kernels'
    im2col convolution (kernels/reference/conv.py) of the same x, w, b: the same dtypes and
    shapes, each within atol of its own scale (its largest magnitude, at least 1)."""
    from minicnn.kernels.reference import conv as ref_conv
    want, saved = ref_conv.conv2d_forward(x, w, b, geom)
    wants = (want, *ref_conv.conv2d_backward(saved, g, (True, True, True)))
    for name, mine, ref in zip(("out", "dx", "dw", "db"), got, wants):
        assert mine.dtype == x.dtype and mine.shape == ref.shape, name
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(mine, ref, rtol=0, atol=atol * scale, err_msg=name)
