"""Figures for the course: what a CNN learned, and how its pieces work.

Every `plot_*` function builds a matplotlib Figure, saves it when `save=PATH` is given (PNG,
`dpi` dots per inch, no cropping: the file is exactly `figsize * dpi` pixels) and returns it.
In a notebook (`%matplotlib inline`) the returned Figure displays as the cell's value; in a
script, pass `save=` (or call `fig.savefig`).

    plot_curves(history)                     loss, top-1/top-5 accuracy and LR per epoch
    plot_filters(model.features[0])          a conv layer's filters (RGB in colour, else per channel)
    plot_feature_maps(model, image, "features.0")   one layer's output channels for one image
    fig, sal = plot_saliency(model, image)   |dS_c/dI| (max over channels) over the image
    plot_activations()                       f(x) and f'(x), f' from minicnn's own autograd
    plot_graph(z) / graph_dot(z)             the computation graph behind a tensor
    plot_im2col(H=4, W=4, kernel_size=3)     which input pixel lands in which column
    plot_pooling()                           max/average pooling of the lecture's 4x4 example
    plot_confusion_matrix(cm)                rows: true class, columns: predicted class

The numbers behind the pictures are functions too (`saliency`, `feature_maps`,
`activation_curve`, `im2col_index_matrix`, `graph_nodes`), so they can be tested and reused.

Figures are bare `matplotlib.figure.Figure` objects (not pyplot's): they render with Agg,
leave pyplot's global state alone and are freed like any object. matplotlib is imported here
lazily, so `import minicnn` stays fast.
"""
import json
import math
import os

import numpy as np

from . import _grad_mode
from .functional._args import pair
from .tensor import Tensor

DPI = 100

# The lecture's 4x4 pooling example (CS231n): 2x2 max pooling with stride 2 gives [[6, 8], [3, 4]].
POOL_EXAMPLE = np.array([[1, 1, 2, 4],
                         [5, 6, 7, 8],
                         [3, 2, 1, 0],
                         [1, 2, 3, 4]], dtype=np.float32)

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")


# ---- shared helpers -----------------------------------------------------------------------------
def _figure(figsize):
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, dpi=DPI)


def _finish(fig, save, dpi):
    """Save the figure when asked (an exact-size PNG) and return it."""
    if save is not None:
        fig.savefig(os.fspath(save), dpi=dpi)
    return fig


def _numpy(x):
    """The array behind a Tensor/Parameter (fetched from the GPU), or np.asarray(x)."""
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _grid_shape(n, ncols=None):
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / ncols), ncols


def _unit_range(a):
    """Min-max scale to [0, 1] (a constant array becomes 0.5)."""
    lo, hi = float(np.min(a)), float(np.max(a))
    return np.full_like(a, 0.5, dtype=np.float64) if hi <= lo else (a - lo) / (hi - lo)


def _image_hwc(image):
    """One image (C, H, W) or (1, C, H, W) -> what imshow wants: (H, W) grey or (H, W, 3) in [0, 1]."""
    img = _numpy(image).astype(np.float64)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 2:
        return _unit_range(img)
    if img.ndim != 3:
        raise ValueError(f"viz: expected an image of shape (C, H, W), got {img.shape}")
    if img.shape[0] == 3:
        return _unit_range(img.transpose(1, 2, 0))
    return _unit_range(img.mean(axis=0))


def _as_batch(name, image):
    """One image as a (1, C, H, W) float array (a Tensor's dtype is kept)."""
    img = _numpy(image)
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[0] != 1:
        raise ValueError(f"{name}: expected one image of shape (C, H, W) or (1, C, H, W), got {img.shape}")
    if img.dtype.kind != "f":
        img = img.astype(np.float32)
    return img


def _model_input(model, img, requires_grad=False):
    """(leaf Tensor on the CPU, the same on the model's device) in the model's float dtype.
    `.to` is differentiable, so a gradient on the device copy lands in the CPU leaf's .grad."""
    p = next(iter(model.parameters()), None)
    dtype = img.dtype if p is None else p.dtype
    leaf = Tensor(img.astype(dtype, copy=False), requires_grad=requires_grad, dtype=dtype)
    device = "cpu" if p is None else p.device
    return leaf, (leaf if device == "cpu" else leaf.to(device))


