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


def _ufuncs() -> dict[Any, Any]:
    import sympy

    return {
        sympy.sin: np.sin,
        sympy.cos: np.cos,
        sympy.tan: np.tan,
        sympy.asin: np.arcsin,
        sympy.acos: np.arccos,
        sympy.atan: np.arctan,
        sympy.sinh: np.sinh,
        sympy.cosh: np.cosh,
        sympy.tanh: np.tanh,
        sympy.exp: np.exp,
        sympy.log: np.log,
        sympy.Abs: np.abs,
    }


def evaluate(expr: sympy.Basic, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Values of ``expr`` at the points ``values`` (one array per symbol), by walking its tree.

    The same convention as the formula language's own evaluator (``sfm.physics.equations.evaluate``, which
    this layer may not import; a test holds the two equal): no code generation, NaN outside a function's
    real domain.

    Raises:
        Unsupported: a symbol without values, or a node (an unknown function) it cannot compute.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
    with np.errstate(all="ignore"):  # NaN/inf are the answer outside the domain, not a reason to warn
        out = _walk(expr, arrays, _ufuncs())
    return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()


def _walk(e: Any, values: Mapping[str, np.ndarray], ufuncs: dict[Any, Any]) -> np.ndarray | float:
    import sympy

    if e.is_Symbol:
        if e.name not in values:
            raise Unsupported(f"no values for {e.name!r}")
        return values[e.name]
    if e.is_Number or e.is_NumberSymbol:
        return float(e)
    args = [_walk(a, values, ufuncs) for a in e.args]
    if e.is_Add or e.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = out + a if e.is_Add else out * a
        return out
    if e.is_Pow:
        return np.sqrt(args[0]) if e.args[1] == sympy.S.Half else np.power(args[0], args[1])
    func = ufuncs.get(type(e))
    if func is not None and len(args) == 1:
        return func(args[0])
    raise Unsupported(f"cannot evaluate {type(e).__name__} numerically")
