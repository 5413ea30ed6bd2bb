"""Continuous models: a field encoder feeds any Hugging Face backbone through ``inputs_embeds`` and a regression
head reads the next frames out (the UPS / ORCA / MPP design), beside the token path.

Shapes: context ``[B, k, C, *space]`` -> :class:`FieldIO` channels ``[B, in, *space]`` -> encoder patches
``[B, N, hidden]`` -> backbone -> the last ``N`` outputs ``[B, N, hidden]`` -> head ``[B, h*C, *space]`` ->
frames ``[B, h, C, *space]`` (residual and normalization undone by :class:`FieldIO`).

The sequence the backbone sees (``model.encoder.readout``), after the optional PDE description as text tokens:

* ``queries``: context patches, then ``N`` learned query positions whose outputs are the next frame's patches.
  On an encoder–decoder backbone (T5) the queries are the decoder's inputs instead and cross-attend to the
  encoded field (the seq2seq way of reading out).
* ``bidirectional``: the context patches only, read in place; a decoder-only backbone gets a full attention
  mask, an encoder-only one (T5's encoder, as ``T5EncoderModel``) is bidirectional already.
* ``doubled``: the context patches twice, the second copy read out: under a causal mask every output has
  seen the whole field ("Decoding PDEs", 2025: decoder-only backbones adapt far worse without it).

Fine-tuning (``peft.method``): ``lora`` / ``dora`` / ``rslora`` wrap the *backbone submodule only* with PEFT,
``full`` trains it all, ``freeze`` only ``peft.trainable_modules``; the encoder, queries and head always train.
Why PEFT sees only the backbone: a PEFT model saves its adapters and nothing else unless a module is listed
in ``modules_to_save`` (peft #310, #1070, #876 — new heads silently lost on save). Here the encoder and head
are never inside the PEFT model: :meth:`ContinuousModel.save` writes them to their own safetensors file and
the adapter folder stays a plain PEFT adapter of the plain backbone, so nothing can be dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sfm.config import from_dict
from sfm.models import continuous_backbone as cb
from sfm.models.encoders import FieldEncoder, PatchHead, resolve_modes, resolve_patch
from sfm.models.field_config import EncoderSection, FieldsSection
from sfm.models.field_io import WEIGHTS_FILE, FieldIO, FieldSpec, read_field_model, write_field_model
from sfm.tasks.base import fmt_number

BACKBONE_DIR = "backbone"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
KIND = "continuous"


def describe_text(family: str | None, names: list[str], values: list[float]) -> str:
    """The PDE's description given to the backbone as text (``burgers: nu=0.0123``)."""
    coefs = ", ".join(f"{n}={fmt_number(v)}" for n, v in zip(names, values, strict=True))
    return f"{family or 'pde'}: {coefs}" if coefs else (family or "pde")


