"""``forecast``: k context frames and the PDE's coefficients -> the next m frames.

Prompt (text, then field tokens)::

    burgers nu=0.01 dt=0.05 predict 1: <|scale|> s <|frame|> v v v ... <|frame|> v v v ...

Completion: ``<|frame|> v v v ... <eos>``. Scales come from the context frames (per field) and also encode
the target, so a model's output decodes to absolute values with the scales of its own prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.physics.metadata import FieldMeta
from sfm.registry import TASK_FORMATS
from sfm.tasks.base import Encoded, as_channels, fmt_number
from sfm.tokenize.fields import DecodedFrames
from sfm.tokenize.vocab import ScienceTokenizer


@TASK_FORMATS.register("forecast", description="k context frames + coefficients -> next m frames")
@dataclass
class Forecast:
    """Next-frames forecasting of a field data set.

    Args:
        context_frames: Frames shown in the prompt (k).
        horizon: Frames to predict (m).
        time_stride: Keep every n-th stored frame (the model's time step is ``time_stride * dt``).
        space_stride: Keep every n-th grid point along each spatial axis.
        windows_per_trajectory: Training windows drawn per trajectory (None: every start frame).
        include_coefficients: Write the trajectory's coefficients into the prompt.
    """

    context_frames: int = 2
    horizon: int = 1
    time_stride: int = 1
    space_stride: int = 1
    windows_per_trajectory: int | None = None
    include_coefficients: bool = True

    name = "forecast"

    def __post_init__(self) -> None:
        for key in ("context_frames", "horizon", "time_stride", "space_stride", "windows_per_trajectory"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"forecast: {key} must be >= 1, got {value}")

    # ---- data ---------------------------------------------------------------------------------------------
    def trajectory(self, row: dict[str, Any], meta: FieldMeta) -> np.ndarray:
        """A row's fields subsampled as ``[T', C, *space']`` (the grid the model sees)."""
        if meta.steady:
            raise DataError(
                f"forecast needs a time-dependent data set; {meta.family} is steady (no 't' coordinate)"
            )
        traj = as_channels(row, meta.fields)
        sl = (slice(None, None, self.time_stride), slice(None)) + (slice(None, None, self.space_stride),) * (
            traj.ndim - 2
        )
        return traj[sl]

    def dt(self, meta: FieldMeta) -> float:
        """Time between the frames the model sees."""
        return float(meta.dt or 0.0) * self.time_stride

    def starts(self, n_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Start frames of training windows in a trajectory of ``n_frames`` frames."""
        last = n_frames - self.context_frames - self.horizon
        if last < 0:
            raise ConfigError(
                f"forecast: trajectories have {n_frames} frames after time_stride={self.time_stride}, fewer than "
                f"context_frames + horizon = {self.context_frames + self.horizon}"
            )
        all_starts = np.arange(last + 1)
        if self.windows_per_trajectory is None or self.windows_per_trajectory >= all_starts.size:
            return all_starts
        rng = rng or np.random.default_rng(0)
        return np.sort(rng.choice(all_starts, size=self.windows_per_trajectory, replace=False))

    def coefficients(self, row: dict[str, Any], meta: FieldMeta) -> dict[str, float]:
        """Coefficients of a row: the data set's fixed ones plus the row's varying ones."""
        out = {k: float(v) for k, v in meta.coefficients.items() if isinstance(v, int | float)}
        out.update({k: float(np.asarray(row[k])) for k in meta.varying if k in row})
        return out

    # ---- tokens -------------------------------------------------------------------------------------------
    def prompt_text(self, meta: FieldMeta, coefficients: dict[str, float]) -> str:
        parts = [meta.family]
        if self.include_coefficients:
            parts += [f"{k}={fmt_number(v)}" for k, v in sorted(coefficients.items())]
        parts.append(f"dt={fmt_number(self.dt(meta))}")
        parts.append(f"predict {self.horizon}:")
        return " ".join(parts)

    def prompt(
        self, context: np.ndarray, meta: FieldMeta, coefficients: dict[str, float], sci: ScienceTokenizer
    ) -> tuple[list[int], np.ndarray]:
        """Prompt ids for context frames ``[k, C, *space]``; returns ``(ids, scales)``."""
        local, scales = sci.codec.encode_block(context)
        ids = sci.text(self.prompt_text(meta, coefficients) + " ") + sci.to_global(local).tolist()
        return ids, scales

    def completion(self, target: np.ndarray, scales: np.ndarray, sci: ScienceTokenizer) -> list[int]:
        """Completion ids for target frames ``[m, C, *space]`` (ends with EOS)."""
        return [*sci.to_global(sci.codec.encode_frames(target, scales)).tolist(), sci.eos_id]

    def encode(
        self,
        traj: np.ndarray,
        start: int,
        meta: FieldMeta,
        coefficients: dict[str, float],
        sci: ScienceTokenizer,
    ) -> Encoded:
        """One training example: the window starting at ``start`` of a subsampled trajectory."""
        k, m = self.context_frames, self.horizon
        if not 0 <= start <= traj.shape[0] - k - m:
            raise DataError(
                f"forecast: window start {start} out of range for {traj.shape[0]} frames (k={k}, m={m})"
            )
        prompt, scales = self.prompt(traj[start : start + k], meta, coefficients, sci)
        completion = self.completion(traj[start + k : start + k + m], scales, sci)
        return Encoded(prompt, completion, {"start": int(start), "scales": scales.tolist()})

    def training_examples(
        self, row: dict[str, Any], meta: FieldMeta, sci: ScienceTokenizer, rng: np.random.Generator
    ) -> list[Encoded]:
        """Every training window of one trajectory (or ``windows_per_trajectory`` drawn with ``rng``)."""
        traj = self.trajectory(row, meta)
        coefficients = self.coefficients(row, meta)
        return [self.encode(traj, int(s), meta, coefficients, sci) for s in self.starts(traj.shape[0], rng)]

    def texts(self, row: dict[str, Any], meta: FieldMeta) -> list[str]:
        """The plain text this task writes for a row (to train a tiny backbone's tokenizer)."""
        return [self.prompt_text(meta, self.coefficients(row, meta))]

    def completion_length(
        self, space_shape: tuple[int, ...], sci: ScienceTokenizer, horizon: int | None = None
    ) -> int:
        """Tokens in a completion of ``horizon`` frames, EOS included."""
        return (horizon or self.horizon) * sci.codec.frame_length(space_shape) + 1

    def parse(
        self,
        completion: list[int] | np.ndarray,
        space_shape: tuple[int, ...],
        scales: np.ndarray,
        sci: ScienceTokenizer,
        horizon: int | None = None,
    ) -> DecodedFrames:
        """Decode a generated completion into ``[m, C, *space]`` frames and a validity mask."""
        ids = np.asarray(completion, dtype=np.int64)
        eos = np.flatnonzero(ids == sci.eos_id)
        if eos.size:
            ids = ids[: eos[0]]
        return sci.codec.decode_frames(sci.to_local(ids), horizon or self.horizon, space_shape, scales)

    def allowed_tokens(
        self, space_shape: tuple[int, ...], sci: ScienceTokenizer, horizon: int | None = None
    ) -> list[np.ndarray]:
        """Backbone ids allowed at each completion position (structure forced, values free), EOS last."""
        local = sci.codec.token_classes(horizon or self.horizon, space_shape)
        return [sci.to_global(a) for a in local] + [np.array([sci.eos_id])]
