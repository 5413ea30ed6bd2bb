"""The number-encoding contract and its shared plumbing: the scale grid, chunked kernels, the public API.

:class:`NumberEncoding` turns the four small kernels an encoding writes (``_encode_values``,
``_decode_values``, ``_encode_scale``, ``_decode_scale``, all on ``[n, m]`` arrays) into the public API:
single samples with a header, batches, given scales, tolerant decoding. The encodings themselves live in
:mod:`sfm.tokenize.numbers`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from sfm.errors import SfmError

# Scale grid: scale = 10**(k / SCALE_STEPS_PER_DECADE) for integer k in [-SCALE_DECADES*steps, +...].
# 20 steps per decade keeps the snapped scale within 6% (nearest) or 12% (upward) of the sample's magnitude;
# 30 decades either side cover float32 fields in any unit system.
SCALE_STEPS_PER_DECADE = 20
SCALE_DECADES = 30
_K_MAX = SCALE_DECADES * SCALE_STEPS_PER_DECADE


def _scale_value(k: np.ndarray) -> np.ndarray:
    """The grid scale of index ``k``; the one formula both encoder and header decoder use, so it is exact."""
    return 10.0 ** (np.asarray(k, dtype=np.float64) / SCALE_STEPS_PER_DECADE)


def _snap_scale(magnitude: np.ndarray, *, up: bool) -> np.ndarray:
    """Index k of the grid scale nearest to ``magnitude`` or, with ``up``, the smallest one >= it."""
    magnitude = np.asarray(magnitude, dtype=np.float64)
    m = np.where((magnitude > 0) & np.isfinite(magnitude), magnitude, 1.0)
    logk = np.log10(m) * SCALE_STEPS_PER_DECADE
    if not up:
        return np.clip(np.rint(logk), -_K_MAX, _K_MAX).astype(np.int64)
    # log10 is off by an ulp at times, so settle the ceiling against the grid values themselves: a scale
    # even slightly below the sample's largest value would clamp that value by a whole quantum.
    k = np.ceil(logk)
    k -= _scale_value(k - 1) >= m
    k += _scale_value(k) < m
    return np.clip(k, -_K_MAX, _K_MAX).astype(np.int64)


def _check_finite(x: np.ndarray) -> None:
    # min/max propagate NaN and are faster than isfinite().all() on the hot path
    if x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):
        raise SfmError("cannot encode NaN or infinite values")


def _check_scale(scale: float) -> np.ndarray:
    if not (np.isfinite(scale) and scale > 0):
        raise SfmError(f"scale must be a positive finite number, got {scale!r}")
    return np.array([scale], dtype=np.float64)


def _below(ids: np.ndarray, n: int) -> np.ndarray:
    """``0 <= ids < n`` in one comparison: negative ids wrap to huge unsigned values."""
    return np.asarray(ids, dtype=np.int64).view(np.uint64) < n


# Values per pass of the vectorized kernels. Their temporaries then stay at 128 KB, which malloc serves from
# its heap while hot in cache; whole-array passes page-fault every fresh multi-MB temporary in (measured on
# a 256 x 512 sme encode: ~2,000 page faults and as much kernel time as compute, against ~60 in blocks).
_CHUNK = 1 << 14


def _blocks(n: int, m: int) -> list[tuple[slice, slice]]:
    """Row/column blocks of an [n, m] array holding at most about ``_CHUNK`` values each."""
    rows = max(1, _CHUNK // max(m, 1))
    cols = min(m, _CHUNK) or 1
    return [
        (slice(i, i + rows), slice(j, j + cols)) for i in range(0, n, rows) for j in range(0, max(m, 1), cols)
    ]


def _put(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for ``[..., w]`` id groups, fast for slot-major sources too.

    A slot-major ``src`` (a ``[w, ...]`` array seen as ``[..., w]``) is copied slot by slot: numpy copies such
    a transpose element by element, 3-4x slower than ``w`` strided row writes.
    """
    if src.ndim > 1 and src.shape[-1] > 1 and src.strides[-1] > src.strides[-2]:
        for j in range(src.shape[-1]):
            dst[..., j] = src[..., j]
    else:
        dst[...] = src


