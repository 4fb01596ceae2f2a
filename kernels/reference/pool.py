"""Pooling kernels, the readable NumPy version: the specification the other versions must match.

Shapes
    N batch, C channels, H/W input height/width, OH/OW output height/width,
    kH/kW window (kernel) size, sH/sW stride, pH/pW padding (all ints).
    x, out, grad_out, dx: (N, C, H, W) or (N, C, OH, OW); argmax: (N, C, OH, OW) int64.

Output size (the caller computes it; ceil mode is explained in minicnn/functional/pool.py)
    OH = (H + 2P - K) // S + 1

Window of output row oy (columns are the same with x/W/kW/sW/pW)
    rows  oy*S - P  ...  oy*S - P + K - 1   in input coordinates; the rows outside [0, H) are
    padding. The loops below clip the window to [0, H) and never read padding at all.

Max pooling
    out[n, c, oy, ox]    = max of x over the window     (padding is -inf: it never wins)
    argmax[n, c, oy, ox] = h*W + w, the winner's flat index in its (H, W) plane; the first one in
                           row-major order on ties; a NaN wins over numbers (NaN in -> NaN out)
    dx[n, c, h, w]       = sum of grad_out[n, c, oy, ox] over the windows that (h, w) won;
                           backward only needs the argmax kept from forward, not x.

Average pooling (PyTorch's divisor)
    hstart = oy*S - P,  hend = min(hstart + K, H + P)    (an overhang past the padding, which
    pool_size = (hend - hstart) * (wend - wstart)         ceil mode can make, is not counted)
    then hstart, hend are clipped to [0, H] and, if not count_include_pad,
    divisor = (hend - hstart) * (wend - wstart)  (the real cells only); else divisor = pool_size.
    out = sum of x over the window / divisor;   dx[window] += grad_out / divisor

Adaptive average pooling (PyTorch's bins; bins may overlap when H is not a multiple of OH)
    rows of bin i:  start = floor(i*H/OH),  end = ceil((i+1)*H/OH)
    out = mean of x over the bin;   dx[bin] += grad_out / bin area
"""
import numpy as np


# ---- max pooling ---------------------------------------------------------------------------
def _window(o, s, p, k, size):
    """[start, end) of window `o` along one axis, clipped to the real (unpadded) cells."""
    start = o * s - p
    return max(start, 0), min(start + k, size)


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """(out, argmax): the max of every window and where it came from (see the legend)."""
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    argmax = np.empty((N, C, oh, ow), dtype=np.int64)
    for oy in range(oh):
        h0, h1 = _window(oy, sh, ph, kh, H)
        for ox in range(ow):
            w0, w1 = _window(ox, sw, pw, kw, W)
            # padded cells are simply left out of the window: the same as -inf padding
            window = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
            k = np.argmax(window, axis=2)  # first maximum; a NaN counts as the maximum
            out[:, :, oy, ox] = np.take_along_axis(window, k[:, :, None], axis=2)[:, :, 0]
            dy, dx = np.divmod(k, w1 - w0)  # position inside the window -> position in the plane
            argmax[:, :, oy, ox] = (h0 + dy) * W + (w0 + dx)
    return out, argmax


def max_pool2d_backward(grad_out, argmax, H, W):
    """dx: each output's gradient goes to the input cell that won its window (argmax from
    forward). Overlapping windows (3x3/2) can share a winner, which then gets both."""
    N, C = grad_out.shape[:2]
    dx = np.zeros((N * C, H * W), dtype=grad_out.dtype)
    planes = np.arange(N * C)[:, None]
    # np.add.at, not `dx[...] += g`: with fancy indexing, += would keep only one of two adds
    np.add.at(dx, (planes, argmax.reshape(N * C, -1)), grad_out.reshape(N * C, -1))
    return dx.reshape(N, C, H, W)


# ---- average pooling -----------------------------------------------------------------------
def _avg_window(o, s, p, k, size, count_include_pad):
    """[start, end) of window `o` along one axis (clipped to the real cells) and how many of
    its cells the divisor counts along that axis (PyTorch's rule, see the legend)."""
    start = o * s - p
    end = min(start + k, size + p)  # the overhang past the padding is never counted
    count = end - start             # real cells and padding
    start, end = max(start, 0), min(end, size)
    if not count_include_pad:
        count = end - start         # real cells only
    return start, end, count


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
    """out: the mean of every window, divided by PyTorch's divisor."""
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    for oy in range(oh):
        h0, h1, ch = _avg_window(oy, sh, ph, kh, H, count_include_pad)
        for ox in range(ow):
            w0, w1, cw = _avg_window(ox, sw, pw, kw, W, count_include_pad)
            out[:, :, oy, ox] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / (ch * cw)
    return out


def avg_pool2d_backward(grad_out, H, W, kh, kw, sh, sw, ph, pw, count_include_pad):
    """dx: every cell of a window gets that window's gradient / divisor."""
    N, C, oh, ow = grad_out.shape
    dx = np.zeros((N, C, H, W), dtype=grad_out.dtype)
    for oy in range(oh):
        h0, h1, ch = _avg_window(oy, sh, ph, kh, H, count_include_pad)
        for ox in range(ow):
            w0, w1, cw = _avg_window(ox, sw, pw, kw, W, count_include_pad)
            dx[:, :, h0:h1, w0:w1] += (grad_out[:, :, oy, ox] / (ch * cw))[:, :, None, None]
    return dx


# ---- adaptive average pooling ----------------------------------------------------------------
def _bin(i, size, out_size):
    """[floor(i*size/out_size), ceil((i+1)*size/out_size)): the cells of bin i along one axis."""
    return (i * size) // out_size, ((i + 1) * size + out_size - 1) // out_size


def adaptive_avg_pool2d_forward(x, oh, ow):
    """out: the mean of every bin."""
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    for oy in range(oh):
        h0, h1 = _bin(oy, H, oh)
        for ox in range(ow):
            w0, w1 = _bin(ox, W, ow)
            out[:, :, oy, ox] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
    return out


def adaptive_avg_pool2d_backward(grad_out, H, W):
    """dx: every cell of a bin gets that bin's gradient / bin area."""
    N, C, oh, ow = grad_out.shape
    dx = np.zeros((N, C, H, W), dtype=grad_out.dtype)
    for oy in range(oh):
        h0, h1 = _bin(oy, H, oh)
        for ox in range(ow):
            w0, w1 = _bin(ox, W, ow)
            dx[:, :, h0:h1, w0:w1] += (grad_out[:, :, oy, ox] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return dx
