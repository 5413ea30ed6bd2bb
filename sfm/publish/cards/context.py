"""Record → context: the facts of each card section, as names, numbers-as-text and tables (header + rows).

Nothing here writes a sentence; the prose is in ``templates/model_card_sections.j2``, one macro per section,
whose parameters are exactly the keys each function here returns (a test renders every one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sfm.harness.report import fmt_value
from sfm.harness.results import EvalResults, TaskResult
from sfm.physics.metadata import FieldMeta

REFERENCE = "persistence"  # the baseline the limitations compare against: beating it is the least to ask
METHOD_NAMES = {
    "lora": "LoRA",
    "dora": "DoRA",
    "rslora": "rsLoRA",
    "qlora": "QLoRA",
    "full": "full-weight",
    "freeze": "partially frozen",
}
Table = tuple[list[str], list[list[str]]]


def fmt(x: Any) -> str:
    """A recorded number or setting as text (floats to 6 significant digits)."""
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def run_kind(record: dict[str, Any]) -> str:
    """``token``, ``continuous`` or ``operator`` (run records before kinds existed are token runs)."""
    return str(record.get("kind") or "token")


def is_tiny(record: dict[str, Any]) -> bool:
    """True when the run's backbone is a tiny one built from a config (token runs record it; field runs name it)."""
    return bool(record.get("tiny_base")) or str(record.get("base_model") or "").startswith("tiny-")


def family(record: dict[str, Any], meta: FieldMeta | None) -> str:
    """The PDE family in words (``reaction diffusion``), from the data's metadata or the run record."""
    fam = meta.family if meta else record.get("data", {}).get("family", "unknown")
    return str(fam).replace("_", " ")


def summary(record: dict[str, Any], meta: FieldMeta | None, tasks: Sequence[TaskResult]) -> dict[str, Any]:
    """What was fine-tuned, on what, for which task format, and which eval tasks scored it."""
    rec = record["recipe"]
    method = rec.get("peft", {}).get("method", "lora")
    opts = record.get("task", {}).get("options", rec.get("data", {}).get("task_options", {}))
    field_model = record.get("field_model") or {}
    return {
        "kind": run_kind(record),
        "method": METHOD_NAMES.get(method, method),
        "base_model": record.get("base_model", "unknown"),
        "operator": field_model.get("operator_name", "fno").upper(),
        "family": family(record, meta),
        "ndim": meta.ndim if meta else None,
        "equation": meta.equation if meta else None,
        "task": record.get("task", {}).get("name", rec.get("data", {}).get("task", "forecast")),
        "context_frames": opts.get("context_frames", 2),
        "horizon": opts.get("horizon", 1),
        "scored": [(t.task, t.version) for t in tasks],
    }


def _axes_table(meta: FieldMeta) -> Table:
    rows = []
    for axis in meta.spatial_axes:
        c = meta.coords[axis]
        bc = meta.boundary_conditions.get(axis, "not stated")
        rows.append(
            [axis, str(len(c)), f"[{fmt(float(c[0]))}, {fmt(float(c[-1]))}]", fmt(meta.spacing(axis)), bc]
        )
    if not meta.steady:
        t = meta.coords["t"]
        rows.append(["t", str(len(t)), f"[{fmt(float(t[0]))}, {fmt(float(t[-1]))}]", fmt(meta.dt), "-"])
    return ["axis", "points", "range", "spacing", "boundary"], rows


def _stats_table(meta: FieldMeta) -> Table:
    rows = [
        [f"`{f}`", *(fmt(meta.stats.get(f, {}).get(k, "-")) for k in ("mean", "std", "min", "max"))]
        for f in meta.fields
    ]
    return ["field", "mean", "std", "min", "max"], rows


