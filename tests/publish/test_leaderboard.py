"""The leaderboard: scores computed by hand, dedup and version rules, loading, and every output format."""

from __future__ import annotations

import base64
import csv
import json
import math
import re

import numpy as np
import pytest

from sfm.commands.leaderboard import main
from sfm.errors import DataError
from sfm.harness.results import EvalResults, MetricValue, ModelInfo, Scores, TaskResult
from sfm.publish.leaderboard import build_leaderboard, load_results, task_key, write_leaderboard


def mv(v, n=10):
    return MetricValue(v, None if v is None else 0.9 * v, None if v is None else 1.1 * v, n)


def task(
    name,
    version=1,
    *,
    model=None,
    baselines=None,
    metric="nrmse",
    hib=False,
    validity=1.0,
    curves=None,
    extra=None,
    family="forecast",
):
    """A TaskResult whose primary metric is ``metric``; ``model``/``baselines`` give its values."""

    def scores(v, name_):
        return Scores(
            metrics={metric: mv(v) if not isinstance(v, MetricValue) else v},
            curves={metric: (curves or {}).get(name_, [])},
        )

    return TaskResult(
        task=name,
        version=version,
        family=family,
        primary_metric=metric,
        higher_is_better=hib,
        n_examples=10,
        validity=validity,
        model=None if model is None else scores(model, "model"),
        baselines={b: scores(v, b) for b, v in (baselines or {}).items()},
        extra=extra or {},
    )


def res(name, *tasks, kind="model", fingerprint=None, date="2026-11-01T00:00:00+00:00"):
    return EvalResults(
        model=ModelInfo(name=name, kind=kind, fingerprint=fingerprint or f"fp-{name}"),
        tasks={t.task: t for t in tasks},
        date=date,
    )


def save(tmp_path, folder, r):
    return r.save(tmp_path / folder), r


# -- the overall score, by hand ---------------------------------------------------------------------


def test_overall_score_is_the_geometric_mean_of_ratios_to_the_reference(tmp_path):
    a = res(
        "A",
        task("t1", model=0.2, baselines={"persistence": 0.4, "linear": 0.3}),
        task("t2", model=0.9, baselines={"persistence": 0.3, "linear": 0.45}),
    )
    b = res("B", task("t1", model=0.1, baselines={"persistence": 0.4, "linear": 0.3}))
    lb = build_leaderboard([save(tmp_path, "a", a), save(tmp_path, "b", b)])
    scores = {r.name: (r.score, r.n_scored, r.rank) for r in lb.rows}
    # A: ratios 0.2/0.4 = 0.5 and 0.9/0.3 = 3 -> sqrt(1.5); B: 0.1/0.4 on its one task.
    assert scores["A"][0] == pytest.approx(math.sqrt(1.5), rel=1e-12)
    assert scores["B"][:2] == (pytest.approx(0.25, rel=1e-12), 1)
    assert scores["persistence"][0] == pytest.approx(1.0, rel=1e-12)
    assert scores["linear"][0] == pytest.approx(math.sqrt(0.75 * 1.5), rel=1e-12)
    assert [r.name for r in lb.rows] == ["B", "persistence", "linear", "A"]
    assert [r.rank for r in lb.rows] == [1, 2, 3, 4]
    assert scores["A"][1] == 2
    # the baselines agree across both files: one row each, with both sources
    assert lb.row("persistence").sources == ["a", "b"]
    assert lb.task(task_key("t1", 1)).order == ["B", "A", "linear", "persistence"]


def test_equal_scores_share_a_rank(tmp_path):
    a = res("A", task("t1", model=0.2, baselines={"persistence": 0.4}))
    b = res("B", task("t1", model=0.2, baselines={"persistence": 0.4}))
    lb = build_leaderboard([save(tmp_path, "a", a), save(tmp_path, "b", b)])
    assert [(r.name, r.rank) for r in lb.rows] == [("A", 1), ("B", 1), ("persistence", 3)]


def test_higher_is_better_metrics_use_the_inverse_ratio(tmp_path):
    good = res("good", task("sr", model=0.8, baselines={"persistence": 0.4}, metric="r2_acc_099", hib=True))
    zero = res("zero", task("sr", model=0.0, baselines={"persistence": 0.4}, metric="r2_acc_099", hib=True))
    lb = build_leaderboard([save(tmp_path, "g", good), save(tmp_path, "z", zero)])
    assert lb.row("good").score == pytest.approx(0.5)  # 0.4 / 0.8
    assert lb.row("zero").score is None and lb.row("zero").rank is None  # 0 accuracy: no ratio
    assert any("zero has no ratio to persistence" in n for n in lb.notes)
    assert lb.task("sr@v1").order == ["good", "persistence", "zero"]  # best (highest) first


