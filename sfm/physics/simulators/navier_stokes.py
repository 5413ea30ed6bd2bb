"""2D incompressible Navier–Stokes in vorticity form on the periodic square (FNO's set-up).

    w_t + u . grad(w) = nu lap(w) + f,    u = (psi_y, -psi_x),    -lap(psi) = w,
    f(x, y) = A (sin(2 pi (x + y)) + cos(2 pi (x + y)))          (A = 0.1 in FNO)

Scheme: Fourier pseudo-spectral in space (exponentially convergent for smooth fields) with Orszag's 2/3 rule
applied to the state and to the advection product, so the quadratic term carries no aliasing error; ETDRK4 in
time (Cox & Matthews; formal order 4), which integrates the viscous term ``-nu |k|^2`` exactly, so the step is
limited only by the advective Courant number, never by viscosity.

Step control: each trajectory picks its own number of equal steps per output interval, the fewest that keep
both ``h <= dt`` and the Courant number ``h max(|u| kx_max + |v| ky_max) <= cfl`` at the interval's start.
A forced flow speeds up over time, so a fixed step safe at ``t = 0`` would go unstable later; choosing it per
trajectory (not per batch) keeps every trajectory independent of the others solved beside it.

Velocity is not stored: it is a linear function of ``w`` (see :func:`velocity_from_vorticity`), so storing it
would triple the data for no new information.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.physics.simulators import base
from sfm.physics.simulators.initial import MAX_WIDTH, fourier_2d, gaussian_vortices
from sfm.physics.simulators.params import Param
from sfm.physics.simulators.spectral import ETDRK4, dealias_mask, fft_wavenumbers, rfft_wavenumbers

#: A Courant number above this at the end of an interval means the flow sped up more than the step allowed
#: for. Measured on the default set-up (nu = 1e-4, to t = 40): stable at 3, diverges at 4 (this Courant number,
#: summed over both axes and maximized over the grid, is conservative: RK4's limit of 2.8 applies to |u| k).
_CFL_LIMIT = 3.0

#: The kinds of initial vorticity (parameter ``ic``) and what each draws (shown by ``sfm list simulators``).
IC_KINDS_2D: dict[str, str] = {
    "grf": "FNO's Gaussian random field, covariance 2*7^3*(-lap + 49)^-2.5",
    "fourier": "every wave vector 1 <= |k| <= k_max, amplitude ~ |k|^-spectrum_decay, |w0| <= amplitude",
    "vortices": "n_vortices Gaussian vortices, radii [radius/2, radius] * L, circulations +-[strength/2, strength]",
}


def solve_navier_stokes(
    w0: np.ndarray,
    nu: np.ndarray | float,
    forcing: np.ndarray | None,
    t_out: np.ndarray,
    dt: float,
    length: float = 1.0,
    cfl: float = np.inf,
) -> np.ndarray:
    """Solve the vorticity equation for a batch of initial fields, each with its own viscosity.

    Args:
        w0: Initial vorticity ``[n, nx, ny]`` on the grid ``x_i = i L / nx``; it is projected onto the
            dealiased modes (``|k| < n/3`` per axis) first, which is the state the scheme evolves.
        nu: Viscosity, a number or ``[n]`` (one per trajectory).
        forcing: Time-independent forcing ``[nx, ny]`` or ``[n, nx, ny]``, or None for none.
        t_out: Non-decreasing output times ``[nt]`` (>= 0); the solve starts at ``t = 0``.
        dt: Largest time step; each interval between outputs is split into equal steps no larger.
        length: Side of the periodic square.
        cfl: Largest advective Courant number ``h max(|u| kx_max + |v| ky_max)`` at the start of each
            interval (``inf``: the step is ``dt``-limited only, as convergence studies want).

    Returns:
        Vorticity ``[n, nt, nx, ny]`` float64 at ``t_out``.

    Raises:
        DataError: ``w0`` is not ``[n, nx, ny]`` or not finite.
        ConfigError: negative ``nu``, bad ``t_out``/``dt``, or the flow sped up within one output interval
            beyond the stable Courant number (store more frames or lower ``cfl``).
    """
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim != 3 or not np.all(np.isfinite(w0)):
        raise DataError(f"initial vorticity must be finite and shaped [n, nx, ny], got shape {w0.shape}")
    n, nx, ny = w0.shape
    nu = np.broadcast_to(np.asarray(nu, dtype=np.float64), (n,))
    if not np.all(nu >= 0):
        raise ConfigError(f"viscosity nu must be >= 0, got {nu}")
    *_, k2, mask = _modes(nx, ny, length)
    f_hat = 0.0 if forcing is None else np.fft.rfft2(np.asarray(forcing, dtype=np.float64)) * mask
    advect, speed = _advection_ops(nx, ny, length)

    def nonlinear(w_hat: np.ndarray) -> np.ndarray:
        return f_hat - advect(w_hat)

    def to_physical(w_hat: np.ndarray) -> np.ndarray:
        return np.fft.irfft2(w_hat, s=(nx, ny))

    w_hat = np.fft.rfft2(w0) * mask
    return _march_adaptive(w_hat, -nu[:, None, None] * k2, nonlinear, t_out, dt, to_physical, speed, cfl)


def advection(w: np.ndarray, length: float = 1.0) -> np.ndarray:
    """The advection term ``u . grad(w)`` of vorticity ``w [..., nx, ny]`` as the solver computes it
    (spectral derivatives, 2/3 dealiasing of ``w`` and of the product)."""
    nx, ny = w.shape[-2:]
    advect, _ = _advection_ops(nx, ny, length)
    return np.fft.irfft2(advect(np.fft.rfft2(w) * _modes(nx, ny, length)[3]), s=(nx, ny))


def _advection_ops(nx: int, ny: int, length: float) -> tuple[Callable, Callable]:
    """Two maps of the Fourier state ``w_hat``: to the Fourier transform of ``u . grad(w)`` (dealiased), and
    to the advective rate ``max(|u| kx_max + |v| ky_max)`` per trajectory (the Courant number per unit step)."""
    kx, ky, k2, mask = _modes(nx, ny, length)
    inv_k2 = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    # Fourier symbols taking w to (u, v, w_x, w_y) = (psi_y, -psi_x, w_x, w_y): one product, one batched
    # inverse transform.
    symbols = np.stack(np.broadcast_arrays(1j * ky * inv_k2, -1j * kx * inv_k2, 1j * kx, 1j * ky))
    kmax = np.abs(kx * mask[:, :1]).max(), np.abs(ky * mask[:1]).max()

    def advect(w_hat: np.ndarray) -> np.ndarray:
        u, v, wx, wy = np.fft.irfft2(
            symbols.reshape(4, *[1] * (w_hat.ndim - 2), *k2.shape) * w_hat, s=(nx, ny)
        )
        return np.fft.rfft2(u * wx + v * wy) * mask

    def speed(w_hat: np.ndarray) -> np.ndarray:
        u, v = np.fft.irfft2(symbols[:2, None] * w_hat, s=(nx, ny))
        return (np.abs(u) * kmax[0] + np.abs(v) * kmax[1]).max(axis=(1, 2))

    return advect, speed


def velocity_from_vorticity(w: np.ndarray, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Velocity ``(u, v) = (psi_y, -psi_x)`` with ``-lap psi = w`` on the periodic square (last two axes)."""
    nx, ny = w.shape[-2:]
    kx, ky, k2, _ = _modes(nx, ny, length)
    psi_hat = np.fft.rfft2(w) * np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    return np.fft.irfft2(1j * ky * psi_hat, s=(nx, ny)), np.fft.irfft2(-1j * kx * psi_hat, s=(nx, ny))


