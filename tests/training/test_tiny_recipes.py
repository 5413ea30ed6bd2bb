"""Real-backbone recipes and their tiny CPU twins.

* every real recipe has a twin with the same task, encoding and PEFT settings on the matching tiny
  architecture, and every twin names its real recipe;
* the LoRA/DoRA/added-row parameter counts written in each real recipe's memory arithmetic equal the hand
  formula on the architecture's published dimensions, and the hand formula equals PEFT's own count on small
  models of every family (so the headers cannot drift from what PEFT builds);
* every tiny recipe trains for 2 steps as shipped (``--max_steps 2``), saves an adapter that loads, and its
  LoRA weights moved (under gradient checkpointing, which the twins turn on like the real recipes).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sfm.training.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
FIELD_DIRS = ("continuous", "operator")  # field-model recipes: no added tokens, checked in tests/models
ALL_TINY = sorted((RECIPES / "tiny").rglob("*.yaml"))
TINY = [p for p in ALL_TINY if p.relative_to(RECIPES / "tiny").parts[0] not in FIELD_DIRS]
FIELD_TINY = [p for p in ALL_TINY if p not in TINY]
REAL = sorted(
    p for p in RECIPES.glob("*/*/*.yaml") if p.parts[-3] != "tiny" and not p.name.startswith("continuous")
)
N_ADDED = 2227  # tokens the bins encoding with n_bins=1023 adds: 1023 bins + 1201 scales + 3 markers

# Published config.json dimensions of each real backbone (hidden, intermediate, layers, kv width, family).
ARCH = {
    "meta-llama/Llama-3.1-8B": dict(h=4096, i=14336, layers=32, kv=1024, family="llama"),
    "meta-llama/Llama-3.1-70B": dict(h=8192, i=28672, layers=80, kv=1024, family="llama"),
    "Qwen/Qwen2.5-7B": dict(h=3584, i=18944, layers=28, kv=512, family="qwen2"),
    "mistralai/Mistral-7B-v0.3": dict(h=4096, i=14336, layers=32, kv=1024, family="mistral"),
    "google/flan-t5-large": dict(h=1024, i=2816, layers=24, kv=1024, family="t5"),
}
TINY_OF = {"llama": "tiny-llama", "qwen2": "tiny-qwen2", "mistral": "tiny-mistral", "t5": "tiny-t5"}


def lora_params(family: str, r: int, *, h: int, i: int, layers: int, kv: int) -> int:
    """Hand count of LoRA parameters on every attention and MLP linear: r x (in + out) per matrix."""
    if family == "t5":  # attention inner width = heads x d_kv, here passed as kv; gated FF: wi_0, wi_1, wo
        ff = 2 * (h + i) + (i + h)
        encoder = 4 * (h + kv) + ff
        decoder = 8 * (h + kv) + ff  # self- and cross-attention
        return r * layers * (encoder + decoder)
    return r * layers * (2 * (h + h) + 2 * (h + kv) + 3 * (h + i))


def dora_magnitudes(*, h: int, i: int, layers: int, kv: int) -> int:
    """DoRA's magnitude vectors: one entry per output channel of every adapted linear (decoder-only)."""
    return layers * (3 * h + 2 * kv + 2 * i)


def _header(path: Path) -> str:
    return "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))


def _twin_of(path: Path) -> Path:
    found = re.search(r"twin of (recipes/\S+\.yaml)", _header(path))
    assert found, f"{path} does not name the real recipe it twins"
    return ROOT / found.group(1).rstrip(":")


def test_every_real_recipe_has_a_twin():
    assert len(REAL) >= 9
    twinned = {_twin_of(p) for p in TINY if "twin of recipes/" in _header(p) and p.parts[-3] != "tiny"}
    assert set(REAL) <= twinned, sorted(str(p) for p in set(REAL) - twinned)


