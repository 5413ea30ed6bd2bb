"""Coefficients and grid settings of a simulator: the :class:`Param` declaration and the check of a value.

A user sets each parameter to a number (fixed for the whole data set) or to ``[low, high]`` (drawn per
trajectory), or a choice (``ic: fourier``) to one of its names; :func:`check_value` turns any of these into the
stored value or one readable :class:`ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sfm.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Param:
    """A coefficient or grid setting of a simulator.

    Attributes:
        default: Default value: a number (fixed) or a ``(low, high)`` pair (drawn per trajectory).
        bounds: Allowed closed interval for any value a user sets (stability or physical limits).
        log: Draw log-uniformly between low and high (for viscosities, diffusivities).
        integer: A grid setting that must be an integer (``nx``, ``nt``); never varied.
        doc: One line saying what it is.
        choices: For a choice (such as the kind of initial condition): the names it may take; ``default``
            is then one of them.
    """

    default: float | tuple[float, float] | str
    bounds: tuple[float, float] = (-np.inf, np.inf)
    log: bool = False
    integer: bool = False
    doc: str = ""
    choices: tuple[str, ...] = ()


def check_value(
    simulator: str, key: str, p: Param, value: Any, *, setting: bool
) -> float | int | tuple[float, float] | str:
    """The stored value of parameter ``key``: a number, an int (``p.integer``), a ``(low, high)`` range or
    (``p.choices``) one of the choice's names.

    Args:
        simulator: The simulator's name, for messages.
        key: The parameter's name.
        p: Its declaration.
        value: What the user set: a number or ``[low, high]``.
        setting: ``key`` is a grid/time setting (never varied per trajectory).

    Raises:
        ConfigError: not a finite number, outside ``p.bounds``, a range for a setting, a malformed range, or
            not one of ``p.choices``.
    """
    if p.choices:
        if not isinstance(value, str) or value not in p.choices:
            raise ConfigError(
                f"{simulator}: {key}={value!r} is not one of {', '.join(p.choices)}"
                f"{did_you_mean(str(value), p.choices)}"
            )
        return value
    lo, hi = p.bounds
    if isinstance(value, list | tuple):
        if p.integer or setting:
            raise ConfigError(f"{simulator}: {key} is a grid setting and cannot vary per trajectory")
        if len(value) != 2:
            raise ConfigError(f"{simulator}: {key} range must be [low, high], got {value!r}")
        a, b = (_number(simulator, key, v) for v in value)
        if not (lo <= a <= b <= hi):
            raise ConfigError(
                f"{simulator}: {key} range [{a}, {b}] must lie within [{lo}, {hi}] and low <= high"
            )
        if p.log and a <= 0:
            raise ConfigError(f"{simulator}: {key} is drawn log-uniformly, so its range must be positive")
        return (a, b) if a != b else a
    v = _number(simulator, key, value)
    if p.integer:
        if v != int(v):
            raise ConfigError(f"{simulator}: {key} must be an integer, got {value!r}")
        v = int(v)
    if not lo <= v <= hi:
        raise ConfigError(f"{simulator}: {key}={v} is outside the allowed range [{lo}, {hi}]")
    return v


def _number(simulator: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{simulator}: {key} must be a number, got {value!r}") from None
    if not np.isfinite(value):
        raise ConfigError(f"{simulator}: {key} must be finite, got {value!r}")
    return float(value)
