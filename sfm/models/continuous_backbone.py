"""The backbone of a continuous model: build or load it (base model, no LM head), wrap it for the fine-tuning
method, run it on ``inputs_embeds``, save and reload it (see :mod:`sfm.models.continuous`).

Only the *base* transformers model is kept (``LlamaModel``, ``GPT2Model``, ``T5Model``, ``T5EncoderModel``...):
a continuous model reads hidden states, so an LM head (``vocab x hidden``: 0.5B parameters for Llama-3's
128k vocabulary) would be dead weight. Architecture kinds (``arch``): ``causal`` (decoder-only families),
``encoder`` (the encoder of an encoder–decoder model, run alone) and ``seq2seq`` (encoder and decoder; the
learned queries enter through the decoder).

PEFT is applied here, in the models layer, with ``peft`` directly (``sfm.training.peft_setup`` is a higher
layer and configures token models' new-token rows, which continuous models do not have); the LoRA targets
are the same family defaults (:data:`sfm.models.backbones.LORA_TARGETS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sfm.errors import ConfigError, DataError
from sfm.models.backbones import is_tiny, lora_targets
from sfm.registry import BACKBONES
from sfm.utils.io import atomic_dir

LORA_METHODS = ("lora", "dora", "rslora")
METHODS = (*LORA_METHODS, "full", "freeze")
#: Encoder-only classes of encoder–decoder families (readouts that need no decoder).
ENCODER_ONLY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
#: Embedding rows of a tiny backbone that reads no text: the embedding is never used, but the config's
#: special ids (T5: pad 3, eos 2) must fit in it.
NO_TEXT_VOCAB = 16


def base_model(backbone: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or ``backbone`` itself)."""
    get = getattr(backbone, "get_base_model", None)
    return get() if callable(get) else backbone


def check_method(method: str) -> None:
    """Fail before any work on a method continuous models do not offer."""
    if method not in METHODS:
        raise ConfigError(
            f"peft.method: {method!r} is not offered for continuous models (use one of {', '.join(METHODS)})"
        )


def backbone_config(model_section: Any, readout: str) -> tuple[Any, str]:
    """``(config or None for tiny backbones, arch)``; checks the readout fits the architecture."""
    name = model_section.name_or_path
    if is_tiny(name):
        config, seq2seq, model_type = None, BACKBONES.get(name).seq2seq, name.removeprefix("tiny-")
    else:
        import transformers

        try:
            config = transformers.AutoConfig.from_pretrained(
                name, revision=model_section.revision, trust_remote_code=model_section.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"model.name_or_path: cannot load {name!r}: {str(exc).splitlines()[0]}"
            ) from None
        seq2seq, model_type = bool(getattr(config, "is_encoder_decoder", False)), config.model_type
    if not seq2seq:
        return config, "causal"
    if readout == "queries":
        return config, "seq2seq"
    if model_type not in ENCODER_ONLY:
        raise ConfigError(
            f"model.encoder.readout: {readout!r} runs the encoder alone, which sfm offers for "
            f"{', '.join(ENCODER_ONLY)}, not {model_type!r}; use readout 'queries' (through the decoder)"
        )
    return config, "encoder"


def _model_class(arch: str, model_type: str) -> Any:
    import transformers

    if arch == "encoder":
        return getattr(transformers, ENCODER_ONLY[model_type])
    return transformers.AutoModel


def _from_config(arch: str, config: Any, **kwargs: Any) -> nn.Module:
    """A randomly initialized backbone of ``config`` (``AutoModel`` builds only through ``from_config``)."""
    cls = _model_class(arch, config.model_type)
    return (cls.from_config if arch != "encoder" else cls._from_config)(config, **kwargs)


def _dtype(name: str) -> Any:
    return name if name == "auto" else getattr(torch, name)


def make_backbone(model_section: Any, config: Any, arch: str, tokenizer: Any) -> tuple[nn.Module, dict]:
    """The backbone (random tiny, or from the Hub / a folder) and the record of how to rebuild it."""
    name = model_section.name_or_path
    if config is None:  # tiny: the registered recipe, overrides checked by TinyBackbone.build
        # Special ids are unused without text, but must lie inside the embedding of NO_TEXT_VOCAB rows.
        special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3}
        if tokenizer is not None:
            special = {
                f"{k}_token_id": getattr(tokenizer, f"{k}_token_id")
                for k in ("bos", "eos", "pad")
                if getattr(tokenizer, f"{k}_token_id") is not None
            }
        vocab = len(tokenizer) if tokenizer is not None else NO_TEXT_VOCAB
        lm = BACKBONES.get(name).build(vocab, special_ids=special, **model_section.tiny)
        config = lm.config
        model = lm.base_model if arch == "causal" else _from_config(arch, config)
        if model_section.torch_dtype not in ("auto", "float32"):
            model = model.to(_dtype(model_section.torch_dtype))
    else:
        cls = _model_class(arch, config.model_type)
        kwargs: dict[str, Any] = {
            "dtype": _dtype(model_section.torch_dtype),
            "trust_remote_code": model_section.trust_remote_code,
        }
        if model_section.attn_implementation:
            kwargs["attn_implementation"] = model_section.attn_implementation
        if model_section.init == "random":
            model = _from_config(arch, config, **kwargs)
        else:
            model = cls.from_pretrained(name, revision=model_section.revision, **kwargs)
    info = {
        "name_or_path": name,
        "revision": model_section.revision,
        "torch_dtype": model_section.torch_dtype,
        "attn_implementation": model_section.attn_implementation,
        "trust_remote_code": model_section.trust_remote_code,
        "init": "random" if is_tiny(name) else model_section.init,
        "tiny": dict(model_section.tiny) if is_tiny(name) else {},
        "model_type": config.model_type,
        "arch": arch,
        "config": json.loads(model.config.to_json_string(use_diff=False)),
    }
    return model, info


