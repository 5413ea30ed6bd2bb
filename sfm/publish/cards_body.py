"""The body sections of a model card (:mod:`sfm.publish.cards`), each a Markdown string built from the run's records.

Every function takes the records (``sfm_run.json`` as a dict, the data's :class:`FieldMeta`, typed results),
never a half-rendered card, so each section can be checked on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sfm.harness.report import fmt_value
from sfm.harness.results import EvalResults, TaskResult
from sfm.physics.metadata import FieldMeta
from sfm.publish import plots

REFERENCE = "persistence"  # the baseline the limitations compare against: beating it is the least to ask
METHOD_NAMES = {
    "lora": "LoRA",
    "dora": "DoRA",
    "rslora": "rsLoRA",
    "qlora": "QLoRA",
    "full": "full-weight",
    "freeze": "partially frozen",
}


def _fmt(x: Any) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    esc = [[str(c).replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def _family(record: dict[str, Any], meta: FieldMeta | None) -> str:
    fam = meta.family if meta else record.get("data", {}).get("family", "unknown")
    return str(fam).replace("_", " ")


def summary(record: dict[str, Any], meta: FieldMeta | None, tasks: Sequence[TaskResult]) -> str:
    """One paragraph: what was fine-tuned, on what, for which task, and what it was scored on."""
    rec = record["recipe"]
    method = rec.get("peft", {}).get("method", "lora")
    opts = record.get("task", {}).get("options", rec.get("data", {}).get("task_options", {}))
    task = record.get("task", {}).get("name", rec.get("data", {}).get("task", "forecast"))
    what = f"{_family(record, meta)} fields"
    if meta:
        what = f"{meta.ndim}D {what} (`{meta.equation}`)"
    doing = f"to solve the `{task}` task"
    if task == "forecast":
        doing = (
            f"to forecast: from {opts.get('context_frames', 2)} context frame(s) it predicts the next "
            f"{opts.get('horizon', 1)} frame(s), written as number tokens"
        )
    scored = ", ".join(f"`{t.task}` (v{t.version})" for t in tasks) or "no eval task yet"
    return (
        f"A {METHOD_NAMES.get(method, method)} fine-tune of `{record.get('base_model', 'unknown')}` made with sfm on {what}, {doing}. "
        f"Evaluated on {scored}."
    )


def data_section(record: dict[str, Any], meta: FieldMeta | None, meta_path: Path | None) -> str:
    """Family, equation, grid, time, boundary conditions, coefficients, fields and splits of the training data."""
    data = record.get("data", {})
    lines = [
        f"- Data set: `{Path(str(data.get('path', '?'))).name}` (recorded path `{data.get('path')}`); "
        f"{data.get('num_train_trajectories', '?')} training trajectories cut into "
        f"{data.get('num_train_examples', '?')} training examples."
    ]
    if meta is None:
        lines.append(
            f"- PDE family: {data.get('family', 'unknown')}; fields: {', '.join(data.get('fields', []))}."
        )
        lines.append(
            "- The data set's `field_meta.json` was not found from here, so its grid and statistics "
            "are not shown."
        )
        return "\n".join(lines)
    lines += [f"- PDE family: {meta.family}, equation `{meta.equation}`.", f"- {meta.description}"]
    rows = []
    for axis in meta.spatial_axes:
        c = meta.coords[axis]
        rows.append(
            [
                axis,
                str(len(c)),
                f"[{_fmt(float(c[0]))}, {_fmt(float(c[-1]))}]",
                _fmt(meta.spacing(axis)),
                meta.boundary_conditions.get(axis, "not stated"),
            ]
        )
    if not meta.steady:
        t = meta.coords["t"]
        rows.append(["t", str(len(t)), f"[{_fmt(float(t[0]))}, {_fmt(float(t[-1]))}]", _fmt(meta.dt), "-"])
    coeffs = [f"`{k}` = {_fmt(v)}" for k, v in meta.coefficients.items()]
    coeffs += [f"`{k}` varies per trajectory" for k in meta.varying]
    stats = [
        [f"`{f}`", *(_fmt(meta.stats.get(f, {}).get(k, "-")) for k in ("mean", "std", "min", "max"))]
        for f in meta.fields
    ]
    src = meta.source
    return "\n".join(
        [
            *lines,
            f"- Coefficients: {', '.join(coeffs) or 'none'}.",
            f"- Splits (trajectories): {', '.join(f'{k} {v}' for k, v in meta.splits.items())}.",
            f"- Source: {src.get('kind', '?')} `{src.get('name', '?')}` (version {src.get('version', '?')}).",
            "",
            table(["axis", "points", "range", "spacing", "boundary"], rows),
            "",
            table(["field", "mean", "std", "min", "max"], stats),
        ]
    )


def encoding_section(record: dict[str, Any]) -> str:
    """The number encoding and task format, as recorded with the model."""
    enc = dict(record.get("encoding", {}).get("encoding", {}))
    name = enc.pop("name", record["recipe"].get("data", {}).get("encoding", "?"))
    task = record.get("task", {})
    rows = [
        ["number encoding", f"`{name}`"],
        *[[f"  {k}", f"`{_fmt(v)}`"] for k, v in enc.items()],
        ["fields", ", ".join(f"`{f}`" for f in record.get("encoding", {}).get("fields", []))],
        ["task format", f"`{task.get('name', '?')}`"],
        *[[f"  {k}", f"`{_fmt(v)}`"] for k, v in task.get("options", {}).items()],
    ]
    return table(["setting", "value"], rows)


def hyperparameters(record: dict[str, Any]) -> str:
    """PEFT, optimisation, size and training outcome, from the recipe and the run record."""
    rec = record["recipe"]
    p, t, m = rec.get("peft", {}), rec.get("training", {}), rec.get("model", {})
    params = record.get("parameters", {})
    train = record.get("train", {})
    dist = record.get("distributed", {})
    precision = "bf16" if t.get("bf16") else "fp16" if t.get("fp16") else "fp32 / model dtype"
    share = (
        f" ({100 * params['trainable'] / params['total']:.2f}%)"
        if params.get("total") and params.get("trainable") is not None
        else ""
    )
    rows = [
        ["method", p.get("method")],
        ["LoRA r / alpha / dropout", f"{p.get('r')} / {p.get('alpha')} / {p.get('dropout')}"],
        ["target modules", p.get("target_modules") or "family default"],
        ["new token rows", p.get("new_tokens")],
        ["backbone config", m.get("tiny") or "as published"],
        [
            "trainable / total parameters",
            f"{params.get('trainable', '?'):,} / {params.get('total', '?'):,}{share}"
            if isinstance(params.get("total"), int)
            else "?",
        ],
        ["steps", train.get("steps", t.get("max_steps"))],
        [
            "batch per device x accumulation x processes",
            f"{t.get('per_device_train_batch_size')} x {t.get('gradient_accumulation_steps')} x {dist.get('world_size', 1)}",
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
        [
            "distributed",
            f"{dist.get('distributed_type', '?')}"
            + (f", ZeRO-{dist['zero_stage']}" if dist.get("zero_stage") else ""),
        ],
        [
            "train loss: mean over the run, last logged",
            f"{_fmt(train.get('train_loss'))}, {_fmt((train.get('loss_history') or ['?'])[-1])}",
        ],
        ["eval loss", _fmt(train.get("eval_loss")) if train.get("eval_loss") is not None else "not measured"],
        ["training tokens", f"{train['tokens']:,}" if isinstance(train.get("tokens"), int) else "?"],
        [
            "runtime",
            f"{train['runtime_s']:.0f} s" if isinstance(train.get("runtime_s"), int | float) else "?",
        ],
    ]
    return table(["setting", "value"], [[k, f"{v}"] for k, v in rows])


def _arrow(hib: bool | None) -> str:
    return "↑" if hib else "↓"


def results_section(tasks: Sequence[tuple[EvalResults, TaskResult]]) -> str:
    """Per task: every metric (and window) of the model beside each baseline, with intervals."""
    if not tasks:
        return "No evaluation results were given (`sfm card --results ...`)."
    from sfm.registry import METRICS

    parts = []
    for res, t in tasks:
        cols = ["metric", "model", *t.baselines]
        rows = []
        for m, v in t.model.metrics.items():
            hib = METRICS.meta(m).get("higher_is_better") if m in METRICS else None
            name = f"**{m}** {_arrow(hib)} (primary)" if m == t.primary_metric else f"{m} {_arrow(hib)}"
            rows.append([name, fmt_value(v), *(fmt_value(s.metrics.get(m)) for s in t.baselines.values())])
        for w, ms in t.model.windows.items():
            for m, v in ms.items():
                base = [fmt_value(s.windows.get(w, {}).get(m)) for s in t.baselines.values()]
                rows.append([f"{m}, frames {w}", fmt_value(v), *base])
        desc = t.config.get("description", "") if isinstance(t.config, dict) else ""
        parts += [
            f"### `{t.task}` (v{t.version}, {t.family})",
            "",
            *([desc, ""] if desc else []),
            f"{t.n_examples} examples; {t.validity:.1%} of the model's outputs decoded; evaluated "
            f"{res.date or 'at an unknown date'} with seed {res.seed}.",
            "",
            table(cols, rows),
            "",
        ]
    return "\n".join(parts)


def intended_use(record: dict[str, Any], meta: FieldMeta | None) -> str:
    """Who should use it for what, bounded by the training distribution."""
    fam = _family(record, meta)
    grid = ""
    if meta:
        sizes = [str(len(meta.coords[a])) for a in meta.spatial_axes]
        grid = f" on a {sizes[0]}-point grid" if len(sizes) == 1 else f" on a {' x '.join(sizes)} grid"
    return (
        f"Research on fine-tuning language-model backbones for scientific data: forecasting {fam} fields"
        f"{grid} within the coefficient ranges of its training data, comparing encodings, recipes and "
        "backbones, and as a starting point for further fine-tuning. It is not a validated solver: do not use "
        "its outputs where a wrong field has consequences, nor outside the trained PDE family, grid and "
        "parameter ranges without evaluating it there first."
    )


def limitations(record: dict[str, Any], tasks: Sequence[tuple[EvalResults, TaskResult]]) -> str:
    """Honest, computed limitations: size, losing to persistence, invalid outputs, non-finite metrics."""
    out = []
    params = record.get("parameters", {})
    if record.get("tiny_base"):
        out.append(
            f"- A tiny backbone ({params.get('total', '?'):,} parameters) with random initial weights: it "
            "exists to test the pipeline end to end and is not expected to forecast well."
            if isinstance(params.get("total"), int)
            else "- A tiny backbone with random initial weights."
        )
    for _, t in tasks:
        m = t.primary_metric
        v, ref = t.model.metrics.get(m), t.baselines.get(REFERENCE)
        r = ref.metrics.get(m) if ref else None
        if v and r and v.finite and r.finite:
            worse = v.value < r.value if t.higher_is_better else v.value > r.value
            if worse:
                sep = (v.ci_low is not None and r.ci_high is not None and v.ci_low > r.ci_high) or (
                    t.higher_is_better
                    and v.ci_high is not None
                    and r.ci_low is not None
                    and v.ci_high < r.ci_low
                )
                out.append(
                    f"- On `{t.task}` it loses to the {REFERENCE} baseline (repeat the last frame): {m} "
                    f"{fmt_value(v)} against {fmt_value(r)}"
                    + (" (the 95% intervals do not overlap)." if sep else ".")
                )
        if t.validity < 1:
            how = t.config.get("invalid", "persistence") if isinstance(t.config, dict) else "persistence"
            what = "replaced by the persistence frame" if how == "persistence" else "dropped from scoring"
            out.append(
                f"- On `{t.task}`, {1 - t.validity:.1%} of the model's (frame, field) outputs did not decode "
                f"as a field; they were {what}."
            )
        bad = [k for k, mv in t.model.metrics.items() if not mv.finite]
        if bad:
            out.append(
                f"- On `{t.task}` these metrics were not finite (so not in the metadata): {', '.join(bad)}."
            )
    out.append(
        "- Scored only on the eval tasks above (their simulator, parameter ranges, grid and split); "
        "nothing here measures other PDEs, resolutions or boundary conditions."
    )
    return "\n".join(out)


_USAGE = """Fields are written and read as number tokens, so sfm's decoder turns outputs back into arrays:

