"""Neural operators from ``neuraloperator`` as sfm field models: FNO and a U-shaped operator (UNO).

``model.name_or_path: operator:fno`` (or ``operator:uno``) in a recipe. The operator is wrapped as
``lifting -> processor -> projection`` inside neuraloperator's model, between sfm's :class:`FieldIO`:

    context [B, k, C, *space], coefficients [B, P]
      -> FieldIO.encode -> [B, k*C (+ ndim grid) (+ P coefficients), *space]     (normalized)
      -> FNO / UNO      -> [B, h*C, *space]                                       (normalized change)
      -> FieldIO.decode -> prediction [B, h, C, *space]                           (physical)

1D or 2D follows from the data (``n_modes`` has one entry for all axes or one per axis). A run folder holds
``field_model.json`` and ``model.safetensors``; :func:`load_operator` rebuilds the model from them alone.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sfm.config import from_dict
from sfm.errors import ConfigError, DataError
from sfm.models.field_config import FieldsSection, OperatorSection
from sfm.models.field_io import (
    FIELD_MODEL_FILE,
    WEIGHTS_FILE,
    FieldIO,
    FieldSpec,
    field_forward,
    read_field_model,
    write_field_model,
)

OPERATORS = ("fno", "uno")
PREFIX = "operator:"


def operator_name(name_or_path: str) -> str:
    """``fno`` of ``operator:fno`` (or of ``fno``).

    Raises:
        ConfigError: not one of :data:`OPERATORS`.
    """
    name = name_or_path[len(PREFIX) :] if name_or_path.startswith(PREFIX) else name_or_path
    if name not in OPERATORS:
        from sfm.errors import did_you_mean

        raise ConfigError(
            f"model.name_or_path {name_or_path!r}: unknown operator{did_you_mean(name, OPERATORS)}; "
            f"operators: {', '.join(PREFIX + o for o in OPERATORS)}"
        )
    return name


class OperatorModel(torch.nn.Module):
    """A neural operator between sfm's field input and output (module docstring).

    Args:
        spec: The data the model is for.
        fields: How fields go in and out.
        section: The operator's size (modes, width, layers).
        name: ``fno`` or ``uno``.
    """

    def __init__(self, spec: FieldSpec, fields: FieldsSection, section: OperatorSection, name: str) -> None:
        super().__init__()
        self.name = operator_name(name)
        self.section = section
        self.field_io = FieldIO(spec, fields)
        modes = resolve_modes(section.n_modes, spec.space)
        self.net = _build_net(
            self.name, section, modes, self.field_io.in_channels, self.field_io.out_channels
        )

    def forward(
        self,
        context: torch.Tensor,
        coefficients: torch.Tensor,
        target: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> dict[str, torch.Tensor]:
        """``{"prediction": [B, h, C, *space]}`` plus ``"loss"`` when ``target`` ``[B, h, C, *space]`` is given.

        ``return_loss`` is never read: its presence (default True) tells the HF Trainer that this model
        returns a loss without ``labels``, so evaluation reports ``eval_loss``.
        """
        return field_forward(self.field_io, self.net, context, coefficients, target)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The weights only: neuraloperator adds a ``_metadata`` dict of its init arguments, which neither
        safetensors nor the HF Trainer's checkpoints can hold (everything needed to rebuild the model is in
        ``field_model.json``)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def save(self, folder: str | Path) -> Path:
        """Write ``field_model.json`` and ``model.safetensors`` into run folder ``folder`` (atomically)."""
        return save_operator(self, folder)

    def field_model(self) -> dict[str, Any]:
        """What ``field_model.json`` records to rebuild this model."""
        return {
            "kind": "operator",
            "operator_name": self.name,
            "spec": self.field_io.spec.to_dict(),
            "fields": asdict(self.field_io.fields),
            "operator": asdict(self.section),
            "backbone": PREFIX + self.name,
        }


def resolve_modes(n_modes: list[int], space: list[int]) -> tuple[int, ...]:
    """Fourier modes per axis: one entry for every axis or one per axis, at most the grid's points.

    Raises:
        ConfigError: a wrong number of entries, or a non-positive one.
    """
    if len(n_modes) not in (1, len(space)):
        raise ConfigError(
            f"model.operator.n_modes has {len(n_modes)} entries; the data is {len(space)}D "
            f"(grid {list(space)}): give one entry, or one per axis"
        )
    if any(int(m) < 1 for m in n_modes):
        raise ConfigError(f"model.operator.n_modes must be >= 1, got {list(n_modes)}")
    modes = list(n_modes) * len(space) if len(n_modes) == 1 else list(n_modes)
    # neuraloperator counts modes over positive and negative frequencies: a grid of n points holds n.
    return tuple(min(int(m), int(s)) for m, s in zip(modes, space))


def _neuralop() -> Any:
    # neuraloperator imports wandb at import time; a training run must never try to reach its servers.
    os.environ.setdefault("WANDB_MODE", "disabled")
    import neuralop.models

    return neuralop.models


def _build_net(name: str, section: OperatorSection, modes: tuple[int, ...], c_in: int, c_out: int) -> Any:
    """The neuraloperator network. Grid coordinates come from FieldIO, so its own embedding is off."""
    if section.hidden_channels < 1 or section.n_layers < 1 or section.projection_channels < 1:
        raise ConfigError("model.operator: hidden_channels, n_layers and projection_channels must be >= 1")
    nm = _neuralop()
    ratio = section.projection_channels / section.hidden_channels
    if name == "fno":
        return nm.FNO(
            n_modes=modes,
            in_channels=c_in,
            out_channels=c_out,
            hidden_channels=section.hidden_channels,
            n_layers=section.n_layers,
            lifting_channel_ratio=ratio,
            projection_channel_ratio=ratio,
            positional_embedding=None,
        )
    channels, level_modes, scalings = uno_layout(section.n_layers, section.hidden_channels, modes)
    with contextlib.redirect_stdout(io.StringIO()):  # UNO's constructor prints its skip setting
        return nm.UNO(
            in_channels=c_in,
            out_channels=c_out,
            hidden_channels=section.hidden_channels,
            lifting_channels=section.projection_channels,
            projection_channels=section.projection_channels,
            positional_embedding=None,
            n_layers=section.n_layers,
            uno_out_channels=channels,
            uno_n_modes=level_modes,
            uno_scalings=scalings,
            channel_mlp_skip="linear",  # soft-gating needs equal widths; U levels change width
        )


def uno_layout(
    n_layers: int, hidden: int, modes: tuple[int, ...]
) -> tuple[list[int], list[list[int]], list[list[float]]]:
    """Channels, modes and resolution scalings of a U-shaped operator of ``n_layers`` levels.

    Layer ``i`` works at depth ``d_i = min(i, n_layers - 1 - i)``: its output has ``1 / 2^d_i`` of the
    points per axis and ``hidden * 2^d_i`` channels (a U-Net's shape), and it keeps the modes its coarser
    side can hold. neuraloperator's default skips join layer ``i`` to layer ``n_layers - 1 - i``.
    """
    depth = [min(i, n_layers - 1 - i) for i in range(n_layers)]
    channels = [hidden * 2**d for d in depth]
    scalings, level_modes, prev = [], [], 0
    for d in depth:
        scalings.append([2.0 ** (prev - d)] * len(modes))
        coarse = max(prev, d)
        level_modes.append([max(1, m // 2**coarse) for m in modes])
        prev = d
    return channels, level_modes, scalings


def build_operator(
    spec: FieldSpec, name: str, section: OperatorSection, fields: FieldsSection | None = None
) -> OperatorModel:
    """An untrained operator model for data described by ``spec``.

    Args:
        spec: The data (grid, frames, fields, coefficients, statistics).
        name: ``fno`` / ``uno`` (or ``operator:fno`` / ``operator:uno``).
        section: ``model.operator`` of the recipe.
        fields: ``model.fields`` of the recipe (default: its defaults).

    Raises:
        ConfigError: unknown operator, bad sizes, or a grid the UNO cannot halve.
    """
    name = operator_name(name)
    if spec.ndim not in (1, 2, 3):
        raise ConfigError(f"operators take 1D, 2D or 3D fields; this data has grid {list(spec.space)}")
    if name == "uno":
        levels = max(min(i, section.n_layers - 1 - i) for i in range(section.n_layers))
        if any(s % 2**levels for s in spec.space):
            raise ConfigError(
                f"operator:uno with n_layers={section.n_layers} halves the grid {levels} time(s); the grid "
                f"{list(spec.space)} must be divisible by {2**levels} (change data.task_options.space_stride)"
            )
    return OperatorModel(spec, fields or FieldsSection(), section, name)


def save_operator(model: OperatorModel, folder: str | Path) -> Path:
    """Write ``field_model.json`` and ``model.safetensors`` into ``folder`` (each atomically)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / f".{WEIGHTS_FILE}.tmp-{os.getpid()}"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / WEIGHTS_FILE)
    write_field_model(folder, model.field_model())
    return folder


