"""Backbones: tiny ones built from a config (tests, quickstart), real ones from the Hub or a local folder.

:data:`~sfm.registry.BACKBONES` holds the *tiny* backbones by name (``tiny-llama``, ``tiny-qwen2``,
``tiny-mistral``, ``tiny-gpt2``, ``tiny-t5``): same architecture code as their large relatives, a few hundred
thousand parameters, random weights, built with ``from_config`` so nothing is downloaded. Any other
``name_or_path`` is loaded with ``from_pretrained`` (Hub id or a folder saved by ``save_pretrained``) with
``trust_remote_code`` off unless the recipe turns it on.

A tiny backbone has no tokenizer of its own: :func:`build_tiny_tokenizer` trains a small byte-level BPE on
the task's prompt text, so the result is a standard ``PreTrainedTokenizerFast`` that plain transformers loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sfm.errors import ConfigError
from sfm.registry import BACKBONES

# LoRA target modules per architecture family (model_type): every linear layer of attention and MLP, which
# QLoRA (Dettmers et al. 2023) found necessary to match full fine-tuning.
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "t5": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
}

# Names of the input embedding and output head per family (for training the rows of added tokens).
EMBEDDING_MODULES: dict[str, tuple[str, str]] = {
    "gpt2": ("wte", "lm_head"),
    "t5": ("shared", "lm_head"),
    "mt5": ("shared", "lm_head"),
}
DEFAULT_EMBEDDING_MODULES = ("embed_tokens", "lm_head")

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


@dataclass(frozen=True)
class TinyBackbone:
    """A tiny backbone recipe: a transformers config class name and its small default sizes."""

    config_class: str
    defaults: dict[str, Any]
    seq2seq: bool = False

    def build(self, vocab_size: int, special_ids: dict[str, int] | None = None, **overrides: Any) -> Any:
        """Build the model with random weights (seeded by the caller) for ``vocab_size`` tokens.

        Args:
            vocab_size: Rows of the embedding.
            special_ids: ``bos_token_id``/``eos_token_id``/``pad_token_id`` of the tokenizer in use.
            **overrides: Config values replacing the tiny defaults (``hidden_size=128``...).
        """
        import transformers

        cfg_cls = getattr(transformers, self.config_class)
        params = {**self.defaults, **overrides, **(special_ids or {}), "vocab_size": vocab_size}
        if self.seq2seq and special_ids and "pad_token_id" in special_ids:
            params["decoder_start_token_id"] = special_ids["pad_token_id"]  # T5 starts decoding from pad
        try:
            config = cfg_cls(**params)
        except Exception as exc:  # transformers' strict-dataclass validation raises its own types
            raise ConfigError(f"model.tiny: {self.config_class}: {' '.join(str(exc).split())}") from None
        unknown = [k for k in overrides if not hasattr(config, k)]
        if unknown:
            raise ConfigError(f"tiny backbone: unknown config key(s) {unknown} for {self.config_class}")
        auto = transformers.AutoModelForSeq2SeqLM if self.seq2seq else transformers.AutoModelForCausalLM
        return auto.from_config(config)


_DECODER = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)
for _name, _cls, _extra in [
    ("tiny-llama", "LlamaConfig", {}),
    ("tiny-qwen2", "Qwen2Config", {}),
    ("tiny-mistral", "MistralConfig", {"sliding_window": None}),
]:
    BACKBONES.register(_name, description=f"{_cls[:-6]} architecture, ~0.2M params, random init (tests)")(
        TinyBackbone(_cls, {**_DECODER, **_extra})
    )
BACKBONES.register("tiny-gpt2", description="GPT-2 architecture, tied embeddings, random init (tests)")(
    TinyBackbone("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=4096))
)
BACKBONES.register("tiny-t5", description="T5 (v1.1, gated-gelu) encoder-decoder, random init (tests)")(
    TinyBackbone(
        "T5Config",
        dict(
            d_model=64,
            d_kv=16,
            d_ff=128,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
            decoder_start_token_id=3,
            pad_token_id=3,
            eos_token_id=2,
        ),
        seq2seq=True,
    )
)


def is_tiny(name_or_path: str) -> bool:
    """True if ``name_or_path`` names a registered tiny backbone."""
    return name_or_path in BACKBONES


def build_tiny_tokenizer(corpus: Iterable[str], vocab_size: int = 384) -> Any:
    """Train a small byte-level BPE tokenizer on ``corpus`` and wrap it for transformers.

    Byte-level BPE covers any text (every byte is in the base alphabet, so digits and signs are single
    tokens), and a few hundred merges learn the words of the task's prompts.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL_TOKENS[k] for k in ("unk_token", "bos_token", "eos_token", "pad_token")],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def family_of(model: Any) -> str:
    """The architecture family (``model_type``) of a transformers model."""
    return str(getattr(model.config, "model_type", "unknown"))


def lora_targets(model: Any, requested: list[str] | str | None) -> list[str] | str:
    """The LoRA target modules: the request, or the family default, or every linear layer."""
    if requested:
        return requested
    return LORA_TARGETS.get(family_of(model), "all-linear")


def embedding_modules(model: Any) -> tuple[str, str]:
    """Names of the input embedding and the output head modules of ``model``."""
    return EMBEDDING_MODULES.get(family_of(model), DEFAULT_EMBEDDING_MODULES)


def is_seq2seq(model_or_config: Any) -> bool:
    """True for encoder-decoder models."""
    cfg = getattr(model_or_config, "config", model_or_config)
    return bool(getattr(cfg, "is_encoder_decoder", False))


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
