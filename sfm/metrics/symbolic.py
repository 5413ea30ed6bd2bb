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

Symbolic metrics (``kind="symbolic"``) take sequences of sympy expressions, already parsed (text is read
with :func:`sfm.physics.equations.parse`, which the harness calls: this layer does not import the formula
language); a ``None`` prediction (missing, or unreadable) counts as a failure:

==================  =========================================================================================
symbolic_equiv      1 if pred and target are the same function (see :func:`symbolic_equivalence`) else 0
tree_edit_distance  SRSD's normalized tree edit distance (:mod:`sfm.metrics.tree_edit`)
==================  =========================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import DataError
from sfm.metrics._sympy import Unsupported, evaluate, formula_pairs, guarded
from sfm.registry import METRICS

if TYPE_CHECKING:  # sympy costs ~1 s to import; field-metric users of sfm.metrics should not pay for it
    import sympy


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
def _numerically_equal(
    p: sympy.Basic, t: sympy.Basic, domain: Any, n_points: int, rtol: float, seed: int
) -> bool:
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
    except Unsupported:
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
    for i, (p, t) in enumerate(formula_pairs(pred, target, "symbolic_equiv")):
        if p is None:
            continue
        if p == t:
            out[i] = 1.0
            continue
        residue = guarded(sympy.simplify, p - t, timeout, max_ops=500)
        if (residue is not None and residue == 0) or _numerically_equal(p, t, domain, n_points, rtol, seed):
            out[i] = 1.0
    return out
