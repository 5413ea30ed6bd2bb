"""The laptop transfer study: its specs expand to the stated cells, the committed result refits exactly, the
README's table equals the committed cells, and the pieces it needs (reference-arm gains, crossings, warm
starts of field models, CPU accounting) compute what they say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sfm.errors import ConfigError, UnknownNameError
from sfm.scaling.derived import crossing, reference_gains
from sfm.scaling.fit import fit_power_law
from sfm.scaling.markdown import between_markers, cells_markdown
from sfm.scaling.plan import plan_sweep
from sfm.scaling.report import to_json
from sfm.scaling.results import fit_results
from sfm.scaling.spec import load_spec
from sfm.utils.io import to_jsonable

ROOT = Path(__file__).resolve().parents[2]
LAPTOP = ROOT / "recipes" / "scaling" / "laptop.yaml"
LOW_NU = ROOT / "recipes" / "scaling" / "laptop-low-nu.yaml"
RESULT = Path("eval/scaling/laptop")  # relative to ROOT: fit.json records the source path as given
LOW_NU_RESULT = Path("eval/scaling/laptop-low-nu")
FAMILIES = {"advection", "heat", "kdv", "diffusion_reaction"}


def _grid_points(recipe: dict) -> int:
    return recipe["data"]["params"]["nx"] // recipe["data"]["task_options"]["space_stride"]


@pytest.mark.parametrize(
    ("path", "sizes", "nu"),
    [(LAPTOP, [2, 4, 8, 16, 32, 64, 128], [0.01, 0.03]), (LOW_NU, [4, 16, 64], [0.005, 0.01])],
    ids=["laptop", "low-nu"],
)
def test_laptop_specs_expand_to_the_stated_cells(path, sizes, nu):
    plan = plan_sweep(load_spec(path), where=str(path))
    arms, seeds = ["pretrained", "scratch", "fno"], [0, 1, 2]
    assert len(plan.cells) == len(sizes) * len(arms) * len(seeds)
    got = {(c.columns["data_size"], c.columns["arm"], c.columns["seed"]) for c in plan.cells}
    assert got == {(n, a, s) for n in sizes for a in arms for s in seeds}
    (stage,) = plan.stages
    assert [r["data"]["simulator"] for r in stage.recipes] == [
        "advection",
        "heat",
        "kdv",
        "diffusion_reaction",
    ]
    layout = {
        (_grid_points(r), r["data"]["params"]["nt"], r["data"]["params"]["t_end"]) for r in stage.recipes
    }
    for c in plan.cells:
        r = c.recipe
        # The budget is the same for every arm at a size: steps x batch = examples seen.
        assert (r["training"]["max_steps"], r["training"]["per_device_train_batch_size"]) == (150, 16)
        assert r["data"]["simulator"] == "burgers" and r["data"]["params"]["nu"] == nu
        assert r["data"]["train_trajectories"] == c.columns["data_size"]
        assert r["model"]["fields"]["coefficients"] is False  # the families' coefficients differ in number
        assert {(_grid_points(r), r["data"]["params"]["nt"], r["data"]["params"]["t_end"])} == layout
        operator = r["model"]["name_or_path"] == "operator:fno"
        assert operator == (c.columns["arm"] == "fno")
        assert c.needs == (["pretrain/base"] if c.columns["arm"] == "pretrained" else [])
        forecast, rollout = c.eval_tasks
        assert (forecast["task"], rollout["task"]) == ("forecast__burgers-tiny", "rollout__burgers-tiny")
        for t in c.eval_tasks:  # scored on held-out trajectories of the data the cell trained on
            assert t["data"]["params"] == r["data"]["params"] and t["data"]["split"] == "test"
            assert t["data"]["num_samples"] == r["data"]["num_samples"] == 160
    assert {r["evaluation"]["tasks"] == [] for r in stage.recipes} == {True}


def test_reference_arms_need_overrides(tmp_path):
    text = LAPTOP.read_text().replace("arms: [pretrained, scratch, fno]", "arms: [pretrained, scratch, fn0]")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("recipe: ../", f"recipe: {LAPTOP.parent.parent}/"))
    with pytest.raises(ConfigError, match=r"fn0.*arm_overrides\.fn0"):
        load_spec(bad)


# ---------------------------------------------------------------------------------------- committed result


def _committed(result: Path = RESULT) -> dict:
    path = ROOT / result / "fit" / "fit.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `sfm scaling fit {result} --reference fno --target-error 0.02`")
    return json.loads(path.read_text())


@pytest.mark.parametrize("result", [RESULT, LOW_NU_RESULT], ids=["laptop", "low-nu"])
def test_refitting_the_committed_cells_reproduces_the_committed_fit(result, monkeypatch):
    monkeypatch.chdir(ROOT)
    committed = _committed(result)
    s = committed["settings"]
    results = fit_results(
        s["source"],
        x=s["x"],
        metric=s["metric"],
        group_by=s["group_by"],
        target_error=s["target_error"],
        n_bootstrap=s["n_bootstrap"],
        seed=s["seed"],
        ci=s["ci"],
        huber_delta=s["huber_delta"],
        reference=s["reference"],
        skip_degenerate=True,  # the low-nu pretrained arm does not fall with data: recorded, not fitted
    )
    fresh = json.loads(json.dumps(to_jsonable(to_json(results)), allow_nan=False))  # as write_report does
    # Everything but the provenance (date, git commit of the refit) is the same, to the last bit.
    fresh.pop("provenance"), committed.pop("provenance")
    assert fresh == committed


def test_committed_fit_has_every_arm_alpha_and_gains_against_fno():
    fit = _committed(RESULT)
    seeds = {}
    for c in fit["curves"]:
        for p in c["points"]:
            seeds[(c["group"]["arm"], p["data_size"])] = seeds.get((c["group"]["arm"], p["data_size"]), 0) + 1
    assert set(seeds.values()) == {3}  # every arm at every size has 3 seeds
    arms = {c["group"]["arm"]: c for c in fit["curves"]}
    assert set(arms) == {"pretrained", "scratch", "fno"}
    for c in arms.values():
        lo, hi = c["params"]["alpha"]["interval"]
        assert lo <= c["params"]["alpha"]["value"] <= hi
        assert c["baselines"]["persistence"] > 0
    vs = {r["arm"].split("arm=")[1].split(",")[0]: r for r in fit["reference"]}
    assert set(vs) == {"pretrained", "scratch"}
    for r in vs.values():
        assert all("eg" in p and "ag" in p for p in r["points"]) and "crossing" in r


def test_committed_low_nu_fit_says_which_curve_could_not_be_fitted():
    fit = _committed(LOW_NU_RESULT)
    # Only the FNO's error falls with data at low viscosity; the other two arms are recorded as unfitted.
    assert {c["group"]["arm"] for c in fit["curves"]} == {"fno"}
    skipped = {s["id"].split("arm=")[1].split(",")[0]: s for s in fit["skipped"] if s["what"] == "curve"}
    assert set(skipped) == {"pretrained", "scratch"}
    assert all("does not decrease" in s["reason"] for s in skipped.values())


@pytest.mark.parametrize(
    ("result", "docs"),
    [
        (RESULT, ("README.md", "eval/scaling/laptop/README.md")),
        (LOW_NU_RESULT, ("eval/scaling/laptop/README.md",)),
    ],
    ids=["laptop", "low-nu"],
)
def test_readme_table_equals_the_committed_cells(result, docs):
    table = cells_markdown(ROOT / result / "cells.csv", arms=["pretrained", "scratch", "fno"])
    key = "" if result == RESULT else result.name
    for doc in (ROOT / d for d in docs):
        found = between_markers(doc.read_text(encoding="utf-8"), key)
        assert found is not None, (
            f"{doc.name}: no scaling table between <!-- scaling-table{':' + key if key else ''}:start --> and "
            f"its :end marker; paste the output of sfm.scaling.markdown.cells_markdown('{result}/cells.csv')"
        )
        assert found == table, f"{doc}: the scaling table differs from {result}/cells.csv"


# ---------------------------------------------------------------------------------------- the pieces


def _law(E: float, A: float, alpha: float, xs=(2, 4, 8, 16, 32, 64, 128)):
    x = np.repeat(np.asarray(xs, dtype=float), 3)
    return fit_power_law(x, E + A * x**-alpha, n_bootstrap=16, seed=0)


def test_reference_gains_match_the_closed_form():
    arm, ref = _law(0.01, 0.1, 1.0), _law(0.01, 0.2, 1.0)
    xs = np.array([2.0, 8.0, 32.0])
    points = reference_gains(arm, ref, xs)
    for p, n in zip(points, xs, strict=True):
        # E_ref^-1(E_arm(n)) = 2n exactly (same floor and exponent, twice the coefficient): EG = 2.
        assert p["eg"]["value"] == pytest.approx(2.0, rel=1e-3)
        assert p["ag"]["value"] == pytest.approx((0.01 + 0.2 / n) / (0.01 + 0.1 / n), rel=1e-3)
        assert p["eg"]["interval"][0] <= p["eg"]["value"] <= p["eg"]["interval"][1] * (1 + 1e-6)
    # The reverse comparison is a loss, and reported as one.
    assert all(p["eg"]["value"] < 1 and p["ag"]["value"] < 1 for p in reference_gains(ref, arm, xs))


def test_crossing_of_two_laws():
    a, b = _law(0.01, 0.05, 0.5), _law(0.002, 0.3, 1.0)
    c = crossing(a, b)
    # Solve 0.01 + 0.05 n^-0.5 = 0.002 + 0.3 n^-1 on a fine grid for the reference value.
    n = np.geomspace(1, 200, 200_001)
    d = (0.01 + 0.05 * n**-0.5) - (0.002 + 0.3 * n**-1)
    expect = n[np.flatnonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]]
    assert c["crosses"] and c["x"] == pytest.approx(expect, rel=1e-3)
    assert (c["lower_below"], c["lower_above"]) == ("a", "b") and not c["extrapolated"]
    assert not crossing(_law(0.01, 0.1, 1.0), _law(0.01, 0.2, 1.0))["crosses"]


def test_fit_refuses_an_unnamed_reference_arm():
    rows = [
        {"task": "t", "arm": arm, "data_size": n, "params": 1, "steps": 1, "tokens": 1, "nrmse": 0.1 / n}
        for arm in ("scratch", "fno")
        for n in (2, 4, 8, 16)
    ]
    with pytest.raises(UnknownNameError, match="--reference fno"):
        fit_results(rows, n_bootstrap=4)
    out = fit_results(rows, n_bootstrap=4, reference="fno")
    assert [r["reference"] for r in out["reference"]] == ["task=t,arm=fno,params=1"]


def test_field_model_warm_start_keeps_weights_and_takes_the_new_data(tmp_path):
    import torch

    from sfm.models.field_config import FieldsSection, OperatorSection
    from sfm.models.field_io import FieldSpec
    from sfm.models.operators import build_operator
    from sfm.training.fields import warm_start

    fields = FieldsSection(coefficients=False)
    old = FieldSpec(1, [64], 2, 1, ["beta"], [0.0], [1.0], ["u"], "advection", [1.0], [0.5])
    model = build_operator(old, "operator:fno", OperatorSection(n_modes=[8], hidden_channels=8), fields)
    model.save(tmp_path / "pre")
    new = FieldSpec(1, [64], 2, 1, ["nu"], [0.3], [2.0], ["u"], "burgers", [0.02], [0.005])
    warm = warm_start(tmp_path / "pre", new, "operator")
    assert warm.training and warm.field_io.spec.family == "burgers"
    assert float(warm.field_io.std.flatten()[0]) == 2.0  # the new data's normalization
    for k, v in model.state_dict().items():
        assert torch.equal(v, warm.state_dict()[k]), k
    with pytest.raises(ConfigError, match="continuous"):
        warm_start(tmp_path / "pre", new, "continuous")
    wider = FieldSpec(1, [32], 2, 1, ["nu"], [0.3], [2.0], ["u"], "burgers")
    with pytest.raises(ConfigError, match="grid"):
        warm_start(tmp_path / "pre", wider, "operator")


def test_local_launcher_counts_child_cpu_seconds():
    from sfm.scaling.local import _wait

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.05: pass"
    p = subprocess.Popen([sys.executable, "-c", burn])
    rc, cpu = _wait(p)
    assert rc == 0 and p.returncode == 0 and cpu >= 0.05
    rc, _ = _wait(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
    assert rc == 3


def test_leaderboard_scaling_section_shows_every_arm_and_the_gains():
    from sfm.publish.leaderboard.scaling import load_scaling

    (rep,), warnings = load_scaling([ROOT / RESULT / "fit"])
    assert warnings == [] and rep.pngs
    names = [row[0] for row in rep.rows]
    for arm in ("pretrained", "scratch", "fno"):
        assert any(n.startswith("curve") and f"arm={arm}," in n for n in names), arm
    assert {"gains pretrained vs fno", "gains scratch vs fno"} <= set(names)
    gains = next(row for row in rep.rows if row[0] == "gains pretrained vs fno")
    assert "EG" in gains[5] and "AG" in gains[5] and "n=2:" in gains[5]
