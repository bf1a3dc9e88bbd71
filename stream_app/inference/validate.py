"""Validate a raw prediction request: bytes in, a PredictionRequest or a Rejection out.

The happy path is one ``model_validate_json`` call straight from the bytes. Everything
else becomes a :class:`~schemas.Rejection` value that keeps the raw bytes (so nothing is
lost on requests-invalid) and field-level errors that never carry the submitted value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

import pydantic_core
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.events import (
    DEFAULT_MAX_PURCHASE_HISTORY,
    MAX_CLIENT_ID_LENGTH,
    MAX_REQUEST_ID_LENGTH,
    FieldError,
    Outcome,
    PredictionRequest,
    Rejection,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EXTRA_BYTES",
    "DEFAULT_MAX_EXTRA_FIELDS",
    "MAX_REPORTED_ERRORS",
    "check_event_time",
    "parse_request",
    "rejection_from_error",
    "too_large_rejection",
]

DEFAULT_MAX_BYTES: Final = 1_048_576
# Fields a request carries beyond its schema (upstream's extras) are kept for the log
# scrubber, whose cost grows with them: 20,000 short extras took 0.3 s to scrub. A request
# with more than these is refused (``schema``, type ``too_many_extras``).
DEFAULT_MAX_EXTRA_FIELDS: Final = 64
DEFAULT_MAX_EXTRA_BYTES: Final = 16_384
# A rejection lists at most this many field errors (plus one line saying how many more),
# so one message with a thousand bad amounts stays a small event.
MAX_REPORTED_ERRORS: Final = 20

# Error types whose pydantic message is a fixed template filled only from the schema
# (bounds, allowed literals, parser positions), never from the submitted value. Any other
# type gets a generic message: a new schema rule cannot start echoing input unnoticed.
_SAFE_MESSAGE_TYPES: Final = frozenset(
    {
        "datetime_from_date_parsing",
        "datetime_parsing",
        "datetime_type",
        "finite_number",
        "float_type",
        "greater_than",
        "greater_than_equal",
        "int_type",
        "json_invalid",
        "less_than",
        "less_than_equal",
        "list_type",
        "literal_error",
        "missing",
        "model_type",
        "string_too_long",
        "string_too_short",
        "string_type",
        "timezone_aware",
        "too_long",
        "too_short",
        "value_error",
    }
)
# Messages written by the schema's own validators: checked for the input as well.
_CUSTOM_TYPES: Final = frozenset({"value_error", "assertion_error"})
_MALFORMED_TYPES: Final = frozenset({"json_invalid", "json_type"})
# Bounds for ids copied onto a Rejection: PredictionRequest's own limits.
_ID_LIMITS: Final = {"request_id": MAX_REQUEST_ID_LENGTH, "client_id": MAX_CLIENT_ID_LENGTH}
_DEFAULT_CONTEXT: Final = {"max_purchase_history": DEFAULT_MAX_PURCHASE_HISTORY}


def parse_request(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_purchase_history: int = DEFAULT_MAX_PURCHASE_HISTORY,
    max_extra_fields: int = DEFAULT_MAX_EXTRA_FIELDS,
    max_extra_bytes: int = DEFAULT_MAX_EXTRA_BYTES,
) -> PredictionRequest | Rejection:
    """Parse and validate one request message; never raises on any input bytes.

    Reasons: ``too_large`` (more than ``max_bytes``, not parsed at all),
    ``malformed_json`` (not JSON, not UTF-8, or not a JSON object) and ``schema``
    (a field error, or more than ``max_extra_fields`` extra fields or ``max_extra_bytes``
    of them in JSON: type ``too_many_extras``).

    Example:
        >>> ok = parse_request(b'{"request_id": "r1", "client_id": "c1", "user_id": "USR1",'
        ...     b' "age": 30, "purchase_history": [9.5], "category_preference": "home",'
        ...     b' "session_duration_minutes": 3}')
        >>> ok.age
        30
        >>> bad = parse_request(b'{"request_id": "r2", "user_id": "bob@example.com"}')
        >>> bad.reason, bad.request_id, bad.errors[0].loc
        ('schema', 'r2', 'client_id')
        >>> parse_request(b"x" * 11, max_bytes=10).reason
        'too_large'
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    if max_purchase_history < 1:
        raise ValueError(f"max_purchase_history must be >= 1, got {max_purchase_history}")
    if len(raw) > max_bytes:
        return too_large_rejection(raw, max_bytes)
    context = (
        _DEFAULT_CONTEXT
        if max_purchase_history == DEFAULT_MAX_PURCHASE_HISTORY
        else {"max_purchase_history": max_purchase_history}
    )
    try:
        request = PredictionRequest.model_validate_json(raw, context=context)
    except ValidationError as exc:
        return rejection_from_error(bytes(raw), exc)
    return _check_extras(request, raw, max_extra_fields, max_extra_bytes) or request