def _blank(ax):
    ax.set_xticks([])
    ax.set_yticks([])


# ---- training curves ----------------------------------------------------------------------------
def _load_history(history):
    """A history as a list of per-epoch dicts, from: that list (what `train.fit` returns), a path
    to `history.json`, or a dict of lists ({"train_loss": [...], ...})."""
    if isinstance(history, (str, os.PathLike)):
        with open(history) as f:
            history = json.load(f)
    if isinstance(history, dict):
        n = max((len(v) for v in history.values()), default=0)
        history = [{k: (v[i] if i < len(v) else None) for k, v in history.items()} for i in range(n)]
    history = list(history)
    if not history:
        raise ValueError("plot_curves: the history is empty (no epoch to plot)")
    if any("train_loss" not in r and "val_loss" not in r for r in history):
        raise ValueError("plot_curves: expected records with 'train_loss' or 'val_loss' "
                         "(as minicnn.train writes them), got keys "
                         f"{sorted(history[0])}")
    return history


def _series(history, key, scale=1.0):
    vals = [r.get(key) for r in history]
    if all(v is None for v in vals):
        return None
    return [np.nan if v is None else scale * float(v) for v in vals]


def plot_curves(history, save=None, title=None, figsize=(13, 3.6), dpi=DPI):
    """Three panels against the epoch: loss (train, validation), accuracy in % (train top-1,
    validation top-1 and top-5) and the learning rate (log scale when it changes).

    `history`: the list `train.fit` returns, a path to the `history.json` it writes, or a dict
    of lists with the same keys (train_loss, train_acc, val_loss, val_top1, val_top5, lr).
    """
    history = _load_history(history)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    fig = _figure(figsize)
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    for key, label, style in (("train_loss", "train", "o-"), ("val_loss", "validation", "s-")):
        ys = _series(history, key)
        if ys is not None:
            ax_loss.plot(epochs, ys, style, label=label)
    for key, label, style in (("train_acc", "train top-1", "o--"), ("val_top1", "val top-1", "s-"),
                              ("val_top5", "val top-5", "^-")):
        ys = _series(history, key, 100.0)
        if ys is not None:
            ax_acc.plot(epochs, ys, style, label=label)
    lrs = _series(history, "lr")
    if lrs is not None:
        ax_lr.plot(epochs, lrs, "o-")
        finite = [v for v in lrs if np.isfinite(v)]
        if finite and min(finite) > 0 and len(set(finite)) > 1:
            ax_lr.set_yscale("log")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy (%)"), (ax_lr, "learning rate")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save, dpi)


# ---- filters ------------------------------------------------------------------------------------
def _weight_array(weight):
    """(O, C, kH, kW) filters from a Conv2d layer, a Parameter/Tensor or an array."""
    w = getattr(weight, "weight", weight)
    w = _numpy(w).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected conv weights of shape (O, C, kH, kW), got {w.shape}")
    return w


def _mosaic(tiles, rows, cols, fill):
    """Tiles (n, h, w[, 3]) laid out row by row on a (rows, cols) grid, one `fill` pixel between
    neighbours (and in the empty places): one image, drawn by one imshow (fast for 96 filters)."""
    n, h, w = tiles.shape[:3]
    out = np.full(((h + 1) * rows - 1, (w + 1) * cols - 1) + tiles.shape[3:], fill, dtype=np.float64)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tiles[k]
    return out


