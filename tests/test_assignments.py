"""The coursework (notebooks/assignments, notebooks/solutions) and its grader (minicnn.grading):
every check is well posed.

* every stub notebook stops at its first check, with the grader's "not written yet" error;
* every solution notebook runs clean (A6 trains LeNet-5 on the solution's kernels to >= 98% on
  MNIST when $MINICNN_DATA has it; the notebook asserts its own bar);
* every task's solution passes `grading.check`, a stub fails it;
* planted wrong solutions (a forgotten 1/N, a transposed kernel, a sign, an off-by-one in the
  padding, a max pool routing to every tie, a BN backward without its mean term, ...) each fail
  with a message that names the mistake;
* a check is deterministic for a seed and stays within its time budget;
* `student_kernels` runs a real network on the student's functions and gives minicnn's own
  gradients back; `minicnn check A2 file.py` reports and sets its exit status.
"""
import ast
import pathlib
import time

import numpy as np
import pytest

pytest.importorskip("hypothesis")
nbformat = pytest.importorskip("nbformat")
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
from minicnn import grading  # noqa: E402
from minicnn.cli import main  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
STUBS = sorted((ROOT / "assignments").glob("A*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("A*.ipynb"))
NAMES = ["A1_im2col_conv_forward", "A2_conv_backward", "A3_pooling", "A4_activations_softmax_dropout",
         "A5_batchnorm_lrn", "A6_optimisers_lenet"]


def _solution_namespace():
    """Every function of every solution notebook, run once (the notebooks define, we collect)."""
    space = {"np": np}
    for path in SOLUTIONS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            tree = ast.parse(cell.source)
            defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
            if defs and len(defs) == len(tree.body):
                exec(compile(cell.source, str(path), "exec"), space)
    return space


SOLVED = _solution_namespace()


def _run(path, tmp_path, timeout=300):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


# ---- the notebooks ---------------------------------------------------------------------------
def test_the_six_pairs_are_there_and_agree():
    assert [p.stem for p in STUBS] == NAMES and [p.stem for p in SOLUTIONS] == NAMES
    for stub, solution in zip(STUBS, SOLUTIONS):
        a, b = nbformat.read(stub, as_version=4), nbformat.read(solution, as_version=4)
        assert [c.cell_type for c in a.cells] == [c.cell_type for c in b.cells]
        assert [c.source for c in a.cells if c.cell_type == "markdown"] == \
               [c.source for c in b.cells if c.cell_type == "markdown"], "stub and solution teach the same text"
        for nb in (a, b):
            assert nb.cells[0].source.startswith("# A"), "every assignment opens with a title"
            for cell in nb.cells:
                if cell.cell_type == "code":
                    assert cell.outputs == [] and cell.execution_count is None, f"{cell.id} stored with outputs"
        assert 'raise NotImplementedError("TODO")' in "".join(c.source for c in a.cells)
        assert "NotImplementedError" not in "".join(c.source for c in b.cells)


def test_the_package_never_imports_the_solutions():
    package = pathlib.Path(grading.__file__).resolve().parent.parent
    for source in package.rglob("*.py"):
        assert "solutions" not in source.read_text().replace("notebooks/solutions", ""), source


@pytest.mark.parametrize("path", STUBS, ids=lambda p: p.stem)
def test_a_stub_notebook_stops_at_its_first_check(path, tmp_path):
    with pytest.raises(CellExecutionError) as err:
        _run(path, tmp_path, timeout=120)
    text = str(err.value)
    assert "CheckFailed" in text and "is not written yet" in text, text[-2000:]
    nb = nbformat.read(path, as_version=4)
    first_check = next(c for c in nb.cells if c.cell_type == "code" and "grading.check(" in c.source)
    assert first_check.source.splitlines()[0] in text or first_check.source in text


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_a_solution_notebook_runs_clean(path, tmp_path):
    nb = _run(path, tmp_path)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "FAILED" not in printed
    assert printed.count("passed on") >= 2, printed


# ---- the grader, task by task ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(grading.TASKS))
def test_every_solution_passes_and_a_stub_fails(name):
    result = grading.check(name, SOLVED[name], quiet=True)
    assert result.passed and result.examples >= 20, result.message

    def stub(*args):
        raise NotImplementedError("TODO")

    with pytest.raises(grading.CheckFailed, match="is not written yet"):
        grading.check(name, stub, quiet=True)


def test_every_task_has_an_assignment_and_a_solution():
    assert sorted(grading.ASSIGNMENTS) == ["A1", "A2", "A3", "A4", "A5", "A6"]
    assert all(grading.ASSIGNMENTS.values())
    assert set(grading.TASKS) <= set(SOLVED)


# ---- planted wrong solutions -----------------------------------------------------------------
S = SOLVED


def _ce_mean_without_1_over_n(logits, target):
    loss = S["cross_entropy_forward"](logits, target).mean()
    return loss, S["cross_entropy_backward"](logits, target, np.ones(len(target)))


def _conv_with_transposed_kernel(x, weight, bias, stride, padding, dilation):
    O = weight.shape[0]
    w2 = weight.transpose(0, 1, 3, 2).reshape(O, -1)             # taps (j, i) where (i, j) belong
    cols = S["im2col"](x, weight.shape[2:], stride, padding, dilation)
    N, _, H, W = x.shape
    OH = S["conv_output_size"](H, weight.shape[2], stride[0], padding[0], dilation[0])
    OW = S["conv_output_size"](W, weight.shape[3], stride[1], padding[1], dilation[1])
    return (w2 @ cols + bias[:, None]).reshape(N, O, OH, OW)


def _conv_backward_sign(x, weight, grad_out, stride, padding, dilation):
    dx, dw, db = S["conv2d_backward"](x, weight, grad_out, stride, padding, dilation)
    return dx, -dw, db


def _im2col_padding_off_by_one(x, kernel, stride, padding, dilation):
    """Reads the padded input at oy*S - P + i*D: the padding is subtracted once too often."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    OH, OW = S["conv_output_size"](H, kh, sh, ph, dh), S["conv_output_size"](W, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, kh, kw, OH, OW))
    for i in range(kh):
        for j in range(kw):
            for oy in range(OH):
                for ox in range(OW):
                    cols[:, :, i, j, oy, ox] = xp[:, :, oy * sh - ph + i * dh, ox * sw - pw + j * dw]
    return cols.reshape(N, C * kh * kw, OH * OW)


def _max_pool_backward_every_tie(x, grad_out, kernel, stride, padding):
    dx = np.zeros_like(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    H, W = x.shape[2:]
    for oy in range(grad_out.shape[2]):
        for ox in range(grad_out.shape[3]):
            h0, w0 = max(oy * sh - ph, 0), max(ox * sw - pw, 0)
            h1, w1 = min(oy * sh - ph + kh, H), min(ox * sw - pw + kw, W)
            win = x[:, :, h0:h1, w0:w1]
            winners = win == win.max(axis=(2, 3), keepdims=True)
            dx[:, :, h0:h1, w0:w1] += winners * grad_out[:, :, oy, ox][:, :, None, None]
    return dx


def _bn_backward_without_mean_term(x, gamma, grad_out, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    M = x.size // x.shape[1]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    dgamma, dbeta = (grad_out * xhat).sum(axis=axes), grad_out.sum(axis=axes)
    dx = gamma.reshape(shape) / np.sqrt(var + eps) / M * (M * grad_out - xhat * dgamma.reshape(shape))
    return dx, dgamma, dbeta


def _avg_pool_backward_without_window_size(grad_out, x_shape, kernel, stride, padding):
    kh, kw = kernel
    return S["avg_pool_backward"](grad_out, x_shape, kernel, stride, padding) * (kh * kw)


def _softmax_unstable(x):
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _nesterov_as_plain_momentum(p, grad, buf, lr, momentum, nesterov):
    return S["sgd_step"](p, grad, buf, lr, momentum, False)


def _adam_without_bias_correction(p, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    return p - lr * m / (np.sqrt(v) + eps), m, v


def _running_var_biased(running_mean, running_var, x, momentum):
    axes = (0,) + tuple(range(2, x.ndim))
    return ((1 - momentum) * running_mean + momentum * x.mean(axis=axes),
            (1 - momentum) * running_var + momentum * x.var(axis=axes))


PLANTED = [
    # (task, wrong function, what the message must say)
    ("cross_entropy_mean", _ce_mean_without_1_over_n, ["dlogits", "a forgotten division by N (the batch size)", "loss is right"]),
    ("conv2d_forward", _conv_with_transposed_kernel, ["the kernel is transposed"]),
    ("conv2d_backward", _conv_backward_sign, ["dweight", "a sign error", "gradcheck", "analytic"]),
    ("im2col", _im2col_padding_off_by_one, ["every failing case has padding > 0", "padding=(0, 1)"]),
    ("max_pool_backward", _max_pool_backward_every_tie,
     ["to EVERY tied cell", "every failing case has tied maxima in a window"]),
    ("batchnorm_backward", _bn_backward_without_mean_term, ["dx drops the mean term", "dgamma, dbeta are right"]),
    ("avg_pool_backward", _avg_pool_backward_without_window_size, ["a forgotten division by kh*kw (the window size)"]),
    ("softmax", _softmax_unstable, ["nan/inf", "every failing case has large logits"]),
    ("sgd_step", _nesterov_as_plain_momentum, ["Nesterov", "every failing case has nesterov"]),
    ("adam_step", _adam_without_bias_correction, ["no bias correction"]),
    ("batchnorm_running_update", _running_var_biased, ["unbiased", "running_mean is right"]),
]


@pytest.mark.parametrize("name, wrong, says", PLANTED, ids=[p[1].__name__.strip("_") for p in PLANTED])
def test_a_planted_mistake_is_caught_and_named(name, wrong, says):
    with np.errstate(all="ignore"), pytest.raises(grading.CheckFailed) as err:
        grading.check(name, wrong, quiet=True)
    message = str(err.value)
    assert "FAILED" in message and "worst element" in message or "has nan/inf" in message, message
    for phrase in says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert err.value.case is not None and err.value.case.args


def test_the_smallest_failing_case_is_small():
    with pytest.raises(grading.CheckFailed) as err:
        grading.check("conv2d_backward", _conv_backward_sign, quiet=True)
    cfg = err.value.case.config
    assert (cfg["N"], cfg["C"], cfg["out_channels"]) == (1, 1, 1) and cfg["H"] * cfg["W"] <= 4


def test_a_check_is_deterministic_for_a_seed_and_fast():
    start = time.monotonic()
    a = grading.check("max_pool_backward", _max_pool_backward_every_tie, seed=3, raise_on_fail=False, quiet=True)
    b = grading.check("max_pool_backward", _max_pool_backward_every_tie, seed=3, raise_on_fail=False, quiet=True)
    assert a.message.split(" in ")[0] == b.message.split(" in ")[0] and a.case.key == b.case.key
    assert time.monotonic() - start < 20
    c = grading.check("conv2d_backward", SOLVED["conv2d_backward"], seed=1, quiet=True)
    assert c.seconds < 10


def test_an_exception_in_the_student_code_names_its_line():
    def im2col(x, kernel, stride, padding, dilation):
        return x.reshape(7, -1)        # the line the report should quote

    with pytest.raises(grading.CheckFailed, match=r"ValueError: .*return x.reshape\(7, -1\)"):
        grading.check("im2col", im2col, quiet=True)


def test_check_refuses_unknown_names_and_non_functions():
    with pytest.raises(KeyError, match="no task named 'im2row'"):
        grading.check("im2row", SOLVED["im2col"])
    with pytest.raises(TypeError, match="expected a function"):
        grading.check("im2col", 3)


# ---- student_kernels -------------------------------------------------------------------------
def test_student_kernels_give_minicnn_s_gradients_on_a_small_network():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 12, 12)).astype(np.float32)
    w1 = (rng.standard_normal((4, 1, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((3, 4 * 6 * 6)) * 0.3).astype(np.float32)
    target = np.array([0, 2])

    def run():
        params = [mc.Tensor(w1, requires_grad=True), mc.Tensor(w2, requires_grad=True)]
        h = F.max_pool2d(F.relu(F.conv2d(mc.Tensor(x), params[0], padding=1, stride=1)), 2)
        h = F.avg_pool2d(h, 1)
        loss = F.cross_entropy(F.linear(F.flatten(h), params[1]), target)
        loss.backward()
        return loss.item(), [p.grad for p in params]

    expected_loss, expected_grads = run()
    with grading.student_kernels(SOLVED) as used:
        loss, grads = run()
    assert {"conv2d_backward", "max_pool_backward", "avg_pool_backward", "relu_backward",
            "cross_entropy_backward"} <= set(used.calls)
    assert np.isclose(loss, expected_loss, rtol=1e-5)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)
    assert grads[0].dtype == np.float32
    # outside the block minicnn's kernels are back
    from minicnn import kernels
    assert not kernels._swapped


def test_student_kernels_train_with_the_student_s_optimisers():
    from minicnn import optim
    for make, name in ((lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), "sgd_step"),
                       (lambda ps: optim.Adam(ps, lr=0.1), "adam_step")):
        results = []
        for swapped in (False, True):
            p = mc.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, dtype=np.float64)
            opt = make([p])
            ctx = grading.student_kernels({name: SOLVED[name]}) if swapped else _nothing()
            with ctx:
                for _ in range(4):
                    opt.zero_grad()
                    (p * p).sum().backward()
                    opt.step()
            results.append(p.numpy())
        np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_student_kernels_refuse_half_a_pair_and_what_they_do_not_cover():
    with pytest.raises(ValueError, match="conv2d_forward needs conv2d_backward"):
        with grading.student_kernels(conv2d_forward=SOLVED["conv2d_forward"]):
            pass
    x = mc.Tensor(np.ones((1, 2, 5, 5), dtype=np.float32))
    w = mc.Tensor(np.ones((2, 1, 3, 3), dtype=np.float32))
    with grading.student_kernels(SOLVED):
        with pytest.raises(NotImplementedError, match="groups=2"):
            F.conv2d(x, w, groups=2)


# ---- the command line ------------------------------------------------------------------------
def test_minicnn_check_reports_and_sets_the_exit_status(tmp_path, capsys):
    good = tmp_path / "good.py"
    good.write_text("import numpy as np\n\n" + "\n\n".join(
        _source_of(n) for n in ("conv_output_size", "im2col", "col2im", "conv2d_backward")))
    assert main(["check", "A2", str(good)]) == 0
    out = capsys.readouterr().out
    assert "A2 col2im: passed" in out and "A2 conv2d_backward: passed" in out

    bad = tmp_path / "bad.py"
    bad.write_text(good.read_text().replace("return dx, dweight, grad_out.sum(axis=(0, 2, 3))",
                                            "return -dx, dweight, grad_out.sum(axis=(0, 2, 3))"))
    assert main(["check", "A2", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "A2 conv2d_backward: FAILED" in out and "a sign error" in out

    assert main(["check", "A9", str(good)]) == 2
    assert "minicnn check: error:" in capsys.readouterr().err
    assert main(["check", "A2", str(tmp_path / "missing.py")]) == 2


def _source_of(name):
    for path in SOLUTIONS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and f"def {name}(" in cell.source:
                tree = ast.parse(cell.source)
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef) and node.name == name:
                        return ast.get_source_segment(cell.source, node)
    raise LookupError(name)
