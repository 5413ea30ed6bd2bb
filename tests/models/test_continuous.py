"""Continuous models: field encoder -> HF backbone (inputs_embeds) -> regression head, on tiny backbones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sfm.errors import ConfigError, DataError
from sfm.models import continuous_backbone as cb
from sfm.models.continuous import build_continuous, describe_text, load_continuous
from sfm.models.encoders import patchify, resolve_modes, resolve_patch, unpatchify
from sfm.models.field_config import EncoderSection, FieldsSection
from sfm.models.field_io import WEIGHTS_FILE, FieldSpec, load_field_run
from sfm.training.recipe import ModelSection, PeftSection, load_recipe

FAMILIES = ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-gpt2", "tiny-t5"]
SMALL = {  # two layers of width 32: the architecture code of each family, at test size
    "tiny-gpt2": {"n_embd": 32},
    "tiny-t5": {"d_model": 32, "d_kv": 8, "d_ff": 64},
}
DEFAULT_SMALL = {"hidden_size": 32, "intermediate_size": 64}


def _spec(space: list[int], n_fields: int = 1) -> FieldSpec:
    return FieldSpec(
        n_fields=n_fields,
        space=space,
        context_frames=2,
        horizon=1,
        coefficient_names=["nu"],
        mean=[0.1] * n_fields,
        std=[0.5] * n_fields,
        field_names=[f"f{i}" for i in range(n_fields)],
        family="burgers",
        coefficient_mean=[0.02],
        coefficient_std=[0.005],
    )


def _section(name: str = "tiny-llama") -> ModelSection:
    return ModelSection(name_or_path=name, tiny=SMALL.get(name, DEFAULT_SMALL), field_io="continuous")


def _build(spec, name="tiny-llama", method="full", fields=None, **encoder):
    torch.manual_seed(0)
    peft = PeftSection(method=method, r=4, alpha=8, dropout=0.0)
    enc = EncoderSection(**{"patch_size": [4], "width": 8, "layers": 1, **encoder})
    return build_continuous(
        spec, _section(name), fields=fields or FieldsSection(), encoder=enc, peft_section=peft
    )


def _perturb(model, scale=0.05):
    """Move every trainable tensor off its initial value (the zero head, LoRA's zero B), as training would."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g))


def _batch(spec, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(b, spec.context_frames, spec.n_fields, *spec.space, generator=g)
    tgt = torch.randn(b, spec.horizon, spec.n_fields, *spec.space, generator=g)
    return ctx, 0.02 + 0.005 * torch.rand(b, 1, generator=g), tgt


def test_patchify_layout_and_roundtrip():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    tokens = patchify(x, [4, 3])  # patch grid 2 x 4
    assert tokens.shape == (2, 8, 3 * 4 * 3)
    # patch (i, j) is row i * 4 + j of the patch grid and holds x[:, :, 4i:4i+4, 3j:3j+3], channels first
    assert torch.equal(tokens[:, 1 * 4 + 2], x[:, :, 4:8, 6:9].reshape(2, -1))
    assert torch.equal(unpatchify(tokens, [4, 3], [8, 12]), x)
    x1 = torch.randn(2, 5, 16)
    assert torch.equal(unpatchify(patchify(x1, [4]), [4], [16]), x1)


@pytest.mark.parametrize("space", [[16], [8, 8]], ids=["1d", "2d"])
@pytest.mark.parametrize("name", FAMILIES)
def test_shapes_and_gradients(name, space):
    spec = _spec(space, n_fields=2)
    model = _build(spec, name, method="lora")
    _perturb(model)
    ctx, coef, tgt = _batch(spec)
    out = model(ctx, coef, tgt)
    assert out["prediction"].shape == (3, 1, 2, *space)
    out["loss"].backward()
    # the encoder, queries and head train fully; of the backbone only the adapters
    for prefix in ("encoder.", "head.", "queries"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), prefix
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    lora = [p for n, p in model.backbone.named_parameters() if "lora_" in n]
    assert frozen and lora and all(p.requires_grad and p.grad.abs().sum() > 0 for p in lora)
    assert not any("lora_" in n for n in frozen)


def test_untrained_residual_model_predicts_persistence():
    spec = _spec([16])
    model = _build(spec).eval()
    ctx, coef, _ = _batch(spec)
    with torch.no_grad():
        pred = model(ctx, coef)["prediction"]
    assert torch.equal(pred, ctx[:, -1:])  # zero head: no change over the last frame, exactly


def _sensitivity(model, spec, patch_index: int) -> float:
    """How much the first patch of the prediction moves when only patch ``patch_index`` of the input does."""
    ctx, coef, _ = _batch(spec, b=1)
    moved = ctx.clone()
    moved[..., 4 * patch_index : 4 * patch_index + 4] += 1.0
    with torch.no_grad():
        a, b = (model(c, coef)["prediction"][..., :4] for c in (ctx, moved))
    return float((a - b).abs().max())


@pytest.mark.parametrize("readout", ["queries", "bidirectional", "doubled"])
def test_every_readout_sees_the_whole_field(readout):
    # linear encoder: input patch 3 reaches only embedding 3, so the first output depends on it only through
    # attention to a later position -- which a causal backbone allows only with the readout's help
    spec = _spec([16], n_fields=1)
    model = _build(spec, readout=readout, type="linear").eval()
    _perturb(model)
    assert _sensitivity(model, spec, 3) > 1e-4
    if readout == "bidirectional":  # the control: the same model under its causal mask cannot see ahead
        seq = torch.randn(1, 4, 32)
        moved = seq.clone()
        moved[:, 3] += 1.0
        with torch.no_grad():
            causal = [cb.run(model.backbone, "causal", s, None, None)[:, 0] for s in (seq, moved)]
            full = [
                cb.run(model.backbone, "causal", s, None, None, bidirectional=True)[:, 0]
                for s in (seq, moved)
            ]
        assert torch.equal(*causal) and not torch.allclose(*full)


def test_t5_readouts_pick_encoder_or_encoder_decoder():
    spec = _spec([16])
    assert type(cb.base_model(_build(spec, "tiny-t5", readout="queries").backbone)).__name__ == "T5Model"
    enc = _build(spec, "tiny-t5", readout="bidirectional")
    assert type(cb.base_model(enc.backbone)).__name__ == "T5EncoderModel" and enc.queries is None


def test_describe_feeds_the_coefficients_as_text(tmp_path):
    assert describe_text("burgers", ["nu"], [0.0123]) == "burgers: nu=0.0123"
    spec = _spec([16])
    fields = FieldsSection(coefficients=False)  # the text is the only way nu gets in
    model = _build(spec, fields=fields, describe=True).eval()
    _perturb(model)
    ctx, _, _ = _batch(spec, b=2)
    with torch.no_grad():
        a = model(ctx, torch.tensor([[0.01], [0.02]]))["prediction"]
        b = model(ctx, torch.tensor([[0.01], [0.03]]))["prediction"]
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    model.save(tmp_path / "run")
    with torch.no_grad():
        assert torch.equal(
            load_continuous(tmp_path / "run")(ctx, torch.tensor([[0.01], [0.02]]))["prediction"], a
        )


def _roundtrip(model, spec, folder):
    ctx, coef, _ = _batch(spec, b=4, seed=3)
    model.eval()
    with torch.no_grad():
        want = model(ctx, coef)["prediction"].numpy()
    model.save(folder)
    predictor = load_field_run(folder)
    got = predictor.predict_frames(ctx.numpy(), coef.numpy(), batch_size=4)
    np.testing.assert_array_equal(got, want)
    return json.loads((folder / "field_model.json").read_text())


@pytest.mark.parametrize(
    "name,method,space,readout",
    [
        ("tiny-llama", "lora", [16], "queries"),
        ("tiny-gpt2", "full", [8, 8], "doubled"),
        ("tiny-t5", "dora", [16], "queries"),
        ("tiny-qwen2", "freeze", [16], "bidirectional"),
    ],
)
def test_save_reload_identical(tmp_path, name, method, space, readout):
    spec = _spec(space)
    peft = PeftSection(method=method, r=4, alpha=8, dropout=0.0, trainable_modules=["layers.1."])
    torch.manual_seed(0)
    enc = EncoderSection(patch_size=[4], width=8, layers=1, readout=readout)
    model = build_continuous(spec, _section(name), fields=FieldsSection(), encoder=enc, peft_section=peft)
    _perturb(model)
    payload = _roundtrip(model, spec, tmp_path / "run")
    assert payload["kind"] == "continuous" and payload["backbone"]["peft"]["method"] == method
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / WEIGHTS_FILE))
    assert torch.equal(saved["head.proj.weight"], model.head.proj.weight)  # the trained head, not dropped
    if method in ("lora", "dora"):
        adapter = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == str((tmp_path / "run" / "backbone").resolve())


