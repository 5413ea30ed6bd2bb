"""Slurm job arrays for a sweep: one array task per unfinished cell, plus one per unfinished stage.

``sfm scaling run SPEC --launcher slurm`` writes ``DIR/sweep.sbatch`` (and ``DIR/stages.sbatch`` when
pretraining or random-init stages are still to run) and submits them with ``sbatch``, the cells' array held
until the stages' array has succeeded (``--dependency=afterok``). Each array task runs the same commands a
person would::

    accelerate launch --config_file launch/accelerate/single_gpu.yaml -m sfm.train DIR/cells/<id>/recipe.yaml
    sfm eval --model DIR/cells/<id>/run --tasks DIR/cells/<id>/eval/<task>.yaml --out DIR/cells/<id>/results
    sfm scaling cell DIR --index N

Resubmitting after failures or time-outs is the same ``sfm scaling run`` command: finished cells are left
out of the new array, and a killed cell's training resumes from its last checkpoint. It is refused while
the sweep's arrays are still queued or running (``squeue``), which would train the same cells twice at once.
Data sets are generated once by ``sfm scaling run`` itself before submitting, so array tasks never race to
write the same cache folder.
"""

from __future__ import annotations

import getpass
import shlex
import shutil
import subprocess
from pathlib import Path

from sfm.errors import ConfigError, SfmError
from sfm.scaling.cells import cell_dir
from sfm.scaling.plan import Cell, Plan, Stage
from sfm.scaling.spec import SlurmSection
from sfm.scaling.sweep_data import generate_data
from sfm.utils.io import atomic_write_text, read_json

SWEEP_SCRIPT = "sweep.sbatch"
STAGES_SCRIPT = "stages.sbatch"
STAGES_JOB = "$STAGES_JOB"  # the stages array's job id, in printed (dry-run) commands


