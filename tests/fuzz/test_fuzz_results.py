"""Fuzzing the readers of results files, the leaderboard and run records.

A results folder collects files from many runs, some interrupted, some from other tools or versions. Allowed
outcomes of reading one: the typed record, or one :class:`~sfm.errors.DataError` line — for valid JSON of the
wrong shape, truncated files, non-UTF-8 bytes and absurdly deep nesting alike. The leaderboard skips an
unreadable file with a warning and keeps every valid one (as lm-evaluation-harness keeps every valid task
result when one task fails), and a file that loads never crashes the ranking.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm import config
from sfm.commands.leaderboard import main as leaderboard_main
from sfm.errors import DataError, SfmError
from sfm.harness.results import EvalResults, MetricValue, ModelInfo, Scores, TaskResult
from sfm.models.run import RUN_FILE, RunRecord
from sfm.publish.leaderboard import build_leaderboard, load_results
from sfm.publish.leaderboard.render import to_csv, to_json, to_markdown

# SFM_FUZZ_EXAMPLES raises the count for a long local hunt; CI keeps the derandomized default.
FUZZ = settings(
    max_examples=int(os.environ.get("SFM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _scores(v: float, curve: list[float | None]) -> Scores:
    return Scores(
        metrics={"nrmse": MetricValue(v, 0.9 * v, 1.1 * v, 8), "rmse": MetricValue(2 * v, n=8)},
        windows={"6:12": {"nrmse": MetricValue(v * 1.5, n=4)}},
        curves={"nrmse": curve},
    )


def _results(name: str, v: float) -> EvalResults:
    task = TaskResult(
        task="forecast/burgers-tiny",
        version=1,
        family="forecast",
        primary_metric="nrmse",
        n_examples=8,
        validity=0.75,
        model=_scores(v, [v, None, 2 * v]),
        baselines={"persistence": _scores(0.1, [0.1, 0.2]), "linear": _scores(0.05, [])},
        extra={"noise": {"0.01": 0.2}},
        config={"limit": 8},
        data_fingerprint="abc",
    )
    return EvalResults(
        model=ModelInfo(name=name, kind="token", fingerprint=f"fp-{name}", budget={"steps": 10}),
        tasks={task.task: task},
        date="2026-12-01T00:00:00+00:00",
    )


def _valid_dict(name: str = "valid", v: float = 0.05) -> dict[str, Any]:
    return json.loads(json.dumps(config.to_dict(_results(name, v))))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["nrmse", "persistence", "forecast", "token", "baseline", "", "1"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=8), st.sampled_from(["schema_version", "model", "tasks", "value", "n"])
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_results(draw: st.DrawFn) -> Any:
    """A valid results record with one to three values replaced or deleted (sometimes pure noise)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data = _valid_dict()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return data


def _one_line_data_error_or(call, expected: type) -> Any:
    try:
        result = call()
    except DataError as exc:
        assert len(str(exc).splitlines()) == 1, repr(str(exc))
        return None
    assert isinstance(result, expected)
    return result


@FUZZ
@given(data=mutated_results())
def test_results_of_any_shape(tmp_path: Path, data: Any) -> None:
    """A record that loads also ranks and renders: the leaderboard never meets a shape it crashes on."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = _one_line_data_error_or(lambda: EvalResults.load(path), EvalResults)
    if loaded is None:
        return
    reference = EvalResults.load(_save(tmp_path / "ref", _results("ref", 0.04)))
    try:
        lb = build_leaderboard([(path, loaded), (None, reference)])
    except SfmError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    assert {r.name for r in lb.rows} >= {"ref"}
    to_markdown(lb, [], list(lb.notes)), to_csv(lb), json.dumps(to_json(lb, [], list(lb.notes)))


def _save(folder: Path, results: EvalResults) -> Path:
    return results.save(folder)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_results_files(tmp_path: Path, cut: int) -> None:
    full = json.dumps(_valid_dict()).encode()
    path = tmp_path / "results.json"
    path.write_bytes(full[: cut % len(full)])  # an interrupted copy or write
    with pytest.raises(DataError):
        EvalResults.load(path)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(raw)
    _one_line_data_error_or(lambda: EvalResults.load(path), EvalResults)
    (tmp_path / RUN_FILE).write_bytes(raw)
    _one_line_data_error_or(lambda: RunRecord.read(tmp_path), RunRecord)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 50_000 + "]" * 50_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"schema_version": 1, "model": ' + '{"a":' * 20_000 + "1" + "}" * 20_000 + "}",
        "\xff\xfe{}",
        "",
        "NaN",
        '{"schema_version": 1e400}',
    ],
    ids=["open-lists", "deep-lists", "deep-objects", "deep-model", "bom", "empty", "nan", "huge-number"],
)
def test_hostile_json_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(
        text.encode("utf-8", errors="surrogateescape") if text != "\xff\xfe{}" else b"\xff\xfe{}"
    )
    with pytest.raises(DataError) as info:
        EvalResults.load(path)
    assert len(str(info.value).splitlines()) == 1
    (tmp_path / RUN_FILE).write_bytes(path.read_bytes())
    with pytest.raises(DataError):
        RunRecord.read(tmp_path)


@FUZZ
@given(
    data=st.one_of(
        json_values, st.fixed_dictionaries({"recipe": json_values}, optional={"kind": json_values})
    )
)
def test_run_records_of_any_shape(tmp_path: Path, data: Any) -> None:
    (tmp_path / RUN_FILE).write_text(json.dumps(data), encoding="utf-8")
    record = _one_line_data_error_or(lambda: RunRecord.read(tmp_path), RunRecord)
    if record is not None:  # what loads writes back and reads again as the same record
        record.save(tmp_path / "again")
        assert RunRecord.read(tmp_path / "again") == record


def test_leaderboard_keeps_every_valid_file(tmp_path: Path, capsys) -> None:
    """Junk beside valid results: each junk file is one warning, every valid model is ranked."""
    results = tmp_path / "results"
    for i, v in enumerate([0.03, 0.05, 0.07]):
        _save(results / f"good{i}", _results(f"model-{i}", v))
    junk = {
        "truncated": json.dumps(_valid_dict())[:100].encode(),
        "latin1": b'{"schema_version": 1, "model": {"name": "caf\xe9"}}',
        "wrong-shape": json.dumps({"schema_version": 1, "model": [1, 2], "tasks": "x"}).encode(),
        "other-schema": json.dumps({**_valid_dict(), "schema_version": 99}).encode(),
        "deep": b"[" * 100_000,
        "empty": b"",
    }
    for name, raw in junk.items():
        (results / name).mkdir(parents=True)
        (results / name / "results.json").write_bytes(raw)
    loaded, warnings = load_results([results])
    assert sorted(r.model.name for _, r in loaded) == ["model-0", "model-1", "model-2"]
    assert len(warnings) == len(junk) and all(len(w.splitlines()) == 1 for w in warnings)
    assert leaderboard_main([str(results), "--out", str(tmp_path / "lb")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: skipped") == len(junk)
    rows = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())["rows"]
    assert {"model-0", "model-1", "model-2"} <= {r["name"] for r in rows}
