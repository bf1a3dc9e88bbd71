"""The demo's bad requests: invalid bodies of every rejection reason, and PII-carrying ones.

An invalid request starts as a valid body and is broken in one named way, so every kind
maps to exactly one rejection reason of ``parse_request`` (the unit tests check each one
against it). A PII request stays valid: it carries contact fields and free text with an
e-mail address and a phone number, which the scorer must keep out of every log and
report. Every planted value is unique per request, so a leak can be traced to its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic_core

from schemas.events import RejectReason

__all__ = [
    "INVALID_KINDS",
    "OVERSIZE_KIND",
    "InvalidKind",
    "PlantedPii",
    "encode_body",
    "oversize_body",
    "pii_fields",
]

Body = Mapping[str, Any]


def encode_body(body: Body) -> bytes:
    """Compact JSON bytes of a request body.

    Example:
        >>> encode_body({"age": 30, "user_id": "USR1"})
        b'{"age":30,"user_id":"USR1"}'
    """
    return pydantic_core.to_json(body)


def _with(**changes: Any) -> Callable[[Body], bytes]:
    return lambda body: encode_body({**body, **changes})


def _without(field: str) -> Callable[[Body], bytes]:
    return lambda body: encode_body({k: v for k, v in body.items() if k != field})


def _truncated(body: Body) -> bytes:
    raw = encode_body(body)
    return raw[: len(raw) // 2]


@dataclass(frozen=True)
class InvalidKind:
    """One way to break a request body, and the rejection reason it must get."""

    name: str
    reason: RejectReason
    corrupt: Callable[[Body], bytes]


INVALID_KINDS: tuple[InvalidKind, ...] = (
    InvalidKind("not_json", "malformed_json", lambda b: b"score this user please"),
    InvalidKind("truncated_json", "malformed_json", _truncated),
    InvalidKind("json_array", "malformed_json", lambda b: b"[" + encode_body(b) + b"]"),
    InvalidKind("not_utf8", "malformed_json", lambda b: b"\xff\xfe" + encode_body(b)),
    InvalidKind("user_id_prefix", "schema", _with(user_id="ACC-1042")),
    InvalidKind("age_too_low", "schema", _with(age=9)),
    InvalidKind("age_bool", "schema", _with(age=True)),
    InvalidKind("empty_history", "schema", _with(purchase_history=[])),
    InvalidKind("negative_amount", "schema", _with(purchase_history=[19.99, -5.0])),
    InvalidKind("unknown_category", "schema", _with(category_preference="garden")),
    InvalidKind("zero_session", "schema", _with(session_duration_minutes=0)),
    InvalidKind("missing_user_id", "schema", _without("user_id")),
)
OVERSIZE_KIND = "oversize"


def oversize_body(body: Body, max_bytes: int) -> bytes:
    """A valid-looking body padded with a free-text field to ``max_bytes + 1024`` bytes.

    Example:
        >>> len(oversize_body({"request_id": "r1"}, 2000))
        3024
    """
    raw = encode_body({**body, "notes": ""})
    padding = max_bytes + 1024 - len(raw)
    return encode_body({**body, "notes": "lorem ipsum " * (padding // 12) + "x" * (padding % 12)})


_FIRST = ("Ingrid", "Tomasz", "Leontine", "Oluwaseun", "Margarethe", "Ximena", "Bartholomew")
_LAST = (
    "Halvorsen",
    "Wojciechowski",
    "Achterberg",
    "Adeyemi",
    "Kowalczyk",
    "Quispe",
    "Fairweather",
)
_STREETS = ("Quellenstrasse", "Rue des Tanneurs", "Calle del Olivar", "Marlowe Crescent")
_CITIES = ("8005 Zurich", "75004 Paris", "28012 Madrid", "Bristol BS8 1TH")


@dataclass(frozen=True)
class PlantedPii:
    """The PII values planted in one request (all must stay out of logs and reports)."""

    email: str
    phone: str
    name: str
    address: str
    text_email: str
    text_phone: str

    @property
    def values(self) -> tuple[str, ...]:
        return (self.email, self.phone, self.name, self.address, self.text_email, self.text_phone)


def pii_fields(index: int) -> tuple[dict[str, str], PlantedPii]:
    """Extra request fields carrying PII for the ``index``-th PII request, and the values.

    Contact fields (``email``, ``phone``, ``name``, ``address``) and a ``notes`` text with
    an e-mail address and a phone number inside it.

    Example:
        >>> fields, planted = pii_fields(3)
        >>> sorted(fields), planted.name
        (['address', 'email', 'name', 'notes', 'phone'], 'Oluwaseun Adeyemi-3')
        >>> fields["notes"]
        'please call me back on +44 20 7946 3003 or at tomasz.fairweather.3@mail.example.net'
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index * 3 + 1) % len(_LAST)]
    other_first = _FIRST[(index * 5) % len(_FIRST)]
    other_last = _LAST[(index + 3) % len(_LAST)]
    planted = PlantedPii(
        email=f"{first.lower()}.{last.lower()}{index}@example.com",
        phone=f"+1 555 {index % 1000:03d} {1000 + index % 9000:04d}",
        name=f"{first} {last}-{index}",
        address=f"{index + 1} {_STREETS[index % len(_STREETS)]}, {_CITIES[index % len(_CITIES)]}",
        text_email=f"{other_first.lower()}.{other_last.lower()}.{index}@mail.example.net",
        text_phone=f"+44 20 7946 {3000 + index % 7000:04d}",
    )
    fields = {
        "email": planted.email,
        "phone": planted.phone,
        "name": planted.name,
        "address": planted.address,
        "notes": f"please call me back on {planted.text_phone} or at {planted.text_email}",
    }
    return fields, planted
