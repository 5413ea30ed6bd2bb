"""The ``bins`` codec's block kernels: the bits of ``Bins._encode_values``/``_decode_values`` in fewer passes.

The plain kernels in :mod:`sfm.tokenize.numbers` state the codec (cast, scale, shift, clip, ``rint``, cast;
gather, scale, mask). These compute the same bits with fewer passes over memory -- the float64 cast fused into
the multiply, results written straight into the output, a float-to-int rounding trick, NaN folded into the
gather table -- and are what the batch API and the field codec run. ``tests/tokenize/test_bins_fast.py``
holds them equal to a value-by-value reference. Every numpy pass still costs about one copy of the array,
which bounds them to a few percent of a numpy copy's speed (``bench/tokenization.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sfm.tokenize._encoding import _CHUNK, _blocks

# Adding 1.5 * 2**52 to a float in [0, 2**51) leaves one whose ulp is 1: the addition itself rounds half to even,
# exactly as np.rint does, and the low mantissa bits of the sum are that integer.
_ROUND = 6755399441055744.0
_ROUND_BITS = np.float64(_ROUND).view(np.int64)


def encode_into(x: np.ndarray, factor: np.ndarray, shift: float, n_bins: int, out: np.ndarray) -> None:
    """``out[i, j] = rint(clip(x[i, j] * factor[i] - shift, 0, n_bins - 1))`` in float64, as int64.

    Args:
        x: ``[n, m]`` finite values (any float dtype).
        factor: ``[n]`` per-sample ``1 / (bin_width * scale)``.
        shift: ``low / bin_width``.
        n_bins: Number of bins.
        out: ``[n, m]`` int64 (any strides).
    """
    n, m = x.shape
    buf = np.empty(min(n * m, _CHUNK))
    for r, c in _blocks(n, m):
        xb = x[r, c]
        q = buf[: xb.size].reshape(xb.shape)
        np.multiply(xb, factor[r, None], out=q, dtype=np.float64)  # the cast to float64 is fused in
        q -= shift
        np.clip(q, 0, n_bins - 1, out=q)
        q += _ROUND
        np.subtract(q.view(np.int64), _ROUND_BITS, out=out[r, c])


def decode(
    ids: np.ndarray,
    scale: np.ndarray,
    table: np.ndarray,
    slow: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """``[n, m]`` ids -> ``table[ids] * scale[:, None]`` (float64); ``table`` ends in one NaN for ids past the
    bins, so only a block holding a negative id (a foreign token) needs ``slow(ids[..., None], scale)``."""
    n, m = ids.shape
    out = np.empty((n, m))
    for r, c in _blocks(n, m):
        i = np.ascontiguousarray(ids[r, c])  # take() on a strided index array is ~10x slower
        o = out[r, c]
        if i.size and i.min() < 0:
            o[...] = slow(i[..., None], scale[r])
            continue
        if o.flags.c_contiguous:
            np.take(table, i, mode="clip", out=o)
        else:  # a column block of rows longer than _CHUNK
            o[...] = np.take(table, i, mode="clip")
        np.multiply(o, scale[r, None], out=o)
    return out
