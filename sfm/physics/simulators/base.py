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

Beyond generation, the evaluation harness asks three things of a simulator (each optional; the defaults say
the simulator cannot):

* :meth:`Simulator.evolve` restarts the solver from given fields (the ``coarse_solver`` baseline);
* :meth:`Simulator.conserved` integrates the quantities the PDE conserves (conservation drift of a rollout);
* :meth:`Simulator.residual` evaluates the PDE on stored frames (how physical a rollout is).

``strict=False`` builds a simulator for a deliberately under-resolved run: accuracy refusals (a viscosity too
small for the grid) are skipped, stability limits (the CFL-bounded step) are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sfm.errors import ConfigError, DataError, SfmError, did_you_mean
from sfm.physics.metadata import FieldMeta
from sfm.physics.simulators.checks import (
    Coefficients,
    check_times,
    checked_fields,
    meta_grid,
    trajectory_coefficients,
)
from sfm.physics.simulators.params import Param, check_value
from sfm.registry import SIMULATORS


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
    #: Names in ``settings`` that shape the random initial condition (or input field): ``ic`` and its controls.
    initial: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, strict: bool = True, **values: Any) -> None:
        """Check and store parameter values.

        Args:
            strict: Refuse settings the solver cannot resolve accurately (a subclass's resolution checks).
                ``False`` is for deliberately under-resolved runs such as the coarse-solver baseline: those
                checks are skipped, while stability limits (the time step obeys CFL) still hold.
            **values: Parameter values: numbers, or ``[low, high]`` for coefficients drawn per trajectory.
        """
        self.strict = bool(strict)
        self.values: dict[str, Any] = {}
        for key in values:
            if key not in self.params:
                raise ConfigError(
                    f"{self.name}: unknown parameter {key!r}{did_you_mean(key, self.params)}; "
                    f"parameters: {', '.join(self.params)}"
                )
        for key, p in self.params.items():
            value = values.get(key, p.default)
            self.values[key] = check_value(self.name, key, p, value, setting=key in self.settings)

    @property
    def varying(self) -> list[str]:
        """Coefficients drawn per trajectory (set to a range)."""
        return [k for k, v in self.values.items() if isinstance(v, tuple)]

    @property
    def fixed(self) -> dict[str, float]:
        """Physical coefficients fixed for the whole data set."""
        return {k: v for k, v in self.values.items() if not isinstance(v, tuple) and k not in self.settings}

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

    def _simulate(
        self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Draw one initial condition per generator and solve all as a batch; ``coeffs`` holds the varying
        coefficients as ``[n]`` arrays (fixed ones are in ``self.values``)."""
        raise NotImplementedError

    # ---- restarts, invariants and residuals (used by the evaluation harness) -------------------------------
    def evolve(
        self,
        state: dict[str, np.ndarray],
        coeffs: dict[str, np.ndarray],
        t_out: np.ndarray,
        *,
        strict: bool = True,
    ) -> dict[str, np.ndarray]:
        """Advance given fields from ``t = 0`` to each time in ``t_out`` with this simulator's solver.

        Args:
            state: Each field ``[n, *space]`` on this simulator's grid (its ``nx``, ``length``).
            coeffs: Per-trajectory coefficients ``{name: [n]}``: every varying one; a fixed one given here
                overrides the simulator's value.
            t_out: Output times ``[nt]``, all ``> 0``, non-decreasing.
            strict: Require the state on this simulator's grid and a finite result. ``False`` accepts any
                number of grid points (same domain, so the spacing follows the state) and returns a diverged
                trajectory as NaN/inf rather than raising, so a scored baseline reads NaN instead of aborting.

        Returns:
            Each field ``[n, nt, *space]`` float64.

        Raises:
            SfmError: the simulator cannot restart from a given state.
            DataError: a field is missing, misshapen or non-finite, or (strict) the solve diverged.
            ConfigError: a coefficient is missing or invalid, or ``t_out`` is not positive and sorted.
        """
        if type(self)._evolve is Simulator._evolve:
            raise SfmError(f"{self.name} cannot restart from a given state")
        coords = self.coords()
        grid = tuple(len(coords[a]) for a in ("x", "y", "z") if a in coords)
        where = "this simulator (pass strict=False to restart on another)" if strict else None
        arrays = self._checked(state, grid, frames=None, where=where, finite=True)
        n = next(iter(arrays.values())).shape[0]
        c = self._trajectory_coefficients(coeffs, n)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging solve is reported below, not warned
            out = self._evolve(arrays, c, check_times(self.name, t_out))
        out = {f: np.asarray(out[f], dtype=np.float64) for f in self.fields}
        if strict:
            for f, arr in out.items():
                bad = ~np.isfinite(arr).reshape(n, -1).all(axis=1)
                if bad.any():
                    raise DataError(
                        f"{self.name}: the solve from the given state diverged (non-finite {f}) for trajectory "
                        f"{int(np.argmax(bad))}; check the state's values"
                    )
        return out

    def _evolve(
        self, state: dict[str, np.ndarray], coeffs: Coefficients, t_out: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Solve from checked fields (float64) with coefficients ``coeffs[name] -> [n]`` to ``t_out`` (>= 0)."""
        raise SfmError(f"{self.name} cannot restart from a given state")

    def conserved(
        self, fields: dict[str, np.ndarray], meta: FieldMeta, coeffs: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """The quantities the PDE conserves on its domain, integrated over space for every frame.

        Args:
            fields: Each field ``[n, T, *space]`` on the grid ``meta`` describes.
            meta: Grid (spatial coordinates) of the fields.
            coeffs: Per-trajectory coefficients ``{name: [n]}``; only needed where a quantity depends on a
                coefficient that varies per trajectory (KdV's Hamiltonian on ``delta``, left out without it).

        Returns:
            ``{name: [n, T]}``; empty where the PDE conserves nothing (the default).
        """
        dens = self.conserved_densities(fields, meta, coeffs)
        if not dens:
            return {}
        cell = float(np.prod([meta.spacing(a) for a in meta.spatial_axes]))
        axes = tuple(range(2, 2 + meta.ndim))
        # The rectangle rule is the trapezoid rule on a periodic grid, spectrally accurate for smooth fields.
        return {k: d.sum(axis=axes) * cell for k, d in dens.items()}

    def conserved_densities(
        self, fields: dict[str, np.ndarray], meta: FieldMeta, coeffs: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Integrands ``{name: [n, T, *space]}`` of :meth:`conserved` (the harness also integrates their
        absolute value, the scale a drift is measured against)."""
        if type(self)._conserved_densities is Simulator._conserved_densities:
            return {}
        arrays = self._checked(fields, meta_grid(meta), frames=1, where="its metadata")
        n = next(iter(arrays.values())).shape[0]
        spacing = tuple(meta.spacing(a) for a in meta.spatial_axes)
        return self._conserved_densities(arrays, spacing, self._trajectory_coefficients(coeffs or {}, n))

    def _conserved_densities(
        self, fields: dict[str, np.ndarray], spacing: tuple[float, ...], coeffs: Coefficients
    ) -> dict[str, np.ndarray]:
        return {}

    def residual(
        self, fields: dict[str, np.ndarray], meta: FieldMeta, coeffs: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The PDE's residual on stored frames: second-order central differences in time over interior frames
        (frame spacing ``meta.dt``), spectral derivatives in space.

        The reference data's residual is small but not zero: the central difference errs by
        ``dt^2 / 6 u_ttt``, so it falls 4x when the frame spacing halves. Non-finite values propagate.

        Args:
            fields: Each field ``[n, T, *space]`` (``T >= 3``) on the grid ``meta`` describes.
            meta: Grid and frame spacing of the fields.
            coeffs: Per-trajectory coefficients ``{name: [n]}`` (every varying one; fixed ones default to the
                simulator's values).

        Returns:
            ``[n, T - 2, *space]`` for frames ``1 .. T-2``.

        Raises:
            SfmError: the simulator defines no residual (the default).
        """
        if type(self)._residual is Simulator._residual:
            raise SfmError(f"{self.name} defines no PDE residual")
        arrays = self._checked(fields, meta_grid(meta), frames=3, where="its metadata")
        if not (meta.dt or 0.0) > 0:
            raise DataError(f"{self.name}: the metadata gives no positive frame spacing dt (coords 't')")
        n = next(iter(arrays.values())).shape[0]
        spacing = tuple(meta.spacing(a) for a in meta.spatial_axes)
        return self._residual(arrays, float(meta.dt), spacing, self._trajectory_coefficients(coeffs, n))

    def _residual(
        self, fields: dict[str, np.ndarray], dt: float, spacing: tuple[float, ...], coeffs: Coefficients
    ) -> np.ndarray:
        raise SfmError(f"{self.name} defines no PDE residual")

    def _trajectory_coefficients(self, coeffs: dict[str, Any], n: int) -> Coefficients:
        """Every physical coefficient as ``[n]`` float64 (see :func:`~.checks.trajectory_coefficients`)."""
        physical = [k for k in self.params if k not in self.settings]
        return trajectory_coefficients(self.name, self.params, physical, self.values, coeffs, n)

    def _checked(
        self,
        arrays: dict[str, np.ndarray],
        grid: tuple[int, ...],
        *,
        frames: int | None,
        where: str | None,
        finite: bool = False,
    ) -> dict[str, np.ndarray]:
        """This simulator's fields from ``arrays`` as float64 (see :func:`~.checks.checked_fields`)."""
        return checked_fields(self.name, self.fields, arrays, grid, frames=frames, where=where, finite=finite)

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

    @classmethod
    def describe_initial(cls) -> str:
        """The initial-condition controls and their defaults, one line (``sfm list simulators``), made from
        the parameter declarations so it cannot drift from them."""
        parts = []
        for key in cls.initial:
            p = cls.params[key]
            if p.choices:
                parts.append(f"{key}: " + " | ".join(c + ("*" if c == p.default else "") for c in p.choices))
            else:
                parts.append(f"{key}={p.default:g}")
        return "; ".join(parts)

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


def get_simulator(name: str, *, strict: bool = True, **values: Any) -> Simulator:
    """Instantiate the simulator registered as ``name`` with parameter values (numbers or ``[low, high]``).

    ``strict=False`` skips resolution refusals (for deliberately coarse runs; see :class:`Simulator`).
    """
    return SIMULATORS.get(name)(strict=strict, **values)


def register(cls: type[Simulator]) -> type[Simulator]:
    """Class decorator: register a simulator under ``cls.name`` (with its description as metadata)."""
    return SIMULATORS.register(cls.name, description=cls.description.split(".")[0])(cls)


def param_table(cls: type[Simulator]) -> list[dict[str, Any]]:
    """Rows describing a simulator's parameters (for docs and ``sfm data generate --help``)."""
    return [dict(name=k, **dataclasses.asdict(p)) for k, p in cls.params.items()]
