"""Relative L1 and L2 errors per sample, as neural-operator papers report them.

``rel_l1`` follows Poseidon (Herde et al., 2024; ``scOT/metrics.py``): per sample
``sum |pred - target| / sum |target|`` and the *median* over samples. ``rel_l2`` follows FNO (Li et al., 2021,
``LpLoss``) and DPOT (Hao et al., 2024): per sample ``||pred - target||_2 / ||target||_2`` and the *mean*
over samples. Both are fractions (Poseidon prints percent: multiply by 100).

Norm axes: every axis but the sample axis, i.e. time and all spatial axes of the one field. Poseidon scores
a single time (pass ``time = 1``) and sums over all channels of a sample at once; sfm scores one field at a
time, so a multi-channel Poseidon number is not the mean of per-field numbers. For a time window, slice the
time axis before calling.

A target that is zero everywhere in a sample has its norm replaced by 1e-10, Poseidon's guard against
division by zero. NaN (or inf) in ``pred`` makes that sample's value NaN (inf), and so the aggregate.
"""

from __future__ import annotations

import numpy as np

from sfm.metrics.core import check_fields, field_metric

# Poseidon replaces a zero normalizer (sum |target|^p) by this value.
_ZERO_NORM = 1e-10


def _relative_lp(name: str, pred: np.ndarray, target: np.ndarray, p: int) -> np.ndarray:
    pr, t = check_fields(pred, target, name)
    axes = tuple(range(1, t.ndim))
    err = np.sum(np.abs(pr - t) ** p, axis=axes)
    norm = np.sum(np.abs(t) ** p, axis=axes)
    norm = np.where(norm == 0, _ZERO_NORM, norm)
    return (err / norm) ** (1.0 / p)


@field_metric(
    "rel_l1",
    higher_is_better=False,
    aggregation="median",
    description="relative L1 error per sample over time and space, median over samples (Poseidon)",
    source="poseidon",
)
def rel_l1(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Relative L1 error ``sum |pred - target| / sum |target|`` over time and space.

    Returns:
        ``(batch,)``; aggregation ``median``.
    """
    return _relative_lp("rel_l1", pred, target, 1)


@field_metric(
    "rel_l2",
    higher_is_better=False,
    aggregation="mean",
    description="relative L2 error per sample over time and space, mean over samples (FNO, DPOT)",
    source="dpot",
)
def rel_l2(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Relative L2 error ``||pred - target||_2 / ||target||_2`` over time and space.

    Returns:
        ``(batch,)``; aggregation ``mean``.
    """
    return _relative_lp("rel_l2", pred, target, 2)
