"""PDEBench's field metrics (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks), reimplemented.

Written from the formulas of the PDEBench paper and the semantics of its ``metric_func``; no code is taken
from PDEBench (its metrics file carries a non-commercial licence). For one field (channel), each function's
per-sample values aggregated with the registered aggregation give exactly the number ``metric_func`` reports
for the same arrays in one call (PDEBench then averages over channels; average our numbers over fields).

Layout: sfm passes ``(batch, time, *space)``; PDEBench's ``(batch, *space, time, channel)`` holds the same
numbers. Reductions run over the spatial axes, so the axis order does not change any value.

PDEBench's ``metrics()`` loop calls ``metric_func`` once per data-loader batch and averages the results. For
the ``mean`` metrics that equals one call on all samples when batches are equal in size; for ``max_error``,
``crmse`` and the fRMSE bands it does not (a mean of per-batch maxima / RMS values), so those reported
numbers depend on PDEBench's batch size. sfm reports the one-call value on the whole evaluation set.

NaN (or inf) in ``pred``: every metric propagates it into the values of the affected (sample, time), so the
aggregate is NaN and the harness can count invalid outputs. ``brmse`` only sees boundary points, so NaN in
the interior does not reach it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sfm.errors import SfmError
from sfm.metrics.core import check_fields, field_metric

_SOURCE = "pdebench"


def _space_axes(arr: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, arr.ndim))


@field_metric(
    "rmse",
    higher_is_better=False,
    aggregation="mean",
    description="RMSE over space per sample and time, averaged (PDEBench RMSE; equals The Well's RMSE)",
    source=_SOURCE,
)
def rmse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Root mean squared error over space: ``sqrt(mean_x (pred - target)^2)``.

    The Well's RMSE is the same formula with the same averaging, so this is also The Well's ``RMSE``.

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    p, t = check_fields(pred, target, "rmse")
    return np.sqrt(np.mean((p - t) ** 2, axis=_space_axes(t)))


@field_metric(
    "nrmse",
    higher_is_better=False,
    aggregation="mean",
    description="RMSE over space divided by the target's RMS, per sample and time (PDEBench nRMSE)",
    source=_SOURCE,
)
def nrmse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Normalized RMSE: ``sqrt(mean_x (pred - target)^2) / sqrt(mean_x target^2)``.

    PDEBench adds no epsilon: a target frame that is zero everywhere gives ``inf`` (``nan`` if the prediction
    is zero too), as in PDEBench. Use ``well_nrmse`` for a guarded version.

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    p, t = check_fields(pred, target, "nrmse")
    axes = _space_axes(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(np.mean((p - t) ** 2, axis=axes)) / np.sqrt(np.mean(t**2, axis=axes))


@field_metric(
    "crmse",
    higher_is_better=False,
    aggregation="rms",
    description="error of the conserved quantity (spatial mean), RMS over samples (PDEBench cRMSE)",
    source=_SOURCE,
)
def crmse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Conserved-quantity error: ``|sum_x pred - sum_x target| / N``, with ``N`` the number of grid points.

    PDEBench divides the summed difference by the number of grid points in 1D, 2D and 3D alike, so this is
    the error of the spatial mean. It takes the root mean square over samples, hence aggregation ``rms``.

    Returns:
        ``(batch, time)``; aggregation ``rms``.
    """
    p, t = check_fields(pred, target, "crmse")
    n_points = math.prod(t.shape[2:])
    return np.abs(np.sum(p - t, axis=_space_axes(t))) / n_points


@field_metric(
    "max_error",
    higher_is_better=False,
    aggregation="max",
    description="largest absolute error over space and samples, averaged over time (PDEBench max error)",
    source=_SOURCE,
)
def max_error(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Maximum absolute error over space: ``max_x |pred - target|``.

    PDEBench takes the worst sample at each time and then averages over time: aggregation ``max``.

    Returns:
        ``(batch, time)``; aggregation ``max``.
    """
    p, t = check_fields(pred, target, "max_error")
    return np.max(np.abs(p - t), axis=_space_axes(t))


@field_metric(
    "brmse",
    higher_is_better=False,
    aggregation="mean",
    description="RMSE over the boundary points of the grid, per sample and time (PDEBench bRMSE)",
    source=_SOURCE,
)
def brmse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RMSE over the grid's boundary: the first and last index along every spatial axis.

    As in PDEBench, every face is counted in full, so edge and corner points appear once per face they lie on
    (a 2D corner twice), and the mean divides by the summed face sizes: ``2`` points in 1D,
    ``2*nx + 2*ny`` in 2D, ``2*(nx*ny + ny*nz + nz*nx)`` in 3D. (PDEBench's own 3D branch sums over channels
    before its final mean, which fails; this is its per-channel formula.)

    Returns:
        ``(batch, time)``; aggregation ``mean``.
    """
    p, t = check_fields(pred, target, "brmse")
    axes = _space_axes(t)
    total = np.zeros(t.shape[:2])
    count = 0
    for axis in axes:  # at most 3 spatial axes; samples stay vectorized. Only face points are touched.
        faces = np.take(p, [0, -1], axis=axis) - np.take(t, [0, -1], axis=axis)
        total = total + np.sum(faces * faces, axis=axes)
        count += faces[0, 0].size
    return np.sqrt(total / count)


def _check_band_options(name: str, ndim: int, lengths: Sequence[float] | None, low: int, high: int) -> float:
    """Validate fRMSE options; return the product of the domain lengths."""
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise SfmError(f"{name}: option {key} must be a positive integer, got {value!r}")
    if low >= high:
        raise SfmError(f"{name}: option low ({low}) must be smaller than high ({high})")
    if lengths is None:
        return 1.0
    lengths = list(np.atleast_1d(np.asarray(lengths, dtype=np.float64)))
    if len(lengths) != ndim or not all(np.isfinite(v) and v > 0 for v in lengths):
        raise SfmError(
            f"{name}: option lengths must give {ndim} positive domain length(s), one per spatial axis, got {lengths}"
        )
    return float(math.prod(lengths))


def _radial_sum(power: np.ndarray, half: tuple[int, ...]) -> np.ndarray:
    """Sum spectral power over shells ``floor(|k|) = b`` for ``b < min(half)``, PDEBench's 2D/3D binning.

    ``power`` holds the non-negative wavenumbers ``0 <= k_i < n_i // 2`` on its trailing axes (PDEBench bins
    only that quadrant/octant). Every shell is non-empty: ``(b, 0, ...)`` lies in shell ``b``.
    """
    n_bins = min(half)
    lead = power.shape[: power.ndim - len(half)]
    if n_bins == 0:  # an axis of fewer than 2 points has no mode below its Nyquist index
        return np.zeros((*lead, 0))
    grids = np.meshgrid(*[np.arange(h) for h in half], indexing="ij")
    shell = np.floor(np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))).astype(np.int64).ravel()
    keep = np.flatnonzero(shell < n_bins)
    order = keep[np.argsort(shell[keep], kind="stable")]
    starts = np.searchsorted(shell[order], np.arange(n_bins))
    flat = power.reshape(*lead, -1)
    return np.add.reduceat(flat[..., order], starts, axis=-1)