@pytest.mark.parametrize(
    "twin", [p for p in TINY if p.parts[-3] != "tiny"], ids=lambda p: p.relative_to(RECIPES).as_posix()
)
def test_twin_matches_its_real_recipe(twin):
    real_path = _twin_of(twin)
    assert real_path.is_file(), real_path
    t, r = load_recipe(twin), load_recipe(real_path)
    assert t.model.name_or_path == TINY_OF[ARCH[r.model.name_or_path]["family"]]
    for key in ("task", "task_options", "encoding", "encoding_options", "simulator"):
        assert getattr(t.data, key) == getattr(r.data, key), key
    expected_method = "lora" if r.peft.method == "qlora" else r.peft.method  # QLoRA needs CUDA
    assert t.peft.method == expected_method
    for key in ("r", "alpha", "dropout", "target_modules", "new_tokens", "trainable_modules"):
        assert getattr(t.peft, key) == getattr(r.peft, key), key
    assert t.training.gradient_checkpointing == r.training.gradient_checkpointing
    if r.peft.method == "qlora":
        assert "QLoRA needs CUDA" in _header(twin)


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_real_recipe_arithmetic_matches_the_architecture(path):
    recipe = load_recipe(path)
    dims = ARCH[recipe.model.name_or_path]
    family = dims["family"]
    shape = {k: v for k, v in dims.items() if k != "family"}
    header = _header(path).replace(",", "")
    lora = lora_params(family, recipe.peft.r, **shape)
    assert f"LoRA trainable: {lora} params" in header
    assert f"added-token rows: {N_ADDED * shape['h'] * 2} params" in header
    if recipe.peft.method == "dora":
        assert f"DoRA magnitudes: {dora_magnitudes(**shape)} params" in header
    assert "launch/accelerate/" in header and f"sfm validate {path.relative_to(ROOT).as_posix()}" in header
    for launch in re.findall(r"launch/accelerate/[\w.]+\.yaml", header):
        assert (ROOT / launch).is_file(), launch
    t = recipe.training
    assert t.global_batch_size and t.global_batch_size % t.per_device_train_batch_size == 0


@pytest.mark.parametrize(
    "family, method",
    [
        ("llama", "lora"),
        ("qwen2", "lora"),
        ("mistral", "lora"),
        ("t5", "lora"),
        ("llama", "dora"),
        ("qwen2", "dora"),
        ("mistral", "dora"),
    ],
)
def test_hand_formula_equals_peft(family, method):
    """The header arithmetic's formula, checked against PEFT on small models with unequal dimensions."""
    from peft import LoraConfig, TaskType, get_peft_model

    from sfm.models.backbones import LORA_TARGETS, is_seq2seq
    from sfm.registry import BACKBONES

    if family == "t5":
        shape = dict(h=48, i=80, layers=3, kv=40)
        over = dict(d_model=48, d_ff=80, num_layers=3, num_decoder_layers=3, num_heads=4, d_kv=10)
    else:
        shape = dict(h=48, i=80, layers=3, kv=24)
        over = dict(
            hidden_size=48,
            intermediate_size=80,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    model = BACKBONES.get(TINY_OF[family]).build(50, **over)
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=LORA_TARGETS[family],
        use_dora=method == "dora",
        task_type=TaskType.SEQ_2_SEQ_LM if is_seq2seq(model) else TaskType.CAUSAL_LM,
    )
    peft_model = get_peft_model(model, cfg)
    counted = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    expected = lora_params(family, 4, **shape) + (dora_magnitudes(**shape) if method == "dora" else 0)
    assert counted == expected


# ---- every tiny recipe trains as shipped -------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One SFM_HOME for the module: the twins share one data set, generated once."""
    return tmp_path_factory.mktemp("tiny-home")


