"""Building blocks of ``sfm.train``'s main(): tokenizer, model, batch arithmetic, checkpoints to resume from.

Each function takes flat arguments (not the recipe), so it can be reused and tested alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from sfm.errors import ConfigError, SfmError
from sfm.models.backbones import BACKBONES, build_tiny_tokenizer, is_seq2seq, is_tiny
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.vocab import ScienceTokenizer, resize_embeddings

log = logging.getLogger(__name__)

# What the Trainer writes into every checkpoint-N/ (trainer_state.json last): each entry is satisfied by any
# one of its alternatives. DeepSpeed keeps weights and optimizer (and its own scheduler) in global_stepN/.
_DEEPSPEED = "latest"
_CHECKPOINT_FILES = {
    "trainer state": ("trainer_state.json",),
    "weights": (
        "adapter_model.safetensors",
        "model.safetensors",
        "model.safetensors.index.json",
        _DEEPSPEED,
    ),
    "optimizer state": ("optimizer.pt", _DEEPSPEED),
    "scheduler state": ("scheduler.pt", _DEEPSPEED),
    "rng state": ("rng_state.pth", "rng_state_0.pth"),
    "training arguments": ("training_args.bin",),
}


def make_tokenizer(
    name_or_path: str,
    codec: FieldCodec,
    corpus: list[str],
    *,
    vocab_size: int = 384,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> ScienceTokenizer:
    """The backbone's tokenizer (a fresh BPE for tiny backbones), extended with the codec's tokens."""
    if is_tiny(name_or_path):
        tokenizer = build_tiny_tokenizer(corpus, vocab_size=vocab_size)
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                name_or_path, revision=revision, trust_remote_code=trust_remote_code
            )
        except OSError as exc:
            raise ConfigError(
                f"model.name_or_path {name_or_path!r}: cannot load its tokenizer ({str(exc).splitlines()[0]})"
            ) from None
    return ScienceTokenizer.extend(tokenizer, codec)


def make_model(
    name_or_path: str,
    sci: ScienceTokenizer,
    *,
    tiny: dict[str, Any] | None = None,
    revision: str | None = None,
    torch_dtype: str = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    quantization_config: Any = None,
    embedding_init: str = "mean",
    init: str = "pretrained",
) -> Any:
    """The backbone with its embeddings resized to the science tokenizer.

    ``init="random"`` builds a Hub model's architecture from its config with random weights (seeded by the
    caller): the from-scratch arm of a scaling study, with nothing but the config downloaded.
    """
    if is_tiny(name_or_path):
        tok = sci.tokenizer
        special = {
            k: v
            for k, v in {
                "bos_token_id": tok.bos_token_id,
                "eos_token_id": tok.eos_token_id,
                "pad_token_id": tok.pad_token_id,
            }.items()
            if v is not None
        }
        with whole_model_init():
            model = BACKBONES.get(name_or_path).build(len(sci), special_ids=special, **(tiny or {}))
    else:
        import transformers

        config = transformers.AutoConfig.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        auto = transformers.AutoModelForSeq2SeqLM if is_seq2seq(config) else transformers.AutoModelForCausalLM
        dtype = torch_dtype if torch_dtype == "auto" else getattr(torch, torch_dtype)
        kwargs = {
            "revision": revision,
            "dtype": dtype,
            "trust_remote_code": trust_remote_code,
            "quantization_config": quantization_config,
        }
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if init == "random":
            kwargs.pop("revision")
            kwargs.pop("quantization_config")
            model = auto.from_config(config, **kwargs)
        else:
            model = auto.from_pretrained(name_or_path, **kwargs)
        if is_partitioned(model):
            _resize_partitioned(model, sci, embedding_init)
            return model
    resize_embeddings(model, sci, init=embedding_init, pretrained=not is_tiny(name_or_path))
    return model


@contextlib.contextmanager
def whole_model_init() -> Iterator[None]:
    """Build models whole inside this block, even when DeepSpeed ZeRO-3 is active.

    Once TrainingArguments exist under ZeRO-3, transformers builds every model inside ``deepspeed.zero.Init``
    (partitioned as it is created). A tiny backbone is small and its initial weights are saved as the run's
    base before training, which needs them whole; DeepSpeed partitions it when training starts.
    """
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:  # pragma: no cover - transformers without the DeepSpeed integration module
        hf_deepspeed = None
    if not hasattr(hf_deepspeed, "_hf_deepspeed_config_weak_ref"):  # pragma: no cover - another transformers
        yield
        return
    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def is_partitioned(model: Any) -> bool:
    """True when ``model`` was built partitioned by DeepSpeed ZeRO-3 (``deepspeed.zero.Init``): its parameters
    carry ``ds_shape``, and each rank holds only its shard."""
    return any(hasattr(p, "ds_shape") for p in model.parameters())


def _resize_partitioned(model: Any, sci: ScienceTokenizer, init: str) -> None:
    """:func:`resize_embeddings` for a model partitioned by ZeRO-3.

    transformers' own resize gathers and re-partitions; the rows sfm then initializes itself are written with
    the embedding and head gathered, rank 0's values broadcast to the others on exit.
    """
    import deepspeed

    weight = model.get_input_embeddings().weight
    if len(sci) > getattr(weight, "ds_shape", weight.shape)[0]:
        model.resize_token_embeddings(len(sci), mean_resizing=True)
    weights = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None and head.weight is not weights[0]:
        weights.append(head.weight)
    with deepspeed.zero.GatheredParameters(weights, modifier_rank=0):
        resize_embeddings(model, sci, init=init)  # sizes now match: only sfm's row initialization runs


# DeepSpeed's own defaults for the bucket sizes transformers derives from ``model.config.hidden_size``.
_DEEPSPEED_BUCKETS = {
    "zero_optimization.reduce_bucket_size": 500_000_000,
    "zero_optimization.stage3_prefetch_bucket_size": 50_000_000,
    "zero_optimization.stage3_param_persistence_threshold": 100_000,
}


def fill_deepspeed_sizes(trainer: Any, model: Any) -> None:
    """Fill the DeepSpeed config's hidden-size ``"auto"`` entries for a model without ``config.hidden_size``.

    transformers derives ``reduce_bucket_size`` and the ZeRO-3 prefetch and persistence thresholds from
    ``model.config.hidden_size`` and raises a ValueError at ``train()`` when the model has no such config: sfm's
    field models (a continuous model wraps its backbone; an operator has no backbone). They get the values
    transformers would give their backbone (h^2, 0.9 h^2, 10 h), or DeepSpeed's own defaults when there is no
    hidden size at all; entries the launch's JSON sets are left alone.
    """
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    configs = {
        id(c): c
        for c in (getattr(plugin, "hf_ds_config", None), getattr(trainer.args, "hf_deepspeed_config", None))
        if c is not None
    }
    if not configs or hasattr(getattr(model, "config", None), "hidden_size"):
        return
    sizes = [
        m.config.hidden_size for m in model.modules() if hasattr(getattr(m, "config", None), "hidden_size")
    ]
    values = dict(_DEEPSPEED_BUCKETS)
    if sizes:
        h = int(max(sizes))
        values = {k: v for k, v in zip(values, (h * h, int(0.9 * h * h), 10 * h), strict=True)}
    for ds in configs.values():  # deepspeed_init reads the plugin's copy
        for key, value in values.items():
            ds.fill_only(key, value)


def resolve_batch(per_device: int, grad_accum: int, world_size: int, global_batch: int | None) -> int:
    """Gradient accumulation steps that realise ``global_batch`` on ``world_size`` processes.

    Raises:
        ConfigError: the global batch does not divide into per-device batches on this many processes.
    """
    if global_batch is None:
        return grad_accum
    per_step = per_device * world_size
    if global_batch % per_step:
        raise ConfigError(
            f"training.global_batch_size={global_batch} is not a multiple of per_device_train_batch_size "
            f"({per_device}) x processes ({world_size}) = {per_step}; change one of them"
        )
    needed = global_batch // per_step
    if grad_accum not in (1, needed):
        raise ConfigError(
            f"training.global_batch_size={global_batch} needs gradient_accumulation_steps={needed} on "
            f"{world_size} process(es), but the recipe sets {grad_accum}; drop one of the two settings"
        )
    return needed


def world_size() -> int:
    """Processes in this launch (accelerate/torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder of a run folder, or None.

    A checkpoint missing a file the Trainer writes (a kill during the save, a disk that filled up, a file
    removed by hand) is skipped with a warning naming what is missing, so the run resumes from the previous
    complete one (or starts fresh) instead of failing in ``Trainer.train`` or resuming half a state.
    """
    ckpts = [
        p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    for ckpt in sorted(ckpts, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        missing = checkpoint_missing(ckpt)
        if not missing:
            return ckpt
        log.warning("%s is incomplete (no %s): skipped", ckpt, ", ".join(missing))
    return None


def checkpoint_missing(folder: Path) -> list[str]:
    """What a checkpoint folder lacks of the Trainer's files (empty: complete)."""
    folder = Path(folder)
    missing = [
        what for what, names in _CHECKPOINT_FILES.items() if not any((folder / n).is_file() for n in names)
    ]
    state = folder / "trainer_state.json"
    if state.is_file():
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            missing.append("readable trainer_state.json")
    meta = folder / "sfm_checkpoint.json"  # written by CheckpointGuard: says how many ranks saved rng state
    if meta.is_file() and not (folder / "rng_state.pth").is_file():
        try:
            ranks = int(json.loads(meta.read_text(encoding="utf-8")).get("world_size") or 1)
        except (OSError, ValueError, TypeError):
            ranks = 1
        missing += [
            f"rng_state_{r}.pth" for r in range(ranks) if not (folder / f"rng_state_{r}.pth").is_file()
        ]
    tensors = [p for p in folder.iterdir() if p.suffix in _TENSOR_FILES]
    if (folder / _DEEPSPEED).is_file():
        tag = (folder / _DEEPSPEED).read_text(encoding="utf-8").strip()
        if not (folder / tag).is_dir():
            missing.append(f"DeepSpeed state {tag}/")
        else:
            tensors += [p for p in (folder / tag).iterdir() if p.suffix in _TENSOR_FILES]
    missing += [f"torn {p.relative_to(folder)}" for p in sorted(tensors) if is_torn(p)]
    return missing


_TENSOR_FILES = {".safetensors", ".pt", ".pth", ".bin"}


def is_torn(path: Path) -> bool:
    """True when a tensor file was cut short (a kill or a full disk mid-write), checked without loading it.

    A safetensors file must be as long as its header says (8-byte length, JSON header, then the data up to
    the largest ``data_offsets`` end); a ``torch.save`` file is a zip archive, whose directory is written last.
    """
    import zipfile

    try:
        if path.suffix == ".safetensors":
            with open(path, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            return path.stat().st_size < 8 + n + max(ends, default=0)
        return not zipfile.is_zipfile(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return True


def check_resume(checkpoint: Path, facts: dict[str, Any]) -> None:
    """Refuse a resume that cannot restore the run, saying why and how to consolidate.

    DDP and single-process checkpoints hold the full optimizer state, so they resume on any world size (the
    data order then differs; the global batch is kept by ``global_batch_size``). ZeRO checkpoints shard the
    optimizer state by rank, so they resume only on the same world size.
    """
    meta_path = checkpoint / "sfm_checkpoint.json"
    if not meta_path.is_file():
        return
    saved = json.loads(meta_path.read_text())
    stage = saved.get("zero_stage")
    if stage and saved.get("world_size") != facts["world_size"]:
        raise SfmError(
            f"{checkpoint} was saved by DeepSpeed ZeRO-{stage} on {saved['world_size']} processes, and this launch "
            f"has {facts['world_size']}: ZeRO shards the optimizer state by rank. Resume with "
            f"{saved['world_size']} processes, or consolidate the weights with "
            f"`python {checkpoint}/zero_to_fp32.py {checkpoint} OUT` (the optimizer state is then lost) and start "
            f"a new run from them"
        )


def save_base(model: Any, sci: ScienceTokenizer, folder: Path) -> None:
    """Save a tiny backbone's initial weights (embeddings already resized) and tokenizer to ``folder``.

    Done before PEFT wraps the model, so the folder is a plain transformers checkpoint that an adapter's
    ``base_model_name_or_path`` can point at.
    """
    model.save_pretrained(folder, safe_serialization=True)
    sci.tokenizer.save_pretrained(folder)
