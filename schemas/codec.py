"""Bytes <-> event model, in one place: every agent and test encodes through here.

What an agent sends is ``encode(model)`` of its topic's model (``schemas.contracts``), so
a message is what its contract says; :func:`decode_topic` reads any topic's value back.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from schemas.contracts import CONTRACTS

__all__ = ["decode", "decode_topic", "encode"]

M = TypeVar("M", bound=BaseModel)


def encode(event: BaseModel) -> bytes:
    """Serialise an event to compact JSON bytes.

    Example:
        >>> from schemas.events import Outcome
        >>> encode(Outcome(request_id="r1", converted=1, timestamp="2026-01-01T00:00:00Z"))
        b'{"request_id":"r1","converted":1,"timestamp":"2026-01-01T00:00:00Z"}'
    """
    return event.model_dump_json().encode()


def decode(raw: bytes | str, model: type[M]) -> M:
    """Parse JSON bytes straight into ``model`` (raises pydantic.ValidationError).

    Example:
        >>> from schemas.events import Outcome
        >>> decode(b'{"request_id":"r1","converted":0,"timestamp":"2026-01-01T00:00:00Z"}',
        ...        Outcome).converted
        0
    """
    return model.model_validate_json(raw)


def decode_topic(short_name: str, raw: bytes | str) -> BaseModel:
    """Parse a value of the topic ``short_name`` (a ``topics.SPECS`` attribute) into its
    contract; KeyError for a topic without one (model_bundles).

    Example:
        >>> alert = decode_topic("alerts", b'{"kind": "resolved", "rule": "error_rate",'
        ...     b' "severity": "warning", "value": 0.01, "threshold": 0.05,'
        ...     b' "timestamp": "2026-03-02T11:00:00+00:00",'
        ...     b' "started_at": "2026-03-02T10:00:00+00:00", "fingerprint": "f", "service": "s"}')
        >>> type(alert).__name__, alert.kind
        ('AlertMessage', 'resolved')
    """
    model = CONTRACTS.get(short_name)
    if model is None:
        raise KeyError(f"no contract for topic {short_name!r}")
    return decode(raw, model)