def test_a_non_finite_error_ranks_last_as_inf(tmp_path):
    a = res("broken", task("t1", model=MetricValue(None, n=10), baselines={"persistence": 0.4}))
    b = res("fine", task("t1", model=0.5, baselines={"persistence": 0.4}))
    lb = build_leaderboard([save(tmp_path, "a", a), save(tmp_path, "b", b)])
    assert lb.row("broken").score == math.inf and lb.rows[-1].name == "broken"
    paths = write_leaderboard(lb, tmp_path / "out")
    row = next(r for r in json.loads(paths["json"].read_text())["rows"] if r["name"] == "broken")
    assert row["score"] is None and row["score_infinite"] is True


def test_a_task_without_the_reference_counts_for_no_one(tmp_path):
    a = res(
        "A",
        task("t1", model=0.2, baselines={"persistence": 0.4}),
        task("t2", model=0.7, baselines={"linear": 1.4}),
    )
    lb = build_leaderboard([save(tmp_path, "a", a)])
    assert lb.row("A").score == pytest.approx(0.5) and lb.row("A").n_scored == 1
    assert lb.row("linear").n_scored == 0 and lb.row("linear").rank is None
    assert any("t2@v1: no persistence result" in n for n in lb.notes)


def test_an_absent_reference_baseline_is_an_error_with_a_suggestion(tmp_path):
    a = res("A", task("t1", model=0.2, baselines={"persistence": 0.4}))
    with pytest.raises(DataError, match=r"--baseline 'persistance'.*did you mean 'persistence'"):
        build_leaderboard([save(tmp_path, "a", a)], baseline="persistance")


# -- deduplication and versions ---------------------------------------------------------------------


def test_disagreeing_baselines_become_rows_labelled_by_source(tmp_path):
    a = res("A", task("t1", model=0.2, baselines={"persistence": MetricValue(0.4, n=10)}))
    b = res("B", task("t1", model=0.25, baselines={"persistence": MetricValue(0.5, n=8)}))
    lb = build_leaderboard([save(tmp_path, "run_a", a), save(tmp_path, "run_b", b)])
    names = {r.name for r in lb.rows}
    assert {"persistence [run_a]", "persistence [run_b]"} <= names and "persistence" not in names
    # each model is divided by the persistence of its own file: the same examples
    assert lb.row("A").score == pytest.approx(0.5) and lb.row("B").score == pytest.approx(0.5)
    note = next(n for n in lb.notes if n.startswith("baseline persistence disagrees"))
    assert "run_a: 0.4 (n=10)" in note and "run_b: 0.5 (n=8)" in note


def test_task_versions_are_ranked_separately(tmp_path):
    old = res("old", task("t1", 1, model=0.2, baselines={"persistence": 0.4}))
    new = res("new", task("t1", 2, model=0.3, baselines={"persistence": 0.4}))
    lb = build_leaderboard([save(tmp_path, "o", old), save(tmp_path, "n", new)])
    v1, v2 = lb.task("t1@v1"), lb.task("t1@v2")
    assert not v1.current and v2.current
    assert v1.order == ["old", "persistence"] and v2.order == ["new", "persistence"]
    assert lb.row("old").score is None and lb.row("old").rank is None  # only an outdated version
    assert lb.row("old").entries["t1@v1"].ratio == pytest.approx(0.5)  # still shown in its own table
    assert lb.row("new").score == pytest.approx(0.75)
    note = next(n for n in lb.notes if n.startswith("task t1 "))
    assert "v1: o" in note and "v2: n" in note and "only v2 counts" in note


def test_two_results_of_one_model_keep_the_newer(tmp_path):
    a = res("A", task("t1", model=0.3, baselines={"persistence": 0.4}), date="2026-11-01T00:00:00+00:00")
    b = res("A", task("t1", model=0.2, baselines={"persistence": 0.4}), date="2026-11-02T00:00:00+00:00")
    lb = build_leaderboard([save(tmp_path, "first", a), save(tmp_path, "second", b)])
    assert [r.name for r in lb.rows if r.trained] == ["A"]
    assert lb.row("A").entries["t1@v1"].value.value == 0.2
    assert any("kept the newer one (second" in n for n in lb.notes)


def test_models_sharing_a_name_are_told_apart_by_source(tmp_path):
    a = res("model", task("t1", model=0.3, baselines={"persistence": 0.4}), fingerprint="aaa")
    b = res("model", task("t1", model=0.2, baselines={"persistence": 0.4}), fingerprint="bbb")
    lb = build_leaderboard([save(tmp_path / "x", "run", a), save(tmp_path / "y", "run", b)])
    assert {r.name for r in lb.rows if r.trained} == {"model [x/run]", "model [y/run]"}


