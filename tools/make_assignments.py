"""Write the coursework notebooks from one source: notebooks/assignments/A1..A6 (stubs) and
notebooks/solutions/A1..A6 (the same notebooks, solved).

    python tools/make_assignments.py          # rewrites both folders

Each assignment below is a list of cells: ("md", text), ("code", text) shared by both versions,
and ("task", code): the solution's code; the stub keeps each public function's signature and
docstring and replaces its body with `raise NotImplementedError("TODO")` (helpers whose name
starts with "_" are left out of the stub). ("check", name) runs the grader on that function.
The notebooks are stored without outputs, like the lecture notebooks.
"""
import ast
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """\
import numpy as np
import minicnn as mc
from minicnn import grading
np.set_printoptions(precision=4, suppress=True)"""

HOW = """\
**How this works.** Write each function in the cell that says `TODO`, then run the check cell
below it. `grading.check` runs your function on up to a hundred generated cases (shapes, strides,
paddings, ... drawn by hypothesis; the same ones on every run) and compares it with minicnn's
reference kernels (`kernels/reference/`); a backward pass is also checked against numerical
gradients (`mc.gradcheck`, float64, a random upstream gradient). It prints `passed`, or stops
with the **smallest case that fails**, the worst element (yours vs the reference, relative
error), and what the mistake looks like. `err.case.args` (after `except grading.CheckFailed as
err`) are that case's inputs, to call your function on while you debug.

Working in a `.py` file instead? `minicnn check {a} my_solution.py` checks every function of
{a} that the file defines."""


def stub(code):
    """The solution code with every public function's body replaced by the TODO."""
    tree = ast.parse(code)
    lines = code.splitlines()
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
            continue
        if not isinstance(node, ast.FunctionDef):
            out.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
            continue
        body = node.body
        doc = ast.get_docstring(node) is not None
        keep_to = body[0].end_lineno if doc else body[0].lineno - 1
        head = lines[node.lineno - 1:keep_to]
        indent = " " * (body[0].col_offset)
        out.append("\n".join(head) + f"\n{indent}# TODO: your code here\n"
                   f"{indent}raise NotImplementedError(\"TODO\")")
    return "\n\n\n".join(out)


# ---- the solutions that later assignments reuse (A2 and A6 start from them) -------------------
CONV_OUTPUT_SIZE = '''\
def conv_output_size(H, K, S, P, D):
    """Number of windows along one axis: floor((H + 2P - D(K-1) - 1) / S) + 1."""
    return (H + 2 * P - D * (K - 1) - 1) // S + 1'''

IM2COL = '''\
def im2col(x, kernel, stride, padding, dilation):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW), the row order (c, i, j), the column order (oy, ox)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, kh, kw, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            cols[:, :, i, j] = xp[:, :, top:top + (OH - 1) * sh + 1:sh, left:left + (OW - 1) * sw + 1:sw]
    return cols.reshape(N, C * kh * kw, OH * OW)'''

CONV2D_FORWARD = '''\
def conv2d_forward(x, weight, bias, stride, padding, dilation):
    """x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> out (N, O, OH, OW)."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    OH = conv_output_size(H, kh, stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, kw, stride[1], padding[1], dilation[1])
    out = weight.reshape(O, -1) @ cols + bias[:, None]
    return out.reshape(N, O, OH, OW)'''

COL2IM = '''\
def col2im(cols, x_shape, kernel, stride, padding, dilation):
    """cols (N, C*kh*kw, OH*OW) -> dx (N, C, H, W): every column entry added to the pixel it came from."""
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    cols = cols.reshape(N, C, kh, kw, OH, OW)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            dxp[:, :, top:top + (OH - 1) * sh + 1:sh, left:left + (OW - 1) * sw + 1:sw] += cols[:, :, i, j]
    return dxp[:, :, ph:ph + H, pw:pw + W]'''

CONV2D_BACKWARD = '''\
def conv2d_backward(x, weight, grad_out, stride, padding, dilation):
    """-> (dx, dweight, dbias) of the convolution, given grad_out = dL/dout (N, O, OH, OW)."""
    N, O = grad_out.shape[:2]
    kernel = weight.shape[2:]
    cols = im2col(x, kernel, stride, padding, dilation)            # (N, K, L)
    g = grad_out.reshape(N, O, -1)                                   # (N, O, L)
    dweight = np.einsum("nol,nkl->ok", g, cols).reshape(weight.shape)
    dcols = weight.reshape(O, -1).T @ g                              # (N, K, L)
    dx = col2im(dcols, x.shape, kernel, stride, padding, dilation)
    return dx, dweight, grad_out.sum(axis=(0, 2, 3))'''

