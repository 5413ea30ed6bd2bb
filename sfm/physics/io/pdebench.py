"""PDEBench files (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks) as field data sets.

PDEBench ships two layouts, both read here:

* single-array ``.hdf5``: ``tensor`` ``[N, T, X(, Y)]`` with ``x-coordinate``, ``y-coordinate`` and
  ``t-coordinate`` (advection, Burgers, 1D reaction-diffusion); Darcy files with ``nu`` ``[N, X, Y]`` (the
  permeability) and ``tensor`` ``[N, 1, X, Y]`` (the solution); compressible-flow (CFD) files with
  ``density``, ``pressure``, ``Vx``, ``Vy``, ``Vz`` ``[N, T, X(, Y, Z)]``;
* 2D incompressible Navier-Stokes ``.h5`` (``ns_incom_inhom_2d_512-0.h5``): ``velocity`` ``[N, T, X, Y, 2]``,
  ``particles`` ``[N, T, X, Y, 1]`` (a passive tracer), ``force`` ``[N, X, Y, 2]`` (constant in time) and
  ``t`` ``[N, T]``; no coordinates (cell centres of the unit square are assumed, and noted);
* per-seed ``.h5``: one group per trajectory, ``0000/data`` ``[T, X(, Y), C]`` with ``0000/grid/x``,
  ``grid/y``, ``grid/t`` (2D diffusion-reaction, shallow water, diffusion-sorption).

The PDE family and its coefficients come from the file name where PDEBench puts them
(``1D_Burgers_Sols_Nu0.01.hdf5``, ``ReacDiff_Nu0.5_Rho1.0.hdf5``,
``2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5``, ...); numeric file attributes (``Nu``,
``beta``, ``rho``, ``eta``, ``zeta``, ``M``), where present, take precedence. Several files of one family
with different coefficients become one data set whose differing coefficients are per-trajectory columns.

Time coordinate: PDEBench's generators save ``t-coordinate = arange(T + 1) * dt_save`` beside ``T`` frames,
frame ``k`` being the state at ``k * dt_save``; the extra last entry is not a frame. A ``t-coordinate`` of
``T + 1`` entries is therefore cut to its first ``T``; one of ``T`` entries is used as is.

Coefficients of families sfm also simulates follow the simulator's convention, so a family means one
equation with one set of coefficients whether generated or imported: PDEBench writes Burgers' viscous term
as ``(Nu/pi) u_xx`` where sfm writes ``nu u_xx``, so ``nu = Nu/pi`` is stored; its reaction-diffusion
``Nu`` is sfm's diffusivity ``D``. The file values stay in ``extra.pdebench_coefficients``.

Column names: scalar PDEs give ``u``; Darcy gives ``a`` (permeability, PDEBench's ``nu``) and ``u``, as
sfm's own Darcy simulator does; CFD keeps PDEBench's names; incompressible Navier-Stokes gives ``Vx``,
``Vy`` (as CFD names velocity), ``particles``, and ``Fx``, ``Fy`` with a time axis of length 1; per-seed channels are named per family
(``u``/``v`` for 2D diffusion-reaction, ``h`` for shallow water) or by the ``fields`` option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sfm.errors import ConfigError, DataError, did_you_mean
from sfm.physics.io._pdebench_layout import (
    CFD_KEYS,
    inspect_arrays,
    inspect_ns_incom,
    inspect_seeds,
    layout_kind,
)
from sfm.physics.io.hdf5 import attr_number, dataset, open_h5, take_rows
from sfm.physics.io.rows import FileInfo, FileRows, check_same_grid, merge_coefficients
from sfm.physics.metadata import SPATIAL_AXES, FieldMeta
from sfm.registry import IMPORTERS

VERSION = "1"
_NUM = r"([0-9.]+(?:[eE][-+]?[0-9]+)?)"
# Numeric file attributes PDEBench's merge script writes, and the coefficient each one is.
_ATTRS = {
    "Nu": "nu",
    "nu": "nu",
    "beta": "beta",
    "rho": "rho",
    "Rho": "rho",
    "eta": "eta",
    "zeta": "zeta",
    "M": "M",
    "viscosity": "nu",
}


@dataclass(frozen=True)
class Family:
    """A PDEBench problem: equation, words, boundary conditions, per-seed channel names."""

    equation: str
    description: str
    boundary: str = "periodic"
    channels: tuple[str, ...] = ("u",)
    #: (PDEBench name, sfm name, factor): how a PDEBench coefficient becomes the one of sfm's simulator of
    #: the same family, so a family means one equation with one set of coefficients in every data set.
    convert: tuple[tuple[str, str, float], ...] = ()


FAMILIES: dict[str, Family] = {
    "advection": Family(
        "u_t + beta*u_x = 0",  # the equation strings of families sfm simulates are the simulators' own
        "Linear advection of a scalar u at constant speed beta on the periodic interval (0, 1) "
        "(PDEBench 1D advection, t in [0, 2]).",
    ),
    "burgers": Family(
        "u_t + u*u_x = nu*u_xx",
        "Viscous Burgers equation for u on the periodic interval (0, 1) (PDEBench 1D Burgers). nu is the "
        "viscosity itself, as in sfm's burgers simulator: PDEBench writes the viscous term (Nu/pi) u_xx, so "
        "the 'Nu' of a file name was divided by pi (extra.pdebench_coefficients keeps the originals).",
        convert=(("nu", "nu", 1 / np.pi),),
    ),
    "diffusion_reaction": Family(
        "u_t = D*u_xx + rho*u*(1 - u)",
        "Diffusion with a logistic (Fisher-KPP) reaction for u on the periodic interval (0, 1) "
        "(PDEBench 1D reaction-diffusion). D is the diffusivity (PDEBench's 'Nu'), rho the reaction rate.",
        convert=(("nu", "D", 1.0),),
    ),
    "darcy": Family(
        "-(a*u_x)_x - (a*u_y)_y = beta, u = 0 on the boundary",
        "Steady Darcy flow on the unit square: permeability a(x) (column a, PDEBench's 'nu'), solution u "
        "(column u, PDEBench's 'tensor'), constant forcing beta, u = 0 on the boundary (PDEBench 2D Darcy).",
        boundary="dirichlet",
        channels=("a", "u"),
    ),
    "compressible_navier_stokes": Family(
        "rho_t + div(rho*v) = 0; rho*(v_t + (v.grad)v) = -grad(p) + eta*lap(v) + (zeta + eta/3)*grad(div(v)); "
        "E_t + div((E + p)*v - v.sigma') = 0",
        "Compressible Navier-Stokes equations for density rho (column density), velocity v (Vx, Vy, Vz) and "
        "pressure p (pressure), with shear viscosity eta, bulk viscosity zeta and initial Mach number M "
        "(PDEBench CFD).",
        channels=CFD_KEYS,
    ),
    "incompressible_navier_stokes": Family(
        "v_t + (v.grad)v = -grad(p) + nu*lap(v) + F; div(v) = 0; c_t + v.grad(c) = 0",
        "Incompressible Navier-Stokes equations for the velocity v (columns Vx, Vy) on the unit square, "
        "driven by a forcing F constant in time (Fx, Fy, one frame per trajectory), carrying a passive "
        "tracer c (particles) (PDEBench 2D inhomogeneous incompressible NS). The viscosity nu is recorded "
        "only where a file attribute gives it.",
        boundary="dirichlet",
        channels=("Vx", "Vy", "particles", "Fx", "Fy"),
    ),
    "diffusion_reaction_2d": Family(
        "u_t = Du*lap(u) + u - u^3 - k - v; v_t = Dv*lap(v) + u - v",
        "FitzHugh-Nagumo activator u and inhibitor v on the square (-1, 1)^2 with no-flux boundaries "
        "(PDEBench 2D diffusion-reaction; Du, Dv, k are in the per-seed config kept in extra.config).",
        boundary="neumann",
        channels=("u", "v"),
    ),
    "shallow_water": Family(
        "h_t + (h*u)_x + (h*v)_y = 0; (h*u)_t + (h*u^2 + g*h^2/2)_x + (h*u*v)_y = 0; "
        "(h*v)_t + (h*u*v)_x + (h*v^2 + g*h^2/2)_y = 0",
        "Shallow-water equations, radial dam break: water height h (PDEBench 2D shallow water; the "
        "velocities are not stored).",
        boundary="neumann",
        channels=("h",),
    ),
    "diffusion_sorption": Family(
        "u_t = D/R(u)*u_xx, R(u) = 1 + (1 - phi)/phi*rho_s*k*n_f*u^(n_f - 1)",
        "Diffusion with Freundlich sorption (retardation R(u)) of a contaminant u on (0, 1) "
        "(PDEBench 1D diffusion-sorption).",
        boundary="dirichlet u=1 at x=0, cauchy at x=1",
    ),
}

# (pattern on the file stem, family, coefficient names of the numeric groups in order)
_NAMES: list[tuple[re.Pattern, str, tuple[str, ...]]] = [
    (re.compile(rf"1D_Advection_Sols_beta{_NUM}"), "advection", ("beta",)),
    (re.compile(rf"1D_Burgers_Sols_Nu{_NUM}"), "burgers", ("nu",)),
    (re.compile(rf"ReacDiff(?:_react)?_Nu{_NUM}_Rho{_NUM}"), "diffusion_reaction", ("nu", "rho")),
    (re.compile(rf"2D_DarcyFlow_beta{_NUM}(?:_Train|_Test)?"), "darcy", ("beta",)),
    (
        re.compile(
            rf"[123]D_CFD_(?:Rand|Turb|Shock)(?:_M{_NUM})?_Eta{_NUM}_Zeta{_NUM}_(periodic|trans)(?:_\d+)?(?:_Train|_Test)?"
        ),
        "compressible_navier_stokes",
        ("M", "eta", "zeta", "bc"),
    ),
    (re.compile(r"ns_incom_[A-Za-z0-9_-]+"), "incompressible_navier_stokes", ()),
    (re.compile(r"2D_diff-react_NA_NA"), "diffusion_reaction_2d", ()),
    (re.compile(r"2D_rdb_NA_NA"), "shallow_water", ()),
    (re.compile(r"1D_diff-sorp_NA_NA"), "diffusion_sorption", ()),
]


def parse_name(path: Path) -> tuple[str | None, dict[str, float], str | None]:
    """Family, coefficients and boundary kind that PDEBench encodes in a file name (None if unknown).

    Example:
        >>> parse_name(Path("2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"))
        ('compressible_navier_stokes', {'M': 0.1, 'eta': 0.01, 'zeta': 0.01}, 'periodic')
    """
    stem = path.name.rsplit(".", 1)[0]
    for pattern, family, names in _NAMES:
        m = pattern.fullmatch(stem)
        if m:
            coeffs, bc = {}, None
            for name, value in zip(names, m.groups()):
                if name == "bc":
                    bc = value
                elif value is not None:
                    coeffs[name] = float(value)
            return family, coeffs, bc
    return None, {}, None


class PDEBenchRows(FileRows):
    """Rows of one or more PDEBench files (see the module docstring for the layouts)."""

    def read_file(self, info: FileInfo, local: np.ndarray) -> dict[str, np.ndarray]:
        with open_h5(info.path) as f:
            if info.extra["layout"] == "seeds":
                keys = info.extra["keys"]
                data = np.stack([dataset(f[keys[i]], "data", info.path)[()] for i in local])
                return {name: data[..., c] for c, name in enumerate(self.meta.fields)}
            if info.extra["layout"] == "ns_incom":
                return _read_components(f, info, local)
            out = {}
            for name, key in info.extra["keys"].items():
                arr = take_rows(dataset(f, key, info.path), local)
                out[name] = arr[:, None] if info.extra["layout"] == "darcy" and key == "nu" else arr
            return out

    def source_key(self, info: FileInfo, column: str) -> str:
        if info.extra["layout"] == "seeds":
            return f"data[..., {self.meta.fields.index(column)}] ({column})"
        if info.extra["layout"] == "ns_incom":
            key, component = info.extra["keys"][column]
            return f"{key}[..., {component}] ({column})"
        return info.extra["keys"][column]


def _read_components(f: h5py.File, info: FileInfo, local: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of an incompressible Navier-Stokes file: each dataset read once, split into components."""
    out: dict[str, np.ndarray] = {}
    by_key: dict[str, list[tuple[str, int]]] = {}
    for column, (key, component) in info.extra["keys"].items():
        by_key.setdefault(key, []).append((column, component))
    for key, columns in by_key.items():
        arr = take_rows(dataset(f, key, info.path), local)
        if key == "particles" and arr.ndim == len(info.extra["space"]) + 2:
            arr = arr[..., None]  # a tracer stored without its channel axis
        for column, component in columns:
            part = arr[..., component]
            out[column] = part[:, None] if key == "force" else part  # the force: one frame per trajectory
    return out


