"""The grading engine: run a student's function on generated cases, compare, explain.

A `Task` says how to draw valid cases (a hypothesis strategy of `Case`s), what the right answer
is (the reference kernels in kernels/reference), and what the answer is for a few well-known
mistakes. `run_check` then

1. draws up to `examples` cases (deterministic for a given seed), calls the student's function
   on copies of each case's inputs and compares every output with the reference
   (|yours - reference| <= atol + rtol * |reference|);
2. on a mismatch lets hypothesis shrink the case to the smallest one that still fails;
3. on backward tasks runs `mc.gradcheck` (float64, central differences of the reference
   forward against your backward, random upstream gradient R) on the first cases, and on the
   failing one, so the report also reads "analytic vs numeric";
4. explains: the worst element (yours, reference, relative error), which outputs are right,
   a constant factor (x N? a sign?), known mistakes the answer matches exactly, and which
   feature every failing case shares (padding > 0, ties, ...) while the cases without it passed.
"""
import dataclasses
import pathlib
import time
import traceback
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from ..gradcheck import GradcheckError

try:
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed as _seed, settings
except ImportError:  # pragma: no cover - the [grading] extra brings it
    given = None


class Case(NamedTuple):
    """One generated input: `config` is what the report prints (shapes and hyper-parameters),
    `args` the student's positional arguments, `features` named yes/no properties for the tally,
    `data_seed` the seed of the random arrays."""
    config: dict
    args: tuple
    features: dict
    data_seed: int = 0

    @property
    def key(self):
        return repr(sorted(self.config.items())) + f"/{self.data_seed}"


@dataclasses.dataclass
class Task:
    """One function a student writes.

    name, assignment, signature: "im2col", "A1", "im2col(x, kernel, stride, padding, dilation)".
    cases: a zero-argument callable returning a hypothesis strategy of Case.
    reference: Case -> tuple of the right outputs (one entry per name in `outputs`).
    call: how to run the student's function on a case (default: fn(*case.args)).
    quantities: Case -> {name: number} that a constant factor is compared with ("N", "kh*kw").
    mistakes: (description, Case -> outputs of that mistake) pairs; a wrong answer that equals
        one of them exactly is named.
    gradcheck: (Case, student fn) -> None, raising GradcheckError; only on cases whose
        features say "gradcheck" is safe (no ties, no kinks).
    """
    name: str
    assignment: str
    signature: str
    cases: Callable
    reference: Callable
    outputs: Sequence[str] = ("out",)
    call: Optional[Callable] = None
    quantities: Optional[Callable] = None
    mistakes: Sequence = ()
    gradcheck: Optional[Callable] = None
    rtol: float = 1e-6
    atol: float = 1e-9
    examples: int = 100


class CheckFailed(AssertionError):
    """A student's function disagrees with the reference; `.result` holds the details and
    `.case` the inputs of the smallest failing case (call your function on `err.case.args`)."""

    def __init__(self, result):
        super().__init__(result.message)
        self.result, self.case = result, result.case


@dataclasses.dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    examples: int          # cases compared with the reference
    seconds: float
    case: Optional[Case] = None

    def __str__(self):
        return self.message

    def __bool__(self):
        return self.passed


class _Failure(Exception):
    """Raised inside the hypothesis run so that it shrinks; carries the findings of one case."""

    def __init__(self, case, findings):
        super().__init__(findings["summary"])
        self.case, self.findings = case, findings


# ---- comparing -----------------------------------------------------------------------------
def _copy(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, (list, tuple)) and any(isinstance(a, np.ndarray) for a in v):
        return type(v)(_copy(a) for a in v)
    return v