def fno_forcing(x: np.ndarray, y: np.ndarray, amplitude: float = 0.1, length: float = 1.0) -> np.ndarray:
    """FNO's forcing ``A (sin 2pi(x+y)/L + cos 2pi(x+y)/L)`` on the grid ``x [nx] x y [ny]``; ``[nx, ny]``."""
    s = 2 * np.pi * (x[:, None] + y[None, :]) / length
    return amplitude * (np.sin(s) + np.cos(s))


def vorticity_grf(
    rng: np.random.Generator, nx: int, ny: int, length: float = 1.0, alpha: float = 2.5, tau: float = 7.0
) -> np.ndarray:
    """A periodic Gaussian random field with covariance ``2 sigma^2 (-lap + tau^2)^(-alpha)``, zero mean,
    band-limited to the dealiased modes; returns ``[nx, ny]``.

    The defaults give FNO's initial vorticity (``alpha = 2.5``, ``tau = 7``, ``sigma = tau^(alpha - 1)``, and
    the factor 2 of FNO's generator). Each Fourier mode's variance is independent of the grid, so refining
    the grid only adds finer modes.
    """
    *_, k2, mask = _modes(nx, ny, length)
    # sqrt(2): FNO takes the real part of a field with complex coefficients of variance 2 per mode.
    amp = np.sqrt(2.0) * tau ** (alpha - 1) * (k2 + tau**2) ** (-alpha / 2) * mask
    amp[0, 0] = 0.0
    # rfft2 of unit white noise has variance nx*ny per mode; sqrt(nx*ny) restores unit-variance coefficients.
    noise_hat = np.fft.rfft2(rng.standard_normal((nx, ny)))
    return np.fft.irfft2(noise_hat * amp, s=(nx, ny)) * np.sqrt(nx * ny)


