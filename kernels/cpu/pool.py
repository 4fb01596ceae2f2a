"""Pooling kernels, the Numba version: the same functions as kernels/reference/pool.py, as loops.

Shapes
    N batch, C channels, H/W input height/width, OH/OW output height/width,
    kH/kW window (kernel) size, sH/sW stride, pH/pW padding (all ints).
    x, out, grad_out, dx: (N, C, H, W) or (N, C, OH, OW); argmax: (N, C, OH, OW) int64.

Output size (the caller computes it; ceil mode is explained in minicnn/functional/pool.py)
    OH = (H + 2P - K) // S + 1

Window of output row oy (columns alike): rows oy*S - P ... oy*S - P + K - 1, clipped to [0, H).

Max pooling
    out = max over the window (padding never wins); argmax = h*W + w of the winner in its plane
    (first one on ties, a NaN beats numbers); dx[argmax] += grad_out, with argmax kept from forward.
    Any window in two passes (a max is separable: along the rows, then down the columns), 2x2
    stride 2 without padding (LeNet's, VGG's) in one kernel of its own, _max_pool_2x2_stride2.
Average pooling, PyTorch's divisor
    hstart = oy*S - P,  hend = min(hstart + K, H + P),  pool_size = (hend - hstart)*(wend - wstart)
    then clip to [0, H]; if not count_include_pad the divisor is the clipped (real-cell) area.
    out = sum / divisor;  dx[window] += grad_out / divisor
Adaptive average pooling: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).

Parallel over the N*C (n, c) planes: each prange iteration owns one plane of the output and, in
the backward, one plane of dx, so the scatter-add of overlapping windows cannot race. Within a
plane the windows are visited in the reference's order (oy, then ox), so the backward's
additions match it bit for bit (a forward window sum may differ in the last bit: NumPy sums in
its own order, and the average pooling forward sums each window's rows first). Sums and divisors are made in the data's dtype (`x.dtype.type(...)`), so float32
stays float32 all the way, as in the reference.
"""
import numpy as np
from numba import prange

from ._jit import kernel, sized


# ---- max pooling ---------------------------------------------------------------------------
@kernel(parallel=False)
def _window(o, s, p, k, size):
    """[start, end) of window `o` along one axis, clipped to the real (unpadded) cells."""
    start = o * s - p
    return max(start, 0), min(start + k, size)


@kernel(parallel=False)
def _take(v, k, best, best_at):
    """The running (max, argmax) after cell k (value v), visited in row-major order: strictly
    greater wins (the first maximum stays on ties), a NaN wins over numbers, the first NaN stays."""
    take = (v > best) | ((v != v) & (best == best))  # `|`, `&`: no branches to mispredict
    return (v if take else best), (k if take else best_at)


@kernel
def _max_pool_2x2_stride2(x, oh, ow):
    """max_pool2d_forward for 2x2 windows, stride 2, no padding, every window inside the plane
    (LeNet's and VGG's pooling). Flat arrays and unsigned indices, as in kernels/cpu/conv.py:
    the compiler knows no index is negative and loads the even and odd columns as vectors, which
    cell-by-cell loads cannot (figures: benchmarks/results/cpu_measurements.md)."""
    N, C, H, W = x.shape
    u = np.uint64
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    argmax = np.empty((N, C, oh, ow), dtype=np.int64)
    xf, of, af = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    for p in prange(N * C):
        for oy in range(oh):
            r0 = u((p * H + 2 * oy) * W)         # input rows 2oy and 2oy + 1 start at r0, r0 + W
            o = u((p * oh + oy) * ow)
            a = 2 * oy * W                         # argmax of the row's first cell
            for ox in range(u(ow)):
                w = u(2) * ox
                k = a + np.int64(w)
                best, at = xf[r0 + w], k
                best, at = _take(xf[r0 + w + u(1)], k + 1, best, at)
                best, at = _take(xf[r0 + u(W) + w], k + W, best, at)
                best, at = _take(xf[r0 + u(W) + w + u(1)], k + W + 1, best, at)
                of[o + ox] = best
                af[o + ox] = at
    return out, argmax


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """(out, argmax): the max of every window and its flat index h*W + w in the plane."""
    if (kh, kw, sh, sw, ph, pw) == (2, 2, 2, 2, 0, 0) and 2 * oh <= x.shape[2] and 2 * ow <= x.shape[3]:
        return _max_pool_2x2_stride2(x, oh, ow)
    return _max_pool(x, kh, kw, sh, sw, ph, pw, oh, ow)


