"""ScienceTokenizer on three tokenizer families, and embedding resizing on three tiny architectures.

Nothing is downloaded: (a) is sfm's tiny byte-level BPE, (b) a GPT-2-style byte-level BPE with GPT-2's single
``<|endoftext|>`` special token and no pad token, (c) a T5-style Unigram (SentencePiece) model with a
Metaspace pre-tokenizer, T5's ``<pad>``/``</s>``/``<unk>`` ids 0/1/2, ``</s>`` appended, and extra ids.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sfm.errors import ConfigError, DataError, SfmError
from sfm.models.backbones import build_tiny_tokenizer
from sfm.registry import BACKBONES
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import CONFIG_FILE, ScienceTokenizer, resize_embeddings

CORPUS = [
    "burgers nu=0.01 dt=0.05 predict 1: the quick brown fox jumps over 0123456789 +-*/ x=-3.5e-2",
    "navier_stokes re=1000 dt=0.1 predict 2: heat kappa=0.002 advection beta=0.4 reaction rho=1.5",
] * 10
ENCODINGS = {
    "bins": lambda: get_encoding("bins", n_bins=255, low=-4.0, high=4.0),
    "sme": lambda: get_encoding("sme", digits=2),
    "digits": lambda: get_encoding("digits", digits=3),
}


def _tiny():
    return build_tiny_tokenizer(CORPUS)


def _gpt2_style():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    eot = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eot, eos_token=eot, unk_token=eot)


def _t5_style():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    extra = [f"<extra_id_{i}>" for i in range(4)]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens=extra,
    )


TOKENIZERS = {"tiny-bpe": _tiny, "gpt2-style": _gpt2_style, "t5-style": _t5_style}
COMBOS = [(t, e) for t in TOKENIZERS for e in ENCODINGS]


def _extend(tok_name: str, enc_name: str, fields=("u", "v")) -> tuple[ScienceTokenizer, int]:
    tok = TOKENIZERS[tok_name]()
    before = len(tok)
    return ScienceTokenizer.extend(tok, FieldCodec(ENCODINGS[enc_name](), list(fields))), before


def test_the_three_tokenizers_are_what_they_claim():
    gpt2, t5 = _gpt2_style(), _t5_style()
    assert gpt2.pad_token is None and gpt2.eos_token == gpt2.bos_token == "<|endoftext|>"
    assert [t5.pad_token_id, t5.eos_token_id, t5.unk_token_id] == [0, 1, 2]
    assert t5("x 3")["input_ids"][-1] == 1  # </s> appended, as T5 does
    assert t5.convert_ids_to_tokens(t5("x 3", add_special_tokens=False)["input_ids"])[0] == "▁"


# ---- id mapping -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tok_name", "enc_name"), COMBOS)
def test_added_tokens_map_one_to_one(tok_name, enc_name):
    sci, before = _extend(tok_name, enc_name)
    codec = sci.codec
    local = np.arange(len(codec.tokens))
    glob = sci.to_global(local)
    np.testing.assert_array_equal(sci.to_local(glob), local)
    assert len(set(glob.tolist())) == glob.size
    assert len(sci) == len(sci.tokenizer) == before + len(sci.new_token_ids)
    assert sci.new_token_ids == list(range(before, len(sci)))
    added = codec.tokens if codec.encoding.adds_tokens else codec.tokens[codec.encoding.vocab_size :]
    assert sci.tokenizer.convert_ids_to_tokens(sci.new_token_ids) == added
    if codec.encoding.adds_tokens:
        assert sci.tokenizer.convert_ids_to_tokens(glob.tolist()) == codec.tokens
    assert sci.pad_id is not None and sci.eos_id == sci.tokenizer.eos_token_id


@pytest.mark.parametrize("tok_name", list(TOKENIZERS))
def test_digits_reuse_native_ids(tok_name):
    sci, before = _extend(tok_name, "digits")
    assert len(sci.new_token_ids) == 3  # only <|frame|>, <|field|>, <|scale|>
    native = sci.local_to_global[:12]
    assert native.max() < before
    for ch, tid in zip("0123456789+-", native):
        piece = sci.tokenizer.convert_ids_to_tokens(int(tid))
        assert piece in (ch, "▁" + ch, "Ġ" + ch)
        assert tid in sci.text(ch)  # the id the backbone itself uses for the character


def test_a_missing_native_character_is_added_not_mapped_to_unk():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    data = json.loads(_t5_style().backend_tokenizer.to_str())
    assert any(piece == "+" for piece, _ in data["model"]["vocab"])
    data["model"]["vocab"] = [p for p in data["model"]["vocab"] if p[0] not in ("+", "▁+")]
    bare = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    assert bare("+", add_special_tokens=False)["input_ids"][-1] == bare.unk_token_id
    sci = ScienceTokenizer.extend(bare, FieldCodec(get_encoding("digits"), ["u"]))
    assert sci.tokenizer.convert_ids_to_tokens(sci.new_token_ids) == [
        "+",
        "<|frame|>",
        "<|field|>",
        "<|scale|>",
    ]
    assert sci.local_to_global[10] == sci.new_token_ids[0] != bare.unk_token_id


@pytest.mark.parametrize(("tok_name", "enc_name"), [c for c in COMBOS if c[1] != "digits"])
def test_text_around_added_tokens_still_tokenizes(tok_name, enc_name):
    sci, _ = _extend(tok_name, enc_name)
    codec = sci.codec
    frames = np.array([[[0.5, -1.25, 3.0], [2e-3, 0.0, -7.5]]])  # [T=1, C=2, X=3]
    local, _ = codec.encode_block(frames)
    glob = sci.to_global(local).tolist()
    text = "burgers nu=0.01 " + "".join(codec.tokens[i] for i in local) + " predict 1:"
    ids = sci.text(text)
    start = next(i for i in range(len(ids)) if ids[i : i + len(glob)] == glob)  # the run is there, intact
    before, after = ids[:start], ids[start + len(glob) :]
    decode = sci.tokenizer.decode
    assert decode(before).strip() == "burgers nu=0.01" and decode(after).strip() == "predict 1:"
    assert not set(before + after) & set(sci.new_token_ids)


@pytest.mark.parametrize("tok_name", list(TOKENIZERS))
def test_ids_outside_the_codec_map_to_minus_one(tok_name):
    sci, _ = _extend(tok_name, "sme")
    text_ids = sci.text("the quick brown fox")
    assert text_ids and (sci.to_local(text_ids) == -1).all()
    assert sci.to_local([-3, len(sci), len(sci) + 10**6, sci.eos_id]).tolist() == [-1, -1, -1, -1]
    with pytest.raises(SfmError, match="local ids"):
        sci.to_global([0, -1])
    with pytest.raises(SfmError, match="local ids"):
        sci.to_global([len(sci.codec.tokens)])


# ---- persistence ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tok_name", "enc_name"), COMBOS)
def test_save_and_load_restore_mapping_and_codec(tok_name, enc_name, tmp_path):
    sci, _ = _extend(tok_name, enc_name)
    sci.save(tmp_path)
    cfg = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert cfg["codec"] == sci.codec.config() and cfg["vocab_size"] == len(sci)
    again = ScienceTokenizer.load(tmp_path)
    np.testing.assert_array_equal(again.local_to_global, sci.local_to_global)
    assert again.codec.config() == sci.codec.config() and again.new_token_ids == sci.new_token_ids
    assert len(again) == len(sci) and again.eos_id == sci.eos_id and again.pad_id == sci.pad_id
    frames = np.linspace(-1, 2, 12).reshape(2, 2, 3)
    assert (
        again.to_global(again.codec.encode_block(frames)[0]).tolist()
        == sci.to_global(sci.codec.encode_block(frames)[0]).tolist()
    )
    text = "burgers " + "".join(sci.codec.tokens[i] for i in sci.codec.encode_block(frames)[0][:5])
    assert again.text(text) == sci.text(text)


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match=r"no sfm_encoding\.json"):
        ScienceTokenizer.load(tmp_path)
    sci, _ = _extend("tiny-bpe", "sme")
    sci.save(tmp_path)
    cfg = json.loads((tmp_path / CONFIG_FILE).read_text())
    cfg["vocab_size"] += 1
    (tmp_path / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="do not belong together"):
        ScienceTokenizer.load(tmp_path)


# ---- embeddings -----------------------------------------------------------------------------------------
def _model(backbone: str, tok, extra_rows: int = 0):
    torch.manual_seed(0)
    special = {k: getattr(tok, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    special = {k: v for k, v in special.items() if v is not None}
    if backbone == "tiny-t5":
        special = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    return BACKBONES.get(backbone).build(len(tok) + extra_rows, special_ids=special)


BACKBONE_TOKENIZERS = {"tiny-llama": "tiny-bpe", "tiny-gpt2": "gpt2-style", "tiny-t5": "t5-style"}


@pytest.mark.parametrize("backbone", list(BACKBONE_TOKENIZERS))
def test_resize_grows_embeddings_and_keeps_old_rows(backbone):
    tok = TOKENIZERS[BACKBONE_TOKENIZERS[backbone]]()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = _model(backbone, tok)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    sci = ScienceTokenizer.extend(tok, FieldCodec(ENCODINGS["sme"](), ["u"]))
    resize_embeddings(model, sci)
    n_old = old_in.shape[0]
    for w, old in (
        (model.get_input_embeddings().weight, old_in),
        (model.get_output_embeddings().weight, old_out),
    ):
        assert w.shape[0] == len(sci)
        assert torch.equal(w[:n_old], old)
        new = w[n_old:]
        assert torch.isfinite(new).all()
        # mean init: every new row sits at the mean of the old rows (up to 1e-9 x their covariance)
        torch.testing.assert_close(
            new, old.mean(0).expand_as(new), atol=1e-3 * old.norm(dim=1).mean().item(), rtol=0
        )
    if backbone == "tiny-gpt2":
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
    out = model(**_inputs(model, sci))  # the resized model runs on the new ids
    assert torch.isfinite(out.logits).all() and out.logits.shape[-1] == len(sci)


def _inputs(model, sci):
    ids = torch.as_tensor([sci.to_global(sci.codec.encode_block(np.ones((1, 1, 4)))[0]).tolist()])
    if model.config.is_encoder_decoder:
        return {"input_ids": ids, "decoder_input_ids": ids}
    return {"input_ids": ids}


def test_new_ids_inside_a_padded_embedding_get_the_mean():
    tok = _t5_style()
    model = _model("tiny-t5", tok, extra_rows=32)  # T5 pads its vocabulary: 32100 tokens, 32128 rows
    rows = model.get_input_embeddings().weight.shape[0]
    old = model.get_input_embeddings().weight.detach().clone()
    sci = ScienceTokenizer.extend(tok, FieldCodec(get_encoding("digits"), ["u"]))
    resize_embeddings(model, sci)
    w = model.get_input_embeddings().weight
    assert w.shape[0] == rows  # no resize needed ...
    new = sci.new_token_ids
    keep = [i for i in range(rows) if i not in new]
    torch.testing.assert_close(w[new], old[keep].mean(0).expand(len(new), -1))  # ... but the rows are set
    assert torch.equal(w[keep], old[keep])


def test_a_model_built_for_the_extended_tokenizer_keeps_its_rows():
    sci, _ = _extend("tiny-bpe", "sme")
    model = _model("tiny-llama", sci.tokenizer)  # built with len(sci) rows, as sfm builds tiny backbones
    before = model.get_input_embeddings().weight.detach().clone()
    resize_embeddings(model, sci, pretrained=False)
    assert torch.equal(model.get_input_embeddings().weight, before)


def test_added_ids_inside_a_padded_pretrained_embedding_start_at_the_mean():
    # Qwen2.5-style: the checkpoint has more rows than its tokenizer, and the tokenizer grows past them, so
    # some added ids land in padding rows and the rest need new rows.
    sci, _ = _extend("tiny-bpe", "sme")
    n_inside = 5
    model = _model("tiny-llama", sci.tokenizer)
    model.resize_token_embeddings(sci.new_token_ids[0] + n_inside, mean_resizing=False)
    old_rows = model.get_input_embeddings().weight.shape[0]
    before = model.get_input_embeddings().weight.detach().clone()
    resize_embeddings(model, sci, pretrained=True)
    w = model.get_input_embeddings().weight.detach()
    inside = sci.new_token_ids[:n_inside]
    keep = [i for i in range(old_rows) if i not in inside]
    torch.testing.assert_close(w[inside], before[keep].mean(0).expand(n_inside, -1))
    assert torch.equal(w[keep], before[keep])
    assert w.shape[0] == len(sci)


@pytest.mark.parametrize("backbone", ["tiny-llama", "tiny-gpt2"])
def test_ordinal_init_orders_bin_rows_along_one_direction(backbone):
    weights = []
    for _ in range(2):
        tok = TOKENIZERS[BACKBONE_TOKENIZERS[backbone]]()
        tok.pad_token = tok.pad_token or tok.eos_token
        model = _model(backbone, tok)
        sci = ScienceTokenizer.extend(tok, FieldCodec(ENCODINGS["bins"](), ["u"]))
        resize_embeddings(model, sci, init="ordinal")
        bins = torch.as_tensor(sci.local_to_global[: sci.codec.encoding.n_bins])
        for emb in (model.get_input_embeddings(), model.get_output_embeddings()):
            rows = emb.weight[bins].detach()
            direction = rows[-1] - rows[0]
            proj = (rows - rows.mean(0)) @ direction
            assert (torch.diff(proj) > 0).all()  # monotonic in the bin index
            # one direction: every row lies on the line through the first and last bin
            residual = (rows - rows[0]) - torch.outer(proj - proj[0], direction) / direction.dot(direction)
            assert residual.norm(dim=1).max() < 1e-4 * direction.norm()
        weights.append(model.get_output_embeddings().weight.detach().clone())
    assert torch.equal(weights[0], weights[1])  # seeded and in a fixed order: reproducible


def test_bad_init_name():
    sci, _ = _extend("tiny-bpe", "bins")
    with pytest.raises(ConfigError, match="'mean' or 'ordinal'"):
        resize_embeddings(object(), sci, init="random")