# -- loading ----------------------------------------------------------------------------------------


def test_malformed_files_are_skipped_with_a_warning_naming_them(tmp_path):
    good = res("A", task("t1", model=0.2, baselines={"persistence": 0.4})).save(tmp_path / "good")
    bad = json.loads(good.read_text())
    del bad["tasks"]["t1"]["primary_metric"]
    for name, text in (
        ("garbage", "{not json"),
        ("schema0", json.dumps({"schema_version": 0})),
        ("broken", json.dumps(bad)),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(text)
    loaded, warnings = load_results([tmp_path, tmp_path / "missing"])
    assert [p for p, _ in loaded] == [good.resolve()]
    assert len(warnings) == 4
    for name, why in (
        ("garbage", "unreadable"),
        ("schema0", "schema version"),
        ("broken", "primary_metric"),
        ("missing", "no such file"),
    ):
        assert sum(f"/{name}" in w and why in w for w in warnings) == 1, (name, warnings)


def test_main_fails_only_when_nothing_valid_remains(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/results.json").write_text("[]")
    assert main([str(tmp_path / "bad"), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err
    assert "bad/results.json" in err and "no valid results file" in err
    res("A", task("t1", model=0.2, baselines={"persistence": 0.4})).save(tmp_path / "good")
    assert main([str(tmp_path), "--out", str(tmp_path / "lb")]) == 0
    assert (tmp_path / "lb/leaderboard.html").is_file()
    assert "bad/results.json" in capsys.readouterr().err


# -- outputs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two models (a rollout task with curves, a robustness task with a noise curve) and example fields."""
    root = tmp_path_factory.mktemp("lb")
    curves = {"model": [0.1, 0.2, 0.4], "persistence": [0.2, 0.4, 0.8]}
    noise = {
        "levels": [0.0, 0.05, 0.1],
        "metric": "nrmse",
        "model": [0.1, 0.3, 0.9],
        "persistence": [0.2, 0.25, 0.3],
    }
    for name, err in (("alpha", 0.3), ("beta", 0.5)):
        r = res(
            name,
            task("rollout/b", model=err, baselines={"persistence": 0.6}, curves=curves, validity=0.75),
            task(
                "robust/b",
                model=err / 2,
                baselines={"persistence": 0.2},
                extra={"noise_curve": noise},
                family="robustness",
            ),
        )
        r.save(root / name)
        rng = np.random.default_rng(0)
        arrays = {
            k: rng.standard_normal((2, 3, 1, 16)) for k in ("target", "context", "model", "persistence")
        }
        np.savez_compressed(root / name / "examples_rollout__b.npz", **arrays)
    (root / "alpha/examples_robust__b.npz").write_bytes(b"not a zip file")
    loaded, _ = load_results([root])
    lb = build_leaderboard(loaded)
    return lb, write_leaderboard(lb, root / "out"), loaded


def test_csv_round_trips_every_number(written):
    lb, paths, loaded = written
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == sum(len(r.entries) for r in lb.rows) == 6
    by = {(r["name"], r["task"]): r for r in rows}
    for _, results in loaded:
        for t in results.tasks.values():
            got = by[(results.model.name, t.task)]
            want = t.model.metrics["nrmse"]
            assert (float(got["value"]), float(got["ci_low"]), float(got["ci_high"])) == (
                want.value,
                want.ci_low,
                want.ci_high,
            )
            assert float(got["validity"]) == t.validity
            assert float(got["ratio"]) == pytest.approx(
                want.value / t.baselines["persistence"].metrics["nrmse"].value
            )
    # alpha: 0.3/0.6 on rollout/b and 0.15/0.2 on robust/b
    assert float(by[("alpha", "rollout/b")]["score"]) == pytest.approx(math.sqrt(0.5 * 0.75), rel=1e-12)


def test_json_and_markdown_carry_the_same_ranking(written):
    lb, paths, _ = written
    data = json.loads(paths["json"].read_text())
    assert [r["name"] for r in data["rows"]] == [r.name for r in lb.rows] == ["alpha", "persistence", "beta"]
    assert data["rows"][0]["score"] == pytest.approx(lb.rows[0].score)
    md = paths["md"].read_text()
    assert "| 1 | alpha | token | 0.6124 | 2/2 | 0.15 [0.135, 0.165] | 0.3 [0.27, 0.33] | 75% |" in md
    assert "## rollout/b (v1, forecast)" in md and "## robust/b (v1, robustness)" in md


def test_html_is_one_self_contained_page_with_the_plots(written):
    _, paths, _ = written
    html = paths["html"].read_text()
    srcs = re.findall(r'src="([^"]*)"', html)
    # rollout/b: error curves + 2 example figures; robust/b: noise curve (its example file is corrupt)
    assert len(srcs) == 4
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert "examples_robust__b.npz: example fields not plotted" in html  # a bad file is a note, not a crash
    assert "<td>alpha</td>" in html and "0.3 [0.27, 0.33]" in html


@pytest.fixture
def small_lb(tmp_path):
    return build_leaderboard(
        [save(tmp_path, "a", res("A", task("t1", model=0.2, baselines={"persistence": 0.4})))]
    )


def test_scaling_reports_are_read_defensively(tmp_path, small_lb):
    lb = small_lb
    good = tmp_path / "fit"
    good.mkdir()
    fit = {
        "curves": [
            {
                "id": "burgers/pretrained",
                "law": "error = E_inf + A * data_size^-alpha",
                "n_points": 6,
                "params": {
                    "alpha": {"value": 0.52, "interval": [0.47, 0.58]},
                    "E_inf": {"value": 0.01, "interval": [0.0, 0.02]},
                },
                "r2_log": 0.991,
            }
        ],
        "joint": [
            {"id": "burgers", "params": {"alpha": {"value": 0.3}, "beta": {"value": 0.35, "interval": None}}}
        ],
        "some_future_key": 1,
    }
    (good / "fit.json").write_text(json.dumps(fit))
    (good / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "fit.json").write_text("{truncated")
    (odd / "joint.png").write_bytes(b"\x89PNG\r\n\x1a\nfake2")
    paths = write_leaderboard(lb, tmp_path / "out", scaling=[good, odd, tmp_path / "nope"])
    md = paths["md"].read_text()
    assert (
        "| curve burgers/pretrained | error = E_inf + A * data_size^-alpha | 6 | 0.52 [0.47, 0.58] | - | E_inf = 0.01 [0, 0.02] | 0.991 |"
        in md
    )
    assert "| joint burgers | - | - | 0.3 | 0.35 | - | - |" in md
    data = json.loads(paths["json"].read_text())
    assert [s["plots"] for s in data["scaling"]] == [["curves.png"], ["joint.png"]]
    assert any("odd: no readable fit.json" in n for n in data["notes"])
    assert any("nope: no such folder" in n for n in data["notes"])
    html = paths["html"].read_text()
    for png in (b"\x89PNG\r\n\x1a\nfake", b"\x89PNG\r\n\x1a\nfake2"):
        assert base64.b64encode(png).decode() in html


def test_a_real_scaling_report_is_tabulated(tmp_path, small_lb):
    report = pytest.importorskip("sfm.scaling.report")
    from sfm.scaling.results import fit_results

    rng = np.random.default_rng(0)
    rows = [
        {
            "task": "b",
            "arm": "pretrained",
            "data_size": d,
            "params": 1000,
            "steps": 10,
            "tokens": 100 * d,
            "nrmse": 0.01 + 2.0 * d**-0.5 * np.exp(0.01 * rng.standard_normal()),
        }
        for d in (16, 32, 64, 128, 256)
    ]
    out = report.write_report(fit_results(rows, n_bootstrap=8), tmp_path / "fit", plots=False)
    alpha = json.loads((out / "fit.json").read_text())["curves"][0]["params"]["alpha"]
    paths = write_leaderboard(small_lb, tmp_path / "lb", scaling=[out])
    cell = f"{alpha['value']:.3g} [{alpha['interval'][0]:.3g}, {alpha['interval'][1]:.3g}]"
    assert cell in paths["md"].read_text()


def test_a_file_without_the_reference_borrows_the_shared_row_and_says_so(tmp_path):
    a = res("A", task("t1", model=0.2, baselines={"persistence": 0.4}))
    b = res("B", task("t1", model=0.1, baselines={"linear": 0.3}))
    lb = build_leaderboard([save(tmp_path, "a", a), save(tmp_path, "b", b)])
    assert lb.row("B").score == pytest.approx(0.25)
    assert "B on t1@v1: its results file has no persistence; divided by the persistence row of a" in lb.notes


def test_results_without_any_baseline_still_give_per_task_tables(tmp_path):
    a = res("A", task("t1", model=0.2))
    lb = build_leaderboard([save(tmp_path, "a", a)])
    assert lb.row("A").score is None and lb.task("t1@v1").order == ["A"]
    assert any("no result carries a baseline" in n for n in lb.notes)
