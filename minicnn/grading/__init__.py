"""Coursework that grades itself: check a student's kernels against minicnn's reference kernels.

    from minicnn import grading
    grading.check("im2col", im2col)          # prints "A1 im2col: passed on 40 generated cases ..."
                                             # or raises grading.CheckFailed with the report
    grading.check_assignment("A2", globals())   # every A2 function defined in a namespace
    with grading.student_kernels(globals()):    # a real network on the student's kernels
        ...

`check(name, fn)` draws valid configurations with the hypothesis strategies of minicnn.testing
(deterministic for a given `seed`), compares `fn` with the reference kernel on each, runs
`mc.gradcheck` (float64, random upstream gradient) on the backward passes, and reports either a
pass or the smallest failing configuration, its worst element (yours vs reference, relative
error; analytic vs numeric) and what the mistake looks like. Each check takes a few seconds
(at most `budget_s`, 10 s by default). From the command line: `minicnn check A2 my_solution.py`.

The assignments (notebooks/assignments/A1..A6) list the functions and their contracts;
`grading.TASKS` has them all, `grading.ASSIGNMENTS` by assignment. Needs hypothesis
(`pip install "minicnn[grading]"`).
"""
from ._core import Case, CheckFailed, CheckResult, Task, run_check
from .plug import student_kernels
from . import tasks_activation, tasks_conv, tasks_norm, tasks_optim, tasks_pool

TASKS = {t.name: t for module in (tasks_conv, tasks_pool, tasks_activation, tasks_norm, tasks_optim)
         for t in module.TASKS}
ASSIGNMENTS = {a: [n for n, t in TASKS.items() if t.assignment == a] for a in
               ("A1", "A2", "A3", "A4", "A5", "A6")}

__all__ = ["check", "check_assignment", "student_kernels", "CheckFailed", "CheckResult", "TASKS",
           "ASSIGNMENTS", "Case", "Task"]


def _task(name):
    if name not in TASKS:
        raise KeyError(f"grading: no task named {name!r}; the tasks are: {', '.join(TASKS)}")
    return TASKS[name]


def check(name, student_fn, seed=0, examples=None, budget_s=10.0, raise_on_fail=True, quiet=False):
    """Check `student_fn` against the reference for task `name` (e.g. "im2col").

    Prints the one-line verdict (unless `quiet`) and returns a CheckResult; on a failure raises
    CheckFailed with the full report (or, with raise_on_fail=False, returns the failed result).
    `seed` picks the generated cases (the same seed, the same cases); `examples` overrides how
    many are drawn; `budget_s` bounds the time (a failure found is always reported).
    """
    __tracebackhide__ = True  # pytest shows the report, not this frame
    if not callable(student_fn):
        raise TypeError(f"grading.check: expected a function for {name!r}, got {type(student_fn).__name__}")
    result = run_check(_task(name), student_fn, seed=seed, examples=examples, budget_s=budget_s)
    if not result.passed and raise_on_fail:
        raise CheckFailed(result)
    if not quiet:
        print(result.message)
    return result


def check_assignment(assignment, namespace, seed=0, budget_s=10.0, quiet=False):
    """Check every function of `assignment` ("A1" ... "A6") found in `namespace` (a dict such as
    globals(), or a module). -> {task name: CheckResult or None when the function is missing}.
    Never raises for a failing check: the results say which passed."""
    if assignment not in ASSIGNMENTS:
        raise KeyError(f"grading: no assignment {assignment!r}; choose one of {', '.join(ASSIGNMENTS)}")
    space = namespace if isinstance(namespace, dict) else vars(namespace)
    results = {}
    for name in ASSIGNMENTS[assignment]:
        fn = space.get(name)
        if fn is None or not callable(fn):
            results[name] = None
            if not quiet:
                print(f"{assignment} {name}: missing (define a function `{TASKS[name].signature}`)")
            continue
        results[name] = check(name, fn, seed=seed, budget_s=budget_s, raise_on_fail=False, quiet=True)
        if not quiet:
            print(results[name].message)
    return results
