"""``sfm data generate|import|info|overlap``: build field data sets, describe and compare them.

    sfm data generate burgers --num-samples 1000 --out data/burgers --set nu=0.001,0.1 --num-proc 2
    sfm data import pdebench 1D_Burgers_Sols_Nu0.01.hdf5 1D_Burgers_Sols_Nu0.1.hdf5 --out data/pdebench-burgers
    sfm data import the-well datasets/active_matter --out data/active-matter
    sfm data import pdebench 2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Test.hdf5 --split test --out data/cfd-test
    sfm data info data/burgers
    sfm data overlap data/pdebench-burgers data/burgers --fail-on-overlap    # shared trajectories (exit 1 if leaked)

``--set key=value`` values are YAML scalars (``nu=0.01``, ``nx=256``); ``nu=0.001,0.1`` or ``nu=[0.001,0.1]``
is a ``[low, high]`` range drawn per trajectory. For ``import`` they are the importer's options
(``--set family=burgers``, ``--set limit=100``, ``--set fields=u,v``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import yaml

from sfm.errors import ConfigError

# Each action imports sfm.data's builders (and with them ``datasets``, ~3 s) when it runs: ``sfm --help`` builds
# every command's parser, and should not pay for that.


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, import and describe field data sets")
    data = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    g = data.add_parser("generate", help="generate trajectories with a simulator (see `sfm list simulators`)")
    g.add_argument("name", help="simulator name")
    g.add_argument("--num-samples", type=int, required=True, help="number of trajectories (>= 3)")
    _common(g)
    g.add_argument("--chunk-size", type=int, default=32, help="trajectories solved as one batch (default 32)")
    g.set_defaults(func=run_generate)

    i = data.add_parser("import", help="import PDEBench, The Well or NumPy files (see `sfm list importers`)")
    i.add_argument("format", help="importer name (see `sfm list importers`)")
    i.add_argument("paths", nargs="+", help="input files or folders")
    i.add_argument(
        "--split",
        metavar="{train,validation,test}",
        help="put every trajectory into this split (default: a seeded 80/10/10 split, The Well's folders, "
        "or all in train for fewer than 3 trajectories)",
    )
    _common(i)
    i.set_defaults(func=run_import)

    n = data.add_parser("info", help="describe a field data set")
    n.add_argument("path", help="data set folder")
    n.set_defaults(func=run_info)

    o = data.add_parser("overlap", help="trajectories two data sets share (train/eval contamination check)")
    o.add_argument("a", help="first data set folder")
    o.add_argument("b", help="second data set folder")
    o.add_argument(
        "--fail-on-overlap",
        action="store_true",
        help="exit 1 when a validation/test trajectory of one is in the other's train split (for CI)",
    )
    o.set_defaults(func=run_overlap)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the trajectories and the split (default 0)")
    p.add_argument("--num-proc", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter (generate) or importer option (import); repeatable",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["nu=0.001,0.1", "nx=256"]`` -> ``{"nu": [0.001, 0.1], "nx": 256}`` (values as YAML scalars).

    Raises:
        ConfigError: an item is not ``key=value``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        value = _scalar(raw)
        if isinstance(value, str) and "," in raw:
            value = [_scalar(part) for part in raw.split(",")]
        out[key.strip()] = value
    return out


def _scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_scalar(str(v)) if isinstance(v, str) else v for v in value]
    return value


def run_generate(args: argparse.Namespace) -> int:
    from sfm.data import generate_dataset

    out = generate_dataset(
        args.name,
        args.num_samples,
        args.out,
        seed=args.seed,
        num_proc=args.num_proc,
        params=parse_sets(args.sets),
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"wrote {out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from sfm.data import import_dataset
    from sfm.physics.io.the_well import NormalizationWarning
    from sfm.physics.metadata import FieldMeta

    options = parse_sets(args.sets)
    if args.split:
        options["split"] = args.split
    with warnings.catch_warnings(record=True) as caught:  # an importer's notices, as one line each
        warnings.simplefilter("always", NormalizationWarning)
        out = import_dataset(
            args.format,
            args.paths,
            args.out,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            num_proc=args.num_proc,
            **options,
        )
    for w in caught:
        if issubclass(w.category, NormalizationWarning):
            print(f"sfm: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    meta = FieldMeta.load(out)
    how = meta.source.get("split") or meta.source.get("splits") or "seeded split"
    how += f", seed {args.seed}" if how == "seeded split" else ""
    counts = ", ".join(f"{s} {n}" for s, n in meta.splits.items())
    print(f"wrote {out} ({counts}: {how})")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from sfm.data import load_field_dataset

    print(describe(load_field_dataset(args.path)))
    return 0


def run_overlap(args: argparse.Namespace) -> int:
    from sfm.data.overlap import overlap

    report = overlap(args.a, args.b)
    print(format_overlap(report))
    return 1 if args.fail_on_overlap and report.leaks() else 0


def describe(ds: Any) -> str:
    """A few readable lines about a :class:`~sfm.data.FieldDataset`."""
    m = ds.meta
    lines = [f"{ds.path}: {m.family} ({m.ndim}D{', steady' if m.steady else ''})"]
    lines.append(f"  equation      {m.equation or '-'}")
    for f in m.fields:
        lines.append(f"  field         {f} {m.field_shapes.get(f)}")
    for axis, c in m.coords.items():
        lines.append(f"  coordinate    {axis}: {len(c)} points in [{c[0]:.6g}, {c[-1]:.6g}]")
    for axis, bc in m.boundary_conditions.items():
        lines.append(f"  boundary      {axis}: {bc}")
    for k, v in m.coefficients.items():
        lines.append(f"  coefficient   {k} = {v:.6g}")
    ranges = m.extra.get("varying_ranges", {})
    for k in m.varying:
        lo, hi = ranges.get(k, [float("nan")] * 2)
        lines.append(f"  coefficient   {k}: per trajectory, in [{lo:.6g}, {hi:.6g}]")
    lines.append("  splits        " + ", ".join(f"{s} {n}" for s, n in m.splits.items()))
    for f, s in m.stats.items():
        lines.append(f"  stats         {f}: " + ", ".join(f"{k} {v:.6g}" for k, v in s.items()))
    src = m.source
    what = f"{src.get('kind', '?')} {src.get('name', '?')} v{src.get('version', '?')}"
    if src.get("kind") == "generator":
        what += f", seed {src.get('seed')}, params {src.get('params')}"
    else:
        files = src.get("files", [])
        what += f", {len(files)} file(s): " + ", ".join(str(f.get("name", f)) for f in files[:5])
        what += ", ..." if len(files) > 5 else ""
    lines.append(f"  source        {what}")
    return "\n".join(lines)


def format_overlap(report: Any) -> str:
    """A short table of the report for the terminal: one line per pair of splits, then the leaks."""
    from sfm.data.overlap import KINDS as kinds

    sizes = {side: {} for side in ("a", "b")}
    for p in report.pairs:
        sizes["a"][p.a], sizes["b"][p.b] = p.n_a, p.n_b
    lines = [
        f"{side.upper()}: {path} ({', '.join(f'{s} {n}' for s, n in sizes[side].items())})"
        for side, path in (("a", report.a), ("b", report.b))
    ]
    header = ["A split", "B split", "shared (of A's)", *kinds]
    rows = [
        [p.a, p.b, f"{p.overlapping}/{p.n_a}", *(str(p.by_kind.get(k, 0)) for k in kinds)]
        for p in report.pairs
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    leaks = report.leaks()
    if leaks:
        lines.append(
            "held-out trajectories in the other's train split: "
            + ", ".join(f"{p.a} of A ~ {p.b} of B: {p.overlapping}" for p in leaks)
        )
    else:
        lines.append("no held-out trajectory of either is in the other's train split")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
