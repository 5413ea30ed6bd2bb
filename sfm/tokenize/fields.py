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

from sfm.errors import DataError, SfmError
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
        frames = self._check_block(frames)
        return np.concatenate(
            [self.encoding.scales(frames[:, c].reshape(1, -1)) for c in range(frames.shape[1])]
        )

    def encode_header(self, scales: np.ndarray) -> np.ndarray:
        """``<|scale|>`` and each field's scale; empty for absolute encodings."""
        if not self.encoding.header_width:
            return np.zeros(0, dtype=np.int64)
        body = self.encoding._encode_scale(self._check_scales(scales)).reshape(-1)
        return np.concatenate([[self.scale_id], body]).astype(np.int64)

    def decode_header(self, ids: np.ndarray) -> np.ndarray:
        """Scales ``[C]`` from header ids (NaN where malformed)."""
        w = self.encoding.header_width
        if not w:
            return np.ones(self.n_fields)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
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
        """Encode a block ``[T, C, *space]`` with per-field ``scales`` (no header) -> flat ids.

        Raises:
            DataError: NaN/Inf values or a channel count other than the codec's.
            SfmError: scales that are not ``C`` positive finite numbers.
        """
        frames = self._check_block(frames)
        out = np.empty(frames.shape[0] * self.frame_length(frames.shape[2:]), dtype=np.int64)
        self._frames_into(frames, self._check_scales(scales), out)
        return out

    def encode_block(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Header plus frames of a self-contained block; returns ``(ids, scales)``."""
        scales = self.scales(frames)
        header = self.encode_header(scales)
        out = np.empty(header.size + frames.shape[0] * self.frame_length(frames.shape[2:]), dtype=np.int64)
        out[: header.size] = header
        self._frames_into(frames, scales, out[header.size :])
        return out, scales

    def _frames_into(self, frames: np.ndarray, scales: np.ndarray, out: np.ndarray) -> None:
        """Write the frames' ids into the flat ``out`` (one pass per field, no concatenation copies)."""
        T, C = frames.shape[:2]
        marked = int(C > 1)
        layout = out.reshape(T, -1)
        layout[:, 0] = self.frame_id
        fields = layout[:, 1:].reshape(T, C, -1)  # [T, C, marker + S*w]
        if marked:
            fields[:, :, 0] = self.field_id
        for c in range(C):  # each field's T*S values, time-major, with its own scale
            ids = self.encoding._encode_chunked(frames[:, c].reshape(1, -1), scales[c : c + 1])
            fields[:, c, marked:] = ids.reshape(T, -1)

    def _check_block(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim < 2 or frames.shape[1] != self.n_fields:
            raise DataError(
                f"expected frames [T, C={self.n_fields} ({', '.join(self.fields)}), *space], got shape {frames.shape}"
            )
        if frames.size and not (np.isfinite(frames.min()) and np.isfinite(frames.max())):
            raise DataError("field values contain NaN or Inf; clean the data set before encoding")
        return frames

    def _check_scales(self, scales: np.ndarray) -> np.ndarray:
        s = np.asarray(scales, dtype=np.float64).reshape(-1)
        if s.size != self.n_fields or not np.all(np.isfinite(s) & (s > 0)):
            raise SfmError(f"scales must be {self.n_fields} positive finite numbers (one per field), got {s}")
        return s

    # ---- decoding -----------------------------------------------------------------------------------------
    def decode_frames(
        self, ids: np.ndarray, n_frames: int, space_shape: tuple[int, ...], scales: np.ndarray
    ) -> DecodedFrames:
        """Decode up to ``n_frames`` frames from (possibly malformed) ids; never raises on bad ids.

        Frames are delimited by ``<|frame|>``; anything before the first marker is ignored, and frames beyond
        ``n_frames`` are dropped. A frame/field with the wrong number of value tokens, a foreign token, a
        missing field marker or a malformed value group is invalid (NaN values, ``valid`` False); the other
        fields of the frame still decode.

        Raises:
            SfmError: ``scales`` does not hold one number per field (a caller's mistake, not the model's).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        scales = np.asarray(scales, dtype=np.float64).reshape(-1)  # NaN (a malformed header) masks a field
        C, S = self.n_fields, int(np.prod(space_shape))
        if scales.size != C:
            raise SfmError(f"decode_frames: need {C} scales (one per field), got {scales.size}")
        fast = self._decode_well_formed(ids, n_frames, S, scales)
        if fast is not None:
            values, valid = fast
        else:
            values, valid = self._decode_any(ids, n_frames, S, scales)
        values[~valid] = np.nan
        return DecodedFrames(values.reshape(n_frames, C, *space_shape), valid)

    def _decode_well_formed(
        self, ids: np.ndarray, n_frames: int, S: int, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """One vectorized pass when every marker is where it belongs (the usual case); else None."""
        C, w = self.n_fields, self.encoding.width
        marked = int(C > 1)
        L = S * w + marked  # tokens per field, its marker included
        n = n_frames * (1 + C * L)
        head = ids[:n]
        if head.size != n or (ids.size > n and ids[n] != self.frame_id):
            return None
        frames = head.reshape(n_frames, 1 + C * L)
        if np.count_nonzero(head == self.frame_id) != n_frames or not np.all(frames[:, 0] == self.frame_id):
            return None
        body = frames[:, 1:].reshape(n_frames, C, L)
        if C > 1 and (
            np.count_nonzero(head == self.field_id) != n_frames * C
            or not np.all(body[..., 0] == self.field_id)
        ):
            return None
        groups = body[..., marked:].transpose(1, 0, 2).reshape(C, n_frames * S, w)
        values = self.encoding._decode_chunked(groups, scales).reshape(C, n_frames, S).transpose(1, 0, 2)
        return np.ascontiguousarray(values), np.isfinite(values).all(axis=2)

    def _decode_any(
        self, ids: np.ndarray, n_frames: int, S: int, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame by frame, field by field: the tolerant path for malformed output."""
        C, w = self.n_fields, self.encoding.width
        values = np.full((n_frames, C, S), np.nan)
        valid = np.zeros((n_frames, C), dtype=bool)
        starts = np.flatnonzero(ids == self.frame_id)[: n_frames + 1]
        bounds = [*starts.tolist(), ids.size]
        for t in range(min(n_frames, starts.size)):
            seg = ids[bounds[t] + 1 : bounds[t + 1]]
            for c, chunk in self._fields_of(seg, S * w):
                v = self.encoding._decode_values(chunk.reshape(1, S, w), scales[c : c + 1])[0]
                values[t, c] = v
                valid[t, c] = bool(np.all(np.isfinite(v)))
        return values, valid

    def _fields_of(self, seg: np.ndarray, L: int) -> list[tuple[int, np.ndarray]]:
        """The (field index, value ids) of the well-delimited fields of one frame's tokens.

        The tokens are cut at ``<|field|>`` markers. Each piece spans as many fields as it holds ``L``-token
        runs: a piece that lost the marker of the field after it covers two fields, of which only the first
        (marked) one is kept, so a missing marker masks just its own field and the later fields stay aligned.
        """
        if self.n_fields == 1:
            return [(0, seg)] if seg.size == L else []
        marks = np.flatnonzero(seg == self.field_id)
        pieces = [(False, seg[: marks[0]] if marks.size else seg)]
        ends = [*marks[1:].tolist(), seg.size]
        pieces += [(True, seg[m + 1 : e]) for m, e in zip(marks.tolist(), ends)]
        out, c = [], 0
        for marked, piece in pieces:
            if not marked and piece.size == 0:
                continue
            span = round(piece.size / L)
            if marked:
                span = max(span, 1)  # a marker always opens a field
            if marked and c < self.n_fields and piece.size == span * L:
                out.append((c, piece[:L]))
            c += span
        return out

    def token_classes(self, n_frames: int, space_shape: tuple[int, ...]) -> list[np.ndarray]:
        """For constrained generation: the allowed local ids at each position of an ``n_frames`` block."""
        allowed_per_slot = self.encoding.slot_tokens()
        S = int(np.prod(space_shape))
        frame: list[np.ndarray] = [np.array([self.frame_id])]
        for _ in range(self.n_fields):
            if self.n_fields > 1:
                frame.append(np.array([self.field_id]))
            frame.extend(allowed_per_slot * S)
        return frame * n_frames
