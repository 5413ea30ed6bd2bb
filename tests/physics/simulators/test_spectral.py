"""The shared 1D pseudo-spectral ETDRK4 solve against exact solutions of linear problems."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.errors import ConfigError
from sfm.physics.simulators.spectral import etdrk4_periodic_1d, periodic_grid

LENGTH = 2.0


def _advection_diffusion(x: np.ndarray, t: float, a: float, nu: float) -> np.ndarray:
    """Exact ``u_t + a u_x = nu u_xx`` from ``cos(pi x) + 0.5 sin(3 pi x)``: each mode is carried at speed
    ``a`` and damped by ``exp(-nu k^2 t)``."""
    k1, k3 = np.pi, 3 * np.pi
    return np.exp(-nu * k1**2 * t) * np.cos(k1 * (x - a * t)) + 0.5 * np.exp(-nu * k3**2 * t) * np.sin(
        k3 * (x - a * t)
    )


def test_linear_advection_diffusion_is_exact_per_trajectory():
    # With no nonlinear term ETDRK4 multiplies by exp(hL): exact at any step, so a coarse dt must still land
    # on the exact solution, with a different (a, nu) in each row of the batch.
    x = periodic_grid(64, LENGTH)
    a, nu = np.array([0.7, -1.3]), np.array([0.01, 0.2])
    t = np.array([0.0, 0.3, 1.1])
    u0 = np.stack([_advection_diffusion(x, 0.0, a[i], nu[i]) for i in range(2)])
    u = etdrk4_periodic_1d(
        u0,
        LENGTH,
        t,
        dt=0.5,
        linear=lambda k: -1j * a[:, None] * k - nu[:, None] * k**2,
        multiplier=lambda k: 0.0,
        pointwise=lambda u: u,
    )
    assert u.shape == (2, 3, 64)
    for i in range(2):
        for j, tt in enumerate(t):
            np.testing.assert_allclose(u[i, j], _advection_diffusion(x, tt, a[i], nu[i]), rtol=0, atol=1e-13)


def test_initial_state_is_projected_onto_the_dealiased_modes():
    x = periodic_grid(48, LENGTH)
    kept, dropped = np.cos(np.pi * x), np.cos(16 * 2 * np.pi * x / LENGTH)  # mode 16 = 48/3: removed
    u = etdrk4_periodic_1d(
        (kept + dropped)[None],
        LENGTH,
        [0.0],
        0.1,
        linear=lambda k: 0 * k,
        multiplier=lambda k: 0.0,
        pointwise=lambda u: u,
    )
    np.testing.assert_allclose(u[0, 0], kept, rtol=0, atol=1e-14)


def _growth_errors(dts: list[float]) -> list[float]:
    # u_t = nu u_xx + r u with the growth r u as the explicit part: exact u = exp((r - nu k^2) t) cos(k x).
    nu, r, t_end = 0.05, 2.0, 1.0
    x = periodic_grid(32, LENGTH)
    exact = np.exp((r - nu * np.pi**2) * t_end) * np.cos(np.pi * x)
    errors = []
    for dt in dts:
        u = etdrk4_periodic_1d(
            np.cos(np.pi * x)[None],
            LENGTH,
            [t_end],
            dt,
            linear=lambda k: -nu * k**2,
            multiplier=lambda k: r,
            pointwise=lambda u: u,
        )
        errors.append(float(np.abs(u[0, 0] - exact).max()))
    return errors


def test_explicit_part_is_fourth_order():
    dts = [0.1, 0.05, 0.025]
    errors = _growth_errors(dts)
    order = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 3.85 < order < 4.15, (errors, order)  # asymptotic: the error ratio tends to 2^4 = 16
    assert errors[-1] < 1e-6


def test_bad_times_are_refused():
    x = periodic_grid(16, LENGTH)
    with pytest.raises(ConfigError, match="non-decreasing"):
        etdrk4_periodic_1d(
            np.cos(np.pi * x)[None],
            LENGTH,
            [0.5, 0.1],
            0.1,
            linear=lambda k: -(k**2),
            multiplier=lambda k: 0.0,
            pointwise=lambda u: u,
        )
