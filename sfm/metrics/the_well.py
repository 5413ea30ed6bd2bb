"""The Well's field metrics (Ohana et al., NeurIPS 2024 Datasets and Benchmarks), reimplemented.

Reimplemented from the formulas in ``the_well/benchmark/metrics/spatial.py``. The Well computes every metric
per (sample, time, field) by reducing the spatial axes, averages over the batch, and reports means over time
windows (its rollout windows 6:12 and 13:30 are slices of the time axis). So every function here returns
``(batch, time)`` values with aggregation ``mean``; slice the time axis for a window.

Variance: The Well's VRMSE normalizes by ``torch.std(y, dim=spatial) ** 2``, and ``torch.std`` defaults to
the *unbiased* (Bessel-corrected, ``N - 1``) estimator, so its "variance" is the unbiased one even though the
paper writes the plain spatial mean of squared deviations. We follow the code. A consequence: predicting the
spatial mean of the target scores ``sqrt((N - 1) / N)``, slightly below 1.

The Well's ``MSE`` is :func:`mse` here and its ``RMSE`` is PDEBench's ``rmse`` (same formula, same averaging).

NaN (or inf) in ``pred`` propagates to the affected (sample, time) values and the aggregate.
"""

from __future__ import annotations

import numpy as np

from sfm.errors import SfmError
from sfm.metrics.core import check_fields, field_metric

_SOURCE = "the_well"

#: The Well's default epsilon, added to the normalizer of NRMSE and VRMSE.
WELL_EPS = 1e-7


def _space_axes(arr: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, arr.ndim))


def _check_eps(name: str, eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating | np.integer) or not eps >= 0:
        raise SfmError(f"{name}: option eps must be a non-negative number, got {eps!r}")
    return float(eps)


@field_metric(
    "mse",
    higher_is_better=False,
    aggregation="mean",
    description="mean squared error over space per sample and time, averaged (The Well MSE)",
    source=_SOURCE,
)
def mse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean squared error over space: ``mean_x (pred - target)^2``.

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    p, t = check_fields(pred, target, "mse")
    return np.mean((p - t) ** 2, axis=_space_axes(t))


@field_metric(
    "well_nrmse",
    higher_is_better=False,
    aggregation="mean",
    description="RMSE over space divided by sqrt(mean target^2 + 1e-7), per sample and time (The Well NRMSE)",
    source=_SOURCE,
)
def well_nrmse(pred: np.ndarray, target: np.ndarray, *, eps: float = WELL_EPS) -> np.ndarray:
    """The Well's normalized RMSE: ``sqrt(mean_x (pred - target)^2 / (mean_x target^2 + eps))``.

    Unlike PDEBench's ``nrmse`` the epsilon sits inside the root and keeps a zero target frame finite.

    Args:
        pred: ``(batch, time, *space)``.
        target: Same shape.
        eps: Added to the normalizer (The Well's default 1e-7).

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    eps = _check_eps("well_nrmse", eps)
    p, t = check_fields(pred, target, "well_nrmse")
    axes = _space_axes(t)
    return np.sqrt(np.mean((p - t) ** 2, axis=axes) / (np.mean(t**2, axis=axes) + eps))


@field_metric(
    "vrmse",
    higher_is_better=False,
    aggregation="mean",
    description="RMSE over space divided by the target's spatial std (unbiased) + 1e-7 (The Well VRMSE)",
    source=_SOURCE,
)
def vrmse(pred: np.ndarray, target: np.ndarray, *, eps: float = WELL_EPS) -> np.ndarray:
    """Variance-scaled RMSE: ``sqrt(mean_x (pred - target)^2 / (Var_x(target) + eps))``.

    ``Var_x`` is the unbiased spatial variance (``N - 1`` in the denominator), as ``torch.std`` computes it in
    The Well. A constant target frame gives ``sqrt(mse / eps)``: large but finite.

    Args:
        pred: ``(batch, time, *space)`` with at least 2 grid points.
        target: Same shape.
        eps: Added to the variance (The Well's default 1e-7).

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    eps = _check_eps("vrmse", eps)
    p, t = check_fields(pred, target, "vrmse")
    if np.prod(t.shape[2:]) < 2:
        raise SfmError(
            f"vrmse: the unbiased spatial variance needs at least 2 grid points, got shape {t.shape}"
        )
    axes = _space_axes(t)
    var = np.var(t, axis=axes, ddof=1)
    return np.sqrt(np.mean((p - t) ** 2, axis=axes) / (var + eps))
