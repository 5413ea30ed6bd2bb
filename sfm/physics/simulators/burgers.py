"""Viscous Burgers' equation on the periodic interval (PDEBench's 1D Burgers set-up).

    u_t + (u^2 / 2)_x = nu u_xx,    x in [0, L) periodic

Convention: ``nu`` is the viscosity itself. PDEBench writes the viscous term as ``(nu_pb / pi) u_xx``, so its
file ``1D_Burgers_Sols_Nu0.01`` is ``nu = 0.01 / pi`` here.

Scheme: Fourier pseudo-spectral in space (exponentially convergent for the analytic solutions viscosity
guarantees) with Orszag's 2/3 rule on the state and on ``u^2``, so the quadratic flux has no aliasing; ETDRK4
in time (Cox & Matthews; formal order 4), which integrates the viscous term ``-nu k^2`` exactly, so the step is
bounded by advection alone, never by viscosity.

Invariant: only the mass ``int u dx`` (the equation is a conservation law, ``u_t + (u^2/2 - nu u_x)_x = 0``);
the energy ``int u^2 dx`` decays at the rate ``2 nu int u_x^2 dx``. Residual: ``u_t + u u_x - nu u_xx``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sfm.errors import ConfigError
from sfm.physics.simulators import base
from sfm.physics.simulators.base import Simulator
from sfm.physics.simulators.checks import Coefficients
from sfm.physics.simulators.derivatives import central_time_difference, spectral_derivative
from sfm.physics.simulators.initial import IC_SETTINGS_1D, ic_bound_1d, ic_params_1d, initial_1d
from sfm.physics.simulators.params import Param
from sfm.physics.simulators.spectral import _batch_1d, etdrk4_periodic_1d, periodic_grid

#: Upper bound of ``max |u0|`` for the default initial data: two sine waves of amplitude at most 1. The
#: maximum principle keeps ``|u| <= max |u0|`` for all time, so it also bounds the advection speed.
U_MAX = 2.0
#: Advective CFL number ``dt * U_MAX * k_cut``. ETDRK4's explicit part is RK4 on advection, stable up to 2.8
#: on the imaginary axis; at 2 the time error matches the space error: on the default grid at nu = 0.01,
#: the worst of 64 random trajectories is 3.5e-6 from a dt/16 solve (space: 8e-6 from a 4x finer grid).
CFL = 2.0
#: Spectral tail allowed at the dealiasing cut-off for the steepest conceivable shock (see
#: :func:`min_resolved_nu`): exp(-8) ~ 3e-4 of a jump of 2 U_MAX. Real shocks are shallower: on the default
#: grid at nu = 0.01 the worst of 64 random trajectories is within 8e-6 of a 4x finer grid.
TAIL_EXPONENT = 8.0


def solve_burgers(
    u0: np.ndarray, nu: np.ndarray | float, length: float, t_out: np.ndarray, dt: float
) -> np.ndarray:
    """Solve viscous Burgers for a batch of initial conditions, each with its own viscosity.

    Args:
        u0: Initial data ``[n, nx]`` on the grid ``x_i = i L / nx``. It is projected onto the dealiased
            modes (``|k| < nx/3``) first: that projection is the state the scheme evolves.
        nu: Viscosity, a number or ``[n]``.
        length: Period ``L``.
        t_out: Non-decreasing output times ``[nt]`` (>= 0); the solve starts at ``t = 0``.
        dt: Largest time step; each interval between outputs is split into equal steps no larger.

    Returns:
        ``u`` ``[n, nt, nx]`` float64 at ``t_out``.
    """
    u0, c = _batch_1d(u0, nu=nu)
    return etdrk4_periodic_1d(
        u0,
        length,
        t_out,
        dt,
        linear=lambda k: -c["nu"][:, None] * k**2,
        multiplier=lambda k: -0.5j * k,  # N(u) = -(u^2 / 2)_x
        pointwise=lambda u: u * u,
    )


def min_resolved_nu(nx: int, length: float, u_max: float = U_MAX) -> float:
    """Smallest viscosity the dealiased grid resolves for data with ``|u| <= u_max``.

    The steepest viscous shock is ``-(J/2) tanh(J x / (4 nu))`` with jump ``J <= 2 u_max``; its poles at
    ``|Im x| = 2 pi nu / J`` make its Fourier coefficients fall like ``exp(-2 pi nu k / J)``. Requiring that
    tail to be ``exp(-TAIL_EXPONENT)`` at the cut-off ``k_c = 2 pi (nx / 3) / L`` gives the bound.
    """
    k_cut = 2 * np.pi * (nx / 3) / length
    return TAIL_EXPONENT * 2 * u_max / (2 * np.pi * k_cut)


@base.register
class Burgers(Simulator):
    """Viscous Burgers (see the module docstring for the scheme)."""

    name = "burgers"
    equation = "u_t + u*u_x = nu*u_xx"
    description = (
        "Viscous Burgers equation u_t + (u^2/2)_x = nu u_xx on a periodic interval (nu is the viscosity; "
        "PDEBench's Nu is nu*pi). Initial data: random sine waves by default (ic: sine, fourier, bumps, fronts). Solved pseudo-spectrally "
        "(2/3 dealiasing) with ETDRK4 time stepping."
    )
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "periodic"}
    params: ClassVar[dict[str, Param]] = {
        # Log-uniform over a decade: from shock-dominated (nu = 0.01, fronts ~0.02 wide) to diffusion-dominated.
        # 0.01 is above min_resolved_nu(256) = 0.0095, so the default grid resolves every trajectory.
        "nu": Param((0.01, 0.1), bounds=(1e-5, 10.0), log=True, doc="viscosity"),
        "nx": Param(256, bounds=(8, 65536), integer=True, doc="grid points"),
        "nt": Param(41, bounds=(2, 100000), integer=True, doc="stored frames, t = 0 included"),
        "t_end": Param(2.0, bounds=(1e-6, 1e6), doc="final time (PDEBench: 2)"),
        "length": Param(1.0, bounds=(1e-6, 1e6), doc="period L of the domain [0, L)"),
        # The advective limit CFL / (U_MAX * k_cut) is 1.9e-3 on the default grid and binds below dt_max,
        # so finer grids get smaller steps automatically.
        "dt_max": Param(1e-2, bounds=(1e-8, 1.0), doc="largest time step (also kept <= the CFL limit)"),
        # Zero-mean sine data decays like exp(-nu (2 pi k)^2 t): high wave numbers vanish within t ~ 1 at
        # nu ~ 0.05. k_max = 2 keeps the low modes that steepen into shocks, which decay only like 1/t.
        # Initial data beyond U_MAX (a larger amplitude, more waves) gets a smaller step and a stricter
        # resolution check through its analytic bound (ic_bound_1d).
        **ic_params_1d(),
    }
    settings = ("nx", "nt", "t_end", "length", "dt_max", *IC_SETTINGS_1D)
    initial = IC_SETTINGS_1D

    def __init__(self, *, strict: bool = True, **values: object) -> None:
        super().__init__(strict=strict, **values)
        nu = self.values["nu"]
        nu_low = nu[0] if isinstance(nu, tuple) else nu
        u_max = max(U_MAX, ic_bound_1d(self.values))
        nu_min = min_resolved_nu(self.values["nx"], self.values["length"], u_max)
        if strict and nu_low < nu_min:
            raise ConfigError(
                f"burgers: nu={nu_low:g} is under-resolved on nx={self.values['nx']} "
                f"(needs nu >= {nu_min:.3g}); raise nx or nu"
            )

    def time_step(self, u_max: float = U_MAX, nx: int | None = None) -> float:
        """The step used: ``dt_max`` capped by the advective limit ``CFL / (max(u_max, U_MAX) * k_cut)``.

        A restart passes its state's ``max |u|`` (the maximum principle bounds ``|u|`` by it for all time)
        and grid size, so a state beyond the default data's bound still gets a stable step.
        """
        k_cut = 2 * np.pi * ((nx or self.values["nx"]) / 3) / self.values["length"]
        return min(self.values["dt_max"], CFL / (max(u_max, U_MAX) * k_cut))

    def _simulate(
        self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        v = self.values
        x = periodic_grid(v["nx"], v["length"])
        u0 = np.stack([initial_1d(r, x, v["length"], v) for r in rngs])
        nu = coeffs.get("nu", v["nu"])
        t = np.linspace(0.0, v["t_end"], v["nt"])
        # The maximum principle bounds |u| by the initial data's bound (U_MAX for the default data).
        return {"u": solve_burgers(u0, nu, v["length"], t, self.time_step(ic_bound_1d(v)))}

    def _evolve(
        self, state: dict[str, np.ndarray], coeffs: Coefficients, t_out: np.ndarray
    ) -> dict[str, np.ndarray]:
        # The step follows the restarted state's grid and amplitude (a batch shares its largest state's step;
        # the data's own frames stay within U_MAX, so a restart of them steps exactly as generation did).
        u0 = state["u"]
        dt = self.time_step(float(np.abs(u0).max()), u0.shape[-1])
        return {"u": solve_burgers(u0, coeffs["nu"], self.values["length"], t_out, dt)}

    def _conserved_densities(
        self, fields: dict[str, np.ndarray], spacing: tuple[float, ...], coeffs: Coefficients
    ) -> dict[str, np.ndarray]:
        return {"mass": fields["u"]}

    def _residual(
        self, fields: dict[str, np.ndarray], dt: float, spacing: tuple[float, ...], coeffs: Coefficients
    ) -> np.ndarray:
        u, (dx,) = fields["u"], spacing
        ux, uxx = spectral_derivative(u, dx, 1), spectral_derivative(u, dx, 2)
        nu = coeffs["nu"][:, None, None]
        return central_time_difference(u, dt) + (u * ux - nu * uxx)[:, 1:-1]

    def coords(self) -> dict[str, list[float]]:
        v = self.values
        return {
            "t": np.linspace(0.0, v["t_end"], v["nt"]).tolist(),
            "x": periodic_grid(v["nx"], v["length"]).tolist(),
        }