MAX_POOL_FORWARD = '''\
def _windows(H, W, kernel, stride, padding):
    """(oy, ox, h0, h1, w0, w1) for every window: its rows h0:h1 and columns w0:w1, clipped
    to the real cells (the padding left out)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    for oy in range(OH):
        for ox in range(OW):
            h0, w0 = oy * sh - ph, ox * sw - pw
            yield oy, ox, max(h0, 0), min(h0 + kh, H), max(w0, 0), min(w0 + kw, W)


def _output(x, kernel, stride, padding):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    return np.empty((N, C, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1), dtype=x.dtype)


def max_pool_forward(x, kernel, stride, padding):
    """x (N, C, H, W) -> out (N, C, OH, OW): the maximum of every window (padding never wins)."""
    out = _output(x, kernel, stride, padding)
    for oy, ox, h0, h1, w0, w1 in _windows(*x.shape[2:], kernel, stride, padding):
        out[:, :, oy, ox] = x[:, :, h0:h1, w0:w1].max(axis=(2, 3))
    return out'''

MAX_POOL_BACKWARD = '''\
def max_pool_backward(x, grad_out, kernel, stride, padding):
    """dx (N, C, H, W): each window's gradient added to its first maximum (row-major)."""
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for oy, ox, h0, h1, w0, w1 in _windows(*x.shape[2:], kernel, stride, padding):
        k = x[:, :, h0:h1, w0:w1].reshape(N, C, -1).argmax(axis=2)   # the first maximum
        dy, dxx = np.divmod(k, w1 - w0)
        np.add.at(dx, (n, c, h0 + dy, w0 + dxx), grad_out[:, :, oy, ox])
    return dx'''

RELU = '''\
def relu_forward(x):
    """max(x, 0), elementwise."""
    return np.where(x > 0, x, 0.0)


def relu_backward(x, grad_out):
    """grad_out where x > 0, else 0."""
    return np.where(x > 0, grad_out, 0.0)'''

SOFTMAX_CROSS_ENTROPY = '''\
def softmax(x):
    """Softmax of every row of x (N, C), stable for large |x|."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy_forward(logits, target):
    """The loss of every row, -log softmax(logits)[i, target[i]] -> (N,)."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(target)), target]


def cross_entropy_backward(logits, target, grad_out):
    """dlogits (N, C) = (softmax(logits) - onehot(target)) * grad_out[:, None]."""
    d = softmax(logits)
    d[np.arange(len(target)), target] -= 1
    return d * grad_out[:, None]


def cross_entropy_mean(logits, target):
    """(mean loss over the N rows, its gradient dlogits (N, C))."""
    N = len(target)
    loss = cross_entropy_forward(logits, target).mean()
    return loss, cross_entropy_backward(logits, target, np.full(N, 1.0 / N))'''


