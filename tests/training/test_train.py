"""sfm.train end to end on a tiny backbone: it learns, saves a loadable adapter, resumes exactly after SIGKILL
(also when the newest checkpoint is torn), stops on a non-finite loss, and refuses a global batch that does
not divide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sfm.errors import ConfigError
from sfm.models.run import RunRecord
from sfm.training.recipe import load_recipe
from sfm.training.setup import resolve_batch

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"


def run_train(out: Path, home: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "sfm.train",
        str(RECIPE),
        "--output_dir",
        str(out),
        "--max_steps",
        "8",
        "--save_steps",
        "4",
        "--no-progress",
        *extra,
    ]
    full_env = {**os.environ, "SFM_HOME": str(home), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    out = home / "run"
    proc = run_train(out, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home, out


@pytest.mark.trains
def test_run_folder_layout(trained):
    _, out = trained
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "sfm_encoding.json",
        "sfm_run.json",
        "metrics.jsonl",
        "base/config.json",
        "base/model.safetensors",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        (out / "base").resolve()
    )
    ckpt = out / "checkpoint-8" / "sfm_checkpoint.json"
    assert json.loads(ckpt.read_text())["world_size"] == 1


@pytest.mark.trains
def test_loss_falls_and_record_is_complete(trained):
    _, out = trained
    record = RunRecord.read(out)
    losses = record.train["loss_history"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert record.kind == "token" and record.base_model == "tiny-llama" and record.tiny_base
    assert record.distributed["world_size"] == 1
    assert record.train["steps"] == 8
    assert record.encoding["encoding"]["name"] == "bins"
    assert record.parameters["trainable"] < record.parameters["total"]
    # 8 steps x global batch 8 = the 64 training examples once; no time limit was set.
    assert record.data["num_train_examples"] == 64
    assert record.budget["steps"] == 8 and record.budget["examples_seen"] == 64
    assert record.budget["stopped_by"] == "max_steps" and record.budget["max_time_s"] is None
    assert record.budget["train_seconds"] > 0
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in logged if "loss" in r] == pytest.approx(losses)


@pytest.mark.trains
def test_adapter_loads_with_plain_peft_and_sfm(trained):
    from peft import AutoPeftModelForCausalLM

    from sfm.models.run import load_model

    _, out = trained
    plain = AutoPeftModelForCausalLM.from_pretrained(out)  # no sfm code: base path from adapter_config.json
    loaded = load_model(out)
    ids = torch.tensor([[1, 5, 9, 11]])
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=ids).logits, loaded.model(input_ids=ids).logits)


@pytest.mark.trains
def test_resume_after_sigkill_matches_uninterrupted(trained):
    home, out = trained
    resumed = home / "killed"
    first = run_train(resumed, home, env={"SFM_FAULT_KILL_AT_STEP": "6"})
    assert first.returncode == -9  # SIGKILL, after checkpoint-4 and before the end
    assert (resumed / "checkpoint-4").is_dir() and not (resumed / "adapter_model.safetensors").exists()
    second = run_train(resumed, home)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout
    a = load_file(out / "adapter_model.safetensors")
    b = load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.trains
def test_torn_newest_checkpoint_resumes_from_the_previous_one(trained):
    home, out = trained
    torn = home / "torn"
    first = run_train(torn, home, "--save_steps", "2", env={"SFM_FAULT_KILL_AT_STEP": "7"})
    assert first.returncode == -9
    assert sorted(p.name for p in torn.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]  # limit 2
    (torn / "checkpoint-6" / "trainer_state.json").unlink()
    second = run_train(torn, home, "--save_steps", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {torn / 'checkpoint-4'}" in second.stdout
    assert "checkpoint-6 is incomplete (no trainer state): skipped" in second.stderr
    a = load_file(out / "adapter_model.safetensors")
    b = load_file(torn / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_global_batch_must_divide():
    assert resolve_batch(4, 1, 2, 16) == 2
    assert resolve_batch(4, 2, 1, None) == 2
    with pytest.raises(
        ConfigError, match=r"global_batch_size=10 is not a multiple of .* \(4\) x processes \(2\) = 8"
    ):
        resolve_batch(4, 1, 2, 10)
    with pytest.raises(ConfigError, match="needs gradient_accumulation_steps=4"):
        resolve_batch(2, 3, 1, 8)


@pytest.mark.trains
def test_recipe_batch_error_is_one_line(tmp_path):
    proc = run_train(tmp_path / "r", tmp_path, "--global_batch_size", "6")
    assert proc.returncode == 2
    assert "global_batch_size=6 is not a multiple" in proc.stderr
    assert not (tmp_path / "r" / "adapter_model.safetensors").exists()


@pytest.mark.trains
def test_non_finite_loss_stops_with_step_and_batch(tmp_path):
    from transformers import TrainingArguments

    from sfm.registry import BACKBONES
    from sfm.training.collators import CausalCollator
    from sfm.training.trainer import NonFiniteLossError, SfmTrainer

    model = BACKBONES.get("tiny-llama").build(40)
    with torch.no_grad():
        model.get_input_embeddings().weight[7] = float("nan")  # token 7 poisons any batch that holds it
    rows = [{"prompt": [3, 4, 7], "completion": [5, 6], "trajectory": 2, "start": 1}] * 4
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        remove_unused_columns=False,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = SfmTrainer(model=model, args=args, train_dataset=rows, data_collator=CausalCollator(pad_id=0))
    with pytest.raises(
        NonFiniteLossError, match=r"at step 1, batch examples \(trajectory, start\) \[\[2, 1\], \[2, 1\]\]"
    ):
        trainer.train()


def test_load_recipe_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(RECIPE)
    assert recipe.training.global_batch_size == 8


@pytest.mark.trains
@pytest.mark.slow
def test_recipe_evaluation_runs_after_training(tmp_path):
    from sfm.harness.results import EvalResults

    out = tmp_path / "run"
    proc = run_train(
        out,
        tmp_path,
        "--max_steps",
        "2",
        "--evaluation.tasks",
        "[forecast/burgers-tiny]",
        "--evaluation.limit",
        "3",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = EvalResults.load(out / "eval" / "results.json")
    task = results.tasks["forecast/burgers-tiny"]
    assert task.n_examples == 3 and task.model is not None and "persistence" in task.baselines
