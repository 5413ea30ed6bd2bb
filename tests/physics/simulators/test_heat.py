"""Heat equation against the exact Fourier-mode decay exp(-D k^2 t)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import iv

from sfm.errors import ConfigError
from sfm.physics.simulators import get_simulator
from sfm.physics.simulators.heat import solve_heat
from sfm.physics.simulators.spectral import periodic_grid


def test_each_mode_decays_as_exp_minus_d_k2_t():
    L = 2.0
    x = periodic_grid(128, L)
    t = np.linspace(0.0, 1.5, 4)
    modes = [(1, 0.8, 0.2), (3, -0.5, 1.0), (7, 0.25, -0.4)]  # (m, amplitude, phase)
    u0 = 0.3 + sum(a * np.cos(2 * np.pi * m * x / L + p) for m, a, p in modes)
    D = np.array([0.01, 0.003])
    u = solve_heat(np.stack([u0, u0]), D, L, t)
    for i, d in enumerate(D):
        k = 2 * np.pi * np.array([m for m, _, _ in modes]) / L
        exact = 0.3 + sum(
            a * np.exp(-d * kk**2 * t[:, None]) * np.cos(kk * x[None, :] + p)
            for kk, (_, a, p) in zip(k, modes)
        )
        assert np.abs(u[i] - exact).max() < 1e-14


def test_space_error_falls_exponentially_for_analytic_data():
    # u0 = exp(cos 2 pi x) = I_0(1) + 2 sum_k I_k(1) cos(2 pi k x), so the exact solution is the same series
    # with each term damped by exp(-D (2 pi k)^2 t). Sampling u0 aliases the tail; that is the only error.
    D, t = 0.002, 0.3
    k = np.arange(1, 40)

    def exact(x):
        return iv(0, 1.0) + 2 * (iv(k, 1.0) * np.exp(-D * (2 * np.pi * k) ** 2 * t)) @ np.cos(
            2 * np.pi * np.outer(k, x)
        )

    grids = (8, 12, 16, 20)
    errors = []
    for nx in grids:
        x = periodic_grid(nx, 1.0)
        errors.append(
            np.abs(solve_heat(np.exp(np.cos(2 * np.pi * x))[None], D, 1.0, [t])[0, 0] - exact(x)).max()
        )
    orders = np.diff(-np.log(errors)) / np.diff(np.log(grids))
    assert orders[0] > 8 and np.all(np.diff(orders) > 2), (errors, orders)
    assert errors[-1] < 1e-8


def test_batch_equals_single_and_mean_is_conserved():
    x = periodic_grid(64, 1.0)
    u0 = np.stack([np.sin(2 * np.pi * x) + 0.5, np.abs(np.sin(6 * np.pi * x))])
    D = np.array([0.05, 0.001])
    both = solve_heat(u0, D, 1.0, [0.0, 0.2, 1.0])
    for i in range(2):
        np.testing.assert_array_equal(both[i], solve_heat(u0[i : i + 1], D[i], 1.0, [0.0, 0.2, 1.0])[0])
    np.testing.assert_allclose(both.mean(axis=2), u0.mean(axis=1)[:, None].repeat(3, axis=1), atol=1e-15)


def test_backward_diffusion_is_refused():
    with pytest.raises(ConfigError, match="D and t_out must be >= 0"):
        solve_heat(np.zeros((1, 8)), -0.1, 1.0, [1.0])
    with pytest.raises(ConfigError, match="heat: D="):
        get_simulator("heat", D=-1.0)


def test_simulator_decays_each_stored_trajectory_exactly():
    sim = get_simulator("heat", nx=64, nt=3, t_end=2.0)
    cols = sim.generate([3, 4, 5])
    t = np.array(sim.coords()["t"])
    for u, d in zip(cols["u"].astype(np.float64), cols["D"]):
        assert 1e-3 <= d <= 1e-2
        assert np.abs(solve_heat(u[:1], d, 1.0, t)[0] - u).max() < 1e-6
