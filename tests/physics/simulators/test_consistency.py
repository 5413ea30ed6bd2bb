"""Conserved quantities and PDE residuals of the 1D simulators, and the harness's consistency scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sfm.errors import ConfigError, DataError, SfmError
from sfm.harness.baselines import RolloutInfo
from sfm.harness.consistency import consistency_scores
from sfm.harness.forecast import ForecastSet, Rollout, baseline_rollout
from sfm.physics.simulators import get_simulator, trajectory_seeds
from sfm.physics.simulators.spectral import periodic_grid
from sfm.tasks.forecast import Forecast

# Frames close enough in time that the central difference is in its asymptotic (dt^2) regime.
RESOLVED = {
    "advection": {"nx": 64, "t_end": 0.5, "beta": [0.2, 0.5]},
    "heat": {"nx": 64, "t_end": 1.0},
    "burgers": {"nx": 128, "t_end": 0.5, "nu": [0.02, 0.1]},
    "diffusion_reaction": {"nx": 128, "t_end": 0.5},
    "kdv": {"nx": 128, "t_end": 0.2, "delta": 0.05},
}
CONSERVED = {
    "advection": {"mass", "energy"},
    "heat": {"mass"},
    "burgers": {"mass"},
    "diffusion_reaction": set(),
    "kdv": {"mass", "energy", "hamiltonian"},
}


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(a**2)))


def solved(name: str, nt: int, n: int = 4):
    """``n`` trajectories of ``name`` as float64 frames ``[n, nt, nx]`` (solved by evolve from the generated
    initial data), their metadata and varying coefficients."""
    sim = get_simulator(name, nt=nt, **RESOLVED[name])
    cols = sim.generate(trajectory_seeds(0, 0, n))
    coeffs = {c: cols[c] for c in sim.varying}
    u0 = cols["u"][:, 0].astype(np.float64)
    t = np.asarray(sim.coords()["t"])
    u = np.concatenate([u0[:, None], sim.evolve({"u": u0}, coeffs, t[1:])["u"]], axis=1)
    return sim, u, sim.meta(), coeffs


# ---- conserved quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONSERVED))
def test_stored_trajectories_conserve_what_the_simulator_says(name):
    sim = get_simulator(name, nt=11, **RESOLVED[name])
    cols = sim.generate(trajectory_seeds(0, 0, 4))
    meta, coeffs = sim.meta(), {c: cols[c] for c in sim.varying}
    q = sim.conserved({"u": cols["u"]}, meta, coeffs)
    assert set(q) == CONSERVED[name]
    dens = sim.conserved_densities({"u": cols["u"]}, meta, coeffs)
    for key, values in q.items():
        assert values.shape == (4, 11)
        scale = np.abs(dens[key][:, :1]).sum(axis=-1) * meta.spacing("x")  # int |q| dx at t = 0
        drift = np.abs(values - values[:, :1]).max(axis=1) / scale[:, 0]
        # float32 storage (~6e-8 relative) and the solvers' time error are all that can move them.
        assert drift.max() < 1e-6, (key, drift)


def test_burgers_and_heat_do_not_claim_their_decaying_energy():
    for name in ("burgers", "heat"):
        sim, u, meta, coeffs = solved(name, nt=11)
        energy = (u**2).sum(axis=-1)
        assert np.all(energy[:, -1] < 0.99 * energy[:, 0])  # it really decays, so it must not be listed
        assert "energy" not in sim.conserved({"u": u}, meta, coeffs)


def test_conserved_values_match_hand_integrals():
    # u = 0.3 + sin(2 pi x / L) on [0, L), L = 2: mass 0.3 L, energy (0.09 + 1/2) L, for all time.
    x = periodic_grid(64, 2.0)
    u0 = (0.3 + np.sin(np.pi * x))[None]
    adv = get_simulator("advection", nx=64, length=2.0, beta=0.7)
    u = adv.evolve({"u": u0}, {}, [0.3, 1.1])["u"]
    meta = adv.meta()
    q = adv.conserved({"u": u}, meta)
    np.testing.assert_allclose(q["mass"], 0.6, rtol=1e-13)
    np.testing.assert_allclose(q["energy"], 0.59 * 2.0, rtol=1e-13)
    # KdV's Hamiltonian int (u^3/6 - delta^2 u_x^2 / 2) dx of sin(pi x) on [0, 2): 0 - delta^2 pi^2 / 2.
    kdv = get_simulator("kdv", nx=64, length=2.0, delta=[0.1, 0.2])
    delta = np.array([0.15])
    u1 = np.sin(np.pi * x)[None, None]
    h = kdv.conserved({"u": u1}, kdv.meta(), {"delta": delta})["hamiltonian"]
    np.testing.assert_allclose(h, -(0.15**2) * np.pi**2 / 2, rtol=1e-12)
    # Without delta (it varies per trajectory) the Hamiltonian is left out, the rest stays.
    assert set(kdv.conserved({"u": u1}, kdv.meta())) == {"mass", "energy"}


def test_a_simulator_without_invariants_returns_none():
    darcy = get_simulator("darcy", nx=8, ny=8)
    fields = {"a": np.ones((1, 1, 8, 8)), "u": np.zeros((1, 1, 8, 8))}
    assert (
        darcy.conserved(fields, darcy.meta()) == {} and darcy.conserved_densities(fields, darcy.meta()) == {}
    )


# ---- PDE residuals ----------------------------------------------------------------------------------------


def test_residual_of_exact_heat_and_advection_matches_the_central_difference_error():
    # u = exp(-lam t) sin(k x): the central difference gives -sinh(lam dt)/dt u for u_t = -lam u, so the
    # residual is exactly (lam - sinh(lam dt)/dt) u. u = sin(k (x - beta t)): it is beta k cos(.) (1 - sinc).
    x = periodic_grid(32, 1.0)
    k, dt = 4 * np.pi, 0.05
    t = np.arange(7) * dt
    heat = get_simulator("heat", nx=32, nt=7, t_end=6 * dt, D=[0.01, 0.02])
    D = np.array([0.015])
    lam = D[0] * k**2
    u = (np.exp(-lam * t)[:, None] * np.sin(k * x))[None]
    res = heat.residual({"u": u}, heat.meta(), {"D": D})
    np.testing.assert_allclose(res, (lam - np.sinh(lam * dt) / dt) * u[:, 1:-1], atol=1e-12)
    adv = get_simulator("advection", nx=32, nt=7, t_end=6 * dt, beta=0.8)
    phase = k * (x[None, :] - 0.8 * t[:, None])
    res = adv.residual({"u": np.sin(phase)[None]}, adv.meta(), {})
    s = k * 0.8 * dt
    np.testing.assert_allclose(res[0], 0.8 * k * np.cos(phase[1:-1]) * (1 - np.sin(s) / s), atol=1e-11)


@pytest.mark.parametrize("name", list(RESOLVED))
def test_residual_falls_fourfold_when_the_frame_spacing_halves(name):
    # The reference frames solve the PDE to ~1e-7; what is left is the central difference's dt^2 u_ttt / 6.
    # Compare at the same times: frame j of the 21-frame run is frame 2j of the 41-frame run.
    coarse = solved(name, nt=21)
    fine = solved(name, nt=41)
    r21 = coarse[0].residual({"u": coarse[1]}, coarse[2], coarse[3])
    r41 = fine[0].residual({"u": fine[1]}, fine[2], fine[3])[:, 1::2]
    assert r21.shape == r41.shape == (4, 19, RESOLVED[name]["nx"])
    ratio = rms(r21) / rms(r41)
    assert 3.5 < ratio < 4.6, ratio


@pytest.mark.parametrize("name", list(RESOLVED))
def test_residual_is_large_for_wrong_physics(name):
    sim, u, meta, coeffs = solved(name, nt=21)
    truth = rms(sim.residual({"u": u}, meta, coeffs))
    reversed_ = rms(sim.residual({"u": u[:, ::-1]}, meta, coeffs))  # residual -2 u_t: runs the PDE backwards
    frozen = rms(sim.residual({"u": np.repeat(u[:, :1], u.shape[1], axis=1)}, meta, coeffs))  # persistence
    assert reversed_ > 20 * truth and frozen > 20 * truth, (truth, reversed_, frozen)


def test_bad_residual_inputs_are_one_line_errors():
    sim = get_simulator("burgers", nx=32, nt=5, nu=[0.05, 0.1], strict=False)
    meta = sim.meta()
    u = np.zeros((2, 5, 32))
    with pytest.raises(ConfigError, match=r"burgers: coefficient 'nu' varies per trajectory; pass its"):
        sim.residual({"u": u}, meta, {})
    with pytest.raises(DataError, match=r"field 'u' must be \[n, T >= 3\] \+ 1 spatial axes"):
        sim.residual({"u": u[:, :2]}, meta, {"nu": [0.1, 0.1]})
    with pytest.raises(
        DataError, match=r"field 'u' is on a \[16\] grid, not the \[32\] grid of its metadata"
    ):
        sim.residual({"u": u[..., ::2]}, meta, {"nu": [0.1, 0.1]})
    with pytest.raises(DataError, match=r"burgers: unknown field 'w'"):
        sim.residual({"w": u}, meta, {"nu": [0.1, 0.1]})
    darcy = get_simulator("darcy", nx=8, ny=8)
    with pytest.raises(SfmError, match=r"^darcy defines no PDE residual$"):
        darcy.residual({"a": np.ones((1, 3, 8, 8)), "u": np.ones((1, 3, 8, 8))}, darcy.meta(), {})


# ---- the harness's consistency scores ---------------------------------------------------------------------


def forecast_set(name: str, params: dict, fmt: Forecast, n_frames: int, n: int = 3):
    """A ForecastSet of ``n`` windows (frames 1, 2 as context) on the model's grid, as the harness cuts it."""
    sim = get_simulator(name, **params)
    cols = sim.generate(trajectory_seeds(2, 0, n))
    meta = sim.meta()
    rows = [{"u": cols["u"][i], **{c: cols[c][i] for c in sim.varying}} for i in range(n)]
    traj = np.stack([fmt.trajectory(r, meta) for r in rows])  # [n, T', C, x']
    k = fmt.context_frames
    coeffs = [fmt.coefficients(r, meta) for r in rows]
    info = RolloutInfo(meta=meta, dt=fmt.dt(meta), space_stride=fmt.space_stride, coefficients=coeffs)
    fs = ForecastSet(
        traj[:, 1 : 1 + k], traj[:, 1 + k : 1 + k + n_frames], coeffs, np.arange(n), np.ones(n, int), info
    )
    return fs, meta


