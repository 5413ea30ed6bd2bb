"""The simulator contract.

A simulator is a class registered in :data:`sfm.registry.SIMULATORS` under its PDE name. It holds the grid
settings and coefficients of one data set and generates trajectories in batches:

    sim = get_simulator("burgers", nu=[1e-3, 1e-1], nx=256)
    cols = sim.generate(trajectory_seeds(seed=0, start=0, stop=64))   # {"u": [64, T, 256], "nu": [64], ...}
    meta = sim.meta()                                                 # FieldMeta

Determinism: trajectory ``j`` of a data set with seed ``S`` uses its own seed ``trajectory_seeds(S)[j]``,
from which its initial condition and varying coefficients are drawn. A trajectory therefore does not depend
on the chunk or process that computed it, and ``seed`` is stored as its provenance column.

Coefficients: each is declared with a :class:`Param` (default value and allowed range). A user sets one to a
number (fixed for the whole data set) or to ``[low, high]`` (drawn per trajectory, log-uniformly where the
Param says so); a varied coefficient becomes a data set column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sfm.errors import ConfigError, did_you_mean
from sfm.physics.metadata import FieldMeta
from sfm.registry import SIMULATORS


@dataclass(frozen=True)
class Param:
    """A coefficient or grid setting of a simulator.

    Attributes:
        default: Default value: a number (fixed) or a ``(low, high)`` pair (drawn per trajectory).
        bounds: Allowed closed interval for any value a user sets (stability or physical limits).
        log: Draw log-uniformly between low and high (for viscosities, diffusivities).
        integer: A grid setting that must be an integer (``nx``, ``nt``); never varied.
        doc: One line saying what it is.
    """

    default: float | tuple[float, float]
    bounds: tuple[float, float] = (-np.inf, np.inf)
    log: bool = False
    integer: bool = False
    doc: str = ""


class Simulator:
    """Base class of the built-in simulators; subclasses fill the class attributes and :meth:`_simulate`."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    equation: ClassVar[str]
    description: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ("u",)
    boundary_conditions: ClassVar[dict[str, str]]
    params: ClassVar[dict[str, Param]]
    #: Names in ``params`` that are grid/time settings rather than physical coefficients.
    settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        self.values: dict[str, Any] = {}
        for key, value in values.items():
            if key not in self.params:
                raise ConfigError(
                    f"{self.name}: unknown parameter {key!r}{did_you_mean(key, self.params)}; "
                    f"parameters: {', '.join(self.params)}"
                )
        for key, p in self.params.items():
            self.values[key] = self._check(key, p, values.get(key, p.default))

    def _check(self, key: str, p: Param, value: Any) -> float | int | tuple[float, float]:
        lo, hi = p.bounds
        if isinstance(value, list | tuple):
            if p.integer or key in self.settings:
                raise ConfigError(f"{self.name}: {key} is a grid setting and cannot vary per trajectory")
            if len(value) != 2:
                raise ConfigError(f"{self.name}: {key} range must be [low, high], got {value!r}")
            a, b = (self._number(key, v) for v in value)
            if not (lo <= a <= b <= hi):
                raise ConfigError(f"{self.name}: {key} range [{a}, {b}] must lie within [{lo}, {hi}] and low <= high")
            if p.log and a <= 0:
                raise ConfigError(f"{self.name}: {key} is drawn log-uniformly, so its range must be positive")
            return (a, b) if a != b else a
        v = self._number(key, value)
        if p.integer:
            if v != int(v):
                raise ConfigError(f"{self.name}: {key} must be an integer, got {value!r}")
            v = int(v)
        if not lo <= v <= hi:
            raise ConfigError(f"{self.name}: {key}={v} is outside the allowed range [{lo}, {hi}]")
        return v

    def _number(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{self.name}: {key} must be a number, got {value!r}") from None
        if not np.isfinite(value):
            raise ConfigError(f"{self.name}: {key} must be finite, got {value!r}")
        return float(value)

    @property
    def varying(self) -> list[str]:
        """Coefficients drawn per trajectory (set to a range)."""
        return [k for k, v in self.values.items() if isinstance(v, tuple)]

    @property
    def fixed(self) -> dict[str, float]:
        """Physical coefficients fixed for the whole data set."""
        return {
            k: v for k, v in self.values.items() if not isinstance(v, tuple) and k not in self.settings
        }

    def draw_coefficients(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw one trajectory's varying coefficients."""
        out = {}
        for key in self.varying:
            lo, hi = self.values[key]
            if self.params[key].log:
                out[key] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            else:
                out[key] = float(rng.uniform(lo, hi))
        return out

    def generate(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        """Generate one trajectory per seed, solved as one batch.

        Args:
            seeds: Trajectory seeds (see :func:`trajectory_seeds`).

        Returns:
            Columns: each field ``[n, time, *space]`` float32, each varying coefficient ``[n]`` float64, and
            ``seed`` ``[n]`` int64.
        """
        seeds = [int(s) for s in seeds]
        rngs = [np.random.default_rng(s) for s in seeds]
        coeffs = [self.draw_coefficients(r) for r in rngs]
        batch = {k: np.array([c[k] for c in coeffs], dtype=np.float64) for k in self.varying}
        fields = self._simulate(rngs, batch)
        out: dict[str, np.ndarray] = {}
        for name in self.fields:
            arr = np.asarray(fields[name], dtype=np.float32)
            if not np.all(np.isfinite(arr)):
                bad = int(np.argmax(~np.isfinite(arr).reshape(len(seeds), -1).all(axis=1)))
                raise ConfigError(
                    f"{self.name}: the solver diverged (non-finite values) for trajectory seed {seeds[bad]} "
                    f"with {self.values}; reduce the time step or the coefficient range"
                )
            out[name] = arr
        out.update(batch)
        out["seed"] = np.asarray(seeds, dtype=np.int64)
        return out

    def _simulate(self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Draw one initial condition per generator and solve all as a batch; ``coeffs`` holds the varying
        coefficients as ``[n]`` arrays (fixed ones are in ``self.values``)."""
        raise NotImplementedError

    def coords(self) -> dict[str, list[float]]:
        """Coordinates of the stored grid (``t`` then spatial axes)."""
        raise NotImplementedError

    def meta(self) -> FieldMeta:
        """The FieldMeta of data sets this simulator generates (statistics and splits filled by the builder)."""
        coords = self.coords()
        shape_space = [len(coords[a]) for a in ("x", "y", "z") if a in coords]
        shape = ([len(coords["t"])] if "t" in coords else [1]) + shape_space
        return FieldMeta(
            family=self.name,
            equation=self.equation,
            description=self.description,
            fields=list(self.fields),
            coords=coords,
            boundary_conditions=dict(self.boundary_conditions),
            coefficients=self.fixed,
            varying=self.varying,
            source={
                "kind": "generator",
                "name": self.name,
                "version": self.version,
                "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.values.items()},
            },
            field_shapes={f: shape for f in self.fields},
        )

    def describe(self) -> str:
        """One line for ``sfm list``."""
        return self.description.split(".")[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.values.items())})"


def trajectory_seeds(seed: int, start: int, stop: int) -> np.ndarray:
    """Seeds of trajectories ``start..stop-1`` of a data set generated with ``seed``.

    Each seed depends only on ``(seed, index)``, so chunking and process count never change the data.
    """
    return np.array(
        [np.random.SeedSequence([seed, j]).generate_state(1, np.uint32)[0] for j in range(start, stop)],
        dtype=np.int64,
    )


def get_simulator(name: str, **values: Any) -> Simulator:
    """Instantiate the simulator registered as ``name`` with parameter values (numbers or ``[low, high]``)."""
    return SIMULATORS.get(name)(**values)


def register(cls: type[Simulator]) -> type[Simulator]:
    """Class decorator: register a simulator under ``cls.name`` (with its description as metadata)."""
    return SIMULATORS.register(cls.name, description=cls.description.split(".")[0])(cls)


def param_table(cls: type[Simulator]) -> list[dict[str, Any]]:
    """Rows describing a simulator's parameters (for docs and ``sfm data generate --help``)."""
    return [dict(name=k, **dataclasses.asdict(p)) for k, p in cls.params.items()]