# ---- A1 ------------------------------------------------------------------------------------------
A1 = [
    ("md", """\
# A1 · im2col and the convolution forward pass

A convolution layer slides a `kh x kw` kernel over the input; every output pixel is a dot
product of the kernel with one window of the input. Written as loops that is six nested `for`s
and very slow in Python. **im2col** turns it into one matrix product: copy every window into a
column of a matrix `cols`, then `out = W @ cols`.

You write three functions:

1. `conv_output_size(H, K, S, P, D)`: how many windows fit;
2. `im2col(x, kernel, stride, padding, dilation)`: the window matrix;
3. `conv2d_forward(x, weight, bias, stride, padding, dilation)`: the layer's forward pass.

Conventions (the same as PyTorch and minicnn): `x` is `(N, C, H, W)`, `weight` is
`(O, C, kh, kw)`, `bias` is `(O,)`. `kernel`, `stride`, `padding`, `dilation` are pairs
`(height, width)`. The padding is zeros, `padding[0]` rows on top **and** bottom.
Like every CNN framework, a "convolution" is a cross-correlation: the kernel is not flipped."""),
    ("md", HOW.format(a="A1")),
    ("code", SETUP),
    ("md", """\
## 1. The output size

A kernel of size `K` with dilation `D` (a gap of `D - 1` pixels between its taps) spans
`D*(K-1) + 1` pixels. Along one axis of length `H`, padded by `P` on both sides, with stride `S`:

$$\\text{out} = \\left\\lfloor \\frac{H + 2P - D(K-1) - 1}{S} \\right\\rfloor + 1$$

(with `D = 1` this is the lecture's `(H + 2P - K) / S + 1`)."""),
    ("task", CONV_OUTPUT_SIZE),
    ("check", "conv_output_size"),
    ("md", """\
## 2. im2col

`cols` has shape `(N, C*kh*kw, OH*OW)`: one **column** per output position `(oy, ox)`
(column index `oy*OW + ox`), one **row** per (channel, kernel tap) `(c, i, j)` (row index
`c*kh*kw + i*kw + j`):

    cols[n, c*kh*kw + i*kw + j, oy*OW + ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

and 0 where that pixel lies in the padding.

Hint: pad `x` once with `np.pad`; then in the padded input, tap `(i, j)` of every window is a
strided slice: rows `i*dh, i*dh + sh, ..., i*dh + (OH-1)*sh`. Two loops over `(i, j)` and one
slice each are enough: no loop over output positions."""),
    ("task", IM2COL),
    ("check", "im2col"),
    ("md", """\
## 3. The forward pass

With the weight flattened to `W2 = weight.reshape(O, C*kh*kw)` (rows in the same `(c, i, j)`
order as your columns):

$$\\text{out}[n] = W_2 \\, \\text{cols}[n] + b \\quad (O, C k_h k_w) \\times (C k_h k_w, OH \\cdot OW)$$

then reshape to `(N, O, OH, OW)`. `np.matmul` (the `@` operator) multiplies a stack of
matrices in one call."""),
    ("task", CONV2D_FORWARD),
    ("check", "conv2d_forward"),
    ("md", """\
## 4. Your convolution against minicnn's

All three checks passed: your `conv2d_forward` is the layer `F.conv2d` computes. One edge
detector on a small picture, both ways:"""),
    ("code", """\
import minicnn.functional as F
img = np.zeros((1, 1, 8, 8)); img[0, 0, 2:6, 2:6] = 1.0          # a white square
sobel = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], dtype=float)
mine = conv2d_forward(img, sobel, np.zeros(1), (1, 1), (1, 1), (1, 1))
theirs = F.conv2d(mc.Tensor(img, dtype=np.float64), mc.Tensor(sobel, dtype=np.float64), padding=1).numpy()
print(mine[0, 0])
assert np.allclose(mine, theirs)"""),
]

# ---- A2 ------------------------------------------------------------------------------------------
A2 = [
    ("md", """\
# A2 · The convolution backward pass: col2im, dW, db

The forward pass was `cols = im2col(x)`, `out = W2 @ cols + b`. Given the upstream gradient
`grad_out = dL/dout` (shape `(N, O, OH, OW)`, written `g`), the chain rule through that product
gives three gradients:

$$dW_2 = \\sum_n g[n] \\, \\text{cols}[n]^T \\qquad d\\text{cols}[n] = W_2^T g[n] \\qquad db = \\sum_{n, oy, ox} g$$

and `dx = col2im(dcols)`: the **adjoint** of im2col. im2col copied each input pixel into every
column whose window covers it; col2im sends each column entry back to the pixel it came from,
and a pixel covered by several windows receives the **sum** of their entries.

You write `col2im` and `conv2d_backward`. Paste your A1 `conv_output_size` and `im2col` in the
next cell first (the check of `conv2d_backward` needs them)."""),
    ("md", HOW.format(a="A2")),
    ("code", SETUP),
    ("task", CONV_OUTPUT_SIZE + "\n\n\n" + IM2COL),
    ("check", "im2col"),
    ("md", """\
## 1. col2im

`col2im(cols, x_shape, kernel, stride, padding, dilation)` takes `cols` of shape
`(N, C*kh*kw, OH*OW)` and returns `dx` of shape `x_shape = (N, C, H, W)`:

    dx[n, c, y, x] = sum of cols[n, c*kh*kw + i*kw + j, oy*OW + ox]
                     over every (i, j, oy, ox) with oy*sh - ph + i*dh == y and ox*sw - pw + j*dw == x

Entries that came from the padding are dropped. Hint: the same two loops over `(i, j)` as in
im2col, into a zero **padded** array, with `+=` (overlapping windows add up), then cut the
padding off."""),
    ("task", COL2IM),
    ("check", "col2im"),
    ("md", """\
A property worth knowing: col2im is the adjoint (the transpose) of im2col, so for any `x` and
`c`, `sum(im2col(x) * c) == sum(x * col2im(c))`. That identity is exactly why `dx = col2im(dcols)`."""),
    ("code", """\
rng = np.random.default_rng(0)
hyper = ((3, 3), (2, 1), (1, 1), (1, 2))
x = rng.standard_normal((2, 3, 7, 8))
c = rng.standard_normal(im2col(x, *hyper).shape)
print(np.sum(im2col(x, *hyper) * c), np.sum(x * col2im(c, x.shape, *hyper)))"""),
    ("md", """\
## 2. conv2d_backward

`conv2d_backward(x, weight, grad_out, stride, padding, dilation)` returns `(dx, dweight, dbias)`
with the shapes of `x`, `weight` and `(O,)`. Recompute `cols = im2col(x, ...)` from `x`, then
the three formulas above. `np.einsum` or a reshape plus `@` both work for the sum over `n`."""),
    ("task", CONV2D_BACKWARD),
    ("check", "conv2d_backward"),
    ("md", """\
All passed: your backward is the exact derivative of the convolution on every shape, stride,
padding and dilation the checker drew. The same check on a tiny case by hand, with
`mc.gradcheck` (central differences in float64 against `sum(out * R)` for a random `R`):"""),
    ("code", """\
import minicnn.functional as F

class MyConv(mc.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return F.conv2d(mc.Tensor(x, dtype=x.dtype), mc.Tensor(w, dtype=w.dtype), padding=1).numpy()

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        dx, dw, _ = conv2d_backward(x, w, g, (1, 1), (1, 1), (1, 1))
        return dx, dw

x = mc.Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True, dtype=np.float64)
w = mc.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True, dtype=np.float64)
print("gradcheck:", mc.gradcheck(MyConv.apply, [x, w]))"""),
]