def training_data(record: dict[str, Any], meta: FieldMeta | None) -> dict[str, Any]:
    """The training set as recorded, and (when its ``field_meta.json`` was found) its grid and statistics."""
    data = record.get("data", {})
    out: dict[str, Any] = {
        "name": Path(str(data.get("path", "?"))).name,
        "path": data.get("path"),
        "trajectories": data.get("num_train_trajectories", "?"),
        "examples": data.get("num_train_examples", "?"),
        "family": data.get("family", "unknown"),
        "fields": list(data.get("fields", [])),
        "meta": None,
    }
    if meta is not None:
        out["meta"] = {
            "family": meta.family,
            "equation": meta.equation,
            "description": meta.description,
            "coefficients": [f"`{k}` = {fmt(v)}" for k, v in meta.coefficients.items()]
            + [f"`{k}` varies per trajectory" for k in meta.varying],
            "splits": [f"{k} {v}" for k, v in meta.splits.items()],
            "source": {k: meta.source.get(k, "?") for k in ("kind", "name", "version")},
            "axes": _axes_table(meta),
            "stats": _stats_table(meta),
        }
    return out


def encoding_table(record: dict[str, Any]) -> Table:
    """The number encoding (token runs) or the field inputs and outputs (field runs), and the task format."""
    if run_kind(record) != "token":
        return field_io_table(record)
    enc = dict(record.get("encoding", {}).get("encoding", {}))
    name = enc.pop("name", record["recipe"].get("data", {}).get("encoding", "?"))
    task = record.get("task", {})
    rows = [
        ["number encoding", f"`{name}`"],
        *[[f"  {k}", f"`{fmt(v)}`"] for k, v in enc.items()],
        ["fields", ", ".join(f"`{f}`" for f in record.get("encoding", {}).get("fields", []))],
        ["task format", f"`{task.get('name', '?')}`"],
        *[[f"  {k}", f"`{fmt(v)}`"] for k, v in task.get("options", {}).items()],
    ]
    return ["setting", "value"], rows


def field_io_table(record: dict[str, Any]) -> Table:
    """A field model's spec, input/output options and encoder or operator sizes, as saved with it."""
    fm = record.get("field_model") or {}
    spec = fm.get("spec", {})
    rows = [
        ["fields", ", ".join(f"`{f}`" for f in spec.get("field_names", []))],
        ["grid the model sees", " x ".join(str(n) for n in spec.get("space", []))],
        ["context frames -> frames predicted", f"{spec.get('context_frames')} -> {spec.get('horizon')}"],
        ["coefficients as inputs", ", ".join(f"`{c}`" for c in spec.get("coefficient_names", [])) or "none"],
        *[[f"fields.{k}", f"`{fmt(v)}`"] for k, v in (fm.get("fields") or {}).items()],
    ]
    section = "operator" if run_kind(record) == "operator" else "encoder"
    rows += [[f"{section}.{k}", f"`{fmt(v)}`"] for k, v in (fm.get(section) or {}).items()]
    task = record.get("task", {})
    rows += [["task format", f"`{task.get('name', '?')}`"]]
    rows += [[f"  {k}", f"`{fmt(v)}`"] for k, v in task.get("options", {}).items()]
    return ["setting", "value"], rows


def _parameters(params: dict[str, Any]) -> str:
    if not isinstance(params.get("total"), int):
        return "?"
    share = (
        f" ({100 * params['trainable'] / params['total']:.2f}%)"
        if params.get("total") and params.get("trainable") is not None
        else ""
    )
    return f"{params.get('trainable', '?'):,} / {params.get('total', '?'):,}{share}"


