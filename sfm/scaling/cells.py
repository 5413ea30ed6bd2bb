"""A finished cell: evaluating its run, recording ``cell.json``, and the sweep's ``cells.csv``.

``sfm scaling cell DIR --index N`` is the last step of every cell, under any launcher: it evaluates the
cell's trained run (unless ``sfm eval`` already wrote current results), writes ``cell.json`` atomically with
every column the fit needs, then rewrites ``DIR/cells.csv`` from all finished cells. A cell counts as finished
only when its ``cell.json`` is complete and carries the configuration hash of the cell's ``plan.json``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sfm.errors import DataError, SfmError
from sfm.harness.results import EvalResults
from sfm.harness.runner import evaluate
from sfm.models.backbones import is_seq2seq
from sfm.models.run import RunRecord
from sfm.training.budget import examples_seen
from sfm.utils.io import atomic_dir, atomic_write_json, atomic_write_text, read_json
from sfm.utils.provenance import now_iso

SCHEMA_VERSION = 1
CELL_FILE = "cell.json"
PLAN_FILE = "plan.json"
SWEEP_FILE = "sweep.json"
TIMING_FILE = "timing.json"
CELLS_CSV = "cells.csv"
REQUIRED = (
    "id",
    "config_hash",
    "task",
    "arm",
    "model",
    "data_size",
    "steps",
    "seed",
    "params",
    "tokens",
    "metric",
    "metrics",
)
LEAD = (
    "task",
    "arm",
    "model",
    "data_size",
    "lora_rank",
    "steps",
    "seed",
    "params",
    "trainable_params",
    "tokens",
)


def cell_dir(out: str | Path, cell_id: str) -> Path:
    """The folder of cell ``cell_id`` in sweep folder ``out``."""
    return Path(out) / "cells" / cell_id


def read_cell(folder: str | Path) -> dict[str, Any] | None:
    """The cell's record if the cell finished under its current plan, else None (missing, torn or stale)."""
    folder = Path(folder)
    try:
        cell = read_json(folder / CELL_FILE)
        plan = read_json(folder / PLAN_FILE)
    except (OSError, ValueError):
        return None
    if not isinstance(cell, dict) or cell.get("schema_version") != SCHEMA_VERSION:
        return None
    if any(k not in cell for k in REQUIRED) or cell["config_hash"] != plan.get("config_hash"):
        return None
    return cell


def tokens_seen(record: dict[str, Any]) -> tuple[int, int | None]:
    """(examples, tokens) a run trained on, from its ``sfm_run.json``; tokens are examples x mean length
    (None for field models, continuous and operator, which read windows of numbers, not tokens)."""
    from sfm.training.setup import resolve_batch  # sfm.training.setup imports torch

    t = record["recipe"]["training"]
    world = int(record.get("distributed", {}).get("world_size") or 1)
    accum = resolve_batch(
        t["per_device_train_batch_size"], t["gradient_accumulation_steps"], world, t.get("global_batch_size")
    )
    n = int(record["data"]["num_train_examples"])
    seen = examples_seen(n, int(record["train"]["steps"]), t["per_device_train_batch_size"], accum, world)
    if record["train"].get("tokens") is None:
        return seen, None
    return seen, round(seen * record["train"]["tokens"] / n)


def evaluate_cell(folder: Path, plan: dict[str, Any], *, progress: bool = False) -> float | None:
    """Evaluate the cell's run unless its results are current; returns the seconds spent (None: reused)."""
    run, res = folder / "run", folder / "results" / "results.json"
    tasks = [str(folder / t) if t.endswith(".yaml") else t for t in plan["eval_tasks"]]
    if _results_current(res, run / "sfm_run.json", tasks):
        return None
    t0 = time.perf_counter()
    a = plan["eval_args"]
    evaluate(
        str(run),
        tasks,
        folder / "results",
        limit=a["limit"],
        batch_size=a["batch_size"],
        seed=a["seed"],
        progress=progress,
    )
    return time.perf_counter() - t0


