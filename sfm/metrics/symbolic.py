"""Symbolic-regression metrics: fit quality on points, and closeness of the recovered formula.

Point metrics (``kind="points"``) take the predicted formula's values and the true values on the same
inputs, ``pred, target`` shaped ``(batch, n_points)``, and return one number per sample:

==================  =========================================================================================
r2                  coefficient of determination ``1 - SS_res/SS_tot``, clipped below at ``floor`` (0)
r2_acc_099          1 if the unclipped R² >= 0.99 else 0 (the "accuracy" of Biggio et al. / Kamienny et al.)
r2_acc_0999         1 if R² >= 0.999 else 0
point_accuracy      1 if >= 95% of points satisfy ``|pred - y| <= rtol*|y|`` (rtol 0.1) else 0
==================  =========================================================================================

R² is unbounded below (a wild prediction scores -1e9), so a mean over samples would be decided by its worst
sample; sfm reports R² clipped to ``[floor, 1]`` with ``floor = 0`` ("explains no variance": no better than
predicting the mean). A prediction with any NaN/inf value scores ``floor`` (and 0 on the accuracies). A
constant target (``SS_tot = 0``) scores 1 if matched exactly, else ``floor``, as scikit-learn does.

Symbolic metrics (``kind="symbolic"``) take sequences of formulas (infix strings, read with the safe parser,
or sympy expressions; ``None`` or an unreadable prediction counts as a failure):

==================  =========================================================================================
symbolic_equiv      1 if pred and target are the same function (see :func:`symbolic_equivalence`) else 0
tree_edit_distance  SRSD's normalized tree edit distance: ``min(1, d(pred, target) / |target|)``
==================  =========================================================================================
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import DataError
from sfm.registry import METRICS

if TYPE_CHECKING:  # sympy costs ~1 s to import; field-metric users of sfm.metrics should not pay for it
    import sympy

Tree = tuple  # (label, child, child, ...)


def _register(name: str, *, higher_is_better: bool, kind: str, description: str):
    return METRICS.register(
        name,
        higher_is_better=higher_is_better,
        aggregation="mean",
        kind=kind,
        description=description,
        source="symbolic_regression",
    )


# -- point metrics ---------------------------------------------------------------------------------------
def _check_points(pred: Any, target: Any, metric: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise DataError(f"{metric}: pred shape {p.shape} does not match target shape {t.shape}")
    if t.ndim != 2 or 0 in t.shape:
        raise DataError(f"{metric}: expected arrays shaped (batch, n_points), got shape {t.shape}")
    if not np.isfinite(t).all():
        raise DataError(f"{metric}: target holds non-finite values; a reference must be finite")
    return p, t


def _r2_raw(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Unclipped per-sample R²; NaN where the prediction is not finite."""
    with np.errstate(all="ignore"):
        ss_res = np.sum((t - p) ** 2, axis=1)
        ss_tot = np.sum((t - t.mean(axis=1, keepdims=True)) ** 2, axis=1)
        r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
    constant = ss_tot == 0
    r2 = np.where(constant, np.where(ss_res == 0, 1.0, -np.inf), r2)
    return np.where(np.isfinite(p).all(axis=1), r2, np.nan)


@_register(
    "r2", higher_is_better=True, kind="points", description="R² of predicted vs true values, clipped at 0"
)
def r2(pred: Any, target: Any, *, floor: float = 0.0) -> np.ndarray:
    """Per-sample coefficient of determination, clipped to ``[floor, 1]``; non-finite predictions score ``floor``.

    Args:
        pred: Predicted values ``(batch, n_points)``.
        target: True values, same shape, finite.
        floor: Lowest reported value (``-np.inf`` for the raw R²).
    """
    raw = _r2_raw(*_check_points(pred, target, "r2"))
    return np.where(np.isnan(raw), floor, np.maximum(raw, floor))


def _r2_accuracy(pred: Any, target: Any, threshold: float, metric: str) -> np.ndarray:
    raw = _r2_raw(*_check_points(pred, target, metric))
    return (np.nan_to_num(raw, nan=-np.inf) >= threshold).astype(np.float64)


