"""The metric contract: registration, input checks, aggregation and bootstrap intervals.

A field metric is a plain numpy function ``fn(pred, target, **options) -> values`` on one field shaped
``(batch, time, *space)`` (1, 2 or 3 spatial axes). It returns *per-sample* values: ``(batch,)``,
``(batch, time)``, or ``(batch, time, k)`` where ``k`` is a metric-internal axis (Fourier modes of a band).
Per-time values let the harness score time windows: it slices the time axis before aggregating.

Every metric names its *aggregation* where it is registered. Aggregating reduces the sample axis (axis 0)
with that reduction and then averages every remaining axis:

========  ===================================================  ===========================================
name      sample axis reduced by                               used where the reference project does
========  ===================================================  ===========================================
mean      mean                                                 PDEBench RMSE/nRMSE/bRMSE, The Well, DPOT
max       max (worst sample)                                   PDEBench max error
rms       root mean square, ``sqrt(mean(v**2))``               PDEBench cRMSE and fRMSE
median    median                                               Poseidon relative L1 error
========  ===================================================  ===========================================

"Reduce the batch first, then average the rest" is exactly the order of PDEBench's ``metric_func`` (batch,
then channels and time) and of The Well's validation loop (batch, then the time window), which is why one
split reproduces both projects' numbers. Example:

    >>> import numpy as np
    >>> from sfm.metrics import compute
    >>> target = np.ones((2, 3, 16))
    >>> round(compute("nrmse", target * 1.1, target), 6)
    0.1
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from sfm.errors import ConfigError, SfmError, did_you_mean
from sfm.registry import METRICS


def _rms(values: np.ndarray, axis: int) -> np.ndarray:
    return np.sqrt(np.mean(values * values, axis=axis))


#: Reductions of the sample axis, by aggregation name (see the module docstring).
AGGREGATIONS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.mean,
    "max": np.max,
    "rms": _rms,
    "median": np.median,
}

# Bootstrap resamples are gathered in chunks of at most this many numbers (32 MiB of float64), so memory
# stays bounded for long rollouts while each chunk is still one vectorized numpy call.
_CHUNK_ELEMENTS = 1 << 22


def field_metric(
    name: str, *, higher_is_better: bool, aggregation: str, description: str, source: str
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering a field metric in :data:`sfm.registry.METRICS` with ``kind="field"``.

    Args:
        name: Registry name, e.g. ``"nrmse"``.
        higher_is_better: Whether larger values are better (False for every error metric).
        aggregation: One of :data:`AGGREGATIONS`.
        description: One line for ``sfm list`` and model cards.
        source: The project whose reported numbers the metric reproduces (``"pdebench"``, ``"the_well"``...).
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"metric {name!r}: unknown aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}"
        )
    return METRICS.register(
        name,
        higher_is_better=higher_is_better,
        aggregation=aggregation,
        kind="field",
        description=description,
        source=source,
    )


def check_fields(pred: Any, target: Any, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one field's prediction and target and return them as float64 arrays.

    NaN or infinite values in ``pred`` are allowed (a model's invalid output); each metric documents how they
    propagate. The target must be finite.

    Args:
        pred: Prediction shaped ``(batch, time, *space)`` with 1-3 spatial axes, floating point.
        target: Reference of the same shape and kind.
        metric: Metric name, for messages.

    Raises:
        SfmError: on a non-floating input, a shape mismatch, a wrong rank, an empty axis or a non-finite target.
    """
    arrays = []
    for label, value in (("pred", pred), ("target", target)):
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.floating):
            raise SfmError(f"{metric}: {label} must be a floating-point array, got dtype {arr.dtype}")
        arrays.append(arr)
    p, t = arrays
    if p.shape != t.shape:
        raise SfmError(f"{metric}: pred shape {p.shape} does not match target shape {t.shape}")
    if not 3 <= t.ndim <= 5:
        raise SfmError(
            f"{metric}: expected arrays shaped (batch, time, x[, y[, z]]) with 1-3 spatial axes, got shape {t.shape}"
        )
    if 0 in t.shape:
        raise SfmError(f"{metric}: arrays must not have an empty axis, got shape {t.shape}")
    finite = np.isfinite(t)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise SfmError(
            f"{metric}: target holds {int((~finite).sum())} non-finite value(s) (first at index {first}); "
            "a reference must be finite"
        )
    return p.astype(np.float64, copy=False), t.astype(np.float64, copy=False)


def get_metric(name: str) -> Callable[..., Any]:
    """Return the metric function registered as ``name``; an unknown name suggests the closest ones.

    Raises:
        UnknownNameError: (an :class:`SfmError`) for a name not in :data:`sfm.registry.METRICS`.
    """
    return METRICS.get(name)