def load_operator(folder: str | Path) -> OperatorModel:
    """Rebuild a saved operator model from ``field_model.json`` and its safetensors weights.

    Raises:
        DataError: missing files, or weights that do not fit the recorded architecture.
    """
    from safetensors.torch import load_file

    payload = read_field_model(folder)
    if payload["kind"] != "operator":
        raise DataError(f"{folder}: holds a {payload['kind']} model, not an operator")
    where = f"{folder}: {FIELD_MODEL_FILE}"
    if payload.get("operator_name") not in OPERATORS:
        raise DataError(f"{where}: operator_name {payload.get('operator_name')!r} is not one of {OPERATORS}")
    model = OperatorModel(
        FieldSpec.from_dict(payload["spec"]),
        from_dict(FieldsSection, payload["fields"], where=f"{where}: fields"),
        from_dict(OperatorSection, payload["operator"], where=f"{where}: operator"),
        payload["operator_name"],
    )
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(f"{folder}: no {WEIGHTS_FILE}")
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as exc:
        raise DataError(
            f"{path}: weights do not fit the recorded operator ({str(exc).splitlines()[0]})"
        ) from None
    return model.eval()


__all__ = [
    "OPERATORS",
    "OperatorModel",
    "build_operator",
    "load_operator",
    "operator_name",
    "resolve_modes",
    "save_operator",
    "uno_layout",
]
