"""The token path of ``sfm.train``: fields as number tokens -> tokenizer, tokenized examples, backbone + PEFT.

:func:`prepare_tokens` returns what the shared training loop needs (the :class:`~sfm.training.run_folder.
Prepared` shape that ``sfm.training.fields.prepare`` returns for field models): model, datasets, collator,
the run-record fields only this kind knows, and ``save(out)`` for its own files (the tokenizer and
``sfm_encoding.json``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfm.models.run import BASE_DIR
from sfm.training import data as td
from sfm.training import setup


@dataclass
class TokenRun:
    """A token model ready to train (see module docstring)."""

    model: Any
    train_dataset: Any
    eval_dataset: Any
    collator: Any
    record: dict[str, Any]
    sci: Any

    def save(self, out: Path) -> None:
        """Write the science tokenizer (and ``sfm_encoding.json``) into the run folder."""
        self.sci.save(out)


def _datasets(recipe: Any, sources: td.Sources, task: Any, sci: Any) -> tuple[Any, Any]:
    d = recipe.data
    opts = {"max_length": d.max_length, "num_proc": d.num_proc}
    train = td.examples(sources.train, task, sci, seed=d.seed, max_samples=d.max_train_samples, **opts)
    val = None
    if recipe.training.eval_steps:
        val = td.examples(
            sources.validation, task, sci, seed=d.seed + 1, max_samples=d.max_eval_samples, **opts
        )
    # Plain Python rows for the DataLoader: the numpy format inherited from the field data costs ~4 ms a batch
    # for arrays the collators rebuild anyway, sfm's largest per-step overhead over a bare Trainer (bench/train.py).
    train, val = train.with_format(None), (val.with_format(None) if val is not None else None)
    if recipe.training.batching == "group_by_length":  # the Trainer's LengthGroupedSampler reads this column
        train, val = with_lengths(train), (with_lengths(val) if val is not None else None)
    return train, val


def with_lengths(ds: Any) -> Any:
    """``ds`` plus a ``length`` column: tokens of each example (prompt + completion)."""
    lengths = [len(p) + len(c) for p, c in zip(ds["prompt"], ds["completion"])]
    return ds.add_column("length", lengths)


def prepare_tokens(
    recipe: Any, sources: td.Sources, out: Path, *, progress: bool = True, quantization: Any = None
) -> TokenRun:
    """Tokenizer, tokenized examples and the PEFT-wrapped backbone of a token recipe.

    Called after ``TrainingArguments`` exist (see :func:`sfm.training.args.training_arguments`). A tiny
    backbone's initial weights are saved to ``out/base`` here, before PEFT wraps it.

    Args:
        recipe: The :class:`~sfm.training.recipe.Recipe`.
        sources: Its loaded data (:func:`sfm.training.data.load_sources`).
        out: The run folder.
        progress: Progress bars.
        quantization: QLoRA's quantization config (:func:`sfm.training.peft_setup.quantization_config`).
    """
    from sfm.tasks import get_task_format
    from sfm.tokenize.fields import FieldCodec
    from sfm.tokenize.numbers import get_encoding
    from sfm.training.collators import make_collator

    d, m = recipe.data, recipe.model
    task = get_task_format(d.task, **d.task_options)
    codec = FieldCodec(get_encoding(d.encoding, **d.encoding_options), fields=sources.fields)
    sci = setup.make_tokenizer(
        m.name_or_path,
        codec,
        td.corpus(sources, task),
        vocab_size=m.tokenizer_vocab_size,
        revision=m.revision,
        trust_remote_code=m.trust_remote_code,
    )
    train_ds, eval_ds = _datasets(recipe, sources, task, sci)
    model = _model(recipe, sci, out, quantization)
    collator = make_collator(
        seq2seq=setup.is_seq2seq(model),
        batching=recipe.training.batching,
        pad_id=sci.pad_id,
        bos_id=sci.bos_id,
    )
    tokens = int(sum(len(a) + len(b) for a, b in zip(train_ds["prompt"], train_ds["completion"])))
    record = {
        "base_model": m.name_or_path,
        "tiny_base": setup.is_tiny(m.name_or_path),
        "encoding": codec.config(),
        "train": {"tokens": tokens},
    }
    return TokenRun(model, train_ds, eval_ds, collator, record, sci)


def _model(recipe: Any, sci: Any, out: Path, quantization: Any) -> Any:
    """The backbone, resized to ``sci``, its base saved (tiny backbones), wrapped by PEFT."""
    from sfm.training.peft_setup import apply_peft

    m, p = recipe.model, recipe.peft
    model = setup.make_model(
        m.name_or_path,
        sci,
        tiny=m.tiny,
        revision=m.revision,
        torch_dtype=m.torch_dtype,
        attn_implementation=m.attn_implementation,
        trust_remote_code=m.trust_remote_code,
        quantization_config=quantization,
        embedding_init=m.embedding_init,
        init=m.init,
    )
    partitioned = setup.is_partitioned(model)
    is_main = int(os.environ.get("RANK", "0")) == 0
    if setup.is_tiny(m.name_or_path) and is_main and not (out / BASE_DIR).is_dir():
        setup.save_base(model, sci, out / BASE_DIR)
    # A model built whole (tiny backbones) is wrapped whole too, and DeepSpeed partitions it when training starts.
    with contextlib.nullcontext() if partitioned else setup.whole_model_init():
        return apply_peft(
            model,
            method=p.method,
            r=p.r,
            alpha=p.alpha,
            dropout=p.dropout,
            target_modules=p.target_modules,
            new_tokens=p.new_tokens,
            new_token_ids=sci.new_token_ids,
            trainable_modules=p.trainable_modules,
            gradient_checkpointing=recipe.training.gradient_checkpointing,
        )