def test_truth_scores_perfect_and_wrong_predictions_worse():
    fmt = Forecast(context_frames=2, horizon=1, space_stride=2)
    params = {"nx": 128, "nt": 21, "t_end": 0.5, "nu": [0.04, 0.1], "length": 2.0}
    fs, meta = forecast_set("burgers", params, fmt, n_frames=6)
    offset = 0.1
    rollouts = {
        "persistence": baseline_rollout("persistence", fs, fs.contexts, 6),
        "model": Rollout(fs.targets + offset, np.ones(fs.targets.shape[:3], bool)),
    }
    out = consistency_scores(fs, rollouts, fs.targets, meta, fmt)
    json.dumps(out, allow_nan=False)  # JSON-ready
    assert out["available"] and out["simulator"] == "burgers" and out["notes"] == []
    assert out["grid"] == {"dt": pytest.approx(0.025), "dx": pytest.approx(2 * 2.0 / 128)}
    mass = out["conservation"]["mass"]
    assert set(mass) == {"truth", "persistence", "model"} and len(mass["truth"]["curve"]) == 6
    assert mass["truth"]["mean"] < 1e-6 and mass["persistence"]["mean"] < 1e-12
    # An offset c adds c L to the mass: drift c L / int |u(t_0)| dx, computed by hand on the model's grid.
    scale = np.abs(fs.contexts[:, -1, 0]).sum(axis=-1) * (2 * 2.0 / 128)
    np.testing.assert_allclose(mass["model"]["curve"], np.mean(offset * 2.0 / scale), rtol=1e-5)
    res = out["residual"]
    assert res["truth"]["relative"] == 1.0 and res["truth"]["curve"] == [1.0] * 5  # frames 3..7 of 8
    assert res["persistence"]["relative"] > 10 and res["model"]["relative"] > 2


