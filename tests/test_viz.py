"""minicnn.viz: every figure is drawn, saved as a PNG of the expected pixel size and not blank;
the numbers behind the pictures (saliency, feature maps, derivatives, graph, im2col indices,
pooled values, confusion counts) are checked against plain oracles written here."""
import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
from minicnn import models, nn, viz  # noqa: E402


def check_png(fig, path, figsize=None, dpi=viz.DPI):
    """The saved PNG has figsize * dpi pixels (figsize: the requested one, else the figure's)
    and is not one flat colour."""
    img = mpimg.imread(str(path))
    w_in, h_in = figsize if figsize is not None else fig.get_size_inches()
    assert img.shape[:2] == (round(h_in * dpi), round(w_in * dpi))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img[..., :3].std() > 0.01, "the figure is blank"
    return img


def tiny_net(dtype=np.float64, in_channels=2, classes=3, seed=0):
    """conv 3x3 (pad 1) -> ReLU -> 2x2 max pool -> linear, for 6x6 images."""
    mc.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 3 * 3, classes))
    if dtype == np.float64:
        for p in net.parameters():
            p.data = p.data.astype(np.float64)
    return net


@pytest.fixture
def history():
    return [{"epoch": i + 1, "train_loss": 2.0 / (i + 1), "train_acc": 0.1 * i,
             "val_loss": 2.1 / (i + 1), "val_top1": 0.1 * i, "val_top5": 0.3 + 0.1 * i,
             "lr": 0.1 * 0.5 ** i, "seconds": 1.0, "images_per_s": 100.0} for i in range(4)]


# ---- import cost --------------------------------------------------------------------------------
def test_matplotlib_is_imported_lazily():
    code = ("import sys, minicnn, minicnn.viz; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- training curves ----------------------------------------------------------------------------
def test_curves_from_list_json_and_dict(history, tmp_path):
    fig = viz.plot_curves(history, save=tmp_path / "a.png", figsize=(9, 3), dpi=80)
    check_png(fig, tmp_path / "a.png", (9, 3), dpi=80)
    ax_loss, ax_acc, ax_lr = fig.axes
    assert [ln.get_label() for ln in ax_loss.lines] == ["train", "validation"]
    assert np.allclose(ax_acc.lines[2].get_ydata(), [100 * r["val_top5"] for r in history])
    assert ax_lr.get_yscale() == "log"

    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    fig = viz.plot_curves(str(path), save=tmp_path / "b.png")
    check_png(fig, tmp_path / "b.png")

    as_dict = {"train_loss": [1.0, 0.5, 0.2], "train_acc": [0.2, 0.5, 0.9], "lr": [0.1] * 3}
    fig = viz.plot_curves(as_dict, save=tmp_path / "c.png")
    check_png(fig, tmp_path / "c.png")
    assert len(fig.axes[0].lines) == 1 and fig.axes[2].get_yscale() == "linear"


def test_curves_without_validation(history):
    for r in history:
        r["val_loss"] = r["val_top1"] = r["val_top5"] = None
    fig = viz.plot_curves(history)
    assert [ln.get_label() for ln in fig.axes[1].lines] == ["train top-1"]


def test_curves_errors():
    with pytest.raises(ValueError, match="plot_curves: the history is empty"):
        viz.plot_curves([])
    with pytest.raises(ValueError, match="plot_curves: expected records with 'train_loss'"):
        viz.plot_curves([{"loss": 1.0}])


# ---- filters ------------------------------------------------------------------------------------
def tile(grid, k, cols, kh, kw):
    """Tile k of a filter mosaic (tiles kh x kw, one pixel apart, row by row)."""
    r, c = divmod(k, cols)
    return grid[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw]


@pytest.mark.parametrize("shape", [(6, 1, 5, 5), (16, 6, 5, 5), (12, 3, 7, 7), (4, 20, 3, 3)])
def test_filters(shape, tmp_path, rng):
    O, C, kh, kw = shape
    w = rng.standard_normal(shape)
    fig = viz.plot_filters(w, save=tmp_path / "f.png")
    check_png(fig, tmp_path / "f.png")
    grid = np.asarray(fig.axes[0].images[0].get_array())
    if C == 3:  # colour: one RGB tile per filter, min-max scaled on its own, 4 per row
        assert grid.shape == (3 * 8 - 1, 4 * 8 - 1, 3)
        for k in (0, 5, 11):
            np.testing.assert_allclose(tile(grid, k, 4, kh, kw),
                                       (w[k].transpose(1, 2, 0) - w[k].min()) / np.ptp(w[k]))
    elif C == 1:  # one channel: a square-ish grid of grey tiles (3 x 2 for 6 filters)
        assert grid.shape == (2 * 6 - 1, 3 * 6 - 1)
        np.testing.assert_array_equal(tile(grid, 4, 3, kh, kw), w[4, 0])
    else:  # columns: filters, rows: the first 8 channels at most
        rows = min(C, 8)
        assert grid.shape == (rows * (kh + 1) - 1, O * (kw + 1) - 1)
        np.testing.assert_array_equal(tile(grid, 2 * O + 1, O, kh, kw), w[1, 2])  # filter 1, channel 2
        assert np.isnan(grid[kh, 0]), "the gaps between tiles are empty"
        assert fig.axes[0].images[0].get_clim() == (-np.abs(w).max(), np.abs(w).max())


def test_filters_of_a_layer_and_errors(tmp_path, rng):
    conv = models.lenet5().features[0]
    fig = viz.plot_filters(conv, save=tmp_path / "f.png", figsize=(4, 3))
    check_png(fig, tmp_path / "f.png", (4, 3))
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array())[:5, :5],
                                  conv.weight.numpy()[0, 0])
    # a wide layer: the first 32 filters and 8 channels, said in the title
    fig = viz.plot_filters(rng.standard_normal((64, 16, 3, 3)))
    assert fig.axes[0].images[0].get_array().shape == (8 * 4 - 1, 32 * 4 - 1)
    assert fig.axes[0].get_title() == "64 filters, 16 x 3 x 3 (first 32 filters, first 8 channels)"
    fig = viz.plot_filters(rng.standard_normal((100, 3, 5, 5)), max_filters=12)
    assert fig.axes[0].images[0].get_array().shape == (3 * 6 - 1, 4 * 6 - 1, 3)
    with pytest.raises(ValueError, match=r"plot_filters: expected conv weights of shape \(O, C, kH, kW\), got \(3, 4\)"):
        viz.plot_filters(np.zeros((3, 4)))


