"""Model cards: every template variable supplied, every model-index number equal to the results JSON, honest
limitations computed from the numbers, the recipe reproducible from the card, and a clear offline error."""

from __future__ import annotations

import json

import jinja2
import pytest
import yaml
from huggingface_hub import ModelCard

from sfm.errors import DataError
from sfm.harness.results import EvalResults, MetricValue, ModelInfo, Scores, TaskResult
from sfm.physics.metadata import FieldMeta
from sfm.publish.cards import (
    TEMPLATE,
    card_variables,
    model_card,
    read_run,
    select_results,
    template_variables,
    write_model_card,
)
from sfm.utils.provenance import model_fingerprint

RECIPE = {
    "data": {
        "path": None,
        "simulator": "burgers",
        "params": {"nu": [0.02, 0.1], "nx": 16, "nt": 6},
        "num_samples": 8,
        "seed": 0,
        "task": "forecast",
        "task_options": {"context_frames": 2, "horizon": 1, "space_stride": 2},
        "encoding": "bins",
        "encoding_options": {"n_bins": 63, "low": -4.0, "high": 4.0},
    },
    "model": {"name_or_path": "tiny-llama", "tiny": {"hidden_size": 32, "num_hidden_layers": 2}},
    "peft": {
        "method": "lora",
        "r": 4,
        "alpha": 8.0,
        "dropout": 0.0,
        "target_modules": None,
        "new_tokens": "rows",
    },
    "training": {
        "output_dir": "runs/q/model",
        "max_steps": 5,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 0.003,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch",
        "seed": 0,
        "bf16": False,
        "fp16": False,
    },
    "evaluation": {"tasks": ["forecast/b", "robust/b"], "limit": None, "batch_size": 8},
}


def _meta() -> FieldMeta:
    return FieldMeta(
        family="burgers",
        equation="u_t + u*u_x = nu*u_xx",
        description="Viscous Burgers on a periodic interval.",
        fields=["u"],
        coords={"t": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "x": [i / 16 for i in range(16)]},
        boundary_conditions={"x": "periodic"},
        varying=["nu"],
        splits={"train": 6, "validation": 1, "test": 1},
        stats={"u": {"mean": 0.01, "std": 0.5, "min": -1.2, "max": 1.3, "abs_mean": 0.4}},
        source={"kind": "generator", "name": "burgers", "version": 1},
        field_shapes={"u": [6, 16]},
    )


def make_run(root, *, base="tiny-llama", method="lora"):
    """A run folder as sfm.train leaves it (weights are stand-in bytes), with its data set beside it."""
    run = root / "runs/q/model"
    run.mkdir(parents=True)
    (run / "adapter_model.safetensors").write_bytes(b"weights" * 10)
    (run / "sfm_encoding.json").write_text("{}")
    (run / "adapter_config.json").write_text("{}")
    (run / "training_args.bin").write_bytes(b"pickle")
    (run / "checkpoint-5").mkdir()
    (run / "checkpoint-5/optimizer.pt").write_bytes(b"state")
    _meta().save(root / "data/burgers-8")
    recipe = json.loads(json.dumps(RECIPE))
    recipe["model"]["name_or_path"], recipe["peft"]["method"] = base, method
    record = {
        "recipe": recipe,
        "recipe_path": "/somewhere/recipe.yaml",
        "base_model": base,
        "tiny_base": base == "tiny-llama",
        "data": {
            "path": "data/burgers-8",
            "family": "burgers",
            "fields": ["u"],
            "num_train_trajectories": 6,
            "num_train_examples": 24,
        },
        "task": {"name": "forecast", "options": recipe["data"]["task_options"]},
        "encoding": {"encoding": {"name": "bins", "n_bins": 63, "low": -4.0, "high": 4.0}, "fields": ["u"]},
        "parameters": {"trainable": 12_345, "total": 98_765},
        "train": {
            "steps": 5,
            "loss_history": [3.0, 2.5],
            "train_loss": 2.7,
            "eval_loss": None,
            "runtime_s": 1.5,
            "tokens": 4800,
        },
        "distributed": {"world_size": 1, "distributed_type": "NO", "zero_stage": None, "device": "cpu"},
        "sfm_version": "0.1.0",
        "git": "abc123",
        "date": "2026-11-29T11:47:42+00:00",
    }
    (run / "sfm_run.json").write_text(json.dumps(record))
    return run


def mv(v, lo, hi, n=8):
    return MetricValue(v, lo, hi, n)