def make_tokenizer(model_section: Any, spec: Any, describe: Any) -> Any:
    """The tokenizer of the PDE description: the backbone's own, or (tiny) a small BPE trained on it."""
    name = model_section.name_or_path
    if is_tiny(name):
        from sfm.models.backbones import build_tiny_tokenizer

        # The texts the model will read: coefficient values spread over their training range (byte-level BPE
        # covers any other text anyway; these only teach it the words).
        mean = spec.coefficient_mean or [0.0] * len(spec.coefficient_names)
        std = spec.coefficient_std or [1.0] * len(spec.coefficient_names)
        corpus = [
            describe(spec.family, spec.coefficient_names, [m + z * s for m, s in zip(mean, std, strict=True)])
            for z in torch.linspace(-2, 2, 41).tolist()
        ]
        tok = build_tiny_tokenizer(corpus, vocab_size=getattr(model_section, "tokenizer_vocab_size", 384))
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(
            name, revision=model_section.revision, trust_remote_code=model_section.trust_remote_code
        )
        if tok.pad_token is None:  # Llama-family tokenizers have none; padded positions are masked anyway
            tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # the field patches follow the text: keep them at fixed offsets from the end
    return tok


def apply_method(backbone: nn.Module, peft_section: Any) -> tuple[nn.Module, dict]:
    """Wrap or freeze the backbone for ``peft.method`` (None: ``full``); returns it and its record."""
    method = "full" if peft_section is None else peft_section.method
    if method in ("full", "freeze"):
        keep = [] if peft_section is None else list(peft_section.trainable_modules)
        for name, p in backbone.named_parameters():
            p.requires_grad = method == "full" or any(frag in name for frag in keep)
        if method == "freeze" and keep and not any(p.requires_grad for p in backbone.parameters()):
            raise ConfigError(f"peft.trainable_modules {keep} matched no backbone parameter")
        return backbone, {"method": method, "trainable_modules": keep}
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(backbone, peft_section.target_modules)
    config = LoraConfig(
        r=peft_section.r,
        lora_alpha=peft_section.alpha,
        lora_dropout=peft_section.dropout,
        target_modules=targets,
        use_dora=method == "dora",
        use_rslora=method == "rslora",
    )
    try:
        wrapped = get_peft_model(backbone, config)
    except ValueError as exc:  # e.g. target modules not found
        raise ConfigError(f"peft: {exc}".splitlines()[0]) from None
    record = {"method": method, "r": peft_section.r, "alpha": peft_section.alpha}
    return wrapped, {**record, "dropout": peft_section.dropout, "target_modules": targets}


def full_mask(mask: torch.Tensor | None, seq: torch.Tensor) -> torch.Tensor:
    """A 4D additive attention mask ``[B, 1, L, L]`` letting every position see every (unpadded) one.

    transformers passes a 4D mask to the attention as-is (eager and SDPA), overriding the causal mask.
    """
    b, length = seq.shape[:2]
    keep = torch.ones(b, length, dtype=torch.bool, device=seq.device) if mask is None else mask.bool()
    out = torch.zeros(b, 1, length, length, dtype=seq.dtype, device=seq.device)
    return out.masked_fill(~keep[:, None, None, :], torch.finfo(seq.dtype).min)


def run(
    backbone: nn.Module,
    arch: str,
    seq: torch.Tensor,
    mask: torch.Tensor | None,
    queries: torch.Tensor | None,
    *,
    bidirectional: bool = False,
) -> torch.Tensor:
    """The backbone's last hidden states for ``inputs_embeds`` ``seq`` ``[B, L, hidden]`` with padding mask
    ``mask`` ``[B, L]`` (the decoder's states, for ``seq2seq``; ``bidirectional``: no causal mask)."""
    if arch == "encoder":
        return backbone(inputs_embeds=seq, attention_mask=mask).last_hidden_state
    if arch == "seq2seq":
        out = backbone(inputs_embeds=seq, attention_mask=mask, decoder_inputs_embeds=queries, use_cache=False)
        return out.last_hidden_state
    kwargs: dict[str, Any] = {}
    if mask is not None:
        # Left padding must not shift the positions of absolute-position backbones (GPT-2): count real tokens.
        kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp_min(0)
    if bidirectional:
        mask = full_mask(mask, seq)
    return backbone(inputs_embeds=seq, attention_mask=mask, use_cache=False, **kwargs).last_hidden_state