class ContinuousModel(nn.Module):
    """Field encoder -> backbone (``inputs_embeds``) -> regression head (module docstring).

    Attributes:
        field_io: Inputs and outputs (normalization, grid and coefficient channels, residual, loss).
        encoder: :class:`FieldEncoder`. head: :class:`PatchHead`.
        backbone: The transformers model (its base model, no LM head), PEFT-wrapped for LoRA-family methods.
        queries: ``[N, hidden]`` learned query positions (``readout: queries``), else None.
        info: How to rebuild the backbone (``field_model.json``'s ``backbone`` entry).
    """

    main_input_name = "context"  # what transformers' Trainer counts as the input

    def __init__(
        self,
        field_io: FieldIO,
        encoder: FieldEncoder,
        backbone: nn.Module,
        head: PatchHead,
        *,
        section: EncoderSection,
        info: dict[str, Any],
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        self.field_io, self.encoder, self.backbone, self.head = field_io, encoder, backbone, head
        self.section, self.info, self.tokenizer = section, info, tokenizer
        self.arch = info["arch"]
        hidden = head.proj.in_features
        self.queries = None
        if section.readout == "queries":
            self.queries = nn.Parameter(0.02 * torch.randn(encoder.n_patches, hidden))
        self.register_state_dict_post_hook(_drop_aliases)

    def forward(
        self, context: torch.Tensor, coefficients: torch.Tensor, target: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Next frames of ``context`` ``[B, k, C, *space]`` and ``coefficients`` ``[B, P]`` (physical units).

        Returns:
            ``prediction`` ``[B, h, C, *space]``, and ``loss`` (``fields.loss``) when ``target`` is given.
        """
        patches = self.encoder(self.field_io.encode(context, coefficients))
        y = self.head(self._read(patches, coefficients).float())
        out = {"prediction": self.field_io.decode(y, context)}
        if target is not None:
            out["loss"] = self.field_io.loss(y, context, target)
        return out

    def _read(self, patches: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """The backbone's outputs ``[B, N, hidden]`` for patch embeddings ``[B, N, hidden]`` (readout)."""
        base = cb.base_model(self.backbone)
        dtype = next(base.parameters()).dtype
        b, n = patches.shape[:2]
        seq = patches.to(dtype)
        if self.section.readout == "doubled":
            seq = torch.cat([seq, seq], dim=1)
        queries = None if self.queries is None else self.queries.to(dtype).expand(b, -1, -1)
        if queries is not None and self.arch != "seq2seq":
            seq, queries = torch.cat([seq, queries], dim=1), None
        mask = None
        if self.tokenizer is not None:
            text, text_mask = self._describe(coefficients, base)
            seq = torch.cat([text.to(dtype), seq], dim=1)
            mask = torch.cat([text_mask, text_mask.new_ones(b, seq.shape[1] - text.shape[1])], dim=1)
        full = self.arch == "causal" and self.section.readout == "bidirectional"
        hidden = cb.run(self.backbone, self.arch, seq, mask, queries, bidirectional=full)
        return hidden[:, -n:]

    def _describe(self, coefficients: torch.Tensor, base: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``[B, D, hidden]`` and mask ``[B, D]`` of the PDE description (left-padded text)."""
        spec = self.field_io.spec
        texts = [describe_text(spec.family, spec.coefficient_names, row) for row in coefficients.tolist()]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        emb = base.get_input_embeddings()
        ids = enc["input_ids"].to(emb.weight.device)
        return emb(ids), enc["attention_mask"].to(ids.device)

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict | None = None, **kw: Any
    ) -> None:
        """Recompute the backbone's activations in the backward pass (what ``Trainer`` calls; the encoder and
        head are small next to it). transformers < 5 names it ``gradient_checkpointing_enable``."""
        base = cb.base_model(self.backbone)
        if hasattr(base, "activation_checkpointing_enable"):
            base.activation_checkpointing_enable(activation_checkpointing_kwargs, **kw)
        else:  # pragma: no cover - transformers 4.x
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=activation_checkpointing_kwargs)

    gradient_checkpointing_enable = activation_checkpointing_enable

    def save(self, folder: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write the model into run folder ``folder`` (each part atomically; ``field_model.json`` last).

        ``model.safetensors`` holds every tensor outside the backbone (encoder, queries, head); ``adapter/``
        the PEFT adapter; ``backbone/`` the whole backbone when it trained (``full``/``freeze``) or when no
        Hub checkpoint can rebuild it (tiny or ``init: random``); ``tokenizer/`` the description tokenizer.

        Args:
            folder: The run folder (other files in it are left alone).
            state_dict: This module's full state dict when the live parameters are partitioned (DeepSpeed
                ZeRO-3: ``accelerator.get_state_dict(model)``, on the main process); default: its own.

        Raises:
            DataError: a tensor to save is empty (partitioned weights saved without gathering them).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = self.state_dict() if state_dict is None else state_dict
        own = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        inner = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        cb.save_tensors(own, folder / WEIGHTS_FILE)
        saved = cb.save_backbone(self.backbone, self.info, inner, folder, BACKBONE_DIR, ADAPTER_DIR)
        if self.tokenizer is not None:
            cb.save_pretrained_dir(self.tokenizer, folder / TOKENIZER_DIR)
        spec = self.field_io.spec
        payload = {
            "kind": KIND,
            "spec": spec.to_dict(),
            "fields": _plain(self.field_io.fields),
            "encoder": _plain(self.section),
            "backbone": {**self.info, "saved": saved},
        }
        write_field_model(folder, payload)
        return folder


def build_continuous(
    spec: FieldSpec,
    model_section: Any,
    *,
    fields: FieldsSection,
    encoder: EncoderSection,
    peft_section: Any = None,
) -> ContinuousModel:
    """Build a continuous model for data ``spec`` from the recipe's sections.

    Args:
        spec: What the model is for (grid, frames, fields, coefficients, training statistics).
        model_section: The recipe's ``model`` (``name_or_path``, ``tiny``, ``revision``, ``torch_dtype``,
            ``attn_implementation``, ``trust_remote_code``, ``init``): a tiny backbone is built from its
            config, any other is loaded with ``from_pretrained`` (a Hub id or a ``save_pretrained`` folder).
        fields: ``model.fields``. encoder: ``model.encoder``.
        peft_section: The recipe's ``peft`` (method, r, alpha, dropout, target_modules, trainable_modules);
            None trains the whole backbone.

    Raises:
        ConfigError: a patch size or mode count that does not fit the grid, a readout the backbone cannot
            give, an unsupported method — all before any weights are built.
    """
    patch = resolve_patch(encoder.patch_size, spec.space)
    if encoder.type == "spectral":
        resolve_modes(encoder.n_modes, spec.space, patch)
    method = "full" if peft_section is None else peft_section.method
    cb.check_method(method)
    config, arch = cb.backbone_config(model_section, encoder.readout)
    tokenizer = cb.make_tokenizer(model_section, spec, describe_text) if encoder.describe else None
    backbone, info = cb.make_backbone(model_section, config, arch, tokenizer)
    backbone, info["peft"] = cb.apply_method(backbone, peft_section)
    return _assemble(spec, fields, encoder, backbone, info, tokenizer)


def load_continuous(folder: str | Path) -> ContinuousModel:
    """Rebuild a saved continuous model from its run folder (bit-identical predictions), in eval mode."""
    folder = Path(folder)
    payload = read_field_model(folder)
    spec = FieldSpec.from_dict(payload["spec"])
    fields = from_dict(FieldsSection, payload["fields"], where=f"{folder}: fields")
    encoder = from_dict(EncoderSection, payload["encoder"], where=f"{folder}: encoder")
    info = {k: v for k, v in payload["backbone"].items() if k != "saved"}
    backbone = cb.load_backbone(info, payload["backbone"]["saved"], folder, BACKBONE_DIR, ADAPTER_DIR)
    tokenizer = None
    if encoder.describe:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
    model = _assemble(spec, fields, encoder, backbone, info, tokenizer)
    cb.load_tensors(model, folder / WEIGHTS_FILE)
    return model.eval()


def _assemble(
    spec: FieldSpec,
    fields: FieldsSection,
    section: EncoderSection,
    backbone: nn.Module,
    info: dict[str, Any],
    tokenizer: Any,
) -> ContinuousModel:
    io = FieldIO(spec, fields)
    hidden = int(cb.base_model(backbone).config.hidden_size)
    encoder = FieldEncoder(io.in_channels, list(spec.space), section, hidden)
    head = PatchHead(hidden, io.out_channels, list(spec.space), encoder.patch)
    return ContinuousModel(io, encoder, backbone, head, section=section, info=info, tokenizer=tokenizer)


def _drop_aliases(
    module: nn.Module, state: dict[str, torch.Tensor], prefix: str, local_metadata: Any
) -> None:
    """Keep one key per shared tensor (T5's ``shared`` is also ``encoder.embed_tokens``): safetensors refuses
    aliases, and transformers' ``Trainer`` checkpoints a plain module's state dict with it. Loading (strict or
    not, transformers re-ties on load) restores the alias through the kept key."""
    seen: set[tuple] = set()
    for key in list(state):
        t = state[key]
        if not isinstance(t, torch.Tensor) or t.numel() == 0:
            continue
        ident = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            tuple(t.stride()),
            t.dtype,
        )
        if ident in seen:
            del state[key]
        seen.add(ident)


def _plain(section: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(section)))


__all__ = ["ContinuousModel", "build_continuous", "describe_text", "load_continuous"]