```bash
sfm eval --model {path} --tasks TASK --out results/
```

```python
from sfm.harness.generate import load_model

loaded = load_model("{path}")  # model, tokenizer with the science tokens, and sfm_run.json
```

Plain PEFT (no sfm) loads the same weights:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{path}")
base = AutoModelForCausalLM.from_pretrained("{base}"){note}
base.resize_token_embeddings(len(tokenizer))
model = PeftModel.from_pretrained(base, "{path}")
```"""


def usage(record: dict[str, Any]) -> str:
    """How to load it: with sfm (decodes fields), or as plain transformers/PEFT."""
    path = record["recipe"].get("training", {}).get("output_dir", "RUN")
    tiny = bool(record.get("tiny_base"))
    base = f"{path}/base" if tiny else record.get("base_model", "BASE")
    return _USAGE.format(path=path, base=base, note="  # the tiny base saved with the run" if tiny else "")


def reproduce(record: dict[str, Any], results: Sequence[EvalResults]) -> str:
    """The exact recipe and the commands that train, evaluate and card this run."""
    rec = record["recipe"]
    out_dir = rec.get("training", {}).get("output_dir", "RUN")
    cmds = ["python -m sfm.train recipe.yaml"]
    seen = set()
    for res in results:
        c = res.config if isinstance(res.config, dict) else {}
        tasks = ",".join(c.get("tasks") or list(res.tasks))
        cmd = f"sfm eval --model {out_dir} --tasks {tasks} --out results/"
        for flag, key in (("--limit", "limit"), ("--batch-size", "batch_size"), ("--seed", "seed")):
            if c.get(key) is not None:
                cmd += f" {flag} {c[key]}"
        if cmd not in seen:
            seen.add(cmd)
            cmds.append(cmd)
    cmds.append(f"sfm card --model {out_dir} --results results/")
    return "\n".join(
        [
            "The recipe this run used (save it as `recipe.yaml`):",
            "",
            "```yaml",
            _yaml(rec),
            "```",
            "",
            f"Then (sfm {record.get('sfm_version', '?')}, commit `{record.get('git') or 'unknown'}`):",
            "",
            "```bash",
            *cmds,
            "```",
        ]
    )


