"""``sfm scaling fit`` end to end on a sweep written here: files, JSON, CSV and plots agree with the library."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sfm.cli import main
from sfm.scaling import compute_optimal, fit_joint, fit_power_law, x_for_target
from sfm.scaling.plots import plot_curves

N_BOOT = 8
PARAMS = (1e6, 4e6, 1.6e7)
DATA = (16, 45, 128, 362, 1024, 2896)
LAWS = {"pretrained": (0.01, 20.0, 0.3, 40.0, 0.35), "scratch": (0.01, 50.0, 0.3, 300.0, 0.35)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep folder with cells.csv: 2 arms x 3 model sizes x 6 data sizes, L(N, D) with 2% noise."""
    folder = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    rows = []
    for arm, (E, A, a, B, b) in LAWS.items():
        for n in PARAMS:
            for ds in DATA:
                tokens = ds * 4000  # 4 epochs of 1000-token trajectories
                err = (E + A * n**-a + B * tokens**-b) * np.exp(0.02 * rng.standard_normal())
                rows.append({"task": "burgers", "arm": arm, "model": f"m{n:.0e}", "data_size": ds, "params": int(n),
                             "steps": 100, "tokens": tokens, "nrmse": float(err), "lora_rank": ""})  # fmt: skip
    with open(folder / "cells.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def report(sweep):
    argv = ["scaling", "fit", str(sweep), "--n-bootstrap", str(N_BOOT), "--seed", "3",
            "--target-error", "1.0", "--target-error", "0.3", "--budget", "1e15"]  # fmt: skip
    assert main(argv) == 0
    out = sweep / "fit"
    return out, json.loads((out / "fit.json").read_text())


def _rows(sweep, **match):
    with open(sweep / "cells.csv") as fh:
        return [r for r in csv.DictReader(fh) if all(r[k] == v for k, v in match.items())]


def test_report_files_exist(report):
    out, _ = report
    assert (out / "fit.json").is_file() and (out / "fit.csv").is_file()
    pngs = sorted(p.name for p in out.glob("*.png"))
    # one plot per model size with both arms, one per joint fit
    assert len([p for p in pngs if p.startswith("curves_")]) == 3
    assert [p for p in pngs if p.startswith("joint_")] == [
        "joint_task-burgers_arm-pretrained.png",
        "joint_task-burgers_arm-scratch.png",
    ]
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert not list(out.parent.glob(".fit.tmp-*"))  # written atomically: no temporary folder left


def test_json_settings_and_provenance(report):
    _, js = report
    s = js["settings"]
    assert s["x"] == "data_size" and s["metric"] == "nrmse" and s["n_bootstrap"] == N_BOOT and s["seed"] == 3
    assert s["group_by"] == ["task", "arm", "model", "params"]  # lora_rank is empty everywhere: dropped
    assert s["target_error"] == [1.0, 0.3] and s["budget"] == [1e15]
    assert js["provenance"]["sfm_version"] and js["provenance"]["date"].startswith("20")
    assert len(js["curves"]) == 6 and len(js["joint"]) == 2 and len(js["efficiency"]) == 3


def test_curve_numbers_match_the_library(sweep, report):
    _, js = report
    (c,) = [c for c in js["curves"] if c["group"]["arm"] == "scratch" and c["group"]["params"] == 4_000_000]
    rows = _rows(sweep, arm="scratch", params="4000000")
    x = [float(r["data_size"]) for r in rows]
    y = [float(r["nrmse"]) for r in rows]
    f = fit_power_law(x, y, n_bootstrap=N_BOOT, seed=c["seed"])
    for k, v in f.params.items():
        assert c["params"][k]["value"] == pytest.approx(v, rel=1e-12)
        assert c["params"][k]["interval"] == pytest.approx(list(f.intervals[k]), rel=1e-12)
    assert c["r2_log"] == pytest.approx(f.r2_log, rel=1e-12)
    assert [p["row"] for p in c["points"]] == [f"line {i}" for i in range(26, 32)]  # CSV lines of these rows
    for t, want in zip(c["targets"], (x_for_target(f, 1.0), x_for_target(f, 0.3))):
        assert t["reachable"] == want["reachable"] and t["extrapolated"] == want["extrapolated"]
        if want["reachable"]:
            assert t["value"] == pytest.approx(want["value"], rel=1e-12)
        else:  # infinite data: null in JSON, with the flag and the reason beside it
            assert t["value"] is None and t["note"].startswith("unreachable")


def test_joint_and_compute_optimal_match_the_library(sweep, report):
    _, js = report
    (j,) = [j for j in js["joint"] if j["group"]["arm"] == "scratch"]
    rows = _rows(sweep, arm="scratch")
    N, D, y = ([float(r[k]) for r in rows] for k in ("params", "tokens", "nrmse"))
    f = fit_joint(N, D, y, n_bootstrap=N_BOOT, seed=j["seed"])
    for k, v in f.params.items():
        assert j["params"][k]["value"] == pytest.approx(v, rel=1e-12)
    assert j["params"]["alpha"]["interval"][0] <= 0.3 <= j["params"]["alpha"]["interval"][1]
    assert j["params"]["beta"]["interval"][0] <= 0.35 <= j["params"]["beta"]["interval"][1]
    (opt,) = j["compute_optimal"]
    want = compute_optimal(f, 1e15)
    assert opt["N_opt"]["value"] == pytest.approx(want["N_opt"]["value"], rel=1e-12)
    assert opt["extrapolated"] == want["extrapolated"]


def test_csv_has_one_row_per_curve_matching_the_json(report):
    out, js = report
    with open(out / "fit.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["curve"] for r in rows] == [c["id"] for c in js["curves"]]
    for r, c in zip(rows, js["curves"]):
        assert float(r["alpha"]) == c["params"]["alpha"]["value"]
        assert float(r["alpha_lo"]) == c["params"]["alpha"]["interval"][0]
        assert r["x_for_0.3_extrapolated"] in ("True", "False")
        assert r["x_for_0.3_extrapolated"] == str(c["targets"][1]["extrapolated"])


def test_efficiency_pairs_arms_of_the_same_model(report):
    _, js = report
    for pair in js["efficiency"]:
        pre = pair["pretrained"].replace("arm=pretrained", "arm=scratch")
        assert pair["scratch"] == pre
        for p in pair["points"]:
            assert p["extrapolated"] in (True, False)
            if p["reachable"]:
                assert p["gain"]["value"] > 1  # the pretrained arm is better everywhere in this sweep
            else:  # scratch never reaches the pretrained error: infinite gain, null in JSON, flagged
                assert p["gain"]["value"] is None and p["extrapolated"] is True


def test_plot_dashes_and_labels_the_extrapolation(sweep):
    rows = _rows(sweep, arm="scratch", params="1000000")
    f = fit_power_law([float(r["data_size"]) for r in rows], [float(r["nrmse"]) for r in rows], n_bootstrap=4)
    target = x_for_target(f, float(f.predict(20_000)))  # solution beyond the measured range
    fig = plot_curves([{"id": "c", "group": {"arm": "scratch"}, "fit": f, "targets": [target]}],
                      x_name="data_size", metric="nrmse", targets=[target["target"]])  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert dashed and max(float(np.max(ln.get_xdata())) for ln in dashed) >= 20_000  # reaches the target
    texts = [t.get_text() for t in ax.get_legend().get_texts()] + [t.get_text() for t in ax.texts]
    assert any("extrapolated" in t for t in texts)
    assert any(t.endswith("(extrapolated)") for t in (a.get_text() for a in ax.texts))


def test_cli_errors_are_one_line(sweep, tmp_path, capsys):
    assert main(["scaling", "fit", str(sweep), "--metric", "nrsme", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no metric column 'nrsme' (did you mean 'nrmse'" in err
    assert main(["scaling", "fit", str(tmp_path / "missing.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    # an existing report is not overwritten silently
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "fit.json").write_text("{}")
    argv = [
        "scaling",
        "fit",
        str(sweep / "cells.csv"),
        "--n-bootstrap",
        "0",
        "--no-plots",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((tmp_path / "r" / "fit.json").read_text())["settings"]["n_bootstrap"] == 0


def test_scaling_without_action_prints_help(capsys):
    assert main(["scaling"]) == 1
    assert "fit" in capsys.readouterr().out
