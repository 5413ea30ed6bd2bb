"""``sfm leaderboard`` and ``python eval/leaderboard.py`` are one command: same options, same files."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sfm.cli import build_parser
from sfm.cli import main as sfm_main
from sfm.commands import leaderboard as command

from .test_leaderboard import res, task

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "eval" / "leaderboard.py"


def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}


def test_both_entry_points_have_every_option():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["leaderboard"]
    script = argparse.ArgumentParser()
    command.add_arguments(script)
    assert _options(sub) == _options(script) == {"--out", "--baseline", "--scaling"}


def _comparable(folder: Path) -> dict[str, object]:
    """Every output, with the one thing allowed to differ (the time it was written) taken out."""
    data = json.loads((folder / "leaderboard.json").read_text())
    data.pop("date")
    html = re.sub(r"<small>sfm [^,]+, [^<]+</small>", "", (folder / "leaderboard.html").read_text())
    return {
        "md": (folder / "leaderboard.md").read_text(),
        "csv": (folder / "leaderboard.csv").read_text(),
        "json": data,
        "html": html,
    }


@pytest.fixture
def results(tmp_path):
    for name, err in (("a", 0.2), ("b", 0.5)):
        res(name, task("t1", model=err, baselines={"persistence": 0.4, "linear": 0.3})).save(
            tmp_path / "r" / name
        )
    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "fit.json").write_text(json.dumps({"curves": [{"id": "c", "params": {"alpha": {"value": 0.5}}}]}))
    return tmp_path


def test_sfm_leaderboard_and_the_script_write_the_same_files(results, capsys):
    args = [str(results / "r"), "--baseline", "linear", "--scaling", str(results / "fit")]
    assert sfm_main(["leaderboard", *args, "--out", str(results / "via_sfm")]) == 0
    printed = capsys.readouterr().out
    run = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(results / "via_script")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert _comparable(results / "via_sfm") == _comparable(results / "via_script")
    assert run.stdout.replace("via_script", "via_sfm") == printed
    md = (results / "via_sfm" / "leaderboard.md").read_text()
    assert "divided by linear's" in md and "| curve c | - | - | 0.5 |" in md  # both options took effect
    assert "| 1 | a | token | 0.6667 |" in md  # 0.2 / 0.3


def test_errors_are_one_line_and_exit_2_from_both(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/results.json").write_text("[]")
    assert sfm_main(["leaderboard", str(tmp_path / "bad"), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sfm: error: no valid results file among") and "bad/results.json" in err[0]
    assert command.main([str(tmp_path / "bad"), "--out", str(tmp_path / "lb")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("leaderboard: error: no valid results")
    (tmp_path / "file").write_text("")
    res("a", task("t1", model=0.2, baselines={"persistence": 0.4})).save(tmp_path / "good")
    assert command.main([str(tmp_path / "good"), "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "lb").exists()
