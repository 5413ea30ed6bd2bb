"""``sfm scaling run``: spec loading and expansion, the sweep folder, resumption, cells.csv, Slurm scripts.

The end-to-end test trains a real 2 x 2 sweep (two data sizes x pretrained/scratch, with a pretraining stage)
on tiny data, kills one cell's training half-way (its folder left as a SIGKILL leaves it) and reruns the
sweep: finished cells are untouched, the killed one resumes from its checkpoint. Everything else plans,
writes and reads sweep folders without training.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from sfm import config
from sfm.cli import main
from sfm.errors import ConfigError
from sfm.scaling import cells as C
from sfm.scaling.plan import plan_sweep
from sfm.scaling.run import prepare, run_sweep
from sfm.scaling.spec import apply_overrides, load_spec

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"

# Two data sizes x two arms on the tiny Burgers recipe (10 training trajectories of 64 points, 11 frames),
# full fine-tuning for 4 steps with a checkpoint every 2; the pretrained arm starts from 3 steps of
# pretraining on advection. Evaluation: 2 windows of the one test trajectory, persistence as baseline.
SPEC = f"""\
name: t
recipe: {TINY}
overrides:
  peft: {{method: full}}
  training: {{save_steps: 2, logging_steps: 1}}
tasks:
  burgers:
    eval: [forecast/burgers-tiny]
    eval_overrides: {{windows_per_trajectory: 2, bootstrap: 50, baselines: [persistence]}}
grid: {{data_size: [2, 4], steps: [4]}}
pretrain:
  - name: advection
    overrides:
      data: {{simulator: advection, params: {{beta: [0.2, 1.0], nx: 64, nt: 11, t_end: 1.0}}, num_samples: 6}}
      training: {{max_steps: 3}}
parallel: 2
"""


def write_spec(tmp_path: Path, text: str = SPEC, **replace: str) -> Path:
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SFM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------------------------------------- expansion


def test_expansion_order_ids_and_recipes(tmp_path):
    plan = plan_sweep(load_spec(write_spec(tmp_path)))
    assert [c.id for c in plan.cells] == [
        "burgers.pretrained.base.d2.s4.seed0",
        "burgers.scratch.base.d2.s4.seed0",
        "burgers.pretrained.base.d4.s4.seed0",
        "burgers.scratch.base.d4.s4.seed0",
    ]
    assert [s.id for s in plan.stages] == ["pretrain/base"]
    pre, scratch = plan.cells[0], plan.cells[1]
    assert pre.needs == ["pretrain/base"] and scratch.needs == []
    assert pre.recipe["model"]["name_or_path"] == "@pretrain/base/advection"
    assert scratch.recipe["model"]["name_or_path"] == "tiny-llama"
    assert (
        pre.recipe["data"]["train_trajectories"] == 2
        and plan.cells[2].recipe["data"]["train_trajectories"] == 4
    )
    assert {c.recipe["training"]["max_steps"] for c in plan.cells} == {4}
    assert {c.recipe["peft"]["method"] for c in plan.cells} == {"full"}
    # the pretraining stage: another simulator, whose parameters do not inherit Burgers' nu
    stage = plan.stages[0].recipes[0]
    assert stage["data"]["simulator"] == "advection" and "nu" not in stage["data"]["params"]
    assert stage["training"]["max_steps"] == 3 and stage["data"]["train_trajectories"] is None
    # the eval task reads the cell's data: same simulator, parameters, count and seed as its recipe
    task = pre.eval_tasks[0]
    assert task["task"] == "forecast__burgers-tiny"
    for key in ("simulator", "params", "num_samples", "seed"):
        assert task["data"][key] == pre.recipe["data"][key]
    assert task["format"]["space_stride"] == pre.recipe["data"]["task_options"]["space_stride"] == 2
    assert task["windows_per_trajectory"] == 2 and task["baselines"] == ["persistence"]
    # hashes: distinct per cell, stable across expansions
    again = plan_sweep(load_spec(tmp_path / "spec.yaml"))
    assert [c.config_hash for c in again.cells] == [c.config_hash for c in plan.cells]
    assert len({c.config_hash for c in plan.cells}) == 4
    # growing the grid adds cells and leaves the existing ones' configurations (so their results) alone
    grown = plan_sweep(load_spec(write_spec(tmp_path, **{"data_size: [2, 4]": "data_size: [2, 3, 4]"})))
    hashes = {c.id: c.config_hash for c in grown.cells}
    assert len(grown.cells) == 6 and all(hashes[c.id] == c.config_hash for c in plan.cells)


def test_grid_product_models_ranks_seeds(tmp_path):
    text = SPEC.replace(
        "grid: {data_size: [2, 4], steps: [4]}",
        """grid:
  data_size: [1, 2, 3]
  steps: [2, 4]
  model:
    - {name: r4, lora_rank: 4}
    - {name: r16, lora_rank: 16, tiny: {hidden_size: 32, num_attention_heads: 2, num_key_value_heads: 1}}