def hyperparameter_table(record: dict[str, Any]) -> Table:
    """PEFT, optimisation, size and training outcome, from the recipe and the run record."""
    rec = record["recipe"]
    p, t, m = rec.get("peft", {}), rec.get("training", {}), rec.get("model", {})
    train, dist = record.get("train", {}), record.get("distributed", {})
    precision = "bf16" if t.get("bf16") else "fp16" if t.get("fp16") else "fp32 / model dtype"
    zero = f", ZeRO-{dist['zero_stage']}" if dist.get("zero_stage") else ""
    runtime = train.get("runtime_s")
    rows = [
        ["method", p.get("method")],
        ["LoRA r / alpha / dropout", f"{p.get('r')} / {p.get('alpha')} / {p.get('dropout')}"],
        ["target modules", p.get("target_modules") or "family default"],
        ["new token rows", p.get("new_tokens")],
        ["backbone config", m.get("tiny") or "as published"],
        ["trainable / total parameters", _parameters(record.get("parameters", {}))],
        ["steps", train.get("steps", t.get("max_steps"))],
        [
            "batch per device x accumulation x processes",
            f"{t.get('per_device_train_batch_size')} x {t.get('gradient_accumulation_steps')} x "
            f"{dist.get('world_size', 1)}",
        ],
        [
            "learning rate, schedule, warmup",
            f"{t.get('learning_rate')}, {t.get('lr_scheduler_type')}, {t.get('warmup_ratio')}",
        ],
        [
            "weight decay, max grad norm, optimizer",
            f"{t.get('weight_decay')}, {t.get('max_grad_norm')}, {t.get('optim')}",
        ],
        ["precision", precision],
        ["seed", t.get("seed")],
        ["distributed", f"{dist.get('distributed_type', '?')}{zero}"],
        [
            "train loss: mean over the run, last logged",
            f"{fmt(train.get('train_loss'))}, {fmt((train.get('loss_history') or ['?'])[-1])}",
        ],
        ["eval loss", fmt(train.get("eval_loss")) if train.get("eval_loss") is not None else "not measured"],
        ["training tokens", f"{train['tokens']:,}" if isinstance(train.get("tokens"), int) else "?"],
        ["runtime", f"{runtime:.0f} s" if isinstance(runtime, int | float) else "?"],
    ]
    kind = run_kind(record)
    if kind != "token":  # no added token rows, no token count; an operator has no adapter either
        drop = {"new token rows", "training tokens"}
        if kind == "operator":
            drop |= {"method", "LoRA r / alpha / dropout", "target modules", "backbone config"}
        elif p.get("method") not in ("lora", "dora", "rslora", "qlora"):
            drop |= {"LoRA r / alpha / dropout", "target modules"}
        rows = [r for r in rows if r[0] not in drop]
    return ["setting", "value"], [[k, f"{v}"] for k, v in rows]


def _arrow(hib: bool | None) -> str:
    return "↑" if hib else "↓"


def _results_table(t: TaskResult) -> Table:
    from sfm.registry import METRICS

    rows = []
    for m, v in t.model.metrics.items():
        hib = METRICS.meta(m).get("higher_is_better") if m in METRICS else None
        name = f"**{m}** {_arrow(hib)} (primary)" if m == t.primary_metric else f"{m} {_arrow(hib)}"
        rows.append([name, fmt_value(v), *(fmt_value(s.metrics.get(m)) for s in t.baselines.values())])
    for w, ms in t.model.windows.items():
        for m, v in ms.items():
            base = [fmt_value(s.windows.get(w, {}).get(m)) for s in t.baselines.values()]
            rows.append([f"{m}, frames {w}", fmt_value(v), *base])
    return ["metric", "model", *t.baselines], rows


def _contamination(t: TaskResult) -> dict[str, Any] | None:
    """What the contamination check found (None: not checked, e.g. results written before it existed)."""
    c = t.contamination
    if c is None or c.overlapping is None:
        return None
    return {"overlapping": c.overlapping, "of": c.of, "kind": ", ".join(c.kind)}


def results(tasks: Sequence[tuple[EvalResults, TaskResult]]) -> dict[str, Any]:
    """Per task: its identity, count, validity, date and seed, and the model beside each baseline."""
    return {
        "tasks": [
            {
                "task": t.task,
                "version": t.version,
                "family": t.family,
                "description": t.config.get("description", "") if isinstance(t.config, dict) else "",
                "n_examples": t.n_examples,
                "validity": f"{t.validity:.1%}",
                "date": res.date,
                "seed": res.seed,
                "table": _results_table(t),
                "contamination": _contamination(t),
            }
            for res, t in tasks
        ]
    }


