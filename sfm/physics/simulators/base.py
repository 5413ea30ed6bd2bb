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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sfm.errors import ConfigError, DataError, SfmError, did_you_mean
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
                raise ConfigError(
                    f"{self.name}: {key} range [{a}, {b}] must lie within [{lo}, {hi}] and low <= high"
                )
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
            out = self._evolve(arrays, c, _check_times(self.name, t_out))
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
        arrays = self._checked(fields, _grid(meta), frames=1, where="its metadata")
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
        arrays = self._checked(fields, _grid(meta), frames=3, where="its metadata")
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
        """Every physical coefficient as ``[n]`` float64: given ones checked, fixed ones filled in; a varying
        one that is not given raises when a solver reads it."""
        physical = [k for k in self.params if k not in self.settings]
        out = Coefficients(self.name)
        for key, value in coeffs.items():
            if key not in physical:
                raise ConfigError(
                    f"{self.name}: unknown coefficient {key!r}{did_you_mean(key, physical)}; "
                    f"coefficients: {', '.join(physical)}"
                )
            try:
                arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{self.name}: coefficient {key} must be a number or [{n}] values"
                ) from None
            lo, hi = self.params[key].bounds
            if not np.all((arr >= lo) & (arr <= hi)):  # NaN fails too
                raise ConfigError(
                    f"{self.name}: coefficient {key} has values outside [{lo}, {hi}] or non-finite"
                )
            out[key] = arr
        for key in physical:
            if key not in out and not isinstance(self.values[key], tuple):
                out[key] = np.full(n, float(self.values[key]))
        return out

    def _checked(
        self,
        arrays: dict[str, np.ndarray],
        grid: tuple[int, ...],
        *,
        frames: int | None,
        where: str | None,
        finite: bool = False,
    ) -> dict[str, np.ndarray]:
        """Every field of this simulator from ``arrays`` as float64 ``[n, *space]`` (``frames=None``) or
        ``[n, T >= frames, *space]``; unless ``where`` is None, ``space`` must be ``grid`` (``where`` names it)."""
        for key in arrays:
            if key not in self.fields:
                raise DataError(f"{self.name}: unknown field {key!r}{did_you_mean(key, self.fields)}")
        lead = 1 if frames is None else 2
        out: dict[str, np.ndarray] = {}
        for f in self.fields:
            if f not in arrays:
                raise DataError(f"{self.name}: field {f!r} is missing; fields: {', '.join(self.fields)}")
            arr = np.asarray(arrays[f], dtype=np.float64)
            n = next(iter(out.values())).shape[0] if out else (arr.shape[0] if arr.ndim else 0)
            if arr.ndim != lead + len(grid) or arr.shape[0] != n or n == 0 or arr.shape[1] < (frames or 0):
                want = "[n" + (f", T >= {frames}" if frames else "") + f"] + {len(grid)} spatial axes"
                raise DataError(
                    f"{self.name}: field {f!r} must be {want} (same n for all), got {list(arr.shape)}"
                )
            if where is not None and arr.shape[lead:] != grid:
                raise DataError(
                    f"{self.name}: field {f!r} is on a {list(arr.shape[lead:])} grid, not the {list(grid)} grid of {where}"
                )
            if finite and not np.all(np.isfinite(arr)):
                raise DataError(
                    f"{self.name}: field {f!r} has {int(np.sum(~np.isfinite(arr)))} non-finite values"
                )
            out[f] = arr
        return out

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


def _grid(meta: FieldMeta) -> tuple[int, ...]:
    return tuple(len(meta.coords[a]) for a in meta.spatial_axes)


def _check_times(name: str, t_out: Any) -> np.ndarray:
    t = np.asarray(t_out, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] <= 0 or np.any(np.diff(t) < 0):
        raise ConfigError(
            f"{name}: t_out must be a non-empty, non-decreasing list of times > 0, got {t_out!r}"
        )
    return t


def central_time_difference(u: np.ndarray, dt: float) -> np.ndarray:
    """``(u[:, j+1] - u[:, j-1]) / (2 dt)`` for the interior frames of ``u [n, T, ...]``: ``[n, T-2, ...]``.

    Second order: the error is ``dt^2 / 6 u_ttt``.
    """
    return (u[:, 2:] - u[:, :-2]) / (2.0 * dt)


def spectral_derivative(u: np.ndarray, dx: float, order: int, axis: int = -1) -> np.ndarray:
    """``order``-th derivative of periodic samples along ``axis`` (spacing ``dx``), by Fourier multiplication.

    An odd derivative drops the Nyquist mode of an even grid: that mode is a pure cosine on the grid, its
    derivative a sine that vanishes at every grid point (Trefethen, Spectral Methods in MATLAB, ch. 3).
    """
    n = u.shape[axis]
    k = 2 * np.pi * np.fft.rfftfreq(n, d=dx)
    symbol = (1j * k) ** order
    if order % 2 and n % 2 == 0:
        symbol[-1] = 0.0
    shape = [1] * u.ndim
    shape[axis] = symbol.size
    return np.fft.irfft(np.fft.rfft(u, axis=axis) * symbol.reshape(shape), n=n, axis=axis)


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
