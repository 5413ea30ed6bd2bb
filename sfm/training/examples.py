"""Field data set + task format + tokenizer -> tokenized examples (a ``datasets.Dataset``).

Each trajectory becomes one or more examples (forecast windows, one identification question...). The work
runs through ``Dataset.map`` so it is cached, runs on ``num_proc`` processes, and never holds more than a
batch of trajectories in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfm.errors import ConfigError
from sfm.physics.metadata import FieldMeta
from sfm.tokenize.vocab import ScienceTokenizer

COLUMNS = ("prompt", "completion", "trajectory", "start")


def build_examples(
    split: Any,
    meta: FieldMeta,
    task: Any,
    sci: ScienceTokenizer,
    *,
    seed: int = 0,
    max_samples: int | None = None,
    max_length: int | None = None,
    num_proc: int = 1,
) -> Any:
    """Tokenize a split of a field data set into a ``datasets.Dataset`` of examples.

    Args:
        split: The split (a ``datasets.Dataset`` of trajectories, numpy format).
        meta: The data set's metadata.
        task: A task format instance.
        sci: The science tokenizer.
        seed: Seeds window sampling (each trajectory's generator is derived from ``(seed, index)``).
        max_samples: Keep at most this many examples (a seeded random subset).
        max_length: Examples longer than this are an error: a truncated target would teach the model half a
            frame, so it is better to reduce the grid or the number of frames.
        num_proc: Processes for ``Dataset.map``.

    Returns:
        A dataset with columns ``prompt``, ``completion`` (lists of ids), ``trajectory`` and ``start``.
    """

    def fn(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {c: [] for c in COLUMNS}
        for j, idx in enumerate(indices):
            row = {k: v[j] for k, v in batch.items()}
            rng = np.random.default_rng([seed, idx])
            for ex in task.training_examples(row, meta, sci, rng):
                out["prompt"].append(ex.prompt)
                out["completion"].append(ex.completion)
                out["trajectory"].append(int(idx))
                out["start"].append(int(ex.meta.get("start", 0)))
        return out

    examples = split.map(
        fn,
        batched=True,
        batch_size=16,
        with_indices=True,
        remove_columns=split.column_names,
        num_proc=num_proc if num_proc > 1 else None,
        desc="tokenizing",
    )
    if len(examples) == 0:
        raise ConfigError("the task produced no examples from this data set (too few frames?)")
    if max_samples is not None and len(examples) > max_samples:
        examples = examples.shuffle(seed=seed).select(range(max_samples))
    if max_length is not None:
        lengths = np.array([len(p) + len(c) for p, c in zip(examples["prompt"], examples["completion"])])
        if lengths.max() > max_length:
            raise ConfigError(
                f"examples are up to {lengths.max()} tokens, above data.max_length={max_length}; raise it, or "
                f"shrink them (task_options: space_stride, context_frames, horizon)"
            )
    return examples


def build_mixture_examples(
    parts: list[tuple[Any, FieldMeta]],
    task: Any,
    sci: ScienceTokenizer,
    *,
    seed: int = 0,
    max_samples: int | None = None,
    max_length: int | None = None,
    num_proc: int = 1,
) -> Any:
    """Examples of several field data sets (a mixture), concatenated and shuffled.

    Each part is formatted with its own metadata (so ``pde_identification`` names each part's family); the
    parts share one tokenizer, so they must have the same fields. A ``source`` column gives each example's
    part index.

    Args:
        parts: ``(split, meta)`` per data set.
        task, sci, seed, max_samples, max_length, num_proc: As :func:`build_examples` (``max_samples``
            caps the whole mixture, after shuffling).

    Raises:
        ConfigError: no parts, or parts whose fields differ.
    """
    import datasets

    if not parts:
        raise ConfigError("a mixture needs at least one data set")
    fields = list(parts[0][1].fields)
    for _, meta in parts[1:]:
        if list(meta.fields) != fields:
            raise ConfigError(
                f"mixture: {meta.family} has fields {meta.fields}, but {parts[0][1].family} has {fields}; "
                "the data sets of a mixture share one field codec, so they need the same fields"
            )
    built = []
    for k, (split, meta) in enumerate(parts):
        ds = build_examples(split, meta, task, sci, seed=seed + k, max_length=max_length, num_proc=num_proc)
        built.append(ds.add_column("source", [k] * len(ds)))
    mixed = datasets.concatenate_datasets(built).shuffle(seed=seed)
    if max_samples is not None and len(mixed) > max_samples:
        mixed = mixed.select(range(max_samples))
    return mixed


def corpus_for_tokenizer(split: Any, meta: FieldMeta, task: Any, limit: int = 256) -> list[str]:
    """Prompt texts of up to ``limit`` trajectories: what a tiny backbone's BPE is trained on."""
    texts = []
    n = min(limit, len(split))
    for i in range(n):
        texts.extend(task.texts(split[i], meta))
    return texts
