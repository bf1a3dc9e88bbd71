"""Field types shared by the report contracts: floats that may be infinite, ISO times.

JSON has no infinity: a report writes a non-finite float as the string ``"inf"``,
``"-inf"`` or ``"nan"`` (a mean-shift score against a reference with a zero standard
deviation is infinite), and reads those strings back as floats. Times are written as
Python's ``isoformat()`` gives them (``+00:00``, not ``Z``), as the reports always were.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, PlainSerializer, WithJsonSchema

__all__ = ["NON_FINITE", "IsoTime", "ReportFloat", "float_or_text", "without_example"]

NON_FINITE: tuple[str, ...] = ("inf", "-inf", "nan")


def float_or_text(value: float) -> float | str:
    """``value`` itself when finite, else ``"inf"``, ``"-inf"`` or ``"nan"``.

    Example:
        >>> float_or_text(1.5), float_or_text(float("inf")), float_or_text(float("nan"))
        (1.5, 'inf', 'nan')
    """
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


ReportFloat = Annotated[
    float,
    PlainSerializer(float_or_text, return_type=float | str, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"enum": list(NON_FINITE)}]}),
]

IsoTime = Annotated[
    AwareDatetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def without_example(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of the contracts: the description stops before the doctest.

    Example:
        >>> schema = {"description": "One alert.\\n\\nExample:\\n    >>> 1"}
        >>> without_example(schema)
        >>> schema
        {'description': 'One alert.'}
    """
    text = schema.get("description")
    if isinstance(text, str):
        schema["description"] = text.split("\n\nExample:")[0].strip()