def test_residual_uses_the_models_grid_and_frame_spacing():
    # One heat mode, u = exp(-D k^2 t) sin(k x), seen every 2nd frame on every 2nd point: the truth's residual
    # is the hand formula (lam - sinh(lam h)/h) u with h = 2 dt. A residual on the stored spacing would
    # differ by 4x (dx) or give another sinh term (dt).
    sim = get_simulator("heat", nx=64, nt=41, t_end=2.0, D=0.02)
    meta = sim.meta()
    fmt = Forecast(context_frames=2, horizon=1, time_stride=2, space_stride=2)
    x, t = np.asarray(meta.coords["x"]), np.asarray(meta.coords["t"])
    k, lam = 2 * np.pi, 0.02 * (2 * np.pi) ** 2
    u = np.exp(-lam * t)[:, None] * np.sin(k * x)
    traj = fmt.trajectory({"u": u}, meta)[None]  # [1, 21, 1, 32]
    info = RolloutInfo(meta=meta, dt=fmt.dt(meta), space_stride=2, coefficients=[{"D": 0.02}])
    fs = ForecastSet(traj[:, :2], traj[:, 2:10], [{"D": 0.02}], np.zeros(1, int), np.zeros(1, int), info)
    out = consistency_scores(fs, {}, fs.targets, meta, fmt)
    h = 0.1
    expected = (lam - np.sinh(lam * h) / h) * traj[
        0, 2:9, 0
    ]  # predicted frames 2..8 (the last has no successor)
    assert out["residual"]["truth"]["rms"] == pytest.approx(rms(expected), rel=1e-9)