@_register("r2_acc_099", higher_is_better=True, kind="points", description="1 if R² >= 0.99 else 0")
def r2_accuracy_099(pred: Any, target: Any) -> np.ndarray:
    """Per-sample 1.0 where R² >= 0.99, else 0.0 (non-finite predictions: 0)."""
    return _r2_accuracy(pred, target, 0.99, "r2_acc_099")


@_register("r2_acc_0999", higher_is_better=True, kind="points", description="1 if R² >= 0.999 else 0")
def r2_accuracy_0999(pred: Any, target: Any) -> np.ndarray:
    """Per-sample 1.0 where R² >= 0.999, else 0.0 (non-finite predictions: 0)."""
    return _r2_accuracy(pred, target, 0.999, "r2_acc_0999")


@_register(
    "point_accuracy",
    higher_is_better=True,
    kind="points",
    description="1 if >= 95% of points within rtol 0.1",
)
def point_accuracy(
    pred: Any, target: Any, *, rtol: float = 0.1, atol: float = 0.0, fraction: float = 0.95
) -> np.ndarray:
    """Per-sample 1.0 when at least ``fraction`` of points satisfy ``|pred - y| <= atol + rtol*|y|``.

    A NaN/inf predicted point never satisfies it. With ``atol = 0`` a point where ``y = 0`` must be exact.
    """
    p, t = _check_points(pred, target, "point_accuracy")
    with np.errstate(invalid="ignore"):
        close = np.abs(p - t) <= atol + rtol * np.abs(t)
    return (close.mean(axis=1) >= fraction).astype(np.float64)