# ---- feature maps -------------------------------------------------------------------------------
def test_feature_maps_equal_running_the_layers(rng, tmp_path):
    net = tiny_net()
    net.train()
    image = rng.standard_normal((2, 6, 6))
    maps = viz.feature_maps(net, image, "1")
    with mc.no_grad():
        expected = net[1](net[0](mc.Tensor(image[None], dtype=np.float64))).numpy()[0]
    np.testing.assert_allclose(maps, expected)
    assert net.training, "the model's mode is restored"
    assert not net[1]._forward_hooks, "the hook is removed"
    np.testing.assert_allclose(viz.feature_maps(net, image, net[2]), viz.feature_maps(net, image, "2"))
    assert viz.feature_maps(net, image, "4").shape == (3,)

    fig = viz.plot_feature_maps(net, image, "0", save=tmp_path / "m.png")
    check_png(fig, tmp_path / "m.png")
    assert sum(1 for ax in fig.axes if ax.images) == 1 + 4  # the input and 4 maps
    with pytest.raises(ValueError, match="feature_maps: the model has no layer named 'conv9'"):
        viz.feature_maps(net, image, "conv9")
    with pytest.raises(ValueError, match=r"feature_maps: expected one image of shape \(C, H, W\)"):
        viz.feature_maps(net, rng.standard_normal((2, 2, 6, 6)), "0")


def test_feature_maps_of_lenet(tmp_path):
    model = models.lenet5()
    image = mc.data.Shapes(n=1)[0][0]
    fig = viz.plot_feature_maps(model, image, "features.3", save=tmp_path / "m.png", max_maps=8)
    check_png(fig, tmp_path / "m.png")
    assert viz.feature_maps(model, image, "features.3").shape == (16, 10, 10)


