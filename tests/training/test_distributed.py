"""The distributed paths for real, on CPU: accelerate launch with 2 processes under DDP (gloo), DeepSpeed
ZeRO-2 and ZeRO-3 each reach the same losses as one process on the same global batch, report the distributed
type and world size actually in effect (the wrong modes do not fail, they silently train copies), and save an
adapter that loads and matches. The recipe trains the added tokens' rows (``peft.new_tokens rows``, as the
quickstart does): under ZeRO-3 that is the path whose upstream CUDA call sfm works around
(:func:`sfm.training.peft_setup.cpu_safe_trainable_tokens`). These are the token cells of
test_launch_matrix.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sfm.models.run import RunRecord

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"
ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.trains]

CASES = {
    "cpu_ddp": ("MULTI_CPU", None),
    "cpu_zero2": ("DEEPSPEED", 2),
    "cpu_zero3": ("DEEPSPEED", 3),
}


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "SFM_HOME": str(home), "OMP_NUM_THREADS": "1"}


def _train(cmd: list[str], home: Path, out: Path) -> dict:
    args = [str(RECIPE), "--output_dir", str(out), "--peft.new_tokens", "rows", "--no-progress"]
    proc = subprocess.run(cmd + args, env=_env(home), capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return RunRecord.read(out).to_dict()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="module")
def single(home):
    out = home / "single"
    return _train([sys.executable, "-m", "sfm.train"], home, out), out


@pytest.mark.parametrize("config", sorted(CASES))
def test_two_processes_match_one(config, home, single):
    ref, ref_out = single
    out = home / config
    cmd = [
        ACCELERATE,
        "launch",
        "--config_file",
        str(ROOT / "launch" / "accelerate" / f"{config}.yaml"),
        "-m",
        "sfm.train",
    ]
    record = _train(cmd, home, out)
    dist_type, stage = CASES[config]
    facts = record["distributed"]
    assert facts["world_size"] == 2
    assert facts["distributed_type"] == dist_type
    assert facts["zero_stage"] == stage
    assert ref["distributed"]["world_size"] == 1
    # Same global batch (8 = 4 per device x 2 processes, or 4 x 2 accumulation steps): same optimization.
    assert record["train"]["steps"] == ref["train"]["steps"]
    assert record["budget"]["examples_seen"] == ref["budget"]["examples_seen"] == 6 * 8
    torch.testing.assert_close(
        torch.tensor(record["train"]["loss_history"]),
        torch.tensor(ref["train"]["loss_history"]),
        rtol=2e-3,
        atol=2e-3,
    )
    a, b = load_file(out / "adapter_model.safetensors"), load_file(ref_out / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].numel() > 0, key  # the ZeRO-3 empty-adapter failure
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
    # The trained token rows moved away from the base's rows they started from.
    base = load_file(out / "base" / "model.safetensors")
    ids = json.loads((out / "adapter_config.json").read_text())["trainable_token_indices"]
    deltas = {k: v for k, v in a.items() if "trainable_tokens_delta" in k}
    assert len(deltas) == len(ids) >= 1
    for key, rows in deltas.items():
        start = base["lm_head.weight" if "lm_head" in key else "model.embed_tokens.weight"][
            ids[key.split(".")[-3]]
        ]
        assert rows.shape == start.shape and not torch.equal(rows, start), key
    ckpt = json.loads((out / "checkpoint-6" / "sfm_checkpoint.json").read_text())
    assert ckpt["world_size"] == 2 and ckpt["zero_stage"] == stage


def test_zero3_checkpoint_refuses_other_world_size(home):
    from sfm.errors import SfmError
    from sfm.training.setup import check_resume

    ckpt = home / "cpu_zero3" / "checkpoint-6"
    if not ckpt.is_dir():
        pytest.skip("needs the ZeRO-3 run above")
    with pytest.raises(SfmError, match=r"ZeRO-3 on 2 processes, and this launch has 1.*zero_to_fp32\.py"):
        check_resume(ckpt, {"world_size": 1})
    check_resume(ckpt, {"world_size": 2})