@IMPORTERS.register("pdebench", description="PDEBench .hdf5 (single arrays) and .h5 (per-seed groups) files")
def open_pdebench(
    paths: list[Path],
    *,
    family: str | None = None,
    fields: list[str] | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> PDEBenchRows:
    """Open PDEBench files as one row source.

    Args:
        paths: Files, or folders whose ``*.hdf5``/``*.h5`` files are all taken.
        family: The PDE family, for files whose names do not say it (one of :data:`FAMILIES`).
        fields: Column names for the channels of per-seed ``.h5`` files.
        limit: Take only the first ``limit`` trajectories of each file.
        split: Put every trajectory into this split (``train``, ``validation`` or ``test``) instead of a
            seeded split; fewer than 3 trajectories without it all go to ``train``.

    Raises:
        DataError: an unreadable file, an unknown layout, missing keys, coordinates disagreeing with the
            data, or files of different families or grids.
        ConfigError: an unknown ``family`` or a bad ``limit``.
    """
    if family is not None and family not in FAMILIES:
        raise ConfigError(
            f"pdebench: unknown family {family!r}{did_you_mean(family, FAMILIES)}; "
            f"families: {', '.join(FAMILIES)}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"pdebench: limit must be a positive integer, got {limit!r}")
    files = _expand(paths)
    inspected = [_inspect(p, family, fields, limit) for p in files]
    infos, metas = [i for i, _ in inspected], [m for _, m in inspected]
    check_same_grid(infos, metas)
    fixed, varying = merge_coefficients(infos)
    extra = dict(metas[0].extra, license="cc-by-4.0")
    if "pdebench_coefficients" in extra:  # one entry per file, as PDEBench named them
        extra["pdebench_coefficients"] = {
            k: v for m in metas for k, v in m.extra["pdebench_coefficients"].items()
        }
    meta = metas[0].replace(
        coefficients=fixed,
        varying=varying,
        extra=extra,
        source={
            "kind": "importer",
            "name": "pdebench",
            "format": "PDEBench",
            "version": VERSION,
            "files": [{"name": i.path.name, "trajectories": i.num_rows} for i in infos],
            "options": {
                k: v
                for k, v in {"family": family, "fields": fields, "limit": limit, "split": split}.items()
                if v
            },
        },
    )
    return PDEBenchRows(meta, infos, split=split)


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("*.hdf5"), *p.glob("*.h5")])
            if not found:
                raise DataError(f"{p}: no .hdf5 or .h5 files in this folder")
            out += found
        else:
            out.append(p)
    return out


