"""The examples of the forecast families: windows of held-out trajectories on the grid the model sees.

An example is ``context_frames`` frames in and ``rollout_steps * horizon`` frames out, cut from the
evaluation split deterministically (in row order, starts evenly spaced), with the PDE coefficients of its
trajectory and what the baselines may know (:class:`~sfm.harness.baselines.RolloutInfo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.harness.baselines import RolloutInfo, training_mean

# The training-mean baseline is estimated from at most this many training trajectories (plenty for a mean
# field, and it bounds the load for large data sets).
_MEAN_TRAJECTORIES = 256


@dataclass
class ForecastSet:
    """Windows of held-out trajectories on the grid the model sees.

    Attributes:
        contexts: ``[N, k, C, *space]``.
        targets: ``[N, F, C, *space]`` with ``F = rollout_steps * horizon``.
        coefficients: Per example, the PDE coefficients.
        trajectory: Per example, the row index in its split. start: Its first context frame.
        info: What the baselines may know.
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
    """Cut the split's trajectories into evaluation windows (deterministic: in row order, evenly spaced).

    Raises:
        ConfigError: trajectories too short for one window.
    """
    meta = fieldset.meta
    ds = fieldset.split(split)
    k, n_out = fmt.context_frames, rollout_steps * fmt.horizon
    contexts, targets, coeffs, traj_ids, starts = [], [], [], [], []
    for i in range(len(ds)):
        if limit is not None and len(contexts) >= limit:
            break
        row = ds[i]
        traj = fmt.trajectory(row, meta)
        last = traj.shape[0] - k - n_out
        if last < 0:
            raise ConfigError(
                f"trajectories have {traj.shape[0]} frames, fewer than context_frames + rollout_steps * horizon "
                f"= {k + n_out}"
            )
        n_win = last + 1 if windows_per_trajectory is None else min(windows_per_trajectory, last + 1)
        for s in np.unique(np.linspace(0, last, n_win).round().astype(int)):
            if limit is not None and len(contexts) >= limit:
                break
            contexts.append(traj[s : s + k])
            targets.append(traj[s + k : s + k + n_out])
            coeffs.append(fmt.coefficients(row, meta))
            traj_ids.append(i)
            starts.append(int(s))
    if not contexts:
        raise DataError(f"{meta.family}: the {split} split has no trajectories to evaluate")
    info = RolloutInfo(
        meta=meta,
        dt=fmt.dt(meta),
        space_stride=fmt.space_stride,
        coefficients=coeffs,
        train_mean=_train_mean(fieldset, fmt),
    )
    return ForecastSet(
        np.stack(contexts), np.stack(targets), coeffs, np.array(traj_ids), np.array(starts), info
    )


def _train_mean(fieldset: Any, fmt: Any) -> np.ndarray:
    """Training-split mean field ``[C, *space]`` on the model's grid (the ``mean`` baseline)."""
    meta, train = fieldset.meta, fieldset.split("train")
    rows = [fmt.trajectory(train[j], meta) for j in range(min(len(train), _MEAN_TRAJECTORIES))]
    arrays = {f: np.stack([r[:, c] for r in rows]) for c, f in enumerate(meta.fields)}
    return training_mean(arrays, meta.fields)


def coefficient_matrix(coeffs: list[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """The windows' PDE coefficients as ``(sorted names, [N, P] float64)``: the order field models take.

    Raises:
        DataError: the windows do not all state the same coefficients.
    """
    names = sorted(coeffs[0]) if coeffs else []
    for i, c in enumerate(coeffs):
        if sorted(c) != names:
            raise DataError(f"window {i} states coefficients {sorted(c)}, window 0 states {names}")
    return names, np.array([[float(c[k]) for k in names] for c in coeffs], dtype=np.float64).reshape(
        len(coeffs), len(names)
    )
