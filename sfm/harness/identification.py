"""PDE identification: name the PDE family and its coefficients from a few frames, scored beside baselines.

Examples are held-out trajectories of one or several field data sets (the task's ``data`` plus
``options.sources``, each generated and cached like ``data``), taken in turn from each source so that
``limit`` keeps the mixture balanced. Each shows the first ``frames`` frames (see
:class:`~sfm.tasks.pde_identification.PdeIdentification`). The model answers in free text (nothing is
constrained but the length); the answer is read back tolerantly and scored with ``family_accuracy`` and,
on the examples whose family is right, ``coef_rel_error`` (also reported per coefficient and per family in
``extra``). Validity is the fraction of answers that parsed.

Baseline ``majority``: the most frequent family of the sources' training splits, with the training mean of
that family's coefficients -- what a model that ignores the frames would best answer.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import ConfigError
from sfm.harness.compat import check_data, check_format
from sfm.harness.context import EvalContext, load_eval_data
from sfm.harness.results import MetricValue, Scores, TaskResult
from sfm.harness.scoring import metric_value, new_result, sharded
from sfm.registry import BASELINES, FAMILIES
from sfm.tasks.pde_identification import Identified

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask

METRICS_OF_FAMILY = ("family_accuracy", "coef_rel_error")


@BASELINES.register(
    "majority",
    family="pde_identification",
    description="most frequent training family with its training-mean coefficients",
)
def majority(families: list[str], coefficients: list[dict[str, float]]) -> Identified:
    """The answer that ignores the frames: the training split's most frequent family (ties: first by name)
    and the mean of each of that family's coefficients over its training trajectories."""
    if not families:
        raise ConfigError("baseline 'majority' needs training trajectories (the train splits are empty)")
    counts = Counter(families)
    family = min(counts, key=lambda f: (-counts[f], f))
    rows = [c for f, c in zip(families, coefficients) if f == family]
    names = sorted({k for c in rows for k in c})
    return Identified(family, {k: float(np.mean([c[k] for c in rows if k in c])) for k in names}, True)


@dataclass
class IdentificationOptions:
    """``options`` of a pde_identification task.

    Attributes:
        sources: Further data sets, each an ``EvalData`` mapping (``simulator``, ``params``,
            ``num_samples``, ``seed``, ``split`` or ``path``); with the task's ``data`` they form the mixture.
    """

    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class IdentificationSet:
    """Held-out examples of the sources, and the training answers the baselines learn from.

    Attributes:
        frames: Per example, the frames a prompt shows ``[frames, C, *space]``.
        metas: Per example, its data set's metadata. families / coefficients: Per example, the truth.
        source: Per example, the source index. trajectory: Its row in that source's split.
        train_families / train_coefficients: Every training trajectory's answer, over all sources.
    """

    frames: list[np.ndarray]
    metas: list[Any]
    families: list[str]
    coefficients: list[dict[str, float]]
    source: np.ndarray
    trajectory: np.ndarray
    train_families: list[str]
    train_coefficients: list[dict[str, float]]

    def __len__(self) -> int:
        return len(self.families)


def options_of(task: EvalTask) -> IdentificationOptions:
    """The task's ``options``, checked (unknown keys name the closest)."""
    from sfm.config import from_dict

    return from_dict(IdentificationOptions, task.options, where=f"{task.task}: options")


def load_sources(task: EvalTask, fieldset: Any) -> list[Any]:
    """The task's field data sets: ``fieldset`` (its ``data``) and each of ``options.sources``, checked to
    share fields (one codec encodes them all)."""
    from sfm.config import from_dict
    from sfm.harness.tasks import EvalData

    out = [(task.data.split, fieldset)]
    for i, spec in enumerate(options_of(task).sources):
        d = from_dict(EvalData, spec, where=f"{task.task}: options.sources[{i}]")
        out.append((d.split, load_eval_data(d)))
    fields = list(fieldset.meta.fields)
    for i, (_, fs) in enumerate(out[1:]):
        if list(fs.meta.fields) != fields:
            raise ConfigError(
                f"{task.task}: options.sources[{i}] ({fs.meta.family}) has fields {fs.meta.fields}, the task's "
                f"data ({fieldset.meta.family}) has {fields}; the sources of a mixture need the same fields"
            )
    return out


