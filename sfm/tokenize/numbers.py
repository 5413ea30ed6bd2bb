"""Number encodings: arrays of floats <-> fixed-width sequences of local token ids.

Every encoding maps each value to exactly ``width`` tokens, so encoding and decoding are reshapes plus
arithmetic (vectorized numpy, no Python loop over values), and a malformed group of tokens decodes to NaN
without disturbing its neighbours. Ids are *local*: indices into the encoding's own ``tokens`` list.
:mod:`sfm.tokenize.vocab` maps them onto a backbone's vocabulary.

Scaled encodings (``bins``, ``digits``) divide each sample by a scale that is itself written as one header
token group, so absolute values come back. The scale is snapped to a grid of representable values
(``10**(k/20)``) *before* encoding, which makes the header lossless: the scale need only be close to the
sample's magnitude, not equal to it.

========  ======================  =====  =========================================================
name      tokens per value        added  precision (stated bound ``max_error``, checked by property tests)
========  ======================  =====  =========================================================
bins      1 (+1 scale header)     yes    ``scale * bin_width / 2`` inside ``[low, high] * scale``, plus
                                         the distance to the range beyond it (values clip)
sme       3 (sign, mant., exp.)   yes    ``0.5 * 10**(1 - digits) * |x|``; values below the smallest
                                         ``10**(min_exp + digits - 1)`` round to it or to 0
digits    1 + digits (+ header)   no     ``0.5 * 10**-digits * scale`` (``scale >= max |x|``); the top
                                         half quantum clamps to ``0.99..9``, at most one quantum
========  ======================  =====  =========================================================

xVal (Golkar et al. 2023) is not offered: it carries each value *beside* the token ids (one ``[NUM]`` id
whose embedding the model scales by the value, read back by a regression head), so the ids alone cannot be
decoded and the contract here -- ids in, values out -- does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sfm.config import from_dict
from sfm.errors import ConfigError, SfmError
from sfm.registry import ENCODINGS
from sfm.tokenize import _bins
from sfm.tokenize._encoding import (
    _K_MAX,
    SCALE_DECADES,
    SCALE_STEPS_PER_DECADE,
    NumberEncoding,
    _below,
    _scale_value,
    _slots,
    _snap_scale,
)

__all__ = [
    "SCALE_DECADES",
    "SCALE_STEPS_PER_DECADE",
    "Bins",
    "Digits",
    "NumberEncoding",
    "SignMantissaExponent",
    "encoding_from_config",
    "get_encoding",
]


@ENCODINGS.register("bins", description="Chronos-style mean-abs scaling + uniform bins, 1 token/value")
@dataclass
class Bins(NumberEncoding):
    """Chronos-style binning (Ansari et al. 2024): ``x / scale`` into uniform bins over ``[low, high]``.

    ``scale`` is the sample's mean absolute value snapped to the scale grid. Values beyond the range clip to
    the end bins (Chronos uses 4093 bins over [-15, 15]; fields scaled by their mean absolute value rarely
    exceed a few units, so a narrower range buys precision with the same bin count).

    Args:
        n_bins: Number of bin centers (odd keeps 0 a center when the range is symmetric).
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
            raise ConfigError(
                f"bins: need n_bins >= 2 and low < high, got {self.n_bins}, [{self.low}, {self.high}]"
            )
        self._centers = np.linspace(self.low, self.high, self.n_bins)
        self._table = np.append(self._centers, np.nan)  # ids past the bins gather NaN (sfm.tokenize._bins)
        self._n_scale = 2 * _K_MAX + 1
        super().__post_init__()

    def _build_tokens(self) -> list[str]:
        return [f"<bin{i}>" for i in range(self.n_bins)] + [f"<scale{k}>" for k in range(-_K_MAX, _K_MAX + 1)]

    @property
    def bin_width(self) -> float:
        """Distance between bin centers, in units of the scale."""
        return (self.high - self.low) / (self.n_bins - 1)

    def scales(self, x: np.ndarray) -> np.ndarray:
        return _scale_value(
            _snap_scale(np.abs(x).sum(axis=1, dtype=np.float64) / max(x.shape[1], 1), up=False)
        )

    def slot_tokens(self) -> list[np.ndarray]:
        return [np.arange(self.n_bins)]

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        # Uniform bins: the nearest center is arithmetic (one multiply-add and a rint), no search.
        inv = 1.0 / self.bin_width
        q = x * (inv / scale)[:, None]
        q -= self.low * inv
        np.clip(q, 0, self.n_bins - 1, out=q)
        return np.rint(q, out=q).astype(np.int64)[..., None]

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        i = ids[..., 0]
        vals = np.take(self._centers, i, mode="clip") * scale[:, None]
        return np.where(_below(i, self.n_bins), vals, np.nan)

    def _encode_scale(self, scale: np.ndarray) -> np.ndarray:
        return (self.n_bins + _K_MAX + _snap_scale(scale, up=False))[:, None]

    # The two kernels above state the codec; the batch API and the field codec run these two, which compute
    # the same bits with fewer passes over memory (sfm.tokenize._bins).
    def _encode_chunked(self, x: np.ndarray, scale: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((*x.shape, 1), dtype=np.int64)
        inv = 1.0 / self.bin_width
        _bins.encode_into(x, inv / scale, self.low * inv, self.n_bins, out[..., 0])
        return out

    def _decode_chunked(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return _bins.decode(ids[..., 0], scale, self._table, self._decode_values)

    def _decode_scale(self, ids: np.ndarray) -> np.ndarray:
        i = ids[:, 0] - self.n_bins
        ok = _below(i, self._n_scale)
        return np.where(ok, _scale_value(np.where(ok, i - _K_MAX, 0)), np.nan)

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        s = np.asarray(scale, dtype=np.float64)
        inside = s * self.bin_width / 2 * (1 + 1e-9)
        # beyond the range the value clips to the end bin: add the distance to that end of the range
        clip = np.maximum(np.maximum(x - s * self.high, s * self.low - x), 0)
        return inside + clip + 1e-12 * np.abs(x)


@ENCODINGS.register("sme", description="sign, mantissa and exponent tokens, 3 tokens/value")
@dataclass
class SignMantissaExponent(NumberEncoding):
    """Sign, mantissa and exponent tokens, e.g. ``-0.031416 -> <-> <N3142> <E-5>``.

    The token strings are those of :mod:`sfm.physics.equations.sme` (shared with equation constants), and so is the
    rounding: in range, the tokens equal :func:`sfm.physics.equations.sme.sme_tokens` token for token (decimal ties
    are settled by Python's exact formatting). Magnitudes below the smallest nonzero number
    ``10**(min_exp + digits - 1)`` round to it or to zero; those that round above ``(10**digits - 1) *
    10**max_exp`` cannot be encoded.

    Args:
        digits: Mantissa digits (relative precision ``0.5 * 10**(1 - digits)``).
        min_exp: Smallest exponent token (<= 0: zero is written with ``<E0>``).
        max_exp: Largest exponent token (>= 0).
    """

    digits: int = 4
    min_exp: int = -45
    max_exp: int = 40

    name: ClassVar[str] = "sme"
    width: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 6 or not -300 <= self.min_exp <= 0 <= self.max_exp <= 300:
            raise ConfigError(
                f"sme: need 1 <= digits <= 6 and -300 <= min_exp <= 0 <= max_exp <= 300, got {self}"
            )
        d = self.digits
        self._lo, self._hi = 10 ** (d - 1), 10**d
        self._n_mant = self._hi - self._lo + 1  # the normalized mantissas plus zero
        self._n_exp = self.max_exp - self.min_exp + 1
        # Per exponent e in [min_exp - 1, max_exp + 1]: 10**e as a multiplier and a divisor, one of them 1.
        # float(10**k) is exact up to 1e22, so decoding mant * 10**e is one multiply or one divide -- a single
        # rounding, equal to the exact decimal parse of parse_sme_tokens. Encoding only needs 10**-e to ~1e-15.
        exps = range(self.min_exp - 1, self.max_exp + 2)
        self._up = np.array([float(10**e) if e > 0 else 1.0 for e in exps])
        self._down = np.array([float(10**-e) if e < 0 else 1.0 for e in exps])
        self._inverse = np.array([float(f"1e{-e}") for e in exps])
        # 10**(p+1) for decimal exponents p of magnitudes, correctly rounded ("1e-7" parses exactly)
        self._p10 = np.array([float(f"1e{p + 1}") for p in range(self.min_exp - 2, self.max_exp + d + 1)])
        self._mant_value = np.concatenate([[0.0], np.arange(self._lo, self._hi, dtype=np.float64)])
        super().__post_init__()

    def _build_tokens(self) -> list[str]:
        d = self.digits
        mant = [f"<N{0:0{d}d}>"] + [f"<N{m:0{d}d}>" for m in range(self._lo, self._hi)]
        exps = [f"<E{e}>" for e in range(self.min_exp, self.max_exp + 1)]
        return ["<+>", "<->", *mant, *exps]

    def slot_tokens(self) -> list[np.ndarray]:
        n_mant = self._n_mant
        return [np.arange(2), np.arange(2, 2 + n_mant), np.arange(2 + n_mant, self.vocab_size)]

    @property
    def smallest(self) -> float:
        """The smallest nonzero magnitude, ``10**(digits - 1) * 10**min_exp``."""
        return float(f"1e{self.min_exp + self.digits - 1}")

    @property
    def largest(self) -> float:
        """The largest magnitude, ``(10**digits - 1) * 10**max_exp``."""
        return float(f"{self._hi - 1}e{self.max_exp}")

    def _exponents(self, a: np.ndarray) -> np.ndarray:
        """Exponents e with ``a * 10**-e`` in [lo, hi), give or take an ulp, for magnitudes >= smallest."""
        # floor(log10 a) from the binary exponent: 78913 / 2**18 is log10(2) to 7 digits, so the shift gives
        # floor(e2 * log10 2), and one comparison with 10**(p+1) settles the decade (no slow log10 call).
        e2 = (a.view(np.int64) >> 52) - 1023
        p = (e2 * 78913) >> 18
        p += a >= np.take(self._p10, p - (self.min_exp - 2), mode="clip")
        return p - (self.digits - 1)

    def _scaled(self, a: np.ndarray, e: np.ndarray) -> np.ndarray:
        """``a * 10**-e`` to a relative 3e-16 (two roundings; decimal ties are settled exactly later)."""
        return a * np.take(self._inverse, e - (self.min_exp - 1), mode="clip")

    def _round(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat magnitudes in [smallest, largest] -> (mantissa in [lo, hi), exponent), as ``sme_tokens``."""
        e = self._exponents(a)
        if e.size and e.max() > self.max_exp:
            self._too_large(a)
        y = self._scaled(a, e)
        fix = np.flatnonzero((y < self._lo) | (y >= self._hi))  # an ulp off next to a power of ten
        if fix.size:
            e[fix] += np.where(y[fix] < self._lo, -1, 1)
            y[fix] = self._scaled(a[fix], e[fix])
        mant = np.rint(y)
        # y carries two roundings; within 1e-6 of a half it may sit on the wrong side of a decimal tie, so
        # let Python's exact decimal formatting decide those (rare: ~2e-6 of random values).
        near = np.flatnonzero(np.abs(y - mant) > 0.5 - 1e-6)
        for i in near:
            m_str, e_str = f"{a[i]:.{self.digits - 1}e}".split("e")
            mant[i], e[i] = int(m_str.replace(".", "")), int(e_str) - (self.digits - 1)
        carry = mant >= self._hi  # 9999.7 -> 10000 -> 1000 with the next exponent
        mant[carry] = self._lo
        e += carry
        if e.size and e.max() > self.max_exp:
            self._too_large(a)
        return mant.astype(np.int64), e

    def _too_large(self, a: np.ndarray) -> None:
        raise SfmError(
            f"sme: |value| {a.max():.4g} is too large for max_exp={self.max_exp} (largest {self.largest:.4g}); "
            "raise max_exp or rescale the data"
        )

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        a = np.abs(x).reshape(-1)
        small = np.flatnonzero(a < self.smallest)
        tiny = a[small]
        a[small] = self.smallest
        mant, e = self._round(a)
        g = np.empty((3, a.size), dtype=np.int64)  # slot-major rows: contiguous work, strided once at the end
        g[0] = x.reshape(-1) < 0
        np.add(mant, 3 - self._lo, out=g[1])
        np.add(e, 2 + self._n_mant - self.min_exp, out=g[2])
        if small.size:  # below the smallest nonzero number: round to it or to zero (written <N0..0> <E0>)
            to_zero = small[tiny < self.smallest / 2]
            g[1, to_zero], g[2, to_zero] = 2, 2 + self._n_mant - self.min_exp
        return np.moveaxis(g.reshape(3, *x.shape), 0, -1)

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        s, m, e = _slots(ids)
        m, e = m - 2, e - (2 + self._n_mant)
        ok = _below(s, 2) & _below(m, self._n_mant) & _below(e, self._n_exp)
        i = e + 1  # index of exponent min_exp + e in the scaling tables
        val = np.take(self._mant_value, m, mode="clip")
        val *= np.take(self._up, i, mode="clip")
        val /= np.take(self._down, i, mode="clip")
        val[s == 1] *= -1
        val[~ok] = np.nan
        return val

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        a = np.abs(np.asarray(x, dtype=np.float64))
        rel = 0.5 * 10.0 ** (1 - self.digits) * a * (1 + 1e-9)
        return np.where(a < self.smallest, self.smallest / 2, rel) + 1e-300


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
        # Up to 4 digits every (sign, q) group is one row of a table of at most 2e4 x 5 ids, so encoding is
        # one gather (3-4x faster than peeling digits off with integer division).
        d = self.digits
        if d <= 4:
            self._table = self._write(np.repeat([0, 1], 10**d), np.tile(np.arange(10**d), 2), d).copy()
        super().__post_init__()

    @property
    def width(self) -> int:  # type: ignore[override]
        return 1 + self.digits

    def _build_tokens(self) -> list[str]:
        return [str(i) for i in range(10)] + ["+", "-"]

    def scales(self, x: np.ndarray) -> np.ndarray:
        return _scale_value(_snap_scale(np.abs(x).max(axis=1, initial=0).astype(np.float64), up=True))

    def slot_tokens(self) -> list[np.ndarray]:
        return [np.arange(10, 12)] + [np.arange(10)] * self.digits

    @staticmethod
    def _write(sign: np.ndarray, q: np.ndarray, n_digits: int) -> np.ndarray:
        """Sign ids and non-negative integers -> ``[..., 1 + n_digits]`` ids (sign, then digits, most first)."""
        g = np.empty((1 + n_digits, *q.shape), dtype=np.int64)
        g[0] = 10 + sign
        for j in range(n_digits, 0, -1):
            q, g[j] = np.divmod(q, 10)
        return np.moveaxis(g, 0, -1)

    @staticmethod
    def _read(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[..., 1 + n]`` ids -> (signed integers as float64, well-formed mask)."""
        sign, *digits = _slots(ids)
        ok = _below(sign - 10, 2)
        q = np.zeros(sign.shape)
        for d in digits:
            ok &= _below(d, 10)
            q *= 10
            q += d
        return np.where(sign == 11, -q, q), ok

    def _encode_values(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        top = 10**self.digits
        q = np.abs(x) * (top / scale)[:, None]
        np.minimum(q, top - 1, out=q)  # the top half quantum clamps to 0.99..9 (no carry digit)
        q = np.rint(q, out=q).astype(np.int64)
        if self.digits > 4:
            return self._write((x < 0).astype(np.int64), q, self.digits)
        np.add(q, top, out=q, where=x < 0)  # negative values: the table's second half
        return np.take(self._table, q, axis=0, mode="clip")

    def _decode_values(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        q, ok = self._read(ids)
        return np.where(ok, q * (scale / 10.0**self.digits)[:, None], np.nan)

    def _encode_scale(self, scale: np.ndarray) -> np.ndarray:
        k = _snap_scale(scale, up=False)
        return self._write((k < 0).astype(np.int64), np.abs(k), 3)

    def _decode_scale(self, ids: np.ndarray) -> np.ndarray:
        k, ok = self._read(ids)
        return np.where(ok, _scale_value(np.where(ok, k, 0)), np.nan)

    def max_error(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        s = np.asarray(scale, dtype=np.float64)
        quantum = 10.0**-self.digits
        # half a quantum, or the clamp of values above the top code 0.99..9 (at most one quantum when
        # scale >= |x|; more when a caller's scale is smaller than the values)
        clamp = np.abs(np.asarray(x, dtype=np.float64)) - s * (1 - quantum)
        return np.maximum(s * quantum / 2, clamp) * (1 + 1e-9) + 1e-300


def get_encoding(name: str, **options: Any) -> NumberEncoding:
    """Build the number encoding registered as ``name`` with its options (e.g. ``n_bins=1024``).

    Raises:
        UnknownNameError: unknown encoding name (with the closest names).
        ConfigError: unknown option (with the closest), an option of the wrong type, or an invalid value.
    """
    return from_dict(ENCODINGS.get(name), options, where=f"encoding {name!r}")


def encoding_from_config(config: dict[str, Any]) -> NumberEncoding:
    """Rebuild an encoding from :meth:`NumberEncoding.config` output."""
    config = dict(config)
    if "name" not in config:
        raise ConfigError(f"encoding config has no 'name': {config}")
    return get_encoding(config.pop("name"), **config)