def test_local_pretrained_backbone_saves_only_the_adapter(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "local-llama")
    spec = _spec([16])
    section = ModelSection(name_or_path=str(tmp_path / "local-llama"), field_io="continuous")
    enc = EncoderSection(patch_size=[4], width=8, layers=1)
    peft = PeftSection(method="lora", r=4, alpha=8, dropout=0.0)
    model = build_continuous(spec, section, fields=FieldsSection(), encoder=enc, peft_section=peft)
    _perturb(model)
    payload = _roundtrip(model, spec, tmp_path / "run")
    assert payload["backbone"]["saved"] == "adapter" and not (tmp_path / "run" / "backbone").exists()
    assert type(cb.base_model(model.backbone)).__name__ == "LlamaModel"  # no LM head is loaded


@pytest.mark.parametrize(
    "space,encoder,peft,message",
    [
        (
            [18],
            {"patch_size": [4]},
            "full",
            "model.encoder.patch_size: 4 does not divide the 18 points of axis 0",
        ),
        (
            [16, 16],
            {"patch_size": [4, 4, 4]},
            "full",
            "model.encoder.patch_size: 3 entries [4, 4, 4] for a 2D",
        ),
        ([16], {"n_modes": [40]}, "full", "model.encoder.n_modes: 40 modes on an axis of 16 points"),
        ([16], {}, "qlora", "peft.method: 'qlora' is not offered for continuous models"),
    ],
)
def test_bad_values_fail_before_any_work(monkeypatch, space, encoder, peft, message):
    def no_work(*args, **kwargs):
        raise AssertionError("a backbone was built before the recipe was checked")

    monkeypatch.setattr(cb, "make_backbone", no_work)
    monkeypatch.setattr(cb, "backbone_config", no_work)
    with pytest.raises(ConfigError) as err:
        build_continuous(
            _spec(space),
            _section(),
            fields=FieldsSection(),
            encoder=EncoderSection(**encoder),
            peft_section=PeftSection(method=peft),
        )
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_learns_burgers_better_than_persistence(tmp_path):
    """A tiny continuous model trained 400 steps (~10 CPU-s) on a small Burgers set halves persistence's error
    on held-out trajectories (the untrained model *is* persistence, so this measures what training added;
    measured 0.02 against persistence's 0.12 and linear extrapolation's 0.037)."""
    from sfm.data import generate_dataset, load_field_dataset
    from sfm.tasks.forecast import Forecast
    from sfm.tasks.windows import FieldWindows, coefficient_stats, field_stats

    params = {"nu": [0.01, 0.03], "nx": 256, "nt": 11, "t_end": 0.5, "k_max": 2}
    fs = load_field_dataset(generate_dataset("burgers", 30, tmp_path / "b", params=params, progress=False))
    fmt = Forecast(context_frames=2, horizon=1, space_stride=8)
    train = FieldWindows.from_split(fs.split("train"), fs.meta, fmt)
    test = FieldWindows.from_split(fs.split("test"), fs.meta, fmt, even=True)
    (mean, std), (cm, cs) = field_stats(train), coefficient_stats(train)
    spec = FieldSpec(1, list(train.space), 2, 1, train.coefficient_names, mean.tolist(), std.tolist(), ["u"],
                     "burgers", cm.tolist(), cs.tolist())  # fmt: skip
    model = _build(spec, width=16, layers=2, readout="doubled")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(400):
        batch = {
            k: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in train.batch(rng.integers(0, len(train), 16)).items()
        }
        loss = model(batch["context"], batch["coefficients"], batch["target"])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    b = test.batch(np.arange(len(test)))
    with torch.no_grad():
        pred = model.eval()(torch.from_numpy(b["context"]), torch.from_numpy(b["coefficients"]))["prediction"]

    def nrmse(p):
        return float(
            np.mean(np.sqrt(((p - b["target"]) ** 2).mean(-1)) / np.sqrt((b["target"] ** 2).mean(-1)))
        )

    assert nrmse(pred.numpy()) < 0.5 * nrmse(b["context"][:, -1:])