def plot_filters(weight, save=None, max_filters=None, max_channels=8, ncols=None, figsize=None,
                 dpi=DPI, title=None):
    """A conv layer's filters as an image grid (AlexNet's conv1 figure).

    `weight`: a Conv2d layer, its weight, or an array (O, C, kH, kW). Filters with C = 3 are
    drawn in colour, each min-max scaled to [0, 1] on its own (as the AlexNet paper's figure),
    in a square-ish grid of up to `max_filters` (default 96) tiles. Otherwise every (filter,
    channel) slice is a grey tile, all on one scale symmetric around 0 (mid-grey means 0): one
    channel gives a square-ish grid, several give one column per filter (up to `max_filters`,
    default 32) and one row per channel (up to `max_channels`). The grid is a single image,
    `fig.axes[0].images[0]`, with one empty pixel between tiles.
    """
    w = _weight_array(weight)
    O, C, kh, kw = w.shape
    multi = C not in (1, 3)
    w = w[:max_filters or (32 if multi else 96)]
    n = w.shape[0]
    if C == 3:
        rows, cols = _grid_shape(n, ncols)
        tiles = np.stack([_unit_range(f.transpose(1, 2, 0)) for f in w])
        grid, style = _mosaic(tiles, rows, cols, 1.0), {}
    else:
        c_show = min(C, max_channels)
        if multi:  # tile (channel c, filter k) at row c, column k
            rows, cols = c_show, n
            tiles = w[:, :c_show].transpose(1, 0, 2, 3).reshape(-1, kh, kw)
        else:
            rows, cols = _grid_shape(n, ncols)
            tiles = w[:, 0]
        v = float(np.max(np.abs(w))) or 1.0
        grid = _mosaic(tiles, rows, cols, np.nan)  # NaN gaps show as the axes' background
        style = {"cmap": "gray", "vmin": -v, "vmax": v}
    if figsize is None:
        scale = 0.5 if max(kh, kw) <= 5 else 0.7
        figsize = (max(2.5, scale * cols * kw / max(kh, kw) + 0.6), max(2.0, scale * rows + 0.8))
    fig = _figure(figsize)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor("white")
    ax.imshow(grid, interpolation="nearest", **style)
    _blank(ax)
    if multi:
        ax.set_xlabel(f"filter (0..{n - 1})", fontsize=8)
        ax.set_ylabel(f"input channel (0..{c_show - 1})", fontsize=8)
    shown = []
    if n < O:
        shown.append(f"first {n} filters")
    if multi and c_show < C:
        shown.append(f"first {c_show} channels")
    ax.set_title(title or f"{O} filters, {C} x {kh} x {kw}" + (f" ({', '.join(shown)})" if shown else ""),
                 fontsize=9)
    fig.tight_layout()
    return _finish(fig, save, dpi)


# ---- feature maps -------------------------------------------------------------------------------
def _find_layer(model, layer):
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named:
            raise ValueError(f"feature_maps: the model has no layer named {layer!r}; it has "
                             f"{[n for n in named if n]}")
        return named[layer]
    return layer


def feature_maps(model, image, layer):
    """The output of `layer` (a sub-module, or its name as in `named_modules()`) when `model`
    sees one image: an array (C, OH, OW) (or (features,) for a Linear layer).

    Runs the whole model once in eval mode without a graph; a forward hook on the layer keeps
    its output (the model's mode is restored afterwards).
    """
    module = _find_layer(model, layer)
    _, x = _model_input(model, _as_batch("feature_maps", image))
    kept = []
    handle = module.register_forward_hook(lambda mod, inputs, out: kept.append(out))
    was_training = model.training
    model.eval()
    try:
        with _grad_mode.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    if not kept:
        raise ValueError(f"feature_maps: layer {layer!r} did not run in the model's forward pass")
    out = kept[0][0] if isinstance(kept[0], (tuple, list)) else kept[0]
    return _numpy(out)[0]