def _as_outputs(task, got):
    if len(task.outputs) == 1:
        return (got,)
    if not isinstance(got, (tuple, list)) or len(got) != len(task.outputs):
        raise _Shape(f"expected {len(task.outputs)} results ({', '.join(task.outputs)}), got "
                     f"{type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return tuple(got)


class _Shape(Exception):
    pass


def _fmt(v):
    return f"{float(v):.6g}"


def compare_one(name, got, expected, rtol, atol):
    """None when `got` equals `expected` within tolerance, else a dict describing the worst
    element: {"what", "index", "yours", "reference", "relative"}."""
    if got is None:
        return {"what": f"{name}: your function returned None (a missing `return`?)"}
    expected = np.asarray(expected)
    try:
        got = np.asarray(got, dtype=np.float64) if expected.dtype.kind == "f" else np.asarray(got)
    except (TypeError, ValueError):
        return {"what": f"{name}: expected an array, got {type(got).__name__}"}
    if got.shape != expected.shape:
        return {"what": f"{name} has shape {got.shape}, expected {expected.shape}"}
    if expected.dtype.kind != "f":
        if np.array_equal(got, expected):
            return None
        k = np.unravel_index(int(np.argmax(got != expected)), got.shape) if got.ndim else ()
        return {"what": f"{name} is wrong", "index": k, "yours": got[k], "reference": expected[k],
                "relative": None}
    exp = expected.astype(np.float64)
    finite = np.isfinite(exp)
    if np.any(finite & ~np.isfinite(got)):
        k = np.unravel_index(int(np.argmax(finite & ~np.isfinite(got))), got.shape) if got.ndim else ()
        return {"what": f"{name} has nan/inf where the reference is finite (an overflow? exp of a large number?)",
                "index": k, "yours": got[k], "reference": exp[k], "relative": None}
    diff = np.where(finite, np.abs(got - exp), np.where(got == exp, 0.0, np.inf))
    excess = diff - (atol + rtol * np.abs(np.where(finite, exp, 0.0)))
    if not np.any(excess > 0):
        return None
    k = np.unravel_index(int(np.argmax(excess)), got.shape) if got.ndim else ()
    rel = diff[k] / max(abs(exp[k]), abs(got[k]), 1e-300)
    return {"what": f"{name} is wrong", "index": k, "yours": got[k], "reference": exp[k], "relative": rel}


def _matches(got, expected, rtol, atol):
    try:
        return all(compare_one("", g, e, rtol, atol) is None for g, e in zip(got, expected))
    except Exception:  # noqa: BLE001 - a mistake variant that cannot run on this case
        return False


def _constant_factor(got, expected, quantities):
    """If got == c * expected for one c != 1 (over all elements), say so and name c."""
    g = np.asarray(got, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    if g.shape != e.shape or not np.all(np.isfinite(g)) or not np.any(e) or not np.all(np.isfinite(e)):
        return None
    c = float(g @ e / (e @ e))
    scale = np.max(np.abs(e))
    if abs(c - 1) < 1e-6 or np.max(np.abs(g - c * e)) > 1e-6 * scale * max(1.0, abs(c)):
        return None
    if abs(c) < 1e-12:
        return "yours is all zeros"
    if abs(c + 1) < 1e-6:
        return "yours is exactly -1 x the reference: a sign error"
    for qname, q in (quantities or {}).items():
        if q and abs(c - q) < 1e-6 * abs(q):
            return f"yours is {qname} = {q:g} times the reference: a forgotten division by {qname}?"
        if q and abs(c * q - 1) < 1e-6:
            return f"yours is the reference divided by {qname} = {q:g}: an extra division by {qname}?"
        if q and abs(c + q) < 1e-6 * abs(q):
            return f"yours is -{qname} = {-q:g} times the reference: a sign, and a forgotten division by {qname}?"
    return f"yours is the reference times a constant, {c:.6g}: a missing or extra factor"


# ---- one case ------------------------------------------------------------------------------
_LIBRARY_DIRS = tuple(str(pathlib.Path(m.__file__).resolve().parent) for m in (np,))
_OWN_DIR = str(pathlib.Path(__file__).resolve().parent.parent)


def _student_error(exc, name):
    """One line naming the exception and the last line of the student's own code it passed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(pathlib.Path(f.filename).resolve()).startswith(_LIBRARY_DIRS + (_OWN_DIR,))]
    where = ""
    if frames:
        f = frames[-1]
        where = f" (line {f.lineno} of {f.name}" + (f": `{f.line.strip()}`)" if f.line else ")")
    return f"{name} raised {type(exc).__name__}: {exc}{where}"


def evaluate(task, student, case):
    """Run one case. None when it passes, else the findings (a dict) about it."""
    expected = task.reference(case)
    try:
        got = (task.call or (lambda fn, c: fn(*c.args)))(student, Case(case.config, _copy(case.args),
                                                                       case.features, case.data_seed))
    except NotImplementedError as exc:
        return {"summary": f"{task.name} is not written yet: it raises NotImplementedError({str(exc)!r})",
                "todo": True}
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
        return {"summary": _student_error(exc, task.name)}
    try:
        got = _as_outputs(task, got)
    except _Shape as exc:
        return {"summary": f"{task.name}: {exc}"}
    problems = {}
    for name, g, e in zip(task.outputs, got, expected):
        p = compare_one(name, g, e, task.rtol, task.atol)
        if p is not None:
            problems[name] = p
    if not problems:
        return None
    first = problems[next(iter(problems))]
    findings = {"summary": first["what"], "problems": problems, "got": got, "expected": expected,
                "hints": []}
    right = [n for n in task.outputs if n not in problems]
    if right:
        findings["hints"].append(f"{', '.join(right)} {'is' if len(right) == 1 else 'are'} right; "
                                 f"{', '.join(problems)} {'is' if len(problems) == 1 else 'are'} not")
    quantities = task.quantities(case) if task.quantities else {}
    for name in problems:
        i = task.outputs.index(name)
        factor = _constant_factor(got[i], expected[i], quantities)
        if factor:
            findings["hints"].append(f"{name}: {factor}")
    for description, variant in task.mistakes:
        try:
            wrong = variant(case)
        except Exception:  # noqa: BLE001 - the mistake does not apply to this case
            continue
        if wrong is not None and _matches([got[task.outputs.index(n)] for n in problems],
                                          [wrong[task.outputs.index(n)] for n in problems], 1e-6, 1e-9):
            findings["hints"].append(f"matches a known mistake: {description}")
    return findings


# ---- the search ----------------------------------------------------------------------------
def _tally_hints(tally):
    """Features that every failing case had while the cases without them passed."""
    hints = []
    failing = [f for f, ok in tally if not ok]
    if not failing:
        return hints
    for feature in failing[0]:
        if feature == "gradcheck":
            continue
        fail_without = sum(1 for f in failing if not f.get(feature))
        pass_without = sum(1 for f, ok in tally if ok and not f.get(feature))
        if fail_without == 0 and pass_without >= 2 and all(f.get(feature) for f in failing):
            hints.append(f"every failing case has {feature}; all {pass_without} cases tried "
                         f"without it passed")
    return hints


def _describe_case(case):
    cfg = ", ".join(f"{k}={v}" for k, v in case.config.items())
    lines = [f"    {cfg}"]
    small = [a for a in case.args if isinstance(a, np.ndarray)]
    if small and sum(a.size for a in small) <= 24:
        with np.printoptions(precision=4, suppress=True, linewidth=90):
            for i, a in enumerate(case.args):
                if isinstance(a, np.ndarray):
                    text = np.array2string(a, prefix="      ").replace("\n", "\n      ")
                    lines.append(f"    argument {i + 1}: {text}")
    return lines


def _gradcheck_line(task, student, case):
    if task.gradcheck is None or not case.features.get("gradcheck", True):
        return None
    try:
        task.gradcheck(case, student)
    except GradcheckError as exc:
        return ("gradcheck (analytic = your backward, numeric = central differences of the "
                f"reference forward, float64, random upstream gradient R): {exc}")
    except Exception:  # noqa: BLE001 - the student's backward crashed: already reported
        return None
    return "gradcheck of your backward on this case passed (the failure is elsewhere)"


def run_check(task, student, seed=0, examples=None, budget_s=10.0, gradchecks=5):
    """Check `student` against `task`; -> CheckResult (see the module docstring)."""
    if given is None:
        raise ImportError("minicnn.grading needs hypothesis: pip install 'minicnn[grading]' "
                          "(or pip install hypothesis)")
    start = time.monotonic()
    outcomes, tally, counts = {}, [], {"compared": 0, "gradchecked": 0}

    def judge(case):
        if case.key in outcomes:
            return outcomes[case.key]
        if time.monotonic() - start > budget_s:
            return None  # out of time: no more new cases (a failure already found is kept)
        findings = evaluate(task, student, case)
        counts["compared"] += 1
        if findings is None and task.gradcheck and counts["gradchecked"] < gradchecks \
                and case.features.get("gradcheck", True):
            counts["gradchecked"] += 1
            try:
                task.gradcheck(case, student)
            except GradcheckError as exc:
                findings = {"summary": f"gradcheck failed: {exc}", "hints": []}
        outcomes[case.key] = findings
        tally.append((case.features, findings is None))
        return findings

    @_seed(seed)
    @settings(max_examples=examples or task.examples, database=None, deadline=None,
              derandomize=False, verbosity=Verbosity.quiet, report_multiple_bugs=False,
              phases=(Phase.generate, Phase.shrink), print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(task.cases())
    def search(case):
        findings = judge(case)
        if findings is not None:
            raise _Failure(case, findings)

    failure = None
    try:
        search()
    except _Failure as exc:
        failure = exc
    seconds = time.monotonic() - start
    label = f"{task.assignment} {task.name}"
    if failure is None:
        extra = f", gradcheck on {counts['gradchecked']}" if counts["gradchecked"] else ""
        budget = " (time budget reached)" if seconds > budget_s else ""
        return CheckResult(task.name, True, f"{label}: passed on {counts['compared']} generated "
                           f"cases{extra}{budget} in {seconds:.1f} s", counts["compared"], seconds)
    case, findings = failure.case, failure.findings
    if findings.get("todo"):
        msg = f"{label}: {findings['summary']}. Write it, then run this check again."
        return CheckResult(task.name, False, msg, counts["compared"], seconds, case)
    lines = [f"{label}: FAILED. The smallest failing case found (of {counts['compared']} tried, seed {seed}):"]
    lines += _describe_case(case)
    lines.append(f"  {findings['summary']}")
    for name, p in findings.get("problems", {}).items():
        if "index" in p:
            rel = "" if p["relative"] is None else f", relative error {_fmt(p['relative'])}"
            lines.append(f"    {name}: worst element {tuple(int(i) for i in p['index'])}: yours "
                         f"{_fmt(p['yours'])}, reference {_fmt(p['reference'])}{rel}")
        elif p["what"] != findings["summary"]:
            lines.append(f"    {p['what']}")
    grad = _gradcheck_line(task, student, case) if "problems" in findings else None
    if grad:
        lines.append(f"  {grad}")
    hints = findings.get("hints", []) + _tally_hints(tally)
    if hints:
        lines.append("  What this suggests:")
        lines += [f"    - {h}" for h in hints]
    lines.append("  (the exception's .case.args are this case's inputs: call your function on them)")
    return CheckResult(task.name, False, "\n".join(lines), counts["compared"], seconds, case)
