"""Run the lecture notebooks and write them, with their outputs and figures, as HTML pages
under docs/notebooks/ that any browser (a phone too) reads without Jupyter.

    pip install -e ".[docs]"                  # nbconvert, nbclient, ipykernel
    MINICNN_DATA=../shared/data python tools/render_notebooks.py          # all of them, ~5 min
    python tools/render_notebooks.py 07_training_lenet 09_saliency          # some only

Each page is nbconvert's "basic" template (the cells, no 300 KB of JupyterLab CSS per page) in a
small wrapper: one shared style.css, MathJax from a CDN for the formulas (without a network
they show as TeX source), figures embedded as PNG. index.html lists the pages. The notebooks in
notebooks/ stay stored without outputs (tests/test_notebooks.py); the pages are their executed
copies, rebuilt by this command whenever a notebook changes.
"""
import argparse
import html
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "docs" / "notebooks"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="style.css">
<script>window.MathJax = {{tex: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]]}}}};</script>
<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
</head>
<body>
<nav><a href="index.html">minicnn notebooks</a>{nav}</nav>
<main>
{body}
</main>
</body>
</html>
"""

STYLE = """\
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; }
main, nav { max-width: 52rem; margin: 0 auto; padding: 0 1rem; }
nav { padding: .8rem 1rem; border-bottom: 1px solid #ddd; display: flex; gap: 1rem; flex-wrap: wrap; }
nav a { color: #0550ae; text-decoration: none; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; }
pre { overflow-x: auto; padding: .6rem; font-size: 13px; line-height: 1.35; }
.jp-InputArea pre, .input_area pre, .jp-InputArea-editor { background: #f6f8fa; border-radius: 4px; }
.jp-OutputArea pre, .output_area pre { background: #fff; border-left: 3px solid #ddd; }
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] pre { border-left-color: #e99; color: #a33; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; overflow-x: auto; display: block; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; }
.jp-InputPrompt, .jp-OutputPrompt, .prompt { display: none; }
.jp-Cell { margin: 1rem 0; }
"""


def lecture_notebooks(names=None):
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names]
        missing = set(names) - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"render_notebooks: no notebook named {', '.join(sorted(missing))}")
    return paths


def execute(path, timeout=600):
    """The notebook run top to bottom in a fresh kernel, in a temporary working folder."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": tmp}}).execute()
    return nb


def title_of(nb, fallback):
    first = nb.cells[0].source.splitlines()[0] if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    return first.lstrip("# ").strip() or fallback


def render(nb, title, nav=""):
    """One executed notebook -> a complete HTML page (see PAGE)."""
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    return PAGE.format(title=html.escape(title), nav=nav, body=body)


def _nav(pages, i):
    links = []
    if i > 0:
        links.append(f'<a href="{pages[i - 1][0]}.html">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}.html">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return "".join(links)


def write_index(out):
    pages = []
    for path in lecture_notebooks():
        nb = nbformat.read(path, as_version=4)
        pages.append((path.stem, title_of(nb, path.stem)))
    items = "\n".join(f'<li><a href="{stem}.html">{html.escape(title)}</a></li>' for stem, title in pages
                      if (out / f"{stem}.html").exists())
    body = ("<h1>minicnn: the lecture notebooks, executed</h1>\n<p>Each page is a notebook from "
            "<code>notebooks/</code> run top to bottom, with its printed results and figures. "
            "To run them yourself: <code>pip install -e \".[notebooks]\"</code> and open them in "
            "Jupyter. The coursework is in <code>notebooks/assignments/</code>.</p>\n"
            f"<ol>\n{items}\n</ol>")
    (out / "index.html").write_text(PAGE.format(title="minicnn notebooks", nav="", body=body))
    (out / "style.css").write_text(STYLE + HtmlFormatter(style="default").get_style_defs(".highlight"))
    return pages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    all_pages = [(p.stem, title_of(nbformat.read(p, as_version=4), p.stem)) for p in lecture_notebooks()]
    for path in lecture_notebooks(args.names):
        start = time.monotonic()
        nb = execute(path, args.timeout)
        i = [stem for stem, _ in all_pages].index(path.stem)
        page = render(nb, all_pages[i][1], _nav(all_pages, i))
        (args.out / f"{path.stem}.html").write_text(page)
        print(f"{path.stem}: {time.monotonic() - start:.0f} s, {len(page) / 1024:.0f} KiB")
    write_index(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
