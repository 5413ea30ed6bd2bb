"""The field-model path of sfm.train: windows -> torch datasets -> HF Trainer -> run folder, and resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sfm.data import generate_dataset
from sfm.errors import ConfigError
from sfm.models.field_io import FIELD_MODEL_FILE, WEIGHTS_FILE, load_field_run
from sfm.training import data as td
from sfm.training.fields import FieldCollator, prepare
from sfm.training.recipe import load_recipe

RECIPE = """\
data:
  path: {data}
  task: forecast
  task_options: {{context_frames: 2, horizon: 1, space_stride: 2}}
model:
  name_or_path: operator:fno
  fields: {{grid: true, coefficients: true, residual: true}}
  operator: {{n_modes: [8], hidden_channels: 8, n_layers: 2, projection_channels: 8}}
training:
  output_dir: {out}
  max_steps: 8
  per_device_train_batch_size: 8
  learning_rate: 5.0e-3
  logging_steps: 1
  save_steps: 4
  save_total_limit: 3
  seed: 0
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("fields") / "burgers"
    params = {"nu": [0.04, 0.08], "nx": 64, "nt": 11, "t_end": 0.5, "k_max": 2}
    return generate_dataset("burgers", 10, out, params=params, progress=False)


def _recipe(tmp_path, data, name="run", **overrides):
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(data=data, out=tmp_path / name))
    return load_recipe(path, [x for k, v in overrides.items() for x in (f"--{k}", str(v))])


def _sources(recipe):
    d = recipe.data
    return td.load_sources([td.Source(d.path, d.simulator, d.params, d.num_samples, d.seed)], progress=False)


def test_prepare_builds_datasets_model_and_record(tmp_path, data):
    recipe = _recipe(tmp_path, data)
    prepared = prepare(recipe, _sources(recipe), tmp_path / "run", progress=False)
    train = prepared.train_dataset
    assert len(train) == 8 * 9  # 8 training trajectories x 9 windows of 3 frames in 11
    assert prepared.eval_dataset is None
    assert prepared.record["data"]["num_train_windows"] == len(train)
    assert prepared.record["field_model"]["kind"] == "operator"
    spec = prepared.model.field_io.spec
    assert (spec.space, spec.context_frames, spec.coefficient_names) == ([32], 2, ["nu"])
    np.testing.assert_allclose(
        spec.mean[0], train.windows.data.astype(np.float64).mean(), rtol=1e-6, atol=1e-9
    )
    # The batched path (one gather) and the per-item path give the same tensors.
    idx = [3, 70, 0, 3]
    collate = FieldCollator()
    fast, slow = collate(train.__getitems__(idx)), collate([train[i] for i in idx])
    assert fast.keys() == slow.keys() == {"context", "coefficients", "target", "sfm_examples"}
    for key in fast:
        assert torch.equal(fast[key], slow[key]), key
    assert fast["context"].shape == (4, 2, 1, 32) and fast["context"].dtype == torch.float32
    assert fast["sfm_examples"].tolist()[1] == list(train.windows.trajectory_of(70))


def test_windows_dataset_through_a_dataloader_is_one_gather_per_batch(tmp_path, data):
    recipe = _recipe(tmp_path, data)
    train = prepare(recipe, _sources(recipe), tmp_path / "run").train_dataset
    calls = []
    real = train.windows.batch
    train.windows.batch = lambda i: calls.append(len(i)) or real(i)
    loader = torch.utils.data.DataLoader(train, batch_size=16, collate_fn=FieldCollator())
    assert sum(b["context"].shape[0] for b in loader) == len(train)
    assert calls == [16, 16, 16, 16, 8]


def test_prepare_refuses_what_field_models_cannot_train(tmp_path, data):
    recipe = _recipe(tmp_path, data)
    sources = _sources(recipe)
    recipe.data.task = "pde_identification"
    with pytest.raises(ConfigError, match="forecast"):
        prepare(recipe, sources, tmp_path)
    recipe = _recipe(tmp_path, data, **{"model.name_or_path": "operator:unet"})
    with pytest.raises(ConfigError, match="unknown operator"):
        prepare(recipe, _sources(recipe), tmp_path)


def _train(recipe, resume="auto"):
    from sfm.train import run

    return run(recipe, resume=resume, progress=False)


