"""The run folder: one module owns its file names, its record and how a run is loaded back.

``python -m sfm.train`` writes a run folder; ``sfm eval``, ``sfm merge``, ``sfm card`` and the scaling
studies read it. Whatever the model kind, a finished run folder holds:

* ``sfm_run.json`` — the :class:`RunRecord` (recipe, kind, data, parameters, training outcome, budget,
  provenance), written last, so its presence means the run finished;
* the weights (safetensors): a PEFT adapter (``adapter_model.safetensors`` + ``adapter_config.json``) or a
  full model for token runs; ``field_model.json`` + weights for continuous and operator runs;
* token runs: the tokenizer and ``sfm_encoding.json``; tiny backbones also their initial weights in
  ``base/`` (the adapter's ``base_model_name_or_path`` points there, so plain ``peft`` loads the run).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from sfm.errors import DataError
from sfm.utils.io import read_json

RUN_FILE = "sfm_run.json"
BASE_DIR = "base"
KINDS = ("token", "continuous", "operator")
BUDGET_KEYS = ("steps", "examples_seen", "train_seconds")

Kind = Literal["token", "continuous", "operator"]

# Sections that hold a JSON object (a wrong type there is a corrupt record, caught when it is read).
_DICT_FIELDS = ("recipe", "data", "task", "encoding", "parameters", "train", "budget", "distributed")


@dataclass
class RunRecord:
    """What ``sfm_run.json`` holds.

    Attributes:
        recipe: The recipe as plain data (``sfm.training.recipe.recipe_to_dict``).
        kind: ``token`` (fields as number tokens), ``continuous`` (field encoder -> backbone -> head) or
            ``operator`` (a neural operator). Records written before kinds existed read as ``token``.
        recipe_path: The recipe file the run was started from.
        base_model: The backbone (tiny name, Hub id or folder); None for operators.
        tiny_base: The backbone was a tiny one built from a config (its weights are in ``base/``).
        data: The training data (path, family, fields, trajectories, ``num_train_examples``...).
        task: Task format ``{"name", "options"}``.
        encoding: The number encoding (``FieldCodec.config()``) of a token run; empty for field models.
        parameters: ``{"trainable", "total"}``.
        train: ``{"steps", "loss_history", "train_loss", "eval_loss", "runtime_s", "tokens"}``.
        budget: ``{"steps", "examples_seen", "train_seconds"}`` spent, plus ``stopped_by`` (``max_steps``,
            ``max_time_s`` or ``epochs``) and the limits set (``max_steps``, ``max_time_s``).
        distributed: ``{"world_size", "distributed_type", "zero_stage", "device", ...}``.
        field_model: Config of a field model's encoder / head / operator (continuous and operator runs).
        merged: Set by ``sfm merge``: where the adapter came from.
        sfm_version: sfm that trained the run. git: Its commit. date: When the record was written.
        extra: Keys this sfm does not know (written by a newer one), kept on a read-write round trip.
    """

    recipe: dict[str, Any]
    kind: Kind = "token"
    recipe_path: str | None = None
    base_model: str | None = None
    tiny_base: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    distributed: dict[str, Any] = field(default_factory=dict)
    field_model: dict[str, Any] | None = None
    merged: dict[str, Any] | None = None
    sfm_version: str | None = None
    git: str | None = None
    date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"run record: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``extra`` keys merged back at the top level; unset optional sections left out)."""
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        for key in ("field_model", "merged"):
            if out[key] is None:
                del out[key]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "run record") -> RunRecord:
        """A record from its JSON form.

        Raises:
            DataError: not an object, no ``recipe``, a section of the wrong type or an unknown kind.
        """
        if not isinstance(data, dict) or "recipe" not in data:
            raise DataError(f"{where}: not an sfm run record (no 'recipe')")
        known = {f.name for f in fields(cls)} - {"extra"}
        for key in _DICT_FIELDS:
            if key in data and not isinstance(data[key], dict):
                raise DataError(f"{where}: '{key}' should be an object, not {type(data[key]).__name__}")
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            return cls(**values, extra=extra)
        except DataError as exc:
            raise DataError(f"{where}: {str(exc).removeprefix('run record: ')}") from None

    @classmethod
    def read(cls, folder: str | Path) -> RunRecord:
        """``sfm_run.json`` of run folder ``folder``.

        Raises:
            DataError: a missing, unreadable or corrupt record (one line naming the file).
        """
        path = Path(folder) / RUN_FILE
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise DataError(
                f"{path}: no readable run record ({folder} is not a run folder written by sfm.train)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: no readable run record ({exc})") from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: no readable run record (not valid JSON: {exc.msg}, line {exc.lineno})"
            ) from None
        return cls.from_dict(data, where=str(path))

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/sfm_run.json`` atomically (a reader never sees half a record); returns its path."""
        from sfm.utils.io import atomic_write_json

        return atomic_write_json(Path(folder) / RUN_FILE, self.to_dict())


def is_run_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a run record (the run finished)."""
    return (Path(folder) / RUN_FILE).is_file()


class LoadedModel:
    """A trained token run in evaluation mode: model, science tokenizer and its run record."""

    def __init__(
        self, model: Any, sci: Any, record: RunRecord | None = None, path: Path | None = None
    ) -> None:
        from sfm.models.backbones import is_seq2seq

        self.model = model
        self.sci = sci
        self.record = record
        self.path = path
        self.seq2seq = is_seq2seq(model)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


def load_model(
    folder: str | Path, *, device: str | None = None, trust_remote_code: bool = False, merge: bool = False
) -> Any:
    """Load a run folder written by ``sfm.train``, whatever its kind.

    Token runs come back as a :class:`LoadedModel` (adapter or full model + tokenizer); continuous and
    operator runs as the ``FieldPredictor`` of :func:`sfm.models.field_io.load_field_run`. For a token run
    the base model is the run's ``base/`` folder for tiny backbones, else the recorded Hub id or path.
    Weights load from safetensors only.

    Raises:
        DataError: not a run folder, or a corrupt record.
    """
    record = RunRecord.read(folder)
    if record.kind != "token":
        from sfm.models.field_io import load_field_run  # torch-heavy field models load only when asked

        return load_field_run(folder, record)
    return _load_token_run(Path(folder), record, device, trust_remote_code, merge)


def _load_token_run(
    folder: Path, record: RunRecord, device: str | None, trust_remote_code: bool, merge: bool
) -> LoadedModel:
    import torch
    import transformers

    from sfm.models.backbones import is_seq2seq
    from sfm.tokenize.vocab import ScienceTokenizer

    sci = ScienceTokenizer.load(folder, trust_remote_code=trust_remote_code)
    adapter = (folder / "adapter_config.json").is_file()
    base_path = folder / BASE_DIR if (folder / BASE_DIR).is_dir() else record.base_model
    source = base_path if adapter else folder
    config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    auto = transformers.AutoModelForSeq2SeqLM if is_seq2seq(config) else transformers.AutoModelForCausalLM
    model = auto.from_pretrained(source, trust_remote_code=trust_remote_code, use_safetensors=True)
    if adapter:
        from peft import PeftModel

        if model.get_input_embeddings().weight.shape[0] != len(sci):
            model.resize_token_embeddings(len(sci), mean_resizing=False)  # rows come from the adapter
        model = PeftModel.from_pretrained(model, folder)
        if merge:
            model = model.merge_and_unload()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return LoadedModel(model, sci, record, folder)
