"""Sign-mantissa-exponent number tokens: the one definition shared by the ``sme`` encoding and equations.

A number ``v`` with ``d`` mantissa digits is written as three tokens ``<+>|<-> <Nmmmm> <Ee>`` meaning
``sign * mmmm * 10**e`` with ``mmmm`` in ``[10**(d-1), 10**d - 1]`` (zero is ``<+> <N0000> <E0>``). The
relative rounding error is at most ``0.5 * 10**(1-d)``.
"""

from __future__ import annotations

import math

from sfm.errors import SfmError

SIGNS = ("<+>", "<->")


def sme_tokens(value: float, digits: int = 4) -> list[str]:
    """Tokens of one number, e.g. ``sme_tokens(-0.031416) == ['<->', '<N3142>', '<E-5>']``.

    Raises:
        SfmError: for NaN or infinite values.
    """
    if not math.isfinite(value):
        raise SfmError(f"cannot encode non-finite number {value!r}")
    sign = "<->" if value < 0 else "<+>"
    if value == 0:
        return [sign, f"<N{0:0{digits}d}>", "<E0>"]
    # Python's correctly rounded decimal formatting handles carries (9999.7 -> 1.000e+04) and subnormals.
    mantissa, exponent = f"{abs(value):.{digits - 1}e}".split("e")
    mant = int(mantissa.replace(".", ""))
    e = int(exponent) - (digits - 1)
    return [sign, f"<N{mant:0{digits}d}>", f"<E{e}>"]


def parse_sme_tokens(tokens: list[str] | tuple[str, ...]) -> float:
    """Inverse of :func:`sme_tokens` for exactly three tokens.

    Raises:
        SfmError: if the tokens are not a sign, a mantissa and an exponent token.
    """
    if len(tokens) != 3:
        raise SfmError(f"a number needs 3 tokens (sign, mantissa, exponent), got {list(tokens)}")
    s, n, e = tokens
    if (
        s not in SIGNS
        or not (n.startswith("<N") and n.endswith(">"))
        or not (e.startswith("<E") and e.endswith(">"))
    ):
        raise SfmError(f"malformed number tokens {list(tokens)}")
    try:
        mant = int(n[2:-1])
        exp = int(e[2:-1])
    except ValueError:
        raise SfmError(f"malformed number tokens {list(tokens)}") from None
    value = float(f"{mant}e{exp}")  # exact decimal -> float, no underflow in 10.0**exp
    return -value if s == "<->" else value
