"""Merge a trained LoRA/DoRA adapter into its base: a plain transformers model that needs neither PEFT nor sfm.

The run is loaded with sfm's own loader (:func:`sfm.models.run.load_model`), which resizes the base's
embeddings to the science tokenizer before the adapter is applied, so the added tokens' trained rows
(``peft.new_tokens: rows`` or ``embedding``) are merged along with the low-rank updates. The result is saved
beside the tokenizer, ``sfm_encoding.json`` and the run record (marked ``merged``), so ``sfm eval`` and
``sfm card`` treat it like any run folder: a folder without ``adapter_config.json`` holds a full model.

Precision: the update ``W + (alpha/r) B A`` is added in the dtype the base loads in (bf16 for most Hub
checkpoints), as PEFT's ``merge_and_unload`` does; the merged weights then round like the base's own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sfm.errors import DataError


def merge_adapter(
    run_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False, device: str = "cpu"
) -> Path:
    """Merge the adapter of an ``sfm.train`` run folder into its base and save the full model to ``out_dir``.

    Args:
        run_dir: A run folder with ``adapter_config.json``, the tokenizer and ``sfm_run.json``.
        out_dir: Destination; written atomically (a failed merge leaves nothing there).
        overwrite: Replace a non-empty ``out_dir``.
        device: Where the merge runs (``cpu`` needs host memory for the whole model in its dtype).

    Returns:
        ``out_dir``.

    Raises:
        DataError: ``run_dir`` is not a run folder, or holds no adapter (a full or freeze fine-tune, or an
            already merged model).
        FileExistsError: ``out_dir`` exists, is not empty, and ``overwrite`` is false.
    """
    from sfm.models.run import RunRecord, load_model
    from sfm.utils.io import atomic_dir
    from sfm.utils.provenance import now_iso

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    record = RunRecord.read(run_dir)  # a folder that is not a run fails here, before anything loads
    if record.kind != "token":
        raise DataError(f"{run_dir}: a {record.kind} run has no adapter to merge")
    if not (run_dir / "adapter_config.json").is_file():
        raise DataError(
            f"{run_dir}: no adapter_config.json, so it holds a full model already; nothing to merge"
        )
    if out_dir.resolve() == run_dir.resolve():
        raise DataError(f"--out {out_dir}: choose a folder other than the run folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass --overwrite to replace it)")

    loaded = load_model(run_dir, device=device, merge=True)
    model = loaded.model
    _check_plain(model, run_dir)
    merged = replace(
        loaded.record,
        merged={
            "from": str(run_dir.resolve()),
            "peft_method": record.recipe.get("peft", {}).get("method"),
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "date": now_iso(),
        },
        parameters={"trainable": 0, "total": sum(p.numel() for p in model.parameters())},
    )
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        loaded.sci.save(tmp)
        merged.save(tmp)
    return out_dir


def _check_plain(model: Any, run_dir: Path) -> None:
    """Refuse to save a model that still carries PEFT layers (a merge that silently did nothing)."""
    leftovers = sorted({type(m).__name__ for m in model.modules() if type(m).__module__.startswith("peft.")})
    if leftovers:
        raise DataError(f"{run_dir}: merging left PEFT modules in the model ({', '.join(leftovers)})")
