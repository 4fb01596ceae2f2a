"""Pooling kernels on the GPU (numba.cuda): the same functions and signatures as
kernels/reference/pool.py, which holds the specification and the formulas.

Shapes
    N batch, C channels, H/W input height/width, OH/OW output height/width,
    kH/kW window, sH/sW stride, pH/pW padding.  OH = (H + 2P - K) // S + 1
    x, dx (N, C, H, W); out, grad_out, argmax (N, C, OH, OW); argmax is int64 (h*W + w).

Window of output row oy: input rows oy*S - P ... oy*S - P + K - 1, clipped to [0, H).
Input row h lies in the windows oy = ceil((h + P - K + 1) / S) ... floor((h + P) / S), clipped
to [0, OH): the backward kernels gather over exactly those.

Thread-to-data mapping
    forward kernels:  one thread per OUTPUT (n, c, oy, ox), flat over N*C*OH*OW.
    max backward:     one thread per (n, c) PLANE, which zeroes its plane and adds every
                      output's gradient at its argmax, outputs in row-major order (the
                      reference's order). The signature carries no window geometry, and
                      overlapping windows (3x3/2) share winners: a thread per output would race.
    avg/adaptive backward: one thread per INPUT pixel (n, c, h, w), flat over N*C*H*W, gathering
                      the windows that contain it in (oy, ox) order (the reference's order).
    Every thread owns what it writes: no atomics, no races.
"""
from numba import cuda

from ._launch import THREADS, blocks, empty, scalar


@cuda.jit(device=True)
def _first_window(h, s, p, k):
    """The first window index whose rows reach h: ceil((h + p - k + 1) / s), at least 0."""
    t = h + p - k + 1
    if t <= 0:
        return 0
    return (t + s - 1) // s


