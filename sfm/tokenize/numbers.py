"""Number encodings: arrays of floats <-> fixed-width sequences of local token ids.

Every encoding maps each value to exactly ``width`` tokens, so encoding and decoding are reshapes plus integer
arithmetic (vectorized numpy, no Python loop over values), and a malformed group of tokens decodes to NaN
without disturbing its neighbours. Ids are *local*: indices into the encoding's own ``tokens`` list.
:mod:`sfm.tokenize.vocab` maps them onto a backbone's vocabulary.

Scaled encodings (``bins``, ``digits``) divide each sample by a scale that is itself written as one header
token group, so absolute values come back. The scale is snapped to a grid of representable values
(``10**(k/20)``) *before* encoding, which makes the header lossless: the scale need only be close to the
sample's magnitude, not equal to it.

========  ======================  =====  =========================================================
name      tokens per value        added  precision (stated bound, checked by property tests)
========  ======================  =====  =========================================================
bins      1 (+1 scale header)     yes    |err| <= scale * (high - low) / (2 (n_bins - 1)) inside range
sme       3 (sign, mant., exp.)   yes    |err| <= 0.5 * 10**(1 - digits) * |x|  (|x| >= 10**min_exp)
digits    1 + digits (+ header)   no     |err| <= scale * 0.5 * 10**-digits  (scale >= max |x|)
========  ======================  =====  =========================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from sfm.errors import ConfigError, SfmError
from sfm.registry import ENCODINGS

# Scale grid: scale = 10**(k / SCALE_STEPS_PER_DECADE) for integer k in [-SCALE_DECADES*steps, +...].
# 20 steps per decade keeps the snapped scale within 12% of the sample's magnitude; 30 decades either side
# cover float32 fields in any unit system.
SCALE_STEPS_PER_DECADE = 20
SCALE_DECADES = 30


def _snap_scale(magnitude: np.ndarray, *, up: bool) -> np.ndarray:
    """Index k of the grid scale 10**(k/steps) nearest to (or, with ``up``, at least) ``magnitude``."""
    steps = SCALE_STEPS_PER_DECADE
    m = np.where((magnitude > 0) & np.isfinite(magnitude), magnitude, 1.0)
    logk = np.log10(m) * steps
    k = np.ceil(logk - 1e-9) if up else np.rint(logk)
    return np.clip(k, -SCALE_DECADES * steps, SCALE_DECADES * steps).astype(np.int64)


def _scale_value(k: np.ndarray) -> np.ndarray:
    return 10.0 ** (np.asarray(k, dtype=np.float64) / SCALE_STEPS_PER_DECADE)


@dataclass
class NumberEncoding:
    """Base class: fixed-width encodings of float arrays as local token ids.

    Subclasses define ``tokens`` (the local vocabulary), ``width`` (tokens per value), ``header_width``
    (tokens of the per-sample scale header, 0 for absolute encodings), and the four ``_encode``/``_decode``
    methods on flat arrays.
    """

    name: ClassVar[str]
    #: True when the tokens must be added to a backbone's vocabulary; False when they already exist in it.
    adds_tokens: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.tokens: list[str] = self._build_tokens()
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

    # ---- to implement -------------------------------------------------------------------------------
    width: ClassVar[int]
    header_width: ClassVar[int] = 0

    def _build_tokens(self) -> list[str]:
        raise NotImplementedError

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """[n, m] floats and [n] scales -> [n, m, width] ids."""
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
        """The stated bound on ``|decode(encode(x)) - x|``, elementwise."""
        raise NotImplementedError

    # ---- public API -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of local tokens."""
        return len(self.tokens)

    def config(self) -> dict[str, Any]:
        """Options that rebuild this encoding with :func:`get_encoding`."""
        return {"name": self.name, **asdict(self)}

    def encode_values(self, values: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Encode ``values`` (any shape) with a given scale, no header -> flat int64 ids."""
        x = np.asarray(values, dtype=np.float64).reshape(1, -1)
        _check_finite(x)
        return self._encode_values(x, np.array([scale], dtype=np.float64)).reshape(-1)

    def decode_values(self, ids: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Decode flat ids (no header) -> float64 values; a trailing partial group is dropped."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = ids.size // self.width
        grouped = ids[: n * self.width].reshape(1, n, self.width)
        return self._decode_values(grouped, np.array([scale], dtype=np.float64)).reshape(-1)

    def encode_scale(self, scale: float) -> np.ndarray:
        """Header ids for a scale (empty for absolute encodings)."""
        return self._encode_scale(np.array([scale], dtype=np.float64)).reshape(-1)

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
        x = np.asarray(values, dtype=np.float64)
        flat = x.reshape(x.shape[0], -1)
        _check_finite(flat)
        scale = self.scales(flat)
        body = self._encode_values(flat, scale).reshape(flat.shape[0], -1)
        return np.concatenate([self._encode_scale(scale), body], axis=1)

    def decode_batch(self, ids: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Inverse of :meth:`encode_batch` -> [n, *shape] float64 (NaN where malformed)."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        scale = self._decode_scale(ids[:, : self.header_width]) if self.header_width else np.ones(n)
        body = ids[:, self.header_width :]
        m = body.shape[1] // self.width
        out = self._decode_values(body[:, : m * self.width].reshape(n, m, self.width), scale)
        if shape is None:
            return out
        return np.stack([_fit_shape(row, shape) for row in out]) if n else np.zeros((0, *shape))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items())
        return f"{self.name}({opts})"


def _check_finite(x: np.ndarray) -> None:
    if not np.all(np.isfinite(x)):
        raise SfmError("cannot encode NaN or infinite values")


def _fit_shape(values: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """Reshape to ``shape``, padding missing values with NaN and dropping extras (truncated/overlong output)."""
    if shape is None:
        return values
    size = int(np.prod(shape))
    out = np.full(size, np.nan)
    k = min(size, values.size)
    out[:k] = values[:k]
    return out.reshape(shape)


def _in_range(ids: np.ndarray, start: int, stop: int) -> np.ndarray:
    return (ids >= start) & (ids < stop)


@ENCODINGS.register("bins", description="Chronos-style mean-abs scaling + uniform bins, 1 token/value")
@dataclass
class Bins(NumberEncoding):
    """Chronos-style binning (Ansari et al. 2024): ``x / scale`` into uniform bins over ``[low, high]``.

    ``scale`` is the sample's mean absolute value snapped to the scale grid. Values beyond the range clip to
    the end bins (Chronos uses 4093 bins over [-15, 15]; fields scaled by their mean absolute value rarely
    exceed a few units, so a narrower range buys precision with the same bin count).

    Args:
        n_bins: Number of bin centers (odd, so 0 is a center).
        low: Lowest bin center, in units of the scale.
        high: Highest bin center.
    """

    n_bins: int = 4093
    low: float = -15.0
    high: float = 15.0

    name: ClassVar[str] = "bins"
    width: ClassVar[int] = 1
    header_width: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.n_bins < 2 or not self.low < self.high:
            raise ConfigError(f"bins: need n_bins >= 2 and low < high, got {self.n_bins}, [{self.low}, {self.high}]")
        self._centers = np.linspace(self.low, self.high, self.n_bins)
        self._edges = (self._centers[1:] + self._centers[:-1]) / 2
        self._n_scale = 2 * SCALE_DECADES * SCALE_STEPS_PER_DECADE + 1
        super().__post_init__()

    def _build_tokens(self) -> list[str]:
        k0 = -SCALE_DECADES * SCALE_STEPS_PER_DECADE
        return [f"<bin{i}>" for i in range(self.n_bins)] + [f"<scale{k0 + i}>" for i in range(self._n_scale)]

    @property
    def bin_width(self) -> float:
        """Distance between bin centers, in units of the scale."""
        return (self.high - self.low) / (self.n_bins - 1)

    def scales(self, x: np.ndarray) -> np.ndarray:
        return _scale_value(_snap_scale(np.abs(x).mean(axis=1), up=False))

    def slot_tokens(self) -> list[np.ndarray]:
        return [np.arange(self.n_bins)]

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._edges, x / scale[:, None])[..., None].astype(np.int64)

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        i = ids[..., 0]
        ok = _in_range(i, 0, self.n_bins)
        vals = self._centers[np.where(ok, i, 0)] * scale[:, None]
        return np.where(ok, vals, np.nan)

    def _encode_scale(self, scale: np.ndarray) -> np.ndarray:
        k = _snap_scale(scale, up=False)
        return (self.n_bins + k + SCALE_DECADES * SCALE_STEPS_PER_DECADE)[:, None]

    def _decode_scale(self, ids: np.ndarray) -> np.ndarray:
        i = ids[:, 0] - self.n_bins
        ok = _in_range(i, 0, self._n_scale)
        return np.where(ok, _scale_value(i - SCALE_DECADES * SCALE_STEPS_PER_DECADE), np.nan)

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        s = np.asarray(scale, dtype=np.float64)
        inside = s * self.bin_width / 2
        # beyond the range the value clips to the end bin
        clip = np.maximum(np.abs(x) - s * max(abs(self.low), abs(self.high)), 0)
        return inside + clip + 1e-12 * np.abs(x)


@ENCODINGS.register("sme", description="sign, mantissa and exponent tokens, 3 tokens/value")
@dataclass
class SignMantissaExponent(NumberEncoding):
    """Sign, mantissa and exponent tokens, e.g. ``-0.031416 -> <-> <N3142> <E-5>``.

    The token strings are those of :mod:`sfm.tokenize.sme` (shared with equation constants). Values below
    ``10**(min_exp + digits - 1)`` in magnitude encode as zero; values above ``10**(max_exp + digits)``
    cannot be encoded.

    Args:
        digits: Mantissa digits (relative precision ``0.5 * 10**(1 - digits)``).
        min_exp: Smallest exponent token.
        max_exp: Largest exponent token.
    """

    digits: int = 4
    min_exp: int = -45
    max_exp: int = 40

    name: ClassVar[str] = "sme"
    width: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 6 or self.min_exp >= self.max_exp:
            raise ConfigError(f"sme: need 1 <= digits <= 6 and min_exp < max_exp, got {self}")
        self._lo = 10 ** (self.digits - 1)
        self._hi = 10**self.digits
        self._n_mant = self._hi - self._lo + 1  # the normalized mantissas plus zero
        super().__post_init__()

    def _build_tokens(self) -> list[str]:
        d = self.digits
        mant = [f"<N{0:0{d}d}>"] + [f"<N{m:0{d}d}>" for m in range(self._lo, self._hi)]
        exps = [f"<E{e}>" for e in range(self.min_exp, self.max_exp + 1)]
        return ["<+>", "<->", *mant, *exps]

    def slot_tokens(self) -> list[np.ndarray]:
        n_mant = self._n_mant
        return [np.arange(2), np.arange(2, 2 + n_mant), np.arange(2 + n_mant, self.vocab_size)]

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        a = np.abs(x)
        nz = a >= 10.0 ** (self.min_exp + self.digits - 1) * 0.5
        safe = np.where(nz, a, 1.0)
        e = np.floor(np.log10(safe)).astype(np.int64) - (self.digits - 1)
        mant = np.rint(safe / 10.0 ** e.astype(np.float64))
        # log10 rounding and carries (9999.7 -> 10000) renormalize the mantissa into [lo, hi)
        over = mant >= self._hi
        mant = np.where(over, np.rint(mant / 10), mant)
        e = e + over
        under = mant < self._lo
        mant = np.where(under, np.rint(safe / 10.0 ** (e - 1).astype(np.float64)), mant)
        e = e - under
        e = np.maximum(e, self.min_exp)  # tiny values at the bottom exponent keep a denormal mantissa
        mant = np.where(e == self.min_exp, np.rint(safe / 10.0**self.min_exp), mant)
        nz &= mant > 0
        if np.any(nz & (e > self.max_exp)):
            raise SfmError(f"sme: |value| too large for max_exp={self.max_exp} (largest {a.max():.3g})")
        mant = np.clip(mant, self._lo, self._hi - 1)
        sign = (x < 0).astype(np.int64)
        mant_id = np.where(nz, 2 + 1 + (mant.astype(np.int64) - self._lo), 2)
        exp_id = 2 + self._n_mant + np.where(nz, e, 0) - self.min_exp
        return np.stack([sign, mant_id, exp_id], axis=-1)

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        s, m, e = ids[..., 0], ids[..., 1] - 2, ids[..., 2] - 2 - self._n_mant
        ok = _in_range(s, 0, 2) & _in_range(m, 0, self._n_mant) & _in_range(e, 0, self.max_exp - self.min_exp + 1)
        mant = np.where(m > 0, m - 1 + self._lo, 0).astype(np.float64)
        val = mant * 10.0 ** (e + self.min_exp).astype(np.float64)
        val = np.where(s == 1, -val, val)
        return np.where(ok, val, np.nan)

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        a = np.abs(np.asarray(x, dtype=np.float64))
        rel = 0.5 * 10.0 ** (1 - self.digits) * a * (1 + 1e-9)
        floor = 10.0 ** (self.min_exp + self.digits - 1)
        return np.maximum(rel, np.where(a < floor * 10, 10.0**self.min_exp, 0)) + 1e-300


@ENCODINGS.register("digits", description="sign + fixed-precision digits in the backbone's own vocabulary")
@dataclass
class Digits(NumberEncoding):
    """Fixed-precision digit strings in the backbone's existing vocabulary (LLMTime-style, no added tokens).

    Each sample is divided by its maximum absolute value snapped *up* to the scale grid, so every scaled value
    lies in [-1, 1]; a value is then its sign and ``digits`` decimal digits of ``|x| / scale`` (the leading
    "0." is implied). The header writes the scale's grid index as a sign and three digits.

    Args:
        digits: Decimal digits per value (absolute precision ``0.5 * 10**-digits`` of the scale).
    """

    digits: int = 3

    name: ClassVar[str] = "digits"
    adds_tokens: ClassVar[bool] = False
    header_width: ClassVar[int] = 4

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 8:
            raise ConfigError(f"digits: need 1 <= digits <= 8, got {self.digits}")
        self._pow = 10 ** np.arange(self.digits - 1, -1, -1, dtype=np.int64)
        super().__post_init__()

    @property
    def width(self) -> int:  # type: ignore[override]
        return 1 + self.digits

    def _build_tokens(self) -> list[str]:
        return [str(i) for i in range(10)] + ["+", "-"]

    def scales(self, x: np.ndarray) -> np.ndarray:
        return _scale_value(_snap_scale(np.abs(x).max(axis=1), up=True))

    def slot_tokens(self) -> list[np.ndarray]:
        return [np.arange(10, 12)] + [np.arange(10)] * self.digits

    def _digits_of(self, q: np.ndarray, sign: np.ndarray) -> np.ndarray:
        d = (q[..., None] // self._pow) % 10
        return np.concatenate([(10 + sign)[..., None], d], axis=-1)

    def _value_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, d = ids[..., 0], ids[..., 1:]
        ok = _in_range(s, 10, 12) & np.all(_in_range(d, 0, 10), axis=-1)
        q = (np.where(ok[..., None], d, 0) * self._pow).sum(axis=-1)
        return np.where(s == 11, -q, q), ok

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        top = 10**self.digits - 1
        q = np.minimum(np.rint(np.abs(x) / scale[:, None] * 10**self.digits), top).astype(np.int64)
        return self._digits_of(q, (x < 0).astype(np.int64))

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        q, ok = self._value_of(ids)
        return np.where(ok, q * 10.0**-self.digits * scale[:, None], np.nan)

    def _encode_scale(self, scale: np.ndarray) -> np.ndarray:
        k = _snap_scale(scale, up=False)
        pow3 = np.array([100, 10, 1])
        d = (np.abs(k)[:, None] // pow3) % 10
        return np.concatenate([(10 + (k < 0))[:, None], d], axis=1)

    def _decode_scale(self, ids: np.ndarray) -> np.ndarray:
        s, d = ids[:, 0], ids[:, 1:]
        ok = _in_range(s, 10, 12) & np.all(_in_range(d, 0, 10), axis=1)
        k = (np.where(ok[:, None], d, 0) * np.array([100, 10, 1])).sum(axis=1)
        return np.where(ok, _scale_value(np.where(s == 11, -k, k)), np.nan)

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        s = np.asarray(scale, dtype=np.float64)
        # values at the very top round down to 0.999...: at most one quantum
        return s * 10.0**-self.digits * (1 + 1e-9) + 0 * np.asarray(x)


def get_encoding(name: str, **options: Any) -> NumberEncoding:
    """Build the number encoding registered as ``name`` with its options (e.g. ``n_bins=1024``).

    Raises:
        UnknownNameError: unknown encoding name (with the closest names).
        ConfigError: unknown or invalid option.
    """
    cls = ENCODINGS.get(name)
    fields = cls.__dataclass_fields__
    for key in options:
        if key not in fields:
            from sfm.errors import did_you_mean

            raise ConfigError(f"encoding {name!r}: unknown option {key!r}{did_you_mean(key, fields)}")
    return cls(**options)


def encoding_from_config(config: dict[str, Any]) -> NumberEncoding:
    """Rebuild an encoding from :meth:`NumberEncoding.config` output."""
    config = dict(config)
    return get_encoding(config.pop("name"), **config)