def finish_cell(out: str | Path, index: int, *, progress: bool = False) -> dict[str, Any]:
    """``sfm scaling cell DIR --index N``: evaluate cell N if needed, write its ``cell.json`` and ``cells.csv``.

    Raises:
        SfmError: no sweep there, an index out of range, or a cell whose training has not finished.
    """
    out = Path(out)
    cells = _sweep(out)["cells"]
    if not 0 <= index < len(cells):
        raise SfmError(f"{out}: --index {index} is out of range; the sweep has cells 0..{len(cells) - 1}")
    folder = cell_dir(out, cells[index]["id"])
    plan = read_json(folder / PLAN_FILE)
    record_path = folder / "run" / "sfm_run.json"
    if not record_path.is_file():
        raise SfmError(
            f"{folder}: training has not finished (no run/sfm_run.json); run "
            f"`python -m sfm.train {folder / 'recipe.yaml'}` first"
        )
    eval_s = evaluate_cell(folder, plan, progress=progress)
    results = EvalResults.load(folder / "results" / "results.json")
    timing = read_json(folder / TIMING_FILE) if (folder / TIMING_FILE).is_file() else {}
    if eval_s is not None:
        timing["eval_s"] = eval_s
        timing["eval_cpu_s"] = _own_cpu_seconds()  # this process: its imports and the evaluation
        atomic_write_json(folder / TIMING_FILE, timing)
    cell = collect(plan, RunRecord.read(folder / "run").to_dict(), results, timing)
    atomic_write_json(folder / CELL_FILE, cell)
    write_cells_csv(out)
    return cell


def collect(
    plan: dict[str, Any], record: dict[str, Any], results: Any, timing: dict[str, Any]
) -> dict[str, Any]:
    """The ``cell.json`` record from a cell's plan, its run record and its evaluation results."""
    seen, tokens = tokens_seen(record)
    metrics, baselines = {}, {}
    for name, tr in results.tasks.items():
        if tr.model is None:
            raise DataError(f"{plan['id']}: results of task {name} hold no model scores")
        metrics[name] = {m: _mv(v) for m, v in tr.model.metrics.items()}
        baselines[name] = {b: {m: v.value for m, v in s.metrics.items()} for b, s in tr.baselines.items()}
    first = _task_name(plan["eval_tasks"][0])
    train = record["train"]
    seconds = {
        "train": timing.get("train_s") or train.get("runtime_s"),  # wall time, else the training loop's
        "train_loop": train.get("runtime_s"),
        "eval": timing.get("eval_s"),
    }
    seconds["total"] = sum(v for v in (seconds["train"], seconds["eval"]) if v is not None)
    # CPU-seconds (local launcher only): what the cell costs whatever else the machine was running.
    cpu = [timing.get("train_cpu_s"), timing.get("eval_cpu_s")]
    seconds["cpu"] = sum(cpu) if all(v is not None for v in cpu) else None
    return {
        "schema_version": SCHEMA_VERSION,
        "id": plan["id"],
        "index": plan["index"],
        "config_hash": plan["config_hash"],
        **plan["columns"],
        "params": record["parameters"]["total"],
        "trainable_params": record["parameters"]["trainable"],
        "tokens": tokens,
        "examples_seen": seen,
        "train_examples": record["data"]["num_train_examples"],
        "train_trajectories": record["data"]["num_train_trajectories"],
        "train_loss": train["loss_history"][-1] if train.get("loss_history") else None,
        "metric": plan["metric"],
        "eval_task": first,
        "metrics": metrics,
        "baselines": baselines,
        "validity": {name: tr.validity for name, tr in results.tasks.items()},
        "seconds": seconds,
        "run": "run",
        "results": "results/results.json",
        "date": now_iso(),
    }


def cell_row(cell: dict[str, Any]) -> dict[str, Any]:
    """One ``cells.csv`` row: the identifying columns, then the headline task's metrics with intervals,
    its baselines on the headline metric, other tasks' metrics as ``<family>.<metric>``, then bookkeeping."""
    row = {k: cell.get(k) for k in LEAD}
    head, metric = cell["eval_task"], cell["metric"]
    scores = cell["metrics"].get(head, {})
    for m in [metric, *sorted(k for k in scores if k != metric)]:
        if m in scores:
            row.update(
                {
                    m: scores[m]["value"],
                    f"{m}_ci_low": scores[m]["ci_low"],
                    f"{m}_ci_high": scores[m]["ci_high"],
                }
            )
    for b, s in sorted(cell.get("baselines", {}).get(head, {}).items()):
        row[f"{b}_{metric}"] = s.get(metric)
    row["validity"] = (cell.get("validity") or {}).get(head)  # outputs that decoded (invalid = persistence)
    for task in sorted(cell["metrics"]):
        if task != head:
            prefix = _family(task, row)
            row.update({f"{prefix}.{m}": v["value"] for m, v in sorted(cell["metrics"][task].items())})
    row.update(
        train_loss=cell.get("train_loss"),
        seconds=(cell.get("seconds") or {}).get("total"),
        cpu_seconds=(cell.get("seconds") or {}).get("cpu"),
        examples_seen=cell.get("examples_seen"),
        id=cell["id"],
    )
    return row


