"""Checks of what the evaluation harness hands a simulator: stored fields, per-trajectory coefficients, times.

:meth:`~sfm.physics.simulators.base.Simulator.evolve`, ``conserved`` and ``residual`` take arrays produced
elsewhere (a model's rollout, an imported file), so each input is checked here first and every failure is
one readable :class:`DataError` or :class:`ConfigError` naming the simulator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError, did_you_mean
from sfm.physics.metadata import FieldMeta
from sfm.physics.simulators.params import Param


class Coefficients(dict):
    """Per-trajectory coefficients ``{name: [n]}`` handed to a solver; reading a varying coefficient that the
    caller did not give raises a :class:`ConfigError` naming it (only the quantities that need it fail)."""

    def __init__(self, simulator: str) -> None:
        super().__init__()
        self.simulator = simulator

    def __missing__(self, key: str) -> np.ndarray:
        raise ConfigError(
            f"{self.simulator}: coefficient {key!r} varies per trajectory; pass its [n] values in coeffs"
        )


def trajectory_coefficients(
    simulator: str,
    params: dict[str, Param],
    physical: list[str],
    values: dict[str, Any],
    coeffs: dict,
    n: int,
) -> Coefficients:
    """Every physical coefficient as ``[n]`` float64: given ones checked, fixed ones filled in.

    Args:
        simulator: The simulator's name, for messages.
        params: Its parameter declarations (for the bounds).
        physical: The names of its physical coefficients (not grid settings).
        values: Its stored values: a number (fixed) or a ``(low, high)`` range (varying).
        coeffs: Given coefficients ``{name: number or [n]}``.
        n: Number of trajectories.

    Returns:
        A :class:`Coefficients` in which a varying coefficient that was not given raises when read.
    """
    out = Coefficients(simulator)
    for key, value in coeffs.items():
        if key not in physical:
            raise ConfigError(
                f"{simulator}: unknown coefficient {key!r}{did_you_mean(key, physical)}; "
                f"coefficients: {', '.join(physical)}"
            )
        try:
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
        except (TypeError, ValueError):
            raise ConfigError(f"{simulator}: coefficient {key} must be a number or [{n}] values") from None
        lo, hi = params[key].bounds
        if not np.all((arr >= lo) & (arr <= hi)):  # NaN fails too
            raise ConfigError(f"{simulator}: coefficient {key} has values outside [{lo}, {hi}] or non-finite")
        out[key] = arr
    for key in physical:
        if key not in out and not isinstance(values[key], tuple):
            out[key] = np.full(n, float(values[key]))
    return out


def checked_fields(
    simulator: str,
    fields: Iterable[str],
    arrays: dict[str, np.ndarray],
    grid: tuple[int, ...],
    *,
    frames: int | None,
    where: str | None,
    finite: bool = False,
) -> dict[str, np.ndarray]:
    """Every one of ``fields`` from ``arrays`` as float64 ``[n, *space]`` (``frames=None``) or
    ``[n, T >= frames, *space]``; unless ``where`` is None, ``space`` must be ``grid`` (``where`` names it).

    Raises:
        DataError: an unknown or missing field, a wrong number of axes, differing ``n``, too few frames,
            another grid, or (``finite``) NaN/inf values.
    """
    fields = tuple(fields)
    for key in arrays:
        if key not in fields:
            raise DataError(f"{simulator}: unknown field {key!r}{did_you_mean(key, fields)}")
    lead = 1 if frames is None else 2
    out: dict[str, np.ndarray] = {}
    for f in fields:
        if f not in arrays:
            raise DataError(f"{simulator}: field {f!r} is missing; fields: {', '.join(fields)}")
        arr = np.asarray(arrays[f], dtype=np.float64)
        n = next(iter(out.values())).shape[0] if out else (arr.shape[0] if arr.ndim else 0)
        if arr.ndim != lead + len(grid) or arr.shape[0] != n or n == 0 or arr.shape[1] < (frames or 0):
            want = "[n" + (f", T >= {frames}" if frames else "") + f"] + {len(grid)} spatial axes"
            raise DataError(
                f"{simulator}: field {f!r} must be {want} (same n for all), got {list(arr.shape)}"
            )
        if where is not None and arr.shape[lead:] != grid:
            raise DataError(
                f"{simulator}: field {f!r} is on a {list(arr.shape[lead:])} grid, not the {list(grid)} grid of {where}"
            )
        if finite and not np.all(np.isfinite(arr)):
            raise DataError(
                f"{simulator}: field {f!r} has {int(np.sum(~np.isfinite(arr)))} non-finite values"
            )
        out[f] = arr
    return out


def meta_grid(meta: FieldMeta) -> tuple[int, ...]:
    """Points per spatial axis of the grid ``meta`` describes."""
    return tuple(len(meta.coords[a]) for a in meta.spatial_axes)


def check_times(simulator: str, t_out: Any) -> np.ndarray:
    """``t_out`` as float64 ``[nt]``: non-empty, finite, ``> 0`` and non-decreasing, or a :class:`ConfigError`."""
    t = np.asarray(t_out, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] <= 0 or np.any(np.diff(t) < 0):
        raise ConfigError(
            f"{simulator}: t_out must be a non-empty, non-decreasing list of times > 0, got {t_out!r}"
        )
    return t
