"""``sfm scaling run SPEC`` runs a sweep of fine-tunes; ``sfm scaling fit RESULTS`` fits scaling laws to it.

Each ``sfm scaling`` action is a sub-subcommand added by its own ``_add_<action>`` function below
(``cell`` is the last step of one cell of a sweep, run by ``sfm scaling run`` and its Slurm job arrays).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm.errors import SfmError
from sfm.scaling.table import AXES, JOINT_DATA

# Each action imports what it runs (scipy and matplotlib for fits, the harness for sweeps) when it runs:
# ``sfm --help`` builds every command's parser, and should not pay for them.


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scaling", help="scaling laws: run sweeps of fine-tunes, fit error vs data/params/compute"
    )
    p.set_defaults(func=lambda args: _help(p))
    actions = p.add_subparsers(dest="scaling_command", metavar="ACTION")
    _add_run(actions)
    _add_cell(actions)
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
    p.add_argument(
        "--reference",
        metavar="ARM",
        help="a reference arm (fno): every other arm's efficiency gain (EG) and accuracy gain (AG) over it",
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
        reference=args.reference,
        **({"huber_delta": args.huber_delta} if args.huber_delta is not None else {}),
    )
    write_report(results, out, overwrite=args.overwrite, plots=not args.no_plots)
    print(summary(results))
    print(f"wrote {out}")
    return 0


def _default_out(results: Path) -> Path:
    return results / "fit" if results.is_dir() else results.with_name(f"{results.stem}-fit")


def _add_run(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "run",
        help="run a sweep of fine-tunes (data size x model x steps x arm), resumable",
        description="Expand a sweep spec into cells (task x arm x model x steps x data size x seed), each one "
        "`python -m sfm.train` + one evaluation, and run the unfinished ones: locally, --parallel at once, or "
        "as a Slurm job array. DIR/cells.csv is rewritten after every cell (sfm scaling fit DIR). Running the "
        "same command again continues a killed sweep.",
    )
    p.add_argument("spec", type=Path, help="sweep spec YAML (recipes/scaling/*.yaml)")
    p.add_argument("--out", type=Path, help="sweep folder (default: the spec's out, else runs/scaling/NAME)")
    p.add_argument("--parallel", type=int, help="cells at once (default: the spec's parallel)")
    p.add_argument("--launcher", default="local", choices=("local", "slurm"), help="where cells run")
    p.add_argument(
        "--dry-run", action="store_true", help="write the sweep folder's files and print the commands only"
    )
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    from sfm.scaling.run import run_sweep

    r = run_sweep(args.spec, args.out, parallel=args.parallel, launcher=args.launcher, dry_run=args.dry_run)
    if args.dry_run or args.launcher == "slurm":
        if r.script:
            print(f"wrote {r.script}")
        for cmd in r.commands:
            print(cmd)
    print(f"{r.out}: {r.finished}/{r.total} cells finished ({r.seconds:.0f} s); table: {r.out / 'cells.csv'}")
    if r.skipped:
        print(f"skipped (a stage they need failed): {', '.join(r.skipped)}")
    if r.failed:
        first, log = next(iter(r.failed.items()))
        raise SfmError(
            f"{len(r.failed)} job(s) failed (first: {first}, log {log}); rerun the same command to retry them"
        )
    return 0


def _add_cell(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "cell",
        help="finish one cell of a sweep: evaluate it, write cell.json and cells.csv",
        description="The last step of one sweep cell (run by `sfm scaling run` and its Slurm arrays): evaluate "
        "the cell's trained run unless `sfm eval` already did, write DIR/cells/<id>/cell.json and rewrite "
        "DIR/cells.csv. With --init ID: make the random-init copy of a Hub model that a scratch arm starts from.",
    )
    p.add_argument("sweep", type=Path, help="the sweep folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="the cell's index (sweep.json)")
    which.add_argument("--init", metavar="ID", help="an init stage (init/<model>/seed<k>)")
    p.set_defaults(func=run_cell)


def run_cell(args: argparse.Namespace) -> int:
    from sfm.scaling.cells import finish_cell, make_scratch_init

    if args.init is not None:
        print(f"wrote {make_scratch_init(args.sweep, args.init)}")
        return 0
    cell = finish_cell(args.sweep, args.index, progress=True)
    value = cell["metrics"][cell["eval_task"]].get(cell["metric"], {}).get("value")
    print(f"cell {cell['index']} {cell['id']}: {cell['metric']} = {value}")
    return 0
