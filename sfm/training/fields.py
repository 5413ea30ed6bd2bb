"""The field-model path of ``sfm.train``: forecast windows as arrays -> a continuous or operator model.

:func:`prepare` returns what the shared training loop needs (the :class:`~sfm.training.run_folder.Prepared`
shape): the model, torch datasets of windows, a collator, the run-record fields only field models know, and
``save(out)``. Windows come straight from the Arrow data set (:class:`~sfm.tasks.windows.FieldWindows`: one
preloaded array, an index of windows), and a batch is one gather: :class:`WindowDataset` implements
``__getitems__``, which torch's DataLoader calls with a whole batch of indices, so no per-example Python
objects are built on the training path. Normalization happens inside the model (``FieldIO``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from sfm.errors import ConfigError
from sfm.models.field_config import EncoderSection, FieldsSection, OperatorSection
from sfm.models.field_io import FIELD_MODEL_FILE, FieldSpec
from sfm.physics.io.the_well import normalization_stats
from sfm.tasks.windows import FieldWindows, coefficient_stats, field_stats

#: Batch keys that reach the model's ``forward``; ``sfm_examples`` (trajectory, start) is popped by
#: ``SfmTrainer.compute_loss`` first and names the windows of a batch whose loss is not finite.
BATCH_KEYS = ("context", "coefficients", "target")


class WindowDataset(torch.utils.data.Dataset):
    """Training windows for the Trainer's DataLoader (module docstring).

    Args:
        windows: The windows (targets of ``horizon`` frames).
    """

    def __init__(self, windows: FieldWindows) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {**self.windows[int(i)], "sfm_examples": self.windows.index[int(i)]}

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        """A whole batch by one gather (torch's fetcher calls this instead of ``__getitem__`` per index)."""
        return {**self.windows.batch(indices), "sfm_examples": self.windows.index[np.asarray(indices)]}


class FieldCollator:
    """Batches of windows as tensors: a batch gathered by :meth:`WindowDataset.__getitems__` (a dict) is
    wrapped without a copy; a list of single windows (any other caller) is stacked."""

    def __call__(
        self, features: dict[str, np.ndarray] | list[dict[str, np.ndarray]]
    ) -> dict[str, torch.Tensor]:
        if not isinstance(features, dict):
            features = {k: np.stack([f[k] for f in features]) for k in features[0]}
        batch = {k: torch.from_numpy(np.ascontiguousarray(features[k], dtype=np.float32)) for k in BATCH_KEYS}
        if "sfm_examples" in features:
            batch["sfm_examples"] = torch.from_numpy(np.asarray(features["sfm_examples"], dtype=np.int64))
        return batch


@dataclass
class FieldRun:
    """A field model ready to train (the ``Prepared`` of :mod:`sfm.training.run_folder`)."""

    model: Any
    train_dataset: WindowDataset
    eval_dataset: WindowDataset | None
    collator: FieldCollator
    record: dict[str, Any]
    #: The kind writes its own weights (``sfm.training.run_folder.save_run`` passes it the trained state dict).
    saves_weights: ClassVar[bool] = True

    def save(self, out: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write the weights and ``field_model.json`` into the run folder (each atomically).

        Args:
            out: The folder.
            state_dict: The trained model's whole state dict (gathered from the ranks under DeepSpeed ZeRO-3,
                where the live parameters hold only this rank's shard); default: the model's own.
        """
        if self.record["field_model"]["kind"] == "operator":
            _save_operator(self.model, out, state_dict)
        else:
            self.model.save(out, state_dict=state_dict)


def _save_operator(model: Any, out: Path, state_dict: dict[str, torch.Tensor] | None) -> None:
    """An operator's ``save``, from ``state_dict`` when one is given (the live weights are partitioned)."""
    if state_dict is None:
        model.save(out)
        return
    from sfm.models.operators import OperatorModel

    whole = OperatorModel(model.field_io.spec, model.field_io.fields, model.section, model.name)
    whole.load_state_dict({k: v for k, v in state_dict.items() if k != "_metadata"}, strict=True)
    whole.save(out)


def normalization(windows: FieldWindows) -> tuple[np.ndarray, np.ndarray]:
    """Per-field ``(mean [C], std [C])`` the model normalizes with: the data set's reference statistics when
    its import chose them (The Well's ``stats.yaml``: ``extra.normalization.source == "reference"``, see
    :func:`sfm.physics.io.the_well.normalization_stats`), else those of the training windows' split."""
    meta = windows.meta
    if meta.extra.get("normalization", {}).get("source") == "reference":
        stats = normalization_stats(meta)
        return (
            np.array([stats[f]["mean"] for f in meta.fields], dtype=np.float64),
            np.array([stats[f]["std"] for f in meta.fields], dtype=np.float64),
        )
    return field_stats(windows)


def field_spec(windows: FieldWindows, fmt: Any) -> FieldSpec:
    """The :class:`FieldSpec` of training windows: grid, frames, fields, coefficients, training statistics."""
    mean, std = normalization(windows)
    cmean, cstd = coefficient_stats(windows)
    return FieldSpec(
        n_fields=windows.n_fields,
        space=list(windows.space),
        context_frames=fmt.context_frames,
        horizon=fmt.horizon,
        coefficient_names=list(windows.coefficient_names),
        mean=mean.tolist(),
        std=std.tolist(),
        field_names=list(windows.meta.fields),
        family=windows.meta.family,
        coefficient_mean=cmean.tolist(),
        coefficient_std=cstd.tolist(),
    )


def training_windows(recipe: Any, sources: Any) -> tuple[FieldWindows, FieldWindows | None, Any]:
    """Training (and, with ``training.eval_steps``, validation) windows of a recipe's data, and its format.

    Raises:
        ConfigError: a task other than ``forecast``, equation data or a mixture (before any work).
    """
    from sfm.tasks import get_task_format

    d = recipe.data
    if d.task != "forecast":
        raise ConfigError(
            f"field models (continuous, operator) train on data.task 'forecast', not {d.task!r}"
        )
    if sources.meta is None:
        raise ConfigError("field models train on field data, not on equations (data.equations)")
    if len(sources.train) > 1:
        raise ConfigError("field models train on one field data set; drop data.mixture")
    fmt = get_task_format(d.task, **d.task_options)
    (split, meta), (val, vmeta) = sources.train[0], sources.validation[0]
    train = FieldWindows.from_split(split, meta, fmt, seed=d.seed, max_windows=d.max_train_samples)
    evaluation = None
    if recipe.training.eval_steps:
        evaluation = FieldWindows.from_split(val, vmeta, fmt, seed=d.seed + 1, max_windows=d.max_eval_samples)
    return train, evaluation, fmt


def build_model(recipe: Any, spec: FieldSpec, kind: str) -> Any:
    """The untrained model of kind ``operator`` or ``continuous`` for data ``spec``; a ``name_or_path`` that
    is a field run folder of the same kind warm-starts from it (:func:`warm_start`)."""
    m = recipe.model
    if (Path(m.name_or_path) / FIELD_MODEL_FILE).is_file():
        return warm_start(Path(m.name_or_path), spec, kind)
    fields = getattr(m, "fields", None) or FieldsSection()
    if kind == "operator":
        from sfm.models.operators import build_operator

        return build_operator(spec, m.name_or_path, getattr(m, "operator", None) or OperatorSection(), fields)
    from sfm.models.continuous import build_continuous

    encoder = getattr(m, "encoder", None) or EncoderSection()
    return build_continuous(spec, m, fields=fields, encoder=encoder, peft_section=recipe.peft)


def warm_start(folder: Path, spec: FieldSpec, kind: str) -> Any:
    """A saved field model (encoder, backbone, head or operator weights) to train further on data ``spec``.

    Pretraining on other physics, then fine-tuning, is one model trained twice: the architecture and weights
    come from ``folder``, the normalization statistics and coefficient names from the new data (they are
    buffers rebuilt from the spec, not learned). The input and output channels must match, so families whose
    coefficients differ in number train with ``model.fields.coefficients: false``.

    Raises:
        ConfigError: another kind of model, or channels / grid that do not fit the new data.
    """
    from sfm.models.field_io import FieldIO, load_field_run, read_field_model

    saved = read_field_model(folder)
    if saved["kind"] != kind:
        raise ConfigError(
            f"model.name_or_path {folder}: holds a {saved['kind']} model; this recipe trains a {kind}"
        )
    model = load_field_run(folder).model
    old = model.field_io
    new = FieldIO(spec, old.fields)
    if (new.in_channels, new.out_channels, spec.space) != (old.in_channels, old.out_channels, old.spec.space):
        raise ConfigError(
            f"model.name_or_path {folder}: its model takes {old.in_channels} channels on grid {old.spec.space} "
            f"-> {old.out_channels}; this data gives {new.in_channels} on {spec.space} -> {new.out_channels} "
            "(same context frames, fields and grid needed; coefficients differing in number: "
            "model.fields.coefficients: false)"
        )
    model.field_io = new.to(next(model.parameters()).device)
    return model.train()


def _field_model_record(recipe: Any, model: Any, spec: FieldSpec, kind: str) -> dict[str, Any]:
    """The run record's ``field_model``: what ``field_model.json`` will say (written again by ``save``)."""
    from dataclasses import asdict

    if kind == "operator":
        return model.field_model()
    m = recipe.model
    return {
        "kind": kind,
        "spec": spec.to_dict(),
        "fields": asdict(getattr(m, "fields", None) or FieldsSection()),
        "encoder": asdict(getattr(m, "encoder", None) or EncoderSection()),
        "backbone": m.name_or_path,
    }


def prepare(recipe: Any, sources: Any, out: Path, progress: bool = True) -> FieldRun:
    """Windows, model and collator of a continuous or operator recipe.

    Args:
        recipe: The :class:`~sfm.training.recipe.Recipe`.
        sources: Its loaded data (:func:`sfm.training.data.load_sources`).
        out: The run folder (field models write nothing before training).
        progress: Unused (window indexing takes milliseconds); kept for the shared signature.

    Raises:
        ConfigError: the recipe's data or sizes do not fit a field model (one line, before training).
    """
    from sfm.training.recipe import model_kind

    kind = model_kind(recipe.model)
    if kind == "token":
        raise ConfigError(
            "sfm.training.fields.prepare builds continuous and operator models, not token models"
        )
    train, evaluation, fmt = training_windows(recipe, sources)
    spec = field_spec(train, fmt)
    model = build_model(recipe, spec, kind)
    field_model = _field_model_record(recipe, model, spec, kind)
    record = {
        "field_model": field_model,
        "data": {
            "num_train_windows": len(train),
            "num_eval_windows": len(evaluation) if evaluation is not None else 0,
            "num_train_trajectories": int(train.data.shape[0]),
        },
    }
    if kind == "continuous":
        record["base_model"] = recipe.model.name_or_path
    eval_ds = WindowDataset(evaluation) if evaluation is not None else None
    return FieldRun(model, WindowDataset(train), eval_ds, FieldCollator(), record)


__all__ = [
    "BATCH_KEYS",
    "FieldCollator",
    "FieldRun",
    "WindowDataset",
    "build_model",
    "field_spec",
    "prepare",
    "training_windows",
]
