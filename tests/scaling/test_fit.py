"""Scaling-law fits: recovery of known laws, the derived answers against hand formulas, every error path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from sfm.errors import DataError, SfmError, UnknownNameError
from sfm.scaling import (
    JointFit,
    PowerLawFit,
    _robust,
    compute_optimal,
    data_efficiency,
    fit_joint,
    fit_power_law,
    fit_results,
    x_for_target,
)
from sfm.scaling.table import load_table

X = np.geomspace(10, 10_000, 14)


def _law(x, E, A, alpha):
    return E + A * np.asarray(x, dtype=float) ** -alpha


def _noisy(y, sigma, seed):
    return y * np.exp(sigma * np.random.default_rng(seed).standard_normal(np.shape(y)))


def _fixed_fit(E, A, alpha, x=(10.0, 1000.0)) -> PowerLawFit:
    """A fit with known parameters whose bootstrap replicates all equal them (zero-width intervals)."""
    x = np.asarray(x, dtype=float)
    row = [np.log(E), np.log(A), alpha]
    ivals = {"E_inf": (E, E), "A": (A, A), "alpha": (alpha, alpha)}
    y = _law(x, E, A, alpha)
    return PowerLawFit(E, A, alpha, ivals, x, y, 1.0, np.zeros_like(x), 0.0, np.array([row] * 5))


# --- one curve -------------------------------------------------------------------------------------------


def test_noise_free_curve_is_recovered_exactly():
    f = fit_power_law(X, _law(X, 0.05, 3.0, 0.5), n_bootstrap=0)
    assert f.alpha == pytest.approx(0.5, rel=1e-4)
    assert f.E_inf == pytest.approx(0.05, rel=1e-4)
    assert f.params["A"] == pytest.approx(3.0, rel=1e-4)
    assert f.r2_log == pytest.approx(1.0, abs=1e-9)
    assert np.abs(f.residuals_log).max() < 1e-4


def test_pure_power_law_gets_a_vanishing_floor():
    f = fit_power_law(X, 2.0 * X**-0.8, n_bootstrap=0)
    assert f.alpha == pytest.approx(0.8, rel=1e-4)
    assert f.E_inf < 1e-4 * f.y.min()  # numerically zero: 1e-4 of the smallest error


@pytest.mark.parametrize(
    ("E", "A", "alpha", "seed"),
    [(0.05, 3.0, 0.5, 1), (0.02, 2.0, 0.9, 2), (0.1, 1.0, 0.3, 3)],
)
def test_recovers_known_exponent_inside_its_interval(E, A, alpha, seed):
    y = _noisy(_law(X, E, A, alpha), 0.03, seed)
    f = fit_power_law(X, y, n_bootstrap=40, seed=seed)
    for name, true in (("alpha", alpha), ("E_inf", E), ("A", A)):
        lo, hi = f.intervals[name]
        assert lo <= true <= hi, (name, true, lo, hi)
    assert f.alpha == pytest.approx(alpha, rel=0.15)
    assert f.intervals["alpha"][1] - f.intervals["alpha"][0] < alpha  # informative, not a blanket interval
    assert f.r2_log > 0.98
    assert f.boot.shape == (40, 3)


def test_robust_loss_ignores_one_diverged_run():
    y = _law(X, 0.05, 3.0, 0.5)
    y[6] *= 3.0  # one run diverged: a least-squares fit in log space would bend towards it
    f = fit_power_law(X, y, n_bootstrap=0)
    assert f.alpha == pytest.approx(0.5, rel=1e-3)
    assert f.residuals_log[6] == pytest.approx(-np.log(3.0), rel=1e-3)  # the outlier keeps its full residual


def test_fits_run_blas_on_one_thread_and_restore_it():
    # The L-BFGS-B starts call BLAS on tiny vectors: worker threads only cost time (see one_blas_thread).
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine without OMP_NUM_THREADS
        assert blas_threads() and set(blas_threads()) == {2}  # numpy and scipy each load an OpenBLAS
        with _robust.one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {2}


def test_units_of_x_only_rescale_the_coefficient():
    y = _noisy(_law(X, 0.05, 3.0, 0.5), 0.02, 7)
    a = fit_power_law(X, y, n_bootstrap=0)
    b = fit_power_law(X * 1000.0, y, n_bootstrap=0)
    assert b.alpha == pytest.approx(a.alpha, rel=1e-5)
    assert b.E_inf == pytest.approx(a.E_inf, rel=1e-4)
    assert b.params["A"] == pytest.approx(
        a.A * 1000.0**a.alpha, rel=1e-4
    )  # A x^-alpha = A k^alpha (k x)^-alpha


def test_predict_and_inverse_solve_the_curve():
    f = fit_power_law(X, _law(X, 0.05, 3.0, 0.5), n_bootstrap=10, seed=0)
    xs = np.array([3.0, 100.0, 1e6])
    np.testing.assert_allclose(f.inverse(f.predict(xs)), xs, rtol=1e-9)
    # hand formula: x = (A / (t - E_inf))^(1/alpha)
    assert float(f.inverse(0.1)) == pytest.approx((f.A / (0.1 - f.E_inf)) ** (1 / f.alpha), rel=1e-12)
    assert np.isinf(f.inverse(f.E_inf)) and np.isinf(f.inverse(0.01))
    lo, hi = f.predict_band(xs)
    assert np.all(lo <= f.predict(xs) * (1 + 1e-9)) and np.all(f.predict(xs) <= hi * (1 + 1e-9))
    assert f.predict_samples(xs).shape == (10, 3)


def test_bootstrap_is_seeded():
    y = _noisy(_law(X, 0.05, 3.0, 0.5), 0.05, 11)
    a, b = (fit_power_law(X, y, n_bootstrap=6, seed=4) for _ in range(2))
    c = fit_power_law(X, y, n_bootstrap=6, seed=5)
    np.testing.assert_array_equal(a.boot, b.boot)
    assert not np.array_equal(a.boot, c.boot)


def test_bootstrap_resamples_keep_three_distinct_x():
    counts = np.array([[2, 0, 0, 1], [1, 1, 1, 1], [0, 0, 4, 0]])
    x = np.array([1.0, 1.0, 2.0, 3.0])  # the first two points share an x
    np.testing.assert_array_equal(_robust.distinct_with_weight(x, counts), [2, 3, 1])


# --- joint law ---------------------------------------------------------------------------------------------


def _joint_grid():
    N = np.repeat(np.geomspace(1e6, 1e8, 4), 5)
    D = np.tile(np.geomspace(1e7, 1e10, 5), 4)
    return N, D


def test_joint_noise_free_is_exact():
    N, D = _joint_grid()
    j = fit_joint(N, D, 0.5 + 400 * N**-0.34 + 1000 * D**-0.28, n_bootstrap=0)
    for got, want in ((j.E, 0.5), (j.A, 400), (j.alpha, 0.34), (j.B, 1000), (j.beta, 0.28)):
        assert got == pytest.approx(want, rel=2e-3)
    assert j.predict(1e7, 1e9) == pytest.approx(0.5 + 400 * 1e7**-0.34 + 1000 * 1e9**-0.28, rel=1e-4)


def test_joint_recovers_exponents_from_noisy_points():
    N, D = _joint_grid()
    y = _noisy(0.5 + 400 * N**-0.34 + 1000 * D**-0.28, 0.02, 5)
    j = fit_joint(N, D, y, n_bootstrap=25, seed=1)
    for name, true in (("alpha", 0.34), ("beta", 0.28)):
        lo, hi = j.intervals[name]
        assert lo <= true <= hi, (name, lo, hi)
        assert j.params[name] == pytest.approx(true, rel=0.15)


def _fixed_joint(E, A, alpha, B, beta, N=(1e6, 1e8), D=(1e8, 1e10)) -> JointFit:
    row = [np.log(E), np.log(A), alpha, np.log(B), beta]
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    y = E + A * N**-alpha + B * D**-beta
    return JointFit(E, A, alpha, B, beta, {}, N, D, y, 1.0, np.zeros(len(y)), 0.0, np.array([row] * 4))


@pytest.mark.parametrize(
    ("law", "budget"),
    [
        ((1.69, 406.4, 0.34, 410.7, 0.28), 5.76e23),  # Hoffmann et al. 2022 fit, Gopher's budget
        ((0.1, 50.0, 0.5, 300.0, 0.25), 1e18),
        ((0.0, 2.0, 0.2, 8.0, 0.6), 3e15),
    ],
)
def test_compute_optimal_closed_form_matches_brute_force(law, budget):
    E, A, alpha, B, beta = law
    j = _fixed_joint(max(E, 1e-12), A, alpha, B, beta)

    def loss(logN):  # along the budget line D = C / (6 N)
        N = np.exp(logN)
        return E + A * N**-alpha + B * (budget / (6 * N)) ** -beta

    brute = minimize_scalar(loss, bounds=(0.0, np.log(budget)), method="bounded", options={"xatol": 1e-10})
    got = compute_optimal(j, budget)
    assert got["N_opt"]["value"] == pytest.approx(np.exp(brute.x), rel=1e-5)
    assert 6 * got["N_opt"]["value"] * got["D_opt"]["value"] == pytest.approx(budget, rel=1e-12)
    assert got["loss"]["value"] == pytest.approx(brute.fun, rel=1e-9)
    assert got["N_opt"]["interval"] == pytest.approx([got["N_opt"]["value"]] * 2, rel=1e-9)


def test_compute_optimal_flags_extrapolation():
    j = _fixed_joint(0.1, 50.0, 0.5, 300.0, 0.5, N=(1e6, 1e8), D=(1e6, 1e8))
    # alpha = beta = 1/2 and A/B = 1/6 give G = 1/6: N_opt = sqrt(C/6)/6 and D_opt = 6 sqrt(C/6) = 36 N_opt.
    inside = compute_optimal(j, 6 * 1.2e7**2)
    assert inside["N_opt"]["value"] == pytest.approx(2e6, rel=1e-9)
    assert inside["D_opt"]["value"] == pytest.approx(7.2e7, rel=1e-9)
    assert inside["extrapolated"] is False
    far = compute_optimal(j, 1e30)
    assert far["extrapolated"] is True and far["N_extrapolated"] and far["D_extrapolated"]


# --- derived answers ---------------------------------------------------------------------------------------


def test_x_for_target_inside_beyond_and_unreachable():
    f = _fixed_fit(0.05, 3.0, 0.5, x=(10.0, 1000.0))
    inside = x_for_target(f, 0.2)  # 0.05 + 3 / sqrt(x) = 0.2  ->  x = 400
    assert inside["value"] == pytest.approx(400.0, rel=1e-12)
    assert inside["interval"] == pytest.approx([400.0, 400.0], rel=1e-12)
    assert inside["reachable"] and not inside["extrapolated"]
    beyond = x_for_target(f, 0.08)  # x = (3 / 0.03)^2 = 10^4 > 1000
    assert beyond["value"] == pytest.approx(1e4, rel=1e-12) and beyond["extrapolated"]
    assert "extrapolated" in beyond["note"]
    never = x_for_target(f, 0.05)
    assert never["value"] == np.inf and not never["reachable"] and never["reachable_fraction"] == 0.0
    assert never["extrapolated"] and never["note"].startswith("unreachable")


def test_data_efficiency_matches_the_hand_solution():
    # scratch 0.1 + 2/sqrt(x), pretrained 0.1 + 0.5/sqrt(x): equal errors need x_s = 16 x_p.
    scratch = _fixed_fit(0.1, 2.0, 0.5, x=(10.0, 1000.0))
    pretrained = _fixed_fit(0.1, 0.5, 0.5, x=(10.0, 1000.0))
    pts = data_efficiency(pretrained, scratch, [10.0, 100.0])
    for p, x in zip(pts, [10.0, 100.0]):
        assert p["gain"]["value"] == pytest.approx(16.0, rel=1e-12)
        assert p["gain"]["interval"] == pytest.approx([16.0, 16.0], rel=1e-12)
        assert p["x_scratch"] == pytest.approx(16 * x, rel=1e-12)
    assert pts[0]["extrapolated"] is False  # scratch needs 160: measured
    assert pts[1]["extrapolated"] is True  # scratch needs 1600 > 1000


def test_data_efficiency_is_infinite_below_the_scratch_floor():
    scratch = _fixed_fit(0.2, 2.0, 0.5)
    pretrained = _fixed_fit(0.05, 1.0, 0.5)
    (p,) = data_efficiency(pretrained, scratch, [1000.0])  # pretrained 0.082 < scratch floor 0.2
    assert p["gain"]["value"] == np.inf and not p["reachable"] and p["extrapolated"]


# --- the results table ---------------------------------------------------------------------------------------


def _sweep(seed=0, arms=("pretrained", "scratch")):
    rows = []
    rng = np.random.default_rng(seed)
    for arm, A in zip(arms, (0.5, 2.0)):
        for ds in np.geomspace(16, 4096, 7):
            err = (0.02 + A * ds**-0.5) * np.exp(0.02 * rng.standard_normal())
            rows.append({"task": "burgers", "arm": arm, "data_size": ds, "params": 1e6, "steps": 100,
                         "tokens": ds * 4000, "nrmse": err})  # fmt: skip
    return rows


def test_fit_results_curves_match_direct_fits_and_pair_the_arms():
    rows = _sweep()
    res = fit_results(rows, n_bootstrap=10, target_error=[0.05])
    assert [c["id"] for c in res["curves"]] == [
        "task=burgers,arm=pretrained,params=1000000",
        "task=burgers,arm=scratch,params=1000000",
    ]
    c = res["curves"][1]
    direct = fit_power_law([r["data_size"] for r in rows[7:]], [r["nrmse"] for r in rows[7:]],
                           n_bootstrap=10, seed=c["seed"])  # fmt: skip
    assert c["fit"].params == direct.params
    np.testing.assert_array_equal(c["fit"].boot, direct.boot)
    assert c["targets"][0]["value"] == pytest.approx(float(direct.inverse(0.05)))
    (pair,) = res["efficiency"]
    assert (pair["pretrained"], pair["scratch"]) == (res["curves"][0]["id"], c["id"])
    assert pair["points"][0]["gain"]["value"] == pytest.approx(16.0, rel=0.3)  # (2 / 0.5)^(1/0.5)
    assert res["joint"] == [] and {s["what"] for s in res["skipped"]} == {"joint"}  # params never varies


def test_lora_arm_pairs_with_the_full_scratch_model():
    rows = _sweep()
    for r in rows[:7]:
        r["params"] = 1e5  # pretrained trains a LoRA adapter: fewer (trainable) parameters than scratch
    res = fit_results(rows, n_bootstrap=0)
    (pair,) = res["efficiency"]
    assert pair["pretrained"].endswith("params=100000") and pair["scratch"].endswith("params=1000000")
    assert pair["x"] == "data_size"


def test_compute_axis_is_six_params_tokens():
    t = load_table({"params": [2.0, 3.0], "tokens": [5.0, 7.0]})
    np.testing.assert_array_equal(t.column("compute"), [60.0, 126.0])


# --- degenerate input: one readable line, naming what is wrong -------------------------------------------------


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert isinstance(exc_info.value, SfmError) and "\n" not in msg
    return msg


@pytest.mark.parametrize(
    ("x", "y", "needle"),
    [
        ([1, 2, 3], [3, 2, 1], "need at least 4"),
        ([1, 1, 2, 2, 2], [5, 5, 3, 3, 3], "2 distinct values"),
        ([1, 2, 4, 8, 16], [1.0, 1.0, 1.0, 1.0, 1.0], "not identifiable"),
        ([1, 2, 4, 8, 16, 32], [1.0, 1.02, 0.99, 1.01, 1.0, 0.98], "not identifiable"),
        ([1, 2, 4, 8, 16], [1.0, 1.5, 2.0, 3.0, 4.0], "does not decrease"),
        ([1, 2, 4, 8, 16], [1.0, np.nan, 0.5, 0.4, 0.3], "bad points (0-based): 1 (nan)"),
        ([1, 2, 4, 8, 16], [1.0, 0.7, np.inf, 0.4, -0.3], "2 (inf), 4 (-0.3)"),
        ([1, 2, 4, 8, 16], [1.0, 0.7, 0.0, 0.4, 0.3], "2 (0)"),
        ([0, 2, 4, 8, 16], [1.0, 0.7, 0.5, 0.4, 0.3], "x must be finite and > 0"),
        ([1, 2, 4], [1.0, 0.7], "x has 3 values but the error has 2"),
    ],
)
def test_degenerate_curves_raise_one_line(x, y, needle):
    with pytest.raises(DataError) as e:
        fit_power_law(x, y, n_bootstrap=0, label="curve c1")
    msg = _one_line(e)
    assert needle in msg and msg.startswith("curve c1")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [({"ci": 1.5}, "ci must lie"), ({"n_bootstrap": -1}, "n_bootstrap"), ({"huber_delta": 0}, "huber")],
)
def test_bad_settings_raise(kw, needle):
    with pytest.raises(DataError, match=needle):
        fit_power_law(X, _law(X, 0.05, 3.0, 0.5), **{"n_bootstrap": 0, **kw})


def test_degenerate_joint_inputs_raise():
    N, D = _joint_grid()
    y = 0.5 + 400 * N**-0.34 + 1000 * D**-0.28
    with pytest.raises(DataError, match="need at least 6"):
        fit_joint(N[:5], D[:5], y[:5], n_bootstrap=0)
    with pytest.raises(DataError, match="N takes 2 distinct values"):
        fit_joint(N[:10], D[:10], y[:10], n_bootstrap=0)
    with pytest.raises(DataError, match="does not decrease with D"):
        fit_joint(N, D, 0.5 + 400 * N**-0.34, n_bootstrap=0)


def test_table_errors_name_columns_and_rows(tmp_path):
    rows = _sweep()
    with pytest.raises(UnknownNameError) as e:
        fit_results(rows, metric="nrsme", n_bootstrap=0)
    assert "no metric column 'nrsme' (did you mean 'nrmse'" in _one_line(e)
    with pytest.raises(UnknownNameError, match="did you mean 'data_size'"):
        fit_results(rows, x="data_sise", n_bootstrap=0)
    with pytest.raises(UnknownNameError, match=r"group-by column 'tsk' \(did you mean 'task'"):
        fit_results(rows, group_by=["tsk", "arm"], n_bootstrap=0)
    with pytest.raises(UnknownNameError, match=r"unknown arm 'pretrain' \(did you mean 'pretrained'"):
        fit_results([{**r, "arm": "pretrain"} for r in rows], n_bootstrap=0)
    bad = [dict(r) for r in rows]
    bad[3]["nrmse"], bad[9]["nrmse"] = float("nan"), -1.0
    with pytest.raises(DataError) as e:
        fit_results(bad, n_bootstrap=0)
    assert "metric column 'nrmse' must be finite and > 0; bad rows: row 3 (nan), row 9 (-1)" in _one_line(e)
    no_tokens = [{k: v for k, v in r.items() if k != "tokens"} for r in rows]
    with pytest.raises(UnknownNameError, match=r"compute = 6 \* params \* tokens needs a column 'tokens'"):
        fit_results(no_tokens, x="compute", n_bootstrap=0)
    with pytest.raises(DataError, match=r"must contain cells\.csv"):
        fit_results(tmp_path, n_bootstrap=0)
    (tmp_path / "empty.csv").write_text("task,arm,nrmse\n")
    with pytest.raises(DataError, match="header but no rows"):
        fit_results(tmp_path / "empty.csv", n_bootstrap=0)


def test_degenerate_curve_in_a_table_raises_or_is_skipped():
    rows = _sweep()
    for r in rows[7:]:
        r["nrmse"] = 0.3  # the scratch arm is flat
    with pytest.raises(
        DataError, match=r"curve task=burgers,arm=scratch,params=1000000: .* not identifiable"
    ):
        fit_results(rows, n_bootstrap=0)
    res = fit_results(rows, n_bootstrap=0, skip_degenerate=True)
    assert [c["group"]["arm"] for c in res["curves"]] == ["pretrained"]
    assert any(s["what"] == "curve" and "not identifiable" in s["reason"] for s in res["skipped"])
    with pytest.raises(DataError, match="--budget needs a joint fit"):
        fit_results(rows, n_bootstrap=0, skip_degenerate=True, budget=1e15)
