"""Physical consistency of rollouts: conservation drift and PDE residual (the ``consistency`` task family).

Every predictor (the model, each baseline) and the ground truth (``"truth"``) is scored on the grid and frame
spacing the model sees (the stored grid subsampled by the task format's ``space_stride``, frames
``fmt.dt(meta)`` apart):

* **drift** of each quantity ``Q = int q dx`` the PDE conserves, from the last context frame ``t_0``:
  ``|Q(t) - Q(t_0)| / (S(t_0) + eps mean S(t_0))`` with ``S = int |q| dx``. ``S`` rather than ``|Q|`` is the
  scale because the default data's mass is ~0 (zero-mean sine waves), so ``|Q(t_0)|`` would divide by
  roundoff; for a positive density (energy) ``S = Q`` and this is the plain relative drift. ``t_0`` is a
  context frame, so the scale is the same for every predictor. Reported per predicted frame (averaged over
  examples) and as the mean of that curve.
* **residual**: the RMS of the PDE residual (:meth:`Simulator.residual`) over the predicted frames, relative
  to the truth's on the same frames, so 1.0 means as physical as the reference data. The context frames are
  prepended, so the central time difference covers the first predicted frame; the last predicted frame has no
  successor and is not covered.

A family that conserves nothing or defines no residual says so in ``notes`` instead of raising. The forecast
scores are reported as in the ``forecast`` family; these numbers go to ``extra["consistency"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import DataError, SfmError
from sfm.harness.context import EvalContext
from sfm.harness.forecast import predict, score_forecasts
from sfm.harness.results import TaskResult
from sfm.physics.metadata import FieldMeta
from sfm.registry import FAMILIES

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask

#: Guards the drift's denominator against an all-zero field (relative to the mean scale over examples).
SCALE_EPS = 1e-12


@FAMILIES.register(
    "consistency",
    answers="forecast",
    needs_data=True,
    description="rollouts scored for conservation drift and PDE residual beside the forecast errors",
)
def run(
    task: EvalTask, loaded: Any, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run a consistency task: the forecast scores plus drift and residual of every predictor."""
    f = predict(task, loaded, ctx, [0.0])
    result, rows, examples = score_forecasts(task, f, ctx)
    result.extra["consistency"] = consistency_scores(f.fs, f.pooled(), f.targets, f.fieldset.meta, f.fmt)
    return result, rows, examples


