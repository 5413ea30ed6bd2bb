"""The heat (diffusion) equation on the periodic interval.

    u_t = D u_xx,    x in [0, L) periodic

Scheme: the exact solution operator in Fourier space, ``u_hat_k(t) = u_hat_k(0) exp(-D k^2 t)``: each mode
of the trigonometric interpolant of the initial data decays exactly, so there is no time stepping and no
time error. For band-limited initial data (the default sine waves) the result is exact up to roundoff
(~1e-15); otherwise the only error is the interpolation error of the initial samples, which falls
exponentially with ``nx`` for analytic data.

Invariant: only the mass ``int u dx`` (``u_t = (D u_x)_x`` is a conservation law; the zero mode never decays);
the energy ``int u^2 dx`` decays at the rate ``2 D int u_x^2 dx``. Residual: ``u_t - D u_xx``.
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
from sfm.physics.simulators.spectral import _batch_1d, periodic_grid, rfft_wavenumbers


def solve_heat(u0: np.ndarray, D: np.ndarray | float, length: float, t_out: np.ndarray) -> np.ndarray:
    """Diffuse a batch of initial conditions, each with its own diffusivity, exactly (Fourier decay).

    Args:
        u0: Initial data ``[n, nx]`` on the grid ``x_i = i L / nx``.
        D: Diffusivity (``>= 0``), a number or ``[n]``.
        length: Period ``L``.
        t_out: Output times ``[nt]`` (``>= 0``: backward diffusion is ill-posed).

    Returns:
        ``u`` ``[n, nt, nx]`` float64 at ``t_out``.
    """
    u0, c = _batch_1d(u0, D=D)
    t = np.asarray(t_out, dtype=np.float64)
    if np.any(c["D"] < 0) or np.any(t < 0):
        raise ConfigError(f"heat: D and t_out must be >= 0 (backward diffusion is ill-posed), got D={D!r}")
    nx = u0.shape[1]
    k = rfft_wavenumbers(nx, length)
    decay = np.exp(-(c["D"][:, None, None] * t[None, :, None]) * k[None, None, :] ** 2)
    return np.fft.irfft(np.fft.rfft(u0)[:, None, :] * decay, n=nx)


@base.register
class Heat(Simulator):
    """The heat equation (see the module docstring for the scheme)."""

    name = "heat"
    equation = "u_t = D*u_xx"
    description = (
        "Heat (diffusion) equation u_t = D u_xx on a periodic interval: each Fourier mode k decays as "
        "exp(-D k^2 t). Initial data: random sine waves by default (ic: sine, fourier, bumps, fronts). Solved exactly in Fourier space."
    )
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "periodic"}
    params: ClassVar[dict[str, Param]] = {
        # Over t_end = 2 the slowest default mode (k = 2 pi) decays by exp(-0.08) at D = 1e-3 and exp(-0.8)
        # at D = 1e-2, the fastest (k = 8 pi) by exp(-1.3) and exp(-13): every trajectory keeps some signal.
        "D": Param((1e-3, 1e-2), bounds=(0.0, 1e3), log=True, doc="diffusivity"),
        "nx": Param(256, bounds=(8, 65536), integer=True, doc="grid points"),
        "nt": Param(41, bounds=(2, 100000), integer=True, doc="stored frames, t = 0 included"),
        "t_end": Param(2.0, bounds=(1e-6, 1e6), doc="final time"),
        "length": Param(1.0, bounds=(1e-6, 1e6), doc="period L of the domain [0, L)"),
        **ic_params_1d(),
    }
    settings = ("nx", "nt", "t_end", "length", *IC_SETTINGS_1D)
    initial = IC_SETTINGS_1D

    def _simulate(
        self, rngs: list[np.random.Generator], coeffs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        v = self.values
        x = periodic_grid(v["nx"], v["length"])
        u0 = np.stack([initial_1d(r, x, v["length"], v) for r in rngs])
        t = np.linspace(0.0, v["t_end"], v["nt"])
        return {"u": solve_heat(u0, coeffs.get("D", v["D"]), v["length"], t)}

    def _evolve(
        self, state: dict[str, np.ndarray], coeffs: Coefficients, t_out: np.ndarray
    ) -> dict[str, np.ndarray]:
        return {"u": solve_heat(state["u"], coeffs["D"], self.values["length"], t_out)}

    def _conserved_densities(
        self, fields: dict[str, np.ndarray], spacing: tuple[float, ...], coeffs: Coefficients
    ) -> dict[str, np.ndarray]:
        return {"mass": fields["u"]}

    def _residual(
        self, fields: dict[str, np.ndarray], dt: float, spacing: tuple[float, ...], coeffs: Coefficients
    ) -> np.ndarray:
        u, (dx,) = fields["u"], spacing
        return (
            central_time_difference(u, dt)
            - (coeffs["D"][:, None, None] * spectral_derivative(u, dx, 2))[:, 1:-1]
        )

    def coords(self) -> dict[str, list[float]]:
        v = self.values
        return {
            "t": np.linspace(0.0, v["t_end"], v["nt"]).tolist(),
            "x": periodic_grid(v["nx"], v["length"]).tolist(),
        }