# ---- saving and loading ---------------------------------------------------------------------------------
def save_pretrained_dir(obj: Any, dest: Path, **kwargs: Any) -> None:
    """``obj.save_pretrained`` into ``dest``, atomically (replacing an older ``dest``)."""
    with atomic_dir(dest, overwrite=True) as tmp:
        obj.save_pretrained(str(tmp), **kwargs)


#: Prefix of the transformers model's keys in a ``PeftModel``'s state dict (PeftModel -> LoraModel -> model).
PEFT_PREFIX = "base_model.model."


def _base_state(peft_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The plain backbone's weights out of a PEFT-injected one's state (LoRA/DoRA tensors dropped, the
    wrapped ``*.base_layer.weight`` back at ``*.weight``) — saved without touching the live, training model."""
    return {
        k.removeprefix(PEFT_PREFIX).replace(".base_layer.", "."): v
        for k, v in peft_state.items()
        if "lora_" not in k
    }


def save_backbone(
    backbone: nn.Module, info: dict, state: dict[str, torch.Tensor], folder: Path, bdir: str, adir: str
) -> str | None:
    """Save what a reload needs of the backbone (``state``: its state dict, gathered if partitioned);
    returns what was saved (``field_model.json``'s ``saved``)."""
    from_hub = not is_tiny(info["name_or_path"]) and info["init"] == "pretrained"
    base = base_model(backbone)
    if info["peft"]["method"] in LORA_METHODS:
        if not from_hub:
            save_pretrained_dir(base, folder / bdir, state_dict=_base_state(state))
        # The adapter names its base: the saved one (plain `peft` then loads the run with no sfm code).
        cfg = backbone.peft_config["default"]
        cfg.base_model_name_or_path = info["name_or_path"] if from_hub else str((folder / bdir).resolve())
        save_pretrained_dir(backbone, folder / adir, state_dict=state)
        _check_nonempty(folder / adir / "adapter_model.safetensors")
        return "adapter" if from_hub else "base+adapter"
    if from_hub and not any(p.requires_grad for p in backbone.parameters()):
        return None
    save_pretrained_dir(backbone, folder / bdir, state_dict=state)
    return "full"


def _check_nonempty(path: Path) -> None:
    """Fail on an adapter saved with no or empty tensors (ZeRO-3 weights saved without gathering them)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    empty = [k for k, v in tensors.items() if v.numel() == 0]
    if not tensors or empty:
        raise DataError(f"{path}: adapter tensors saved empty {empty[:2]}: gather the weights before saving")


def load_backbone(info: dict, saved: str | None, folder: Path, bdir: str, adir: str) -> nn.Module:
    """Rebuild the backbone saved by :func:`save_backbone` (weights from the run folder or the Hub)."""
    local = saved in ("full", "base+adapter")
    src = str(folder / bdir) if local else info["name_or_path"]
    kwargs: dict[str, Any] = {
        "dtype": _dtype(info["torch_dtype"]),
        "trust_remote_code": info["trust_remote_code"],
    }
    if info.get("attn_implementation"):
        kwargs["attn_implementation"] = info["attn_implementation"]
    if not local:
        kwargs["revision"] = info.get("revision")
    try:
        model = _model_class(info["arch"], info["model_type"]).from_pretrained(src, **kwargs)
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot load the backbone from {src}: {str(exc).splitlines()[0]}"
        ) from None
    if saved in ("adapter", "base+adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder / adir))
    return model


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write ``tensors`` as safetensors through a temporary file and a rename."""
    from safetensors.torch import save_file

    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    empty = [k for k, v in plain.items() if v.numel() == 0]
    if empty:
        raise DataError(
            f"{path.name}: tensors {empty[:3]} are empty: gather partitioned weights before saving"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(plain, tmp, metadata={"format": "pt"})
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_tensors(model: nn.Module, path: Path) -> None:
    """Load every non-backbone tensor of ``model`` from ``path``; a missing or extra one is an error."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataError(f"{path}: missing (the encoder and head weights of a continuous model)")
    state = load_file(str(path))
    own = {k for k in model.state_dict() if not k.startswith("backbone.")}
    if set(state) != own:
        diff = sorted(own ^ set(state))[:3]
        raise DataError(f"{path}: tensors do not match the model (first differences: {diff})")
    model.load_state_dict(state, strict=False)