# ---- A3 ------------------------------------------------------------------------------------------
A3 = [
    ("md", """\
# A3 · Pooling: max and average, forward and backward

Pooling summarises each `kh x kw` window of each channel by one number; there are no weights.
`kernel`, `stride`, `padding` are pairs; the output size is `(H + 2P - K) // S + 1` (no
dilation, floor mode) and `padding <= kernel // 2`.

* **Max pooling**: the window's maximum. Padding never wins (think of it as `-inf`). The
  backward sends each output's gradient to **one** cell, the one that won; when several cells
  tie for the maximum, the winner is the **first** in row-major order (what `np.argmax` picks),
  as in minicnn and PyTorch. A cell that wins several overlapping windows gets the sum.
* **Average pooling**: the window's sum divided by `kh*kw`, padding included (PyTorch's
  default `count_include_pad=True`). The backward spreads each output's gradient evenly over
  its window: every cell gets `grad / (kh*kw)`.

Window `(oy, ox)` covers input rows `oy*sh - ph ... oy*sh - ph + kh - 1` (and columns alike);
the rows outside `[0, H)` are padding. A loop over output positions `(oy, ox)` that handles all
`N` and `C` at once with slices is fast enough."""),
    ("md", HOW.format(a="A3")),
    ("code", SETUP),
    ("md", "## 1. Max pooling, forward"),
    ("task", MAX_POOL_FORWARD),
    ("check", "max_pool_forward"),
    ("md", """\
## 2. Max pooling, backward

`max_pool_backward(x, grad_out, kernel, stride, padding)` returns `dx` of `x`'s shape. Find each
window's winner again from `x` (`np.argmax` over the flattened window gives the first maximum;
`np.divmod(k, window_width)` turns it into a row and a column), and **add** the window's
gradient there: `np.add.at` adds correctly even when two windows share a winner (`dx[idx] +=`
with repeated indices does not)."""),
    ("task", MAX_POOL_BACKWARD),
    ("check", "max_pool_backward"),
    ("md", "## 3. Average pooling, forward and backward"),
    ("task", '''\
def avg_pool_forward(x, kernel, stride, padding):
    """x (N, C, H, W) -> out (N, C, OH, OW): each window's sum / (kh*kw), padding counted as 0."""
    kh, kw = kernel
    out = _output(x, kernel, stride, padding)
    for oy, ox, h0, h1, w0, w1 in _windows(*x.shape[2:], kernel, stride, padding):
        out[:, :, oy, ox] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / (kh * kw)
    return out'''),
    ("check", "avg_pool_forward"),
    ("task", '''\
def avg_pool_backward(grad_out, x_shape, kernel, stride, padding):
    """dx of shape x_shape: every real cell of a window gets that window's gradient / (kh*kw)."""
    H, W = x_shape[2:]
    kh, kw = kernel
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for oy, ox, h0, h1, w0, w1 in _windows(H, W, kernel, stride, padding):
        dx[:, :, h0:h1, w0:w1] += grad_out[:, :, oy, ox][:, :, None, None] / (kh * kw)
    return dx'''),
    ("check", "avg_pool_backward"),
    ("md", """\
## 4. Ties, seen once

Max pooling of a constant window: all four cells tie, and the whole gradient goes to the
first one."""),
    ("code", """\
x = np.ones((1, 1, 2, 2))
print(max_pool_backward(x, np.array([[[[5.0]]]]), (2, 2), (2, 2), (0, 0))[0, 0])"""),
]

