"""Fisher–KPP against two exact solutions: the logistic ODE and the Ablowitz–Zeppetella travelling wave.

Why two: a spatially uniform state obeys the logistic ODE exactly (tests the reaction, the explicit part of
ETDRK4, alone). The Ablowitz–Zeppetella front ``u = (1 + exp(kappa (x - c t)))^-2`` with
``kappa = sqrt(rho / (6 D))`` and ``c = 5 sqrt(rho D / 6)`` tests diffusion and reaction together, but it is
not periodic (1 behind the front, 0 ahead). Its mirror image is a solution too, so on a long periodic domain
a plateau of 1 bounded by two outward-moving fronts is exact up to where the two halves meet: there the
mismatch is ``exp(-kappa * distance)``, below 1e-17 for the distances used here.
"""

from __future__ import annotations

import numpy as np
import pytest

from sfm.errors import ConfigError
from sfm.physics.simulators import get_simulator
from sfm.physics.simulators.diffusion_reaction import min_resolved_D, solve_diffusion_reaction
from sfm.physics.simulators.initial import sine_waves_1d, unit_sine_waves_1d
from sfm.physics.simulators.spectral import periodic_grid

# kappa = 1 and c = 5: a front 1 unit wide; plateau half-width 40 at t = 0, 50 at t = 2; domain half-width 80.
D, RHO, L = 1.0, 6.0, 160.0
KAPPA, SPEED = np.sqrt(RHO / (6 * D)), 5 * np.sqrt(RHO * D / 6)


def two_fronts(x: np.ndarray, t: float, half_width: float = 40.0) -> np.ndarray:
    xi = np.abs(x - L / 2) - half_width - SPEED * t
    return 1.0 / (1.0 + np.exp(KAPPA * xi)) ** 2


def logistic(u0: np.ndarray, rho: np.ndarray, t: np.ndarray) -> np.ndarray:
    g = np.exp(rho * t)
    return u0 * g / (1 - u0 + u0 * g)


def observed_order(dts: list[float], errors: list[float]) -> float:
    """Least-squares slope of log(error) against log(dt)."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


def test_travelling_fronts_match_ablowitz_zeppetella():
    x = periodic_grid(
        1024, L
    )  # dealiased cut-off k = 13.4; the front's spectrum is ~exp(-pi k / kappa) there
    u = solve_diffusion_reaction(two_fronts(x, 0.0)[None], D, RHO, L, [0.0, 1.0, 2.0], dt=0.005)[0]
    for i, t in enumerate([0.0, 1.0, 2.0]):
        assert np.abs(u[i] - two_fronts(x, t)).max() < 5e-8, t


def test_time_order_is_four_on_the_travelling_wave():
    x = periodic_grid(1024, L)
    u0 = two_fronts(x, 0.0)[None]
    dts = [0.04, 0.02, 0.01]
    errors = [
        np.abs(solve_diffusion_reaction(u0, D, RHO, L, [1.0], dt)[0, 0] - two_fronts(x, 1.0)).max()
        for dt in dts
    ]
    assert abs(observed_order(dts, errors) - 4) < 0.3, errors


def test_uniform_state_follows_the_logistic_ode():
    u0 = np.array([0.01, 0.3, 0.9])[:, None] * np.ones((3, 32))
    rho = np.array([1.0, 5.0, 10.0])
    t = np.linspace(0.0, 1.0, 5)
    exact = logistic(u0[:, :1, None], rho[:, None, None], t[None, :, None])[:, :, 0]
    dts = [0.02, 0.01, 0.005]
    errors = []
    for dt in dts:
        u = solve_diffusion_reaction(u0, 0.1, rho, 1.0, t, dt)
        assert np.ptp(u, axis=2).max() < 1e-14  # stays uniform
        errors.append(np.abs(u[:, :, 0] - exact).max())
    assert errors[-1] < 1e-8
    assert abs(observed_order(dts, errors) - 4) < 0.3, errors


def test_batch_equals_single():
    x = periodic_grid(128, 1.0)
    u0 = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * x), 0.2 + 0.1 * np.cos(6 * np.pi * x)])
    Ds, rhos = np.array([0.01, 0.002]), np.array([2.0, 8.0])
    both = solve_diffusion_reaction(u0, Ds, rhos, 1.0, [0.0, 0.5], 5e-3)
    for i in range(2):
        alone = solve_diffusion_reaction(u0[i : i + 1], Ds[i], rhos[i], 1.0, [0.0, 0.5], 5e-3)[0]
        np.testing.assert_allclose(both[i], alone, rtol=0, atol=1e-14)


def test_unit_initial_data_is_an_affine_image_of_the_same_sine_waves():
    x = periodic_grid(256, 1.0)
    for seed in range(20):
        s = sine_waves_1d(np.random.default_rng(seed), x, 1.0)
        u = unit_sine_waves_1d(np.random.default_rng(seed), x, 1.0)
        # u = (1 + s / S) / 2 with one S >= max |s| (the amplitude sum) per trajectory: so 0 <= u <= 1.
        away = np.abs(s) > 1e-3  # the ratio is 0/0 where the waves cross zero
        scale = s[away] / (2 * u[away] - 1)
        assert np.ptp(scale) < 1e-9 * np.abs(scale[0])
        assert np.abs(scale[0]) >= np.abs(s).max() and u.min() >= 0.0 and u.max() <= 1.0


def test_generated_data_stays_in_unit_interval():
    # Maximum principle: 0 <= u0 <= 1 implies 0 <= u <= 1 (up to the scheme's error).
    sim = get_simulator("diffusion_reaction", nx=128, nt=6)
    cols = sim.generate(range(6))
    u = cols["u"]
    assert u.min() > -1e-6 and u.max() < 1 + 1e-6
    assert np.all((cols["rho"] >= 1) & (cols["rho"] <= 10)) and np.all(
        (cols["D"] >= 1e-3) & (cols["D"] <= 0.1)
    )
    assert sim.time_step() == 0.005  # 0.05 / rho_max


def test_under_resolved_diffusivity_is_refused():
    assert min_resolved_D(256, 1.0, 10.0) < 1e-4  # the default D >= 1e-3 is far above it
    with pytest.raises(ConfigError, match=r"D=1e-05 with rho up to 10 is under-resolved on nx=256"):
        get_simulator("diffusion_reaction", D=[1e-5, 1e-3])
    get_simulator("diffusion_reaction", D=[1e-5, 1e-3], rho=1.0, nx=1024)  # slower reaction, finer grid: fine
