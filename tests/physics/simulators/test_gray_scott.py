"""Gray–Scott: the uniform-state ODE, exact Fourier-mode decay, time order, batching, generation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sfm.errors import ConfigError, DataError
from sfm.physics.simulators import get_simulator, trajectory_seeds
from sfm.physics.simulators.gray_scott import gaussian_seeds, solve_gray_scott

FEED = np.array([0.04, 0.02])
KILL = np.array([0.06, 0.05])
U0 = np.array([0.6, 0.3])
V0 = np.array([0.3, 0.25])
T = np.linspace(0.0, 200.0, 9)


def _ode_reference(i: int) -> np.ndarray:
    """The spatially uniform state obeys u' = -u v^2 + F (1 - u), v' = u v^2 - (F + k) v; solved tightly."""

    def rhs(_t, y):
        u, v = y
        return [-u * v * v + FEED[i] * (1 - u), u * v * v - (FEED[i] + KILL[i]) * v]

    sol = solve_ivp(rhs, (0, T[-1]), [U0[i], V0[i]], t_eval=T, method="DOP853", rtol=1e-12, atol=1e-14)
    return sol.y


def _uniform_errors(dt: float) -> list[float]:
    ones = np.ones((2, 8, 8))
    u, v = solve_gray_scott(ones * U0[:, None, None], ones * V0[:, None, None], 2e-5, 1e-5, FEED, KILL, T, dt)
    assert np.ptp(u, axis=(2, 3)).max() < 1e-14  # stays uniform
    return [
        max(np.abs(u[i, :, 0, 0] - ref[0]).max(), np.abs(v[i, :, 0, 0] - ref[1]).max())
        for i, ref in enumerate(map(_ode_reference, range(2)))
    ]


def test_uniform_state_follows_the_reaction_ode_at_fourth_order():
    # Both trajectories (different F, k, in one batch) leave their start through the nonlinear u v^2 term.
    dts = np.array([1.0, 0.5, 0.25])
    errs = np.array([_uniform_errors(dt) for dt in dts])  # [dt, trajectory]
    assert errs[-1].max() < 1e-8
    for j in range(2):
        order = np.polyfit(np.log(dts), np.log(errs[:, j]), 1)[0]
        assert 3.7 < order < 4.3, (order, errs[:, j])


def test_single_fourier_modes_decay_exactly():
    # Reactions off in the sense that the cubic term vanishes identically:
    #   v = 0:         u - 1 = eps cos(k.x) exp(-(Du |k|^2 + F) t)
    #   u = 0, F = 0:  v     = eps cos(k.x) exp(-(Dv |k|^2 + k) t)
    # which pins both diffusivities and both linear rates (F, k) exactly.
    n, length = 16, 2.0
    x = np.arange(n) * length / n
    kvec = 2 * np.pi * np.array([2, 1]) / length
    mode = 0.1 * np.cos(kvec[0] * x[:, None] + kvec[1] * x[None, :])
    k2 = kvec @ kvec
    du, dv = np.array([3e-3, 1e-3]), np.array([2e-3, 4e-3])
    feed, kill = np.array([0.05, 0.0]), np.array([0.03, 0.07])
    u0 = np.stack([1 + mode, np.zeros((n, n))])
    v0 = np.stack([np.zeros((n, n)), mode])
    t = np.linspace(0.0, 30.0, 4)
    u, v = solve_gray_scott(u0, v0, du, dv, feed, kill, t, dt=2.0, length=length)
    decay_u = np.exp(-(du[0] * k2 + feed[0]) * t)[:, None, None]
    decay_v = np.exp(-(dv[1] * k2 + kill[1]) * t)[:, None, None]
    np.testing.assert_allclose(u[0], 1 + mode * decay_u, rtol=0, atol=1e-14)
    np.testing.assert_allclose(v[1], mode * decay_v, rtol=0, atol=1e-14)
    assert np.abs(v[0]).max() == 0 and np.abs(u[1]).max() == 0


def test_pattern_time_error_falls_at_fourth_order():
    # Seeds growing into a pattern: diffusion and reaction interact, no closed form, so compare with the same
    # grid and a 4x smaller step (the semi-discrete ODE is identical in every run).
    rng = np.random.default_rng(2)
    u0, v0 = gaussian_seeds(rng, 32, 32, length=0.5)
    t = [0.0, 200.0]
    args = (u0[None], v0[None], 2e-5, 1e-5, 0.029, 0.057, t)
    dts = np.array([4.0, 2.0, 1.0])
    ref = solve_gray_scott(*args, dt=dts[-1] / 4, length=0.5)[1][:, -1]
    assert np.abs(ref - v0).max() > 0.1  # the pattern really evolves
    errs = [np.abs(solve_gray_scott(*args, dt=dt, length=0.5)[1][:, -1] - ref).max() for dt in dts]
    order = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 3.6 < order < 4.4, (order, errs)


def test_batched_equals_alone():
    rng = np.random.default_rng(3)
    seeds = [gaussian_seeds(rng, 32, 32, 0.5) for _ in range(2)]
    u0, v0 = (np.stack(z) for z in zip(*seeds))
    coeffs = (
        np.array([2e-5, 3e-5]),
        np.array([1e-5, 1.2e-5]),
        np.array([0.029, 0.04]),
        np.array([0.057, 0.06]),
    )
    t = np.linspace(0.0, 50.0, 3)
    both = solve_gray_scott(u0, v0, *coeffs, t, dt=1.0, length=0.5)
    for i in range(2):
        alone = solve_gray_scott(u0[i : i + 1], v0[i : i + 1], *(c[i] for c in coeffs), t, dt=1.0, length=0.5)
        np.testing.assert_array_equal(both[0][i], alone[0][0])
        np.testing.assert_array_equal(both[1][i], alone[1][0])


def test_seeds_are_periodic_smooth_bumps():
    rng = np.random.default_rng(4)
    u, v = gaussian_seeds(rng, 64, 64, 0.5)
    assert u.min() >= 0.5 - 1e-12 and u.max() <= 1.0 and v.max() <= 0.25 and v.min() >= 0.0
    assert v.max() > 0.18  # an isolated seed peaks at v = tanh(1)/4 ~ 0.19, overlapping ones towards 1/4
    np.testing.assert_allclose(u + 2 * v, 1.0)


SMALL = dict(nx=32, ny=32, nt=3, t_end=40.0, F=[0.025, 0.035])


def test_generation_is_deterministic_chunk_independent_float32():
    sim = get_simulator("gray_scott", **SMALL)
    seeds = trajectory_seeds(seed=11, start=0, stop=4)
    full = sim.generate(seeds)
    halves = [sim.generate(seeds[:2]), sim.generate(seeds[2:])]
    for key in ("u", "v", "F"):
        np.testing.assert_array_equal(full[key], np.concatenate([h[key] for h in halves]))
    for key in ("u", "v"):
        assert full[key].dtype == np.float32 and full[key].shape == (4, 3, 32, 32)
        assert np.all(np.isfinite(full[key]))
    assert sim.meta().varying == ["F"] and sim.meta().field_shapes["v"] == [3, 32, 32]


def test_parameter_and_input_errors():
    with pytest.raises(ConfigError, match="did you mean 'F'"):
        get_simulator("gray_scott", f=0.03)
    with pytest.raises(ConfigError, match="grid setting"):
        get_simulator("gray_scott", nx=[32, 64])
    ones = np.ones((1, 8, 8))
    with pytest.raises(ConfigError, match=">= 0"):
        solve_gray_scott(ones, ones, 1e-5, 1e-5, -0.01, 0.05, [0.0, 1.0], dt=1.0)
    with pytest.raises(DataError, match="finite"):
        solve_gray_scott(ones * np.nan, ones, 1e-5, 1e-5, 0.03, 0.05, [0.0, 1.0], dt=1.0)


def test_defaults_form_a_pattern():
    # The defaults claim a pattern-forming regime: seeds must spread into a pattern covering a good part of
    # the square (in a non-forming regime they die back to u = 1, v = 0).
    sim = get_simulator("gray_scott", nt=2)
    v = sim.generate(trajectory_seeds(seed=0, start=0, stop=1))["v"][0, -1]
    assert 0.2 < (v > 0.1).mean() < 0.9 and v.std() > 0.05


def test_evolve_restarts_a_generated_trajectory():
    # Round trip: continuing from a stored (float32) frame reproduces the later stored frames.
    sim = get_simulator("gray_scott", **SMALL)
    out = sim.generate(trajectory_seeds(seed=1, start=0, stop=3))
    t = np.asarray(sim.coords()["t"])
    again = sim.evolve({"u": out["u"][:, 1], "v": out["v"][:, 1]}, {"F": out["F"]}, t[2:] - t[1])
    for key in ("u", "v"):
        np.testing.assert_allclose(again[key], out[key][:, 2:], rtol=0, atol=1e-6)