def base_model_line(record: dict[str, Any], hub_id: str | None) -> str:
    """What the base model was (a Hub link, a tiny config-built backbone, or a local checkpoint)."""
    if hub_id:
        return f"[{hub_id}](https://huggingface.co/{hub_id})"
    if record.get("tiny_base"):
        return (
            f"`{record.get('base_model')}`, a tiny backbone built from a config with random initial weights "
            "(no pretrained weights; saved in `base/`)"
        )
    return f"`{record.get('base_model')}`, a local checkpoint (not a Hub id, so not in the metadata)"


def license_line(record: dict[str, Any], hub_id: str | None, license: str) -> str:
    """The card's licence, and that the base model's licence governs the combined model."""
    text = (
        f"`{license}` for this card and the weights trained here. The base model's own licence governs any "
        "use of the combined model"
    )
    if hub_id:
        return f"{text}: read it at https://huggingface.co/{hub_id} before publishing or deploying."
    if record.get("tiny_base"):
        return f"{text}; this one has no third-party weights."
    return f"{text}: check it before publishing."


def find_field_meta(run_dir: str | Path, record: dict[str, Any]) -> Path | None:
    """The training data's ``field_meta.json``, if any candidate location holds it.

    A relative data path was relative to the folder training ran from; that folder is recovered from the run
    folder and the recipe's relative ``output_dir``, then ``$SFM_HOME`` and the current folder are tried.
    """
    data = Path(str(record.get("data", {}).get("path") or ""))
    if str(data) in ("", "."):
        return None
    bases = [Path(os.environ.get("SFM_HOME", ".")), Path.cwd()]
    out_dir = Path(str(record["recipe"].get("training", {}).get("output_dir", "")))
    run = Path(run_dir).resolve()
    n = len(out_dir.parts)
    if n and not out_dir.is_absolute() and run.parts[-n:] == out_dir.parts:
        bases.insert(0, run.parents[n - 1])  # run = <where training ran>/<output_dir>
    for base in [Path("/")] if data.is_absolute() else bases:
        if (base / data / "field_meta.json").is_file():
            return base / data / "field_meta.json"
    return None