# ---- max pooling ---------------------------------------------------------------------------
@cuda.jit
def _max_forward_kernel(x, out, argmax, kh, kw, sh, sw, ph, pw):
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = (t // (OH * OW)) % C
    oy = (t // OW) % OH
    ox = t % OW
    h0 = max(oy * sh - ph, 0)
    h1 = min(oy * sh - ph + kh, H)
    w0 = max(ox * sw - pw, 0)
    w1 = min(ox * sw - pw + kw, W)
    best = x[n, c, h0, w0]
    where = h0 * W + w0
    for h in range(h0, h1):
        for w in range(w0, w1):
            v = x[n, c, h, w]
            # strictly greater keeps the first maximum; a NaN wins once and stays (as np.argmax)
            if (v > best or v != v) and best == best:
                best = v
                where = h * W + w
    out[n, c, oy, ox] = best
    argmax[n, c, oy, ox] = where


@cuda.jit
def _max_backward_kernel(grad_out, argmax, dx):
    p = cuda.grid(1)                     # one thread per (n, c) plane
    N, C, H, W = dx.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    if p >= N * C:
        return
    n = p // C
    c = p % C
    for h in range(H):
        for w in range(W):
            dx[n, c, h, w] = 0
    for oy in range(OH):                 # the reference's order: outputs in row-major order
        for ox in range(OW):
            k = argmax[n, c, oy, ox]
            dx[n, c, k // W, k % W] += grad_out[n, c, oy, ox]


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow):
    N, C, H, W = x.shape
    out = empty((N, C, oh, ow), x.dtype)
    argmax = empty((N, C, oh, ow), "int64")
    if out.size:
        _max_forward_kernel[blocks(out.size), THREADS](x, out, argmax, kh, kw, sh, sw, ph, pw)
    return out, argmax


def max_pool2d_backward(grad_out, argmax, H, W):
    N, C, OH, OW = grad_out.shape
    dx = empty((N, C, H, W), grad_out.dtype)
    if dx.size:
        _max_backward_kernel[blocks(N * C), THREADS](grad_out, argmax, dx)
    return dx


# ---- average pooling -----------------------------------------------------------------------
@cuda.jit(device=True)
def _avg_window(o, s, p, k, size, count_include_pad):
    """(start, end, count) of window o along one axis: PyTorch's divisor (see the reference)."""
    start = o * s - p
    end = min(start + k, size + p)
    count = end - start
    start = max(start, 0)
    end = min(end, size)
    if not count_include_pad:
        count = end - start
    return start, end, count


@cuda.jit
def _avg_forward_kernel(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, zero):
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = (t // (OH * OW)) % C
    oy = (t // OW) % OH
    ox = t % OW
    h0, h1, ch = _avg_window(oy, sh, ph, kh, H, count_include_pad)
    w0, w1, cw = _avg_window(ox, sw, pw, kw, W, count_include_pad)
    acc = zero
    for h in range(h0, h1):
        for w in range(w0, w1):
            acc += x[n, c, h, w]
    out[n, c, oy, ox] = acc / (ch * cw)


@cuda.jit
def _avg_backward_kernel(grad_out, dx, kh, kw, sh, sw, ph, pw, count_include_pad, zero):
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = (t // (H * W)) % C
    h = (t // W) % H
    w = t % W
    acc = zero
    for oy in range(_first_window(h, sh, ph, kh), min((h + ph) // sh + 1, OH)):
        ch = _avg_window(oy, sh, ph, kh, H, count_include_pad)[2]
        for ox in range(_first_window(w, sw, pw, kw), min((w + pw) // sw + 1, OW)):
            cw = _avg_window(ox, sw, pw, kw, W, count_include_pad)[2]
            acc += grad_out[n, c, oy, ox] / (ch * cw)
    dx[n, c, h, w] = acc


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
    N, C, H, W = x.shape
    out = empty((N, C, oh, ow), x.dtype)
    if out.size:
        _avg_forward_kernel[blocks(out.size), THREADS](x, out, kh, kw, sh, sw, ph, pw,
                                                       bool(count_include_pad), scalar(0, x.dtype))
    return out


def avg_pool2d_backward(grad_out, H, W, kh, kw, sh, sw, ph, pw, count_include_pad):
    N, C = grad_out.shape[:2]
    dx = empty((N, C, H, W), grad_out.dtype)
    if dx.size:
        _avg_backward_kernel[blocks(dx.size), THREADS](grad_out, dx, kh, kw, sh, sw, ph, pw,
                                                       bool(count_include_pad), scalar(0, grad_out.dtype))
    return dx


# ---- adaptive average pooling ----------------------------------------------------------------
@cuda.jit(device=True)
def _bin(i, size, out_size):
    """[floor(i*size/out_size), ceil((i+1)*size/out_size)): the cells of bin i."""
    return (i * size) // out_size, ((i + 1) * size + out_size - 1) // out_size


@cuda.jit
def _adaptive_forward_kernel(x, out, zero):
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = (t // (OH * OW)) % C
    oy = (t // OW) % OH
    ox = t % OW
    h0, h1 = _bin(oy, H, OH)
    w0, w1 = _bin(ox, W, OW)
    acc = zero
    for h in range(h0, h1):
        for w in range(w0, w1):
            acc += x[n, c, h, w]
    out[n, c, oy, ox] = acc / ((h1 - h0) * (w1 - w0))


@cuda.jit
def _adaptive_backward_kernel(grad_out, dx, zero):
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = (t // (H * W)) % C
    h = (t // W) % H
    w = t % W
    acc = zero
    for oy in range(OH):                 # bins may overlap: test every bin (OH, OW are small)
        h0, h1 = _bin(oy, H, OH)
        if h < h0 or h >= h1:
            continue
        for ox in range(OW):
            w0, w1 = _bin(ox, W, OW)
            if w0 <= w < w1:
                acc += grad_out[n, c, oy, ox] / ((h1 - h0) * (w1 - w0))
    dx[n, c, h, w] = acc


def adaptive_avg_pool2d_forward(x, oh, ow):
    N, C, H, W = x.shape
    out = empty((N, C, oh, ow), x.dtype)
    if out.size:
        _adaptive_forward_kernel[blocks(out.size), THREADS](x, out, scalar(0, x.dtype))
    return out


def adaptive_avg_pool2d_backward(grad_out, H, W):
    N, C = grad_out.shape[:2]
    dx = empty((N, C, H, W), grad_out.dtype)
    if dx.size:
        _adaptive_backward_kernel[blocks(dx.size), THREADS](grad_out, dx, scalar(0, grad_out.dtype))
    return dx