def _band(
    name: str,
    pred: np.ndarray,
    target: np.ndarray,
    lengths: Sequence[float] | None,
    low: int,
    high: int,
    band: int,
) -> np.ndarray:
    """Per-mode spectral error amplitudes of one band (0 low, 1 mid, 2 high): ``(batch, time, modes)``."""
    p, t = check_fields(pred, target, name)
    space = t.shape[2:]
    scale = _check_band_options(name, len(space), lengths, low, high) / math.prod(space)
    err = p - t  # the FFT is linear: one transform of the error equals the difference of two transforms
    if len(space) == 1:
        power = np.abs(np.fft.rfft(err, axis=2)) ** 2  # modes 0..nx//2, Nyquist included, as PDEBench's rfft
    else:
        half = tuple(n // 2 for n in space)
        spectrum = np.fft.rfftn(err, axes=_space_axes(err))
        quadrant = spectrum[(Ellipsis, *(slice(0, h) for h in half))]
        power = _radial_sum(np.abs(quadrant) ** 2, half)
    n_bins = power.shape[-1]
    start, stop = (0, low, high)[band], (low, high, n_bins)[band]
    if start >= n_bins:
        raise SfmError(
            f"{name}: the band starts at mode {start}, but a {'x'.join(map(str, space))} grid has only "
            f"{n_bins} Fourier mode bin(s); use a finer grid or drop this metric"
        )
    return np.sqrt(power[..., start:stop]) * scale


_BAND_DOC = """PDEBench fRMSE in the {label} band: {modes}.

    The spectrum of the error is taken over space (``rfft`` in 1D; in 2D/3D PDEBench keeps only wavenumbers
    ``0 <= k_i < n_i // 2`` and sums power over shells ``floor(|k|)`` below ``min(n_i // 2)``). Each value is a
    mode's amplitude ``|F(pred - target)_k| * prod(L) / prod(n)``; the RMS over samples (aggregation ``rms``)
    averaged over the band's modes and time is PDEBench's number. A band that reaches past the last mode is
    cut short as in PDEBench; an empty band raises :class:`SfmError` (PDEBench would report NaN).

    Args:
        pred: ``(batch, time, *space)``.
        target: Same shape.
        lengths: Domain length per spatial axis (PDEBench's ``Lx, Ly, Lz``); default 1 each.
        low: First mode of the mid band (PDEBench ``iLow``).
        high: First mode of the high band (PDEBench ``iHigh``).

    Returns:
        ``(batch, time, modes in band)``; aggregation ``rms``.
    """


def _register_band(name: str, band: int, label: str, modes: str):
    @field_metric(
        name,
        higher_is_better=False,
        aggregation="rms",
        description=f"RMSE of the error's Fourier amplitudes, {modes} (PDEBench fRMSE {label})",
        source=_SOURCE,
    )
    def frmse(
        pred: np.ndarray,
        target: np.ndarray,
        *,
        lengths: Sequence[float] | None = None,
        low: int = 4,
        high: int = 12,
    ) -> np.ndarray:
        return _band(name, pred, target, lengths, low, high, band)

    frmse.__name__ = frmse.__qualname__ = name
    frmse.__doc__ = _BAND_DOC.format(label=label, modes=modes)
    return frmse


frmse_low = _register_band("frmse_low", 0, "low", "modes k < 4")
frmse_mid = _register_band("frmse_mid", 1, "mid", "modes 4 <= k < 12")
frmse_high = _register_band("frmse_high", 2, "high", "modes k >= 12")
