"""Every shipped tiny recipe x every CPU launch (one process, cpu_ddp, cpu_zero2, cpu_zero3) either trains
and saves a checked model, or is refused before any work with one line naming the cell and what to use.

* fast: the refusal rule is a pure function, checked for every (recipe x launch file) cell against a reading
  of the raw YAML; every launch command a recipe header prints is a supported cell; a refused cell stops
  ``sfm.train`` before any data is built; PEFT's trainable token rows initialize under ZeRO-3 with no CUDA
  (the upstream call that crashed the quickstart under cpu_zero3.yaml);
* slow (``distributed``): one real 2-process launch per field-model kind and launch that the token matrix of
  test_distributed.py (all three CPU launch files, trainable token rows) does not cover, each saving a model
  that loads back, equals the trained weights of its last checkpoint and differs from the one before.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sfm.training.args import Launch, launch_from_env, launch_from_file, recipe_launch_problem
from sfm.training.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "tiny").rglob("*.yaml")) + sorted(ROOT.glob("recipes/quickstart*.yaml"))
CPU_LAUNCH = {n: ROOT / "launch" / "accelerate" / f"{n}.yaml" for n in ("cpu_ddp", "cpu_zero2", "cpu_zero3")}
LAUNCHES = {"single": Launch("one process"), **{n: launch_from_file(p) for n, p in CPU_LAUNCH.items()}}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _complex_from_yaml(path: Path) -> bool:
    """Read off the raw YAML: does this model hold complex (spectral) weights? Operators (FNO, UNO) all do; a
    continuous model does unless its encoder type is linear or conv (spectral is the default)."""
    model = yaml.safe_load(path.read_text())["model"]
    if str(model["name_or_path"]).startswith("operator:"):
        return True
    if model.get("field_io") != "continuous":
        return False
    return (model.get("encoder") or {}).get("type", "spectral") == "spectral"


def test_cpu_launch_files_read_as_what_they_start():
    assert LAUNCHES["cpu_ddp"] == Launch("cpu_ddp.yaml", "ddp", None)
    assert LAUNCHES["cpu_zero2"] == Launch("cpu_zero2.yaml", "deepspeed", 2)
    assert LAUNCHES["cpu_zero3"] == Launch("cpu_zero3.yaml", "deepspeed", 3)
    # What `accelerate launch` puts in each process's environment:
    ds = {
        "ACCELERATE_USE_DEEPSPEED": "true",
        "ACCELERATE_DEEPSPEED_CONFIG_FILE": "launch/deepspeed/zero3.json",
    }
    assert launch_from_env(ds).zero_stage == 3
    assert launch_from_env({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}) == (
        Launch("DeepSpeed ZeRO-2", "deepspeed", 2)
    )
    assert launch_from_env({"WORLD_SIZE": "2"}).distributed == "ddp"
    assert launch_from_env({}) == Launch("one process")


@pytest.mark.parametrize("path", RECIPES, ids=_rel)
def test_every_cell_is_supported_or_refused_in_one_line(path):
    recipe = load_recipe(path)
    for name, launch in LAUNCHES.items():
        problem = recipe_launch_problem(recipe, launch, _rel(path))
        refused = launch.distributed == "deepspeed" and _complex_from_yaml(path)
        if not refused:
            assert problem is None, (name, problem)
            continue
        assert problem is not None and "\n" not in problem, name
        assert problem.startswith(f"{_rel(path)} under {launch.name}: ")
        assert f"ZeRO-{launch.zero_stage}" in problem and "cpu_ddp.yaml" in problem  # what to use instead


def test_matrix_anchors():
    """The cells the issue and the README name, spelled out."""
    cells = {
        ("recipes/quickstart.yaml", "cpu_zero3"): True,  # trainable token rows under ZeRO-3 on CPU
        ("recipes/tiny/continuous/burgers-llama-zero3.yaml", "cpu_zero3"): True,  # conv encoder
        ("recipes/tiny/continuous/burgers-gpt2.yaml", "cpu_zero2"): True,
        ("recipes/quickstart-continuous.yaml", "cpu_ddp"): True,
        ("recipes/quickstart-continuous.yaml", "cpu_zero2"): False,  # spectral encoder
        ("recipes/quickstart-fno.yaml", "single"): True,
        ("recipes/quickstart-fno.yaml", "cpu_zero3"): False,
    }
    for (rel, launch), supported in cells.items():
        problem = recipe_launch_problem(load_recipe(ROOT / rel), LAUNCHES[launch], rel)
        assert (problem is None) == supported, (rel, launch, problem)


def test_every_launch_command_in_a_recipe_header_is_supported():
    for path in RECIPES:
        header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
        for launch in re.findall(r"--config_file (launch/accelerate/cpu_\w+\.yaml) -m sfm\.train", header):
            problem = recipe_launch_problem(load_recipe(path), launch_from_file(ROOT / launch), _rel(path))
            assert problem is None, problem


def test_a_refused_cell_stops_before_any_data(tmp_path, monkeypatch, capsys):
    from sfm.train import main

    monkeypatch.setenv("SFM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", "launch/deepspeed/zero2.json")
    out = tmp_path / "run"
    assert main(["recipes/quickstart-fno.yaml", "--output_dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "sfm.train: error: recipes/quickstart-fno.yaml under DeepSpeed ZeRO-2 (launch/deepspeed/zero2.json): "
        "an operator model with complex spectral weights cannot train under DeepSpeed ZeRO-2"
    )
    assert not (tmp_path / "home").exists() and not out.exists()  # no data built, no run folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="the upstream failure needs a machine without CUDA")
def test_trainable_token_rows_initialize_under_zero3_without_cuda(monkeypatch):
    """peft 0.21.2's ZeRO-3 branch of the trainable-token layer asks for a CUDA device (upstream: AssertionError
    "Torch not compiled with CUDA enabled"); sfm's apply_peft gathers the rows on the weight's device."""
    import peft.tuners.trainable_tokens.layer as tt
    from peft import LoraConfig, get_peft_model

    from sfm.registry import BACKBONES
    from sfm.training.peft_setup import apply_peft

    monkeypatch.setattr(tt, "check_deepspeed_zero3_enabled", lambda: True)  # the ZeRO-3 branch, one process
    rows = [90, 91, 95]
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules=["q_proj"], trainable_token_indices={"embed_tokens": rows})
    with pytest.raises((AssertionError, RuntimeError), match="CUDA"):
        get_peft_model(BACKBONES.get("tiny-llama").build(96), config)
    torch.manual_seed(0)
    model = BACKBONES.get("tiny-llama").build(96)
    expected = {
        "embed_tokens": model.get_input_embeddings().weight[rows].detach().clone(),
        "lm_head": model.get_output_embeddings().weight[rows].detach().clone(),
    }
    peft_model = apply_peft(
        model,
        method="lora",
        r=4,
        alpha=8,
        dropout=0.0,
        target_modules=None,
        new_tokens="rows",
        new_token_ids=rows,
        trainable_modules=[],
    )
    deltas = {n: p for n, p in peft_model.named_parameters() if "trainable_tokens_delta" in n}
    assert len(deltas) == 2
    for name, delta in deltas.items():
        torch.testing.assert_close(
            delta.detach(), expected["lm_head" if "lm_head" in name else "embed_tokens"]
        )
    assert tt.TrainableTokensLayer._collect_token_weights.__name__ == "_collect_token_weights"  # undone


# ---- real launches ------------------------------------------------------------------------------------
ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
FAST = ["--max_steps", "2", "--save_steps", "1", "--save_total_limit", "2", "--no-progress"]
# (kind, launch file) -> the cheapest tiny recipe of that kind, and overrides keeping it to seconds.
# The single-process field cells train in test_tiny_recipes.py (every field recipe, two steps).
CELLS = {
    ("continuous", "cpu_zero3"): ("recipes/tiny/continuous/burgers-llama-zero3.yaml", []),  # LoRA, conv
    ("continuous", "cpu_zero2"): ("recipes/tiny/continuous/burgers-gpt2.yaml", []),  # full, conv
    ("continuous", "cpu_ddp"): ("recipes/tiny/continuous/burgers-llama-lora.yaml", []),  # LoRA, spectral
    ("operator", "cpu_ddp"): ("recipes/tiny/operator/burgers-fno.yaml", ["--data.num_samples", "12"]),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.trains
@pytest.mark.parametrize("cell", sorted(CELLS), ids=lambda c: f"{c[0]}-{c[1]}")
def test_field_model_trains_and_saves_under_launch(cell, home):
    from sfm.models.run import RunRecord, load_model

    kind, launch = cell
    recipe, extra = CELLS[cell]
    out = home / f"{kind}-{launch}"
    cmd = [ACCELERATE, "launch", "--config_file", str(CPU_LAUNCH[launch]), "-m", "sfm.train", recipe]
    env = {**os.environ, "SFM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, *extra, *FAST, "--output_dir", str(out), "--evaluation.tasks", "[]"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = RunRecord.read(out)
    assert record.kind == kind and record.train["steps"] == 2
    assert record.distributed["world_size"] == 2
    assert record.distributed["zero_stage"] == LAUNCHES[launch].zero_stage
    saved = load_model(out).model.state_dict()  # rebuilt from the run folder alone
    last, before = (load_file(out / f"checkpoint-{n}" / "model.safetensors") for n in (2, 1))
    assert set(last) <= set(saved) and all(v.numel() > 0 for v in saved.values())
    for key in last:  # the final save holds the trained weights, gathered whole under ZeRO-3
        torch.testing.assert_close(saved[key].float(), last[key].float(), rtol=0, atol=0)
    moved = [k for k in last if last[k].is_floating_point() and not torch.equal(last[k], before[k])]
    lora = kind == "continuous" and load_recipe(ROOT / recipe).peft.method == "lora"
    assert moved and any("lora_B" in k for k in moved) == lora  # LoRA's B starts at zero: it moved
    assert not (out / ".sfm-save.tmp").exists()
    assert json.loads((out / "checkpoint-2" / "sfm_checkpoint.json").read_text())["world_size"] == 2