def write_cells_csv(out: str | Path) -> Path:
    """(Re)write ``DIR/cells.csv`` atomically from the sweep's finished cells, in the sweep's cell order.

    Cells left in the folder by an earlier, larger version of the spec are not part of the table.
    """
    out = Path(out)
    order = {c["id"]: c["index"] for c in _sweep(out)["cells"]}
    with _locked(out / ".cells.lock"):
        cells = [read_cell(cell_dir(out, cid)) for cid in order]
        rows = [cell_row(c) for c in cells if c is not None]
        names = list(dict.fromkeys([*LEAD, *(k for r in rows for k in r)]))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r.get(k) is None else r[k] for k in names})
        return atomic_write_text(out / CELLS_CSV, buf.getvalue())


def make_scratch_init(out: str | Path, stage_id: str) -> Path:
    """``sfm scaling cell DIR --init ID``: save a random-init copy of a Hub model (same config, tokenizer).

    The scratch arm of a real backbone is its architecture with random weights; sfm.train loads it like any
    saved model, so training goes through the same code path as the pretrained arm.
    """
    import torch
    import transformers

    out = Path(out)
    stages = {s["id"]: s for s in _sweep(out)["stages"]}
    if stage_id not in stages or stages[stage_id]["kind"] != "init":
        known = ", ".join(s for s in stages if stages[s]["kind"] == "init") or "none"
        raise SfmError(f"{out}: no init stage {stage_id!r}; init stages: {known}")
    s = stages[stage_id]["source"]
    dest = out / stage_id
    kw = {"revision": s["revision"], "trust_remote_code": s["trust_remote_code"]}
    cfg = transformers.AutoConfig.from_pretrained(s["name_or_path"], **kw)
    tok = transformers.AutoTokenizer.from_pretrained(s["name_or_path"], **kw)
    torch.manual_seed(s["seed"])
    auto = transformers.AutoModelForSeq2SeqLM if is_seq2seq(cfg) else transformers.AutoModelForCausalLM
    dtype = None if s["torch_dtype"] == "auto" else getattr(torch, s["torch_dtype"])
    model = auto.from_config(cfg, trust_remote_code=s["trust_remote_code"], dtype=dtype)
    with atomic_dir(dest, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        atomic_write_json(
            tmp / "sfm_init.json", {"source": s, "config_hash": stages[stage_id]["config_hash"]}
        )
    return dest


def _sweep(out: Path) -> dict[str, Any]:
    if not (out / SWEEP_FILE).is_file():
        raise SfmError(f"{out}: not a sweep folder (no {SWEEP_FILE}); run `sfm scaling run SPEC --out {out}`")
    return read_json(out / SWEEP_FILE)


def _results_current(res: Path, record: Path, tasks: list[str]) -> bool:
    """Results newer than the run they score, for exactly this cell's tasks, are reused (``sfm eval`` ran)."""
    if not res.is_file() or res.stat().st_mtime < record.stat().st_mtime:
        return False
    try:
        names = set(json.loads(res.read_text())["tasks"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return names == {_task_name(t) for t in tasks}


def _task_name(task: str) -> str:
    return Path(task).stem if task.endswith(".yaml") else task


def _family(task: str, row: dict[str, Any]) -> str:
    """Column prefix of a non-headline task: its family folder (``rollout``), or its full name if taken."""
    parts = task.replace("__", "/").split("/")
    prefix = parts[0] if len(parts) > 1 else task
    return task if any(k.startswith(prefix + ".") for k in row) else prefix


def _own_cpu_seconds() -> float:
    import resource

    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _mv(v: Any) -> dict[str, Any]:
    return {"value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high, "n": v.n}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, so that cells finishing together do not drop each other's rows."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