def _modes(nx: int, ny: int, length: float) -> tuple[np.ndarray, ...]:
    """``kx [nx, 1]``, ``ky [1, ny//2+1]``, ``|k|^2`` and the 2/3 dealiasing mask of an rfft2 grid."""
    kx = fft_wavenumbers(nx, length)[:, None]
    ky = rfft_wavenumbers(ny, length)[None, :]
    mask = dealias_mask(nx, rfft=False)[:, None] & dealias_mask(ny, rfft=True)[None, :]
    return kx, ky, kx**2 + ky**2, mask


def _march_adaptive(
    v_hat: np.ndarray,
    L: np.ndarray,
    nonlinear: Callable[[np.ndarray], np.ndarray],
    t_out: np.ndarray,
    dt: float,
    to_physical: Callable[[np.ndarray], np.ndarray],
    rate: Callable[[np.ndarray], np.ndarray],
    cfl: float,
) -> np.ndarray:
    """:func:`spectral.etdrk4_march` with a per-trajectory Courant limit: ``[n, nt, ...]`` at ``t_out``.

    Every interval between outputs is split, per trajectory, into ``m_i`` equal steps: at least ``span/dt``
    and, where ``cfl`` is finite, enough that ``h * rate(v_hat) <= cfl`` at the interval's start. The batch
    steps in lockstep and a trajectory that has done its ``m_i`` steps keeps its state, so each trajectory's
    arithmetic is exactly what it would be alone.
    """
    t_out = np.asarray(t_out, dtype=np.float64)
    if t_out.ndim != 1 or t_out.size == 0 or t_out[0] < 0 or np.any(np.diff(t_out) < 0) or not dt > 0:
        raise ConfigError(f"t_out must be non-decreasing times >= 0 and dt > 0, got t_out={t_out!r}, dt={dt}")
    first = to_physical(v_hat)
    out = np.empty((first.shape[0], t_out.size, *first.shape[1:]))
    schemes = _Schemes(np.broadcast_to(L, (len(v_hat), *np.shape(L)[1:])))
    adaptive = np.isfinite(cfl)
    t, h = 0.0, np.zeros(len(v_hat))
    for i, target in enumerate(t_out):
        # A diverged (non-finite) trajectory keeps dt-limited steps; the caller reports it.
        speed = np.nan_to_num(rate(v_hat), nan=0.0, posinf=0.0) if adaptive else np.zeros(len(h))
        if np.any(h * speed > _CFL_LIMIT):
            raise ConfigError(
                f"the flow sped up within one output interval past Courant number {_CFL_LIMIT} "
                f"(reached {np.max(h * speed):.2f} at t={t:g}); store more frames (nt) or lower cfl"
            )
        span = target - t
        if span > 0:
            m = _step_counts(span, dt, speed * span / cfl)
            h = span / m
            scheme = schemes.get(h)
            running = (np.arange(int(m.max()))[:, None] < m).reshape(-1, len(m), *[1] * (v_hat.ndim - 1))
            for s in range(int(m.max())):
                stepped = scheme.step(v_hat, nonlinear)
                v_hat = stepped if s < m.min() else np.where(running[s], stepped, v_hat)
        out[:, i] = to_physical(v_hat)
        t = target
    return out


def _step_counts(span: float, dt: float, cfl_steps: np.ndarray) -> np.ndarray:
    """Steps per trajectory: at least ``span/dt`` and ``cfl_steps``, rounded up on a quarter-octave ladder
    above ``ceil(span/dt)`` so a slowly speeding flow reuses a handful of step sizes (each new one costs an
    ETDRK4 coefficient build)."""
    m0 = max(1, int(np.ceil(span / dt * (1 - 1e-12))))
    need = np.maximum(cfl_steps, m0)
    rung = np.ceil(4 * np.log2(need / m0) - 1e-9) / 4
    return np.ceil(m0 * 2.0**rung - 1e-9).astype(np.int64)


