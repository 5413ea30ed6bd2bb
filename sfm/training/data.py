"""The data stage of ``sfm.train``: a recipe's sources -> tokenizer corpus and tokenized examples.

Three kinds of source, each checked when the recipe loads:

* one field data set (``data.path`` and/or ``data.simulator``) — forecasting, PDE identification;
* a mixture: that data set plus ``data.mixture`` (more field data sets with the same fields), e.g. several
  PDE families for ``pde_identification``; examples are concatenated and shuffled;
* an equation data set (``data.equations``) — symbolic regression.

Generated sources are built once and cached under ``$SFM_HOME/data`` (on the main process; the others wait).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfm.data import cache
from sfm.errors import SfmError
from sfm.physics.metadata import FieldMeta
from sfm.training import examples as ex


@dataclass
class Source:
    """One field data set of a recipe (flat settings, as in a recipe's ``data`` section)."""

    path: str | None = None
    simulator: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 64
    seed: int = 0


@dataclass
class Sources:
    """What a recipe's data resolved to: splits with their metadata (None for equation data)."""

    train: list[tuple[Any, FieldMeta | None]]
    validation: list[tuple[Any, FieldMeta | None]]
    fields: list[str]
    record: dict[str, Any]

    @property
    def meta(self) -> FieldMeta | None:
        """The first source's metadata."""
        return self.train[0][1]


def load_sources(
    sources: list[Source],
    *,
    equations: Any = None,
    equations_path: str | None = None,
    train_trajectories: int | None = None,
    num_proc: int = 1,
    progress: bool = True,
) -> Sources:
    """Resolve, build if missing, and load a recipe's data.

    Args:
        sources: Field data sets (the first is the recipe's own ``data`` section, then ``data.mixture``).
        equations: An :class:`~sfm.data.equations.EquationSpec` (symbolic regression) instead of field data.
        equations_path: Where the equation data set lives (default: its cache folder).
        train_trajectories: Keep only the first N training rows of each field data set.
        num_proc: Processes for generation.
        progress: Progress bars.
    """
    if equations is not None:
        from dataclasses import asdict

        from sfm.config import sfm_home
        from sfm.data.equations import ensure_equation_dataset

        path = None if equations_path is None else _resolve(equations_path, sfm_home())
        dd = ensure_equation_dataset(equations, path)
        record = {"kind": "equations", "spec": asdict(equations), "num_train": len(dd["train"])}
        return Sources([(dd["train"], None)], [(dd["validation"], None)], ["y"], record)

    from sfm.data import load_field_dataset

    train, validation, described = [], [], []
    for src in sources:
        path = cache.resolve_data_path(src.path, src.simulator, src.params, src.num_samples, src.seed)
        cache.ensure_dataset(
            path, src.simulator, src.params, src.num_samples, src.seed, num_proc, progress=progress
        )
        fs = load_field_dataset(path)
        split = fs.split("train")
        if train_trajectories is not None:
            if train_trajectories > len(split):
                raise SfmError(
                    f"data.train_trajectories={train_trajectories}, but {path} has only "
                    f"{len(split)} training trajectories"
                )
            split = split.select(range(train_trajectories))
        train.append((split, fs.meta))
        validation.append((fs.split("validation"), fs.meta))
        described.append(
            {
                "path": str(path),
                "family": fs.meta.family,
                "fields": fs.meta.fields,
                "num_train_trajectories": len(split),
            }
        )
    fields = list(train[0][1].fields)
    record = {"kind": "fields", "sources": described, **described[0]}
    return Sources(train, validation, fields, record)


def corpus(sources: Sources, task: Any, limit: int = 256) -> list[str]:
    """Prompt texts of every source (what a tiny backbone's BPE tokenizer is trained on)."""
    texts: list[str] = []
    for split, meta in sources.train:
        texts.extend(ex.corpus_for_tokenizer(split, meta, task, limit=limit))
    return texts


def examples(
    parts: list[tuple[Any, FieldMeta | None]],
    task: Any,
    sci: Any,
    *,
    seed: int,
    max_samples: int | None,
    max_length: int | None,
    num_proc: int,
) -> Any:
    """Tokenized examples of one part, or of a shuffled mixture of several."""
    if len(parts) == 1:
        split, meta = parts[0]
        return ex.build_examples(
            split,
            meta,
            task,
            sci,
            seed=seed,
            max_samples=max_samples,
            max_length=max_length,
            num_proc=num_proc,
        )
    return ex.build_mixture_examples(
        parts, task, sci, seed=seed, max_samples=max_samples, max_length=max_length, num_proc=num_proc
    )


def _resolve(path: str, home: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else home / p