# ---- A4 ------------------------------------------------------------------------------------------
A4 = [
    ("md", """\
# A4 · Activations, softmax + cross-entropy, dropout

Each function works elementwise on arrays of any shape unless it says otherwise. A backward
receives `grad_out = dL/d(output)` and returns `dL/d(input)`.

| function | forward | derivative |
|---|---|---|
| ReLU | `max(x, 0)` | `1 if x > 0 else 0` |
| leaky ReLU | `x if x > 0 else a*x` | `1 if x > 0 else a` |
| sigmoid | `1 / (1 + exp(-x))` | `y (1 - y)`, from the output `y` |
| tanh | `tanh(x)` | `1 - y^2`, from the output `y` |

`sigmoid_backward(y, grad_out)` and `tanh_backward(y, grad_out)` take the forward's **output**
`y` (their derivative is cheapest from it); the others take the input `x`."""),
    ("md", HOW.format(a="A4")),
    ("code", SETUP),
    ("md", "## 1. ReLU, leaky ReLU, sigmoid, tanh"),
    ("task", RELU),
    ("check", "relu_forward"),
    ("check", "relu_backward"),
    ("task", '''\
def leaky_relu_forward(x, negative_slope):
    """x where x > 0, else negative_slope * x."""
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(x, grad_out, negative_slope):
    """grad_out where x > 0, else negative_slope * grad_out."""
    return np.where(x > 0, grad_out, negative_slope * grad_out)'''),
    ("check", "leaky_relu_forward"),
    ("check", "leaky_relu_backward"),
    ("md", """\
`exp(-x)` overflows for `x` below about -709 (in float64). A stable sigmoid only ever computes
`e = exp(-|x|)`, which lies in `(0, 1]`: for `x >= 0` it is `1 / (1 + e)`, for `x < 0` it is
`e / (1 + e)`."""),
    ("task", '''\
def sigmoid_forward(x):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(y, grad_out):
    """dL/dx from the forward's output y = sigmoid(x)."""
    return grad_out * y * (1 - y)


def tanh_forward(x):
    """tanh(x)."""
    return np.tanh(x)


def tanh_backward(y, grad_out):
    """dL/dx from the forward's output y = tanh(x)."""
    return grad_out * (1 - y * y)'''),
    ("check", "sigmoid_forward"),
    ("check", "sigmoid_backward"),
    ("check", "tanh_forward"),
    ("check", "tanh_backward"),
    ("md", """\
## 2. Softmax and cross-entropy

Logits `x` are `(N, C)`: one row of class scores per example; `target` is `(N,)` integer class
indices. The checks include logits as large as `1e4`: `exp(1e4)` is `inf`. Subtract each row's
maximum first (the softmax does not change: the factor `exp(-m)` cancels), and compute the loss
from the log-sum-exp rather than from `log(softmax)`:

$$p_{ij} = \\frac{e^{x_{ij} - m_i}}{\\sum_k e^{x_{ik} - m_i}} \\qquad
\\text{loss}_i = -\\log p_{i, t_i} = m_i + \\log \\sum_k e^{x_{ik} - m_i} - x_{i, t_i}$$

$$\\frac{\\partial\\, \\text{loss}_i}{\\partial x_{ij}} = p_{ij} - [j = t_i]$$

`cross_entropy_backward(logits, target, grad_out)` gets `grad_out` of shape `(N,)` (the
gradient of each row's loss) and returns `dlogits` `(N, C)`. `cross_entropy_mean` returns the
mean loss over the batch and **its** gradient: every row's loss counts `1/N` of the mean."""),
    ("task", SOFTMAX_CROSS_ENTROPY),
    ("check", "softmax"),
    ("check", "cross_entropy_forward"),
    ("check", "cross_entropy_backward"),
    ("check", "cross_entropy_mean"),
    ("md", """\
## 3. Dropout (inverted)

While training, each unit is dropped with probability `p`; the kept ones are scaled by
`1 / (1 - p)` so that the expected output equals the input, and evaluation needs no rescaling.
The random numbers are given: `u` has `x`'s shape, uniform in `[0, 1)`, and a unit is **kept
where `u >= p`**. The backward lets the gradient through the same mask, with the same scale."""),
    ("task", '''\
def dropout_forward(x, p, u):
    """x * mask, mask = (u >= p) / (1 - p)."""
    return x * (u >= p) / (1 - p)


def dropout_backward(grad_out, p, u):
    """grad_out * mask, the forward's mask."""
    return grad_out * (u >= p) / (1 - p)'''),
    ("check", "dropout_forward"),
    ("check", "dropout_backward"),
    ("code", """\
x, p = np.ones(100_000), 0.3
out = dropout_forward(x, p, np.random.default_rng(0).random(x.shape))
print(f"kept {np.mean(out > 0):.3f} of the units (expected {1 - p}); mean output {out.mean():.3f} (expected 1)")"""),
]

