"""Field encoders and regression heads of continuous models: fields ``[B, C, *space]`` <-> embeddings
``[B, N, hidden]``, one embedding per patch (ViT-style, in 1D, 2D or 3D).

The encoder lifts the input channels (context frames, grid, coefficients: :class:`~sfm.models.field_io.FieldIO`)
through an optional stem — ``linear`` (none: the patch embedding alone), ``conv`` (3-point convolutions) or
``spectral`` (Fourier layers from ``neuraloperator``, as UPS does) — then cuts the grid into patches of
``patch_size`` points per axis and projects each patch to the backbone's hidden size, adding a learned
position per patch (the backbone sees a 1D sequence; the learned positions carry the 2D layout). The head
projects each output embedding back to a patch of output channels and reassembles the grid.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from sfm.errors import ConfigError
from sfm.models.field_config import EncoderSection

#: Most Fourier modes per axis of the default spectral stem (FNO's usual 16 keeps Burgers' and NS's
#: energetic scales; more only adds parameters on the grids sfm trains).
MAX_DEFAULT_MODES = 16


def resolve_patch(patch_size: list[int], space: list[int]) -> list[int]:
    """Patch size per spatial axis (one entry broadcasts to every axis).

    Raises:
        ConfigError: the list length does not match the grid's dims, or an entry does not divide its axis.
    """
    nd = len(space)
    if len(patch_size) == 1:
        patch = list(patch_size) * nd
    elif len(patch_size) == nd:
        patch = list(patch_size)
    else:
        raise ConfigError(
            f"model.encoder.patch_size: {len(patch_size)} entries {list(patch_size)} for a {nd}D grid {space}; "
            f"give one per axis or one for all"
        )
    for axis, (p, n) in enumerate(zip(patch, space, strict=True)):
        if p < 1 or n % p:
            raise ConfigError(
                f"model.encoder.patch_size: {p} does not divide the {n} points of axis {axis} of the grid {space}"
            )
    return patch


def resolve_modes(n_modes: list[int] | None, space: list[int], patch: list[int]) -> list[int]:
    """Fourier modes per axis of the spectral stem (``neuraloperator`` counts positive and negative modes).

    The default keeps half the points of each axis of the patch grid, doubled for both signs
    (``space / patch``, at most :data:`MAX_DEFAULT_MODES`): features finer than a patch are what the patch
    embedding itself resolves, so the stem spends its modes on the scales between patches.

    Raises:
        ConfigError: a length that does not match the grid, or more modes than the axis holds.
    """
    nd = len(space)
    if n_modes is None:
        return [max(2, min(MAX_DEFAULT_MODES, n // p)) for n, p in zip(space, patch, strict=True)]
    modes = list(n_modes) * nd if len(n_modes) == 1 else list(n_modes)
    if len(modes) != nd:
        raise ConfigError(f"model.encoder.n_modes: {len(n_modes)} entries for a {nd}D grid {space}")
    for m, n in zip(modes, space, strict=True):
        if not 1 <= m <= n:
            raise ConfigError(f"model.encoder.n_modes: {m} modes on an axis of {n} points (1..{n})")
    return modes


def patchify(x: torch.Tensor, patch: list[int]) -> torch.Tensor:
    """``[B, C, *space]`` -> ``[B, N, C * prod(patch)]``, patches in row-major order of the patch grid."""
    b, c, *space = x.shape
    nd = len(space)
    split = [d for n, p in zip(space, patch, strict=True) for d in (n // p, p)]
    x = x.reshape(b, c, *split)
    # [B, C, n1, p1, n2, p2, ...] -> [B, n1, n2, ..., C, p1, p2, ...]
    order = [0, *(2 + 2 * i for i in range(nd)), 1, *(3 + 2 * i for i in range(nd))]
    return x.permute(order).reshape(b, math.prod(split[0::2]), c * math.prod(patch))


def unpatchify(tokens: torch.Tensor, patch: list[int], space: list[int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, N, C * prod(patch)]`` -> ``[B, C, *space]``."""
    b = tokens.shape[0]
    nd = len(space)
    grid = [n // p for n, p in zip(space, patch, strict=True)]
    c = tokens.shape[2] // math.prod(patch)
    x = tokens.reshape(b, *grid, c, *patch)
    # [B, n1, n2, ..., C, p1, p2, ...] -> [B, C, n1, p1, n2, p2, ...]
    order = [0, nd + 1, *(d for i in range(nd) for d in (1 + i, nd + 2 + i))]
    return x.permute(order).reshape(b, c, *space)


def _conv(nd: int) -> type[nn.Module]:
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]


