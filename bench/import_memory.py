"""Import memory: a PDEBench file of several GiB imports with flat memory (the importer streams by chunk).

    python bench/import_memory.py                  # 0.75 GiB and 3 GiB 2D incompressible NS files
    python bench/import_memory.py --gib 0.5 1      # other sizes
    python bench/import_memory.py --quick          # 0.05 and 0.2 GiB (a smoke run)

For each size it writes a synthetic file in PDEBench's 2D incompressible Navier-Stokes layout
(``velocity`` [N, T, X, Y, 2], ``particles`` [N, T, X, Y, 1], ``force`` [N, X, Y, 2], ``t`` [N, T]; float32,
written slab by slab so writing needs little memory either), imports it with ``sfm data import pdebench`` in
a fresh subprocess, and prints, measured in this run:

* the file size and the import's wall time;
* the import process's peak resident memory (``ru_maxrss``), its peak anonymous memory (heap, sampled from
  ``/proc/self/status`` every 20 ms; file-backed pages of memory-mapped Arrow files count in RSS but the
  kernel drops them under pressure, so anonymous memory is what must stay flat) and its resident memory
  right after importing sfm (the baseline);
* peak / file-size ratios, and a spot check that a few imported trajectories equal the file's.

Everything is written under ``--tmp`` (default: the system temp folder) and deleted afterwards; free disk is
checked first (the file, the chunk files and the data set coexist: about 3x the file size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

NT, NX = 50, 128  # 50 frames of 128 x 128: ~10 MiB per trajectory, like a downsampled PDEBench NS file
_CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


def write_file(path: Path, gib: float) -> int:
    """Write a synthetic NS file of about ``gib`` GiB, 8 trajectories at a time; returns trajectories."""
    import h5py

    per_traj = NT * NX * NX * 3 * 4 + NX * NX * 2 * 4
    n = max(3, int(gib * 2**30 / per_traj))
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        v = f.create_dataset("velocity", (n, NT, NX, NX, 2), "f4")
        p = f.create_dataset("particles", (n, NT, NX, NX, 1), "f4")
        force = f.create_dataset("force", (n, NX, NX, 2), "f4")
        f["t"] = np.tile(np.arange(NT, dtype=np.float32) * 0.05, (n, 1))
        for a in range(0, n, 8):
            b = min(n, a + 8)
            v[a:b] = rng.random((b - a, NT, NX, NX, 2), dtype=np.float32)
            p[a:b] = rng.random((b - a, NT, NX, NX, 1), dtype=np.float32)
            force[a:b] = rng.random((b - a, NX, NX, 2), dtype=np.float32)
    return n


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def child_import(path: str, out: str) -> None:
    """Runs in the subprocess: import ``path`` and print the memory figures as JSON."""
    from sfm.data import import_dataset, load_field_dataset

    baseline = _status_kib("VmRSS")
    peak_anon = [_status_kib("RssAnon")]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak_anon[0] = max(peak_anon[0], _status_kib("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    import_dataset("pdebench", [path], out, split="train", progress=False)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    ds = load_field_dataset(out)
    import h5py

    index = ds.column("train", "source_index")
    picks = [0, len(index) // 2, len(index) - 1]
    with h5py.File(path) as f:
        equal = all(
            np.array_equal(ds.split("train")[int(r)]["Vy"], f["velocity"][int(index[r]), ..., 1])
            for r in picks
        )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": len(index),
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "peak_anon_kib": peak_anon[0],
                "baseline_kib": baseline,
                "equal": bool(equal),
            }
        )
    )


def run_size(gib: float, tmp: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sfm-import-memory-", dir=tmp))
    try:
        path = work / "ns_incom_inhom_2d_128-0.h5"
        start = time.perf_counter()
        n = write_file(path, gib)
        write_s = time.perf_counter() - start
        size = path.stat().st_size
        env = {**os.environ, **_CHILD_ENV}
        proc = subprocess.run(
            [sys.executable, __file__, "--_child", str(path), str(work / "ds")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"import failed:\n{proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"gib": gib, "trajectories": n, "file_bytes": size, "write_s": write_s, **result}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, nargs="+", default=[0.75, 3.0], help="file sizes in GiB")
    ap.add_argument("--quick", action="store_true", help="0.05 and 0.2 GiB")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="scratch folder")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child_import(*args._child)
        return
    sizes = [0.05, 0.2] if args.quick else args.gib
    need = 3.2 * max(sizes) * 2**30
    free = shutil.disk_usage(args.tmp).free
    if free < need:
        raise SystemExit(
            f"{args.tmp}: {free / 2**30:.1f} GiB free, this run needs about {need / 2**30:.1f} GiB"
        )
    print(
        f"{'file':>10} {'traj':>5} {'import s':>9} {'peak RSS':>9} {'peak anon':>10} {'baseline':>9} "
        f"{'RSS/file':>9} {'anon/file':>10} equal"
    )
    for gib in sizes:
        r = run_size(gib, args.tmp)
        mib = 2**10
        print(
            f"{r['file_bytes'] / 2**30:8.2f}Gi {r['trajectories']:5d} {r['seconds']:9.1f} "
            f"{r['peak_rss_kib'] / mib:7.0f}Mi {r['peak_anon_kib'] / mib:8.0f}Mi {r['baseline_kib'] / mib:7.0f}Mi "
            f"{r['peak_rss_kib'] * 1024 / r['file_bytes']:9.3f} {r['peak_anon_kib'] * 1024 / r['file_bytes']:10.3f} "
            f"{r['equal']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
