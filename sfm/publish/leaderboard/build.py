"""Ranking: rows, per-task tables and the overall score from typed results.

Decisions (each tested in ``tests/publish/test_leaderboard.py``):

* **Task versions are never mixed.** Scores are kept per ``(task, version)``. Each version gets its own
  per-task table; the overall ranking uses only the newest version of each task, and a note names the task,
  its versions and the files holding the older ones.
* **Baselines are rows.** A baseline reported by several results files on the same task version is one row
  when the files agree (same primary value to a relative 1e-6, same example count: baselines are
  deterministic); when they disagree (other data, another ``--limit``) each variant becomes its own row,
  labelled by its source, and a note says so.
* **Every row has a kind** (:mod:`sfm.publish.kinds`): ``baseline``, ``oracle`` (given the PDE), or the
  trained ``token`` / ``continuous`` / ``operator`` model its results file recorded, with its training budget.
* **Overall score** (as Chronos ranks forecasters): the geometric mean over tasks of the row's primary error
  divided by the reference baseline's error on the same task, taken **from the same results file** whenever
  it has one (so both numbers come from the same examples). For a higher-is-better metric the ratio is
  inverted (reference / row), so lower is better everywhere; a non-positive value there has no ratio and
  that task is left out for that row (with a note). A row's non-finite error scores ``inf``. Rows missing
  tasks are ranked on the tasks they have, and the count is shown. Results with no baseline at all still
  get per-task tables, with no overall score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from sfm.errors import DataError, did_you_mean
from sfm.harness.results import RESULTS_FILE, EvalResults, MetricValue, Scores, TaskResult
from sfm.publish.kinds import baseline_kind, budget, is_trained, model_kind
from sfm.publish.leaderboard.model import Entry, Leaderboard, Row, TaskTable, task_key

AGREE_RTOL = 1e-6  # baselines are deterministic; this only absorbs float noise across machines
_MODEL, _BASELINE = (
    "model",
    "baseline",
)  # the two groups rows are keyed by (a model may be named like a baseline)


def fmt_num(x: float | None) -> str:
    """A score or ratio as text: 4 significant digits, ``inf``, or ``n/a``."""
    if x is None:
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.4g}"


def _labels(paths: Sequence[Path]) -> dict[Path, str]:
    """The shortest trailing folder path that tells each results file apart (``a``, ``runs/b``...)."""
    parents = [p.parent.parts for p in paths]
    for k in range(1, max((len(p) for p in parents), default=1) + 1):
        labels = ["/".join(p[-k:]) or "." for p in parents]
        if len(set(labels)) == len(labels):
            return dict(zip(paths, labels))
    return {p: str(p) for p in paths}


def _entry(scores: Scores, t: TaskResult, source: str, validity: float, date: str) -> Entry:
    m = t.primary_metric
    return Entry(
        scores.metrics.get(m, MetricValue(None)),
        validity,
        source,
        curve=list(scores.curves.get(m, [])),
        date=date,
    )


def _agree(a: Entry, b: Entry) -> bool:
    x, y = a.value, b.value
    if x.n != y.n or (x.value is None) != (y.value is None):
        return False
    return x.value is None or math.isclose(x.value, y.value, rel_tol=AGREE_RTOL, abs_tol=0.0)


def _ratio(v: float | None, ref: float | None, higher_is_better: bool) -> float | None:
    if ref is None or not math.isfinite(ref):
        return None
    if v is None or not math.isfinite(v):
        return math.inf  # a non-finite error is the worst possible score, not a missing one
    if higher_is_better:
        return ref / v if v > 0 and ref > 0 else None
    return v / ref if ref > 0 and v >= 0 else None


class _Builder:
    """Collects entries from results files into rows (see the module docstring for the rules)."""

    def __init__(self, results: Sequence[tuple[Path | None, EvalResults]], baseline: str) -> None:
        self.results = [(Path(p) if p else Path(r.model.name) / RESULTS_FILE, r) for p, r in results]
        self.labels = _labels([p for p, _ in self.results])
        self.baseline = baseline
        self.rows: dict[tuple[str, str], Row] = {}
        self.notes: list[str] = []
        self.tasks: dict[str, TaskTable] = {}
        self.examples: list[tuple[str, str, str, str]] = []

    def _row(self, group: str, kind: str, name: str, source: str) -> Row:
        row = self.rows.setdefault((group, name), Row(name, kind))
        if source not in row.sources:
            row.sources.append(source)
        return row

    def _model_names(self) -> dict[int, str]:
        """Row name of each file's model; models sharing a name but not a fingerprint get their source."""
        idents: dict[str, set[str]] = {}
        for p, r in self.results:
            idents.setdefault(r.model.name, set()).add(r.model.fingerprint or self.labels[p])
        return {
            i: (r.model.name if len(idents[r.model.name]) == 1 else f"{r.model.name} [{self.labels[p]}]")
            for i, (p, r) in enumerate(self.results)
        }

    def collect(self) -> None:
        names = self._model_names()
        pending: dict[tuple[str, str], list[tuple[Entry, str]]] = {}  # (baseline, task key) -> entries
        for i, (path, res) in enumerate(self.results):
            src, kind = self.labels[path], model_kind(res.model)
            for t in res.tasks.values():
                key = self._task(t)
                own_ref = t.baselines.get(self.baseline)
                ref = own_ref.metrics.get(t.primary_metric) if own_ref else None
                if t.model is not None and is_trained(kind):
                    e = _entry(t.model, t, src, t.validity, res.date)
                    e.contamination = t.contamination
                    self._note_contamination(names[i], key, t)
                    self._add_model(names[i], kind, res, key, e, ref)
                    self._add_example(path, t.task, key, names[i], res.model.encoding.get("fields", [""]))
                for b, s in t.baselines.items():
                    e = _entry(s, t, src, 1.0, res.date)
                    e.reference = ref.value if ref else None
                    pending.setdefault((b, key), []).append((e, src))
                self._add_noise(t, key, names[i] if t.model is not None else None)
        self._add_baselines(pending)

    def _note_contamination(self, name: str, key: str, t: TaskResult) -> None:
        c = t.contamination
        if c is not None and c.contaminated:
            self.notes.append(
                f"{name} on {key}: {c.overlapping} of {c.of} eval trajectories are in its training data "
                f"(found by {', '.join(c.kind)}); marked ⚠ contaminated: its score there is not a held-out score"
            )

    def _task(self, t: TaskResult) -> str:
        key = task_key(t.task, t.version)
        self.tasks.setdefault(
            key, TaskTable(key, t.task, t.version, t.family, t.primary_metric, t.higher_is_better)
        )
        return key

    def _add_model(
        self, name: str, kind: str, res: EvalResults, key: str, e: Entry, ref: MetricValue | None
    ) -> None:
        e.reference = ref.value if ref else None
        row = self._row(_MODEL, kind, name, e.source)
        recorded = budget(res.model)
        if not any(v is not None for v in row.budget.values()):  # one fingerprint, one training run
            row.budget = recorded
        old = row.entries.get(key)
        if old is not None:
            keep, drop = (e, old) if e.date >= old.date else (old, e)
            self.notes.append(
                f"{name} has two results for {key} ({old.source}, {e.source}): kept the newer "
                f"one ({keep.source}, {keep.date or 'undated'}), not {drop.source}"
            )
            e = keep
        row.entries[key] = e

    def _add_baselines(self, pending: dict[tuple[str, str], list[tuple[Entry, str]]]) -> None:
        for (b, key), items in pending.items():
            clusters: list[list[tuple[Entry, str]]] = []
            for item in items:
                home = next((c for c in clusters if _agree(c[0][0], item[0])), None)
                if home is None:
                    clusters.append([item])
                else:
                    home.append(item)
            for c in clusters:
                name = b if len(clusters) == 1 else f"{b} [{c[0][1]}]"
                row = self._row(_BASELINE, baseline_kind(b), name, c[0][1])
                for _, src in c[1:]:
                    if src not in row.sources:
                        row.sources.append(src)
                row.entries[key] = c[0][0]
            if len(clusters) > 1:
                vals = "; ".join(
                    f"{c[0][1]}: {fmt_num(c[0][0].value.value)} (n={c[0][0].value.n})" for c in clusters
                )
                self.notes.append(
                    f"baseline {b} disagrees across results files on {key} ({vals}): the "
                    "files scored different examples, so each variant is its own row"
                )

    def _add_noise(self, t: TaskResult, key: str, model_name: str | None) -> None:
        nc = t.extra.get("noise_curve")
        if not isinstance(nc, dict) or not isinstance(nc.get("levels"), list):
            return
        table = self.tasks[key]
        table.noise.setdefault("metric", nc.get("metric", t.primary_metric))
        curves = table.noise.setdefault("curves", {})
        for name, vals in nc.items():
            if name in ("levels", "metric") or not isinstance(vals, list) or len(vals) != len(nc["levels"]):
                continue
            row = model_name if name == "model" else name
            if row is not None:
                curves.setdefault(row, [nc["levels"], vals])

    def _add_example(self, path: Path, task: str, key: str, row: str, fields: list[str]) -> None:
        npz = path.parent / f"examples_{task.replace('/', '__')}.npz"  # as sfm.harness.runner.write names it
        if npz.is_file():
            self.examples.append((key, row, str(npz), str(fields[0]) if fields else ""))


