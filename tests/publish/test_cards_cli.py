"""``sfm card`` and ``--push-to-hub``: the card written from the CLI, one-line errors, and what is uploaded
(nothing leaves the machine: the Hub client is replaced)."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from sfm.cli import main
from sfm.errors import SfmError
from sfm.harness.results import ModelInfo
from sfm.publish.cards import push_to_hub, write_model_card

from .test_cards import make_results, make_run


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path)


@pytest.fixture
def results(run, tmp_path):
    r = make_results(run)
    r.save(tmp_path / "results")
    return r


def test_cli_writes_the_card_and_skips_other_models(run, results, tmp_path, capsys):
    other = make_results(run)
    other.model = ModelInfo(name="persistence", kind="baseline")
    other.save(tmp_path / "results/baseline")
    out = tmp_path / "card/README.md"
    assert main(["card", "--model", str(run), "--results", str(tmp_path / "results"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "baseline/results.json: results of baseline 'persistence'" in captured.err
    assert ModelCard.load(out).data.eval_results and (out.parent / "figures").is_dir()


def test_cli_errors_are_one_line(tmp_path, run, capsys):
    assert main(["card", "--model", str(tmp_path), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sfm_run.json: no readable run record" in err
    assert main(["card", "--model", str(run), "--results", str(tmp_path / "none")]) == 2
    assert "holds results of" in capsys.readouterr().err


def test_push_to_hub_offline_is_a_clear_one_line_error(run, results, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SfmError, match=r"--push-to-hub org/name: HF_HUB_OFFLINE is set"):
        push_to_hub(run, run / "README.md", "org/name")
    assert (
        main(
            [
                "card",
                "--model",
                str(run),
                "--results",
                str(run.parent.parent.parent / "results"),
                "--push-to-hub",
                "org/name",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sfm: error: --push-to-hub org/name: HF_HUB_OFFLINE is set")
    assert (run / "README.md").is_file()  # the card itself was still written


def test_push_uploads_the_run_with_its_card_but_not_checkpoints(run, results, tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    class FakeApi:  # records what would be sent; nothing leaves the machine
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, exist_ok, private):
            calls["repo"] = (repo_id, exist_ok, private)

        def create_commit(self, repo_id, operations, commit_message):
            calls["files"] = {op.path_in_repo: op.path_or_fileobj for op in operations}
            return "https://huggingface.co/org/name/commit/0"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    card = write_model_card(run, [results], tmp_path / "elsewhere/README.md")
    assert push_to_hub(run, card, "org/name", private=True) == "https://huggingface.co/org/name/commit/0"
    assert calls["repo"] == ("org/name", True, True)
    files = calls["files"]
    assert files["README.md"] == str(card)
    assert {"adapter_model.safetensors", "adapter_config.json", "sfm_encoding.json", "sfm_run.json"} <= set(
        files
    )
    assert {"figures/forecast__b_v2_rollout.png", "figures/robust__b_v1_noise.png"} <= set(files)
    assert not any(f.startswith("checkpoint-") or f == "training_args.bin" for f in files)