def draw_figures(tasks: Sequence[TaskResult], folder: Path, link: str) -> list[tuple[str, str]]:
    """Draw each task's error-vs-rollout-time and noise curves into ``folder`` as PNG.

    Returns:
        ``(caption, link/<file>)`` per figure, for the card's image links.
    """
    figs = []
    for t in tasks:
        slug = t.task.replace("/", "__") + f"_v{t.version}"
        m = t.primary_metric
        curves = {
            "model": t.model.curves.get(m, []),
            **{b: s.curves.get(m, []) for b, s in t.baselines.items()},
        }
        curves = {k: v for k, v in curves.items() if len(v) > 1}
        drawn = []
        if curves:
            fig = plots.plot_error_curves(curves, metric=m, title=t.task, dashed=list(t.baselines))
            drawn.append((f"{slug}_rollout.png", f"{t.task}: {m} on each predicted frame", fig))
        nc = t.extra.get("noise_curve") if isinstance(t.extra, dict) else None
        if isinstance(nc, dict) and isinstance(nc.get("levels"), list):
            lines = {
                k: (nc["levels"], v)
                for k, v in nc.items()
                if k not in ("levels", "metric") and isinstance(v, list) and len(v) == len(nc["levels"])
            }
            fig = plots.plot_noise_curves(
                lines, metric=nc.get("metric", m), title=t.task, dashed=list(t.baselines)
            )
            drawn.append((f"{slug}_noise.png", f"{t.task}: {nc.get('metric', m)} against input noise", fig))
        for name, caption, fig in drawn:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(plots.png_bytes(fig))
            figs.append((caption, f"{link}/{name}"))
    return figs
