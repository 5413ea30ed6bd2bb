"""Recipe sections of field models: how fields go in and out (``model.fields``), the field encoder of the
continuous path (``model.encoder``) and the neural operator (``model.operator``).

The model kind follows from the recipe: ``model.name_or_path: operator:fno`` (or ``operator:uno``) is a
neural operator; any backbone with ``model.field_io: continuous`` is a continuous model (field encoder →
backbone through ``inputs_embeds`` → regression head); the default ``field_io: tokens`` is the token path.
Context frames, horizon and strides come from ``data.task_options`` (the ``forecast`` task format), so a field
model sees exactly the windows the eval tasks cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class FieldsSection:
    """Inputs and outputs shared by continuous and operator models.

    Attributes:
        grid: Grid coordinates (one channel per spatial axis, in [0, 1)) as inputs, as FNO does.
        coefficients: The PDE coefficients (sorted by name) as constant input channels.
        residual: Predict the change over the last context frame instead of the frame (the head starts at
            persistence, which is already a fair forecast for small time steps).
        normalization: ``field``: each field by the training split's mean and std; ``trajectory``: each
            window by its own context frames' mean and std (scale-free, as UPS/MPP do). Undone at the output.
        loss: ``mse`` on normalized fields, or ``relative_mse`` (per-example squared error over the target's
            squared norm: the nRMSE the tasks report).
    """

    grid: bool = True
    coefficients: bool = True
    residual: bool = True
    normalization: Literal["field", "trajectory"] = "field"
    loss: Literal["mse", "relative_mse"] = "mse"


@dataclass
class EncoderSection:
    """The field encoder and readout of a continuous model.

    Attributes:
        type: ``linear`` (ViT-style patch embedding), ``conv`` (a small conv stem, then patches) or
            ``spectral`` (Fourier layers from ``neuraloperator`` lift the fields first, as UPS does).
        patch_size: Grid points per patch along each spatial axis (one entry per axis, or one for all); must
            divide the grid the model sees.
        width: Channels of the conv or spectral stem.
        layers: Layers of the conv or spectral stem.
        n_modes: Fourier modes per axis of the spectral stem (default: half the patch grid's points, at most 16).
        readout: ``queries`` (learned query positions after the context; their outputs are the patches of the
            next frame), ``bidirectional`` (read the context positions themselves, with a full attention mask
            where the backbone allows it) or ``doubled`` (the context sequence twice; read the second copy, so
            a causal backbone's outputs have seen the whole field — "Decoding PDEs", 2025).
        describe: Prepend the PDE's description (family and coefficients) as ordinary text tokens through the
            backbone's own embedding, as UPS does.
    """

    type: Literal["linear", "conv", "spectral"] = "spectral"
    patch_size: list[int] = field(default_factory=lambda: [4])
    width: int = 32
    layers: int = 2
    n_modes: list[int] | None = None
    readout: Literal["queries", "bidirectional", "doubled"] = "queries"
    describe: bool = False


@dataclass
class OperatorSection:
    """A neural operator from ``neuraloperator`` (``model.name_or_path: operator:fno`` or ``operator:uno``).

    Attributes:
        n_modes: Fourier modes kept per spatial axis (one entry per axis, or one for all).
        hidden_channels: Width of the spectral layers.
        n_layers: Spectral layers (FNO) or U-shaped levels (UNO).
        projection_channels: Width of the projection MLP (lifting uses the same ratio).
    """

    n_modes: list[int] = field(default_factory=lambda: [16])
    hidden_channels: int = 32
    n_layers: int = 4
    projection_channels: int = 64