def _mark_versions(tasks: dict[str, TaskTable], rows: Iterable[Row], notes: list[str]) -> None:
    newest: dict[str, int] = {}
    for t in tasks.values():
        newest[t.task] = max(newest.get(t.task, 0), t.version)
    sources: dict[str, set[str]] = {}
    for r in rows:
        for key, e in r.entries.items():
            sources.setdefault(key, set()).add(e.source)
    for t in tasks.values():
        t.current = t.version == newest[t.task]
    for name in sorted(newest):
        versions = sorted(t.version for t in tasks.values() if t.task == name)
        if len(versions) > 1:
            where = "; ".join(
                f"v{v}: " + ", ".join(sorted(sources.get(task_key(name, v), ()))) for v in versions
            )
            notes.append(
                f"task {name} has results of versions {', '.join(f'v{v}' for v in versions)} ({where}); "
                f"versions are never compared: each has its own table and only v{newest[name]} counts "
                "towards the overall score"
            )


def _score_rows(lb: Leaderboard, shared_ref: dict[str, float | None]) -> None:
    unscorable = set()
    for row in lb.rows:
        logs = []
        for t in lb.tasks:
            e = row.entries.get(t.key)
            if e is None:
                continue
            ref = e.reference
            if ref is None and shared_ref.get(t.key) is not None:
                ref = shared_ref[t.key]  # from other files: possibly other examples, so say so
                lb.notes.append(
                    f"{row.name} on {t.key}: its results file has no {lb.baseline}; divided by "
                    f"the {lb.baseline} row of {', '.join(lb.row(lb.baseline).sources)}"
                )
            e.ratio = _ratio(e.value.value, ref, t.higher_is_better)
            if e.ratio is None:
                unscorable.add((t.key, row.name) if ref is not None else (t.key, None))
            elif t.current:
                logs.append(-math.inf if e.ratio == 0 else math.log(e.ratio))
        row.n_scored = len(logs)
        row.score = math.exp(sum(logs) / len(logs)) if logs else None
    for key, name in sorted(unscorable, key=str):
        if name is None:
            lb.notes.append(
                f"{key}: no {lb.baseline} result to divide by, so it counts towards no overall score"
            )
        else:
            lb.notes.append(
                f"{key}: {name} has no ratio to {lb.baseline} (a non-positive value), left out of its score"
            )