class _Schemes:
    """ETDRK4 coefficients for each trajectory's step, built once per distinct ``(L row, h)``.

    A row's coefficients are built only on the distinct values of its ``L`` (``|k|^2`` repeats across modes),
    which is ~4x cheaper than building on every mode and never holds a ``[n, modes, 32]`` contour array.
    """

    def __init__(self, L: np.ndarray) -> None:
        self.L = L
        # Trajectories sharing a viscosity share their coefficients.
        _, self.row_key = np.unique(L.reshape(len(L), -1), axis=0, return_inverse=True)
        self.row_key = self.row_key.reshape(-1)
        self.cache: dict[tuple[int, float], ETDRK4] = {}

    def get(self, h: np.ndarray) -> ETDRK4:
        rows = [self._row(i, float(hi)) for i, hi in enumerate(h)]
        if all(r is rows[0] for r in rows):
            return ETDRK4(*(getattr(rows[0], f)[None] for f in _COEFFS))
        return ETDRK4(*(np.stack([getattr(r, f) for r in rows]) for f in _COEFFS))

    def _row(self, i: int, h: float) -> ETDRK4:
        key = (int(self.row_key[i]), h)
        if key not in self.cache:
            values, inverse = np.unique(self.L[i], return_inverse=True)
            c = ETDRK4.build(values, h)
            shape = self.L[i].shape
            self.cache[key] = ETDRK4(*(getattr(c, f)[inverse].reshape(shape) for f in _COEFFS))
        return self.cache[key]


_COEFFS = ("E", "E2", "Q", "f1", "f2", "f3")


