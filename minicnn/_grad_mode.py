"""The one global switch behind `no_grad`: while it is off, ops record no graph."""
import functools

enabled = True


def is_grad_enabled():
    return enabled


class no_grad:
    """`with mc.no_grad(): ...` or `@mc.no_grad()`: run without recording a graph."""

    def __enter__(self):
        global enabled
        self._prev, enabled = enabled, False
        return self

    def __exit__(self, *exc):
        global enabled
        enabled = self._prev
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)
        return wrapper


class enable_grad(no_grad):
    """Turn recording back on inside a `no_grad` block."""

    def __enter__(self):
        global enabled
        self._prev, enabled = enabled, True
        return self

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with enable_grad():
                return func(*args, **kwargs)
        return wrapper