def test_a_family_without_invariants_says_so_and_still_scores_its_residual():
    fmt = Forecast(context_frames=2, horizon=1, space_stride=2)
    fs, meta = forecast_set("diffusion_reaction", {"nx": 128, "nt": 21, "t_end": 0.5}, fmt, n_frames=4)
    out = consistency_scores(fs, {"persistence": baseline_rollout("persistence", fs, fs.contexts, 4)}, fs.targets,
                             meta, fmt)  # fmt: skip
    assert out["conservation"] == {}
    assert any("conserves no quantity" in note for note in out["notes"])
    assert out["residual"]["truth"]["relative"] == 1.0 and out["residual"]["persistence"]["relative"] > 10


def test_non_finite_predictions_and_short_rollouts_read_as_none():
    fmt = Forecast(context_frames=1, horizon=1)
    fs, meta = forecast_set("advection", {"nx": 32, "nt": 11, "t_end": 0.5, "beta": 0.3}, fmt, n_frames=1)
    bad = Rollout(np.full_like(fs.targets, np.nan), np.zeros(fs.targets.shape[:3], bool))
    out = consistency_scores(fs, {"model": bad}, fs.targets, meta, fmt)
    json.dumps(out, allow_nan=False)
    assert out["conservation"]["energy"]["model"] == {"mean": None, "curve": [None]}
    assert out["residual"] is None and any("at least 2 predicted frames" in n for n in out["notes"])


def test_imported_data_is_reported_unavailable():
    fmt = Forecast(context_frames=2, horizon=1)
    fs, meta = forecast_set("heat", {"nx": 32, "nt": 11}, fmt, n_frames=3)
    imported = meta.replace(source={"kind": "importer", "name": "pdebench"})
    out = consistency_scores(fs, {}, fs.targets, imported, fmt)
    assert out["available"] is False and "not generated by an sfm simulator" in out["reason"]
