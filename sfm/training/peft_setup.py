"""Recipe ``peft`` section -> a model ready to train (LoRA, DoRA, rsLoRA, QLoRA, full, freeze)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sfm.errors import ConfigError
from sfm.models.backbones import embedding_modules, is_seq2seq, lora_targets


def quantization_config(method: str) -> Any:
    """The 4-bit NF4 config of QLoRA (Dettmers et al. 2023), or None for other methods.

    Raises:
        ConfigError: QLoRA asked for on a machine without CUDA, or without bitsandbytes.
    """
    if method != "qlora":
        return None
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "peft.method 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); use 'lora' on this machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("peft.method 'qlora' needs bitsandbytes: pip install 'sfm[qlora]'") from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def apply_peft(
    model: Any,
    *,
    method: str,
    r: int,
    alpha: float,
    dropout: float,
    target_modules: list[str] | str | None,
    new_tokens: str,
    new_token_ids: list[int],
    trainable_modules: list[str],
    gradient_checkpointing: bool = False,
) -> Any:
    """Wrap or freeze ``model`` for the chosen fine-tuning method.

    The rows of the added science tokens train with the method: with LoRA-family methods, PEFT's
    ``trainable_token_indices`` trains exactly those rows of the input embedding and of the output head (and
    saves only them in the adapter); ``new_tokens="embedding"`` trains and saves both matrices whole.
    """
    emb, head = embedding_modules(model)
    if method in ("full", "freeze"):
        for name, p in model.named_parameters():
            p.requires_grad = method == "full" or any(frag in name for frag in trainable_modules)
            if method == "freeze" and new_tokens != "frozen" and (emb in name or head in name):
                p.requires_grad = True  # new rows cannot train alone without PEFT: train the matrices
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError(f"peft.trainable_modules {trainable_modules} matched no parameter")
        return model

    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    kwargs: dict[str, Any] = {}
    if new_tokens == "rows" and new_token_ids:
        names = [emb] if _tied(model) else [emb, head]
        kwargs["trainable_token_indices"] = {n: list(new_token_ids) for n in names}
    elif new_tokens == "embedding":
        kwargs["modules_to_save"] = [emb] if _tied(model) else [emb, head]
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(model, target_modules),
        use_dora=method == "dora",
        use_rslora=method == "rslora",
        task_type=TaskType.SEQ_2_SEQ_LM if is_seq2seq(model) else TaskType.CAUSAL_LM,
        **kwargs,
    )
    try:
        with cpu_safe_trainable_tokens():
            return get_peft_model(model, config)
    except ValueError as exc:  # e.g. target modules not found: say which exist
        raise ConfigError(f"peft: {exc}".splitlines()[0]) from None


def _tied(model: Any) -> bool:
    """True when the output head shares the input embedding's weight (GPT-2, T5 v1.0)."""
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def _gather_rows(layer: Any, weight: Any, rows: Any, embed_dim: int) -> Any:
    """The ``rows`` of a ZeRO-3-partitioned ``weight`` on every rank, on the weight's own device.

    Replaces ``TrainableTokensLayer._collect_token_weights`` (peft 0.21.2,
    ``peft/tuners/trainable_tokens/layer.py:92``), which builds its receive buffer on
    ``torch.device("cuda", torch.cuda.current_device())`` and so raises "Torch not compiled with CUDA enabled"
    on a CPU-only machine. Gathering with ``modifier_rank=None`` gives every rank the whole matrix, so each
    rank copies its rows itself: no broadcast, no device to guess.
    """
    from peft.utils.integrations import gather_params_ctx

    with gather_params_ctx([weight], modifier_rank=None):
        return weight[rows].detach().clone()


@contextlib.contextmanager
def cpu_safe_trainable_tokens() -> Iterator[None]:
    """Inside this block, PEFT's trainable token rows initialize under DeepSpeed ZeRO-3 without CUDA.

    The patch is applied only where the upstream call would crash (no CUDA) and undone on exit; on a GPU
    machine peft's own code runs.
    """
    import torch

    try:
        from peft.tuners.trainable_tokens.layer import TrainableTokensLayer
    except ImportError:  # pragma: no cover - a peft without trainable tokens
        yield
        return
    original = getattr(TrainableTokensLayer, "_collect_token_weights", None)
    if original is None or torch.cuda.is_available():
        yield
        return
    TrainableTokensLayer._collect_token_weights = _gather_rows
    try:
        yield
    finally:
        TrainableTokensLayer._collect_token_weights = original
