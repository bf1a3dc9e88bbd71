"""JSON-safe floats for state, reports and gate results.

``json.dumps`` writes ``Infinity`` and ``NaN`` by default, which strict JSON parsers
refuse. The project writes non-finite floats as the strings ``"inf"``, ``"-inf"`` and
``"nan"`` instead (:data:`NON_FINITE`); ``float()`` reads those strings back. The
output contracts write them the same way (``schemas.wire``, whose function this is).
"""

from __future__ import annotations

from schemas.wire import NON_FINITE, float_or_text

__all__ = ["NON_FINITE", "decode_float", "encode_float"]


def encode_float(value: float) -> float | str:
    """Return ``value`` as a float, or as ``"inf"``, ``"-inf"`` or ``"nan"`` when not finite.

    Example:
        >>> encode_float(1.5), encode_float(float("-inf")), encode_float(float("nan"))
        (1.5, '-inf', 'nan')
    """
    return float_or_text(float(value))


def decode_float(value: float | int | str) -> float:
    """Inverse of :func:`encode_float`.

    Example:
        >>> decode_float("inf"), decode_float(2)
        (inf, 2.0)
    """
    return float(value)
