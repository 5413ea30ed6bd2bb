"""Predictors rolled out on a forecast set: token models, field models (arrays) and baselines.

Every rollout is autoregressive: each step's predicted frames become the next step's context. A token model
writes its frames as tokens that are decoded (an invalid output is replaced by the persistence frame so the
rollout continues, and ``valid`` records it); a field model (continuous or operator: anything with
``predict_frames``, see :class:`FieldPredictor`) returns arrays, batched over all windows at once, and is
always valid. Model rollouts shard their windows across processes under ``accelerate launch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.harness.baselines import get_baseline
from sfm.harness.forecast_set import ForecastSet, coefficient_matrix
from sfm.harness.scoring import sharded


class FieldPredictor(Protocol):
    """What the harness needs of a continuous or operator model (duck-typed: ``predict_frames``)."""

    kind: str  # "continuous" | "operator"
    context_frames: int  # k
    horizon: int  # h frames predicted per call

    def predict_frames(self, contexts: np.ndarray, coefficients: np.ndarray, batch_size: int) -> np.ndarray:
        """Contexts ``[N, k, C, *space]`` (physical units) and coefficients ``[N, P]`` (sorted names) ->
        next frames ``[N, h, C, *space]``."""
        ...


def is_field_predictor(loaded: Any) -> bool:
    """True for a model that predicts arrays (no tokens, no decoding)."""
    return hasattr(loaded, "predict_frames")


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
    coefficients: list[dict[str, float]] | None = None,
) -> Rollout:
    """Autoregressive rollout of a token model from ``contexts`` ``[N, k, C, *space]``.

    ``coefficients`` are the examples' PDE coefficients (default: ``fs.coefficients``, one per context).
    Invalid (frame, field) outputs are replaced by the persistence frame before they become context, so a
    rollout always continues; ``valid`` records which outputs the model itself produced.
    """
    from sfm.harness import generate as gen  # attribute access: tests replace gen.generate

    sci, meta = loaded.sci, fs.info.meta
    coefficients = fs.coefficients if coefficients is None else coefficients
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
            ids, sc = fmt.prompt(window[i], meta, coefficients[i], sci)
            prompts.append(ids)
            scales.append(sc)
        outs = gen.generate(loaded, prompts, max_new_tokens=max_new, allowed=allowed, batch_size=batch_size)
        dec = [fmt.parse(o, space, scales[i], sci) for i, o in enumerate(outs)]
        step = np.stack([d.values for d in dec])  # [N, h, C, *space]
        valid = np.stack([d.valid for d in dec])  # [N, h, C]
        fallback = np.repeat(window[:, -1:], h, axis=1)
        step = np.where(valid.reshape(valid.shape + (1,) * len(space)), step, fallback)
        frames.append(step)
        valids.append(valid)
        comps.append(outs)
        history = np.concatenate([history, step], axis=1)
    return Rollout(np.concatenate(frames, axis=1), np.concatenate(valids, axis=1), comps)


def array_rollout(
    predictor: FieldPredictor,
    contexts: np.ndarray,
    coefficients: np.ndarray,
    rollout_steps: int,
    *,
    batch_size: int,
) -> Rollout:
    """Autoregressive rollout of a field model, all windows in one ``predict_frames`` call per step.

    Args:
        predictor: The model; each call sees the last ``predictor.context_frames`` frames.
        contexts: ``[N, k, C, *space]`` in physical units.
        coefficients: ``[N, P]``, columns in sorted-name order (:func:`coefficient_matrix`).
        rollout_steps: Calls; the rollout has ``rollout_steps * predictor.horizon`` frames.
        batch_size: Passed to ``predict_frames`` (windows per forward pass).

    Returns:
        Frames ``[N, rollout_steps * h, C, *space]`` (float64), all valid: arrays need no decoding.

    Raises:
        ConfigError: fewer context frames than the model takes. DataError: output of the wrong shape.
    """
    k, h = int(predictor.context_frames), int(predictor.horizon)
    history = np.asarray(contexts, dtype=np.float64)
    if history.shape[1] < k:
        raise ConfigError(f"the model takes {k} context frames; the examples have {history.shape[1]}")
    want = (history.shape[0], h, *history.shape[2:])
    frames = []
    for _ in range(rollout_steps):
        step = np.asarray(predictor.predict_frames(history[:, -k:], coefficients, batch_size))
        if step.shape != want:
            raise DataError(
                f"{predictor.kind} model: predict_frames returned shape {step.shape}, expected {want}"
            )
        frames.append(step.astype(np.float64))
        history = np.concatenate([history[:, -k:], frames[-1]], axis=1)  # only the frames the next step reads
    out = np.concatenate(frames, axis=1)
    return Rollout(out, np.ones(out.shape[:3], dtype=bool))


def predictor_rollout(
    loaded: Any,
    fmt: Any,
    fs: ForecastSet,
    contexts: np.ndarray,
    rollout_steps: int,
    *,
    batch_size: int,
    constrained: bool,
    state: Any = None,
) -> Rollout:
    """The trained model's rollout (token or array path), windows split across processes and gathered."""
    if is_field_predictor(loaded):
        coef = coefficient_matrix(fs.coefficients)[1]

        def part(idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
            r = array_rollout(loaded, contexts[idx], coef[idx], rollout_steps, batch_size=batch_size)
            return list(zip(r.frames, r.valid))
    else:

        def part(idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
            r = model_rollout(
                loaded,
                fmt,
                fs,
                contexts[idx],
                rollout_steps,
                batch_size=batch_size,
                constrained=constrained,
                coefficients=[fs.coefficients[i] for i in idx],
            )
            return list(zip(r.frames, r.valid))

    pieces = sharded(part, contexts.shape[0], state)
    return Rollout(np.stack([p[0] for p in pieces]), np.stack([p[1] for p in pieces]))


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


def keep_valid(rollouts: dict[str, Rollout], model_key: str | None) -> np.ndarray:
    """Examples whose model outputs all decoded (for ``invalid: drop``)."""
    if model_key is None or model_key not in rollouts:
        n = next(iter(rollouts.values())).frames.shape[0]
        return np.ones(n, dtype=bool)
    v = rollouts[model_key].valid
    return v.reshape(v.shape[0], -1).all(axis=1)
