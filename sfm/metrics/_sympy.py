"""What the symbolic metrics share: checked formula inputs, a time limit for sympy, numeric evaluation.

Not a metric module (the leading underscore keeps :mod:`sfm.metrics`' auto-import away). The metrics take
formulas already parsed into sympy expressions: reading text is the formula language's job
(:func:`sfm.physics.equations.parse`), a layer :mod:`sfm.metrics` does not import, so the harness parses
and hands the expressions over.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import DataError
from sfm.utils.sympy_eval import Unevaluable
from sfm.utils.sympy_eval import evaluate as _evaluate

if TYPE_CHECKING:  # sympy costs ~1 s to import; field-metric users of sfm.metrics should not pay for it
    import sympy

# Without a SIGALRM timer (threads, Windows) only expressions this small are handed to sympy.simplify.
UNGUARDED_OPS = 30


class Timeout(Exception):
    """Raised inside :func:`time_limit` when its time is up."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[bool]:
    """Raise :class:`Timeout` in the block after ``seconds``; yields False where no alarm is available.

    ``sympy.simplify`` has no timeout and can run for minutes on an adversarial prediction. A SIGALRM timer
    interrupts it; that only works on POSIX in the main thread, elsewhere the caller must stay cheap.
    """
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:  # never override someone else's alarm
        yield False
        return

    def _raise(signum, frame):
        raise Timeout

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def guarded(fn, expr: sympy.Basic, timeout: float | None, max_ops: int) -> sympy.Basic | None:
    """``fn(expr)`` under the time limit; None if it timed out, failed, or the expression is too large."""
    import sympy

    if sympy.count_ops(expr) > max_ops:
        return None
    try:
        with time_limit(timeout) as limited:
            if not limited and sympy.count_ops(expr) > UNGUARDED_OPS:
                return None
            return fn(expr)
    except Timeout:
        return None
    except Exception:  # sympy's simplifiers raise assorted internal errors on odd input: treat as "unknown"
        return None


def as_expr(item: Any, role: str, index: int) -> sympy.Basic | None:
    """The sympy expression to compare (an equation's right-hand side), or None for a missing prediction."""
    import sympy

    if item is None and role == "pred":
        return None
    if isinstance(item, str):
        raise DataError(
            f"{role} {index} is text ({item[:40]!r}); the symbolic metrics take sympy expressions: "
            "read it with sfm.physics.equations.parse first"
        )
    if not isinstance(item, sympy.Basic):
        raise DataError(f"{role} {index} must be a sympy expression, got {type(item).__name__}")
    return item.rhs if isinstance(item, sympy.Equality) else item  # "y = f(x)": compare right-hand sides


def formula_pairs(pred: Sequence[Any], target: Sequence[Any], metric: str) -> list[tuple[Any, Any]]:
    """``(pred, target)`` expressions, checked: equal lengths, at least one, no bare string."""
    if isinstance(pred, str) or isinstance(target, str):
        raise DataError(f"{metric}: pred and target must be sequences of formulas (got a single string)")
    if len(pred) != len(target):
        raise DataError(f"{metric}: {len(pred)} predictions for {len(target)} targets")
    if len(target) == 0:
        raise DataError(f"{metric}: no formulas given")
    return [(as_expr(p, "pred", i), as_expr(t, "target", i)) for i, (p, t) in enumerate(zip(pred, target))]


class Unsupported(Exception):
    """The expression holds something :func:`evaluate` cannot compute."""


def evaluate(expr: sympy.Basic, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Values of ``expr`` at the points ``values`` (one array per symbol), by walking its tree.

    The same tree walk as the formula language's evaluator (both call :func:`sfm.utils.sympy_eval.evaluate`):
    no code generation, NaN outside a function's real domain.

    Raises:
        Unsupported: a symbol without values, or a node (an unknown function) it cannot compute.
    """
    try:
        return _evaluate(expr, values)
    except Unevaluable as exc:
        if exc.symbol is not None:
            raise Unsupported(f"no values for {exc.symbol!r}") from None
        raise Unsupported(f"cannot evaluate {type(exc.node).__name__} numerically") from None