seeds: [0, 1]""",
    ).replace("method: full", "method: lora")
    plan = plan_sweep(load_spec(write_spec(tmp_path, text)))
    assert len(plan.cells) == 3 * 2 * 2 * 2 * 2  # data sizes x steps x models x arms x seeds
    assert len({c.id for c in plan.cells}) == len(plan.cells)
    r4 = next(c for c in plan.cells if c.columns["model"] == "r4")
    r16 = next(c for c in plan.cells if c.columns["model"] == "r16" and c.columns["arm"] == "scratch")
    # the tiny recipe has r=8, alpha=16: alpha/r = 2 is kept
    assert (r4.recipe["peft"]["r"], r4.recipe["peft"]["alpha"]) == (4, 8.0)
    assert (r16.recipe["peft"]["r"], r16.recipe["peft"]["alpha"]) == (16, 32.0)
    assert r4.columns["lora_rank"] == 4
    # a model's tiny size replaces the base's whole
    assert r16.recipe["model"]["tiny"] == {
        "hidden_size": 32,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    assert {c.recipe["training"]["seed"] for c in plan.cells} == {0, 1}
    assert len(plan.stages) == 2  # one pretraining per model


def test_eval_task_kept_by_name_without_retargeting(tmp_path, home):
    text = SPEC.replace(
        "    eval_overrides: {windows_per_trajectory: 2, bootstrap: 50, baselines: [persistence]}\n",
        "    match_data: false\n",
    )
    spec = write_spec(tmp_path, text)
    plan = plan_sweep(load_spec(spec))
    assert {tuple(c.eval_tasks) for c in plan.cells} == {("forecast/burgers-tiny",)}
    prepare(plan, tmp_path / "out", spec, home)
    saved = json.loads((C.cell_dir(tmp_path / "out", plan.cells[0].id) / C.PLAN_FILE).read_text())
    assert saved["eval_tasks"] == ["forecast/burgers-tiny"]


def test_apply_overrides_rules():
    base = {"data": {"simulator": "burgers", "params": {"nu": 0.1, "nx": 64}}, "training": {"seed": 1}}
    same = apply_overrides(base, {"data": {"params": {"nu": 0.2}}})
    assert same["data"]["params"] == {"nu": 0.2, "nx": 64}  # same simulator: merged key by key
    other = apply_overrides(base, {"data": {"simulator": "heat", "params": {"D": 0.01}}})
    assert other["data"]["params"] == {"D": 0.01}  # another simulator: starts afresh
    assert base["data"]["params"] == {"nu": 0.1, "nx": 64}  # the base is not modified


def test_pretrain_stages_chain(tmp_path):
    text = SPEC.replace(
        "      training: {max_steps: 3}\n",
        """      training: {max_steps: 3}
  - name: heat
    overrides:
      data: {simulator: heat, params: {D: [0.001, 0.01], nx: 64, nt: 11, t_end: 1.0}, num_samples: 6}
