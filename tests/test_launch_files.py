"""Every launch file is one accelerate (and DeepSpeed/FSDP) accept, names a real recipe and its own path in the
command it starts with, and keeps the rules of launch/README.md: precision and batch sizes from the recipe,
16-bit gathering under ZeRO-3, use_cpu only on the CPU twins. The Slurm script is run with stand-ins for
srun/scontrol/accelerate to check the command each node would run."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
ACCELERATE_FILES = sorted((LAUNCH / "accelerate").glob("*.yaml"))
DEEPSPEED_FILES = sorted((LAUNCH / "deepspeed").glob("*.json"))
SBATCH = LAUNCH / "slurm" / "multinode.sbatch"
GPU_FILES = {
    "single_gpu",
    "multi_gpu",
    "deepspeed_zero2",
    "deepspeed_zero3",
    "deepspeed_zero3_offload",
    "fsdp2",
    "multi_node",
}
CPU_FILES = {"cpu_ddp", "cpu_zero2", "cpu_zero3"}

# What accelerate must make of each file: (distributed type, processes, machines, ZeRO stage or FSDP version).
EXPECTED = {
    "single_gpu": ("NO", 1, 1, None),
    "multi_gpu": ("MULTI_GPU", 8, 1, None),
    "deepspeed_zero2": ("DEEPSPEED", 8, 1, 2),
    "deepspeed_zero3": ("DEEPSPEED", 8, 1, 3),
    "deepspeed_zero3_offload": ("DEEPSPEED", 8, 1, 3),
    "fsdp2": ("FSDP", 8, 1, 2),
    "multi_node": ("DEEPSPEED", 16, 2, 3),
    "cpu_ddp": ("MULTI_GPU", 2, 1, None),
    "cpu_zero2": ("DEEPSPEED", 2, 1, 2),
    "cpu_zero3": ("DEEPSPEED", 2, 1, 3),
}


def _ids(paths):
    return [p.name for p in paths]


def _header(path: Path) -> str:
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    out = []
    for line in lines:
        if not line.startswith("#") or line.startswith("#SBATCH"):
            break
        out.append(line)
    return "\n".join(out)


def test_the_promised_files_exist():
    names = {p.stem for p in ACCELERATE_FILES}
    assert names >= GPU_FILES | CPU_FILES
    assert set(EXPECTED) == names, "add new launch files to EXPECTED"
    assert SBATCH.is_file()


@pytest.mark.parametrize("path", [*ACCELERATE_FILES, SBATCH], ids=_ids([*ACCELERATE_FILES, SBATCH]))
def test_header_gives_a_command_with_this_file_and_an_existing_recipe(path):
    header = _header(path)
    assert header, f"{path.name} must start with a comment giving its command"
    rel = path.relative_to(ROOT).as_posix()
    assert rel in header, f"the header of {path.name} must name {rel}"
    recipes = re.findall(r"recipes/[\w./-]+\.yaml", header)
    assert recipes, f"the header of {path.name} names no recipe"
    for recipe in recipes:
        assert (ROOT / recipe).is_file(), f"{path.name} names {recipe}, which does not exist"
    if path.suffix == ".yaml":
        assert f"--config_file {rel}" in header


@pytest.mark.parametrize("path", ACCELERATE_FILES, ids=_ids(ACCELERATE_FILES))
def test_accelerate_loads_it(path):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    cfg = load_config_from_file(str(path))  # accelerate's own loader: unknown keys are an error there
    assert isinstance(cfg, ClusterConfig)
    raw = yaml.safe_load(path.read_text())
    dist, procs, machines, _ = EXPECTED[path.stem]
    assert str(cfg.distributed_type).split(".")[-1] == dist
    assert cfg.num_processes == procs and cfg.num_machines == machines
    if path.stem in CPU_FILES:
        assert raw.get("use_cpu") is True and cfg.use_cpu
    else:
        assert "use_cpu" not in raw and not cfg.use_cpu
    if dist == "DEEPSPEED":
        # accelerate refuses mixed_precision beside a deepspeed_config_file; the JSON's "auto" follows the recipe
        assert "mixed_precision" not in raw
        ds_file = ROOT / raw["deepspeed_config"]["deepspeed_config_file"]
        assert ds_file.is_file(), ds_file
        assert set(raw["deepspeed_config"]) <= {
            "deepspeed_config_file",
            "zero3_init_flag",
            "deepspeed_multinode_launcher",
        }
    else:
        assert raw["mixed_precision"] == "no"  # the Trainer sets bf16 from the recipe


def _launch_env(path: Path) -> tuple:
    """The arguments and environment ``accelerate launch --config_file PATH -m sfm.train R`` would use."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import launch as acc_launch

    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "sfm.train", "r.yaml"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    with mock.patch.object(acc_launch, "is_port_in_use", return_value=False):
        if args.use_deepspeed:
            fields = [*defaults.deepspeed_config, *(["mixed_precision"] if mp_from_config else [])]
            args.deepspeed_fields_from_accelerate_config = ",".join(fields)
            _, env = acc_launch.prepare_deepspeed_cmd_env(args)
        elif args.use_fsdp or args.multi_gpu:
            env = acc_launch.prepare_multi_gpu_env(args)
        else:
            _, env = acc_launch.prepare_simple_launcher_cmd_env(args)
    return args, env


