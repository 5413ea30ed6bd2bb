"""Recipes: YAML files that map 1:1 onto these dataclasses.

A recipe says *what* to train (data, model, PEFT method, hyperparameters, evaluation); the accelerate config
passed to ``accelerate launch`` says *on what*. Every key is checked when the recipe is loaded — unknown keys,
wrong types and unknown registry names fail with one line before any work starts::

    sfm validate recipes/quickstart.yaml
    python -m sfm.train recipes/quickstart.yaml --training.learning_rate 1e-3 --max_steps 20
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sfm import config
from sfm.data.equations import EquationSpec
from sfm.errors import ConfigError
from sfm.models.field_config import EncoderSection, FieldsSection, OperatorSection
from sfm.registry import ENCODINGS, SIMULATORS, TASK_FORMATS

#: ``model.name_or_path`` of a neural operator starts with this (``operator:fno``).
OPERATOR_PREFIX = "operator:"
# Loggers ``training.report_to`` may name, and the package each needs (checked when the recipe loads, not
# when the Trainer starts): TensorBoard is an extra (``sfm[tensorboard]``), metrics.jsonl is always written.
_REPORTERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


@dataclass
class MixtureSource:
    """Another field data set mixed into the training examples (same keys as the ``data`` section's)."""

    path: str | None = None
    simulator: str | None = field(default=None, metadata={"registry": SIMULATORS})
    params: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.path is None and self.simulator is None:
            raise ValueError("a mixture source needs path or simulator")
        _check_simulator(self.simulator, self.params, "data.mixture")


def _check_simulator(simulator: str | None, params: dict[str, Any], key: str) -> None:
    """Parameter names, ranges and resolution limits, checked before any work starts."""
    if simulator is None:
        return
    from sfm.physics.simulators import get_simulator

    try:
        if "strict" in params:  # a keyword of get_simulator, not a parameter: data must be resolved
            raise ConfigError(f"{simulator}: unknown parameter 'strict'")
        get_simulator(simulator, **params)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None


@dataclass
class DataSection:
    """Where the field data comes from and how it becomes tokens.

    Attributes:
        path: A field data set folder (``sfm data generate/import``). Relative paths resolve against
            ``$SFM_HOME`` (default: the current folder). If it is missing and ``simulator`` is set, it is
            generated there first (and reused by later runs).
        simulator: Simulator that builds the data when ``path`` does not exist yet.
        params: Simulator parameters (numbers or ``[low, high]`` ranges).
        num_samples: Trajectories to generate.
        seed: Data seed (trajectories and splits).
        num_proc: Processes for generation and tokenization.
        task: Task format (``forecast``, ``pde_identification``, ``symbolic_regression``).
        task_options: Options of the task format (checked against it).
        encoding: Number encoding (``bins``, ``sme``, ``digits``).
        encoding_options: Options of the encoding (e.g. ``n_bins``).
        train_trajectories: Use only the first N training trajectories (data-size studies: every N sees a
            prefix of the same ordered split, so larger N nests smaller N).
        max_train_samples: Cap on training examples (after windowing), for quick runs.
        max_eval_samples: Cap on validation examples.
        max_length: Examples longer than this many tokens are an error (never silently cut: a truncated
            target would train the model on half a frame).
        mixture: More field data sets whose examples are mixed in (e.g. other PDE families for
            ``pde_identification``); they need the same fields as the main one.
        equations: An equation data set (``symbolic_regression``) instead of field data: ``source``
            (``generated`` or ``feynman``), ``num_equations``, ``num_points``, ``variables``...
    """

    path: str | None = None
    simulator: str | None = field(default=None, metadata={"registry": SIMULATORS})
    params: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 64
    seed: int = 0
    num_proc: int = 1
    task: str = field(default="forecast", metadata={"registry": TASK_FORMATS})
    task_options: dict[str, Any] = field(default_factory=dict)
    encoding: str = field(default="bins", metadata={"registry": ENCODINGS})
    encoding_options: dict[str, Any] = field(default_factory=dict)
    train_trajectories: int | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = 256
    max_length: int = 4096
    mixture: list[MixtureSource] = field(default_factory=list)
    equations: EquationSpec | None = None

    def __post_init__(self) -> None:
        if self.equations is not None:
            if self.simulator is not None or self.mixture:
                raise ValueError("data.equations replaces field data: drop data.simulator and data.mixture")
            if self.task != "symbolic_regression":
                raise ValueError(f"data.equations needs task 'symbolic_regression', not {self.task!r}")
        elif self.path is None and self.simulator is None:
            raise ValueError("set data.path (an existing data set) or data.simulator (to generate one)")
        if self.train_trajectories is not None and self.train_trajectories < 1:
            raise ValueError("train_trajectories must be >= 1")
        if self.num_samples < 3:
            raise ValueError("num_samples must be >= 3 (train, validation and test need one each)")


@dataclass
class ModelSection:
    """The backbone.

    Attributes:
        name_or_path: A tiny backbone name (``tiny-llama``...), a Hub id or a local folder.
        tiny: Config overrides for a tiny backbone (``hidden_size: 128``...).
        revision: Hub revision (commit, tag or branch) to pin.
        torch_dtype: Weights dtype when loading.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``; None lets transformers choose.
        trust_remote_code: Run model code from the Hub. Off unless the recipe asks.
        embedding_init: How the rows of added tokens start (``mean`` or ``ordinal``).
        tokenizer_vocab_size: Vocabulary of the BPE trained for a tiny backbone.
        init: ``pretrained`` loads the weights; ``random`` builds the same architecture with random weights
            (the from-scratch arm of a scaling study; tiny backbones are always random).
        field_io: ``tokens`` (fields as number tokens, the token path) or ``continuous`` (a field encoder
            feeds the backbone through ``inputs_embeds`` and a regression head reads the next frame out).
            Ignored by neural operators (``name_or_path: operator:fno``).
        fields: How fields go in and out of continuous and operator models.
        encoder: The field encoder and readout of a continuous model.
        operator: The neural operator's sizes.
    """

    name_or_path: str = "tiny-llama"
    tiny: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None
    torch_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: str | None = None
    trust_remote_code: bool = False
    embedding_init: Literal["mean", "ordinal"] = "mean"
    tokenizer_vocab_size: int = 384
    init: Literal["pretrained", "random"] = "pretrained"
    field_io: Literal["tokens", "continuous"] = "tokens"
    fields: FieldsSection = field(default_factory=FieldsSection)
    encoder: EncoderSection = field(default_factory=EncoderSection)
    operator: OperatorSection = field(default_factory=OperatorSection)


def model_kind(model: ModelSection) -> str:
    """The run kind a ``model`` section trains: ``operator``, ``continuous`` or ``token``."""
    if model.name_or_path.startswith(OPERATOR_PREFIX):
        return "operator"
    return "continuous" if model.field_io == "continuous" else "token"


@dataclass
class PeftSection:
    """The fine-tuning method.

    Attributes:
        method: ``lora``, ``dora``, ``rslora``, ``qlora`` (4-bit base, CUDA only), ``full`` (all weights) or
            ``freeze`` (train only ``trainable_modules``).
        r: LoRA rank.
        alpha: LoRA scaling numerator (the update is scaled by alpha/r, or alpha/sqrt(r) for rsLoRA).
        dropout: Dropout on the LoRA input.
        target_modules: Modules that get adapters; empty = the family's default (all attention and MLP
            linears), ``all-linear`` = every linear layer.
        new_tokens: How the rows of the added science tokens train: ``rows`` (only those rows, in the input
            embedding and the output head), ``embedding`` (the whole embedding and head) or ``frozen``.
        trainable_modules: With ``freeze``: name fragments of the modules left trainable.
    """

    method: Literal["lora", "dora", "rslora", "qlora", "full", "freeze"] = "lora"
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] | str | None = None
    new_tokens: Literal["rows", "embedding", "frozen"] = "rows"
    trainable_modules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.method == "freeze" and not self.trainable_modules:
            raise ValueError("method 'freeze' needs trainable_modules (e.g. ['layers.1.', 'norm'])")
        if self.r < 1:
            raise ValueError("r must be >= 1")


