"""KdV against the exact soliton; time order 4; invariants; batching; complex-symbol ETDRK4 coefficients."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.errors import ConfigError
from sfm.physics.simulators import get_simulator
from sfm.physics.simulators.kdv import min_resolved_delta, solve_kdv
from sfm.physics.simulators.spectral import ETDRK4, periodic_grid


def soliton(x: np.ndarray, t: float, c: float, delta: float, x0: float, length: float) -> np.ndarray:
    """``3 c sech^2(sqrt(c) (x - c t - x0) / (2 delta))``, the exact solitary wave, wrapped onto the period.

    On the long domains used here its tails are below 1e-16 half a period away, so the wrap is exact.
    """
    xi = np.mod(x - c * t - x0 + length / 2, length) - length / 2
    return 3 * c / np.cosh(np.sqrt(c) * xi / (2 * delta)) ** 2


def observed_order(dts: list[float], errors: list[float]) -> float:
    """Least-squares slope of log(error) against log(dt)."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


# Unit-width soliton (amplitude 3, speed 1) on a period of 80: tails exp(-40) at the far side; 512 points put
# the dealiased cut-off at k = 13.4, where its spectrum (~exp(-pi k)) is ~1e-18.
L, NX, DELTA, C = 80.0, 512, 1.0, 1.0


def test_soliton_travels_unchanged():
    x = periodic_grid(NX, L)
    t = [0.0, 5.0, 10.0]
    u = solve_kdv(soliton(x, 0, C, DELTA, 20.0, L)[None], DELTA, L, t, dt=0.01)[0]
    for i, tt in enumerate(t):
        assert np.abs(u[i] - soliton(x, tt, C, DELTA, 20.0, L)).max() < 1e-7, tt


def test_soliton_on_the_default_zabusky_kruskal_domain():
    # delta = 0.022 on [0, 2): checks the delta^2 scaling of the width (sqrt(c) / (2 delta)) and of the speed.
    x = periodic_grid(256, 2.0)
    u = solve_kdv(soliton(x, 0, 0.5, 0.022, 0.5, 2.0)[None], 0.022, 2.0, [1.0], dt=5e-4)[0, 0]
    assert np.abs(u - soliton(x, 1.0, 0.5, 0.022, 0.5, 2.0)).max() < 1e-6


def test_time_order_is_four():
    # The grid resolves the soliton (see L, NX above), so the error is the time error; the steps are small enough to be
    # in the asymptotic range (larger ones show a pre-asymptotic slope near 4.5).
    x = periodic_grid(NX, L)
    u0 = soliton(x, 0, C, DELTA, 20.0, L)[None]
    exact = soliton(x, 5.0, C, DELTA, 20.0, L)
    dts = [0.025, 0.0125, 0.00625]
    errors = [np.abs(solve_kdv(u0, DELTA, L, [5.0], dt)[0, 0] - exact).max() for dt in dts]
    assert errors[-1] < 1e-8
    assert abs(observed_order(dts, errors) - 4) < 0.3, errors


def test_conserves_mass_and_nearly_momentum():
    # int u is conserved exactly by the scheme (the k = 0 mode has no flux); int u^2 only to the time error.
    sim = get_simulator("kdv", nt=4, t_end=0.3)
    u = sim.generate([11, 12]).get("u").astype(np.float64)
    np.testing.assert_allclose(u.mean(axis=2), u[:, :1].mean(axis=2).repeat(4, axis=1), atol=1e-6)
    energy = (u**2).mean(axis=2)
    np.testing.assert_allclose(energy, energy[:, :1].repeat(4, axis=1), rtol=1e-5)


def test_batch_equals_single():
    x = periodic_grid(128, 2.0)
    u0 = np.stack([np.cos(np.pi * x), 0.5 * np.sin(3 * np.pi * x)])
    delta = np.array([0.022, 0.05])
    both = solve_kdv(u0, delta, 2.0, [0.0, 0.2], 2e-3)
    for i in range(2):
        alone = solve_kdv(u0[i : i + 1], delta[i], 2.0, [0.0, 0.2], 2e-3)[0]
        np.testing.assert_allclose(both[i], alone, rtol=0, atol=1e-14)


def test_etdrk4_coefficients_for_a_complex_symbol():
    # With N constant, one step must give the exact v(h) = e^{hL} v + h phi_1(hL) N, and the half-step
    # coefficient Q must be h phi_1(hL/2) / 2; the contour mean must keep the imaginary part.
    L_sym = np.array([0.3j, -2 + 5j, 80j, -1e3 + 0j + 1e-9j])
    h = 0.1
    s = ETDRK4.build(L_sym, h)
    z = h * L_sym
    phi1 = (np.exp(z) - 1) / z
    np.testing.assert_allclose((s.f1 + 4 * s.f2 + s.f3) / h, phi1, rtol=1e-12)
    np.testing.assert_allclose(s.Q, (np.exp(z / 2) - 1) / L_sym, rtol=1e-12)
    v, n = np.array([1 + 1j] * 4), np.array([0.5 - 2j] * 4)
    np.testing.assert_allclose(s.step(v, lambda _: n), np.exp(z) * v + h * phi1 * n, rtol=1e-12)


def test_under_resolved_dispersion_is_refused():
    assert 0.02 < min_resolved_delta(256, 2.0) < 0.022  # the Zabusky-Kruskal default is resolved
    with pytest.raises(ConfigError, match=r"kdv: delta=0\.01 is under-resolved on nx=256.*delta >= 0\.0202"):
        get_simulator("kdv", delta=0.01)
    assert get_simulator("kdv", delta=0.01, nx=1024).time_step() == pytest.approx(
        get_simulator("kdv").time_step() / 4
    )