# ---- A5 ------------------------------------------------------------------------------------------
A5 = [
    ("md", """\
# A5 · Batch normalisation and local response normalisation

**Batch norm** (Ioffe and Szegedy, 2015) normalises each **channel** over the batch and every
position: for `x` of shape `(N, C)` the statistics are over axis 0, for `(N, C, H, W)` over
axes `(0, 2, 3)`; `M` is the number of values per channel (`N` or `N*H*W`).

$$\\mu = \\frac1M \\sum x \\qquad \\sigma^2 = \\frac1M \\sum (x - \\mu)^2 \\qquad
\\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} \\qquad y = \\gamma \\hat x + \\beta$$

In training mode `mu` and `sigma^2` are the batch's own, so they depend on every `x`: the
backward has three terms (with `g = dL/dy`, sums per channel):

$$dx = \\frac{\\gamma}{M\\sqrt{\\sigma^2 + \\epsilon}} \\left( M g - \\sum g - \\hat x \\sum g \\hat x \\right)
\\qquad d\\gamma = \\sum g \\hat x \\qquad d\\beta = \\sum g$$

The running statistics, used in eval mode, are updated after each training batch (PyTorch's
rule, the variance **unbiased**):
`running = (1 - momentum) * running + momentum * batch_value`, with `var * M / (M - 1)`.

`gamma`, `beta`, `running_mean`, `running_var` have shape `(C,)`: reshape them to broadcast
over `x` (e.g. `gamma.reshape(1, -1, 1, 1)` for 4-D input)."""),
    ("md", HOW.format(a="A5")),
    ("code", SETUP),
    ("md", "## 1. Batch norm, training forward and backward"),
    ("task", '''\
def _axes(x):
    return (0,) + tuple(range(2, x.ndim))            # every axis but the channels


def _per_channel(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))  # (C,) -> broadcasts against x


def batchnorm_forward(x, gamma, beta, eps):
    """Training mode: y = gamma * (x - mean) / sqrt(var + eps) + beta, batch statistics per channel."""
    mean, var = x.mean(axis=_axes(x), keepdims=True), x.var(axis=_axes(x), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * _per_channel(gamma, x) + _per_channel(beta, x)


def batchnorm_backward(x, gamma, grad_out, eps):
    """Training mode: -> (dx, dgamma, dbeta)."""
    axes = _axes(x)
    M = x.size // x.shape[1]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    dbeta = grad_out.sum(axis=axes)
    dgamma = (grad_out * xhat).sum(axis=axes)
    dx = _per_channel(gamma, x) * invstd / M * (
        M * grad_out - _per_channel(dbeta, x) - xhat * _per_channel(dgamma, x))
    return dx, dgamma, dbeta'''),
    ("check", "batchnorm_forward"),
    ("check", "batchnorm_backward"),
    ("md", "## 2. Running statistics and eval mode"),
    ("task", '''\
def batchnorm_running_update(running_mean, running_var, x, momentum):
    """-> (new_mean, new_var): (1 - momentum) * running + momentum * batch, the variance unbiased."""
    axes = _axes(x)
    M = x.size // x.shape[1]
    mean, var = x.mean(axis=axes), x.var(axis=axes) * M / (M - 1)
    return ((1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * var)


def batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps):
    """Eval mode: normalise with the running statistics (constants)."""
    xhat = (x - _per_channel(running_mean, x)) / np.sqrt(_per_channel(running_var, x) + eps)
    return xhat * _per_channel(gamma, x) + _per_channel(beta, x)'''),
    ("check", "batchnorm_running_update"),
    ("check", "batchnorm_eval_forward"),
    ("md", """\
## 3. Local response normalisation (AlexNet, 2012)

Each activation is divided by a power of the energy in neighbouring **channels**
(`x` is `(N, C, ...)`; `size` channels in a window):

$$s_c = k + \\alpha \\sum_{j = \\max(0,\\, c - \\lfloor size/2 \\rfloor)}^{\\min(C-1,\\, c + \\lfloor (size-1)/2 \\rfloor)} x_j^2
\\qquad b_c = x_c \\, s_c^{-\\beta}$$

`alpha` is used as given (PyTorch's `local_response_norm` divides it by `size`; AlexNet's
paper and minicnn do not). The backward: `x_j` appears in its own output and in the scale of
every channel `c` whose window contains `j`:

$$\\frac{\\partial L}{\\partial x_j} = g_j s_j^{-\\beta} - 2\\alpha\\beta\\, x_j \\sum_{c:\\, j \\in window(c)} g_c\\, x_c\\, s_c^{-\\beta-1}$$"""),
    ("task", '''\
def _lrn_window(c, size, C):
    return max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)


def _lrn_scale(x, size, alpha, k):
    s = np.empty_like(x)
    for c in range(x.shape[1]):
        lo, hi = _lrn_window(c, size, x.shape[1])
        s[:, c] = k + alpha * (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return s


def lrn_forward(x, size, alpha, beta, k):
    """b_c = x_c * (k + alpha * sum of x_j^2 over the window of c) ** -beta."""
    return x * _lrn_scale(x, size, alpha, k) ** -beta


def lrn_backward(x, grad_out, size, alpha, beta, k):
    """dL/dx of lrn_forward."""
    s = _lrn_scale(x, size, alpha, k)
    t = grad_out * x * s ** (-beta - 1)              # g_c x_c s_c^(-beta-1), per channel c
    dx = grad_out * s ** -beta
    for c in range(x.shape[1]):                      # channel c's scale reads its window's x_j
        lo, hi = _lrn_window(c, size, x.shape[1])
        dx[:, lo:hi + 1] -= 2 * alpha * beta * x[:, lo:hi + 1] * t[:, c:c + 1]
    return dx'''),
    ("check", "lrn_forward"),
    ("check", "lrn_backward"),
]

