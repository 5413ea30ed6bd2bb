"""Forecast windows of a field data set as arrays, for field models (continuous and operator).

The token path turns every window into a prompt; field models want the numbers themselves. A
:class:`FieldWindows` holds one split as ONE preloaded float32 array ``[N_traj, T', C, *space']`` on the grid
the model sees (``time_stride`` and ``space_stride`` of the ``forecast`` format applied once, at load) and an
index of ``(trajectory, start)`` pairs: windows are never materialized, a window is a view and a batch is one
fancy-indexing gather. The windows are the ones the token path trains on (same per-trajectory start
sampling) or, with ``even=True``, the ones the forecast eval tasks score (``build_forecast_set``), so a field
model trains and is scored on the same cut of the data as every other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.physics.metadata import FieldMeta


@dataclass
class FieldWindows:
    """Forecast windows of one split (module docstring).

    Attributes:
        data: ``[N_traj, T', C, *space']`` float32, every trajectory of the split.
        index: ``[N_windows, 2]`` int64 ``(trajectory, start)`` pairs.
        coefficients: ``[N_traj, P]`` float32, columns ordered as ``coefficient_names`` (sorted).
        coefficient_names: The PDE coefficients, sorted by name.
        context_frames: Frames in (k). target_frames: Frames out per window (``rollout_steps * horizon``).
        meta: The data set's metadata.
    """

    data: np.ndarray
    index: np.ndarray
    coefficients: np.ndarray
    coefficient_names: list[str]
    context_frames: int
    target_frames: int
    meta: FieldMeta

    @classmethod
    def from_split(
        cls,
        split: Any,
        meta: FieldMeta,
        fmt: Any,
        *,
        rollout_steps: int = 1,
        even: bool = False,
        windows_per_trajectory: int | None = None,
        seed: int = 0,
        max_windows: int | None = None,
    ) -> FieldWindows:
        """Windows of a split (a ``datasets.Dataset`` of trajectories) under a ``forecast`` format ``fmt``.

        Args:
            split: The split.
            meta: Its metadata.
            fmt: A :class:`~sfm.tasks.forecast.Forecast` (context frames, horizon, strides).
            rollout_steps: Target frames per window are ``rollout_steps * horizon``.
            even: Evenly spaced starts, as the eval tasks cut them (``windows_per_trajectory`` per
                trajectory, None: every start); otherwise the training starts of ``fmt.starts`` drawn with
                each trajectory's generator ``default_rng([seed, row])``, as the token path draws them.
            windows_per_trajectory: With ``even``, the windows per trajectory.
            seed: Seeds the training-start draw and the ``max_windows`` subset.
            max_windows: Keep a seeded random subset of at most this many windows.

        Raises:
            DataError: a steady data set, or no rows. ConfigError: too few frames for one window.
        """
        if meta.steady:
            raise DataError(f"field windows need a time-dependent data set; {meta.family} is steady")
        if len(split) == 0:
            raise DataError(f"{meta.family}: the split has no trajectories")
        data = load_trajectories(split, meta, fmt.time_stride, fmt.space_stride)
        names, coefficients = load_coefficients(split, meta)
        k, n_out = fmt.context_frames, rollout_steps * fmt.horizon
        index = _index(data.shape[0], data.shape[1], fmt, k, n_out, even, windows_per_trajectory, seed)
        if max_windows is not None and index.shape[0] > max_windows:
            keep = np.random.default_rng(seed).choice(index.shape[0], size=max_windows, replace=False)
            index = index[np.sort(keep)]
        return cls(data, index, coefficients, names, k, n_out, meta)

    @property
    def space(self) -> tuple[int, ...]:
        """The grid the model sees."""
        return tuple(self.data.shape[3:])

    @property
    def n_fields(self) -> int:
        return int(self.data.shape[2])

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Window ``i`` as views: ``context [k, C, *S]``, ``coefficients [P]``, ``target [F, C, *S]``."""
        t, s = (int(v) for v in self.index[i])
        k = self.context_frames
        return {
            "context": self.data[t, s : s + k],
            "coefficients": self.coefficients[t],
            "target": self.data[t, s + k : s + k + self.target_frames],
        }

    def batch(self, indices: Any) -> dict[str, np.ndarray]:
        """Windows ``indices`` stacked (leading batch axis) by one gather per array."""
        idx = self.index[np.asarray(indices, dtype=np.int64)]
        frames = idx[:, 1:2] + np.arange(self.context_frames + self.target_frames)
        block = self.data[idx[:, :1], frames]  # [B, k + F, C, *S]
        return {
            "context": block[:, : self.context_frames],
            "coefficients": self.coefficients[idx[:, 0]],
            "target": block[:, self.context_frames :],
        }

    def trajectory_of(self, i: int) -> tuple[int, int]:
        """``(trajectory row, start frame)`` of window ``i`` (names a bad batch in error messages)."""
        t, s = self.index[i]
        return int(t), int(s)