# -- symbolic metrics ------------------------------------------------------------------------------------
class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[bool]:
    """Raise :class:`_Timeout` in the block after ``seconds``; yields False where no alarm is available.

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
        raise _Timeout

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _as_expr(item: Any, role: str, index: int) -> sympy.Basic | None:
    """A sympy expression, or None for a prediction that is missing or unreadable."""
    import sympy

    from sfm.physics.equations import EquationError, parse

    if isinstance(item, sympy.Basic):
        expr = item
    elif isinstance(item, str):
        try:
            expr = parse(item)
        except EquationError as err:
            if role == "target":
                raise DataError(f"target formula {index} is unreadable: {err}") from None
            return None
    elif item is None and role == "pred":
        return None
    else:
        raise DataError(
            f"{role} {index} must be a formula string or a sympy expression, got {type(item).__name__}"
        )
    if isinstance(expr, sympy.Equality):
        expr = expr.rhs  # "y = f(x)": compare the right-hand sides
    return expr


def _pairs(pred: Sequence[Any], target: Sequence[Any], metric: str) -> list[tuple[Any, Any]]:
    if isinstance(pred, str) or isinstance(target, str):
        raise DataError(f"{metric}: pred and target must be sequences of formulas (got a single string)")
    if len(pred) != len(target):
        raise DataError(f"{metric}: {len(pred)} predictions for {len(target)} targets")
    if len(target) == 0:
        raise DataError(f"{metric}: no formulas given")
    return [(_as_expr(p, "pred", i), _as_expr(t, "target", i)) for i, (p, t) in enumerate(zip(pred, target))]


def _guarded(fn, expr: sympy.Basic, timeout: float | None, max_ops: int) -> sympy.Basic | None:
    """``fn(expr)`` under the time limit; None if it timed out, failed, or the expression is too large."""
    import sympy

    if sympy.count_ops(expr) > max_ops:
        return None
    try:
        with _time_limit(timeout) as guarded:
            if not guarded and sympy.count_ops(expr) > _UNGUARDED_OPS:
                return None
            return fn(expr)
    except _Timeout:
        return None
    except Exception:  # sympy's simplifiers raise assorted internal errors on odd input: treat as "unknown"
        return None


# Without a SIGALRM timer (threads, Windows) only expressions this small are handed to sympy.simplify.
_UNGUARDED_OPS = 30


def _numerically_equal(
    p: sympy.Basic, t: sympy.Basic, domain: Any, n_points: int, rtol: float, seed: int
) -> bool:
    from sfm.physics.equations import EquationError, evaluate

    names = sorted({s.name for s in p.free_symbols | t.free_symbols})
    rng = np.random.default_rng(seed)
    values = {}
    for name in names:
        low, high = domain.get(name, _DEFAULT_DOMAIN) if isinstance(domain, dict) else domain
        values[name] = rng.uniform(low, high, size=n_points)
    if not names:
        values["_"] = np.zeros(n_points)  # constants: still evaluate on n_points copies
    try:
        yp, yt = evaluate(p, values), evaluate(t, values)
    except EquationError:
        return False
    fp, ft = np.isfinite(yp), np.isfinite(yt)
    # Defined at different points means different functions; too few defined points means no evidence.
    if (fp != ft).any() or ft.sum() < max(2, n_points // 4):
        return False
    scale = max(1.0, float(np.max(np.abs(yt[ft]))))
    return bool(np.all(np.abs(yp[ft] - yt[ft]) <= rtol * np.maximum(np.abs(yt[ft]), scale)))


_DEFAULT_DOMAIN = (0.5, 5.0)


@_register(
    "symbolic_equiv", higher_is_better=True, kind="symbolic", description="1 if the formula equals the target"
)
def symbolic_equivalence(
    pred: Sequence[Any],
    target: Sequence[Any],
    *,
    timeout: float = 2.0,
    domain: tuple[float, float] | dict[str, tuple[float, float]] = _DEFAULT_DOMAIN,
    n_points: int = 64,
    rtol: float = 1e-8,
    seed: int = 0,
) -> np.ndarray:
    """Per-sample 1.0 when the predicted formula is the target function, else 0.0.

    Decided in order: structurally equal sympy expressions; ``sympy.simplify(pred - target) == 0`` (run
    under a ``timeout``-second SIGALRM guard in the main thread; elsewhere only for small expressions);
    otherwise (simplify failed, timed out, or left a non-zero residue it could not reduce, as with
    ``sqrt(x**2) - x``) numerically: both are evaluated at ``n_points`` random points of ``domain`` (one
    ``(low, high)`` for every variable, or one per variable name) and must be finite at the same points (at
    least a quarter of them) and agree there to ``rtol`` relative to ``max(|target|, max|target|, 1)``.
    The numeric step is a probabilistic identity test, exact up to ``rtol``: ``0.333333333333*x`` equals
    ``x/3``, ``3.14*x`` does not equal ``pi*x``. For ``y = f(x)`` equations, right-hand sides are compared.
    """
    import sympy

    out = np.zeros(len(target))
    for i, (p, t) in enumerate(_pairs(pred, target, "symbolic_equiv")):
        if p is None:
            continue
        if p == t:
            out[i] = 1.0
            continue
        residue = _guarded(sympy.simplify, p - t, timeout, max_ops=500)
        if (residue is not None and residue == 0) or _numerically_equal(p, t, domain, n_points, rtol, seed):
            out[i] = 1.0
    return out


# -- tree edit distance (SRSD) ---------------------------------------------------------------------------
def expression_tree(expr: sympy.Basic) -> Tree:
    """SRSD's labelled tree of a sympy expression: numbers are ``"Const"`` leaves, symbols their names,
    every other node its sympy class name (``Add``, ``Mul``, ``Pow``, ``sin``...) with sympy's n-ary args."""
    if expr.is_number:
        return ("Const",)
    if expr.is_Symbol:
        return (expr.name,)
    return (type(expr).__name__, *(expression_tree(a) for a in expr.args))


def _srsd_form(expr: sympy.Basic, simplify: bool, timeout: float | None) -> sympy.Basic:
    """The form SRSD compares: pi and every constant evaluated to floats, then factor + simplify."""
    import sympy

    expr = expr.xreplace({sympy.pi: sympy.Float(sympy.pi)}).evalf()
    if simplify:
        simplified = _guarded(lambda e: sympy.factor(e).simplify(), expr, timeout, max_ops=500)
        expr = expr if simplified is None else simplified
    return expr.xreplace({sympy.Float(1.0): sympy.Integer(1)})  # 1.0*x -> x, as SRSD's subs(1.0, 1)