def test_trains_under_the_trainer_saves_and_resumes_exactly(tmp_path, data):
    """8 steps straight vs 4 steps, a lost run (only checkpoint-4 survives), then resume: same weights."""
    straight = _recipe(tmp_path, data, name="straight", **{"training.eval_steps": 4})
    result = _train(straight)
    out = result.output_dir
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.eval_loss is not None and np.isfinite(result.eval_loss)
    record = json.loads((out / "sfm_run.json").read_text())
    assert record["kind"] == "operator" and record["data"]["num_train_windows"] == 72
    assert (out / FIELD_MODEL_FILE).is_file() and (out / "checkpoint-4" / WEIGHTS_FILE).is_file()
    final = load_file(str(out / WEIGHTS_FILE))
    # The saved run predicts what the trained weights predict.
    predictor = load_field_run(out)
    win = prepare(straight, _sources(straight), out).train_dataset.windows
    b = win.batch(np.arange(10))
    model = predictor.model
    model.load_state_dict(final)
    with torch.no_grad():
        want = model(torch.from_numpy(b["context"]), torch.from_numpy(b["coefficients"]))["prediction"]
    assert np.array_equal(predictor.predict_frames(b["context"], b["coefficients"], 10), want.numpy())

    resumed = _recipe(tmp_path, data, name="resumed", **{"training.eval_steps": 4})
    out2 = _train(resumed).output_dir
    for path in out2.iterdir():  # lose everything after step 4, as a SIGKILL at step 5 would
        if path.name != "checkpoint-4":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = _train(resumed)
    assert again.output_dir == out2
    # It resumed (a fresh start with the same seed would also end at the same weights): metrics.jsonl was
    # lost with the rest, and only steps 5-8 were logged again.
    logged = [json.loads(line)["step"] for line in (out2 / "metrics.jsonl").read_text().splitlines()]
    assert min(logged) == 5 and max(logged) == 8
    for key, tensor in load_file(str(out2 / WEIGHTS_FILE)).items():
        torch.testing.assert_close(tensor, final[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
@pytest.mark.distributed
def test_ddp_on_two_processes_matches_one(tmp_path, data):
    """accelerate launch, 2 CPU processes (DDP over gloo), 4 windows each = one process with 8: same losses."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for name, cmd, per_device in (
        ("one", [sys.executable, "-m", "sfm.train"], 8),
        (
            "ddp",
            [
                accelerate,
                "launch",
                "--config_file",
                str(root / "launch/accelerate/cpu_ddp.yaml"),
                "-m",
                "sfm.train",
            ],
            4,
        ),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(RECIPE.format(data=data, out=tmp_path / name))
        args = [str(path), "--no-progress", "--training.max_steps", "4", "--training.global_batch_size", "8"]
        args += ["--training.per_device_train_batch_size", str(per_device)]
        proc = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=600, cwd=root)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "sfm_run.json").read_text())
    assert runs["ddp"]["distributed"]["world_size"] == 2
    assert runs["ddp"]["distributed"]["distributed_type"] == "MULTI_CPU"
    np.testing.assert_allclose(
        runs["ddp"]["train"]["loss_history"], runs["one"]["train"]["loss_history"], rtol=1e-4
    )


def test_reference_normalization_is_used_when_the_import_chose_it(tmp_path, data):
    """The Well's stats.yaml mean/std (recorded by the import as the normalization) reach the model's spec;
    without that choice the training split's statistics do."""
    import dataclasses

    from sfm.data import load_field_dataset
    from sfm.tasks import get_task_format
    from sfm.tasks.windows import FieldWindows, field_stats
    from sfm.training.fields import field_spec

    fieldset = load_field_dataset(data)
    fmt = get_task_format("forecast", context_frames=2, horizon=1, space_stride=2)
    windows = FieldWindows.from_split(fieldset.split("train"), fieldset.meta, fmt)
    own = field_spec(windows, fmt)
    np.testing.assert_allclose(own.mean, field_stats(windows)[0])
    extra = {
        **fieldset.meta.extra,
        "normalization": {"source": "reference"},
        "reference_stats": {"u": {"mean": 0.25, "std": 2.0}},
    }
    windows.meta = dataclasses.replace(fieldset.meta, extra=extra)
    ref = field_spec(windows, fmt)
    assert (ref.mean, ref.std) == ([0.25], [2.0])
