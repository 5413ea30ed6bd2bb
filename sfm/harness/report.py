"""Plain-text summaries of results for the terminal."""

from __future__ import annotations

from sfm.harness.results import EvalResults, MetricValue


def fmt_value(v: MetricValue | None, ci: bool = True) -> str:
    """``0.0123 [0.0101, 0.0150]`` or ``n/a``."""
    if v is None or v.value is None:
        return "n/a"
    text = f"{v.value:.4g}"
    if ci and v.ci_low is not None and v.ci_high is not None:
        text += f" [{v.ci_low:.3g}, {v.ci_high:.3g}]"
    return text


def summary_rows(results: EvalResults) -> list[list[str]]:
    """Rows ``task, metric, model, baselines...`` for the primary metric of each task."""
    rows = []
    for name, t in results.tasks.items():
        m = t.primary_metric
        row = [name, m, fmt_value(t.model.metrics.get(m)) if t.model else "-"]
        row += [f"{b}={fmt_value(s.metrics.get(m), ci=False)}" for b, s in t.baselines.items()]
        if t.model:
            row.append(f"valid={t.validity:.0%}")
        rows.append(row)
    return rows


def print_summary(results: EvalResults) -> None:
    """Print the primary metric of each task for the model and its baselines."""
    print(f"model: {results.model.name} ({results.model.kind})")
    for row in summary_rows(results):
        print("  " + "  ".join(row))
