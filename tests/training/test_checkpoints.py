"""Resuming picks the newest *complete* checkpoint: one missing a file the Trainer writes is skipped, loudly.

The end-to-end check (a real run with a torn newest checkpoint resumes from the previous one and ends with
the weights of an uninterrupted run) is in test_train.py, beside the run it compares with.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sfm.errors import SfmError
from sfm.training.run_folder import resume_checkpoint
from sfm.training.setup import checkpoint_missing, last_checkpoint

# What the Trainer writes for a single-process PEFT run (transformers' _save_checkpoint).
COMPLETE = [
    "adapter_model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "trainer_state.json",
]


def _checkpoint(run: Path, step: int, files=COMPLETE, **meta) -> Path:
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}" if name.endswith(".json") else "x")
    if meta:
        (folder / "sfm_checkpoint.json").write_text(json.dumps(meta))
    return folder


def test_newest_complete_checkpoint_wins(tmp_path):
    _checkpoint(tmp_path, 4)
    newest = _checkpoint(tmp_path, 12)
    _checkpoint(tmp_path, 8)
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint: ignored
    assert last_checkpoint(tmp_path) == newest


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("trainer_state.json", "trainer state"),
        ("adapter_model.safetensors", "weights"),
        ("optimizer.pt", "optimizer state"),
        ("scheduler.pt", "scheduler state"),
        ("rng_state.pth", "rng state"),
    ],
)
def test_a_checkpoint_missing_a_trainer_file_is_skipped_with_a_warning(tmp_path, caplog, drop, missing):
    previous = _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 8, [f for f in COMPLETE if f != drop])
    with caplog.at_level(logging.WARNING, logger="sfm.training.setup"):
        assert last_checkpoint(tmp_path) == previous
    assert f"checkpoint-8 is incomplete (no {missing}): skipped" in caplog.text


def test_a_torn_trainer_state_is_incomplete(tmp_path):
    folder = _checkpoint(tmp_path, 4)
    (folder / "trainer_state.json").write_text('{"global_step": ')
    assert checkpoint_missing(folder) == ["readable trainer_state.json"]
    assert last_checkpoint(tmp_path) is None  # nothing complete: start fresh


def test_every_rank_must_have_saved_its_rng_state(tmp_path):
    files = [f for f in COMPLETE if f != "rng_state.pth"] + ["rng_state_0.pth"]
    folder = _checkpoint(tmp_path, 4, files, world_size=2, zero_stage=None)
    assert checkpoint_missing(folder) == ["rng_state_1.pth"]
    (folder / "rng_state_1.pth").write_text("x")
    assert checkpoint_missing(folder) == []


def test_deepspeed_checkpoint_needs_the_tagged_state_folder(tmp_path):
    # Under ZeRO-3 without gathering, weights and optimizer live only in DeepSpeed's global_stepN/.
    folder = _checkpoint(tmp_path, 4, ["latest", "trainer_state.json", "rng_state_0.pth"])
    (folder / "latest").write_text("global_step4")
    assert checkpoint_missing(folder) == ["DeepSpeed state global_step4/"]
    (folder / "global_step4").mkdir()
    assert checkpoint_missing(folder) == []


def test_resume_modes(tmp_path):
    ckpt = _checkpoint(tmp_path, 2)
    assert resume_checkpoint(tmp_path, "auto") == ckpt
    assert resume_checkpoint(tmp_path, "never") is None
    assert resume_checkpoint(tmp_path, str(ckpt)) == ckpt
    with pytest.raises(SfmError, match="--resume nowhere: no such checkpoint folder"):
        resume_checkpoint(tmp_path, "nowhere")