@dataclass
class TrainingSection:
    """Optimization and checkpointing (names as in ``transformers.TrainingArguments``).

    Attributes:
        output_dir: Run folder (adapter, tokenizer, checkpoints, logs). An existing run folder resumes.
        max_steps: Optimizer steps (-1: ``num_train_epochs`` decides).
        max_time_s: Training-time budget in seconds: the run stops after the first step that takes the
            cumulative training time past it (kept across resumes); None = no time limit. The run record's
            ``budget.stopped_by`` says which limit ended the run.
        global_batch_size: If set, must equal per-device batch x gradient accumulation x world size; a
            mismatch is an error naming the three numbers (so a launch on a different GPU count cannot
            silently change the optimization).
        warmup_ratio: Fraction of the training steps spent on a linear learning-rate warmup, in [0, 1).
        report_to: Loggers besides ``metrics.jsonl`` (always written): ``tensorboard`` (needs
            ``sfm[tensorboard]``; events go to ``<output_dir>/logs``), ``wandb``...; empty = none.
        batching: How token examples of different lengths become batches (token models; see
            :mod:`sfm.training.collators`): ``padding`` (one example a row), ``group_by_length`` (rows of
            similar lengths drawn together), ``packing`` (examples bin-packed into rows as long as the longest;
            the CPU and SDPA choice), ``flatten`` (the batch in one row; the flash-attention choice). Packed
            layouts give the padded loss exactly; ``group_by_length`` changes the order examples are seen in.
    """

    output_dir: str = "runs/sfm"
    max_steps: int = -1
    max_time_s: float | None = None
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    global_batch_size: int | None = None
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    eval_steps: int | None = None
    save_steps: int = 500
    save_total_limit: int | None = 2
    report_to: list[str] = field(default_factory=list)
    dataloader_num_workers: int = 0
    use_cpu: bool = False
    batching: Literal["padding", "group_by_length", "packing", "flatten"] = "padding"

    def __post_init__(self) -> None:
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("set max_steps > 0 or num_train_epochs > 0")
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are exclusive")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ValueError("max_time_s must be > 0 (or unset)")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1): a fraction of the training steps")
        _check_reporters(self.report_to)


