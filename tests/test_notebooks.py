"""The coursework notebooks: stored without outputs, and each one runs top to bottom without an
error, offline, within its time budget.

Each notebook runs in a fresh kernel whose working directory is its own temporary folder (so
runs in parallel never share files). The budget is per notebook: every cell may only use what
the earlier cells left of it. The time each notebook took is printed at the end of the module
(`pytest -s` or `-rA` shows it).

Needs nbclient, nbformat and ipykernel (the `notebooks` extra: pip install -e ".[notebooks]").
"""
import os
import pathlib
import sys
import time

import pytest

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
except ImportError:  # only the missing packages may skip this module, nothing else
    pytestmark = pytest.mark.skip(
        reason="nbclient/nbformat are not installed: pip install -e '.[notebooks]' to run the notebooks")

ROOT = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(ROOT.glob("*.ipynb"))
BUDGET_S = float(os.environ.get("MINICNN_NOTEBOOK_TIMEOUT", 240))  # per notebook, whole run
EXPECTED = ["01_convolution", "02_activations", "03_pooling", "04_autograd", "05_backprop_conv",
            "06_alexnet", "07_training_lenet", "08_architectures", "09_saliency",
            "10_speed_ladder", "11_alphago", "12_break_the_backward", "13_fine_tuning"]

_timings = {}


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    yield
    if _timings:
        lines = [f"  {name:24s} {t:6.1f} s" for name, t in sorted(_timings.items())]
        sys.stderr.write("\nnotebook run times:\n" + "\n".join(lines)
                         + f"\n  {'total':24s} {sum(_timings.values()):6.1f} s\n")


def test_all_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, \
            f"cell {cell.get('id')} has stored outputs: clear them before committing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        "every notebook opens with a title"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + BUDGET_S

    def time_left(cell):
        # nbclient's timeout is per cell: give each cell what is left of the notebook's budget
        return max(1, int(deadline - time.monotonic()))

    client = NotebookClient(nb, timeout_func=time_left, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError on the first cell that fails
    except CellTimeoutError as exc:
        pytest.fail(f"{path.name} ran past its budget of {BUDGET_S:.0f} s: {exc}")
    _timings[path.stem] = time.monotonic() - start
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}, cell {cell.get('id')}: {out.get('ename')}"
            if out.output_type == "stream" and out.name == "stderr":
                # warnings are allowed (e.g. Numba's note on a first compile), tracebacks are not
                assert "Traceback" not in out.text, f"{path.name}, cell {cell.get('id')}:\n{out.text}"
