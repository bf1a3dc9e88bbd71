"""Record-like objects (pydantic models, dataclasses, named tuples) as mappings.

The scrubber reads records field by field: their ``str()`` (``name='Ann Smith'``) holds
PII that no text pattern can recognise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["record_fields"]


def record_fields(value: Any) -> Mapping[Any, Any] | None:
    """The fields of a record by name, or None when ``value`` is not a record.

    A record is an object with a ``model_dump()`` method (pydantic models; a result that
    is not a mapping comes back under ``"value"``), a dataclass instance or a named
    tuple. Nested records are left as they are, for the caller to convert in turn.

    Example:
        >>> from typing import NamedTuple
        >>> class Point(NamedTuple):
        ...     x: int
        ...     y: int
        >>> record_fields(Point(1, 2)), record_fields((1, 2)), record_fields(Point)
        ({'x': 1, 'y': 2}, None, None)
    """
    if isinstance(value, type):
        return None  # a model or dataclass class is not a record
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        fields = dump()
        return fields if isinstance(fields, Mapping) else {"value": fields}
    if dataclasses.is_dataclass(value):
        # Not dataclasses.asdict: it deep-copies, and converts nested records eagerly.
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    as_dict = getattr(value, "_asdict", None)
    if isinstance(value, tuple) and callable(as_dict):
        fields = as_dict()
        return fields if isinstance(fields, Mapping) else None
    return None
