"""Field encoding: blocks of frames of one or more physical fields <-> local token ids.

A field codec wraps a number encoding and adds a few structural tokens. One block of frames
``[T, C, *space]`` (time, channels = physical fields, space) is laid out as::

    <|frame|> [<|field|>] v v v ... [<|field|>] v v v ...   <|frame|> ...

with the values of each field in row-major order (``<|field|>`` only appears when there is more than one
field). Scaled encodings (bins, digits) write one scale per field in a header, ``<|scale|> s_1 ... s_C``,
computed from the block it precedes (the context frames of a forecast); the frames that follow and any
frames the model generates use those scales, so the model never has to produce a scale.

Decoding is tolerant: whatever a model generates decodes to values plus a validity mask per (frame, field);
a frame that is missing, truncated, too long or holds a malformed token is masked, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.tokenize.numbers import NumberEncoding, encoding_from_config

FRAME = "<|frame|>"
FIELD = "<|field|>"
SCALE = "<|scale|>"
STRUCTURE = (FRAME, FIELD, SCALE)


@dataclass
class DecodedFrames:
    """What a model's output decodes to.

    Attributes:
        values: ``[T, C, *space]`` float64, NaN where invalid.
        valid: ``[T, C]`` bool: the (frame, field) was complete and well-formed.
    """

    values: np.ndarray
    valid: np.ndarray

    @property
    def all_valid(self) -> bool:
        """True when every frame and field decoded."""
        return bool(self.valid.all())


@dataclass
class FieldCodec:
    """Encodes blocks of field frames with a number encoding.

    Args:
        encoding: The number encoding of the values.
        fields: Physical field names, in channel order.
    """

    encoding: NumberEncoding
    fields: list[str] = field(default_factory=lambda: ["u"])

    def __post_init__(self) -> None:
        enc = self.encoding
        # Local vocabulary: the encoding's tokens first, then the structural tokens.
        self.tokens: list[str] = list(enc.tokens) + list(STRUCTURE)
        base = enc.vocab_size
        self.frame_id, self.field_id, self.scale_id = base, base + 1, base + 2

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def config(self) -> dict[str, Any]:
        """JSON-ready options that rebuild this codec (:meth:`from_config`)."""
        return {"encoding": self.encoding.config(), "fields": list(self.fields)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FieldCodec:
        return cls(encoding=encoding_from_config(config["encoding"]), fields=list(config["fields"]))

    # ---- encoding -----------------------------------------------------------------------------------------
    def scales(self, frames: np.ndarray) -> np.ndarray:
        """Per-field scales ``[C]`` of a block ``[T, C, *space]`` (ones for absolute encodings)."""
        frames = np.asarray(frames, dtype=np.float64)
        per_field = np.moveaxis(frames, 1, 0).reshape(frames.shape[1], -1)
        return self.encoding.scales(per_field)

    def encode_header(self, scales: np.ndarray) -> np.ndarray:
        """``<|scale|>`` and each field's scale; empty for absolute encodings."""
        if not self.encoding.header_width:
            return np.zeros(0, dtype=np.int64)
        body = self.encoding._encode_scale(np.asarray(scales, dtype=np.float64)).reshape(-1)
        return np.concatenate([[self.scale_id], body]).astype(np.int64)

    def decode_header(self, ids: np.ndarray) -> np.ndarray:
        """Scales ``[C]`` from header ids (NaN where malformed)."""
        w = self.encoding.header_width
        if not w:
            return np.ones(self.n_fields)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size != 1 + w * self.n_fields or ids[0] != self.scale_id:
            return np.full(self.n_fields, np.nan)
        return self.encoding._decode_scale(ids[1:].reshape(self.n_fields, w))

    def header_length(self) -> int:
        """Number of header tokens."""
        w = self.encoding.header_width
        return 1 + w * self.n_fields if w else 0

    def frame_length(self, space_shape: tuple[int, ...]) -> int:
        """Tokens per frame: frame marker, field markers and values."""
        per_field = int(np.prod(space_shape)) * self.encoding.width
        return 1 + self.n_fields * per_field + (self.n_fields if self.n_fields > 1 else 0)

    def encode_frames(self, frames: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Encode a block ``[T, C, *space]`` with per-field ``scales`` (no header) -> flat ids."""
        frames = np.asarray(frames, dtype=np.float64)
        T, C = frames.shape[:2]
        flat = np.moveaxis(frames, 1, 0).reshape(C, -1)  # each field's T*space values, time-major
        enc = self.encoding
        values = enc._encode_values(_finite(flat), np.asarray(scales, dtype=np.float64))  # [C, T*S, w]
        values = values.reshape(C, T, -1)  # [C, T, S*w]
        parts = [values.transpose(1, 0, 2)]  # [T, C, S*w]
        if C > 1:
            parts.insert(0, np.full((T, C, 1), self.field_id))
        body = np.concatenate(parts, axis=2).reshape(T, -1)
        return np.concatenate([np.full((T, 1), self.frame_id), body], axis=1).reshape(-1).astype(np.int64)

    def encode_block(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Header plus frames of a self-contained block; returns ``(ids, scales)``."""
        scales = self.scales(frames)
        return np.concatenate([self.encode_header(scales), self.encode_frames(frames, scales)]), scales

    # ---- decoding -----------------------------------------------------------------------------------------
    def decode_frames(
        self, ids: np.ndarray, n_frames: int, space_shape: tuple[int, ...], scales: np.ndarray
    ) -> DecodedFrames:
        """Decode up to ``n_frames`` frames from (possibly malformed) ids.

        Frames are delimited by ``<|frame|>``; anything before the first marker is ignored, and frames beyond
        ``n_frames`` are dropped. A frame/field with the wrong number of value tokens, a foreign token or a
        malformed value group is invalid (NaN values, ``valid`` False).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        C = self.n_fields
        S = int(np.prod(space_shape))
        w = self.encoding.width
        values = np.full((n_frames, C, S), np.nan)
        valid = np.zeros((n_frames, C), dtype=bool)
        starts = np.flatnonzero(ids == self.frame_id)
        bounds = list(starts) + [ids.size]
        for t in range(min(n_frames, len(starts))):
            seg = ids[bounds[t] + 1 : bounds[t + 1]]
            for c, chunk in enumerate(self._split_fields(seg, C)):
                if chunk is None or chunk.size != S * w:
                    continue
                v = self.encoding._decode_values(chunk.reshape(1, S, w), scales[c : c + 1].astype(np.float64))[0]
                values[t, c] = v
                valid[t, c] = bool(np.all(np.isfinite(v)))
        values[~valid] = np.nan
        return DecodedFrames(values.reshape(n_frames, C, *space_shape), valid)

    def _split_fields(self, seg: np.ndarray, C: int) -> list[np.ndarray | None]:
        if C == 1:
            return [seg]
        marks = np.flatnonzero(seg == self.field_id)
        if marks.size != C or marks[0] != 0:
            # misplaced markers: keep the fields we can delimit, mask the rest
            out: list[np.ndarray | None] = [None] * C
            if marks.size and marks[0] == 0:
                ends = list(marks[1:]) + [seg.size]
                for c in range(min(C, marks.size)):
                    out[c] = seg[marks[c] + 1 : ends[c]]
            return out
        ends = list(marks[1:]) + [seg.size]
        return [seg[marks[c] + 1 : ends[c]] for c in range(C)]

    def token_classes(self, n_frames: int, space_shape: tuple[int, ...]) -> list[np.ndarray]:
        """For constrained generation: the allowed local ids at each position of an ``n_frames`` block."""
        enc = self.encoding
        allowed_per_slot = enc.slot_tokens()
        S = int(np.prod(space_shape))
        frame: list[np.ndarray] = [np.array([self.frame_id])]
        for _ in range(self.n_fields):
            if self.n_fields > 1:
                frame.append(np.array([self.field_id]))
            frame.extend(allowed_per_slot * S)
        return frame * n_frames


def _finite(x: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(x)):
        from sfm.errors import DataError

        raise DataError("field values contain NaN or Inf; clean the data set before encoding")
    return x