def _slots(ids: np.ndarray) -> np.ndarray:
    """``[..., w]`` ids -> ``[w, ...]`` contiguous: per-slot work then runs on contiguous rows (2-3x faster)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(ids, dtype=np.int64), -1, 0))


def _fit_shape(values: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """Reshape to ``shape``, padding missing values with NaN and dropping extras (truncated/overlong output)."""
    if shape is None:
        return values
    size = int(np.prod(shape))
    out = np.full(size, np.nan)
    k = min(size, values.size)
    out[:k] = values[:k]
    return out.reshape(shape)


@dataclass
class NumberEncoding:
    """Base class: fixed-width encodings of float arrays as local token ids.

    Subclasses define ``tokens`` (the local vocabulary), ``width`` (tokens per value), ``header_width``
    (tokens of the per-sample scale header, 0 for absolute encodings), and the ``_encode``/``_decode``
    methods on ``[n, m]`` arrays.
    """

    name: ClassVar[str]
    #: True when the tokens must be added to a backbone's vocabulary; False when they already exist in it.
    adds_tokens: ClassVar[bool] = True
    width: ClassVar[int]
    header_width: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self.tokens: list[str] = self._build_tokens()
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

    # ---- to implement -------------------------------------------------------------------------------
    def _build_tokens(self) -> list[str]:
        raise NotImplementedError

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """[n, m] finite float64 and [n] positive scales -> [n, m, width] ids (any memory layout)."""
        raise NotImplementedError

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """[n, m, width] ids and [n] scales -> [n, m] floats, NaN where a group is malformed."""
        raise NotImplementedError

    def scales(self, x: np.ndarray) -> np.ndarray:
        """Per-sample scale of [n, m] values (snapped to the representable grid); ones if unscaled."""
        return np.ones(x.shape[0])

    def _encode_scale(self, scale: np.ndarray) -> np.ndarray:
        """[n] scales -> [n, header_width] ids."""
        return np.zeros((scale.shape[0], 0), dtype=np.int64)

    def _decode_scale(self, ids: np.ndarray) -> np.ndarray:
        """[n, header_width] ids -> [n] scales (NaN when malformed)."""
        return np.ones(ids.shape[0])

    def slot_tokens(self) -> list[np.ndarray]:
        """Local ids allowed at each of the ``width`` positions of a value group (for constrained decoding)."""
        raise NotImplementedError

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        """The stated bound on ``|decode(encode(x)) - x|``, elementwise (``scale`` broadcasts against x)."""
        raise NotImplementedError

    def _encode_chunked(self, x: np.ndarray, scale: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`_encode_values` in cache-sized blocks (float64 per block) -> [n, m, width] ids in ``out``."""
        n, m = x.shape
        if out is None:
            out = np.empty((n, m, self.width), dtype=np.int64)
        for r, c in _blocks(n, m):
            _put(out[r, c], self._encode_values(x[r, c].astype(np.float64), scale[r]))
        return out

    def _decode_chunked(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """:meth:`_decode_values` in cache-sized blocks -> [n, m] values."""
        n, m = ids.shape[:2]
        out = np.empty((n, m))
        for r, c in _blocks(n, m):
            out[r, c] = self._decode_values(ids[r, c], scale[r])
        return out

    # ---- public API -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of local tokens."""
        return len(self.tokens)

    def config(self) -> dict[str, Any]:
        """Options that rebuild this encoding with :func:`encoding_from_config`."""
        return {"name": self.name, **asdict(self)}

    def encode_values(self, values: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Encode ``values`` (any shape) with a given scale, no header -> flat int64 ids.

        Raises:
            SfmError: NaN/Inf values, or a scale that is not positive and finite.
        """
        x = np.asarray(values, dtype=np.float64).reshape(1, -1)
        _check_finite(x)
        return self._encode_chunked(x, _check_scale(scale)).reshape(-1)

    def decode_values(self, ids: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Decode flat ids (no header) -> float64 values; a trailing partial group is dropped."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = ids.size // self.width
        grouped = ids[: n * self.width].reshape(1, n, self.width)
        return self._decode_chunked(grouped, np.array([scale], dtype=np.float64)).reshape(-1)

    def encode_scale(self, scale: float) -> np.ndarray:
        """Header ids for a scale (empty for absolute encodings)."""
        return self._encode_scale(_check_scale(scale)).reshape(-1)

    def decode_scale(self, ids: np.ndarray) -> float:
        """Scale from header ids (NaN when malformed)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        if ids.shape[1] != self.header_width:
            return float("nan")
        return float(self._decode_scale(ids)[0])

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Self-contained encoding of one sample: scale header (if any) then one group per value."""
        return self.encode_batch(np.asarray(values)[None])[0]

    def decode(self, ids: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Inverse of :meth:`encode`; missing or malformed values come back as NaN (never raises)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        scale = self.decode_scale(ids[: self.header_width]) if self.header_width else 1.0
        out = self.decode_values(ids[self.header_width :], scale)
        return _fit_shape(out, shape)

    def encode_batch(self, values: np.ndarray) -> np.ndarray:
        """Encode [n, ...] samples, each scaled on its own -> [n, header_width + m * width] ids."""
        x = np.asarray(values)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        flat = x.reshape(x.shape[0], -1)
        _check_finite(flat)
        scale = self.scales(flat)
        n, m = flat.shape
        out = np.empty((n, self.header_width + m * self.width), dtype=np.int64)
        out[:, : self.header_width] = self._encode_scale(scale)
        self._encode_chunked(flat, scale, out[:, self.header_width :].reshape(n, m, self.width))
        return out

    def decode_batch(self, ids: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Inverse of :meth:`encode_batch` -> [n, *shape] float64 (NaN where malformed)."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        scale = self._decode_scale(ids[:, : self.header_width]) if self.header_width else np.ones(n)
        body = ids[:, self.header_width :]
        m = body.shape[1] // self.width
        out = self._decode_chunked(body[:, : m * self.width].reshape(n, m, self.width), scale)
        if shape is None:
            return out
        return np.stack([_fit_shape(row, shape) for row in out]) if n else np.zeros((0, *shape))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items())
        return f"{self.name}({opts})"