@base.register
class NavierStokes2D(base.Simulator):
    """Vorticity-form incompressible Navier–Stokes, FNO forcing, random initial vorticity."""

    name = "navier_stokes"
    equation = "w_t + u*w_x + v*w_y = nu*(w_xx + w_yy) + f, u = psi_y, v = -psi_x, -(psi_xx + psi_yy) = w"
    description = (
        "2D incompressible Navier-Stokes in vorticity form on the periodic unit square, driven by the "
        "forcing f = force*(sin(2 pi (x+y)) + cos(2 pi (x+y))) as in the FNO benchmark. Initial vorticity: FNO's "
        "Gaussian random field (ic: grf, the default), random Fourier modes or Gaussian vortices; solved "
        "pseudo-spectrally (2/3 dealiasing) with ETDRK4. Only the vorticity w is stored; velocity follows from it by a Poisson solve."
    )
    fields = ("w",)
    boundary_conditions = {"x": "periodic", "y": "periodic"}  # noqa: RUF012 (class-level constant)
    params = {  # noqa: RUF012
        # Resolution, measured against a 128^2 run (same initial modes): at nu = 1e-3 the 64^2 solution agrees
        # to ~1e-9 up to t = 50; at nu = 1e-4 to 2e-3 at t = 10 and 3e-2 at t = 20, as the enstrophy cascade
        # reaches the 2/3 cut-off. For nu < 1e-4 or t_end > 10, raise nx, ny (FNO solved nu <= 1e-4 on 256^2).
        "nu": Param((1e-4, 1e-3), bounds=(1e-6, 1.0), log=True, doc="kinematic viscosity"),
        "force": Param(0.1, bounds=(0.0, 10.0), doc="forcing amplitude A"),
        "nx": Param(64, bounds=(8, 4096), integer=True, doc="grid points in x"),
        "ny": Param(64, bounds=(8, 4096), integer=True, doc="grid points in y"),
        "nt": Param(21, bounds=(1, 100_000), integer=True, doc="stored frames, t = 0 .. t_end"),
        "t_end": Param(10.0, bounds=(0.0, 1e5), doc="final time"),
        "length": Param(1.0, bounds=(1e-3, 1e3), doc="side of the periodic square"),
        # Measured at nu = 1e-4 against cfl = 0.25: relative time error at t = 10 (t = 40) is 4e-7 (6e-6) at
        # cfl = 1, 6e-6 (9e-5) at cfl = 2, and the run diverges at cfl = 4. cfl = 1.5 binds before dt once
        # |u| > ~0.1; dt caps the step while the flow is slow.
        "dt": Param(0.05, bounds=(1e-6, 1.0), doc="largest time step"),
        "cfl": Param(1.5, bounds=(0.01, 2.0), doc="largest advective Courant number h*max(|u|kx+|v|ky)"),
        # Initial vorticity. The defaults of fourier and vortices match the GRF's scale (its |w| reaches ~0.5):
        # a vortex of circulation 0.04 and radius 0.08 peaks at 0.04 / (2 pi 0.08^2) = 1.0; radius >= 0.04 keeps
        # its spectrum at the 64^2 dealiasing cut-off below exp(-14).
        "ic": Param(
            "grf", choices=tuple(IC_KINDS_2D), doc="kind of initial vorticity: " + ", ".join(IC_KINDS_2D)
        ),
        "k_max": Param(4, bounds=(1, 64), integer=True, doc="largest |k| of the initial waves (fourier)"),
        "spectrum_decay": Param(
            1.0, bounds=(0.0, 10.0), doc="wave vector k has amplitude ~ |k|^-decay (fourier)"
        ),
        "amplitude": Param(0.5, bounds=(1e-6, 1e3), doc="bound on |w0| (fourier)"),
        "n_vortices": Param(4, bounds=(1, 256), integer=True, doc="number of Gaussian vortices (vortices)"),
        "radius": Param(
            0.08, bounds=(1e-3, MAX_WIDTH), doc="vortex radii drawn in [radius/2, radius] * length"
        ),
        "strength": Param(
            0.04, bounds=(1e-6, 1e3), doc="vortex circulations |Gamma| in [strength/2, strength]"
        ),
    }
    initial = ("ic", "k_max", "spectrum_decay", "amplitude", "n_vortices", "radius", "strength")
    settings = ("nx", "ny", "nt", "t_end", "length", "dt", "cfl", *initial)

    def _simulate(
        self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        nx, ny, length = self.values["nx"], self.values["ny"], self.values["length"]
        w0 = np.stack([self._initial(r, nx, ny, length) for r in rngs])
        return self._evolve({"w": w0}, coeffs, np.asarray(self.coords()["t"]))

    def _initial(self, rng: np.random.Generator, nx: int, ny: int, length: float) -> np.ndarray:
        """One trajectory's initial vorticity ``[nx, ny]`` of the kind ``ic`` (see :data:`IC_KINDS_2D`)."""
        v = self.values
        if v["ic"] == "grf":
            return vorticity_grf(rng, nx, ny, length)
        x, y = (np.arange(m) * length / m for m in (nx, ny))
        if v["ic"] == "fourier":
            kw = {"k_max": v["k_max"], "decay": v["spectrum_decay"], "amplitude": v["amplitude"]}
            return fourier_2d(rng, x, y, length, **kw)
        kw = {"count": v["n_vortices"], "radius": v["radius"], "strength": v["strength"]}
        return gaussian_vortices(rng, x, y, length, **kw)[0]

    def _evolve(
        self, state: dict[str, np.ndarray], coeffs: dict[str, np.ndarray], t_out: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Continue trajectories from ``state["w"] [n, nx, ny]`` (any grid size) to times ``t_out`` after it.

        ``coeffs`` holds the varying coefficients as ``[n]`` arrays (the fixed ones come from this
        simulator); returns ``{"w": [n, nt, nx, ny]}``. Used for generation and by the coarse-solver baseline.
        """
        w0 = np.asarray(state["w"], dtype=np.float64)
        n, nx, ny = w0.shape
        length = self.values["length"]
        nu, force = (coeffs[k] if k in coeffs else np.full(n, self.values[k]) for k in ("nu", "force"))
        x, y = (np.arange(m) * length / m for m in (nx, ny))
        forcing = np.asarray(force)[:, None, None] * fno_forcing(x, y, 1.0, length)
        w = solve_navier_stokes(w0, nu, forcing, t_out, self.values["dt"], length, self.values["cfl"])
        return {"w": w}

    def coords(self) -> dict[str, list[float]]:
        nx, ny, length = self.values["nx"], self.values["ny"], self.values["length"]
        return {
            "t": np.linspace(0.0, self.values["t_end"], self.values["nt"]).tolist(),
            "x": (np.arange(nx) * length / nx).tolist(),
            "y": (np.arange(ny) * length / ny).tolist(),
        }