def test_gradient_checkpointing_gives_the_same_gradients():
    spec = _spec([16])
    grads = []
    for checkpointing in (False, True):
        model = _build(spec, method="lora").train()
        _perturb(model)
        if checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
        model(*_batch(spec))["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, msg=name)


def test_save_takes_a_gathered_state_dict_and_refuses_empty_tensors(tmp_path):
    """Under ZeRO-3 the live parameters are shards; the caller passes the gathered state dict instead."""
    spec = _spec([16])
    model = _build(spec, method="lora")
    _perturb(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    _roundtrip(model, spec, tmp_path / "ok")  # reference predictions
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # the live module no longer holds the weights; the gathered copy does
    model.save(tmp_path / "gathered", state_dict=state)
    ctx, coef, _ = _batch(spec, b=4, seed=3)
    a = load_field_run(tmp_path / "ok").predict_frames(ctx.numpy(), coef.numpy(), 4)
    b = load_field_run(tmp_path / "gathered").predict_frames(ctx.numpy(), coef.numpy(), 4)
    np.testing.assert_array_equal(a, b)
    state["head.proj.weight"] = torch.empty(0)  # a shard never gathered
    with pytest.raises(DataError, match="empty"):
        model.save(tmp_path / "bad", state_dict=state)


ROOT = Path(__file__).resolve().parents[2]
# The continuous recipes this module's builder owns: the tiny ones and one beside each real token recipe.
CONTINUOUS = sorted(
    [
        *(ROOT / "recipes" / "tiny" / "continuous").glob("*.yaml"),
        *(ROOT / "recipes").glob("*/*/continuous-*.yaml"),
    ]
)


def test_every_backbone_family_has_a_shipped_continuous_recipe():
    names = {load_recipe(p).model.name_or_path for p in CONTINUOUS}
    assert set(FAMILIES) <= names and len(CONTINUOUS) >= 13


@pytest.mark.parametrize("path", CONTINUOUS, ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_shipped_continuous_recipe_fits_its_grid(path):
    """The encoder of every shipped continuous recipe fits the grid its data gives; tiny ones build and run."""
    recipe = load_recipe(path)
    d = recipe.data
    stride = d.task_options.get("space_stride", 1)
    space = [d.params[k] // stride for k in ("nx", "ny") if k in d.params]
    spec = _spec(space)
    m = recipe.model
    if not m.name_or_path.startswith("tiny-"):  # a Hub backbone: check the encoder only (no download)
        patch = resolve_patch(m.encoder.patch_size, space)
        assert resolve_modes(m.encoder.n_modes, space, patch)
        return
    model = build_continuous(spec, m, fields=m.fields, encoder=m.encoder, peft_section=recipe.peft)
    ctx, coef, tgt = _batch(spec, b=2)
    out = model(ctx, coef, tgt)
    assert out["prediction"].shape == (2, 1, 1, *space) and torch.isfinite(out["loss"])


# Published config.json dimensions of the real backbones of the continuous recipes.
ARCH = {
    "meta-llama/Llama-3.1-8B": dict(h=4096, i=14336, layers=32, kv=1024),
    "meta-llama/Llama-3.1-70B": dict(h=8192, i=28672, layers=80, kv=1024),
    "Qwen/Qwen2.5-7B": dict(h=3584, i=18944, layers=28, kv=512),
    "mistralai/Mistral-7B-v0.3": dict(h=4096, i=14336, layers=32, kv=1024),
    "google/flan-t5-large": dict(h=1024, i=2816, layers=24, kv=1024, t5_encoder=True),
}


def _lora_formula(r: int, *, h: int, i: int, layers: int, kv: int, t5_encoder: bool = False) -> int:
    """LoRA parameters r x (in + out) on every attention and MLP linear (T5: its encoder blocks only)."""
    if t5_encoder:
        return r * layers * (4 * (h + kv) + 2 * (h + i) + (i + h))
    return r * layers * (2 * (h + h) + 2 * (h + kv) + 3 * (h + i))


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_lora_formula_equals_peft_on_the_backbone(name):
    """The headers' formula, against PEFT on small backbones with unequal dimensions (base model, no LM head;
    T5 run as its encoder alone, as readout bidirectional does)."""
    if name == "tiny-t5":
        shape = dict(h=48, i=80, layers=3, kv=40, t5_encoder=True)
        tiny = dict(d_model=48, d_ff=80, num_layers=3, num_heads=4, d_kv=10)
    else:
        shape = dict(h=48, i=80, layers=3, kv=24)
        tiny = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_key_value_heads=2)
    section = ModelSection(name_or_path=name, tiny=tiny, field_io="continuous")
    enc = EncoderSection(readout="bidirectional")
    model = build_continuous(
        _spec([16]), section, fields=FieldsSection(), encoder=enc, peft_section=PeftSection(r=4)
    )
    counted = sum(p.numel() for n, p in model.backbone.named_parameters() if p.requires_grad)
    assert counted == _lora_formula(4, **shape)


@pytest.mark.parametrize(
    "path",
    sorted(
        {*(ROOT / "recipes").glob("*/*/continuous-*.yaml"), *(ROOT / "recipes").glob("*/*-continuous.yaml")}
    ),
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_real_continuous_recipe_arithmetic(path):
    recipe = load_recipe(path)
    dims = ARCH[recipe.model.name_or_path]
    header = "".join(line for line in path.read_text().splitlines() if line.startswith("#")).replace(",", "")
    assert f"LoRA trainable: {_lora_formula(recipe.peft.r, **dims)} params" in header
    d, m = recipe.data, recipe.model
    stride = d.task_options["space_stride"]
    space = [d.params[k] // stride for k in ("nx", "ny") if k in d.params]
    from sfm.models.encoders import FieldEncoder, PatchHead

    # context frames of one field + one grid channel per axis + the coefficients drawn from a range (nu)
    n_coef = sum(isinstance(v, list) for v in d.params.values())
    channels = d.task_options["context_frames"] + len(space) * m.fields.grid + n_coef * m.fields.coefficients
    encoder = FieldEncoder(channels, space, m.encoder, dims["h"])
    head = PatchHead(dims["h"], 1, space, encoder.patch)
    n = sum(p.numel() for p in [*encoder.parameters(), *head.parameters()])
    assert f"= {n} params" in header, n
    assert f"sfm validate {path.relative_to(ROOT).as_posix()}" in header
    for launch in re.findall(r"launch/accelerate/[\w.]+\.yaml", header):
        assert (ROOT / launch).is_file(), launch
    twin = re.search(r"CPU twin.*?: (recipes/\S+\.yaml)", header)
    assert (
        twin
        and (ROOT / twin.group(1)).is_file()
        and str(path.relative_to(ROOT)) in (ROOT / twin.group(1)).read_text()
    )


@pytest.mark.parametrize("readout", ["queries", "bidirectional"], ids=["t5-seq2seq", "t5-encoder"])
def test_state_dict_saves_as_safetensors_despite_t5_tied_embeddings(tmp_path, readout):
    """transformers' Trainer checkpoints a plain module's state dict with safetensors, which refuses aliases
    (T5's ``shared`` is also ``encoder.embed_tokens``); the checkpoint must load back to the same model."""
    from safetensors.torch import load_file, save_file

    spec = _spec([16])
    model = _build(spec, "tiny-t5", method="full", readout=readout).eval()
    _perturb(model)
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    other = _build(spec, "tiny-t5", method="full", readout=readout).eval()
    other.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=False)
    ctx, coef, _ = _batch(spec)
    with torch.no_grad():
        assert torch.equal(other(ctx, coef)["prediction"], model(ctx, coef)["prediction"])
    base = cb.base_model(other.backbone)
    assert base.encoder.embed_tokens.weight is base.shared.weight  # the tie survived the load
