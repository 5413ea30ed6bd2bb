"""The simulator contract, exercised on the 1D simulators: parameters, determinism, chunking, metadata."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.errors import ConfigError, SfmError, UnknownNameError
from sfm.physics.metadata import FieldMeta
from sfm.physics.simulators import get_simulator, trajectory_seeds
from sfm.physics.simulators.initial import sine_waves_1d
from sfm.physics.simulators.spectral import periodic_grid
from sfm.registry import SIMULATORS

# Small grids and short times keep each generate() to a few milliseconds.
SMALL = {
    "advection": {"nx": 64, "nt": 5},
    "heat": {"nx": 64, "nt": 5},
    "burgers": {"nx": 128, "nt": 5, "t_end": 0.2, "nu": [0.02, 0.1]},
    "diffusion_reaction": {"nx": 128, "nt": 5, "t_end": 0.2},
    "kdv": {"nx": 128, "nt": 5, "t_end": 0.05, "delta": 0.05},
}
ONE_D = list(SMALL)


def test_the_1d_simulators_are_registered_with_a_one_line_summary():
    for name in ONE_D:
        assert name in SIMULATORS
        summary = SIMULATORS.meta(name)["description"]
        assert summary and "\n" not in summary and summary == get_simulator(name).describe()


@pytest.mark.parametrize("name", ONE_D)
def test_output_is_float32_finite_and_shaped(name):
    sim = get_simulator(name, **SMALL[name])
    cols = sim.generate(trajectory_seeds(0, 0, 3))
    u = cols["u"]
    assert u.dtype == np.float32 and u.shape == (3, sim.values["nt"], sim.values["nx"])
    assert np.all(np.isfinite(u)) and np.abs(u).max() > 0.01
    assert cols["seed"].dtype == np.int64 and cols["seed"].shape == (3,)


@pytest.mark.parametrize("name", ONE_D)
def test_deterministic_and_independent_of_chunking(name):
    sim = get_simulator(name, **SMALL[name])
    whole = sim.generate(trajectory_seeds(0, 0, 8))
    halves = [sim.generate(trajectory_seeds(0, 0, 4)), sim.generate(trajectory_seeds(0, 4, 8))]
    for key, value in whole.items():
        np.testing.assert_array_equal(value, np.concatenate([h[key] for h in halves]), err_msg=key)
    np.testing.assert_array_equal(whole["u"], sim.generate(trajectory_seeds(0, 0, 8))["u"])


def test_a_trajectory_depends_only_on_its_own_seed():
    sim = get_simulator("burgers", **SMALL["burgers"])
    pair = sim.generate([5, 9])
    alone = sim.generate([9])
    np.testing.assert_array_equal(pair["u"][1], alone["u"][0])
    assert pair["nu"][1] == alone["nu"][0]
    assert not np.array_equal(pair["u"][0], pair["u"][1])
    assert not np.array_equal(
        trajectory_seeds(0, 0, 4), trajectory_seeds(1, 0, 4)
    )  # the data set seed matters


def test_first_frame_is_the_initial_condition_drawn_after_the_coefficients():
    # The contract of base.generate: each trajectory's generator first draws its varying coefficients, then
    # the simulator draws its initial condition from the same generator.
    sim = get_simulator("heat", nx=64, nt=3)
    cols = sim.generate([42])
    rng = np.random.default_rng(42)
    d = np.exp(rng.uniform(np.log(1e-3), np.log(1e-2)))
    u0 = sine_waves_1d(rng, periodic_grid(64, 1.0), 1.0)
    assert cols["D"][0] == d
    np.testing.assert_allclose(cols["u"][0, 0], u0, atol=1e-6)


def test_unknown_parameter_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"burgers: unknown parameter 'nuu' \(did you mean 'nu'\?\)"):
        get_simulator("burgers", nuu=0.1)
    with pytest.raises(ConfigError, match=r"did you mean 'dt_max'"):
        get_simulator("kdv", dtmax=0.1)
    with pytest.raises(UnknownNameError, match=r"did you mean 'burgers'"):
        get_simulator("burger")


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("burgers", {"nu": -0.1}, r"nu=-0\.1 is outside the allowed range"),
        ("burgers", {"nu": [0.1, 0.02]}, r"nu range \[0\.1, 0\.02\] must lie within"),
        ("burgers", {"nu": [0.01, 0.02, 0.03]}, r"nu range must be \[low, high\]"),
        ("burgers", {"nu": "thick"}, r"nu must be a number"),
        ("burgers", {"nx": [64, 128]}, r"nx is a grid setting and cannot vary"),
        ("heat", {"nx": 100.5}, r"nx must be an integer"),
        ("heat", {"D": [0.0, 0.1]}, r"D is drawn log-uniformly, so its range must be positive"),
        ("advection", {"t_end": float("nan")}, r"t_end must be finite"),
        ("kdv", {"nt": 1}, r"nt=1 is outside the allowed range"),
        ("diffusion_reaction", {"rho": -1.0}, r"rho=-1\.0 is outside the allowed range"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_parameter(name, values, message):
    with pytest.raises(SfmError, match=message) as info:
        get_simulator(name, **values)
    assert "\n" not in str(info.value) and str(info.value).startswith(name)


def test_varying_coefficients_become_columns_and_fixed_ones_metadata():
    sim = get_simulator("diffusion_reaction", D=[0.001, 0.1], rho=4.0, nx=64, nt=3, t_end=0.1)
    assert sim.varying == ["D"] and sim.fixed == {"rho": 4.0}
    cols = sim.generate(trajectory_seeds(3, 0, 6))
    assert set(cols) == {"u", "D", "seed"}
    assert cols["D"].dtype == np.float64 and cols["D"].shape == (6,)
    assert np.all((cols["D"] >= 0.001) & (cols["D"] <= 0.1)) and len(set(cols["D"])) == 6
    assert get_simulator("diffusion_reaction", D=[0.05, 0.05]).varying == ["rho"]  # a point range is fixed


def test_log_uniform_draws():
    # Half of a log-uniform draw over [1e-3, 1e-1] falls below the geometric mean 1e-2 (a uniform draw: 9%).
    sim = get_simulator("burgers", nu=[1e-3, 1e-1], nx=4096)
    rng = np.random.default_rng(0)
    draws = np.array([sim.draw_coefficients(rng)["nu"] for _ in range(4000)])
    assert draws.min() >= 1e-3 and draws.max() <= 1e-1
    assert abs(np.mean(draws < 1e-2) - 0.5) < 0.03


def test_field_meta_describes_the_data(tmp_path):
    sim = get_simulator("burgers", nu=[0.05, 0.1], nx=128, nt=11, t_end=0.5, length=2.0)
    meta = sim.meta()
    assert meta.family == "burgers" and meta.equation == "u_t + u*u_x = nu*u_xx"
    assert meta.fields == ["u"] and meta.boundary_conditions == {"x": "periodic"}
    assert meta.spatial_axes == ["x"] and not meta.steady
    assert meta.coords["t"][0] == 0.0 and meta.coords["t"][-1] == 0.5 and meta.dt == pytest.approx(0.05)
    assert len(meta.coords["x"]) == 128 and meta.coords["x"][0] == 0.0 and meta.spacing("x") == 2.0 / 128
    assert meta.field_shapes == {"u": [11, 128]}
    assert meta.varying == ["nu"] and meta.coefficients == {}  # grid settings are not coefficients
    assert meta.source["name"] == "burgers" and meta.source["params"]["nu"] == [0.05, 0.1]
    assert meta.source["params"]["nx"] == 128
    meta.save(tmp_path)
    assert FieldMeta.load(tmp_path) == meta
    cols = sim.generate([1])
    assert list(cols["u"].shape[1:]) == meta.field_shapes["u"]


@pytest.mark.parametrize("name", ONE_D)
def test_every_1d_simulator_states_its_grid(name):
    sim = get_simulator(name)
    meta = sim.meta()
    assert set(sim.settings) >= {"nx", "nt", "t_end", "length"}
    assert meta.field_shapes == {"u": [sim.values["nt"], sim.values["nx"]]}
    assert meta.boundary_conditions == {"x": "periodic"}
    assert set(meta.coefficients) | set(meta.varying) == set(sim.params) - set(sim.settings)
    x = np.array(meta.coords["x"])
    np.testing.assert_allclose(np.diff(x), sim.values["length"] / sim.values["nx"])