def make_results(run, *, date="2026-11-30T00:00:00+00:00", nrmse=0.8):
    """Two tasks: a rollout (windows, curves, a non-finite metric) and a robustness task (noise curve)."""
    data = {"simulator": "burgers", "params": {"nu": [0.02, 0.1]}, "split": "test"}
    model = Scores(
        metrics={
            "nrmse": mv(nrmse, 0.7, 0.9),
            "rmse": mv(0.05, 0.04, 0.06),
            "max_error": MetricValue(None, n=8),
        },
        windows={"t1": {"nrmse": mv(0.3, 0.25, 0.35)}, "t2-3": {"nrmse": mv(1.1, 0.9, 1.3)}},
        curves={"nrmse": [0.3, 0.9, 1.3]},
    )
    pers = Scores(
        metrics={"nrmse": mv(0.4, 0.35, 0.45), "rmse": mv(0.02, 0.015, 0.025)},
        windows={"t1": {"nrmse": mv(0.2, 0.15, 0.25)}},
        curves={"nrmse": [0.2, 0.4, 0.6]},
    )
    rollout = TaskResult(
        "forecast/b",
        2,
        "forecast",
        "nrmse",
        n_examples=8,
        validity=0.9375,
        model=model,
        baselines={"persistence": pers},
        data_fingerprint="feedbeef",
        config={"description": "rollout of 3 frames", "data": data, "invalid": "persistence"},
    )
    noise = {
        "levels": [0.0, 0.05, 0.1],
        "metric": "nrmse",
        "model": [0.2, 0.35, None],
        "persistence": [0.3, 0.3, 0.31],
    }
    robust = TaskResult(
        "robust/b",
        1,
        "robustness",
        "nrmse",
        n_examples=8,
        model=Scores(metrics={"nrmse": mv(0.25, 0.2, 0.3)}),
        baselines={"persistence": Scores(metrics={"nrmse": mv(0.3, 0.28, 0.33)})},
        extra={"noise_curve": noise},
        config={"data": data},
    )
    info = ModelInfo(
        name="q/model",
        kind="model",
        path=str(run),
        base_model="tiny-llama",
        fingerprint=model_fingerprint(run),
    )
    return EvalResults(
        model=info,
        tasks={t.task: t for t in (rollout, robust)},
        date=date,
        seed=3,
        config={"tasks": ["forecast/b", "robust/b"], "limit": 8, "batch_size": 8, "seed": 3},
    )


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path)


@pytest.fixture
def results(run, tmp_path):
    r = make_results(run)
    r.save(tmp_path / "results")
    return r


def test_every_template_variable_is_supplied(run, results):
    wanted = template_variables()
    supplied = set(card_variables(run, read_run(run), [results])) | {"card_data"}
    assert wanted == supplied, f"missing: {wanted - supplied}, unused: {supplied - wanted}"
    body = (
        jinja2.Environment(undefined=jinja2.StrictUndefined)
        .from_string(TEMPLATE.read_text())
        .render(card_data="x: 1", **card_variables(run, read_run(run), [results]))
    )
    assert "{{" not in body and "{%" not in body
    assert all(v.strip() for k, v in card_variables(run, read_run(run), [results]).items() if k != "figures")


def test_every_section_macro_gets_exactly_its_context(run, results):
    from sfm.publish import templating
    from sfm.publish.cards.render import SECTIONS, section_contexts

    module = templating.environment().get_template(SECTIONS).module
    macros = {n for n in dir(module) if not n.startswith("_")}
    contexts = section_contexts(run, read_run(run), [results])
    assert set(contexts) == macros  # no section without its prose, no prose without its facts
    for name, ctx in contexts.items():
        assert set(getattr(module, name).arguments) == set(ctx), name


def _expected_numbers(results_json):
    """(task, version, metric, config) -> (value, ci_low, ci_high, n) for every finite number of the model."""
    want = {}
    for name, t in results_json["tasks"].items():
        v = t["version"]
        for m, x in t["model"]["metrics"].items():
            if x["value"] is not None:
                want[(name, v, m, None)] = (x["value"], x["ci_low"], x["ci_high"], x["n"])
        for w, ms in t["model"]["windows"].items():
            for m, x in ms.items():
                want[(name, v, m, w)] = (x["value"], x["ci_low"], x["ci_high"], x["n"])
        nc = t["extra"].get("noise_curve")
        if nc:
            for level, x in zip(nc["levels"], nc["model"]):
                if x is not None:
                    want[(name, v, nc["metric"], f"noise={level:g}")] = (x, None, None, None)
        want[(name, v, "validity", None)] = (t["validity"], None, None, None)
    return want


def test_every_model_index_number_equals_the_results_json(run, results, tmp_path):
    path = write_model_card(run, [results])
    card = ModelCard.load(path)  # offline: a local file
    raw = json.loads((tmp_path / "results/results.json").read_text())
    want = _expected_numbers(raw)
    got = {}
    for e in card.data.eval_results:
        assert e.dataset_config == f"v{raw['tasks'][e.dataset_type]['version']}"  # the version is recorded
        assert e.dataset_args == {"task_version": raw["tasks"][e.dataset_type]["version"]}
        args = e.metric_args or {}
        key = (e.dataset_type, int(e.dataset_config[1:]), e.metric_type, e.metric_config)
        assert key not in got, key
        got[key] = (e.metric_value, args.get("ci_low"), args.get("ci_high"), args.get("n"))
    assert got == want  # every number, exactly (floats survive YAML), and nothing else
    assert len(want) == 2 + 2 + 2 + 1 + 1 + 1  # rollout: 2 finite metrics, 2 windows, validity; robust: ...
    rollout = next(e for e in card.data.eval_results if e.dataset_type == "forecast/b")
    assert (rollout.task_type, rollout.dataset_split, rollout.dataset_revision) == (
        "time-series-forecasting",
        "test",
        "feedbeef",
    )