# ---- A6 ------------------------------------------------------------------------------------------
A6_KERNELS = "\n\n\n".join([CONV_OUTPUT_SIZE, IM2COL, COL2IM, CONV2D_FORWARD, CONV2D_BACKWARD,
                                MAX_POOL_FORWARD, MAX_POOL_BACKWARD, RELU, SOFTMAX_CROSS_ENTROPY])

A6 = [
    ("md", """\
# A6 · Optimisers, then LeNet-5 on your own kernels

First the two update rules every network in this course is trained with (PyTorch's rules, step
for step), then the payoff: LeNet-5 trained on MNIST where **every** convolution, max pool,
ReLU, the loss and the optimiser step run the code you wrote in A1-A4 and here.

**SGD with momentum** (`buf` starts at zeros, so after the first step it equals the gradient):

    buf = momentum * buf + grad
    p   = p - lr * buf                         (plain momentum)
    p   = p - lr * (grad + momentum * buf)     (Nesterov: the look-ahead)

**Adam** (`m`, `v` start at zeros; `t` is the step number, from 1):

    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    p = p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)

Both return new arrays: `sgd_step(...) -> (p, buf)`, `adam_step(...) -> (p, m, v)`. The check
runs them for several steps with random gradients against minicnn's `optim.SGD`/`optim.Adam`."""),
    ("md", HOW.format(a="A6")),
    ("code", SETUP),
    ("md", "## 1. SGD with momentum and Nesterov"),
    ("task", '''\
def sgd_step(p, grad, buf, lr, momentum, nesterov):
    """One SGD step -> (new_p, new_buf)."""
    buf = momentum * buf + grad
    step = grad + momentum * buf if nesterov else buf
    return p - lr * step, buf'''),
    ("check", "sgd_step"),
    ("md", "## 2. Adam"),
    ("task", '''\
def adam_step(p, grad, m, v, t, lr, beta1, beta2, eps):
    """One Adam step at step number t (from 1) -> (new_p, new_m, new_v)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v'''),
    ("check", "adam_step"),
    ("md", """\
## 3. Your kernels from A1-A4

Paste your solutions of A1-A4 here (or `from my_kernels import *` if you keep them in a file):
the convolution forward and backward (with `im2col`, `col2im`, `conv_output_size`), max
pooling forward and backward, ReLU forward and backward, and the cross-entropy forward and
backward. The next cell checks them all once more."""),
    ("task", A6_KERNELS),
    ("code", """\
for name in ["conv2d_forward", "conv2d_backward", "max_pool_forward", "max_pool_backward",
             "relu_forward", "relu_backward", "cross_entropy_forward", "cross_entropy_backward"]:
    grading.check(name, globals()[name])"""),
    ("md", """\
## 4. LeNet-5 on your kernels

`grading.student_kernels(globals())` is a context manager: inside the `with` block every op of
minicnn that has a kernel you wrote runs **yours** (`F.conv2d`, `nn.Conv2d`, `max_pool2d`,
`relu`, `cross_entropy`, `optim.SGD`, `optim.Adam`); what you did not write (the linear layers'
matrix product, flatten) runs minicnn's. It finds your functions by their names in
`globals()`, and counts how often each one ran. The model is minicnn's own `models.lenet5()`,
unchanged.

The data: MNIST when its files are there (`MINICNN_DATA=/path/to/data`, with the four IDX files
in `mnist/`), two epochs with Adam (lr 2e-3, then 4e-4): **98% or more** on the 10,000 test
digits, about a minute on two cores. Offline without MNIST the notebook trains on the built-in
Shapes data instead; LeNet-5 reaches about 88% there in the same time (Shapes is harder: random
sizes, positions, rotations and noise), so the bar there is 85%."""),
    ("code", """\
import os, time
from minicnn import data, models, optim, train

mc.manual_seed(0)
try:
    train_set, test_set = data.MNIST(train=True), data.MNIST(train=False)
    name, epochs, bar = "MNIST", 2, 0.98
except FileNotFoundError:
    train_set, test_set = data.Shapes(n=20000, seed=0), data.Shapes(n=2000, train=False, seed=0)
    name, epochs, bar = "Shapes (offline: no MNIST files found)", 3, 0.85
print(f"{name}: {len(train_set)} training and {len(test_set)} test images")

model = models.lenet5()
optimizer = optim.Adam(model.parameters(), lr=2e-3)
schedule = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.2)
train_loader = data.DataLoader(train_set, batch_size=32, shuffle=True, seed=0)
start = time.time()
with grading.student_kernels(globals()) as yours:
    history = train.fit(model, optimizer, train_loader, epochs=epochs, scheduler=schedule,
                        quiet=True, plot=False)
    result = train.evaluate(model, data.DataLoader(test_set, batch_size=500))
print(f"trained in {time.time() - start:.0f} s on your {', '.join(sorted(yours.calls))}")
print(f"test accuracy {result.top1:.2%} (the bar: {bar:.0%})")
assert yours.calls["conv2d_backward"] > 0 and yours.calls["adam_step"] > 0
assert result.top1 >= bar, f"{result.top1:.2%} is below {bar:.0%}\""""),
    ("code", """\
for h in history:
    print(f"epoch {h['epoch']}: training loss {h['train_loss']:.4f}, accuracy {h['train_acc']:.2%}")"""),
]

ASSIGNMENTS = {"A1_im2col_conv_forward": A1, "A2_conv_backward": A2, "A3_pooling": A3,
               "A4_activations_softmax_dropout": A4, "A5_batchnorm_lrn": A5,
               "A6_optimisers_lenet": A6}


def notebook(name, cells, solved):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, (kind, text) in enumerate(cells):
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(text)
        elif kind == "code":
            cell = nbformat.v4.new_code_cell(text)
        elif kind == "task":
            cell = nbformat.v4.new_code_cell(text if solved else stub(text))
        elif kind == "check":
            cell = nbformat.v4.new_code_cell(f'grading.check("{text}", {text})')
        else:
            raise ValueError(kind)
        cell.id = f"{name[:2].lower()}-{i:02d}"
        nb.cells.append(cell)
    return nb


def main():
    for folder, solved in (("assignments", False), ("solutions", True)):
        (ROOT / folder).mkdir(exist_ok=True)
        for name, cells in ASSIGNMENTS.items():
            nbformat.write(notebook(name, cells, solved), ROOT / folder / f"{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
