"""Bytes <-> event model, in one place: every agent and test encodes through here."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

__all__ = ["decode", "encode"]

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
