"""Forecast-family evaluation: one-step forecasts, autoregressive rollouts, robustness to input noise.

Examples are windows of held-out trajectories: ``context_frames`` frames in, ``rollout_steps * horizon``
frames out. The model rolls out autoregressively (each step's predicted frames become the next step's
context); baselines predict from the same contexts; every predictor is scored on the same examples with the
same metrics, over all predicted frames and over each named time window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.harness.baselines import RolloutInfo, get_baseline, persistence, training_mean
from sfm.harness.results import MetricValue, Scores
from sfm.metrics import aggregate, bootstrap_ci, get_metric


@dataclass
class ForecastSet:
    """Windows of held-out trajectories on the grid the model sees.

    Attributes:
        contexts: ``[N, k, C, *space]``.
        targets: ``[N, F, C, *space]`` with ``F = rollout_steps * horizon``.
        coefficients: Per example, the PDE coefficients.
        trajectory: Per example, the row index in its split. start: Its first context frame.
    """

    contexts: np.ndarray
    targets: np.ndarray
    coefficients: list[dict[str, float]]
    trajectory: np.ndarray
    start: np.ndarray
    info: RolloutInfo

    def __len__(self) -> int:
        return self.contexts.shape[0]


def build_forecast_set(
    fieldset: Any,
    split: str,
    fmt: Any,
    rollout_steps: int,
    *,
    windows_per_trajectory: int | None = None,
    limit: int | None = None,
) -> ForecastSet:
    """Cut the split's trajectories into evaluation windows (deterministic: in row order, evenly spaced)."""
    meta = fieldset.meta
    ds = fieldset.split(split)
    k, h = fmt.context_frames, fmt.horizon
    n_out = rollout_steps * h
    contexts, targets, coeffs, traj_ids, starts = [], [], [], [], []
    for i in range(len(ds)):
        row = ds[i]
        traj = fmt.trajectory(row, meta)
        last = traj.shape[0] - k - n_out
        if last < 0:
            from sfm.errors import ConfigError

            raise ConfigError(
                f"trajectories have {traj.shape[0]} frames, fewer than context_frames + rollout_steps * horizon "
                f"= {k + n_out}"
            )
        n_win = last + 1 if windows_per_trajectory is None else min(windows_per_trajectory, last + 1)
        for s in np.unique(np.linspace(0, last, n_win).round().astype(int)):
            contexts.append(traj[s : s + k])
            targets.append(traj[s + k : s + k + n_out])
            coeffs.append(fmt.coefficients(row, meta))
            traj_ids.append(i)
            starts.append(int(s))
            if limit is not None and len(contexts) >= limit:
                break
        if limit is not None and len(contexts) >= limit:
            break
    train = fieldset.split("train")
    train_arrays = {
        f: np.stack([fmt.trajectory(train[j], meta)[:, c] for j in range(min(len(train), 256))])
        for c, f in enumerate(meta.fields)
    }
    info = RolloutInfo(
        meta=meta,
        dt=fmt.dt(meta),
        space_stride=fmt.space_stride,
        coefficients=coeffs,
        train_mean=training_mean(train_arrays, meta.fields),
    )
    return ForecastSet(
        np.stack(contexts), np.stack(targets), coeffs, np.array(traj_ids), np.array(starts), info
    )


@dataclass
class Rollout:
    """A predictor's output on a forecast set: frames and which (frame, field) outputs decoded."""

    frames: np.ndarray
    valid: np.ndarray
    completions: list[list[list[int]]] = field(default_factory=list)

    @property
    def validity(self) -> float:
        return float(self.valid.mean()) if self.valid.size else 1.0


