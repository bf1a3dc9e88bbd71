"""How `stream-app tail` shows a message: decoded to a dict, then one readable line.

:func:`decode_for_topic` reads a value with its topic's contract
(``schemas.contracts.CONTRACTS``); a value its contract refuses is still shown, as plain
JSON. :func:`summary` picks
the fields worth a glance and never the personal ones: a request shows its ids only,
a dead letter its reason and error locations, never its bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.codec import decode_topic

__all__ = ["decode_for_topic", "message_line", "summary"]

# The fields a summary shows, per topic; other topics show their top-level scalars.
# Requests, throttled requests and logs carry user data: only their ids are shown.
_FIELDS: dict[str, tuple[str, ...]] = {
    "prediction-requests": ("request_id", "client_id"),
    "requests-invalid": ("reason", "request_id", "client_id"),
    "requests-throttled": ("request_id", "client_id", "retry_after_seconds"),
    "predictions": ("request_id", "variant", "model_version", "score", "label", "latency_ms"),
    "prediction-logs": ("request_id", "variant", "model_version", "latency_ms"),
    "outcomes": ("request_id", "converted", "timestamp"),
    "model-bundles": (),
}
_MAX_SCALARS = 8
_MAX_TEXT = 60


def decode_for_topic(short_name: str, value: bytes) -> dict[str, Any]:
    """A message's value as a dict: through its topic's model where it has one and the
    value fits, else plain JSON; a value that is not a JSON object is ``{"bytes": n}``
    (or ``{"value": ...}`` for JSON that is not an object).

    Example:
        >>> decode_for_topic("outcomes", b'{"request_id": "r1", "converted": 1,'
        ...                  b' "timestamp": "2026-01-01T00:00:00+00:00"}')
        {'request_id': 'r1', 'converted': 1, 'timestamp': '2026-01-01T00:00:00Z'}
        >>> decode_for_topic("outcomes", b'{"request_id": "r1", "converted": 7}')
        {'request_id': 'r1', 'converted': 7}
        >>> decode_for_topic("model-bundles", b"\\x00\\x01"), decode_for_topic("alerts", b"[1]")
        ({'bytes': 2}, {'value': [1]})
    """
    try:
        return decode_topic(short_name.replace("-", "_"), value).model_dump(mode="json")
    except (KeyError, ValidationError):
        pass  # no contract, or one the value breaks: shown as it is, as a reader gets it
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return {"bytes": len(value)}
    return data if isinstance(data, dict) else {"value": data}


def summary(short_name: str, data: dict[str, Any]) -> str:
    """The fields of a decoded value worth one line, as ``name=value``.

    Example:
        >>> summary("prediction-requests", {"request_id": "r1", "client_id": "c1",
        ...     "user_id": "USR9", "email": "jo@example.com"})
        'request_id=r1 client_id=c1 (4 fields)'
        >>> summary("requests-invalid", {"reason": "schema", "request_id": "r2",
        ...     "client_id": None, "raw": "eyJhZ2UiOiA1fQ==",
        ...     "errors": [{"loc": "age", "message": "...", "type": "greater_than_equal"}]})
        'reason=schema request_id=r2 client_id=- errors=age raw=10 bytes'
        >>> summary("alerts", {"kind": "firing", "rule": "error_rate", "value": 0.123456,
        ...     "labels": {"service": "api"}})
        'kind=firing rule=error_rate value=0.1235'
    """
    if "bytes" in data and len(data) == 1:
        return f"{data['bytes']} bytes, not JSON"
    fields = _FIELDS.get(short_name)
    if fields is None:
        scalars = [k for k, v in data.items() if not isinstance(v, dict | list)]
        fields = tuple(scalars[:_MAX_SCALARS])
    parts = [f"{name}={_show(data.get(name))}" for name in fields if name in data]
    if short_name == "prediction-requests":
        parts.append(f"({len(data)} fields)")
    if short_name == "requests-invalid":
        errors = data.get("errors") or []
        locs = [str(e.get("loc")) for e in errors if isinstance(e, dict)]
        parts.append(f"errors={','.join(locs) or '-'}")
        raw = data.get("raw")
        if isinstance(raw, str):
            parts.append(f"raw={len(raw) * 3 // 4 - raw[-2:].count('=')} bytes")
    return " ".join(parts)


def message_line(
    short_name: str, *, partition: int, offset: int, timestamp_ms: int,
    key: bytes | None, data: dict[str, Any],
) -> str:  # fmt: skip
    """One line for a message: broker time (UTC), partition:offset, key, summary.

    Example:
        >>> message_line("outcomes", partition=2, offset=7, timestamp_ms=1767225600000,
        ...     key=b"r1", data={"request_id": "r1", "converted": 0, "timestamp": "x"})
        '2026-01-01T00:00:00Z 2:7 key=r1 request_id=r1 converted=0 timestamp=x'
    """
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = "-" if key is None else _show(key.decode("utf-8", "replace"))
    return f"{at} {partition}:{offset} key={shown} {summary(short_name, data)}"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    # A key or id may hold anything upstream sent: no control character breaks the line.
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
