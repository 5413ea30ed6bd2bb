"""Viscous Burgers against the Cole–Hopf solution; time order 4; batching; resolution guard."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ive

from sfm.errors import ConfigError
from sfm.physics.simulators import get_simulator
from sfm.physics.simulators.burgers import min_resolved_nu, solve_burgers
from sfm.physics.simulators.spectral import periodic_grid


def cole_hopf_sine(x: np.ndarray, t: np.ndarray, nu: float, terms: int = 400) -> np.ndarray:
    """Exact solution ``[nt, nx]`` of ``u_t + u u_x = nu u_xx`` on [0, 1) with ``u0 = sin(2 pi x)``.

    Cole–Hopf: ``u = -2 nu phi_x / phi`` with ``phi_t = nu phi_xx`` and ``phi0 = exp(cos(2 pi x) / (4 pi nu))``,
    whose Fourier series is ``I_0(a) + 2 sum_k I_k(a) cos(2 pi k x)``, ``a = 1 / (4 pi nu)``. Each mode
    decays as ``exp(-nu (2 pi k)^2 t)``. ``ive`` (``I_k e^-a``) avoids overflow; the scale cancels in the ratio.
    """
    a = 1.0 / (4 * np.pi * nu)
    k = np.arange(1, terms + 1)
    arg = 2 * np.pi * np.outer(k, x)
    out = []
    for tt in np.atleast_1d(t):
        w = ive(k, a) * np.exp(-nu * (2 * np.pi * k) ** 2 * tt)
        phi = ive(0, a) + 2 * w @ np.cos(arg)
        phi_x = -2 * (w * 2 * np.pi * k) @ np.sin(arg)
        out.append(-2 * nu * phi_x / phi)
    return np.array(out)


def observed_order(dts: list[float], errors: list[float]) -> float:
    """Least-squares slope of log(error) against log(dt)."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


NU = 0.02  # steep (max |u_x| ~ 25 at t = 0.4) yet resolved to 1e-13 on 256 points
T = np.array([0.0, 0.2, 0.4])


def test_reference_is_accurate():
    x = periodic_grid(256, 1.0)
    ref = cole_hopf_sine(x, T, NU)
    assert np.abs(ref[0] - np.sin(2 * np.pi * x)).max() < 1e-12  # the series reproduces u0
    assert np.abs(cole_hopf_sine(x, T, NU, terms=800) - ref).max() < 1e-15  # truncation is converged


def test_matches_cole_hopf():
    x = periodic_grid(256, 1.0)
    u = solve_burgers(np.sin(2 * np.pi * x)[None], NU, 1.0, T, dt=1e-3)[0]
    err = np.abs(u - cole_hopf_sine(x, T, NU)).max()
    assert err < 1e-9, err


def test_time_order_is_four():
    # Space is resolved to 1e-13 (test above), so the error is the ETDRK4 time error alone.
    x = periodic_grid(256, 1.0)
    ref = cole_hopf_sine(x, T[-1:], NU)[0]
    dts = [0.01, 0.005, 0.0025]
    errors = [
        np.abs(solve_burgers(np.sin(2 * np.pi * x)[None], NU, 1.0, T, dt)[0, -1] - ref).max() for dt in dts
    ]
    assert errors[-1] < 1e-8
    assert abs(observed_order(dts, errors) - 4) < 0.3, errors


def test_space_error_falls_exponentially():
    # Time error at dt = 1e-3 is ~2e-11 here, below every grid error measured. Spectral convergence: the
    # apparent algebraic order log(e1/e2) / log(n2/n1) keeps growing as the grid refines (a p-th order
    # method would hold it at p).
    grids = (24, 32, 48, 64)
    errors = []
    for nx in grids:
        x = periodic_grid(nx, 1.0)
        u = solve_burgers(np.sin(2 * np.pi * x)[None], 0.05, 1.0, T, dt=1e-3)[0]
        errors.append(np.abs(u - cole_hopf_sine(x, T, 0.05)).max())
    orders = np.diff(-np.log(errors)) / np.diff(np.log(grids))
    assert orders[0] > 8 and np.all(np.diff(orders) > 1), (errors, orders)
    assert errors[-1] < 1e-9


def test_batch_equals_single():
    x = periodic_grid(128, 1.0)
    u0 = np.stack([np.sin(2 * np.pi * x), 0.5 * np.cos(4 * np.pi * x) + 0.3 * np.sin(2 * np.pi * x)])
    nu = np.array([0.03, 0.1])
    both = solve_burgers(u0, nu, 1.0, T, 5e-3)
    for i in range(2):
        alone = solve_burgers(u0[i : i + 1], nu[i], 1.0, T, 5e-3)[0]
        np.testing.assert_allclose(both[i], alone, rtol=0, atol=1e-14)
    assert np.abs(both[0] - both[1]).max() > 0.1


def test_conserves_mean_and_obeys_maximum_principle():
    sim = get_simulator("burgers", nu=[0.02, 0.05], nx=128, nt=5, t_end=0.5)
    u = sim.generate([1, 2, 3])["u"].astype(np.float64)
    mean = u.mean(axis=2)
    np.testing.assert_allclose(mean, mean[:, :1].repeat(u.shape[1], axis=1), atol=1e-6)
    assert np.all(np.abs(u).max(axis=2) <= np.abs(u[:, :1]).max(axis=2) + 1e-6)


def test_under_resolved_viscosity_is_refused():
    assert 0.005 < min_resolved_nu(256, 1.0) < 0.01  # the default range (0.01, 0.1) is resolved
    with pytest.raises(ConfigError, match=r"nu=0\.001 is under-resolved on nx=256.*nu >= 0\.0095"):
        get_simulator("burgers", nu=[0.001, 0.1])
    get_simulator("burgers", nu=0.001, nx=4096)  # a finer grid resolves it


def test_time_step_respects_cfl():
    coarse, fine = get_simulator("burgers"), get_simulator("burgers", nx=1024)
    assert fine.time_step() == pytest.approx(coarse.time_step() / 4)
    assert coarse.time_step() * 2.0 * 2 * np.pi * (256 / 3) == pytest.approx(2.0)  # CFL 2 at |u| <= 2