@pytest.mark.parametrize("path", ACCELERATE_FILES, ids=_ids(ACCELERATE_FILES))
def test_launch_builds_the_plugin_it_promises(path, monkeypatch):
    """Run accelerate's launch-time validation and build the DeepSpeed/FSDP plugin from the environment it sets,
    as the training processes will."""
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    monkeypatch.chdir(ROOT)
    args, env = _launch_env(path)
    dist, procs, machines, level = EXPECTED[path.stem]
    if machines > 1:
        assert int(args.nproc_per_node) == procs // machines and int(args.nnodes) == machines
    with mock.patch.dict(os.environ, env, clear=True):
        if dist == "DEEPSPEED":
            plugin = DeepSpeedPlugin()
            assert plugin.zero_stage == level
            zero = plugin.deepspeed_config["zero_optimization"]
            if level == 3:
                assert zero["stage3_gather_16bit_weights_on_model_save"] is True
                assert plugin.zero3_init_flag is (path.stem not in CPU_FILES)
            if path.stem.endswith("offload"):
                assert (
                    zero["offload_param"]["device"] == "cpu" and zero["offload_optimizer"]["device"] == "cpu"
                )
        elif dist == "FSDP":
            plugin = FullyShardedDataParallelPlugin()
            assert plugin.fsdp_version == level
            assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
            assert plugin.transformer_cls_names_to_wrap is None  # the model's own decoder layer class
            assert plugin.use_orig_params is None  # an FSDP1 flag: obsolete under FSDP2
        assert env["ACCELERATE_MIXED_PRECISION"] == "no"


def test_deepspeed_refuses_mixed_precision_beside_a_config_file(tmp_path, monkeypatch):
    """Why the DeepSpeed launch files have no mixed_precision key."""
    from accelerate.utils import DeepSpeedPlugin

    monkeypatch.chdir(ROOT)
    raw = yaml.safe_load((LAUNCH / "accelerate" / "deepspeed_zero3.yaml").read_text())
    bad = tmp_path / "zero3_bf16.yaml"
    bad.write_text(yaml.safe_dump({**raw, "mixed_precision": "bf16"}))
    _, env = _launch_env(bad)
    with mock.patch.dict(os.environ, env, clear=True), pytest.raises(ValueError, match="mixed_precision"):
        DeepSpeedPlugin()


@pytest.mark.parametrize("path", DEEPSPEED_FILES, ids=_ids(DEEPSPEED_FILES))
def test_deepspeed_json_leaves_trainer_values_auto(path):
    cfg = json.loads(path.read_text())
    for key in (
        "train_batch_size",
        "train_micro_batch_size_per_gpu",
        "gradient_accumulation_steps",
        "gradient_clipping",
    ):
        assert cfg[key] == "auto", key
    assert cfg["bf16"]["enabled"] == "auto" and cfg["fp16"]["enabled"] == "auto"
    zero = cfg["zero_optimization"]
    if zero["stage"] == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    used_by = [p for p in ACCELERATE_FILES if path.relative_to(ROOT).as_posix() in p.read_text()]
    assert used_by, f"no launch file uses {path.name}"


@pytest.mark.parametrize(
    "model_name, layer",
    [
        ("tiny-llama", "LlamaDecoderLayer"),
        ("tiny-qwen2", "Qwen2DecoderLayer"),
        ("tiny-mistral", "MistralDecoderLayer"),
        ("tiny-t5", "T5Block"),
    ],
)
def test_fsdp2_wraps_each_familys_decoder_layer(model_name, layer, monkeypatch):
    """fsdp2.yaml names no layer class: accelerate's FSDP2 policy must then pick each family's decoder layer."""
    import torch
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    from sfm.registry import BACKBONES

    monkeypatch.chdir(ROOT)
    _, env = _launch_env(LAUNCH / "accelerate" / "fsdp2.yaml")
    torch.manual_seed(0)
    model = BACKBONES.get(model_name).build(64)
    with mock.patch.dict(os.environ, env, clear=True):
        plugin = FullyShardedDataParallelPlugin()
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    wrapped = {type(m).__name__ for m in model.modules() if policy(m)}
    assert wrapped == {layer}
    n_layers = sum(type(m).__name__ == layer for m in model.modules())
    assert n_layers >= 2