def intended_use(record: dict[str, Any], meta: FieldMeta | None) -> dict[str, Any]:
    """The training distribution the card bounds its intended use by: family and grid."""
    sizes = [str(len(meta.coords[a])) for a in meta.spatial_axes] if meta else []
    return {"family": family(record, meta), "grid": sizes}


def _loses(t: TaskResult) -> dict[str, Any] | None:
    m = t.primary_metric
    v, ref = t.model.metrics.get(m), t.baselines.get(REFERENCE)
    r = ref.metrics.get(m) if ref else None
    if not (v and r and v.finite and r.finite):
        return None
    if not (v.value < r.value if t.higher_is_better else v.value > r.value):
        return None
    separated = (v.ci_low is not None and r.ci_high is not None and v.ci_low > r.ci_high) or (
        t.higher_is_better and v.ci_high is not None and r.ci_low is not None and v.ci_high < r.ci_low
    )
    return {"metric": m, "value": fmt_value(v), "reference": fmt_value(r), "separated": separated}


def limitations(record: dict[str, Any], tasks: Sequence[tuple[EvalResults, TaskResult]]) -> dict[str, Any]:
    """Computed limitations: a tiny backbone, losing to the reference, invalid outputs, non-finite metrics."""
    total = record.get("parameters", {}).get("total")
    per_task = []
    for _, t in tasks:
        how = t.config.get("invalid", "persistence") if isinstance(t.config, dict) else "persistence"
        per_task.append(
            {
                "task": t.task,
                "loses": _loses(t),
                "invalid": f"{1 - t.validity:.1%}" if t.validity < 1 else None,
                "invalid_replaced": how == "persistence",
                "nonfinite": [k for k, mv in t.model.metrics.items() if not mv.finite],
            }
        )
    return {
        "tiny": bool(record.get("tiny_base")),
        "total_parameters": f"{total:,}" if isinstance(total, int) else None,
        "reference": REFERENCE,
        "tasks": per_task,
    }


def usage(record: dict[str, Any]) -> dict[str, Any]:
    """Where the run and its base live, for the loading snippets."""
    path = record["recipe"].get("training", {}).get("output_dir", "RUN")
    tiny = bool(record.get("tiny_base"))
    base = f"{path}/base" if tiny else record.get("base_model", "BASE")
    return {"path": path, "base": base, "tiny": tiny, "kind": run_kind(record)}


def _eval_commands(out_dir: str, results: Sequence[EvalResults]) -> list[str]:
    cmds: list[str] = []
    for res in results:
        c = res.config if isinstance(res.config, dict) else {}
        tasks = ",".join(c.get("tasks") or list(res.tasks))
        cmd = f"sfm eval --model {out_dir} --tasks {tasks} --out results/"
        for flag, key in (("--limit", "limit"), ("--batch-size", "batch_size"), ("--seed", "seed")):
            if c.get(key) is not None:
                cmd += f" {flag} {c[key]}"
        if cmd not in cmds:
            cmds.append(cmd)
    return cmds


def reproduce(record: dict[str, Any], results: Sequence[EvalResults]) -> dict[str, Any]:
    """The exact recipe (as YAML) and the commands that train, evaluate and card this run."""
    rec = record["recipe"]
    out_dir = rec.get("training", {}).get("output_dir", "RUN")
    commands = ["python -m sfm.train recipe.yaml", *_eval_commands(out_dir, results)]
    return {
        "recipe_yaml": yaml.safe_dump(rec, sort_keys=False, default_flow_style=False).rstrip(),
        "sfm_version": record.get("sfm_version", "?"),
        "git": record.get("git") or "unknown",
        "commands": [*commands, f"sfm card --model {out_dir} --results results/"],
    }


def base_model(record: dict[str, Any], hub_id: str | None) -> dict[str, Any]:
    """The base model: a Hub id, a tiny config-built backbone, or a local checkpoint."""
    return {"hub_id": hub_id, "tiny": is_tiny(record), "name": record.get("base_model")}