# ---- saliency -----------------------------------------------------------------------------------
def numeric_saliency(net, image, target, eps=1e-6):
    """max over channels of |dS_t/dI| by central differences (eval mode, float64)."""
    net.eval()
    grad = np.zeros_like(image)
    for idx in np.ndindex(*image.shape):
        plus, minus = image.copy(), image.copy()
        plus[idx] += eps
        minus[idx] -= eps
        with mc.no_grad():
            sp = net(mc.Tensor(plus[None], dtype=np.float64)).numpy()[0, target]
            sm = net(mc.Tensor(minus[None], dtype=np.float64)).numpy()[0, target]
        grad[idx] = (sp - sm) / (2 * eps)
    return np.abs(grad).max(axis=0)


def test_saliency_is_the_input_gradient(rng):
    net = tiny_net()
    net.train()
    image = rng.standard_normal((2, 6, 6))
    for target in (0, 2):
        sal, t = viz.saliency(net, image, target)
        assert t == target and sal.shape == (6, 6)
        assert np.abs(sal).max() > 0
        np.testing.assert_allclose(sal, numeric_saliency(net, image, target), rtol=1e-5, atol=1e-8)
    # the default target is the predicted class
    with mc.no_grad():
        pred = int(np.argmax(net.eval()(mc.Tensor(image[None], dtype=np.float64)).numpy()))
    net.train()
    assert viz.saliency(net, image)[1] == pred
    # parameters and mode untouched
    assert net.training
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


def test_saliency_uses_eval_mode(rng):
    """With dropout in the net, eval mode makes the map deterministic."""
    mc.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))
    image = rng.standard_normal((1, 4, 4)).astype(np.float32)
    a, _ = viz.saliency(net, image, 1)
    b, _ = viz.saliency(net, image, 1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, np.abs(net[2].weight.numpy()[1]).reshape(4, 4), rtol=1e-6)


def test_plot_saliency_on_lenet(tmp_path):
    model = models.lenet5()
    image = mc.data.Shapes(n=1)[0][0]
    fig, sal = viz.plot_saliency(model, image, save=tmp_path / "s.png", figsize=(6, 2),
                                 title="a title")
    check_png(fig, tmp_path / "s.png", (6, 2))
    assert fig._suptitle.get_text() == "a title"
    assert sal.shape == image.shape[1:]
    assert np.all(sal >= 0) and sal.max() > 0
    with pytest.raises(ValueError, match=r"saliency: target must lie in 0..9, got 10"):
        viz.saliency(model, image, 10)


def test_saliency_colour_image(tmp_path):
    model = models.lenet5(in_channels=3)
    image = mc.data.Shapes(n=1, channels=3)[0][0]
    fig, sal = viz.plot_saliency(model, image[None], save=tmp_path / "s.png")
    check_png(fig, tmp_path / "s.png")
    assert sal.shape == (28, 28) and sal.max() > 0


