"""The encoder-decoder path end to end on tiny-t5: the Seq2SeqCollator's batches, training (loss falls), the
saved adapter loading through sfm and through plain PEFT, and constrained generation for evaluation: every
generated token obeys the completion schedule (frame marker, values, EOS) counted from the decoder start token,
and decodes to valid frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sfm.models.run import RunRecord

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "t5" / "burgers-forecast" / "lora.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The T5 twin, trained 10 steps (as shipped apart from the step count)."""
    from sfm.train import main

    home = tmp_path_factory.mktemp("t5")
    out = home / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("SFM_HOME", str(home))
    try:
        assert (
            main(
                [
                    str(RECIPE),
                    "--max_steps",
                    "10",
                    "--save_steps",
                    "10",
                    "--output_dir",
                    str(out),
                    "--no-progress",
                ]
            )
            == 0
        )
    finally:
        mp.undo()
    return home, out


@pytest.fixture(scope="module")
def loaded(trained):
    from sfm.models.run import load_model

    return load_model(trained[1], device="cpu")


@pytest.fixture(scope="module")
def windows(trained, loaded):
    """Test-split windows of the twin's data on the grid the model sees, with their prompts."""
    from sfm.data import load_field_dataset
    from sfm.tasks import get_task_format
    from sfm.training.recipe import load_recipe

    record = RunRecord.read(trained[1])
    recipe = load_recipe(RECIPE)
    fmt = get_task_format("forecast", **recipe.data.task_options)
    fieldset = load_field_dataset(record.data["path"])
    rows = fieldset.split("test")
    prompts, scales, targets = [], [], []
    for i in range(len(rows)):
        traj = fmt.trajectory(rows[i], fieldset.meta)
        for start in (0, 3):
            ids, sc = fmt.prompt(
                traj[start : start + 2], fieldset.meta, fmt.coefficients(rows[i], fieldset.meta), loaded.sci
            )
            prompts.append(ids)
            scales.append(sc)
            targets.append(traj[start + 2 : start + 3])
    return fmt, prompts, scales, np.stack(targets)


def test_collator_feeds_prompt_to_encoder_and_frame_to_decoder():
    from sfm.registry import BACKBONES
    from sfm.training.collators import IGNORE, Seq2SeqCollator

    feats = [
        {"prompt": [5, 6, 7], "completion": [8, 9, 2]},
        {"prompt": [5, 6, 7, 10, 11], "completion": [8, 2]},
    ]
    batch = Seq2SeqCollator(pad_id=3)(feats)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 3, 3, 3, 3, 3], [5, 6, 7, 10, 11, 3, 3, 3]]
    assert batch["attention_mask"].sum(1).tolist() == [3, 5]
    assert batch["labels"][0, :3].tolist() == [8, 9, 2] and (batch["labels"][0, 3:] == IGNORE).all()
    assert batch["labels"][1, :2].tolist() == [8, 2] and (batch["labels"][1, 2:] == IGNORE).all()
    # The model shifts the labels right behind its decoder start token (T5: the pad id), -100 becoming pad.
    model = BACKBONES.get("tiny-t5").build(20, special_ids={"pad_token_id": 3, "eos_token_id": 2})
    shifted = model._shift_right(batch["labels"])
    assert shifted[:, :4].tolist() == [[3, 8, 9, 2], [3, 8, 2, 3]]
    assert model.config.decoder_start_token_id == 3


@pytest.mark.trains
@pytest.mark.slow
def test_training_lowers_the_loss(trained):
    record = RunRecord.read(trained[1])
    losses = record.train["loss_history"]
    assert len(losses) == 10 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert record.recipe["model"]["name_or_path"] == "tiny-t5" and record.base_model == "tiny-t5"


@pytest.mark.trains
@pytest.mark.slow
def test_adapter_loads_with_sfm_and_plain_peft(trained, loaded):
    from peft import AutoPeftModelForSeq2SeqLM, PeftModel

    assert loaded.seq2seq and isinstance(loaded.model, PeftModel)
    plain = AutoPeftModelForSeq2SeqLM.from_pretrained(trained[1]).eval()  # base path from adapter_config.json
    ids = torch.tensor([[5, 9, loaded.sci.new_token_ids[0], 11]])
    dec = torch.tensor([[loaded.sci.pad_id, loaded.sci.new_token_ids[1]]])
    with torch.no_grad():
        a = plain(input_ids=ids, decoder_input_ids=dec).logits
        b = loaded.model(input_ids=ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(a, b)


@pytest.mark.trains
@pytest.mark.slow
def test_constrained_generation_decodes_valid_frames(loaded, windows):
    from sfm.harness.generate import generate

    fmt, prompts, scales, targets = windows
    space = targets.shape[3:]
    allowed = fmt.allowed_tokens(space, loaded.sci)
    n = fmt.completion_length(space, loaded.sci)
    outs = generate(loaded, prompts, max_new_tokens=n, allowed=allowed, batch_size=4)
    assert len(outs) == len(prompts)
    for out in outs:
        assert len(out) == n and out[-1] == loaded.sci.eos_id
        # position i of the completion is decoder position i + 1 (after the start token): an off-by-one in
        # the schedule's prompt_length would put the frame marker in the wrong place
        assert all(tok in set(allowed[i].tolist()) for i, tok in enumerate(out))
    decoded = [fmt.parse(o, space, scales[i], loaded.sci) for i, o in enumerate(outs)]
    assert all(d.valid.all() for d in decoded)
    values = np.stack([d.values for d in decoded])
    assert values.shape == targets.shape and np.isfinite(values).all()


@pytest.mark.trains
@pytest.mark.slow
def test_left_padding_does_not_change_a_seq2seq_answer(loaded, windows):
    """Batched prompts of different lengths are left-padded for the encoder; the mask must hide the padding."""
    from sfm.harness.generate import generate

    fmt, prompts, _, targets = windows
    space = targets.shape[3:]
    allowed = fmt.allowed_tokens(space, loaded.sci)
    n = fmt.completion_length(space, loaded.sci)
    short = prompts[0][3:]
    alone = generate(loaded, [short], max_new_tokens=n, allowed=allowed)
    batched = generate(loaded, [prompts[1], short], max_new_tokens=n, allowed=allowed)
    assert batched[1] == alone[0]