def submit(
    plan: Plan, out: Path, home: Path, stages: list[Stage], cells: list[Cell], *, parallel: int, dry_run: bool
) -> tuple[Path | None, list[str]]:
    """Write the array scripts for the unfinished ``stages`` and ``cells`` and submit them.

    Returns:
        (the cells' script or None when every cell is finished, the sbatch commands run or to run).

    Raises:
        SfmError: ``sbatch`` is not on the PATH (without ``dry_run``), or a submission failed.
    """
    acc = accelerate_config(plan.spec.launch.accelerate_config)
    sl = plan.spec.launch.slurm
    throttle = sl.max_concurrent or parallel
    stages_script = cells_script = None
    if stages:
        stages_script = out / STAGES_SCRIPT
        atomic_write_text(stages_script, stages_sbatch(plan.spec.name, out, home, stages, acc, sl, throttle))
    if cells:
        cells_script = out / SWEEP_SCRIPT
        atomic_write_text(cells_script, cells_sbatch(plan, out, home, cells, acc, sl, throttle))
    commands = []
    if stages_script:
        commands.append(f"sbatch --parsable {shlex.quote(str(stages_script))}")
    if cells_script:
        dep = f"--dependency=afterok:{STAGES_JOB} " if stages_script else ""
        commands.append(f"sbatch --parsable {dep}{shlex.quote(str(cells_script))}")
    if dry_run or not commands:
        return cells_script, commands
    if shutil.which("sbatch") is None:
        raise SfmError(
            f"sbatch not found on the PATH; the job script {cells_script or stages_script} is written: "
            f"submit it from a Slurm login node (or pass --dry-run to only write it)"
        )
    _refuse_running(plan.spec.name)
    generate_data(plan, home)  # here, once: array tasks writing the same data cache at once would race
    job = None
    for i, cmd in enumerate(commands):
        cmd = cmd.replace(STAGES_JOB, str(job)) if job else cmd
        commands[i] = cmd
        done = subprocess.run(shlex.split(cmd), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SfmError(f"`{cmd}` failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        job = done.stdout.strip().split(";")[0]  # --parsable prints "jobid" or "jobid;cluster"
    return cells_script, commands


def _refuse_running(name: str) -> None:
    """Submitting while this sweep's arrays still run would train the same unfinished cells twice at once."""
    if shutil.which("squeue") is None:
        return
    jobs = f"sfm-{name},sfm-{name}-stages"
    done = subprocess.run(
        ["squeue", "-h", "-o", "%i", "-u", getpass.getuser(), "-n", jobs],
        capture_output=True,
        text=True,
        check=False,
    )
    running = done.stdout.split()
    if running:
        raise SfmError(
            f"jobs of sweep {name} are still queued or running ({', '.join(running[:5])}); wait for "
            f"them (squeue -n {jobs}) or scancel them before resubmitting"
        )


def accelerate_config(path: str) -> Path:
    """The accelerate config file: as given, or relative to the sfm checkout (``launch/accelerate/...``)."""
    p = Path(path)
    if not p.is_absolute() and not p.is_file():
        p = Path(__file__).resolve().parents[2] / path
    if not p.is_file():
        raise ConfigError(f"launch.accelerate_config: no such file {path}")
    return p.resolve()


def cells_sbatch(
    plan: Plan, out: Path, home: Path, cells: list[Cell], acc: Path, sl: SlurmSection, throttle: int
) -> str:
    """The cells' job array: task i trains, evaluates and records the i-th unfinished cell."""
    spec_path = read_json(out / "sweep.json")["spec_path"]
    comment = [
        f"# Sweep {plan.spec.name}: one array task per unfinished cell ({len(cells)} of {len(plan.cells)}), "
        "written by",
        f"#   sfm scaling run {spec_path} --out {out} --launcher slurm",
        "# Resubmit with the same command after failures or time-outs: finished cells are skipped, and a",
        "# killed cell's training resumes from its last checkpoint.",
    ]
    lines = _header(f"sfm-{plan.spec.name}", len(cells), throttle, out, sl, comment)
    lines += _prologue(out, home, sl)
    lines += [
        "# cell INDEX FOLDER TASKS [sfm eval options]: train (unless done), evaluate, record cell.json",
        "cell() {",
        "    local index=$1 c=$2 tasks=$3 train_s=null",
        "    shift 3",
        '    if [ ! -f "$c/run/sfm_run.json" ]; then',
        "        SECONDS=0",
        f'        accelerate launch --config_file {shlex.quote(str(acc))} -m sfm.train "$c/recipe.yaml" '
        "--no-progress",
        "        train_s=$SECONDS",
        "    fi",
        "    SECONDS=0",
        '    sfm eval --model "$c/run" --tasks "$tasks" --out "$c/results" "$@"',
        '    printf \'{"train_s": %s, "eval_s": %s}\\n\' "$train_s" "$SECONDS" > "$c/timing.json"',
        '    sfm scaling cell "$SWEEP" --index "$index"',
        "}",
        "",
        'case "$SLURM_ARRAY_TASK_ID" in',
    ]
    for i, c in enumerate(cells):
        folder = cell_dir(out, c.id)
        planned = read_json(folder / "plan.json")["eval_tasks"]
        tasks = ",".join(str(folder / t) if t.endswith(".yaml") else t for t in planned)
        a = c.eval_args
        opts = f"--batch-size {a['batch_size']} --seed {a['seed']}"
        opts += f" --limit {a['limit']}" if a["limit"] is not None else ""
        q = shlex.quote
        lines += [f"  {i})  # {c.id}", f"    cell {c.index} {q(str(folder))} {q(tasks)} {opts} ;;"]
    lines += ['  *) echo "no cell for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def stages_sbatch(
    name: str, out: Path, home: Path, stages: list[Stage], acc: Path, sl: SlurmSection, throttle: int
) -> str:
    """The stages' job array: pretraining (stage after stage) or a random-init copy, one task per stage."""
    lines = _header(
        f"sfm-{name}-stages",
        len(stages),
        throttle,
        out,
        sl,
        [
            f"# Sweep {name}: stages the cells start from (pretraining, random-init copies), one array task",
            "# each; the cells' array (sweep.sbatch) waits for this one to succeed.",
        ],
    )
    lines += _prologue(out, home, sl)
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    for i, s in enumerate(stages):
        lines.append(f"  {i})  # {s.id}")
        if s.kind == "pretrain":
            for r in s.recipes:
                run = out / s.id / Path(r["training"]["output_dir"]).name
                lines.append(
                    f"    [ -f {shlex.quote(str(run / 'sfm_run.json'))} ] || accelerate launch "
                    f"--config_file {shlex.quote(str(acc))} -m sfm.train "
                    f"{shlex.quote(str(run) + '.yaml')} --no-progress"
                )
        else:
            lines.append(f'    sfm scaling cell "$SWEEP" --init {s.id}')
        lines.append("    ;;")
    lines += ['  *) echo "no stage for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def _header(job: str, n: int, throttle: int, out: Path, sl: SlurmSection, comment: list[str]) -> list[str]:
    lines = [
        "#!/bin/bash",
        *comment,
        f"#SBATCH --job-name={job}",
        f"#SBATCH --array=0-{n - 1}%{throttle}",
        f"#SBATCH --nodes={sl.nodes}",
        f"#SBATCH --time={sl.time}",
        f"#SBATCH --output={out}/slurm/%x-%A_%a.out",
    ]
    for key, value in (
        ("partition", sl.partition),
        ("account", sl.account),
        ("gpus-per-node", sl.gpus_per_node),
        ("cpus-per-task", sl.cpus_per_task),
        ("mem", sl.mem),
    ):
        if value is not None:
            lines.append(f"#SBATCH --{key}={value}")
    lines += [f"#SBATCH {x}" for x in sl.extra]
    return lines


def _prologue(out: Path, home: Path, sl: SlurmSection) -> list[str]:
    (out / "slurm").mkdir(parents=True, exist_ok=True)  # Slurm does not create the --output folder
    return [
        "",
        "set -euo pipefail",
        *sl.setup,
        f"cd {shlex.quote(str(Path.cwd()))}",
        f"export SFM_HOME={shlex.quote(str(home))}",
        "export TOKENIZERS_PARALLELISM=false",
        "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the GPUs do the arithmetic",
        f"SWEEP={shlex.quote(str(out))}",
        "",
    ]