def build_identification_set(
    sources: list[tuple[str, Any]], fmt: Any, limit: int | None = None
) -> IdentificationSet:
    """Examples of ``(split, fieldset)`` sources, taken in turn from each (so ``limit`` keeps them balanced)."""
    rows = [(k, fs, fs.split(split)) for k, (split, fs) in enumerate(sources)]
    order = [(k, i) for i in range(max(len(ds) for _, _, ds in rows)) for k, _, ds in rows if i < len(ds)]
    if limit is not None:
        order = order[:limit]
    if not order:
        raise ConfigError("pde_identification: the evaluation splits are empty")
    frames, metas, families, coefficients = [], [], [], []
    for k, i in order:
        _, fs, ds = rows[k]
        row = ds[i]
        frames.append(fmt.eval_frames(row, fs.meta))
        metas.append(fs.meta)
        families.append(fs.meta.family)
        coefficients.append(fmt.coefficients(row, fs.meta))
    train_families, train_coefficients = [], []
    for _, fs, _ in rows:
        columns = {k: fs.column("train", k) for k in fs.meta.varying}  # float64, as stored
        fixed = {k: float(v) for k, v in fs.meta.coefficients.items() if isinstance(v, int | float)}
        for j in range(len(fs.split("train"))):
            train_families.append(fs.meta.family)
            train_coefficients.append({**fixed, **{k: float(v[j]) for k, v in columns.items()}})
    return IdentificationSet(
        frames,
        metas,
        families,
        coefficients,
        np.array([k for k, _ in order]),
        np.array([i for _, i in order]),
        train_families,
        train_coefficients,
    )


def model_answers(
    loaded: Any, fmt: Any, iset: IdentificationSet, *, batch_size: int, state: Any = None
) -> tuple[list[str], list[Identified]]:
    """The model's decoded answers (text) and what they parse to, one per example."""
    from sfm.harness import generate as gen  # attribute access: tests replace gen.generate

    sci = loaded.sci
    prompts = [fmt.prompt(f, m, sci) for f, m in zip(iset.frames, iset.metas)]

    def part(idx: np.ndarray) -> list[list[int]]:
        mine = [prompts[i] for i in idx]
        return gen.generate(loaded, mine, max_new_tokens=fmt.max_answer_tokens, batch_size=batch_size)

    outs = sharded(part, len(prompts), state)
    texts = [fmt.decode(o, sci) for o in outs]
    return texts, [fmt.parse(t) for t in texts]


