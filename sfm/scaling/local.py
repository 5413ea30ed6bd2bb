"""The local launcher: a sweep's stages and cells as subprocesses on this machine, N at once.

Each job is a short list of commands, each logged to a file in its folder; a job starts as soon as a slot is
free and the stages it needs are done, and the CPU cores are shared out between the jobs running at once
(``OMP_NUM_THREADS``). Interrupting the sweep kills its running commands; the next ``sfm scaling run``
resumes them (training from its last checkpoint).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfm.models.run import RUN_FILE
from sfm.scaling.cells import TIMING_FILE, cell_dir, read_cell
from sfm.scaling.plan import Cell, Plan, Stage
from sfm.utils.io import atomic_write_json, read_json

RUN_RECORD = RUN_FILE


@dataclass
class Job:
    """One unit of local work: commands run in order, each logged; ``needs`` are stage ids."""

    id: str
    needs: list[str]
    steps: list[tuple[str, list[str], Path]]
    folder: Path
    cell: Cell | None = None


def local_jobs(plan: Plan, out: Path, stages: list[Stage], cells: list[Cell]) -> list[Job]:
    """The commands of every unfinished stage and cell (finished training is not repeated)."""
    train = [sys.executable, "-m", "sfm.train"]
    scaling_cell = [sys.executable, "-m", "sfm.cli", "scaling", "cell", str(out)]
    jobs = []
    for s in stages:
        folder = out / s.id
        steps = [("init", [*scaling_cell, "--init", s.id], folder.with_suffix(".log"))]
        if s.kind == "pretrain":
            names = [Path(r["training"]["output_dir"]).name for r in s.recipes]
            steps = [
                (f"pretrain:{n}", [*train, str(folder / f"{n}.yaml"), "--no-progress"], folder / f"{n}.log")
                for n in names
                if not (folder / n / RUN_RECORD).is_file()
            ]
        jobs.append(Job(s.id, [], steps, folder))
    for c in cells:
        folder = cell_dir(out, c.id)
        steps = [("finish", [*scaling_cell, "--index", str(c.index)], folder / "eval.log")]
        if not (folder / "run" / RUN_RECORD).is_file():
            recipe = str(folder / "recipe.yaml")
            steps.insert(0, ("train", [*train, recipe, "--no-progress"], folder / "train.log"))
        jobs.append(Job(c.id, list(c.needs), steps, folder, c))
    return jobs


def _env(home: Path, parallel: int) -> dict[str, str]:
    """Subprocess environment: the CPU cores shared out between the cells running at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // parallel))
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        TOKENIZERS_PARALLELISM="false",
        SFM_HOME=str(home),
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    return env


def run_jobs(
    jobs: list[Job], done: set[str], report: Any, parallel: int, home: Path, *, progress: bool = True
) -> None:
    """Run ``jobs``, ``parallel`` at once, each as soon as the stages it needs are in ``done``.

    ``report`` (a :class:`~sfm.scaling.run.SweepRun`) collects the jobs run, failed and skipped.
    """
    env = _env(home, parallel)
    pending, running = list(jobs), {}
    procs: set[subprocess.Popen] = set()
    lock, stop = threading.Lock(), threading.Event()
    total = len(jobs)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        try:
            while pending or running:
                for job in list(pending):
                    if any(n in report.failed or n in report.skipped for n in job.needs):
                        pending.remove(job)
                        report.skipped.append(job.id)
                    elif len(running) < parallel and all(n in done for n in job.needs):
                        pending.remove(job)
                        running[pool.submit(_execute, job, env, procs, lock, stop)] = job
                if not running:
                    report.skipped += [j.id for j in pending]
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    failed_log, secs = fut.result()
                    report.ran.append(job.id)
                    if failed_log is None:
                        done.add(job.id)
                    else:
                        report.failed[job.id] = failed_log
                    if progress:
                        n = len(report.ran) + len(report.skipped)
                        print(
                            f"[{n}/{total}] {job.id}: {_outcome(job, failed_log)} ({secs:.0f} s)", flush=True
                        )
        except BaseException:
            stop.set()
            with lock:
                for p in procs:
                    p.kill()  # our own children only; their checkpoints let the next run resume
            raise


def _execute(
    job: Job, env: dict[str, str], procs: set, lock: threading.Lock, stop: threading.Event
) -> tuple[Path | None, float]:
    """Run a job's commands in order; returns (log of the failed command or None, seconds)."""
    t_job = time.perf_counter()
    for name, argv, log in job.steps:
        if stop.is_set():  # the sweep was interrupted: start nothing new
            return log, time.perf_counter() - t_job
        t0 = time.perf_counter()
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ {shlex.join(argv)}\n")
            fh.flush()
            with lock:
                p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
                procs.add(p)
            rc, cpu = _wait(p)
            with lock:
                procs.discard(p)
        if rc != 0:
            return log, time.perf_counter() - t_job
        if name == "train":
            timing = {"train_s": time.perf_counter() - t0, "train_cpu_s": cpu}
            atomic_write_json(job.folder / TIMING_FILE, timing)
        elif name.startswith("pretrain:"):
            path = job.folder / TIMING_FILE
            timing = read_json(path) if path.is_file() else {}
            atomic_write_json(path, {**timing, name: {"wall_s": time.perf_counter() - t0, "cpu_s": cpu}})
    return None, time.perf_counter() - t_job


def _wait(p: subprocess.Popen) -> tuple[int, float | None]:
    """Wait for ``p``; its exit code and the CPU-seconds it (and its children) used.

    CPU time, not wall time, is what a sweep costs on a shared machine: wall time there depends on the
    neighbours. ``os.wait4`` reports the child's own usage, which ``RUSAGE_CHILDREN`` cannot split between
    cells running at once.
    """
    if not hasattr(os, "wait4"):  # pragma: no cover - not POSIX
        return p.wait(), None
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_utime + usage.ru_stime


def _outcome(job: Job, failed_log: Path | None) -> str:
    if failed_log is not None:
        return f"FAILED, see {failed_log}"
    if job.cell is None:
        return "done"
    cell = read_cell(job.folder)
    if cell is None:
        return "done"
    v = cell["metrics"].get(cell["eval_task"], {}).get(cell["metric"], {}).get("value")
    return f"{cell['metric']} = {v:.4g}" if v is not None else f"{cell['metric']} not finite"