def plot_feature_maps(model, image, layer, save=None, max_maps=32, ncols=None, figsize=None,
                      dpi=DPI):
    """The input image and the first `max_maps` channels of `layer`'s output for it, each map
    on its own colour scale (bright = strong activation)."""
    maps = feature_maps(model, image, layer)
    if maps.ndim == 1:
        maps = maps[:, None, None]
    n = min(len(maps), max_maps)
    rows, cols = _grid_shape(n + 1, ncols)
    figsize = figsize or (1.3 * cols + 0.3, 1.3 * rows + 0.5)
    fig = _figure(figsize)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        _blank(ax)
    img = _image_hwc(_as_batch("plot_feature_maps", image))
    axes[0].imshow(img, cmap=None if img.ndim == 3 else "gray", interpolation="nearest")
    axes[0].set_title("input", fontsize=7)
    for k in range(n):
        axes[k + 1].imshow(maps[k], cmap="viridis", interpolation="nearest")
        axes[k + 1].set_title(f"{k}", fontsize=7)
    for ax in axes[n + 1:]:
        ax.axis("off")
    name = layer if isinstance(layer, str) else type(layer).__name__
    fig.suptitle(f"{name}: {len(maps)} maps of {maps.shape[1]} x {maps.shape[2]}", fontsize=9)
    return _finish(fig, save, dpi)


# ---- saliency -----------------------------------------------------------------------------------
def saliency(model, image, target=None):
    """Simonyan et al.'s saliency map: M[i, j] = max over channels c of |dS_t / dI[c, i, j]|,
    where S_t is the score (logit, before the softmax) of class `target` (default: the
    predicted class) for the image I (C, H, W) or (1, C, H, W).

    One backward pass through the whole network in eval mode; the parameters' `.grad` and
    `requires_grad` and the model's mode are left as they were. Returns (M (H, W), target).
    """
    img = _as_batch("saliency", image)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    try:
        for p in params:  # only dS/dI is wanted: no parameter gradients are made or touched
            p.requires_grad = False
        with _grad_mode.enable_grad():
            x, x_dev = _model_input(model, img, requires_grad=True)
            out = model(x_dev)
            out = out[0] if isinstance(out, (tuple, list)) else out
            if out.ndim != 2:
                raise ValueError(f"saliency: expected the model to return scores of shape (1, classes), "
                                 f"got {out.shape}")
            scores = out.numpy()[0]
            t = int(np.argmax(scores)) if target is None else int(target)
            if not 0 <= t < scores.shape[0]:
                raise ValueError(f"saliency: target must lie in 0..{scores.shape[0] - 1}, got {target}")
            out[0, t].backward()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag
        model.train(was_training)
    return np.abs(x.grad[0]).max(axis=0), t


def plot_saliency(model, image, target=None, save=None, class_names=None, figsize=(9, 3),
                  dpi=DPI, alpha=0.6, title=None):
    """Three panels: the image, its saliency map and the map over the image (`title` on top).

    Returns `(fig, saliency_map)` (the map is (H, W); see `saliency`).
    """
    sal, t = saliency(model, image, target)
    img = _image_hwc(_as_batch("plot_saliency", image))
    fig = _figure(figsize)
    ax_img, ax_sal, ax_over = fig.subplots(1, 3)
    grey = img.ndim == 2
    ax_img.imshow(img, cmap="gray" if grey else None, interpolation="nearest")
    ax_img.set_title("image")
    ax_sal.imshow(sal, cmap="hot", interpolation="nearest")
    ax_sal.set_title("|dS/dI|, max over channels")
    ax_over.imshow(img, cmap="gray" if grey else None, interpolation="nearest")
    ax_over.imshow(sal, cmap="hot", alpha=alpha, interpolation="nearest")
    name = class_names[t] if class_names is not None else t
    ax_over.set_title(f"overlay (class {name})")
    for ax in (ax_img, ax_sal, ax_over):
        _blank(ax)
    if title:
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
    else:
        fig.tight_layout()
    return _finish(fig, save, dpi), sal


# ---- activation functions -----------------------------------------------------------------------
def _activation_fn(name):
    from . import functional as F
    fns = {"sigmoid": F.sigmoid, "tanh": F.tanh, "relu": F.relu,
           "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "elu": F.elu}
    if callable(name):
        return getattr(name, "__name__", "f"), name
    if name not in fns:
        raise ValueError(f"activation_curve: expected one of {sorted(fns)} or a function, got {name!r}")
    return ("leaky_relu (0.1)" if name == "leaky_relu" else name), fns[name]


def activation_curve(name, x):
    """(f(x), f'(x)) for an activation `name` (or any elementwise function of a Tensor), the
    derivative computed by minicnn's autograd: f'(x) = d sum(f(x)) / dx, since d f(x_j)/d x_i
    is 0 for i != j. ("leaky_relu" uses a slope of 0.1 here, to make it visible.)"""
    _, fn = _activation_fn(name)
    x = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True, dtype=np.float64)
    with _grad_mode.enable_grad():
        y = fn(x)
        y.backward(np.ones(y.shape))
    return y.numpy(), x.grad.copy()