@kernel
def _max_pool(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """max_pool2d_forward, any window, in two passes, since a max is separable: along each input
    row, the max over every window's columns (rv, and its column ra); then down the columns, the
    max of those over each window's rows. _take in both keeps what one pass over the window in
    row-major order would: the first maximum, or the first NaN. The second pass runs along whole
    output rows, a vector loop; the first compares kw cells per output instead of kh*kw."""
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    argmax = np.empty((N, C, oh, ow), dtype=np.int64)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = x[n, c]
        rv, ra = np.empty((H, ow), dtype=x.dtype), np.empty((H, ow), dtype=np.int64)
        for h in range(H):                                   # along the rows
            row = plane[h]
            for ox in range(ow):
                w0, w1 = _window(ox, sw, pw, kw, W)
                best, at = row[w0], w0       # a real cell, not -inf: an all -inf window names a winner
                for w in range(w0 + 1, w1):
                    best, at = _take(row[w], w, best, at)
                rv[h, ox], ra[h, ox] = best, at
        for oy in range(oh):                                 # down the columns
            h0, h1 = _window(oy, sh, ph, kh, H)
            best, at = out[n, c, oy], argmax[n, c, oy]
            for ox in range(ow):
                best[ox], at[ox] = rv[h0, ox], h0 * W + ra[h0, ox]
            for h in range(h0 + 1, h1):
                for ox in range(ow):
                    best[ox], at[ox] = _take(rv[h, ox], h * W + ra[h, ox], best[ox], at[ox])
    return out, argmax


def max_pool2d_backward(grad_out, argmax, H, W):
    """dx: each output's gradient added to the cell that won its window (argmax from forward;
    it is trusted, not checked: it must be the forward's, with the same H and W). A cheap loop:
    serial below CHEAP_FACTOR * SERIAL_BELOW cells of dx (_jit.sized)."""
    N, C = grad_out.shape[:2]
    return sized(_max_pool_backward, N * C * H * W, cheap=True)(grad_out, argmax, H, W)


@kernel
def _max_pool_backward(grad_out, argmax, H, W):
    """max_pool2d_backward's loops."""
    N, C, oh, ow = grad_out.shape
    dx = np.empty((N, C, H * W), dtype=grad_out.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = dx[n, c]  # only this iteration writes this plane: no race
        plane[:] = 0
        for oy in range(oh):
            for ox in range(ow):
                plane[argmax[n, c, oy, ox]] += grad_out[n, c, oy, ox]
    return dx.reshape((N, C, H, W))


# ---- average pooling -----------------------------------------------------------------------
@kernel(parallel=False)
def _avg_windows(out_size, s, p, k, size, count_include_pad):
    """For every window along one axis: start, end (clipped to the real cells) and how many
    cells the divisor counts along that axis (PyTorch's rule, see the legend)."""
    starts = np.empty(out_size, dtype=np.int64)
    ends = np.empty(out_size, dtype=np.int64)
    counts = np.empty(out_size, dtype=np.int64)
    for o in range(out_size):
        start = o * s - p
        end = min(start + k, size + p)  # the overhang past the padding is never counted
        count = end - start             # real cells and padding
        start, end = max(start, 0), min(end, size)
        if not count_include_pad:
            count = end - start         # real cells only
        starts[o], ends[o], counts[o] = start, end, count
    return starts, ends, counts


@kernel
def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
    """out: the sum of every window / PyTorch's divisor."""
    N, C, H, W = x.shape
    h0, h1, ch = _avg_windows(oh, sh, ph, kh, H, count_include_pad)
    w0, w1, cw = _avg_windows(ow, sw, pw, kw, W, count_include_pad)
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = x[n, c]
        col_sums = np.empty(W, dtype=x.dtype)
        for oy in range(oh):
            # sum the window's rows first, whole rows at a time (a long loop that vectorises),
            # then each window adds kw of those column sums instead of loading kh*kw cells
            col_sums[:] = 0
            for h in range(h0[oy], h1[oy]):
                row = plane[h]
                for w in range(W):
                    col_sums[w] += row[w]
            for ox in range(ow):
                total = x.dtype.type(0)
                for w in range(w0[ox], w1[ox]):
                    total += col_sums[w]
                out[n, c, oy, ox] = total / x.dtype.type(ch[oy] * cw[ox])
    return out


@kernel
def avg_pool2d_backward(grad_out, H, W, kh, kw, sh, sw, ph, pw, count_include_pad):
    """dx: every cell of a window gets that window's gradient / divisor."""
    N, C, oh, ow = grad_out.shape
    h0, h1, ch = _avg_windows(oh, sh, ph, kh, H, count_include_pad)
    w0, w1, cw = _avg_windows(ow, sw, pw, kw, W, count_include_pad)
    dx = np.empty((N, C, H, W), dtype=grad_out.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = dx[n, c]  # only this iteration writes this plane: no race
        plane[:] = 0
        for oy in range(oh):
            for ox in range(ow):
                g = grad_out[n, c, oy, ox] / grad_out.dtype.type(ch[oy] * cw[ox])
                for h in range(h0[oy], h1[oy]):
                    for w in range(w0[ox], w1[ox]):
                        plane[h, w] += g
    return dx


# ---- adaptive average pooling ----------------------------------------------------------------
@kernel(parallel=False)
def _bins(out_size, size):
    """start, end of every bin along one axis: [floor(i*size/out_size), ceil((i+1)*size/out_size))."""
    starts = np.empty(out_size, dtype=np.int64)
    ends = np.empty(out_size, dtype=np.int64)
    for i in range(out_size):
        starts[i] = (i * size) // out_size
        ends[i] = ((i + 1) * size + out_size - 1) // out_size
    return starts, ends


@kernel
def adaptive_avg_pool2d_forward(x, oh, ow):
    """out: the mean of every bin."""
    N, C, H, W = x.shape
    h0, h1 = _bins(oh, H)
    w0, w1 = _bins(ow, W)
    out = np.empty((N, C, oh, ow), dtype=x.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = x[n, c]
        for oy in range(oh):
            for ox in range(ow):
                total = x.dtype.type(0)
                for h in range(h0[oy], h1[oy]):
                    for w in range(w0[ox], w1[ox]):
                        total += plane[h, w]
                out[n, c, oy, ox] = total / x.dtype.type((h1[oy] - h0[oy]) * (w1[ox] - w0[ox]))
    return out


@kernel
def adaptive_avg_pool2d_backward(grad_out, H, W):
    """dx: every cell of a bin gets that bin's gradient / bin area (bins may overlap)."""
    N, C, oh, ow = grad_out.shape
    h0, h1 = _bins(oh, H)
    w0, w1 = _bins(ow, W)
    dx = np.empty((N, C, H, W), dtype=grad_out.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = dx[n, c]  # only this iteration writes this plane: no race
        plane[:] = 0
        for oy in range(oh):
            for ox in range(ow):
                g = grad_out[n, c, oy, ox] / grad_out.dtype.type((h1[oy] - h0[oy]) * (w1[ox] - w0[ox]))
                for h in range(h0[oy], h1[oy]):
                    for w in range(w0[ox], w1[ox]):
                        plane[h, w] += g
    return dx
