"""Dataset cards: one template, every variable supplied, Hub-style YAML header that parses back."""

from __future__ import annotations

import jinja2
import jinja2.meta
import pytest
from huggingface_hub import DatasetCard

from sfm.data import generate_dataset, load_field_dataset
from sfm.data.cards import TEMPLATE, card_variables, render_card, size_category


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "wave"
    generate_dataset("_test_wave", 10, out, seed=3, params={"nx": 8}, progress=False)
    return load_field_dataset(out)


def test_every_template_variable_is_supplied(dataset):
    source = TEMPLATE.read_text(encoding="utf-8")
    wanted = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source))
    supplied = set(card_variables(dataset.meta)) | {"card_data"}
    assert wanted == supplied, f"missing: {wanted - supplied}, unused: {supplied - wanted}"
    # and nothing renders empty: StrictUndefined would raise on a missing one
    body = (
        jinja2.Environment(undefined=jinja2.StrictUndefined)
        .from_string(source)
        .render(card_data="x: 1", **card_variables(dataset.meta))
    )
    assert "{{" not in body


def test_card_parses_back_with_the_hub_conventions(dataset):
    card = DatasetCard.load(dataset.path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0"
    assert data["task_categories"] == ["time-series-forecasting"]
    assert data["size_categories"] == ["n<1K"]
    assert {"physics", "pde", "_test_wave", "1d"} <= set(data["tags"])
    files = data["configs"][0]["data_files"]
    assert [f["split"] for f in files] == ["train", "validation", "test"]
    for f in files:  # the configured paths match the files save_to_disk wrote
        assert list(dataset.path.glob(f["path"])), f["path"]
    text = card.text
    m = dataset.meta
    assert m.equation in text and "u_t + c*u_x = 0" in text
    assert f"| train | {m.splits['train']} |" in text
    assert f"{m.stats['u']['std']:.6g}" in text
    assert "`c` varies per trajectory" in text and "`amplitude` = 1" in text
    assert "`seed` (int64" in text
    assert f'load_from_disk("{dataset.path}")' in text


def test_render_is_reproducible_from_metadata(dataset):
    again = render_card(dataset.meta, load_path=str(dataset.path))
    assert again.content.strip() == (dataset.path / "README.md").read_text(encoding="utf-8").strip()


@pytest.mark.parametrize(
    ("n", "label"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (99_999, "10K<n<100K"), (10**6, "1M<n<10M")],
)
def test_size_category(n, label):
    assert size_category(n) == label
