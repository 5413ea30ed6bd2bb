"""Render: the card's sections from their contexts (``templates/model_card_sections.j2``), then the card.

The card is :class:`huggingface_hub.ModelCard` rendered from the one template ``templates/model_card.md``;
:func:`card_variables` supplies every variable of it and nothing else (a test checks both directions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

import sfm
from sfm.harness.results import EvalResults
from sfm.physics.metadata import FieldMeta
from sfm.publish import templating
from sfm.publish.cards import context
from sfm.publish.cards.figures import draw_figures
from sfm.publish.cards.hub import FIGURES_DIR
from sfm.publish.cards.metadata import DEFAULT_LICENSE, PEFT_METHODS, card_data
from sfm.publish.cards.records import (
    base_model_id,
    check_results,
    find_field_meta,
    latest_tasks,
    read_run,
    run_name,
)
from sfm.utils.io import atomic_write_text
from sfm.utils.markdown import markdown_table

TEMPLATE = templating.TEMPLATES / "model_card.md"
SECTIONS = "model_card_sections.j2"


def section(name: str, /, **ctx: Any) -> str:
    """The section macro ``name`` of ``model_card_sections.j2`` rendered with ``ctx`` (its parameters)."""
    text = str(templating.macro(SECTIONS, name)(**ctx))
    return text if name == "figures" else text.rstrip("\n")  # figures: each image its own paragraph


def section_contexts(
    run_dir: str | Path,
    record: dict[str, Any],
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    figures: Sequence[tuple[str, str]] = (),
) -> dict[str, dict[str, Any]]:
    """The context of every section macro of ``model_card_sections.j2``, by macro name."""
    meta_path = find_field_meta(run_dir, record)
    meta = FieldMeta.load(meta_path.parent) if meta_path else None
    tasks = latest_tasks(results)
    hub_id = base_model_id(record)
    method = record["recipe"].get("peft", {}).get("method", "lora")
    # no third-party weights: a tiny config-built backbone, or an operator trained from scratch
    tiny = context.is_tiny(record) or context.run_kind(record) == "operator"
    return {
        "summary": context.summary(record, meta, [t for _, t in tasks]),
        "base_model_line": context.base_model(record, hub_id),
        "method_line": {
            "method": method,
            "adapter": method in PEFT_METHODS,
            "kind": context.run_kind(record),
        },
        "io_intro": {"kind": context.run_kind(record)},
        "license_line": {"license": license, "hub_id": hub_id, "tiny": tiny},
        "provenance": {"git": record.get("git"), "date": record.get("date")},
        "training_data": context.training_data(record, meta),
        "results": context.results(tasks),
        "figures": {"figures": list(figures)},
        "intended_use": context.intended_use(record, meta),
        "limitations": context.limitations(record, tasks),
        "usage": context.usage(record),
        "reproduce": context.reproduce(record, results),
    }


def card_variables(
    run_dir: str | Path,
    record: dict[str, Any],
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    figures: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """Every variable of the card template (besides ``card_data``), as text."""
    contexts = section_contexts(run_dir, record, results, license=license, figures=figures)
    return {
        "model_name": run_name(run_dir),
        "sfm_version": str(record.get("sfm_version", sfm.__version__)),
        "encoding": markdown_table(*context.encoding_table(record)),
        "hyperparameters": markdown_table(*context.hyperparameter_table(record)),
        **{name: section(name, **ctx) for name, ctx in contexts.items()},
    }


def model_card(
    run_dir: str | Path,
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    dataset: str | None = None,
    figures: Sequence[tuple[str, str]] = (),
) -> ModelCard:
    """The model card of a run, from its records and its evaluation results.

    Args:
        run_dir: A run folder written by ``sfm.train`` (holds ``sfm_run.json``).
        results: Evaluations of exactly this run (``sfm eval --model run_dir``).
        license: Licence of the card and the trained weights (the base model's licence still governs).
        dataset: The training data set as a Hub id; default: its folder name.
        figures: ``(caption, relative link)`` of images to show (see :func:`write_model_card`).

    Raises:
        DataError: no run record, or a result that scored other weights (naming it).
    """
    record = read_run(run_dir)
    check_results(run_dir, results)
    data = card_data(run_dir, record, results, license=license, dataset=dataset)
    variables = card_variables(run_dir, record, results, license=license, figures=figures)
    return ModelCard.from_template(data, template_str=TEMPLATE.read_text(encoding="utf-8"), **variables)


def write_model_card(
    run_dir: str | Path,
    results: Sequence[EvalResults],
    out: str | Path | None = None,
    *,
    license: str = DEFAULT_LICENSE,
    dataset: str | None = None,
    figures: bool = True,
) -> Path:
    """Write the card (default ``run_dir/README.md``) and its plots (``figures/`` beside it), each atomically.

    Returns:
        The card's path.
    """
    out = Path(out) if out is not None else Path(run_dir) / "README.md"
    check_results(run_dir, results)  # before drawing anything
    tasks = [t for _, t in latest_tasks(results)]
    figs = draw_figures(tasks, out.parent / FIGURES_DIR, FIGURES_DIR) if figures else []
    card = model_card(run_dir, results, license=license, dataset=dataset, figures=figs)
    return atomic_write_text(out, str(card))


def template_variables() -> set[str]:
    """The variables the card template uses (for the test that every one is supplied)."""
    return templating.variables(TEMPLATE.name)