class SpectralStem(nn.Module):
    """Lifting (pointwise) then ``layers`` Fourier layers ``x <- gelu(K x + W x)`` (FNO's block, from
    ``neuraloperator``'s :class:`SpectralConv`): ``[B, in, *space]`` -> ``[B, width, *space]``."""

    def __init__(self, in_channels: int, width: int, layers: int, n_modes: list[int]) -> None:
        super().__init__()
        from neuralop.layers.spectral_convolution import SpectralConv

        conv = _conv(len(n_modes))
        self.lift = conv(in_channels, width, 1)
        self.spectral = nn.ModuleList(
            SpectralConv(width, width, n_modes=tuple(n_modes)) for _ in range(layers)
        )
        self.skip = nn.ModuleList(conv(width, width, 1) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lift(x)
        for k, w in zip(self.spectral, self.skip, strict=True):
            x = nn.functional.gelu(k(x) + w(x))
        return x


class ConvStem(nn.Module):
    """``layers`` 3-point convolutions with GELU: ``[B, in, *space]`` -> ``[B, width, *space]``."""

    def __init__(self, in_channels: int, width: int, layers: int, nd: int) -> None:
        super().__init__()
        conv = _conv(nd)
        chans = [in_channels] + [width] * layers
        self.convs = nn.ModuleList(conv(a, b, 3, padding=1) for a, b in itertools.pairwise(chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = nn.functional.gelu(conv(x))
        return x


class FieldEncoder(nn.Module):
    """Input channels ``[B, in_channels, *space]`` -> patch embeddings ``[B, N, hidden]``.

    Args:
        in_channels: Channels from :meth:`FieldIO.encode`.
        space: The grid the model sees.
        section: The recipe's ``model.encoder`` (type, patch size, stem width, layers, modes).
        hidden: The backbone's hidden size.
    """

    def __init__(self, in_channels: int, space: list[int], section: EncoderSection, hidden: int) -> None:
        super().__init__()
        self.patch = resolve_patch(section.patch_size, space)
        self.n_patches = math.prod(n // p for n, p in zip(space, self.patch, strict=True))
        if section.type != "linear" and section.layers < 1:
            raise ConfigError(f"model.encoder.layers: a {section.type} stem needs >= 1 layer")
        if section.type == "spectral":
            modes = resolve_modes(section.n_modes, space, self.patch)
            self.stem: nn.Module = SpectralStem(in_channels, section.width, section.layers, modes)
        elif section.type == "conv":
            self.stem = ConvStem(in_channels, section.width, section.layers, len(space))
        else:
            self.stem = nn.Identity()
        stem_out = in_channels if section.type == "linear" else section.width
        self.embed = nn.Linear(stem_out * math.prod(self.patch), hidden)
        # Small init (GPT-2's 0.02) so positions nudge, not swamp, the patch content at the start.
        self.position = nn.Parameter(0.02 * torch.randn(self.n_patches, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(patchify(self.stem(x), self.patch)) + self.position


class PatchHead(nn.Module):
    """Output embeddings ``[B, N, hidden]`` -> network output ``[B, out_channels, *space]`` (de-patchified).

    Zero-initialized, so an untrained model outputs 0: with ``fields.residual`` that decodes to persistence
    (the last context frame), a fair forecast to start from instead of noise.
    """

    def __init__(self, hidden: int, out_channels: int, space: list[int], patch: list[int]) -> None:
        super().__init__()
        self.space, self.patch = list(space), list(patch)
        self.proj = nn.Linear(hidden, out_channels * math.prod(patch))
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return unpatchify(self.proj(h), self.patch, self.space)
