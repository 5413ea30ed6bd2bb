"""``sfm merge``: the merged model computes what the adapter model computes (logits equal on random ids,
added tokens included), loads with plain transformers alone, and is a run folder sfm loads like any other;
wrong inputs fail with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sfm.cli import main as sfm_main
from sfm.models.run import RunRecord

ROOT = Path(__file__).resolve().parents[2]
TWINS = {
    "lora": ROOT / "recipes" / "tiny" / "llama" / "burgers-forecast" / "lora.yaml",
    "dora": ROOT / "recipes" / "tiny" / "llama" / "burgers-forecast" / "dora.yaml",
    "t5": ROOT / "recipes" / "tiny" / "t5" / "burgers-forecast" / "lora.yaml",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each twin trained 2 steps (so LoRA's B and the added rows are non-zero), sharing one data set."""
    from sfm.train import main

    home = tmp_path_factory.mktemp("merge")
    mp = pytest.MonkeyPatch()
    mp.setenv("SFM_HOME", str(home))
    out = {}
    try:
        for name, recipe in TWINS.items():
            out[name] = home / name
            assert (
                main([str(recipe), "--max_steps", "2", "--output_dir", str(out[name]), "--no-progress"]) == 0
            )
    finally:
        mp.undo()
    return out


def _logits(model, ids, seq2seq: bool) -> torch.Tensor:
    with torch.no_grad():
        if seq2seq:
            return model(input_ids=ids, decoder_input_ids=ids[:, :7]).logits
        return model(input_ids=ids).logits


@pytest.mark.trains
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TWINS))
def test_merged_model_equals_adapter_model(name, runs, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from sfm.models.run import load_model

    run, merged = runs[name], tmp_path / "merged"
    assert sfm_main(["merge", str(run), "--out", str(merged)]) == 0
    assert f"merged: {merged}" in capsys.readouterr().out
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folder left behind

    adapter = load_model(run, device="cpu")
    assert isinstance(adapter.model, PeftModel)
    seq2seq = name == "t5"
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    plain = auto.from_pretrained(merged).eval()  # transformers alone: no PEFT, no sfm
    assert not any(type(m).__module__.startswith("peft.") for m in plain.modules())
    assert len(AutoTokenizer.from_pretrained(merged)) == len(adapter.sci) == plain.config.vocab_size

    ids = torch.randint(0, len(adapter.sci), (3, 24), generator=torch.Generator().manual_seed(0))
    ids[:, ::4] = torch.tensor(adapter.sci.new_token_ids[:6])  # the added tokens, whose rows were trained
    expected = _logits(adapter.model, ids, seq2seq)
    # float32 rounding of (W + BA) x versus W x + B(A x) grows with the logits' size: tiny-t5's random untied
    # head gives logits of ~50, the decoder-only twins ~3
    atol = 1e-5 * max(1.0, float(expected.abs().max()) / 10)
    torch.testing.assert_close(_logits(plain, ids, seq2seq), expected, rtol=0, atol=atol)

    reloaded = load_model(merged, device="cpu")  # a run folder without adapter_config.json: a full model
    assert not isinstance(reloaded.model, PeftModel) and reloaded.seq2seq == seq2seq
    torch.testing.assert_close(_logits(reloaded.model, ids, seq2seq), expected, rtol=0, atol=atol)
    record, source = RunRecord.read(merged), RunRecord.read(run)
    assert record.merged["from"] == str(run.resolve())
    assert record.merged["peft_method"] == ("dora" if name == "dora" else "lora")
    assert record.parameters == {"trainable": 0, "total": sum(p.numel() for p in plain.parameters())}
    # Everything else is the run's own record: the merge changes the weights' form, not their history.
    assert {**record.to_dict(), "merged": None, "parameters": None} == {
        **source.to_dict(),
        "merged": None,
        "parameters": None,
    }


@pytest.mark.trains
@pytest.mark.slow
def test_merge_refuses_to_overwrite_and_to_merge_twice(runs, tmp_path, capsys):
    out = tmp_path / "merged"
    assert sfm_main(["merge", str(runs["lora"]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert sfm_main(["merge", str(runs["lora"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err
    assert sfm_main(["merge", str(runs["lora"]), "--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    assert sfm_main(["merge", str(out), "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no adapter_config.json" in err and "nothing to merge" in err


def test_merge_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert sfm_main(["merge", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run folder written by sfm.train" in err
    assert not (tmp_path / "out").exists()
