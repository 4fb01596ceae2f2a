"""docs/notebooks/: the lecture notebooks, executed and rendered as HTML pages
(tools/render_notebooks.py), readable without Jupyter. Checks that every lecture notebook has
its page, that the pages carry the outputs and figures and no errors, that they stay small,
and that the renderer embeds a figure in a self-contained page."""
import base64
import html
import importlib.util
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "notebooks"
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _tool():
    spec = importlib.util.spec_from_file_location("render_notebooks", ROOT / "tools" / "render_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_lecture_notebook_has_its_page():
    assert len(LECTURES) >= 13   # 01-12 and 13, fine-tuning
    index = (PAGES / "index.html").read_text()
    for nb_path in LECTURES:
        page = PAGES / f"{nb_path.stem}.html"
        assert page.exists(), f"{page} missing: run tools/render_notebooks.py {nb_path.stem}"
        assert f'href="{nb_path.stem}.html"' in index
        text = page.read_text()
        title = nbformat.read(nb_path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        assert f"<title>{html.escape(title)}</title>" in text
        assert 'name="viewport"' in text and 'href="style.css"' in text
        assert "output_area" in text, f"{page.name} has no outputs: was it executed?"
        assert "Traceback" not in text and "ename" not in text


def test_the_pages_hold_figures_and_stay_small():
    figures = sum(p.read_text().count("data:image/png;base64,") for p in PAGES.glob("*.html"))
    assert figures >= 20
    total = sum(p.stat().st_size for p in PAGES.iterdir())
    assert total < 3 * 2 ** 20, f"docs/notebooks is {total / 2 ** 20:.1f} MiB"


def test_render_embeds_a_figure_in_a_page():
    tool = _tool()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A title\n\n$x^2$"),
        nbformat.v4.new_code_cell("print(1)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="1\n"),
            nbformat.v4.new_output("display_data", data={"image/png": png})])])
    page = tool.render(nb, "A title")
    assert page.startswith("<!DOCTYPE html>") and "<title>A title</title>" in page
    assert f"data:image/png;base64,{png}" in page and "$x^2$" in page
