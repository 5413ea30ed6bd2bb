"""Two processes building the same cached data set at once get one intact data set, equal to a serial build.

Two users (or two jobs of one sweep) may resolve the same ``$SFM_HOME/data/<sim>-<n>-<hash>`` folder at the
same moment. :func:`sfm.data.cache.ensure_dataset` takes a file lock beside the folder: one process builds (into
a temporary folder, renamed into place), the other waits and then reads the finished folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sfm.data.cache import ensure_dataset
from sfm.data.fieldset import load_field_dataset

PARAMS = {"nx": 32, "nt": 5, "t_end": 0.1}
# Each build is logged and slowed by a second, so two unsynchronized builders would both be seen building.
CHILD = """
import sys, time
from pathlib import Path
import sfm.data.fieldset as fieldset
real = fieldset.generate_dataset
def logged(*args, **kwargs):
    with open(sys.argv[2], "a") as log:
        log.write("build\\n")
    time.sleep(1.0)
    return real(*args, **kwargs)
fieldset.generate_dataset = logged
from sfm.data.cache import ensure_dataset
ensure_dataset(Path(sys.argv[1]), "heat", {params!r}, 6, 3, progress=False)
"""


def _arrays(path: Path) -> dict[str, np.ndarray]:
    ds = load_field_dataset(path)
    return {
        f"{name}/{col}": np.asarray(ds.split(name)[col])
        for name in ds.splits
        for col in ds.splits[name].column_names
    }


def test_two_processes_racing_on_one_cache_folder(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "heat-6-race"
    code = CHILD.format(params=PARAMS)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(target), str(tmp_path / "builds.log")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    assert (tmp_path / "builds.log").read_text().splitlines() == ["build"]  # the second one waited, then read
    # no half-built temporary folder, and no lock file, left behind
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    serial = ensure_dataset(tmp_path / "serial", "heat", dict(PARAMS), 6, 3, progress=False)
    raced, alone = _arrays(target), _arrays(serial)
    assert raced.keys() == alone.keys() and raced
    for key in alone:
        np.testing.assert_array_equal(raced[key], alone[key], err_msg=key)
