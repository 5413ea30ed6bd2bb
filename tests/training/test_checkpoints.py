"""Resuming picks the newest *complete* checkpoint: one missing a file the Trainer writes, or holding a
tensor file cut short, is skipped, loudly. And saves are crash-safe for real: a run killed (SIGKILL) or
stopped by a full disk (ENOSPC) while writing a checkpoint or its final save leaves the previous checkpoint
loadable, no run record, and the next launch resumes and ends with the weights of an uninterrupted run.

(A kill between steps, and a hand-torn checkpoint, are in test_train.py, beside the run they compare with.)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sfm.errors import DataError, SfmError
from sfm.models.run import RunRecord
from sfm.training.run_folder import STAGE_DIR, resume_checkpoint
from sfm.training.setup import checkpoint_missing, is_torn, last_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"

# What the Trainer writes for a single-process PEFT run (transformers' _save_checkpoint).
COMPLETE = [
    "adapter_model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "trainer_state.json",
    "training_args.bin",
]


def _write(path: Path) -> None:
    """A small but well-formed file of the kind its name says."""
    if path.suffix == ".safetensors":
        save_file({"w": torch.ones(4)}, str(path))
    elif path.suffix in (".pt", ".pth", ".bin"):
        torch.save({"w": torch.ones(4)}, path)
    else:
        path.write_text("{}" if path.suffix == ".json" else "x")


def _checkpoint(run: Path, step: int, files=COMPLETE, **meta) -> Path:
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in files:
        _write(folder / name)
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
        ("training_args.bin", "training arguments"),
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
    _write(folder / "rng_state_1.pth")
    assert checkpoint_missing(folder) == []


def test_deepspeed_checkpoint_needs_the_tagged_state_folder(tmp_path):
    # Under ZeRO-3 without gathering, weights and optimizer live only in DeepSpeed's global_stepN/.
    folder = _checkpoint(
        tmp_path, 4, ["latest", "trainer_state.json", "rng_state_0.pth", "training_args.bin"]
    )
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


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "optimizer.pt", "rng_state.pth"])
def test_a_tensor_file_cut_short_is_torn(tmp_path, caplog, name):
    previous = _checkpoint(tmp_path, 4)
    folder = _checkpoint(tmp_path, 8)
    data = (folder / name).read_bytes()
    assert not is_torn(folder / name)
    (folder / name).write_bytes(data[: len(data) - 5])  # the write a kill or a full disk interrupted
    assert is_torn(folder / name)
    assert checkpoint_missing(folder) == [f"torn {name}"]
    with caplog.at_level(logging.WARNING, logger="sfm.training.setup"):
        assert last_checkpoint(tmp_path) == previous
    assert f"(no torn {name}): skipped" in caplog.text


def test_torn_deepspeed_shard_is_found_in_the_tagged_folder(tmp_path):
    folder = _checkpoint(
        tmp_path, 4, ["latest", "trainer_state.json", "rng_state_0.pth", "training_args.bin"]
    )
    (folder / "latest").write_text("global_step4")
    (folder / "global_step4").mkdir()
    shard = folder / "global_step4" / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    _write(shard)
    assert checkpoint_missing(folder) == []
    shard.write_bytes(shard.read_bytes()[:40])
    assert checkpoint_missing(folder) == ["torn global_step4/zero_pp_rank_0_mp_rank_00_optim_states.pt"]


# ---- faults in a real run -------------------------------------------------------------------------------
# sfm.train run with a fault planted in its writers: FAULT=kind:match, where kind is enospc (raise
# OSError(ENOSPC) on the write whose path contains match), kill (write a torn file there, then SIGKILL) or
# kill-publish (SIGKILL after the first rename of the final save into the run folder).
WRAPPER = r"""
import errno, os, signal, sys
import torch, safetensors.torch as st

kind, match = os.environ["FAULT"].split(":", 1)

def fault(path):
    if kind in ("enospc", "kill") and match in str(path):
        if kind == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 torn")
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(save, name):
    def faulty(obj, f, *args, **kwargs):
        fault(f)
        return save(obj, f, *args, **kwargs)
    return faulty

torch.save = wrap(torch.save, "torch.save")
st.save_file = wrap(st.save_file, "save_file")
replace, moved = os.replace, []

def faulty_replace(src, dst, *args, **kwargs):
    replace(src, dst, *args, **kwargs)
    if kind == "kill-publish" and match in str(src) and match not in str(dst):
        moved.append(dst)
        if len(moved) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

os.replace = faulty_replace
from sfm.train import main
sys.exit(main(sys.argv[1:]))
"""


def _train(home: Path, out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sfm.train"]
    env = {**os.environ, "SFM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    if fault:
        (home / "faulty.py").write_text(WRAPPER)
        cmd, env["FAULT"] = [sys.executable, str(home / "faulty.py")], fault
    args = [str(RECIPE), "--output_dir", str(out), "--max_steps", "4", "--save_steps", "2", "--no-progress"]
    return subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.trains
def test_faults_during_saves_leave_a_resumable_run(tmp_path):
    """ENOSPC and SIGKILL in a checkpoint, then in the final save: each leaves checkpoint-2 (or -4, once
    written) intact and no run record; the fifth launch ends with the uninterrupted run's exact weights."""
    ref = tmp_path / "reference"
    assert _train(tmp_path, ref).returncode == 0
    out = tmp_path / "faulty"

    full = _train(tmp_path, out, "enospc:checkpoint-4/optimizer.pt")
    assert full.returncode == 2, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("sfm.train: error: no space left on the device writing ")
    assert "checkpoint-4/optimizer.pt" in last and "resumes from the last complete checkpoint" in last
    assert last_checkpoint(out) == out / "checkpoint-2"

    killed = _train(tmp_path, out, "kill:checkpoint-4/optimizer.pt")
    assert killed.returncode == -9
    assert f"resuming from {out / 'checkpoint-2'}" in killed.stdout
    assert "torn optimizer.pt" in " ".join(checkpoint_missing(out / "checkpoint-4"))
    assert last_checkpoint(out) == out / "checkpoint-2"

    final = _train(tmp_path, out, f"enospc:{STAGE_DIR}/adapter_model.safetensors")
    assert final.returncode == 2, final.stderr[-3000:]
    assert "no space left on the device" in final.stderr.strip().splitlines()[-1]
    assert last_checkpoint(out) == out / "checkpoint-4"  # written complete before the final save
    assert not (out / STAGE_DIR).exists() and not (out / "adapter_model.safetensors").exists()

    publish = _train(tmp_path, out, f"kill-publish:{STAGE_DIR}")
    assert publish.returncode == -9
    assert f"resuming from {out / 'checkpoint-4'}" in publish.stdout
    with pytest.raises(DataError, match="no readable run record"):
        RunRecord.read(out)  # half moved: the folder does not pass for a finished run

    done = _train(tmp_path, out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert RunRecord.read(out).train["steps"] == 4 and not (out / STAGE_DIR).exists()
    a, b = load_file(ref / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