def consistency_scores(
    fs: Any, rollouts: dict[str, Any], targets: np.ndarray, meta: FieldMeta, fmt: Any
) -> dict:
    """Conservation drift and PDE residual of every predictor and of the truth.

    Args:
        fs: The :class:`~sfm.harness.forecast_set.ForecastSet` (its ``contexts`` ``[N, k, C, *space]`` and
            per-example ``coefficients``).
        rollouts: Predictor name -> :class:`~sfm.harness.rollout.Rollout` (``frames`` ``[N, F, C, *space]``).
        targets: True frames ``[N, F, C, *space]`` (N may be a multiple of ``len(fs)``: examples repeated).
        meta: The data set's metadata (stored grid; the simulator is ``meta.source``'s).
        fmt: The task format (``space_stride``, ``dt(meta)``).

    Returns:
        JSON-ready dict: ``available``, and where available ``simulator``, ``equation``, ``grid``,
        ``conservation`` ({quantity: {predictor: {"mean", "curve"}}}), ``residual``
        ({predictor: {"rms", "relative", "curve"}} or None) and ``notes``; NaN values are None.
    """
    sim, reason = _simulator(meta)
    if sim is None:
        return {"available": False, "reason": reason}
    n, n_pred = targets.shape[0], targets.shape[1]
    reps = max(1, n // len(fs))
    contexts = np.tile(np.asarray(fs.contexts, dtype=np.float64), (reps,) + (1,) * (targets.ndim - 1))[:n]
    k = contexts.shape[1]
    notes: list[str] = []
    grid = model_grid(meta, fmt, targets.shape[3:], k + n_pred, notes)
    coeffs = _coefficients(sim, (list(fs.coefficients) * reps)[:n])
    frames = {"truth": targets, **{p: r.frames for p, r in rollouts.items()}}
    full = {p: np.concatenate([contexts, np.asarray(f, dtype=np.float64)], axis=1) for p, f in frames.items()}
    return {
        "available": True,
        "simulator": sim.name,
        "equation": meta.equation,
        "grid": {"dt": grid.dt, **{f"d{a}": grid.spacing(a) for a in grid.spatial_axes}},
        "context_frames": k,
        "predicted_frames": n_pred,
        "conservation": _conservation(sim, full, grid, coeffs, k, notes),
        "residual": _residual(sim, full, grid, coeffs, k, notes),
        "notes": notes,
    }


def model_grid(
    meta: FieldMeta, fmt: Any, space: tuple[int, ...], n_frames: int, notes: list[str]
) -> FieldMeta:
    """``meta`` with the coordinates of the grid the model sees: every ``space_stride``-th point, frames
    ``fmt.dt(meta)`` apart (``n_frames`` of them)."""
    stride = int(getattr(fmt, "space_stride", 1))
    dt = float(fmt.dt(meta)) if hasattr(fmt, "dt") else float(meta.dt or 0.0)
    coords: dict[str, list[float]] = {"t": (np.arange(n_frames) * dt).tolist()}
    for axis, size in zip(meta.spatial_axes, space):
        full = meta.coords[axis]
        coords[axis] = list(full[::stride])
        if len(coords[axis]) != size:
            raise DataError(
                f"consistency: {axis} has {size} points on the model's grid, but {len(full)} stored points "
                f"subsampled by space_stride={stride} give {len(coords[axis])}"
            )
        if meta.boundary_conditions.get(axis) == "periodic" and len(full) % stride:
            notes.append(
                f"{axis}: {len(full)} points are not a multiple of space_stride={stride}, so the model's grid is "
                "not uniform across the periodic boundary; spectral derivatives there are approximate"
            )
    return meta.replace(coords=coords)


def _simulator(meta: FieldMeta) -> tuple[Any, str]:
    from sfm.physics.simulators import get_simulator
    from sfm.registry import SIMULATORS

    src = meta.source or {}
    name = src.get("name")
    if src.get("kind") != "generator" or name not in SIMULATORS:
        return None, f"{meta.family} was not generated by an sfm simulator, whose equations the scores need"
    known = SIMULATORS.get(name).params
    params = {k: v for k, v in src.get("params", {}).items() if k in known}
    try:
        # strict=False: the data set's settings were accepted when it was generated; nothing is solved here.
        return get_simulator(name, strict=False, **params), ""
    except SfmError as exc:
        return None, f"cannot rebuild the {name} simulator from the metadata: {exc}"


def _coefficients(sim: Any, per_example: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Each physical coefficient every example states, as ``[N]``."""
    names = [k for k in sim.params if k not in sim.settings]
    return {k: np.array([c[k] for c in per_example], dtype=np.float64) for k in names
            if per_example and all(k in c for c in per_example)}  # fmt: skip


def _fields(arr: np.ndarray, meta: FieldMeta) -> dict[str, np.ndarray]:
    return {f: arr[:, :, c] for c, f in enumerate(meta.fields)}


def _integrate(density: np.ndarray, grid: FieldMeta) -> np.ndarray:
    cell = float(np.prod([grid.spacing(a) for a in grid.spatial_axes]))
    return density.sum(axis=tuple(range(2, density.ndim))) * cell


def _conservation(
    sim: Any,
    full: dict[str, np.ndarray],
    grid: FieldMeta,
    coeffs: dict[str, np.ndarray],
    k: int,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    """Drift of each conserved quantity from frame ``k - 1`` (the last context frame), per predictor."""
    per_pred = {
        p: sim.conserved_densities(_fields(arr[:, k - 1 :], grid), grid, coeffs) for p, arr in full.items()
    }
    truth = per_pred["truth"]
    if not truth:
        notes.append(f"{sim.name} conserves no quantity on its domain (no conservation drift)")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, dens in truth.items():
        scale = _integrate(np.abs(dens[:, :1]), grid)[:, 0]  # S(t_0), shared: t_0 is a context frame
        denom = scale + SCALE_EPS * max(float(np.mean(scale)), np.finfo(float).tiny)
        out[name] = {}
        for p, d in per_pred.items():
            q = _integrate(d[name], grid)
            drift = np.abs(q[:, 1:] - q[:, :1]) / denom[:, None]  # [N, F]
            curve = drift.mean(axis=0)
            out[name][p] = {"mean": _num(curve.mean()), "curve": [_num(v) for v in curve]}
    return out


def _residual(
    sim: Any,
    full: dict[str, np.ndarray],
    grid: FieldMeta,
    coeffs: dict[str, np.ndarray],
    k: int,
    notes: list[str],
) -> dict[str, dict[str, Any]] | None:
    """RMS residual over the predicted frames each central difference reaches, relative to the truth's."""
    n_pred = full["truth"].shape[1] - k
    if n_pred < 2:
        notes.append(
            "the residual needs at least 2 predicted frames (a central difference needs both neighbours)"
        )
        return None
    res: dict[str, np.ndarray] = {}
    for p, arr in full.items():
        try:
            r = sim.residual(_fields(arr, grid), grid, coeffs)
        except SfmError as exc:
            notes.append(f"no PDE residual: {exc}")
            return None
        res[p] = r[:, k - 1 :].reshape(r.shape[0], n_pred - 1, -1)  # frames k .. k+F-2
    ref_curve = np.sqrt(np.mean(res["truth"] ** 2, axis=(0, 2)))
    ref = float(np.sqrt(np.mean(res["truth"] ** 2)))
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero reference residual reads None
        for p, r in res.items():
            rms = float(np.sqrt(np.mean(r**2)))
            curve = np.sqrt(np.mean(r**2, axis=(0, 2))) / ref_curve
            out[p] = {"rms": _num(rms), "relative": _num(rms / ref), "curve": [_num(v) for v in curve]}
    return out


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
