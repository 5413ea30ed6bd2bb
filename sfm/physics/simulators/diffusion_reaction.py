"""Fisher–KPP diffusion-reaction on the periodic interval (PDEBench's 1D diffusion-reaction set-up).

    u_t = D u_xx + rho u (1 - u),    x in [0, L) periodic,    0 <= u0 <= 1

PDEBench's 1D reaction-diffusion data uses the same equation (its ``Nu`` is ``D``) on a periodic domain; so
does this simulator. Solutions stay in ``[0, 1]`` (maximum principle) and invade the unstable state
``u = 0`` with fronts of speed ``2 sqrt(D rho)`` and width ``~ sqrt(D / rho)``.

Scheme: Fourier pseudo-spectral in space (exponentially convergent) with Orszag's 2/3 rule on the state and
on ``u^2``; ETDRK4 in time (Cox & Matthews; formal order 4) with the diffusion ``-D k^2`` as the exactly
integrated linear part, so diffusion never limits the step; the reaction is the explicit part, and its rate
``rho`` alone sets the step (see :data:`REACTION_STEP`).

Invariants: none. Logistic growth creates mass (``d/dt int u dx = rho int u (1 - u) dx >= 0`` for
``0 <= u <= 1``), so :meth:`~Simulator.conserved` is empty. Residual: ``u_t - D u_xx - rho u (1 - u)``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sfm.errors import ConfigError
from sfm.physics.simulators import base
from sfm.physics.simulators.base import Simulator
from sfm.physics.simulators.checks import Coefficients
from sfm.physics.simulators.derivatives import central_time_difference, spectral_derivative
from sfm.physics.simulators.initial import IC_SETTINGS_1D, ic_params_1d, initial_1d
from sfm.physics.simulators.params import Param
from sfm.physics.simulators.spectral import _batch_1d, etdrk4_periodic_1d, periodic_grid

#: Largest ``rho * dt``. The reaction's Jacobian ``rho (1 - 2u)`` lies in ``[-rho, rho]``, far inside RK4's
#: real stability interval (-2.78), so accuracy sets the bound: at ``rho dt = 0.05`` the worst of 64 random
#: default trajectories (D = 0.1, rho = 10, the hardest corner) is 7e-7 from a dt/20 solve.
REACTION_STEP = 0.05
#: Spectral tail allowed at the dealiasing cut-off for the steepest front (see :func:`min_resolved_D`).
#: Measured on 32 random trajectories (rho = 10) against a 4x finer grid: worst error 6e-5 at the bound
#: (D = 8.5e-5 on the default grid), 2.5e-3 at D = 3e-5.
TAIL_EXPONENT = 12.0


def solve_diffusion_reaction(
    u0: np.ndarray,
    D: np.ndarray | float,
    rho: np.ndarray | float,
    length: float,
    t_out: np.ndarray,
    dt: float,
) -> np.ndarray:
    """Solve Fisher–KPP for a batch of initial conditions, each with its own ``D`` and ``rho``.

    Args:
        u0: Initial data ``[n, nx]`` on the grid ``x_i = i L / nx``; it is projected onto the dealiased modes
            (``|k| < nx/3``) first, which is the state the scheme evolves.
        D: Diffusivity (``>= 0``), a number or ``[n]``.
        rho: Reaction rate, a number or ``[n]``.
        length: Period ``L``.
        t_out: Non-decreasing output times ``[nt]`` (>= 0); the solve starts at ``t = 0``.
        dt: Largest time step; each interval between outputs is split into equal steps no larger.

    Returns:
        ``u`` ``[n, nt, nx]`` float64 at ``t_out``.
    """
    u0, c = _batch_1d(u0, D=D, rho=rho)
    return etdrk4_periodic_1d(
        u0,
        length,
        t_out,
        dt,
        linear=lambda k: -c["D"][:, None] * k**2,
        multiplier=lambda k: c["rho"][:, None],  # N(u) = rho (u - u^2)
        pointwise=lambda u: u - u * u,
    )


def min_resolved_D(nx: int, length: float, rho: float) -> float:
    """Smallest diffusivity the dealiased grid resolves at reaction rate ``rho``.

    The steepest front is the Ablowitz–Zeppetella wave ``(1 + exp(kappa x))^-2``, ``kappa = sqrt(rho / (6 D))``;
    its poles at ``|Im x| = pi / kappa`` make its spectrum fall like ``exp(-pi k / kappa)``. Requiring
    ``exp(-TAIL_EXPONENT)`` at the cut-off ``k_c = 2 pi (nx / 3) / L`` gives the bound.
    """
    k_cut = 2 * np.pi * (nx / 3) / length
    return rho * TAIL_EXPONENT**2 / (6 * np.pi**2 * k_cut**2)


@base.register
class DiffusionReaction(Simulator):
    """Fisher–KPP diffusion-reaction (see the module docstring for the scheme)."""

    name = "diffusion_reaction"
    equation = "u_t = D*u_xx + rho*u*(1 - u)"
    description = (
        "Fisher-KPP diffusion-reaction u_t = D u_xx + rho u (1 - u) on a periodic interval: logistic growth "
        "towards u = 1 spread by diffusion (PDEBench's 1D reaction-diffusion; its Nu is D). Initial data: "
        "random sine waves mapped into [0, 1] by default (ic: sine, fourier, bumps, fronts). Solved pseudo-spectrally (2/3 dealiasing) with ETDRK4."
    )
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "periodic"}
    params: ClassVar[dict[str, Param]] = {
        # PDEBench uses D in 0.5..5, where diffusion flattens the field within t ~ 0.01 and only the logistic
        # ODE remains; D in 1e-3..1e-1 keeps fronts (width sqrt(6 D / rho) >= 0.025 on [0, 1)) in the data.
        "D": Param((1e-3, 1e-1), bounds=(0.0, 1e3), log=True, doc="diffusivity"),
        # PDEBench's rates: 1, 2, 5, 10.
        "rho": Param((1.0, 10.0), bounds=(0.0, 1e4), log=True, doc="reaction (growth) rate"),
        "nx": Param(256, bounds=(8, 65536), integer=True, doc="grid points"),
        "nt": Param(41, bounds=(2, 100000), integer=True, doc="stored frames, t = 0 included"),
        "t_end": Param(1.0, bounds=(1e-6, 1e6), doc="final time (PDEBench: 1)"),
        "length": Param(1.0, bounds=(1e-6, 1e6), doc="period L of the domain [0, L)"),
        "dt_max": Param(1e-2, bounds=(1e-8, 1.0), doc="largest time step (also kept <= 0.05 / rho)"),
        **ic_params_1d(),
    }
    settings = ("nx", "nt", "t_end", "length", "dt_max", *IC_SETTINGS_1D)
    initial = IC_SETTINGS_1D

    def __init__(self, *, strict: bool = True, **values: object) -> None:
        super().__init__(strict=strict, **values)
        D = self.values["D"]
        D_low = D[0] if isinstance(D, tuple) else D
        D_min = min_resolved_D(self.values["nx"], self.values["length"], self._rho_max())
        if strict and D_low < D_min:
            raise ConfigError(
                f"diffusion_reaction: D={D_low:g} with rho up to {self._rho_max():g} is under-resolved on "
                f"nx={self.values['nx']} (needs D >= {D_min:.3g}); raise nx or D, or lower rho"
            )

    def _rho_max(self) -> float:
        rho = self.values["rho"]
        return max(rho) if isinstance(rho, tuple) else rho

    def time_step(self) -> float:
        """The step used: ``dt_max`` capped by ``REACTION_STEP / rho_max`` (the largest rho of the data set)."""
        rho_max = self._rho_max()
        return min(self.values["dt_max"], REACTION_STEP / rho_max) if rho_max > 0 else self.values["dt_max"]

    def _simulate(
        self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        v = self.values
        x = periodic_grid(v["nx"], v["length"])
        u0 = np.stack([initial_1d(r, x, v["length"], v, unit=True) for r in rngs])
        t = np.linspace(0.0, v["t_end"], v["nt"])
        D, rho = coeffs.get("D", v["D"]), coeffs.get("rho", v["rho"])
        return {"u": solve_diffusion_reaction(u0, D, rho, v["length"], t, self.time_step())}

    def _evolve(
        self, state: dict[str, np.ndarray], coeffs: Coefficients, t_out: np.ndarray
    ) -> dict[str, np.ndarray]:
        # The reaction's rate is rho |1 - 2u|: rho itself for 0 <= u <= 1 (the data's range, so a restart of
        # the data steps exactly as generation did); a state outside [0, 1] or a rho above the data set's
        # range shortens the step so rate * dt stays at REACTION_STEP.
        u0, rho = state["u"], coeffs["rho"]
        rate = float(np.max(rho)) * max(1.0, float(np.abs(1 - 2 * u0).max()))
        dt = self.time_step() if rate <= self._rho_max() else min(self.values["dt_max"], REACTION_STEP / rate)
        return {"u": solve_diffusion_reaction(u0, coeffs["D"], rho, self.values["length"], t_out, dt)}

    def _residual(
        self, fields: dict[str, np.ndarray], dt: float, spacing: tuple[float, ...], coeffs: Coefficients
    ) -> np.ndarray:
        u, (dx,) = fields["u"], spacing
        D, rho = coeffs["D"][:, None, None], coeffs["rho"][:, None, None]
        return (
            central_time_difference(u, dt) - (D * spectral_derivative(u, dx, 2) + rho * u * (1 - u))[:, 1:-1]
        )

    def coords(self) -> dict[str, list[float]]:
        v = self.values
        return {
            "t": np.linspace(0.0, v["t_end"], v["nt"]).tolist(),
            "x": periodic_grid(v["nx"], v["length"]).tolist(),
        }
