"""PDE-identification metrics: is the named family right, and how close are its coefficients.

Both take one answer per sample and return one number per sample (``kind="identification"``):

==================  =========================================================================================
family_accuracy     1 if the predicted family name equals the true one, else 0 (an unparsable answer: 0)
coef_rel_error      mean over the true family's coefficients of ``|pred - true| / |true|``
==================  =========================================================================================

The harness scores ``coef_rel_error`` only on samples whose family is right (a coefficient of the wrong PDE
has no true value to compare with), so its sample count is the number of correct families. A coefficient
the answer leaves out counts as a prediction of 0 (relative error 1): leaving one out is never better than
guessing. Where a true coefficient is exactly 0 the absolute error stands in for the relative one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sfm.errors import DataError
from sfm.registry import METRICS


def _register(name: str, *, higher_is_better: bool, description: str):
    return METRICS.register(
        name,
        higher_is_better=higher_is_better,
        aggregation="mean",
        kind="identification",
        description=description,
        source="sfm",
    )


def _check_lengths(pred: Sequence[Any], target: Sequence[Any], metric: str) -> None:
    if isinstance(pred, str) or isinstance(target, str):
        raise DataError(f"{metric}: pred and target must be sequences (one answer per sample), got a string")
    if len(pred) != len(target):
        raise DataError(f"{metric}: {len(pred)} predictions for {len(target)} targets")
    if len(target) == 0:
        raise DataError(f"{metric}: no samples given")


@_register("family_accuracy", higher_is_better=True, description="1 if the named PDE family is right")
def family_accuracy(pred: Sequence[str | None], target: Sequence[str]) -> np.ndarray:
    """Per-sample 1.0 where the predicted family equals the true family (``None``, unparsable: 0.0).

    Args:
        pred: Predicted family names (``None`` where the answer did not parse).
        target: True family names.
    """
    _check_lengths(pred, target, "family_accuracy")
    return np.array([float(p is not None and p == t) for p, t in zip(pred, target)])


def _relative(p: float, t: float) -> float:
    return abs(p - t) / abs(t) if t != 0 else abs(p)


def coefficient_errors(
    pred: Sequence[Mapping[str, float] | None], target: Sequence[Mapping[str, float]]
) -> dict[str, np.ndarray]:
    """Per coefficient name, the per-sample relative errors (NaN where a sample's truth lacks that name).

    A coefficient missing from a prediction (or a ``None`` prediction) counts as 0.

    Args:
        pred: Predicted coefficients per sample.
        target: True coefficients per sample.

    Returns:
        ``{name: [n_samples]}`` for every name in any target, sorted by name.
    """
    _check_lengths(pred, target, "coef_rel_error")
    names = sorted({k for t in target for k in t})
    out = {k: np.full(len(target), np.nan) for k in names}
    for i, (p, t) in enumerate(zip(pred, target)):
        p = p or {}
        for k, v in t.items():
            if not np.isfinite(v):
                raise DataError(f"coef_rel_error: true coefficient {k!r} of sample {i} is not finite ({v})")
            out[k][i] = _relative(float(p.get(k, 0.0)), float(v))
    return out


@_register(
    "coef_rel_error",
    higher_is_better=False,
    description="mean relative error |pred - true| / |true| of the coefficients (right family only)",
)
def coef_rel_error(
    pred: Sequence[Mapping[str, float] | None], target: Sequence[Mapping[str, float]]
) -> np.ndarray:
    """Per-sample mean relative error over the sample's true coefficients (0 for a family without any).

    Args:
        pred: Predicted ``{name: value}`` per sample (``None``: nothing predicted, every coefficient 0).
        target: True ``{name: value}`` per sample.
    """
    errors = coefficient_errors(pred, target)
    if not errors:
        return np.zeros(len(target))
    stacked = np.stack(list(errors.values()), axis=1)  # [n, names], NaN where not a coefficient of the sample
    counts = np.isfinite(stacked).sum(axis=1)
    sums = np.nansum(stacked, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
