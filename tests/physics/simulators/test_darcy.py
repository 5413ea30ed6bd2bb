"""Darcy flow: manufactured-solution convergence, the discrete stencil and flux balance, batching, generation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from sfm.errors import ConfigError
from sfm.physics.simulators import get_simulator, trajectory_seeds
from sfm.physics.simulators.darcy import binary_permeability, solve_darcy


def _nodes(nx: int, ny: int, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.linspace(0, length, nx), np.linspace(0, length, ny), indexing="ij")


def test_second_order_against_manufactured_solution():
    # Smooth a(x) and u(x) with u = 0 on the boundary; f = -div(a grad u) derived symbolically.
    x, y = sp.symbols("x y")
    u = sp.sin(sp.pi * x) * sp.sin(sp.pi * y) * sp.exp(x * y)
    a = 1 + 0.5 * sp.sin(2 * sp.pi * x) * sp.cos(3 * sp.pi * y)
    f = -(sp.diff(a * sp.diff(u, x), x) + sp.diff(a * sp.diff(u, y), y))
    u_f, a_f, f_f = (sp.lambdify((x, y), e, "numpy") for e in (u, a, f))
    hs, errs = [], []
    for n in (17, 33, 65):
        X, Y = _nodes(n, n)
        u_num = solve_darcy(a_f(X, Y)[None], f_f(X, Y)[None])[0]
        hs.append(1 / (n - 1))
        errs.append(np.abs(u_num - u_f(X, Y)).max())
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.9 < order < 2.1, (order, errs)
    assert errs[-1] < 1e-3


def _harmonic(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 2 * p * q / (p + q)


def test_discrete_equation_and_flux_balance_with_jumps():
    # A two-valued permeability (jumps everywhere) on a non-square grid (nx != ny, hx != hy). The solution
    # must satisfy the 5-point finite-volume equation written out by hand, and, summing it over the interior,
    # the net boundary outflux must equal the total source (interior fluxes cancel pairwise).
    rng = np.random.default_rng(1)
    nx, ny, length, beta = 41, 29, 2.0, 3.0
    a = binary_permeability(rng, nx, ny, high=12.0, low=3.0)
    u = solve_darcy(a[None], beta, length)[0]
    hx, hy = length / (nx - 1), length / (ny - 1)
    ax, ay = _harmonic(a[:-1], a[1:]), _harmonic(a[:, :-1], a[:, 1:])
    fx = ax * (u[1:] - u[:-1]) / hx  # flux a u_x on x-faces
    fy = ay * (u[:, 1:] - u[:, :-1]) / hy
    residual = -(fx[1:, 1:-1] - fx[:-1, 1:-1]) / hx - (fy[1:-1, 1:] - fy[1:-1, :-1]) / hy
    np.testing.assert_allclose(residual, beta, rtol=1e-10)
    outflux = (ax[0, 1:-1] * u[1, 1:-1] + ax[-1, 1:-1] * u[-2, 1:-1]).sum() * hy / hx
    outflux += (ay[1:-1, 0] * u[1:-1, 1] + ay[1:-1, -1] * u[1:-1, -2]).sum() * hx / hy
    assert outflux == pytest.approx(beta * hx * hy * (nx - 2) * (ny - 2), rel=1e-10)
    # Boundary condition and maximum principle (f > 0 gives u > 0 inside).
    assert np.all(u[[0, -1]] == 0) and np.all(u[:, [0, -1]] == 0)
    assert np.all(u[1:-1, 1:-1] > 0)


def test_transposed_problem_gives_transposed_solution():
    # Catches any x/y mix-up in the assembly on a non-square grid.
    rng = np.random.default_rng(2)
    a = binary_permeability(rng, 23, 17, high=5.0, low=1.0)
    f = rng.uniform(0.5, 1.5, size=(23, 17))
    u = solve_darcy(a[None], f[None])[0]
    u_t = solve_darcy(a.T[None], f.T[None])[0]
    np.testing.assert_allclose(u_t, u.T, rtol=1e-12, atol=1e-15)


def test_batched_equals_alone():
    rng = np.random.default_rng(3)
    a = np.stack([binary_permeability(rng, 33, 33), binary_permeability(rng, 33, 33, high=1.0, low=0.1)])
    beta = np.array([1.0, 10.0])
    both = solve_darcy(a, beta)
    for i in range(2):
        np.testing.assert_array_equal(both[i], solve_darcy(a[i : i + 1], beta[i])[0])


def test_bad_permeability_raises():
    with pytest.raises(ConfigError, match="positive"):
        solve_darcy(-np.ones((1, 8, 8)), 1.0)
    with pytest.raises(ConfigError, match="3 x 3"):
        solve_darcy(np.ones((1, 2, 8)), 1.0)


def test_permeability_is_two_valued_and_balanced():
    rng = np.random.default_rng(4)
    a = np.stack([binary_permeability(rng, 32, 32, high=12.0, low=3.0) for _ in range(200)])
    assert set(np.unique(a)) == {3.0, 12.0}
    # Zero-mean field: each value covers half the square on average (200 draws: std of the mean ~0.02).
    assert (a == 12.0).mean() == pytest.approx(0.5, abs=0.06)


def test_generation_is_deterministic_chunk_independent_float32():
    sim = get_simulator("darcy", nx=33, ny=33, beta=[0.5, 2.0])
    seeds = trajectory_seeds(seed=7, start=0, stop=4)
    full = sim.generate(seeds)
    halves = [sim.generate(seeds[:2]), sim.generate(seeds[2:])]
    for key in ("a", "u", "beta"):
        np.testing.assert_array_equal(full[key], np.concatenate([h[key] for h in halves]))
    assert full["u"].dtype == np.float32 and full["u"].shape == (4, 1, 33, 33)
    assert full["a"].dtype == np.float32 and full["a"].shape == (4, 1, 33, 33)
    assert np.all(np.isfinite(full["u"])) and set(np.unique(full["a"])) <= {3.0, 12.0}
    # u scales with beta: the per-trajectory beta really reached the solver.
    again = solve_darcy(full["a"][:, 0].astype(np.float64), full["beta"])
    np.testing.assert_allclose(full["u"][:, 0], again, rtol=1e-6, atol=1e-9)


def test_meta_is_steady():
    meta = get_simulator("darcy", nx=33, ny=17).meta()
    assert meta.steady and "t" not in meta.coords
    assert meta.fields == ["a", "u"] and meta.field_shapes == {"a": [1, 33, 17], "u": [1, 33, 17]}
    assert meta.coords["x"][0] == 0.0 and meta.coords["x"][-1] == 1.0
    assert meta.boundary_conditions == {"x": "dirichlet", "y": "dirichlet"}
