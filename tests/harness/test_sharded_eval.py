"""Under ``accelerate launch`` the eval examples shard across processes and gather on the main one: two CPU
processes give exactly the single-process results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sfm.harness.results import EvalResults

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"
ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_two_process_eval_equals_one(tmp_path):
    env = {**os.environ, "SFM_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    train = [
        sys.executable,
        "-m",
        "sfm.train",
        str(RECIPE),
        "--output_dir",
        str(run),
        "--max_steps",
        "2",
        "--no-progress",
    ]
    subprocess.run(train, env=env, check=True, capture_output=True, timeout=900)
    task = "rollout/burgers-tiny"
    args = ["eval", "--model", str(run), "--tasks", task, "--limit", "5", "--batch-size", "2"]
    one = subprocess.run(
        [sys.executable, "-m", "sfm.cli", *args, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    cfg = ROOT / "launch" / "accelerate" / "cpu_ddp.yaml"
    two = subprocess.run(
        [
            ACCELERATE,
            "launch",
            "--config_file",
            str(cfg),
            "-m",
            "sfm.cli",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = EvalResults.load(tmp_path / "one" / "results.json").tasks[task]
    b = EvalResults.load(tmp_path / "two" / "results.json").tasks[task]
    assert a.n_examples == b.n_examples == 5
    assert a.validity == b.validity
    for metric, value in a.model.metrics.items():
        assert b.model.metrics[metric].value == pytest.approx(value.value, rel=1e-9), metric
    for name, curve in a.model.curves.items():
        assert b.model.curves[name] == pytest.approx(curve, rel=1e-9), name