def _postorder(tree: Tree) -> tuple[list[str], list[int]]:
    """Labels in postorder and, per node, the postorder index of its leftmost leaf (0-based)."""
    labels: list[str] = []
    leftmost: list[int] = []

    def visit(node: Tree) -> int:
        first = None
        for child in node[1:]:
            lm = visit(child)
            first = lm if first is None else first
        labels.append(node[0])
        leftmost.append(len(labels) - 1 if first is None else first)
        return leftmost[-1]

    visit(tree)
    return labels, leftmost


def zhang_shasha(a: Tree, b: Tree) -> int:
    """Tree edit distance with unit costs (insert, delete, relabel) between ordered labelled trees.

    Zhang & Shasha (1989): dynamic programming over the "keyroots" (nodes with no left sibling path to
    their parent's leftmost leaf), O(|a| |b| min(depth, leaves)^2). Trees are ``(label, *children)``.
    """
    la, lma = _postorder(a)
    lb, lmb = _postorder(b)
    keys_a = _keyroots(lma)
    keys_b = _keyroots(lmb)
    td = np.zeros((len(la), len(lb)), dtype=np.int64)  # td[i, j]: distance of subtrees rooted at i and j
    for i in keys_a:
        for j in keys_b:
            _forest_distance(i, j, la, lma, lb, lmb, td)
    return int(td[-1, -1])


def _keyroots(leftmost: list[int]) -> list[int]:
    # The highest node (largest postorder index) for each distinct leftmost leaf, in increasing order.
    last = {lm: i for i, lm in enumerate(leftmost)}
    return sorted(last.values())


def _forest_distance(i, j, la, lma, lb, lmb, td) -> None:
    """Fill ``td`` for every subtree pair on the leftmost paths of keyroots ``i`` and ``j``."""
    i0, j0 = lma[i], lmb[j]
    m, n = i - i0 + 2, j - j0 + 2
    fd = np.zeros((m, n), dtype=np.int64)  # fd[x, y]: forest a[i0 .. i0+x-1] vs forest b[j0 .. j0+y-1]
    fd[:, 0] = np.arange(m)
    fd[0, :] = np.arange(n)
    for x in range(1, m):
        ai = i0 + x - 1
        for y in range(1, n):
            bj = j0 + y - 1
            delete, insert = fd[x - 1, y] + 1, fd[x, y - 1] + 1
            if lma[ai] == i0 and lmb[bj] == j0:  # both forests are whole trees: a relabel is possible
                relabel = fd[x - 1, y - 1] + (la[ai] != lb[bj])
                fd[x, y] = min(delete, insert, relabel)
                td[ai, bj] = fd[x, y]
            else:
                fd[x, y] = min(delete, insert, fd[lma[ai] - i0, lmb[bj] - j0] + td[ai, bj])


@_register(
    "tree_edit_distance",
    higher_is_better=False,
    kind="symbolic",
    description="SRSD normalized tree edit distance to the target formula (0 = same tree)",
)
def tree_edit_distance(
    pred: Sequence[Any], target: Sequence[Any], *, simplify: bool = True, timeout: float = 2.0
) -> np.ndarray:
    """Per-sample normalized tree edit distance of SRSD (Matsubara et al., 2022), in ``[0, 1]``.

    Both formulas are brought to SRSD's form (``pi`` and all numeric constants evaluated to floats, then
    ``factor`` + ``simplify`` under a ``timeout``-second guard, and ``1.0`` factors dropped), turned into
    labelled trees (:func:`expression_tree`: every number is one ``Const`` leaf, so fitted constants do not
    count), and compared with the Zhang-Shasha edit distance ``d`` (unit costs). The value is
    ``min(d, |target|) / |target|`` with ``|target|`` the target tree's node count; a missing or unreadable
    prediction scores 1.
    """
    out = np.ones(len(target))
    for i, (p, t) in enumerate(_pairs(pred, target, "tree_edit_distance")):
        if p is None:
            continue
        tree_t = expression_tree(_srsd_form(t, simplify, timeout))
        tree_p = expression_tree(_srsd_form(p, simplify, timeout))
        n_t = len(_postorder(tree_t)[0])
        out[i] = min(zhang_shasha(tree_p, tree_t), n_t) / n_t
    return out
