"""``sfm scaling fit RESULTS``: fit scaling laws to a sweep's results and write the report.

Each ``sfm scaling`` action is a sub-subcommand added by its own ``_add_<action>`` function below, so
another (``run``: execute a sweep) slots in beside ``fit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm.errors import SfmError
from sfm.scaling.table import AXES, JOINT_DATA


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scaling", help="scaling laws: fit error vs data/params/compute/steps")
    p.set_defaults(func=lambda args: _help(p))
    actions = p.add_subparsers(dest="scaling_command", metavar="ACTION")
    _add_fit(actions)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _add_fit(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "fit",
        help="fit E(x) = E_inf + A x^-alpha per curve (and L(N, D) jointly) with bootstrap intervals",
        description="Fit E(x) = E_inf + A * x^-alpha per curve and L(N, D) = E + A/N^alpha + B/D^beta, "
        "robustly in log space with bootstrap intervals; write fit.json, fit.csv and log-log plots.",
    )
    p.add_argument("results", type=Path, help="a sweep folder holding cells.csv, or a results CSV")
    p.add_argument("--x", default="data_size", choices=AXES, help="the axis (compute = 6 * params * tokens)")
    p.add_argument("--metric", default="nrmse", help="error column to fit (default: nrmse)")
    p.add_argument("--group-by", type=_columns, help="comma-separated columns that identify a curve")
    p.add_argument(
        "--target-error", type=float, action="append", metavar="E", help="solve for the x reaching E"
    )
    p.add_argument(
        "--budget", type=float, action="append", metavar="FLOPS", help="compute-optimal N, D split"
    )
    p.add_argument("--joint-data", default="tokens", choices=JOINT_DATA, help="D of the joint fit")
    p.add_argument("--n-bootstrap", type=int, default=200, help="bootstrap replicates (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--ci", type=float, default=0.95, help="interval level (default: 0.95)")
    p.add_argument(
        "--huber-delta",
        type=float,
        help="Huber threshold on log residuals (default: 1e-3, as Hoffmann et al.)",
    )
    p.add_argument(
        "--skip-degenerate", action="store_true", help="record unfittable curves instead of failing"
    )
    p.add_argument("--no-plots", action="store_true", help="write fit.json and fit.csv only")
    p.add_argument(
        "--out", type=Path, help="report folder (default: RESULTS/fit, or <csv stem>-fit beside it)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.set_defaults(func=run_fit)


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def run_fit(args: argparse.Namespace) -> int:
    from sfm.scaling.report import summary, write_report
    from sfm.scaling.results import fit_results

    out = args.out or _default_out(args.results)
    if out.exists() and any(out.iterdir()) and not args.overwrite:  # before minutes of fitting, not after
        raise SfmError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    results = fit_results(
        args.results,
        x=args.x,
        metric=args.metric,
        group_by=args.group_by,
        target_error=args.target_error,
        budget=args.budget,
        joint_data=args.joint_data,
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        ci=args.ci,
        skip_degenerate=args.skip_degenerate,
        **({"huber_delta": args.huber_delta} if args.huber_delta is not None else {}),
    )
    write_report(results, out, overwrite=args.overwrite, plots=not args.no_plots)
    print(summary(results))
    print(f"wrote {out}")
    return 0


def _default_out(results: Path) -> Path:
    return results / "fit" if results.is_dir() else results.with_name(f"{results.stem}-fit")