def _inspect(
    path: Path, family: str | None, fields: list[str] | None, limit: int | None
) -> tuple[FileInfo, FieldMeta]:
    name_family, coeffs, bc = parse_name(path)
    with open_h5(path) as f:
        layout = layout_kind(f, path)
        by_layout = {"cfd": "compressible_navier_stokes", "ns_incom": "incompressible_navier_stokes"}
        fam = family or name_family or by_layout.get(layout)
        if fam is None:
            raise DataError(
                f"{path}: cannot tell the PDE family from the file name (PDEBench names look like "
                f"1D_Burgers_Sols_Nu0.01.hdf5); pass family=NAME, one of {', '.join(FAMILIES)}"
            )
        for attr, coeff in _ATTRS.items():
            value = attr_number(f, attr)
            if value is not None:
                coeffs[coeff] = value
        if layout == "seeds":
            n, keys, shapes, coords, extra = inspect_seeds(f, path, fields or list(FAMILIES[fam].channels))
        elif layout == "ns_incom":
            n, keys, shapes, coords, extra = inspect_ns_incom(f, path)
        else:
            n, keys, shapes, coords, extra = inspect_arrays(f, path, layout)
    if FAMILIES[fam].convert:
        extra["pdebench_coefficients"] = {path.name: dict(coeffs)}
        for old, new, factor in FAMILIES[fam].convert:
            if old in coeffs:
                coeffs[new] = coeffs.pop(old) * factor
    info = FileInfo(
        path=path,
        num_rows=min(n, limit or n),
        coefficients=coeffs,
        extra={"layout": layout, "keys": keys, "space": [len(c) for a, c in coords.items() if a != "t"]},
    )
    spatial = [a for a in SPATIAL_AXES if a in coords]
    kind = {"trans": "outgoing (transmissive)"}.get(bc or "", bc) or FAMILIES[fam].boundary
    meta = FieldMeta(
        family=fam,
        equation=FAMILIES[fam].equation,
        description=FAMILIES[fam].description,
        fields=list(shapes),
        coords=coords,
        boundary_conditions={a: kind for a in spatial},
        field_shapes=shapes,
        extra=extra,
    )
    return info, meta