def _check_reporters(report_to: list[str]) -> None:
    """Each logger in ``report_to`` has its package installed (else the Trainer would fail after the data)."""
    import importlib.util

    for name in report_to:
        packages = _REPORTERS.get(name)
        if packages and not any(importlib.util.find_spec(p) for p in packages):
            extra = " (pip install 'sfm[tensorboard]')" if name == "tensorboard" else ""
            raise ValueError(f"report_to {name!r} needs the {packages[0]} package{extra}, or drop it")


@dataclass
class EvaluationSection:
    """What to evaluate after training (``sfm eval`` with these tasks).

    Attributes:
        tasks: Eval task names (``eval/tasks``), run after training on the main process; empty = none.
        limit: Examples per task.
        batch_size: Generation batch size.
    """

    tasks: list[str] = field(default_factory=list)
    limit: int | None = None
    batch_size: int = 8


@dataclass
class Recipe:
    """A whole fine-tuning recipe."""

    data: DataSection
    model: ModelSection = field(default_factory=ModelSection)
    peft: PeftSection = field(default_factory=PeftSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    def __post_init__(self) -> None:
        from sfm.tasks import get_task_format
        from sfm.tokenize.numbers import get_encoding

        # Build the task and encoding once so their options are checked at load time, not after an hour.
        try:
            get_task_format(self.data.task, **self.data.task_options)
        except ConfigError as exc:
            raise ConfigError(f"data.task_options: {exc}") from None
        try:
            get_encoding(self.data.encoding, **self.data.encoding_options)
        except ConfigError as exc:
            raise ConfigError(f"data.encoding_options: {exc}") from None
        _check_simulator(self.data.simulator, self.data.params, "data.params")
        _check_batching(self.training.batching, self.model)


def _check_batching(batching: str, model: ModelSection) -> None:
    """Only token models have variable-length examples, and only decoder-only backbones pack them."""
    if batching == "padding":
        return
    kind = model_kind(model)
    if kind != "token":
        raise ConfigError(
            f"training.batching: {batching!r} is for token models; {kind} models train on fixed-size "
            "field windows (use 'padding')"
        )
    from sfm.models.backbones import is_tiny
    from sfm.registry import BACKBONES

    tiny = BACKBONES.get(model.name_or_path) if is_tiny(model.name_or_path) else None
    if tiny is not None and tiny.seq2seq and batching in ("packing", "flatten"):
        raise ConfigError(
            f"training.batching: {batching!r} packs decoder-only sequences; the encoder-decoder "
            f"{model.name_or_path} takes 'padding' or 'group_by_length'"
        )


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load and check a recipe, applying ``--key value`` overrides.

    Raises:
        ConfigError: one line naming the offending key and the closest valid one.
    """
    recipe = config.load(Recipe, path, overrides)
    if recipe.training.global_batch_size is not None and recipe.training.global_batch_size < 1:
        raise ConfigError(f"{path}: training.global_batch_size must be >= 1")
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain data of a recipe (as recorded beside every run)."""
    return config.to_dict(recipe)