# ---- activation functions -----------------------------------------------------------------------
def test_activation_derivatives_from_autograd():
    x = np.array([-3.0, -1.2, -0.3, 0.4, 1.1, 2.5])
    s = 1 / (1 + np.exp(-x))
    expected = {
        "sigmoid": (s, s * (1 - s)),
        "tanh": (np.tanh(x), 1 - np.tanh(x) ** 2),
        "relu": (np.maximum(x, 0), (x > 0).astype(float)),
        "leaky_relu": (np.where(x > 0, x, 0.1 * x), np.where(x > 0, 1.0, 0.1)),
        "elu": (np.where(x > 0, x, np.exp(x) - 1), np.where(x > 0, 1.0, np.exp(x))),
    }
    for name, (y_true, dy_true) in expected.items():
        y, dy = viz.activation_curve(name, x)
        np.testing.assert_allclose(y, y_true, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(dy, dy_true, rtol=1e-12, err_msg=name)
    y, dy = viz.activation_curve(lambda t: t * t * t, x)  # any elementwise function
    np.testing.assert_allclose(dy, 3 * x ** 2)
    with pytest.raises(ValueError, match="activation_curve: expected one of"):
        viz.activation_curve("swish", x)


def test_plot_activations(tmp_path):
    fig = viz.plot_activations(save=tmp_path / "a.png")
    check_png(fig, tmp_path / "a.png")
    assert len(fig.axes) == len(viz.ACTIVATIONS)
    x, dy = fig.axes[0].lines[1].get_data()
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(dy, s * (1 - s), rtol=1e-10)  # the dashed line is sigmoid'
    fig = viz.plot_activations(["relu"], x_range=(-1, 1), save=tmp_path / "b.png", figsize=(3, 3))
    check_png(fig, tmp_path / "b.png", (3, 3))


# ---- computation graph --------------------------------------------------------------------------
def expression():
    x = mc.Tensor(np.arange(6.0).reshape(2, 3) - 2.5, requires_grad=True)
    w = mc.Tensor(np.ones((3, 4)), requires_grad=True)
    z = (F.relu(x @ w) * 2.0 + x.exp().sum()).mean()
    return x, w, z


def test_graph_nodes_and_edges():
    x, w, z = expression()
    nodes, edges = viz.graph_nodes(z, names={x: "x", w: "w"})
    fns = sorted(label for kind, label in nodes.values() if kind == "function")
    assert fns == ["Add", "Exp", "MatMul", "Mean", "Mul", "ReLU", "Sum"]
    leaves = sorted(label for key, (kind, label) in nodes.items() if key[0] == "leaf")
    assert leaves == ["w\n3x4", "x\n2x3"]  # x is read twice but drawn once
    assert sum(kind == "constant" for kind, _ in nodes.values()) == 1  # the 2.0 in Mul
    assert sum(kind == "tensor" for kind, _ in nodes.values()) == 2 + 7  # leaves + one per op
    # x feeds MatMul and Exp; every op has exactly one output edge
    x_key = next(k for k, (_, lab) in nodes.items() if lab.startswith("x"))
    assert sorted(nodes[b][1] for a, b in edges if a == x_key) == ["Exp", "MatMul"]
    for key, (kind, _) in nodes.items():
        if kind == "function":
            assert sum(a == key for a, _ in edges) == 1
    assert len(edges) == 7 + 2 + 2 + 2 + 1 + 1 + 2  # outputs + MatMul, Add, Mul (2 each), ...


def test_graph_dot_text():
    x, w, z = expression()
    dot = viz.graph_dot(z, names={x: "x", w: "w"})
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    for name in ("MatMul", "ReLU", "Mul", "Add", "Exp", "Sum", "Mean"):
        assert f'label="{name}"' in dot
    assert 'label="x\\n2x3"' in dot
    nodes, edges = viz.graph_nodes(z)
    assert dot.count("->") == len(edges)
    leaf = mc.Tensor(np.ones(3), requires_grad=True)
    assert viz.graph_dot(leaf).count("->") == 0
    with pytest.raises(TypeError, match="graph_nodes: expected a Tensor, got ndarray"):
        viz.graph_dot(np.ones(3))


def test_plot_graph(tmp_path):
    x, w, z = expression()
    fig = viz.plot_graph(z, names={x: "x", w: "w"}, save=tmp_path / "g.png")
    check_png(fig, tmp_path / "g.png")
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"MatMul", "ReLU", "Mean", "x\n2x3", "no grad"} <= texts
    # a graph through a conv layer, with a tuple-free model
    net = tiny_net()
    out = F.cross_entropy(net(mc.Tensor(np.ones((1, 2, 6, 6)), dtype=np.float64)), np.array([1]))
    fig = viz.plot_graph(out, save=tmp_path / "g2.png", figsize=(12, 3))
    check_png(fig, tmp_path / "g2.png", (12, 3))
    assert all(f"label=\"{name}\"" in viz.graph_dot(out) for name in ("Conv2d", "Tanh", "Linear"))


# ---- im2col -------------------------------------------------------------------------------------
def naive_im2col_indices(H, W, k, s, p):
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.full((k * k, oh * ow), -1, dtype=np.int64)
    for i, j, oy, ox in np.ndindex(k, k, oh, ow):
        h, w = oy * s - p + i, ox * s - p + j
        if 0 <= h < H and 0 <= w < W:
            out[i * k + j, oy * ow + ox] = h * W + w
    return out


