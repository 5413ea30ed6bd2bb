"""Navier–Stokes (vorticity form): exact solutions, the advection term, time order, batching, generation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from sfm.errors import ConfigError, DataError
from sfm.physics.simulators import get_simulator, trajectory_seeds
from sfm.physics.simulators.navier_stokes import (
    advection,
    fno_forcing,
    solve_navier_stokes,
    velocity_from_vorticity,
    vorticity_grf,
)


def _grid(n: int, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n) * length / n
    return np.meshgrid(x, x, indexing="ij")


def test_taylor_green_decays_exactly():
    # w = 2k cos(kx) cos(ky) makes u.grad(w) vanish, so w(t) = w0 exp(-2 nu k^2 t) exactly.
    X, Y = _grid(32)
    nu = np.array([1e-2, 3e-3])
    ks = 2 * np.pi * np.array([1, 3])
    w0 = np.stack([2 * k * np.cos(k * X) * np.cos(k * Y) for k in ks])
    t = np.linspace(0.0, 2.0, 5)
    w = solve_navier_stokes(w0, nu, None, t, dt=0.05)
    exact = w0[:, None] * np.exp(
        -2 * nu[:, None, None, None] * ks[:, None, None, None] ** 2 * t[:, None, None]
    )
    assert np.abs(w - exact).max() < 1e-12 * np.abs(w0).max()


def test_forced_shell_relaxes_to_fno_forcing_balance():
    # Every field made of modes with one |k| has u.grad(w) = 0. FNO's forcing lives on the |k|^2 = 2 (2pi)^2
    # shell, as does the Taylor–Green mode below, so w(t) = w_inf + (w0 - w_inf) exp(-nu |k|^2 t) with the
    # steady balance w_inf = f / (nu |k|^2): an exact test of the forcing and viscous terms together.
    X, Y = _grid(32)
    x = X[:, 0]
    nu = 5e-3
    f = fno_forcing(x, x, amplitude=0.1)
    k = 2 * np.pi
    w0 = 3.0 * np.sin(k * X) * np.sin(k * Y)
    t = np.array([0.0, 1.0, 5.0, 20.0])
    w = solve_navier_stokes(w0[None], nu, f, t, dt=0.1)[0]
    w_inf = f / (nu * 2 * k**2)
    exact = w_inf + (w0 - w_inf) * np.exp(-nu * 2 * k**2 * t)[:, None, None]
    assert np.abs(w - exact).max() < 1e-11 * np.abs(exact).max()


def test_advection_term_matches_analytic_jacobian():
    # psi mixes two |k| shells, so u.grad(w) is non-zero; the reference is sympy's derivative of the closed
    # form. This pins the conventions u = psi_y, v = -psi_x, -lap(psi) = w.
    x, y = sp.symbols("x y")
    psi = sp.sin(2 * sp.pi * x) * sp.cos(4 * sp.pi * y) + 0.5 * sp.cos(6 * sp.pi * x)
    w = -(sp.diff(psi, x, 2) + sp.diff(psi, y, 2))
    adv = sp.diff(psi, y) * sp.diff(w, x) - sp.diff(psi, x) * sp.diff(w, y)
    X, Y = _grid(32)
    w_num = sp.lambdify((x, y), w, "numpy")(X, Y)
    expected = sp.lambdify((x, y), adv, "numpy")(X, Y)
    assert np.abs(advection(w_num) - expected).max() < 1e-10 * np.abs(expected).max()
    u, v = velocity_from_vorticity(w_num)
    assert np.allclose(u, sp.lambdify((x, y), sp.diff(psi, y), "numpy")(X, Y), atol=1e-12)
    assert np.allclose(v, sp.lambdify((x, y), -sp.diff(psi, x), "numpy")(X, Y), atol=1e-12)


def test_time_error_falls_at_fourth_order():
    # With forcing and a random (multi-shell) vorticity the nonlinearity is active and no closed form exists,
    # so compare to the same spatial discretization with a 4x smaller step: the semi-discrete ODE is identical
    # in every run, which isolates the time error (the reference's own error is 4^4 = 256x below the finest).
    rng = np.random.default_rng(3)
    n = 32
    w0 = 4.0 * vorticity_grf(rng, n, n)[None]
    x = np.arange(n) / n
    f = fno_forcing(x, x, amplitude=1.0)
    t = [0.0, 1.0]
    dts = np.array([0.1 / 4, 0.1 / 8, 0.1 / 16])
    ref = solve_navier_stokes(w0, 2e-3, f, t, dt=dts[-1] / 4)[:, -1]
    assert np.abs(ref - w0).max() > 0.5 * np.abs(w0).max()  # the flow really evolves
    errs = [np.abs(solve_navier_stokes(w0, 2e-3, f, t, dt=dt)[:, -1] - ref).max() for dt in dts]
    order = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 3.7 < order < 4.3, (order, errs)


def test_batched_equals_alone_with_adaptive_steps():
    # Different viscosities and forcing amplitudes give different Courant-limited step counts; lockstep with
    # masking must reproduce each trajectory's solo arithmetic exactly.
    rng = np.random.default_rng(0)
    n = 32
    w0 = np.stack([vorticity_grf(rng, n, n), 3.0 * vorticity_grf(rng, n, n)])
    x = np.arange(n) / n
    f = np.stack([fno_forcing(x, x, 0.1), fno_forcing(x, x, 0.5)])
    nu = np.array([1e-3, 2e-4])
    t = np.linspace(0.0, 2.0, 5)
    both = solve_navier_stokes(w0, nu, f, t, dt=0.1, cfl=1.0)
    for i in range(2):
        alone = solve_navier_stokes(w0[i : i + 1], nu[i], f[i], t, dt=0.1, cfl=1.0)
        np.testing.assert_array_equal(both[i], alone[0])


def test_courant_guard_raises_when_the_flow_outruns_the_step():
    # From rest under strong forcing the step is chosen for a still fluid; one long interval later the
    # Courant number is far past the stable limit, which must be an error, not silently wrong data.
    x = np.arange(32) / 32
    with pytest.raises(ConfigError, match="Courant"):
        solve_navier_stokes(np.zeros((1, 32, 32)), 1e-3, fno_forcing(x, x, 10.0), [0, 1, 2], dt=0.5, cfl=1.0)


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="t_out"):
        solve_navier_stokes(np.zeros((1, 8, 8)), 1e-3, None, [1.0, 0.5], dt=0.1)
    with pytest.raises(ConfigError, match="nu"):
        solve_navier_stokes(np.zeros((1, 8, 8)), -1e-3, None, [0.0, 1.0], dt=0.1)
    w0 = np.zeros((1, 8, 8))
    w0[0, 3, 3] = np.nan
    with pytest.raises(DataError, match="finite"):
        solve_navier_stokes(w0, 1e-3, None, [0.0, 1.0], dt=0.1)


def test_grf_matches_its_spectrum():
    # Averaged over draws, |w_hat(k)|^2 / (nx ny)^2 must equal 2 sigma^2 (|k|^2 + tau^2)^-alpha per mode.
    rng = np.random.default_rng(5)
    n, draws = 16, 400
    w = np.stack([vorticity_grf(rng, n, n) for _ in range(draws)])
    assert abs(w.mean()) < 1e-12
    power = (np.abs(np.fft.fft2(w)) ** 2).mean(axis=0) / n**4
    k2 = (2 * np.pi) ** 2 * 2.0  # the (1, 1) mode
    expected = 2 * 7.0**3 * (k2 + 49.0) ** -2.5
    assert power[1, 1] == pytest.approx(expected, rel=0.2)  # 400 draws: ~5% sampling error per mode


SMALL = dict(nx=32, ny=32, nt=5, t_end=1.0)


def test_generation_is_deterministic_chunk_independent_float32():
    sim = get_simulator("navier_stokes", **SMALL)
    seeds = trajectory_seeds(seed=0, start=0, stop=4)
    full = sim.generate(seeds)
    halves = [sim.generate(seeds[:2]), sim.generate(seeds[2:])]
    np.testing.assert_array_equal(full["w"], np.concatenate([h["w"] for h in halves]))
    np.testing.assert_array_equal(full["nu"], np.concatenate([h["nu"] for h in halves]))
    np.testing.assert_array_equal(full["w"], sim.generate(seeds)["w"])
    assert full["w"].dtype == np.float32 and full["w"].shape == (4, 5, 32, 32)
    assert np.all(np.isfinite(full["w"]))
    assert np.all((full["nu"] >= 1e-4) & (full["nu"] <= 1e-3)) and len(set(full["nu"])) == 4
    assert np.std(full["w"][:, 0]) > 0.05  # a real random initial field, not zeros


def test_meta_and_parameter_errors():
    sim = get_simulator("navier_stokes", **SMALL)
    meta = sim.meta()
    assert meta.fields == ["w"] and meta.field_shapes["w"] == [5, 32, 32]
    assert meta.coords["t"][-1] == 1.0 and meta.dt == pytest.approx(0.25)
    assert meta.varying == ["nu"] and meta.boundary_conditions == {"x": "periodic", "y": "periodic"}
    with pytest.raises(ConfigError, match="nu"):
        get_simulator("navier_stokes", nu=-1.0)
    with pytest.raises(ConfigError, match="did you mean 'nu'"):
        get_simulator("navier_stokes", nuu=1e-3)


def test_evolve_restarts_a_generated_trajectory():
    # Round trip: continuing from a stored (float32) frame reproduces the later stored frames, so evolve()
    # (used by the coarse-solver baseline) is the same dynamics as generate().
    sim = get_simulator("navier_stokes", **SMALL)
    out = sim.generate(trajectory_seeds(seed=1, start=0, stop=3))
    t = np.asarray(sim.coords()["t"])
    again = sim.evolve({"w": out["w"][:, 1]}, {"nu": out["nu"]}, t[2:] - t[1])["w"]
    np.testing.assert_allclose(again, out["w"][:, 2:], rtol=0, atol=1e-6 * np.abs(out["w"]).max())