@pytest.mark.trains
@pytest.mark.slow
@pytest.mark.parametrize("path", TINY, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_tiny_recipe_trains_two_steps(path, home, monkeypatch):
    from sfm.models.run import RunRecord, load_model
    from sfm.train import main

    monkeypatch.setenv("SFM_HOME", str(home))
    out = home / "runs" / path.relative_to(RECIPES).with_suffix("").as_posix().replace("/", "-")
    # evaluation after training is tested once, in test_train.py; here the recipes' own tasks would dominate
    args = [
        str(path),
        "--max_steps",
        "2",
        "--logging_steps",
        "1",
        "--output_dir",
        str(out),
        "--no-progress",
        "--evaluation.tasks",
        "[]",
    ]
    assert main(args) == 0
    record = RunRecord.read(out)
    assert record.train["steps"] == 2 and len(record.train["loss_history"]) == 2
    assert record.budget["steps"] == 2 and record.budget["stopped_by"] == "max_steps"
    adapter = load_file(out / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b), "LoRA B stayed zero: no gradient reached it"
    recipe = load_recipe(path)
    loaded = load_model(out, device="cpu")
    assert loaded.seq2seq == (recipe.model.name_or_path == "tiny-t5")
    ids = torch.tensor([[5, 9, loaded.sci.new_token_ids[0], 11]])
    with torch.no_grad():
        kwargs = {"decoder_input_ids": ids[:, :2]} if loaded.seq2seq else {}
        logits = loaded.model(input_ids=ids, **kwargs).logits
    assert torch.isfinite(logits).all() and logits.shape[-1] == len(loaded.sci)


@pytest.mark.trains
@pytest.mark.slow
@pytest.mark.parametrize("path", FIELD_TINY, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_tiny_field_recipe_trains_two_steps(path, home, monkeypatch):
    """Every continuous and operator recipe trains, saves a loadable model and predicts finite frames."""
    import numpy as np

    from sfm.models.run import RunRecord, load_model
    from sfm.train import main
    from sfm.training.recipe import model_kind

    monkeypatch.setenv("SFM_HOME", str(home))
    out = home / "runs" / path.relative_to(RECIPES).with_suffix("").as_posix().replace("/", "-")
    args = [str(path), "--max_steps", "2", "--logging_steps", "1", "--output_dir", str(out), "--no-progress"]
    assert main([*args, "--evaluation.tasks", "[]"]) == 0
    recipe = load_recipe(path)
    record = RunRecord.read(out)
    assert record.kind == model_kind(recipe.model)
    assert record.train["steps"] == 2 and record.budget["stopped_by"] == "max_steps"
    loaded = load_model(out)
    spec = loaded.spec
    contexts = np.ones((3, spec.context_frames, spec.n_fields, *spec.space), dtype=np.float32)
    coeffs = np.full((3, len(spec.coefficient_names)), 1e-3, dtype=np.float32)
    frames = loaded.predict_frames(contexts, coeffs, batch_size=2)
    assert frames.shape == (3, spec.horizon, spec.n_fields, *spec.space) and np.isfinite(frames).all()


# ---- PEFT methods from a recipe's peft section ------------------------------------------------------------

TWIN = RECIPES / "tiny" / "llama" / "burgers-forecast" / "lora.yaml"
VOCAB, NEW = 96, list(range(90, 96))  # six "added" tokens at the end of the vocabulary
TINY_LLAMA = dict(h=64, i=128, layers=2, kv=32)  # tiny-llama defaults: 4 heads x 16, 2 KV heads
LAYER_PARAMS = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64  # q,o + k,v + gate,up,down + 2 RMSNorms
ROWS = len(NEW) * 64 * 2  # added-token rows of the embedding and the (untied) head


def _peft_model(*overrides: str):
    from sfm.registry import BACKBONES
    from sfm.training.peft_setup import apply_peft

    p = load_recipe(TWIN, ["--peft.dropout", "0", *overrides]).peft
    torch.manual_seed(0)
    model = BACKBONES.get("tiny-llama").build(VOCAB)
    return apply_peft(
        model,
        method=p.method,
        r=p.r,
        alpha=p.alpha,
        dropout=p.dropout,
        target_modules=p.target_modules,
        new_tokens=p.new_tokens,
        new_token_ids=NEW,
        trainable_modules=p.trainable_modules,
    )


def _train(model, steps: int = 3) -> tuple[set[str], set[str]]:
    """A few AdamW steps (no weight decay) on batches holding the new tokens; returns (trainable, changed)."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        ids = torch.randint(0, NEW[0], (4, 12), generator=gen)
        ids[:, 3::3] = torch.tensor(NEW[:3])  # three of the six new tokens appear in the inputs
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return trainable, changed


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "method, extra", [("lora", 0), ("rslora", 0), ("dora", dora_magnitudes(**TINY_LLAMA))]
)
def test_lora_family_trains_exactly_its_parameters(method, extra):
    model = _peft_model("--peft.method", method)
    lora = lora_params("llama", 16, **TINY_LLAMA)
    assert lora == 2 * 16 * 1024  # by hand: r x [2(64+64) + 2(64+32) + 3(64+128)] per layer, 2 layers
    assert _count(model) == lora + extra + ROWS
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    assert q.scaling["default"] == (32 / 16**0.5 if method == "rslora" else 32 / 16)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    all_ids, probe = torch.arange(VOCAB), torch.randn(1, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        emb0, head0 = emb(all_ids).clone(), head(probe).clone()
    trainable, changed = _train(model)
    assert changed == trainable  # every trainable tensor moved, nothing frozen did
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    assert any("lora_magnitude" in n for n in changed) == (method == "dora")
    with torch.no_grad():
        rows_moved = (emb(all_ids) != emb0).any(dim=1)
        cols_moved = (head(probe) != head0)[0]
    assert rows_moved.nonzero().flatten().tolist() == NEW[:3]  # input rows: only the new tokens seen
    assert cols_moved.nonzero().flatten().tolist() == NEW  # head: every new token's column (softmax)


@pytest.mark.parametrize("new_tokens, expected", [("embedding", 2 * VOCAB * 64), ("frozen", 0)])
def test_new_token_modes(new_tokens, expected):
    model = _peft_model("--peft.new_tokens", new_tokens)
    assert _count(model) == lora_params("llama", 16, **TINY_LLAMA) + expected
    trainable, changed = _train(model)
    assert changed == trainable
    assert any("embed_tokens" in n for n in trainable) == (new_tokens == "embedding")


def test_full_fine_tuning_trains_everything():
    model = _peft_model("--peft.method", "full")
    total = sum(p.numel() for p in model.parameters())
    assert _count(model) == total == 2 * LAYER_PARAMS + 64 + 2 * VOCAB * 64  # layers + final norm + emb/head
    trainable, changed = _train(model)
    assert changed == trainable == {n for n, _ in model.named_parameters()}


def test_freeze_trains_only_named_modules_and_embeddings():
    model = _peft_model("--peft.method", "freeze", "--peft.trainable_modules", "[layers.1.]")
    assert _count(model) == LAYER_PARAMS + 2 * VOCAB * 64  # layer 1 + the matrices holding the new rows
    trainable, changed = _train(model)
    assert changed == trainable
    assert all("layers.1." in n or "embed_tokens" in n or "lm_head" in n for n in trainable)
    assert not any("layers.0." in n for n in trainable)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_qlora_without_cuda_fails_before_any_work(tmp_path, monkeypatch, capsys):
    from sfm.errors import ConfigError
    from sfm.train import main
    from sfm.training.peft_setup import quantization_config

    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        quantization_config("qlora")
    assert quantization_config("lora") is None
    monkeypatch.setenv("SFM_HOME", str(tmp_path))
    qlora_twin = RECIPES / "tiny" / "llama" / "burgers-forecast" / "qlora-as-lora.yaml"
    assert main([str(qlora_twin), "--peft.method", "qlora", "--output_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'qlora' needs a CUDA GPU" in err
    assert (
        not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
    )  # refused before the data stage