def test_metadata_for_a_tiny_base(run, results):
    card = model_card(run, [results], license="mit", dataset="org/burgers")
    d = card.data
    assert d.base_model is None  # "tiny-llama" is not a Hub id
    assert (d.library_name, d.license, d.datasets, d.model_name) == (
        "peft",
        "mit",
        ["org/burgers"],
        "q/model",
    )
    assert {
        "sfm",
        "scientific-machine-learning",
        "pde",
        "burgers",
        "lora",
        "forecast",
        "encoding-bins",
    } <= set(d.tags)
    assert "a tiny backbone built from a config" in card.text and "no third-party weights" in card.text


def test_metadata_for_a_hub_base_and_full_fine_tuning(tmp_path):
    run = make_run(tmp_path, base="meta-llama/Llama-3.1-8B", method="full")
    card = model_card(run, [make_results(run)])
    assert card.data.base_model == "meta-llama/Llama-3.1-8B"
    assert card.data.library_name == "transformers"
    assert card.data.datasets == ["burgers-8"] and card.data.license == "apache-2.0"
    assert "read it at https://huggingface.co/meta-llama/Llama-3.1-8B" in card.text


def test_body_states_data_limitations_and_how_to_reproduce(run, results):
    path = write_model_card(run, [results])
    text = path.read_text()
    # training data, from field_meta.json found through the recipe's relative output_dir
    assert "`u_t + u*u_x = nu*u_xx`" in text and "| x | 16 | [0, 0.9375] | 0.0625 | periodic |" in text
    assert "| `u` | 0.01 | 0.5 | -1.2 | 1.3 |" in text
    # honest limitations computed from the numbers
    assert "On `forecast/b` it loses to the persistence baseline" in text
    assert "(the 95% intervals do not overlap)" in text  # 0.7 > 0.45
    assert "On `robust/b` it loses" not in text  # 0.25 < 0.3
    assert "6.2% of the model's (frame, field) outputs did not decode" in text
    assert "these metrics were not finite (so not in the metadata): max_error." in text
    # results table with intervals beside the baseline
    assert "| **nrmse** ↓ (primary) | 0.8 [0.7, 0.9] | 0.4 [0.35, 0.45] |" in text
    assert "| nrmse, frames t2-3 | 1.1 [0.9, 1.3] | n/a |" in text
    # the recipe in the card parses back to exactly the recipe the run used
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == read_run(run)["recipe"]
    assert "sfm eval --model runs/q/model --tasks forecast/b,robust/b --out results/ --limit 8" in text
    # figures exist where the card links them
    links = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert sorted(links) == ["figures/forecast__b_v2_rollout.png", "figures/robust__b_v1_noise.png"]
    for link in links:
        assert (path.parent / link).read_bytes()[:4] == b"\x89PNG"


def test_a_missing_field_meta_is_said_not_guessed(run, results, tmp_path):
    (tmp_path / "data/burgers-8/field_meta.json").unlink()
    text = str(model_card(run, [results]))
    assert "`field_meta.json` was not found" in text and "PDE family: burgers" in text


def test_results_of_other_weights_are_refused(run, results, tmp_path):
    other = make_results(run)
    other.model.fingerprint = "0000"
    with pytest.raises(DataError, match=r"'q/model' .*fingerprint 0000.* not of the weights now in"):
        model_card(run, [results, other])
    mine, skipped = select_results(run, [(tmp_path / "a.json", results), (tmp_path / "b.json", other)])
    assert mine == [results] and len(skipped) == 1 and "b.json" in skipped[0]
    (run / "adapter_model.safetensors").write_bytes(b"retrained")  # weights changed after evaluation
    with pytest.raises(DataError, match="re-run sfm eval"):
        write_model_card(run, [results])
    assert not (run / "README.md").exists() and not (run / "figures").exists()


def test_a_task_evaluated_twice_keeps_the_newer_result(run):
    old = make_results(run, date="2026-11-01T00:00:00+00:00", nrmse=0.8)
    new = make_results(run, date="2026-11-02T00:00:00+00:00", nrmse=0.5)
    card = model_card(run, [new, old])
    values = [
        e.metric_value
        for e in card.data.eval_results
        if (e.dataset_type, e.metric_type, e.metric_config) == ("forecast/b", "nrmse", None)
    ]
    assert values == [0.5]


def test_figures_are_replaced_atomically(run, results, monkeypatch):
    path = write_model_card(run, [results])
    png = path.parent / "figures/forecast__b_v2_rollout.png"
    before = png.read_bytes()
    assert oct(png.stat().st_mode & 0o444) == oct(0o444)  # readable by all, unlike mkstemp's 0600
    import sfm.utils.io as io  # the figures go through the shared atomic writer

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_model_card(run, [results])
    assert png.read_bytes() == before  # the old figure is intact
    assert sorted(p.name for p in png.parent.iterdir()) == [
        "forecast__b_v2_rollout.png",
        "robust__b_v1_noise.png",
    ]  # and no temporary file is left behind