def test_readme_lists_every_launch_file():
    text = (LAUNCH / "README.md").read_text()
    for path in [*ACCELERATE_FILES, *DEEPSPEED_FILES, SBATCH]:
        assert path.name in text, path.name


FAKES = {
    # scontrol: the allocation's two hosts. srun: run the command once per node with that node's SLURM_NODEID
    # (skipping srun's own options). accelerate: record its arguments.
    "scontrol": '#!/bin/bash\nprintf "gpu-a\\ngpu-b\\n"\n',
    "srun": '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\n'
    'for ((n = 0; n < SLURM_NNODES; n++)); do SLURM_NODEID=$n "$@" || exit $?; done\n',
    "accelerate": '#!/bin/bash\necho "node=$SLURM_NODEID $*" >> "$FAKE_LOG"\n',
}


def test_sbatch_runs_accelerate_launch_once_per_node(tmp_path):
    assert subprocess.run(["bash", "-n", str(SBATCH)]).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "gpu-[a-b]",
        "SLURM_GPUS_ON_NODE": "8",
        "HOME": str(tmp_path),
    }
    recipe = "recipes/llama-3.1-70b/burgers-forecast/lora-zero3-offload.yaml"
    proc = subprocess.run(
        ["bash", str(SBATCH), recipe, "--training.learning_rate", "1e-4"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    for rank, call in enumerate(calls):
        assert call.startswith(f"node={rank} launch --config_file launch/accelerate/multi_node.yaml")
        assert f"--machine_rank {rank} " in call
        assert "--num_machines 2 --num_processes 16" in call
        assert "--main_process_ip gpu-a --main_process_port 29500" in call
        assert call.endswith(f"-m sfm.train {recipe} --training.learning_rate 1e-4")
    usage = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.slow
@pytest.mark.distributed
def test_zero3_loads_a_hub_format_model_partitioned(tmp_path):
    """deepspeed_zero3.yaml on 2 CPU processes, with a model folder as from_pretrained reads it from the Hub:
    the weights load partitioned (deepspeed.zero.Init, not whole on every rank), the embeddings grow for the
    added tokens, and training follows the single-process run."""
    import shutil
    import sys

    import torch

    from sfm.models.backbones import SPECIAL_TOKENS, build_tiny_tokenizer
    from sfm.registry import BACKBONES

    hub = tmp_path / "hub-model"
    tok = build_tiny_tokenizer(
        [f"burgers nu={nu / 100:.4f} dt=0.1 predict 1:" for nu in range(2, 11)] * 20, 300
    )
    special = {
        f"{k[:-6]}_token_id": tok.convert_tokens_to_ids(v)
        for k, v in SPECIAL_TOKENS.items()
        if k != "unk_token"
    }
    torch.manual_seed(0)
    BACKBONES.get("tiny-llama").build(len(tok), special_ids=special).save_pretrained(hub)
    tok.save_pretrained(hub)
    raw = yaml.safe_load((LAUNCH / "accelerate" / "deepspeed_zero3.yaml").read_text())
    cpu_twin = tmp_path / "zero3_cpu.yaml"  # the GPU file, on 2 CPU processes
    cpu_twin.write_text(yaml.safe_dump({**raw, "num_processes": 2, "use_cpu": True}))
    recipe = ROOT / "recipes" / "tiny" / "llama" / "burgers-forecast" / "lora.yaml"
    # new_tokens rows on a partitioned model: PEFT's trainable-token layer asks for a CUDA device under ZeRO-3
    # (peft/tuners/trainable_tokens/layer.py:92); sfm.training.peft_setup gathers the rows on the CPU instead.
    args = [
        str(recipe),
        "--model.name_or_path",
        str(hub),
        "--peft.new_tokens",
        "rows",
        "--max_steps",
        "4",
        "--no-progress",
    ]
    env = {**os.environ, "SFM_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    records = {}
    for name, cmd in {
        "single": [sys.executable, "-m", "sfm.train"],
        "zero3": [accelerate, "launch", "--config_file", str(cpu_twin), "-m", "sfm.train"],
    }.items():
        out = tmp_path / name
        proc = subprocess.run(
            [*cmd, *args, "--output_dir", str(out)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        records[name] = json.loads((out / "sfm_run.json").read_text())
    z3, single = records["zero3"]["distributed"], records["single"]["distributed"]
    assert z3["zero_stage"] == 3 and z3["world_size"] == 2 and z3["zero3_init"] is True
    assert single["zero3_init"] is False
    losses = [records[k]["train"]["loss_history"] for k in ("single", "zero3")]
    assert len(losses[0]) == len(losses[1]) == 4
    assert losses[1] == pytest.approx(losses[0], abs=2e-3)