def _aggregation(name: str) -> str:
    aggregation = METRICS.meta(name).get("aggregation", "mean")
    if aggregation not in AGGREGATIONS:
        raise SfmError(f"metric {name!r} declares unknown aggregation {aggregation!r}")
    return aggregation


def _as_values(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.size == 0:
        raise SfmError(
            f"{name}: per-sample values must be a non-empty array (batch, ...), got shape {arr.shape}"
        )
    return arr


def aggregate(name: str, values: Any) -> float:
    """Turn per-sample values of metric ``name`` into the reported number.

    The sample axis (axis 0) is reduced with the metric's aggregation, then the remaining axes are averaged.
    NaN values propagate (the reported number is NaN); drop invalid samples first to score only valid ones.

    Args:
        name: A registered metric name.
        values: What the metric function returned, or a slice of it along the sample or time axis.
    """
    reduce = AGGREGATIONS[_aggregation(name)]
    arr = _as_values(name, values)
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.mean(reduce(arr, axis=0)))


def _check_options(name: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(fn).parameters
    allowed = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise ConfigError(
                f"metric {name!r} has no option {key!r}{did_you_mean(key, allowed)}; options: {known}"
            )


def compute(name: str, pred: Any, target: Any, **options: Any) -> float:
    """Per-sample values of metric ``name`` on ``pred``/``target``, aggregated to the reported number.

    Args:
        name: A registered metric name.
        pred: Prediction (for field metrics ``(batch, time, *space)``).
        target: Reference of the same shape.
        **options: Keyword options of the metric function (e.g. ``lengths`` for the fRMSE bands).

    Raises:
        SfmError: for an unknown name or option, or inputs the metric rejects.
    """
    fn = get_metric(name)
    _check_options(name, fn, options)
    return aggregate(name, fn(pred, target, **options))


def _resample_stats(aggregation: str, flat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Aggregate of each resample ``flat[idx[r]]`` (``flat`` is ``(n, rest)``, ``idx`` is ``(r, n)``)."""
    n = flat.shape[0]
    if aggregation in ("mean", "rms"):
        # Both are means over samples (of v or v**2): weight each sample by how often it was drawn and let one
        # matrix product do all resamples, instead of gathering r*n*rest numbers.
        rows = idx + n * np.arange(len(idx))[:, None]
        counts = np.bincount(rows.ravel(), minlength=idx.size).reshape(idx.shape).astype(np.float64)
        moment = counts @ (flat * flat if aggregation == "rms" else flat) / n
        return (np.sqrt(moment) if aggregation == "rms" else moment).mean(axis=1)
    return AGGREGATIONS[aggregation](flat[idx], axis=1).mean(axis=1)


def bootstrap_ci(
    name: str, values: Any, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the reported number of metric ``name``.

    ``scipy.stats.bootstrap`` (``method="percentile"``) draws the samples (axis 0 of ``values``) with
    replacement ``n_resamples`` times; each resample is aggregated exactly like :func:`aggregate`, and the
    central ``confidence`` interval of those numbers is returned. Non-finite values (NaN from invalid
    predictions) make the interval ``(nan, nan)``; one sample gives the point interval ``(v, v)``.

    Args:
        name: A registered metric name.
        values: Per-sample values of that metric, ``(batch, ...)``.
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling; the same inputs and seed give the same interval.

    Returns:
        ``(low, high)``.
    """
    aggregation = _aggregation(name)
    arr = _as_values(name, values)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise SfmError(f"{name}: n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise SfmError(f"{name}: confidence must lie strictly between 0 and 1, got {confidence!r}")
    if not np.isfinite(arr).all():
        return float("nan"), float("nan")
    n = arr.shape[0]
    flat = arr.reshape(n, -1)
    if n == 1:  # every resample is the one sample (scipy refuses a single observation)
        value = aggregate(name, arr)
        return value, value
    from scipy.stats import bootstrap

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy resamples the sample *indices* (batch, n); each row is aggregated over the whole per-sample
        # block at once, so every metric axis (time, Fourier modes) travels with its sample.
        return _resample_stats(aggregation, flat, np.atleast_2d(idx))

    per_resample = n + flat.shape[1] if aggregation in ("mean", "rms") else flat.size
    res = bootstrap(
        (np.arange(n),),
        statistic,
        n_resamples=int(n_resamples),
        batch=max(1, _CHUNK_ELEMENTS // per_resample),  # bounded memory; the same stream as one draw
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
