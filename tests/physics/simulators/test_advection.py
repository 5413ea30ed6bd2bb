"""Advection against the exact shift u0(x - beta t): roundoff-exact for band-limited data, spectral otherwise."""

from __future__ import annotations

import numpy as np

from sfm.physics.simulators import get_simulator
from sfm.physics.simulators.advection import solve_advection
from sfm.physics.simulators.spectral import periodic_grid


def waves(x: np.ndarray) -> np.ndarray:
    return 0.7 * np.sin(2 * np.pi * x + 0.3) + 0.4 * np.cos(6 * np.pi * x - 1.1)


def test_band_limited_data_is_shifted_exactly():
    x = periodic_grid(256, 1.0)
    t = np.linspace(0.0, 3.0, 7)
    beta = np.array([0.37, -1.7])
    u = solve_advection(np.stack([waves(x)] * 2), beta, 1.0, t)
    exact = waves(x[None, None, :] - beta[:, None, None] * t[None, :, None])
    assert np.abs(u - exact).max() < 1e-13


def test_no_error_accumulates_over_long_times():
    # The shift is reduced modulo the period before the phase is formed, so 1000 periods later the profile is
    # still exact to roundoff (beta and t are exact binary numbers, so the shift is exactly 2000.25).
    x = periodic_grid(64, 2.0)
    u = solve_advection(waves(x / 2)[None], 1.0, 2.0, [2000.25])[0, 0]
    assert np.abs(u - waves((x - 0.25) / 2)).max() < 1e-14


def test_space_error_falls_exponentially_for_analytic_data():
    # exp(cos) is analytic but not band-limited (Fourier coefficients I_k(1) ~ 1 / (2^k k!)): the only error
    # is the interpolation of the initial samples, and it falls faster than any power of nx.
    def f(x):
        return np.exp(np.cos(2 * np.pi * x))

    grids = (8, 12, 16, 20)
    t = np.linspace(0.0, 1.0, 23)  # many shifts: the error at one shift depends on its phase luck
    errors = []
    for nx in grids:
        x = periodic_grid(nx, 1.0)
        u = solve_advection(f(x)[None], 0.37, 1.0, t)[0]
        errors.append(np.abs(u - f(x[None, :] - 0.37 * t[:, None])).max())
    orders = np.diff(-np.log(errors)) / np.diff(np.log(grids))
    assert orders[0] > 8 and np.all(np.diff(orders) > 2), (errors, orders)
    assert errors[-1] < 1e-8


def test_batch_equals_single():
    x = periodic_grid(64, 1.0)
    u0 = np.stack([waves(x), waves(x) ** 2])
    beta = np.array([0.5, -2.0])
    both = solve_advection(u0, beta, 1.0, [0.0, 0.4])
    for i in range(2):
        np.testing.assert_array_equal(both[i], solve_advection(u0[i : i + 1], beta[i], 1.0, [0.0, 0.4])[0])


def test_simulator_frames_are_shifts_of_the_first():
    sim = get_simulator("advection", nx=128, nt=5, t_end=1.0)
    cols = sim.generate([7, 8])
    x, t = np.array(sim.coords()["x"]), np.array(sim.coords()["t"])
    for u, beta in zip(cols["u"].astype(np.float64), cols["beta"]):
        assert 0.1 <= beta <= 2.0
        shifted = solve_advection(u[:1], beta, 1.0, t)[0]  # the stored t = 0 frame, advected exactly
        assert np.abs(shifted - u).max() < 1e-6  # float32 storage
        assert u.shape == (5, 128) and x[1] == 1.0 / 128