def plot_activations(names=ACTIVATIONS, x_range=(-4.0, 4.0), save=None, figsize=None, dpi=DPI,
                     points=401):
    """One panel per activation: f(x) and f'(x) (dashed; from autograd, not a formula).
    Where f' is near 0 (sigmoid and tanh far from 0, ReLU for x < 0) gradients vanish."""
    names = list(names)
    x = np.linspace(x_range[0], x_range[1], points)
    figsize = figsize or (2.8 * len(names), 2.8)
    fig = _figure(figsize)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        label, _ = _activation_fn(name)
        y, dy = activation_curve(name, x)
        ax.plot(x, y, label="f(x)")
        ax.plot(x, dy, "--", label="f'(x)")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, save, dpi)


# ---- computation graph --------------------------------------------------------------------------
def _tensor_label(t, names):
    name = names.get(_tensor_key(t))
    shape = "x".join(str(s) for s in t.shape) or "scalar"
    return f"{name}\n{shape}" if name else shape


def _tensor_key(t):
    """An op's output is identified by (its Context, which output), a leaf by itself. (A Context
    remembers an input another op computed as an Output, with the same _node and _index.)"""
    return ("out", id(t._node), t._index) if t._node is not None else ("leaf", id(t))


def graph_nodes(tensor, names=None):
    """The computation graph behind `tensor`, as plain data: (nodes, edges).

    nodes: {key: (kind, label)}, kind "tensor" (a leaf or an op's output), "function" (the op,
    labelled with its Function's class name) or "constant" (labelled "no grad": an input that
    needs no gradient, such as the data or a Python number, which the graph does not keep); edges: [(from_key, to_key)] in the direction data flows.
    The walk follows `Tensor._node` to the Context that made a tensor and `Context.inputs` to
    the tensors it read (leaves, or Outputs of other Contexts). `names` maps tensors to labels,
    e.g. {x: "x", w: "w"}.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph_nodes: expected a Tensor, got {type(tensor).__name__}")
    names = {_tensor_key(t): str(n) for t, n in (names or {}).items()}
    nodes, edges = {}, []

    root = _tensor_key(tensor)
    nodes[root] = ("tensor", _tensor_label(tensor, names))
    stack, seen = [tensor], set()
    while stack:
        t = stack.pop()
        ctx = t._node
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        fkey = ("fn", id(ctx))
        nodes[fkey] = ("function", ctx.fn.__name__)
        for i in range(len(ctx.out_meta)):  # every output of the op, also those not followed
            okey = ("out", id(ctx), i)
            if okey not in nodes:
                shape = "x".join(str(s) for s in ctx.out_meta[i][0]) or "scalar"
                nodes[okey] = ("tensor", shape)
            edges.append((fkey, okey))
        for j, inp in enumerate(ctx.inputs):
            if inp is None:
                ckey = ("const", id(ctx), j)
                nodes[ckey] = ("constant", "no grad")
                edges.append((ckey, fkey))
                continue
            ikey = _tensor_key(inp)
            if ikey not in nodes or ikey in names:  # a name beats the shape-only label
                nodes[ikey] = ("tensor", _tensor_label(inp, names))
            edges.append((ikey, fkey))
            stack.append(inp)
    return nodes, edges


def graph_dot(tensor, names=None):
    """Graphviz DOT text of the computation graph behind `tensor` (see `graph_nodes`): tensors
    as ellipses, Functions as boxes, inputs that need no gradient as plain text. Render with `dot -Tpng`."""
    nodes, edges = graph_nodes(tensor, names)
    ids = {key: f"n{i}" for i, key in enumerate(nodes)}
    shape = {"tensor": "ellipse", "function": "box", "constant": "plaintext"}
    lines = ["digraph minicnn {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for key, (kind, label) in nodes.items():
        style = ', style=filled, fillcolor="#dde8f6"' if kind == "function" else ""
        text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'  {ids[key]} [label="{text}", shape={shape[kind]}{style}];')
    for a, b in edges:
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(nodes, edges):
    """Column of every node: 0 for sources, else one more than its furthest predecessor."""
    preds = {k: [] for k in nodes}
    for a, b in edges:
        preds[b].append(a)
    level = {}
    for key in nodes:  # iterative longest-path on the DAG
        stack = [key]
        while stack:
            k = stack[-1]
            todo = [p for p in preds[k] if p not in level]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            level[k] = 1 + max((level[p] for p in preds[k]), default=-1)
    succ = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    for key in nodes:  # leaves and constants sit just before their first reader, not far left
        if not preds[key] and key in succ:
            level[key] = min(level[b] for b in succ[key]) - 1
    return level


def plot_graph(tensor, names=None, save=None, figsize=None, dpi=DPI):
    """The computation graph behind `tensor`, drawn with matplotlib, data flowing left to
    right: tensors in round boxes (shape, and name when `names` gives one), Functions in blue
    square boxes. The same graph as `graph_dot`."""
    nodes, edges = graph_nodes(tensor, names)
    level = _layers(nodes, edges)
    columns = {}
    for key in nodes:
        columns.setdefault(level[key], []).append(key)
    ncol = max(columns) + 1
    nrow = max(len(v) for v in columns.values())
    figsize = figsize or (max(4.0, 1.3 * ncol), max(2.0, 0.9 * nrow + 0.6))
    fig = _figure(figsize)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-0.6, ncol - 0.4)
    ax.set_ylim(-0.6, nrow - 0.4)
    ax.axis("off")
    pos = {}
    for c, keys in columns.items():
        offset = (nrow - len(keys)) / 2
        for r, key in enumerate(keys):
            pos[key] = (c, nrow - 1 - (offset + r))
    for a, b in edges:
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops=dict(arrowstyle="->", color="0.4", shrinkA=18, shrinkB=18))
    box = {"tensor": dict(boxstyle="round,pad=0.3", fc="white", ec="0.3"),
           "function": dict(boxstyle="square,pad=0.3", fc="#dde8f6", ec="#3465a4"),
           "constant": dict(boxstyle="round,pad=0.2", fc="0.93", ec="0.7", ls=":")}
    for key, (kind, label) in nodes.items():
        ax.text(*pos[key], label, ha="center", va="center", fontsize=8, bbox=box[kind],
                fontweight="bold" if kind == "function" else "normal")
    return _finish(fig, save, dpi)


# ---- im2col -------------------------------------------------------------------------------------
def im2col_index_matrix(H=4, W=4, kernel_size=3, stride=1, padding=0, dilation=1):
    """Which input pixel lands in which im2col cell, for one channel: an int array
    (kH*kW, OH*OW) holding the flat index h*W + w of the pixel, or -1 where the window reads
    padding. Computed with the reference im2col on an index image (pixel value = index + 1,
    so that the zeros im2col writes for padding become -1)."""
    from .kernels.geometry import ConvGeometry
    from .kernels.reference import conv as ref

    kh, kw = pair("im2col_index_matrix", "kernel_size", kernel_size)
    sh, sw = pair("im2col_index_matrix", "stride", stride)
    ph, pw = pair("im2col_index_matrix", "padding", padding)
    dh, dw = pair("im2col_index_matrix", "dilation", dilation)
    oh = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col_index_matrix: a {kh}x{kw} window does not fit a {H}x{W} input "
                         f"with padding {padding} (output would be {oh}x{ow})")
    index_image = (np.arange(H * W, dtype=np.float64) + 1).reshape(1, 1, H, W)
    geom = ConvGeometry(kh=kh, kw=kw, sh=sh, sw=sw, pt=ph, pl=pw, pb=ph, pr=pw,
                        dil_h=dh, dil_w=dw, groups=1, oh=oh, ow=ow)
    cols = ref.im2col(index_image, geom)[0]
    return cols.astype(np.int64) - 1


def plot_im2col(H=4, W=4, kernel_size=3, stride=1, padding=0, dilation=1, column=0, save=None,
                figsize=None, dpi=DPI):
    """Left: the input (H, W), each pixel numbered h*W + w, the receptive field of output
    position `column` outlined. Right: the im2col matrix (kH*kW rows, OH*OW columns); cell
    (tap, position) shows which pixel it copies ("p" = padding), the column `column` highlighted.
    A convolution is then W (O, kH*kW) @ this matrix."""
    idx = im2col_index_matrix(H, W, kernel_size, stride, padding, dilation)
    K, L = idx.shape
    if not 0 <= column < L:
        raise ValueError(f"plot_im2col: column must lie in 0..{L - 1}, got {column}")
    figsize = figsize or (0.45 * (W + L) + 2.5, 0.45 * max(H, K) + 1.3)
    fig = _figure(figsize)
    ax_in, ax_cols = fig.subplots(1, 2, gridspec_kw={"width_ratios": [W + 1, L + 1]})
    colours = np.arange(H * W).reshape(H, W)
    ax_in.imshow(colours, cmap="tab20", vmin=0, vmax=max(19, H * W - 1), alpha=0.5)
    picked = set(idx[:, column][idx[:, column] >= 0].tolist())
    for h in range(H):
        for w in range(W):
            ax_in.text(w, h, str(h * W + w), ha="center", va="center", fontsize=8,
                       fontweight="bold" if h * W + w in picked else "normal")
            if h * W + w in picked:
                ax_in.add_patch(_rect(w, h, "red"))
    ax_in.set_title(f"input {H}x{W}\n(red: column {column}'s window)", fontsize=9)
    shown = np.where(idx >= 0, idx, -1)
    ax_cols.imshow(np.where(shown >= 0, shown, np.nan), cmap="tab20", vmin=0,
                   vmax=max(19, H * W - 1), alpha=0.5, aspect="auto")
    for r in range(K):
        for c in range(L):
            ax_cols.text(c, r, "p" if idx[r, c] < 0 else str(idx[r, c]), ha="center",
                         va="center", fontsize=7)
    ax_cols.add_patch(_rect(column, (K - 1) / 2, "red", height=K))
    ax_cols.set_xlabel("output position oy*OW + ox")
    ax_cols.set_ylabel("tap i*kW + j")
    ax_cols.set_xticks(range(L))
    ax_cols.set_yticks(range(K))
    ax_cols.tick_params(labelsize=7)
    ax_cols.set_title(f"im2col: {K} x {L}", fontsize=9)
    _blank(ax_in)
    fig.tight_layout()
    return _finish(fig, save, dpi)


def _rect(x, y, colour, width=1, height=1, lw=2, pad=0.0):
    """An outline of `width` x `height` cells centred on (x, y), shrunk by `pad` on each side."""
    from matplotlib.patches import Rectangle
    return Rectangle((x - width / 2 + pad, y - height / 2 + pad), width - 2 * pad, height - 2 * pad,
                     fill=False, ec=colour, lw=lw)


# ---- pooling ------------------------------------------------------------------------------------
def plot_pooling(x=None, kernel_size=2, stride=None, mode="max", save=None, figsize=None, dpi=DPI):
    """A small matrix (default the lecture's 4x4 example) and its pooled output, computed with
    minicnn's own F.max_pool2d / F.avg_pool2d. Each output cell's window is outlined in the
    input in the output cell's colour (overlapping windows, stride < kernel, share cells)."""
    from . import functional as F
    from matplotlib import colormaps

    x = POOL_EXAMPLE if x is None else np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"plot_pooling: expected a 2-D matrix, got shape {x.shape}")
    if mode not in ("max", "avg"):
        raise ValueError(f"plot_pooling: mode must be 'max' or 'avg', got {mode!r}")
    kh, kw = pair("plot_pooling", "kernel_size", kernel_size)
    sh, sw = pair("plot_pooling", "stride", (kh, kw) if stride is None else stride)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    with _grad_mode.no_grad():
        out = pool(Tensor(x[None, None]), (kh, kw), (sh, sw)).numpy()[0, 0]
    OH, OW = out.shape
    H, W = x.shape
    cmap = colormaps["tab10"]
    figsize = figsize or (0.55 * (W + OW) + 2.2, 0.55 * max(H, OH) + 1.2)
    fig = _figure(figsize)
    ax_in, ax_out = fig.subplots(1, 2, gridspec_kw={"width_ratios": [W + 1, OW + 1]})
    for ax, m in ((ax_in, x), (ax_out, out)):
        ax.imshow(np.zeros_like(m), cmap="gray_r", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=10)
        ax.set_xticks(np.arange(-0.5, m.shape[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, m.shape[0], 1), minor=True)
        ax.grid(which="minor", color="0.8")
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    overlap = kh > sh or kw > sw
    for oy in range(OH):
        for ox in range(OW):
            colour = cmap((oy * OW + ox) % 10)
            pad = 0.06 * ((oy * OW + ox) % 3) if overlap else 0.04
            ax_in.add_patch(_rect(ox * sw + (kw - 1) / 2, oy * sh + (kh - 1) / 2, colour,
                                  width=kw, height=kh, lw=2.5, pad=pad))
            ax_out.add_patch(_rect(ox, oy, colour, lw=2.5, pad=0.04))
    ax_in.set_title(f"input {H}x{W}", fontsize=9)
    ax_out.set_title(f"{mode} pool {kh}x{kw}, stride {sh}\n-> {OH}x{OW}", fontsize=9)
    fig.tight_layout()
    return _finish(fig, save, dpi)


# ---- confusion matrix ---------------------------------------------------------------------------
def plot_confusion_matrix(counts, target=None, num_classes=None, class_names=None,
                          normalize=False, save=None, figsize=None, dpi=DPI, title=None):
    """A confusion matrix: rows the true class, columns the predicted class, each cell
    annotated with its count (or, with `normalize=True`, the fraction of its row: per-class recall).

    `counts`: a (C, C) matrix as `metrics.confusion_matrix` returns, or predictions (N,) / scores
    (N, C) when `target` (N,) is given too (then the matrix is computed here).
    """
    from .metrics import confusion_matrix

    if target is not None:
        counts = np.asarray(_numpy(counts))
        if num_classes is None:
            num_classes = counts.shape[1] if counts.ndim == 2 else \
                int(max(counts.max(initial=0), _numpy(target).max(initial=0))) + 1
        counts = confusion_matrix(counts, target, num_classes)
    counts = np.asarray(_numpy(counts))
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (C, C) matrix, got {counts.shape}")
    C = counts.shape[0]
    if class_names is not None and len(class_names) != C:
        raise ValueError(f"plot_confusion_matrix: {C} classes but {len(class_names)} class names")
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    shown = counts.astype(np.float64)
    if normalize:
        rows = shown.sum(axis=1, keepdims=True)
        shown = np.divide(shown, rows, out=np.zeros_like(shown), where=rows > 0)
    figsize = figsize or (max(3.5, 0.5 * C + 2.0), max(3.0, 0.5 * C + 1.5))
    fig = _figure(figsize)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    top = shown.max() if shown.size else 0
    for (r, c), v in np.ndenumerate(shown):
        text = f"{v:.2f}" if normalize else f"{int(counts[r, c])}"
        ax.text(c, r, text, ha="center", va="center", fontsize=7 if C > 10 else 9,
                color="white" if top and v > 0.6 * top else "black")
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xticklabels(names, rotation=45 if class_names is not None else 0, ha="right"
                       if class_names is not None else "center", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(counts) / counts.sum() if counts.sum() else float("nan")
    ax.set_title(title or f"accuracy {100 * acc:.1f}% of {int(counts.sum())}", fontsize=10)
    fig.tight_layout()
    return _finish(fig, save, dpi)