def _check_extras(
    request: PredictionRequest, raw: bytes, max_fields: int, max_bytes: int
) -> Rejection | None:
    """A Rejection when the request's extras exceed the caps (their count is checked
    first, so the size is measured over at most ``max_fields`` of them).

    Example:
        >>> base = ('{"request_id": "r1", "client_id": "c1", "user_id": "USR1", "age": 30,'
        ...         ' "purchase_history": [9.5], "category_preference": "home",'
        ...         ' "session_duration_minutes": 3')
        >>> many = (base + ', "a": 1, "b": 2, "c": 3}').encode()
        >>> parse_request(many, max_extra_fields=2).errors[0].type
        'too_many_extras'
        >>> big = (base + ', "note": "' + "x" * 40 + '"}').encode()
        >>> parse_request(big, max_extra_bytes=32).errors[0].message
        'has more than 32 bytes of extra fields'
        >>> parse_request(big).request_id
        'r1'
    """
    extras = request.model_extra or {}
    if not extras:
        return None
    if len(extras) > max_fields:
        message = f"has {len(extras)} extra fields, the limit is {max_fields}"
    else:
        try:
            size = len(json.dumps(extras, separators=(",", ":"), default=str))
        except (RecursionError, ValueError):  # nested too deep to measure: too big
            size = max_bytes + 1
        if size <= max_bytes:
            return None
        message = f"has more than {max_bytes} bytes of extra fields"
    return Rejection(
        reason="schema",
        errors=(FieldError(loc="", message=message, type="too_many_extras"),),
        raw=bytes(raw),
        request_id=request.request_id,
        client_id=request.client_id,
    )


def check_event_time(
    request: PredictionRequest | Outcome,
    raw: bytes,
    received_at: datetime,
    *,
    max_ahead_seconds: float,
) -> Rejection | None:
    """A ``timestamp_ahead`` Rejection when the request's timestamp is later than it could be.

    A request (or an outcome) cannot have been made after the broker received it: a
    timestamp more than ``max_ahead_seconds`` (clock skew) after ``received_at`` is
    refused, because one event from the year 2100 would move every event-time watermark
    there and make all real traffic late. Earlier timestamps are fine (a replay or a
    backfill). ``received_at`` must be a time the producer cannot choose: the Kafka
    timestamp of a topic with LogAppendTime.

    Example:
        >>> from datetime import UTC
        >>> r = parse_request(b'{"request_id": "r1", "client_id": "c1", "user_id": "USR1",'
        ...     b' "age": 30, "purchase_history": [9.5], "category_preference": "home",'
        ...     b' "session_duration_minutes": 3, "timestamp": "2100-01-01T00:00:00Z"}')
        >>> got = datetime(2026, 1, 1, tzinfo=UTC)
        >>> check_event_time(r, b"", got, max_ahead_seconds=300).errors[0].loc
        'timestamp'
        >>> check_event_time(r, b"", datetime(2100, 1, 1, tzinfo=UTC), max_ahead_seconds=0)
    """
    if request.timestamp is None:
        return None
    ahead = (request.timestamp - received_at).total_seconds()
    if ahead <= max_ahead_seconds:
        return None
    return Rejection(
        reason="timestamp_ahead",
        errors=(
            FieldError(
                loc="timestamp",
                message=f"is more than {max_ahead_seconds:g} s after the broker received "
                "the message",
                type="timestamp_ahead",
            ),
        ),
        raw=bytes(raw),
        request_id=request.request_id,
        client_id=getattr(request, "client_id", None),
    )


def too_large_rejection(raw: bytes, max_bytes: int) -> Rejection:
    """The ``too_large`` Rejection of a message over ``max_bytes`` (raw bytes kept).

    Example:
        >>> too_large_rejection(b"x" * 11, 10).errors[0].message
        'message has 11 bytes, the limit is 10'
    """
    return Rejection(
        reason="too_large",
        errors=(
            FieldError(
                loc="",
                message=f"message has {len(raw)} bytes, the limit is {max_bytes}",
                type="too_large",
            ),
        ),
        raw=bytes(raw),
    )


def rejection_from_error(raw: bytes, exc: ValidationError) -> Rejection:
    """Turn a validation failure of ``raw`` into a Rejection with value-free field errors.

    ``malformed_json`` when the bytes are not a JSON object, else ``schema`` with the
    request_id (and client_id) recovered when they are plain strings. Any schema can
    use it: the allow-list of messages does not depend on the model.
    """
    details = exc.errors(include_url=False, include_context=False)
    malformed = any(
        d["type"] in _MALFORMED_TYPES or (d["type"] == "model_type" and not d["loc"])
        for d in details
    )
    errors = [_field_error(d) for d in details[:MAX_REPORTED_ERRORS]]
    if len(details) > MAX_REPORTED_ERRORS:
        errors.append(
            FieldError(
                loc="",
                message=f"{len(details) - MAX_REPORTED_ERRORS} more errors not listed",
                type="too_many_errors",
            )
        )
    if malformed:
        return Rejection(reason="malformed_json", errors=tuple(errors), raw=raw)
    ids = _recover_ids(raw)
    return Rejection(
        reason="schema",
        errors=tuple(errors),
        raw=raw,
        request_id=ids.get("request_id"),
        client_id=ids.get("client_id"),
    )


def _field_error(detail: ErrorDetails) -> FieldError:
    """One pydantic error as a FieldError whose message cannot contain the input."""
    kind = detail["type"]
    message = detail["msg"]
    if kind not in _SAFE_MESSAGE_TYPES or (
        kind in _CUSTOM_TYPES and _echoes(detail.get("input"), message)
    ):
        message = f"invalid value ({kind})"
    loc = ".".join(str(part) for part in detail["loc"])
    return FieldError(loc=loc, message=message, type=kind)


def _echoes(value: Any, message: str) -> bool:
    """Whether a custom validator's message quotes the submitted scalar value."""
    if isinstance(value, str):
        return bool(value) and value in message
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value) in message
    return False


def _recover_ids(raw: bytes) -> dict[str, str]:
    """request_id and client_id, when the message is a JSON object carrying them as
    plain strings within their length bounds (a second parse, on the failure path only).
    """
    try:
        document = pydantic_core.from_json(raw)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    found: dict[str, str] = {}
    for name, limit in _ID_LIMITS.items():
        value = document.get(name)
        if isinstance(value, str) and 0 < len(value) <= limit:
            found[name] = value
    return found