def load_trajectories(split: Any, meta: FieldMeta, time_stride: int = 1, space_stride: int = 1) -> np.ndarray:
    """Every trajectory of a split as one float32 array ``[N, T', C, *space']`` (strides applied).

    Each field column is read once through the numpy format (one Arrow -> numpy conversion, no per-row
    Python objects) and written, subsampled, into its channel of the preallocated output.
    """
    ds = split.with_format("numpy")
    shape = meta.field_shapes.get(meta.fields[0]) if meta.field_shapes else None
    out = None
    for c, name in enumerate(meta.fields):
        col = np.asarray(ds.select_columns([name])[:][name], dtype=np.float32)
        if shape is not None and list(col.shape[1:]) != list(meta.field_shapes.get(name, shape)):
            raise DataError(f"field {name!r} has trajectories {list(col.shape[1:])}, metadata says {shape}")
        sub = col[
            (slice(None), slice(None, None, time_stride))
            + (slice(None, None, space_stride),) * (col.ndim - 2)
        ]
        if out is None:
            out = np.empty((sub.shape[0], sub.shape[1], len(meta.fields), *sub.shape[2:]), dtype=np.float32)
        out[:, :, c] = sub
    return out


def load_coefficients(split: Any, meta: FieldMeta) -> tuple[list[str], np.ndarray]:
    """The PDE coefficients of every trajectory, as ``Forecast.coefficients`` gives them for one row:
    the data set's fixed numeric ones plus the varying columns. Returns ``(sorted names, [N, P] float32)``."""
    n = len(split)
    values = {k: np.full(n, float(v)) for k, v in meta.coefficients.items() if isinstance(v, int | float)}
    for name in meta.varying:
        if name in split.column_names:
            values[name] = split.select_columns([name]).with_format("arrow")[:][name].to_numpy()
    names = sorted(values)
    arr = np.stack([np.asarray(values[k], dtype=np.float64) for k in names], axis=1) if names else None
    return names, (arr if arr is not None else np.zeros((n, 0))).astype(np.float32)


def _index(
    n_traj: int,
    n_frames: int,
    fmt: Any,
    k: int,
    n_out: int,
    even: bool,
    windows_per_trajectory: int | None,
    seed: int,
) -> np.ndarray:
    """``[N_windows, 2]`` (trajectory, start) pairs, in trajectory order."""
    if even:
        last = n_frames - k - n_out
        if last < 0:
            raise ConfigError(
                f"trajectories have {n_frames} frames, fewer than context_frames + rollout_steps * horizon "
                f"= {k + n_out}"
            )
        n_win = last + 1 if windows_per_trajectory is None else min(windows_per_trajectory, last + 1)
        starts = [np.unique(np.linspace(0, last, n_win).round().astype(int))] * n_traj
    else:
        starts = [fmt.starts(n_frames, np.random.default_rng([seed, i])) for i in range(n_traj)]
    traj = np.concatenate([np.full(len(s), i) for i, s in enumerate(starts)])
    return np.stack([traj, np.concatenate(starts)], axis=1).astype(np.int64)


def field_stats(windows: FieldWindows, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-field ``(mean [C], std [C])`` over every frame and grid point of the split (float64 accumulation,
    two passes over chunks of trajectories, so no float64 copy of the whole split is made)."""
    data = windows.data
    axes = (0, 1, *range(3, data.ndim))
    count = data.size // data.shape[2]
    total = np.zeros(data.shape[2])
    for a in range(0, data.shape[0], chunk):
        total += data[a : a + chunk].sum(axis=axes, dtype=np.float64)
    mean = total / count
    sq = np.zeros(data.shape[2])
    shape = (1, 1, -1) + (1,) * (data.ndim - 3)
    for a in range(0, data.shape[0], chunk):
        sq += ((data[a : a + chunk].astype(np.float64) - mean.reshape(shape)) ** 2).sum(axis=axes)
    return mean, np.sqrt(sq / count)


def coefficient_stats(windows: FieldWindows) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient ``(mean [P], std [P])`` over the split's trajectories."""
    c = windows.coefficients.astype(np.float64)
    return c.mean(axis=0), c.std(axis=0)


__all__ = ["FieldWindows", "coefficient_stats", "field_stats", "load_coefficients", "load_trajectories"]