def model_rollout(
    loaded: Any,
    fmt: Any,
    fs: ForecastSet,
    contexts: np.ndarray,
    rollout_steps: int,
    *,
    batch_size: int,
    constrained: bool,
) -> Rollout:
    """Autoregressive rollout of a trained model from ``contexts`` ``[N, k, C, *space]``.

    Invalid (frame, field) outputs are replaced by the persistence frame before they become context, so a
    rollout always continues; ``valid`` records which outputs the model itself produced.
    """
    from sfm.harness.generate import generate

    sci = loaded.sci
    meta = fs.info.meta
    space = contexts.shape[3:]
    k, h = fmt.context_frames, fmt.horizon
    history = contexts.copy()
    frames, valids, comps = [], [], []
    allowed = fmt.allowed_tokens(space, sci) if constrained else None
    max_new = fmt.completion_length(space, sci)
    for _ in range(rollout_steps):
        window = history[:, -k:]
        prompts, scales = [], []
        for i in range(window.shape[0]):
            ids, sc = fmt.prompt(window[i], meta, fs.coefficients[i], sci)
            prompts.append(ids)
            scales.append(sc)
        outs = generate(loaded, prompts, max_new_tokens=max_new, allowed=allowed, batch_size=batch_size)
        dec = [fmt.parse(o, space, scales[i], sci) for i, o in enumerate(outs)]
        step = np.stack([d.values for d in dec])  # [N, h, C, *space]
        valid = np.stack([d.valid for d in dec])  # [N, h, C]
        fallback = np.repeat(window[:, -1:], h, axis=1)
        mask = valid.reshape(valid.shape + (1,) * len(space))
        step = np.where(mask, step, fallback)
        frames.append(step)
        valids.append(valid)
        comps.append(outs)
        history = np.concatenate([history, step], axis=1)
    return Rollout(np.concatenate(frames, axis=1), np.concatenate(valids, axis=1), comps)


def baseline_rollout(name: str, fs: ForecastSet, contexts: np.ndarray, n_frames: int) -> Rollout:
    """A baseline's frames from ``contexts`` (always valid)."""
    frames = get_baseline(name)(contexts, n_frames, fs.info)
    return Rollout(np.asarray(frames, dtype=np.float64), np.ones(frames.shape[:3], dtype=bool))


def add_noise(contexts: np.ndarray, level: float, seed: int) -> np.ndarray:
    """Gaussian noise of standard deviation ``level`` x each example's per-field standard deviation."""
    if level == 0:
        return contexts
    rng = np.random.default_rng(seed)
    axes = (1, *tuple(range(3, contexts.ndim)))
    std = contexts.std(axis=axes, keepdims=True)
    return contexts + level * std * rng.standard_normal(contexts.shape)


def metric_values(metric: str, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample values of ``metric`` for every field, stacked on a trailing axis (fields averaged last,
    after the sample axis is reduced — PDEBench's channel order)."""
    fn = get_metric(metric)
    return np.stack([np.asarray(fn(pred[:, :, c], target[:, :, c])) for c in range(pred.shape[2])], axis=-1)


def metric_value(metric: str, vals: np.ndarray, n_boot: int, seed: int) -> MetricValue:
    """The reported number of per-sample values ``vals`` of ``metric``, with its bootstrap interval."""
    v = aggregate(metric, vals)
    lo, hi = bootstrap_ci(metric, vals, n_resamples=n_boot, seed=seed) if n_boot else (None, None)
    return MetricValue(_finite(v), _finite(lo), _finite(hi), int(vals.shape[0]))


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def score(
    pred: np.ndarray,
    target: np.ndarray,
    metrics: list[str],
    windows: dict[str, list[int]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    curve_metric: str | None = None,
) -> Scores:
    """Scores of predictions ``[N, F, C, *space]`` against targets: every metric over all frames and per
    window, and the per-frame curve of ``curve_metric``."""
    out = Scores()
    F = pred.shape[1]
    for metric in metrics:
        out.metrics[metric] = metric_value(metric, metric_values(metric, pred, target), n_boot, seed)
    for name, (a, b) in windows.items():
        b = min(b, F)
        if a >= b:
            continue
        out.windows[name] = {
            m: metric_value(m, metric_values(m, pred[:, a:b], target[:, a:b]), n_boot, seed) for m in metrics
        }
    if curve_metric:
        out.curves[curve_metric] = [
            _finite(
                aggregate(curve_metric, metric_values(curve_metric, pred[:, t : t + 1], target[:, t : t + 1]))
            )
            for t in range(F)
        ]
    return out


def keep_valid(rollouts: dict[str, Rollout], model_key: str | None) -> np.ndarray:
    """Examples whose model outputs all decoded (for ``invalid: drop``)."""
    if model_key is None or model_key not in rollouts:
        n = next(iter(rollouts.values())).frames.shape[0]
        return np.ones(n, dtype=bool)
    v = rollouts[model_key].valid
    return v.reshape(v.shape[0], -1).all(axis=1)


__all__ = [
    "ForecastSet",
    "Rollout",
    "add_noise",
    "baseline_rollout",
    "build_forecast_set",
    "keep_valid",
    "metric_value",
    "metric_values",
    "model_rollout",
    "persistence",
    "score",
]