def _rank(lb: Leaderboard) -> None:
    # Ties: untrained rows first (as before the model kinds), then by kind and name, so the order is stable.
    lb.rows.sort(
        key=lambda r: (r.score is None, r.score if r.score is not None else 0.0, r.trained, r.kind, r.name)
    )
    prev, rank = None, 0
    for i, r in enumerate(lb.rows, start=1):
        if r.score is None:
            break
        if r.score != prev:
            rank, prev = i, r.score
        r.rank = rank
    for t in lb.tasks:
        have = [r for r in lb.rows if t.key in r.entries]
        sign = -1.0 if t.higher_is_better else 1.0

        def by_value(r: Row, t: TaskTable = t, sign: float = sign) -> tuple[bool, float]:
            v = r.entries[t.key].value.value
            return (v is None, sign * v if v is not None else 0.0)

        t.order = [r.name for r in sorted(have, key=by_value)]


def build_leaderboard(
    results: Sequence[tuple[Path | str | None, EvalResults]] | Sequence[EvalResults],
    baseline: str = "persistence",
) -> Leaderboard:
    """Rows, per-task tables and the overall ranking from loaded results.

    Args:
        results: ``(path, EvalResults)`` pairs from :func:`~sfm.publish.leaderboard.load_results` (or bare
            ``EvalResults``; their example files are then not found).
        baseline: The reference baseline of the overall score.

    Raises:
        DataError: no results, or ``baseline`` appears in none of them (naming the closest one).
    """
    pairs = [r if isinstance(r, tuple) else (None, r) for r in results]
    if not pairs:
        raise DataError("no results to rank")
    b = _Builder(pairs, baseline)
    b.collect()
    found = {name for (group, name) in b.rows if group == _BASELINE}
    if not found:
        b.notes.append("no result carries a baseline, so there is no overall score (per-task tables only)")
    elif not any(n == baseline or n.startswith(f"{baseline} [") for n in found):
        raise DataError(
            f"--baseline {baseline!r} is in none of the results{did_you_mean(baseline, found)}; "
            f"baselines found: {', '.join(sorted(found)) or 'none'}"
        )
    rows = list(b.rows.values())
    tasks = sorted(b.tasks.values(), key=lambda t: (t.task, t.version))
    lb = Leaderboard(rows, tasks, baseline, b.notes, b.examples)
    _mark_versions(b.tasks, rows, lb.notes)
    shared_row = b.rows.get((_BASELINE, baseline), Row("", ""))
    _score_rows(lb, {k: e.value.value for k, e in shared_row.entries.items()})
    _rank(lb)
    return lb