def _plain(v: Any) -> dict[str, Any]:
    return {"value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high, "n": v.n}


def score_answers(
    answers: list[Identified], iset: IdentificationSet, metrics: list[str], *, n_boot: int, seed: int
) -> tuple[Scores, dict[str, Any], dict[str, np.ndarray]]:
    """Scores of one predictor's answers, the per-coefficient/per-family breakdown, and per-sample values.

    ``coef_rel_error`` (overall and per coefficient) is computed on the examples whose family is right; with
    none right it has no value (``None``, ``n = 0``).
    """
    from sfm.metrics.identification import coef_rel_error, coefficient_errors, family_accuracy

    acc = family_accuracy([a.family if a.valid else None for a in answers], iset.families)
    right = np.flatnonzero(acc == 1.0)
    pred_coefs = [answers[i].coefficients for i in right]
    true_coefs = [iset.coefficients[i] for i in right]
    per_sample = {"family_accuracy": acc, "coef_rel_error": np.full(len(answers), np.nan)}
    out = Scores()
    breakdown: dict[str, Any] = {"per_coefficient": {}, "per_family": {}}
    if right.size:
        per_sample["coef_rel_error"][right] = coef_rel_error(pred_coefs, true_coefs)
        for name, errs in coefficient_errors(pred_coefs, true_coefs).items():
            errs = errs[np.isfinite(errs)]
            if errs.size:
                breakdown["per_coefficient"][name] = _plain(
                    metric_value("coef_rel_error", errs, n_boot, seed)
                )
    for m in metrics:
        vals = per_sample[m][np.isfinite(per_sample[m])]
        out.metrics[m] = metric_value(m, vals, n_boot, seed) if vals.size else MetricValue(None, n=0)
    fams = np.array(iset.families)
    breakdown["per_family"] = {f: float(acc[fams == f].mean()) for f in sorted(set(iset.families))}
    return out, breakdown, per_sample


def _fingerprint(sources: list[tuple[str, Any]]) -> str:
    from sfm.utils.provenance import fingerprint_dir

    prints = [f"{split}:{fingerprint_dir(fs.path, ('*.json',))}" for split, fs in sources]
    return (
        prints[0].split(":", 1)[1]
        if len(prints) == 1
        else hashlib.sha256(json.dumps(prints).encode()).hexdigest()[:16]
    )


def _format(task: EvalTask) -> Any:
    """The task's format, checked to be a pde_identification one that scores only this family's metrics."""
    from sfm.tasks import get_task_format
    from sfm.tasks.pde_identification import PdeIdentification

    fmt = get_task_format(task.task_format, **task.format)
    if not isinstance(fmt, PdeIdentification):
        raise ConfigError(f"{task.task}: a pde_identification task needs task_format: pde_identification")
    unknown = [m for m in task.metrics if m not in METRICS_OF_FAMILY]
    if unknown:
        raise ConfigError(
            f"{task.task}: pde_identification scores {', '.join(METRICS_OF_FAMILY)}; not {unknown}"
        )
    return fmt


@FAMILIES.register(
    "pde_identification",
    answers="pde_identification",
    needs_data=True,
    description="name the PDE family and its coefficients from a few frames",
)
def run(
    task: EvalTask, loaded: Any, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run a pde_identification task: its result, per-sample rows, and no example arrays (see below)."""
    fmt = _format(task)
    check_format(task, loaded, fmt)
    sources = load_sources(task, load_eval_data(task.data))
    check_data(task, loaded, list(sources[0][1].meta.fields))  # the sources share fields (load_sources)
    iset = build_identification_set(sources, fmt, ctx.limit_for(task))
    answers: dict[str, list[Identified]] = {}
    texts: list[str] = []
    if loaded is not None:
        texts, answers["model"] = model_answers(loaded, fmt, iset, batch_size=ctx.batch_size, state=ctx.state)
    for b in task.baselines:
        answers[b] = [BASELINES.get(b)(iset.train_families, iset.train_coefficients)] * len(iset)
    result = new_result(task, n_examples=len(iset), data_fingerprint=_fingerprint(sources))
    per: dict[str, dict[str, np.ndarray]] = {}
    breakdowns: dict[str, Any] = {}
    for p, ans in answers.items():
        scores, breakdowns[p], per[p] = score_answers(
            ans, iset, task.metrics, n_boot=task.bootstrap, seed=ctx.seed
        )
        if p == "model":
            result.model, result.validity = scores, float(np.mean([a.valid for a in ans]))
            result.validity_note = "fraction of the model's answers that parsed"
        else:
            result.baselines[p] = scores
    result.extra = {
        "families": dict(Counter(iset.families)),
        "per_coefficient": {p: b["per_coefficient"] for p, b in breakdowns.items()},
        "per_family": {p: b["per_family"] for p, b in breakdowns.items()},
    }
    # No example arrays: the leaderboard plots predicted against true *fields*, and an answer here is text
    # (every answer is in the per-sample rows).
    return result, _rows(iset, answers, texts, per), {}


def _rows(
    iset: IdentificationSet,
    answers: dict[str, list[Identified]],
    texts: list[str],
    per: dict[str, dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    rows = []
    for i in range(len(iset)):
        row: dict[str, Any] = {
            "example": i,
            "source": int(iset.source[i]),
            "trajectory": int(iset.trajectory[i]),
            "family": iset.families[i],
            "coefficients": iset.coefficients[i],
        }
        for p, ans in answers.items():
            a = ans[i]
            row[f"{p}_family"] = a.family
            row[f"{p}_coefficients"] = a.coefficients
            for m, vals in per[p].items():
                row[f"{p}_{m}"] = float(vals[i]) if np.isfinite(vals[i]) else None
        if "model" in answers:
            row["model_text"] = texts[i]
            row["model_valid"] = bool(answers["model"][i].valid)
        rows.append(row)
    return rows