@pytest.mark.parametrize("H,W,k,s,p", [(4, 4, 3, 1, 0), (4, 4, 3, 1, 1), (5, 6, 3, 2, 1),
                                       (3, 3, 1, 1, 0), (6, 5, 2, 2, 0)])
def test_im2col_index_matrix(H, W, k, s, p):
    np.testing.assert_array_equal(viz.im2col_index_matrix(H, W, k, s, p),
                                  naive_im2col_indices(H, W, k, s, p))


def test_plot_im2col(tmp_path):
    fig = viz.plot_im2col(4, 4, 3, save=tmp_path / "i.png")
    check_png(fig, tmp_path / "i.png")
    fig = viz.plot_im2col(5, 5, 3, stride=2, padding=1, column=4, save=tmp_path / "j.png",
                          figsize=(7, 4))
    check_png(fig, tmp_path / "j.png", (7, 4))
    # the column panel writes the index of every cell, "p" for padding
    cells = [t.get_text() for t in fig.axes[1].texts]
    idx = naive_im2col_indices(5, 5, 3, 2, 1)
    assert cells == ["p" if v < 0 else str(v) for v in idx.ravel()]
    with pytest.raises(ValueError, match="plot_im2col: column must lie in 0..3, got 4"):
        viz.plot_im2col(4, 4, 3, column=4)
    with pytest.raises(ValueError, match="im2col_index_matrix: a 5x5 window does not fit a 3x3 input"):
        viz.im2col_index_matrix(3, 3, 5)


# ---- pooling ------------------------------------------------------------------------------------
def test_plot_pooling_lecture_example(tmp_path):
    fig = viz.plot_pooling(save=tmp_path / "p.png")
    check_png(fig, tmp_path / "p.png")
    out = [t.get_text() for t in fig.axes[1].texts]
    assert out == ["6", "8", "3", "4"]  # the slide's answer
    fig = viz.plot_pooling(mode="avg")
    assert [t.get_text() for t in fig.axes[1].texts] == ["3.25", "5.25", "2", "2"]
    fig = viz.plot_pooling(kernel_size=3, stride=1, save=tmp_path / "q.png", figsize=(5, 3))
    check_png(fig, tmp_path / "q.png", (5, 3))
    assert [t.get_text() for t in fig.axes[1].texts] == ["7", "8", "7", "8"]
    assert len(fig.axes[0].patches) == 4  # one outlined window per output cell
    with pytest.raises(ValueError, match="plot_pooling: mode must be 'max' or 'avg', got 'min'"):
        viz.plot_pooling(mode="min")


# ---- confusion matrix ---------------------------------------------------------------------------
def test_confusion_matrix_counts(tmp_path):
    target = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
    pred = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2, 0])
    expected = np.zeros((3, 3), dtype=int)
    for t, p in zip(target, pred):
        expected[t, p] += 1
    fig = viz.plot_confusion_matrix(pred, target, save=tmp_path / "c.png",
                                    class_names=["circle", "square", "star"])
    check_png(fig, tmp_path / "c.png")
    ax = fig.axes[0]
    shown = np.array([int(t.get_text()) for t in ax.texts]).reshape(3, 3)
    np.testing.assert_array_equal(shown, expected)
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert ax.get_title() == "accuracy 70.0% of 10"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["circle", "square", "star"]
    # from scores, and from a ready matrix
    scores = np.eye(3)[pred]
    fig2 = viz.plot_confusion_matrix(scores, mc.Tensor(target))
    assert [t.get_text() for t in fig2.axes[0].texts] == [t.get_text() for t in ax.texts]
    fig3 = viz.plot_confusion_matrix(expected, normalize=True, save=tmp_path / "d.png", figsize=(4, 4))
    check_png(fig3, tmp_path / "d.png", (4, 4))
    rows = np.array([float(t.get_text()) for t in fig3.axes[0].texts]).reshape(3, 3)
    np.testing.assert_allclose(rows, expected / expected.sum(1, keepdims=True), atol=0.005)


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"plot_confusion_matrix: expected a square \(C, C\) matrix, got \(2, 3\)"):
        viz.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="plot_confusion_matrix: 2 classes but 3 class names"):
        viz.plot_confusion_matrix(np.eye(2), class_names=["a", "b", "c"])