""",
    )
    (stage,) = plan_sweep(load_spec(write_spec(tmp_path, text))).stages
    first, second = stage.recipes
    assert first["model"]["name_or_path"] == "tiny-llama"
    assert second["model"]["name_or_path"] == "@pretrain/base/advection"  # heat starts from advection
    assert second["data"]["params"] == {"D": [0.001, 0.01], "nx": 64, "nt": 11, "t_end": 1.0}
    assert stage.output == "@pretrain/base/heat"


# ------------------------------------------------------------------------------------------- spec errors

BAD = {
    "unknown_key": ({"parallel: 2": "paralel: 2"}, "unknown key 'paralel' (did you mean 'parallel'?)"),
    "bad_axis_name": ({"grid: {data_size": "grid: {data_sizes"}, "unknown key 'grid.data_sizes'"),
    "bad_axis_value": ({"data_size: [2, 4]": "data_size: [0, 4]"}, "data_size: values must be >= 1"),
    "duplicate_axis": ({"data_size: [2, 4]": "data_size: [2, 2]"}, "data_size: duplicate value(s) 2"),
    "too_much_data": ({"data_size: [2, 4]": "data_size: [2, 11]"}, "11 trajectories exceed the 10"),
    "arm_typo": ({"parallel: 2": "parallel: 2\narms: [scrach]"}, "did you mean 'scratch'"),
    "metric_typo": ({"parallel: 2": "parallel: 2\nmetric: nrsme"}, "metric 'nrsme' is not scored"),
    "eval_task_typo": (
        {"forecast/burgers-tiny": "forecast/burger-tiny"},
        "did you mean 'forecast/burgers-tiny'",
    ),
    "recipe_key_typo": ({"save_steps: 2": "save_step: 2"}, "unknown key 'training.save_step'"),
    "no_pretrain": ({"pretrain:": "unused:"}, "unknown key 'unused'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_spec_errors_are_one_line(case, tmp_path, capsys):
    replace, message = BAD[case]
    spec = write_spec(tmp_path, **replace)
    assert main(["scaling", "run", str(spec), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and str(spec) in err
    assert not (tmp_path / "out").exists()  # nothing written before the spec is known good


def test_pretrained_tiny_needs_pretrain(tmp_path):
    text = SPEC[: SPEC.index("pretrain:")] + "parallel: 2\n"
    with pytest.raises(
        ConfigError, match=r"'pretrained' on the tiny backbone 'tiny-llama'.*needs a pretrain"
    ):
        plan_sweep(load_spec(write_spec(tmp_path, text)))
    only_scratch = text + "arms: [scratch]\n"
    assert len(plan_sweep(load_spec(write_spec(tmp_path, only_scratch))).cells) == 2


# ------------------------------------------------------------------------------------ sweep folder, csv


def fake_finish(out: Path, index: int, nrmse: float, *, params: int = 1000, tokens: int = 500) -> dict:
    """Write cell ``index`` as finished, with made-up scores (no training)."""
    entry = json.loads((out / C.SWEEP_FILE).read_text())["cells"][index]
    folder = C.cell_dir(out, entry["id"])
    plan = json.loads((folder / C.PLAN_FILE).read_text())
    cell = {
        "schema_version": 1,
        "id": plan["id"],
        "index": index,
        "config_hash": plan["config_hash"],
        **plan["columns"],
        "params": params,
        "trainable_params": params,
        "tokens": tokens,
        "metric": "nrmse",
        "eval_task": "forecast__burgers-tiny",
        "metrics": {
            "forecast__burgers-tiny": {
                "nrmse": {"value": nrmse, "ci_low": nrmse * 0.9, "ci_high": nrmse * 1.1, "n": 2}
            },
            "rollout__burgers-tiny": {"nrmse": {"value": 2 * nrmse, "ci_low": None, "ci_high": None, "n": 2}},
        },
        "baselines": {"forecast__burgers-tiny": {"persistence": {"nrmse": 0.5}}},
        "seconds": {"total": 1.0},
    }
    (folder / C.CELL_FILE).write_text(json.dumps(cell))
    return cell


def test_cells_csv_keeps_only_finished_current_cells_and_fit_reads_it(tmp_path, home):
    # 4 data sizes of one arm, errors on an exact power law E = 0.05 + 2 n^-0.5
    text = SPEC.replace("data_size: [2, 4]", "data_size: [1, 2, 4, 8]") + "arms: [scratch]\n"
    spec = load_spec(write_spec(tmp_path, text))
    plan = plan_sweep(spec)
    out = tmp_path / "out"
    prepare(plan, out, tmp_path / "spec.yaml", home)
    for c in plan.cells:
        n = c.columns["data_size"]
        fake_finish(out, c.index, 0.05 + 2.0 * n**-0.5, tokens=100 * n)
    # a torn cell.json and a stale one (another configuration) do not count
    torn = C.cell_dir(out, plan.cells[3].id) / C.CELL_FILE
    torn.write_text(torn.read_text()[:40])
    assert C.read_cell(torn.parent) is None
    path = C.write_cells_csv(out)
    from sfm.scaling.table import read_table

    table = read_table(out)
    assert table.source == str(path) and len(table) == 3
    assert list(table.columns)[:10] == list(C.LEAD)
    assert np.allclose(table.numeric("nrmse"), [0.05 + 2.0 * n**-0.5 for n in (1, 2, 4)])
    assert np.allclose(table.numeric("rollout.nrmse"), 2 * table.numeric("nrmse"))
    assert np.allclose(table.numeric("persistence_nrmse"), 0.5)
    assert np.isnan(table.numeric("lora_rank")).all()  # full fine-tuning has no rank
    fake_finish(out, 3, 0.05 + 2.0 * 8**-0.5, tokens=800)
    C.write_cells_csv(out)
    from sfm.scaling.results import fit_results

    fit = fit_results(out, x="data_size", metric="nrmse", n_bootstrap=20)
    (curve,) = fit["curves"]
    assert curve["group"]["arm"] == "scratch" and len(curve["rows"]) == 4
    assert (curve["fit"].alpha, curve["fit"].E_inf, curve["fit"].A) == pytest.approx(
        (0.5, 0.05, 2.0), rel=1e-3
    )


def test_stale_folders_are_refused(tmp_path, home):
    spec = load_spec(write_spec(tmp_path))
    out = tmp_path / "out"
    prepare(plan_sweep(spec), out, tmp_path / "spec.yaml", home)
    (C.cell_dir(out, "burgers.scratch.base.d2.s4.seed0") / "run").mkdir()
    prepare(plan_sweep(spec), out, tmp_path / "spec.yaml", home)  # same configuration: fine
    changed = load_spec(write_spec(tmp_path, **{"logging_steps: 1": "logging_steps: 2"}))
    with pytest.raises(ConfigError, match="hold runs of another configuration"):
        prepare(plan_sweep(changed), out, tmp_path / "spec.yaml", home)


def test_examples_seen_matches_hand_counts():
    # 1 process: 18 examples in micro-batches of 4 -> 5 per epoch (the last holds 2); accumulating 2 -> 3 steps
    # per epoch (the last a single micro-batch). 4 steps = one epoch (18) + one step of 2 x 4.
    assert C.examples_seen(18, 4, per_device=4, grad_accum=2, world_size=1) == 18 + 8
    assert C.examples_seen(18, 3, per_device=4, grad_accum=2, world_size=1) == 18
    assert C.examples_seen(76, 10, per_device=8, grad_accum=1, world_size=1) == 76  # 10 batches, last of 4
    assert C.examples_seen(76, 25, per_device=8, grad_accum=1, world_size=1) == 2 * 76 + 5 * 8
    # 2 processes: 18 examples -> ceil(18 / 8) = 3 full micro-batches per rank (even_batches pads) = 24
    assert C.examples_seen(18, 3, per_device=4, grad_accum=1, world_size=2) == 24
    assert C.examples_seen(18, 4, per_device=4, grad_accum=1, world_size=2) == 24 + 8


def test_local_jobs_order_failures_and_threads(tmp_path):
    """The scheduler on stand-in jobs: a failed stage skips its cells, others run, N at once, cores shared."""
    import sys

    from sfm.scaling.local import Job, run_jobs
    from sfm.scaling.run import SweepRun

    def job(jid, needs, code):
        folder = tmp_path / jid
        argv = [sys.executable, "-c", f"import os, time; {code}"]
        return Job(jid, needs, [("step", argv, folder / "log")], folder)

    stamp = (
        'open(os.environ["STAMPS"], "a").write("%f %s ID\\n" % (time.time(), os.environ["OMP_NUM_THREADS"]))'
    )
    jobs = [
        job("s1", [], "raise SystemExit(3)"),
        job("s2", [], "time.sleep(0.5); " + stamp.replace("ID", "s2")),
        job("a", ["s1"], stamp.replace("ID", "a")),
        job("b", [], stamp.replace("ID", "b")),
        job("c", ["s2"], stamp.replace("ID", "c")),
    ]
    os.environ["STAMPS"] = str(tmp_path / "stamps")
    try:
        report = SweepRun(tmp_path, 3)
        run_jobs(jobs, set(), report, 2, tmp_path, progress=False)
    finally:
        del os.environ["STAMPS"]
    assert report.failed == {"s1": tmp_path / "s1" / "log"} and report.skipped == ["a"]
    assert sorted(report.ran) == ["b", "c", "s1", "s2"]
    stamps = {line.split()[2]: line.split() for line in (tmp_path / "stamps").read_text().splitlines()}
    assert set(stamps) == {"s2", "b", "c"}
    assert float(stamps["c"][0]) > float(stamps["s2"][0])  # c waited for its stage
    cores = len(os.sched_getaffinity(0))
    assert {v[1] for v in stamps.values()} == {str(max(1, cores // 2))}
    assert (tmp_path / "s1" / "log").read_text().startswith("$ ")  # the command heads its log


def test_local_dry_run_lists_commands(tmp_path, home, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    assert main(["scaling", "run", str(spec), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("-m sfm.train" in x for x in lines) == 5  # 1 pretraining + 4 cells
    assert sum("scaling cell" in x for x in lines) == 4
    assert any(x.endswith(f"{out}/pretrain/base/advection.yaml --no-progress") for x in lines)
    assert "0/4 cells finished" in lines[-1]
    assert (out / "cells.csv").read_text().startswith("task,arm,model,data_size")
    assert not (home / "data").exists() and not list(out.glob("cells/*/run"))


# ------------------------------------------------------------------------------------------------- Slurm


def slurm_spec(tmp_path: Path) -> Path:
    return write_spec(
        tmp_path,
        SPEC + "launch:\n  accelerate_config: launch/accelerate/cpu_ddp.yaml\n"
        "  slurm: {partition: gpu, gpus_per_node: 1, setup: ['export SETUP_RAN=1']}\n",
    )


def fake_commands(tmp_path: Path, **outputs: str) -> Path:
    """A folder of stand-in executables that append their arguments to ``calls`` (and print ``outputs``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("sbatch", "squeue", "accelerate", "sfm"):
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls\necho "{outputs.get(name, "")}"\n')
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_slurm_dry_run_one_task_per_unfinished_cell(tmp_path, home, capsys):
    import subprocess

    spec = slurm_spec(tmp_path)
    out = tmp_path / "out"
    plan = plan_sweep(load_spec(spec))
    prepare(plan, out, spec, home)
    fake_finish(out, 1, 0.3)  # one cell already finished
    assert main(["scaling", "run", str(spec), "--out", str(out), "--launcher", "slurm", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    script = out / "sweep.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --partition=gpu" in text
    assert "export SETUP_RAN=1" in text and f"export SFM_HOME={home}" in text
    acc = ROOT / "launch" / "accelerate" / "cpu_ddp.yaml"
    assert f'accelerate launch --config_file {acc} -m sfm.train "$c/recipe.yaml" --no-progress' in text
    unfinished = [c for c in plan.cells if c.index != 1]
    for i, c in enumerate(unfinished):
        folder = C.cell_dir(out, c.id)
        task = f"{folder}/eval/forecast__burgers-tiny.yaml"
        assert f"  {i})  # {c.id}\n    cell {c.index} {folder} {task} --batch-size 8 --seed 0 ;;" in text
    assert plan.cells[1].id not in text
    stages = (out / "stages.sbatch").read_text()
    assert "#SBATCH --array=0-0%2" in stages and "advection.yaml --no-progress" in stages
    assert f"sbatch --parsable {out}/stages.sbatch" in printed
    assert f"sbatch --parsable --dependency=afterok:$STAGES_JOB {out}/sweep.sbatch" in printed
    assert not (home / "data").exists()  # a dry run generates nothing
    # Run array task 1 with stand-ins for accelerate and sfm: the commands of cell 2, in order.
    env = {
        **os.environ,
        "PATH": f"{fake_commands(tmp_path)}{os.pathsep}{os.environ['PATH']}",
        "SLURM_ARRAY_TASK_ID": "1",
    }
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
    folder = C.cell_dir(out, unfinished[1].id)
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"accelerate launch --config_file {acc} -m sfm.train {folder}/recipe.yaml --no-progress",
        f"sfm eval --model {folder}/run --tasks {folder}/eval/forecast__burgers-tiny.yaml --out "
        f"{folder}/results --batch-size 8 --seed 0",
        f"sfm scaling cell {out} --index {unfinished[1].index}",
    ]
    timing = json.loads((folder / C.TIMING_FILE).read_text())
    assert isinstance(timing["train_s"], int) and isinstance(timing["eval_s"], int)
    env["SLURM_ARRAY_TASK_ID"] = "3"  # past the last cell
    assert subprocess.run(["bash", str(script)], env=env, capture_output=True).returncode == 2


def test_slurm_without_sbatch_is_one_line(tmp_path, home, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    spec = slurm_spec(tmp_path)
    assert main(["scaling", "run", str(spec), "--out", str(tmp_path / "out"), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sbatch not found on the PATH" in err and len(err.splitlines()) == 1
    assert (tmp_path / "out" / "sweep.sbatch").is_file()


def test_slurm_submits_stages_then_cells(tmp_path, home, monkeypatch):
    bin_dir = fake_commands(tmp_path, sbatch="4242;cluster")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    r = run_sweep(slurm_spec(tmp_path), tmp_path / "out", launcher="slurm", progress=False)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[1:] == [
        f"sbatch --parsable {r.out}/stages.sbatch",
        f"sbatch --parsable --dependency=afterok:4242 {r.out}/sweep.sbatch",
    ]
    assert len(list((home / "data").iterdir())) == 2  # burgers and advection, generated once, here
    assert calls[0].startswith("squeue -h -o %i -u ") and calls[0].endswith(" -n sfm-t,sfm-t-stages")


def test_slurm_refuses_to_resubmit_while_running(tmp_path, home, monkeypatch, capsys):
    bin_dir = fake_commands(tmp_path, squeue="777")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    spec = slurm_spec(tmp_path)
    assert main(["scaling", "run", str(spec), "--out", str(tmp_path / "out"), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "jobs of sweep t are still queued or running (777)" in err and len(err.splitlines()) == 1
    assert "sbatch" not in (tmp_path / "calls").read_text()


# ------------------------------------------------------------------------------------- Hub scratch init


def test_scratch_init_copies_architecture_not_weights(tmp_path, home):
    import torch
    import transformers

    from sfm.models.backbones import BACKBONES, build_tiny_tokenizer

    hub = tmp_path / "hub-model"  # stands in for a Hub id: a saved model with its tokenizer
    tok = build_tiny_tokenizer(["u at t=0.1 predict 1:", "burgers nu=0.01"], vocab_size=300)
    torch.manual_seed(123)  # "pretrained" weights: another stream than the init's seed 0
    BACKBONES.get("tiny-llama").build(len(tok)).save_pretrained(hub)
    tok.save_pretrained(hub)
    text = (
        SPEC[: SPEC.index("pretrain:")] + f"parallel: 2\ngrid:\n  data_size: [2]\n  steps: [4]\n"
        f"  model: [{{name: hubby, name_or_path: {hub}}}]\n"
    )
    text = text.replace("grid: {data_size: [2, 4], steps: [4]}\n", "")
    plan = plan_sweep(load_spec(write_spec(tmp_path, text)))
    pre, scratch = plan.cells
    assert pre.recipe["model"]["name_or_path"] == str(hub) and pre.needs == []
    assert scratch.recipe["model"]["name_or_path"] == "@init/hubby/seed0" and scratch.needs == [
        "init/hubby/seed0"
    ]
    out = tmp_path / "out"
    prepare(plan, out, tmp_path / "spec.yaml", home)
    dest = C.make_scratch_init(out, "init/hubby/seed0")
    a = transformers.AutoModelForCausalLM.from_pretrained(hub)
    b = transformers.AutoModelForCausalLM.from_pretrained(dest)
    assert a.config.to_diff_dict() == {
        **b.config.to_diff_dict(),
        "transformers_version": a.config.transformers_version,
    }
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert {k: v.shape for k, v in pa.items()} == {k: v.shape for k, v in pb.items()}
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(pa[q], pb[q])
    torch.manual_seed(0)  # the init is from_config under the cell's seed: reproducible
    fresh = dict(transformers.AutoModelForCausalLM.from_config(a.config).named_parameters())
    assert all(torch.equal(fresh[k], pb[k]) for k in pb)
    assert len(transformers.AutoTokenizer.from_pretrained(dest)) == len(tok)
    from sfm.scaling.run import stage_done

    assert stage_done(out, plan.stages[0])


# ------------------------------------------------------------------------------------------ shipped specs

SPECS = sorted((ROOT / "recipes" / "scaling").glob("*.yaml"))


def test_there_are_shipped_specs():
    assert {p.name for p in SPECS} >= {"laptop.yaml"}
    assert len(SPECS) >= 2


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_spec_plans(path, tmp_path, home):
    text = path.read_text()
    assert text.lstrip().startswith("#") and "sfm scaling run recipes/scaling/" + path.name in text
    plan = plan_sweep(load_spec(path), where=str(path))
    assert len(plan.cells) >= 4
    spec = load_spec(path)
    assert {c.columns["arm"] for c in plan.cells} <= {"pretrained", "scratch", *spec.arm_overrides}
    if spec.launch.accelerate_config and not path.name.startswith("laptop"):
        r = run_sweep(path, tmp_path / "out", launcher="slurm", dry_run=True, progress=False)
        assert r.script is not None and r.script.is_file()


# --------------------------------------------------------------------------------------------- end to end


def _finished_state(out: Path) -> dict[str, tuple[float, int]]:
    return {
        p.parent.name: (p.stat().st_mtime_ns, (p.parent / "train.log").stat().st_size)
        for p in (out / "cells").glob("*/cell.json")
    }


@pytest.mark.slow
def test_sweep_end_to_end_then_resume_a_killed_cell(tmp_path, home, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    assert main(["scaling", "run", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4/4 cells finished" in printed
    from sfm.scaling.table import read_table

    table = read_table(out)
    assert len(table) == 4 and set(table.columns["arm"]) == {"pretrained", "scratch"}
    assert sorted(table.numeric("data_size")) == [2, 2, 4, 4]
    assert np.isfinite(table.numeric("nrmse")).all() and (table.numeric("nrmse") > 0).all()
    assert (table.numeric("nrmse_ci_low") <= table.numeric("nrmse")).all()
    cells = {c["id"]: c for c in (C.read_cell(p) for p in (out / "cells").iterdir())}
    for cid, cell in cells.items():
        run = C.cell_dir(out, cid) / "run"
        record = json.loads((run / "sfm_run.json").read_text())
        assert record["train"]["steps"] == cell["steps"] == 4
        assert record["data"]["num_train_trajectories"] == cell["data_size"]
        assert cell["params"] == record["parameters"]["total"] == cell["trainable_params"]  # full fine-tuning
        # examples seen agree with the Trainer's own epoch count: epochs = full epochs + micro-batches / epoch
        n = record["data"]["num_train_examples"]
        micro = -(-n // 4)
        epochs = [
            json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x
        ][-1]
        full, rest = divmod(cell["examples_seen"] - 0, n)
        assert epochs == pytest.approx(full + rest / 4 / micro, abs=1e-3)
        assert cell["tokens"] == round(cell["examples_seen"] * record["train"]["tokens"] / n)
        results = json.loads((C.cell_dir(out, cid) / "results" / "results.json").read_text())
        assert cell["metrics"]["forecast__burgers-tiny"]["nrmse"]["value"] == pytest.approx(
            results["tasks"]["forecast__burgers-tiny"]["model"]["metrics"]["nrmse"]["value"]
        )
    pre = [c for c in cells.values() if c["arm"] == "pretrained"]
    base = json.loads((out / "pretrain" / "base" / "advection" / "sfm_run.json").read_text())
    assert base["data"]["family"] == "advection"
    for c in pre:  # the pretrained arm starts from the pretraining's weights
        rec = json.loads((C.cell_dir(out, c["id"]) / "run" / "sfm_run.json").read_text())
        assert rec["base_model"] == str(out / "pretrain" / "base" / "advection")

    # A killed cell: its training died after the step-2 checkpoint (no final weights, no sfm_run.json).
    victim = C.cell_dir(out, "burgers.scratch.base.d4.s4.seed0")
    for name in ("cell.json", "results", "run/sfm_run.json", "run/model.safetensors", "run/checkpoint-4"):
        p = victim / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    before = _finished_state(out)
    assert len(before) == 3
    assert main(["scaling", "run", str(spec), "--out", str(out)]) == 0
    assert "4/4 cells finished" in capsys.readouterr().out
    after = _finished_state(out)
    assert {k: after[k] for k in before} == before  # finished cells were not rerun
    log = (victim / "train.log").read_text()
    assert f"resuming from {victim / 'run' / 'checkpoint-2'}" in log
    assert json.loads((victim / "run" / "sfm_run.json").read_text())["train"]["steps"] == 4
    assert len(read_table(out)) == 4
    # a third run has nothing to do
    assert main(["scaling", "run", str(spec), "--out", str(out)]) == 0
    assert _finished_state(out) == after


def test_cell_entry_point_errors(tmp_path, home, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    prepare(plan_sweep(load_spec(spec)), out, spec, home)
    assert main(["scaling", "cell", str(out), "--index", "9"]) == 2
    assert "--index 9 is out of range; the sweep has cells 0..3" in capsys.readouterr().err
    assert main(["scaling", "cell", str(out), "--index", "0"]) == 2
    assert "training has not finished" in capsys.readouterr().err
    assert main(["scaling", "cell", str(tmp_path), "--index", "0"]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_recipe_files_of_cells_load(tmp_path, home):
    from sfm.training.recipe import load_recipe

    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    plan = plan_sweep(load_spec(spec))
    prepare(plan, out, spec, home)
    for c in plan.cells:
        r = load_recipe(C.cell_dir(out, c.id) / "recipe.yaml")
        assert r.training.output_dir == str(C.cell_dir(out, c.id) / "run")
        assert config.to_dict(r)["data"] == c.recipe["data"]
    r = load_recipe(out / "pretrain" / "base" / "advection.yaml")
    assert r.training.output_dir == str(out / "pretrain" / "base" / "advection")
    pre = load_recipe(C.cell_dir(out, plan.cells[0].id) / "recipe.yaml")
    assert pre.model.name_or_path == str(out / "pretrain" / "base" / "advection")
