"""How field models (continuous and operator) take fields in and give them back.

:class:`FieldSpec` is what a trained field model knows about its data (grid, frames, fields, coefficients,
training statistics); it is saved in the run folder. :class:`FieldIO` is the module every field model holds
(``model.field_io``): it turns context frames ``[B, k, C, *space]`` and coefficients ``[B, P]`` into
normalized input channels ``[B, in_channels, *space]`` (context frames, then grid coordinates, then the
coefficients as constant channels), turns the network's output ``[B, h*C, *space]`` back into physical frames
``[B, h, C, *space]`` (residual added, normalization undone), and computes the training loss.

A field run folder holds ``field_model.json`` (``{"kind", "spec", "fields", "operator" | "encoder",
"backbone"}``) and safetensors weights; :func:`load_field_run` reads it back as a :class:`FieldPredictor`.
Each kind's loader (``load_<kind>(folder) -> nn.Module`` with a ``field_io``) lives in its own module.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfm.errors import DataError
from sfm.models.field_config import FieldsSection

FIELD_MODEL_FILE = "field_model.json"
WEIGHTS_FILE = "model.safetensors"

#: Loader of each field-model kind, by module path: the loaders import this module, so naming them (rather
#: than importing them here) keeps the import graph acyclic.
_LOADERS = {
    "operator": ("sfm.models.operators", "load_operator"),
    "continuous": ("sfm.models.continuous", "load_continuous"),
}

#: Floor of a normalization std, relative to 1: a constant field (std 0) is shifted, not divided by zero.
_STD_FLOOR = 1e-6


@dataclass
class FieldSpec:
    """What a field model knows about its data (JSON-able; saved in the run folder).

    Attributes:
        n_fields: Physical fields (channels) C.
        space: The grid the model sees, ``[*space]`` after ``space_stride``.
        context_frames: Frames in (k). horizon: Frames out (h).
        coefficient_names: PDE coefficients given as inputs (sorted), P of them.
        mean: Per-field mean of the training split. std: Per-field std.
        field_names: Names of the C fields.
        family: The PDE family, if known.
        coefficient_mean: Per-coefficient mean over the training trajectories (None: 0).
        coefficient_std: Per-coefficient std (None or 0: 1), so coefficient channels are O(1).
    """

    n_fields: int
    space: list[int]
    context_frames: int
    horizon: int
    coefficient_names: list[str]
    mean: list[float]
    std: list[float]
    field_names: list[str]
    family: str | None = None
    coefficient_mean: list[float] | None = None
    coefficient_std: list[float] | None = None

    @property
    def ndim(self) -> int:
        return len(self.space)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"field spec: unknown keys {unknown}")
        return cls(**d)


class FieldIO(torch.nn.Module):
    """Input and output handling shared by field models (module docstring).

    Args:
        spec: The data the model is for.
        fields: How fields go in and out (grid / coefficient channels, residual, normalization, loss).
    """

    def __init__(self, spec: FieldSpec, fields: FieldsSection) -> None:
        super().__init__()
        self.spec, self.fields = spec, fields
        k, c, p, nd = spec.context_frames, spec.n_fields, len(spec.coefficient_names), spec.ndim
        self.in_channels = k * c + (nd if fields.grid else 0) + (p if fields.coefficients else 0)
        self.out_channels = spec.horizon * c
        bshape = (1, 1, c) + (1,) * nd  # broadcasts over [B, frames, C, *space]
        std = np.maximum(np.asarray(spec.std, dtype=np.float64), _STD_FLOOR)
        # Buffers are rebuilt from the spec, not saved: the weights file holds only learned tensors.
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(bshape), False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(bshape), False)
        cm = spec.coefficient_mean or [0.0] * p
        cs = [s if s and s > 0 else 1.0 for s in (spec.coefficient_std or [1.0] * p)]
        self.register_buffer("coef_mean", torch.tensor(cm, dtype=torch.float32).view(1, p), False)
        self.register_buffer("coef_std", torch.tensor(cs, dtype=torch.float32).view(1, p), False)
        self.register_buffer("grid", _grid(spec.space), False)

    def scale(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` that normalize ``context`` ``[B, k, C, *space]``, broadcastable to it."""
        if self.fields.normalization == "field":
            return self.mean, self.std
        axes = (1, *range(3, context.ndim))
        mean = context.mean(dim=axes, keepdim=True)
        std = context.std(dim=axes, keepdim=True, correction=0)
        return mean, std.clamp_min(_STD_FLOOR)

    def encode(self, context: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Input channels ``[B, in_channels, *space]`` of context ``[B, k, C, *space]`` and coefficients ``[B, P]``."""
        self._check(context)
        mean, std = self.scale(context)
        b, space = context.shape[0], context.shape[3:]
        parts = [((context - mean) / std).reshape(b, -1, *space)]
        if self.fields.grid:
            parts.append(self.grid.expand(b, *self.grid.shape[1:]))
        if self.fields.coefficients and self.coef_mean.shape[1]:
            coef = (coefficients.to(context.dtype) - self.coef_mean) / self.coef_std
            parts.append(coef.view(b, -1, *(1,) * len(space)).expand(b, -1, *space))
        return torch.cat(parts, dim=1)

    def decode(self, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Physical frames ``[B, h, C, *space]`` of a network output ``[B, h*C, *space]``.

        With ``residual`` the output is the change over the last context frame in units of the field's std,
        so a zero output decodes to exactly the last context frame.
        """
        mean, std = self.scale(context)
        y = y.reshape(y.shape[0], self.spec.horizon, self.spec.n_fields, *y.shape[2:])
        if self.fields.residual:
            return context[:, -1:] + y * std
        return y * std + mean

    def target(self, target: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The network output ``[B, h*C, *space]`` that would decode to ``target`` exactly."""
        mean, std = self.scale(context)
        base = context[:, -1:] if self.fields.residual else mean
        return ((target - base) / std).reshape(target.shape[0], -1, *target.shape[3:])

    def loss(self, y: torch.Tensor, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of output ``y`` against physical ``target`` ``[B, h, C, *space]`` (``fields.loss``).

        ``mse``: mean squared error in normalized output units. ``relative_mse``: per (example, frame, field)
        squared error over the target's mean square (the square of the nRMSE the tasks report), averaged.
        """
        if self.fields.loss == "mse":
            return torch.mean((y - self.target(target, context)) ** 2)
        pred = self.decode(y, context)
        axes = tuple(range(3, target.ndim))
        err = ((pred - target) ** 2).mean(dim=axes)
        norm = (target**2).mean(dim=axes).clamp_min(1e-12)
        return (err / norm).mean()

    def _check(self, context: torch.Tensor) -> None:
        want = (self.spec.context_frames, self.spec.n_fields, *self.spec.space)
        if tuple(context.shape[1:]) != want:
            raise DataError(
                f"field model expects context [batch, {', '.join(map(str, want))}], got {list(context.shape)}"
            )


def _grid(space: list[int]) -> torch.Tensor:
    """Grid coordinates in [0, 1) (periodic grids: the last point is not the first): ``[1, ndim, *space]``."""
    axes = [torch.arange(n, dtype=torch.float64) / n for n in space]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh).unsqueeze(0).to(torch.float32)


def field_forward(
    io: FieldIO, net: Any, context: torch.Tensor, coefficients: torch.Tensor, target: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The ``forward`` every field model shares: encode, ``net``, decode, and the loss when ``target`` is given."""
    y = net(io.encode(context, coefficients))
    out = {"prediction": io.decode(y, context)}
    if target is not None:
        out["loss"] = io.loss(y, context, target)
    return out


def write_field_model(folder: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``field_model.json`` atomically (``payload``: kind, spec, fields, operator/encoder, backbone)."""
    from sfm.utils.io import atomic_write_json

    return atomic_write_json(Path(folder) / FIELD_MODEL_FILE, payload)


def read_field_model(folder: str | Path) -> dict[str, Any]:
    """``field_model.json`` of a run folder.

    Raises:
        DataError: missing or unreadable file, or an unknown kind.
    """
    path = Path(folder) / FIELD_MODEL_FILE
    if not path.is_file():
        raise DataError(f"{folder}: no {FIELD_MODEL_FILE} (not a field-model run folder)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if payload.get("kind") not in _LOADERS:
        raise DataError(
            f"{path}: unknown field-model kind {payload.get('kind')!r}; known: {', '.join(_LOADERS)}"
        )
    return payload


@dataclass
class FieldPredictor:
    """A loaded field model, ready to predict frames (what the harness scores).

    Attributes:
        kind: ``operator`` or ``continuous``. spec: Its :class:`FieldSpec`. model: The ``nn.Module``.
        record: The run record, if the caller passed one.
    """

    kind: str
    spec: FieldSpec
    model: torch.nn.Module
    record: Any = None
    device: str = field(default="cpu")

    @property
    def context_frames(self) -> int:
        return self.spec.context_frames

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @torch.no_grad()
    def predict_frames(self, contexts: np.ndarray, coefficients: np.ndarray, batch_size: int) -> np.ndarray:
        """Next frames ``[N, h, C, *space]`` (float32) of physical contexts ``[N, k, C, *space]`` and
        coefficients ``[N, P]`` (ordered as ``spec.coefficient_names``), ``batch_size`` windows at a time."""
        contexts = np.asarray(contexts, dtype=np.float32)
        coefficients = np.asarray(coefficients, dtype=np.float32).reshape(contexts.shape[0], -1)
        self.model.eval()
        out = []
        for a in range(0, contexts.shape[0], max(1, int(batch_size))):
            ctx = torch.from_numpy(contexts[a : a + batch_size]).to(self.device)
            coef = torch.from_numpy(coefficients[a : a + batch_size]).to(self.device)
            out.append(self.model(ctx, coef)["prediction"].float().cpu().numpy())
        shape = (0, self.spec.horizon, self.spec.n_fields, *self.spec.space)
        return np.concatenate(out) if out else np.zeros(shape, np.float32)


def load_field_run(folder: str | Path, record: Any = None) -> FieldPredictor:
    """Load the field model of a run folder (any kind) as a :class:`FieldPredictor`."""
    payload = read_field_model(folder)
    module, name = _LOADERS[payload["kind"]]
    model = getattr(importlib.import_module(module), name)(folder)
    model.eval()
    return FieldPredictor(payload["kind"], model.field_io.spec, model, record)


__all__ = [
    "FIELD_MODEL_FILE",
    "WEIGHTS_FILE",
    "FieldIO",
    "FieldPredictor",
    "FieldSpec",
    "field_forward",
    "load_field_run",
    "read_field_model",
    "write_field_model",
]
