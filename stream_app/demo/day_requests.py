"""The demo day's prediction requests: who sends what when, and what should become of it.

Regular traffic comes from ``n_clients`` clients; disjoint random slices of it are
invalid (every kind of ``faults.INVALID_KINDS`` in turn, after the oversize ones), carry
PII, have no key, a wrong key (another client's) or no ``timestamp`` field. Each
over-limit client sends one burst (``traffic.burst_offsets``) and nothing else, so
exactly ``over_limit_extra`` of its requests are throttled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from schemas.events import PredictionRequest
from stream_app.demo.config import ScenarioConfig
from stream_app.demo.faults import (
    INVALID_KINDS,
    OVERSIZE_KIND,
    PlantedPii,
    encode_body,
    oversize_body,
    pii_fields,
)
from stream_app.demo.message import iso_ms_many
from stream_app.demo.traffic import DAY_SECONDS, burst_offsets, regular_offsets
from stream_app.lifecycle.demo_model import synthetic_requests

__all__ = ["ROLES", "DayRequests", "Fate", "RequestSlot", "client_name", "day_requests"]

Fate = Literal["scored", "throttled", "invalid"]
ROLES = ("invalid", "pii", "unkeyed", "wrong_key", "untimed")
_KINDS = {kind.name: kind for kind in INVALID_KINDS}
_PII_PER_REQUEST = len(fields(PlantedPii))


def client_name(index: int) -> str:
    """The id of the ``index``-th client.

    Example:
        >>> client_name(42)
        'client-00042'
    """
    return f"client-{index:05d}"


@dataclass(frozen=True)
class RequestSlot:
    """One request of the day: when, who, and what is special about it."""

    at: float  # seconds from the start of the day, in whole milliseconds
    client: int
    burst_position: int | None = None  # index within its client's burst
    role: str | None = None  # one of ROLES, or None for a plain request
    kind: str | None = None  # the invalid kind, for role "invalid"

    @property
    def at_ms(self) -> int:
        """Milliseconds from the start of the day."""
        return round(self.at * 1000)


@dataclass(frozen=True)
class DayRequests:
    """The requests in time order with their ids, messages, fates and planted PII.

    ``fates`` has every request whose request_id the pipeline can read back (all but
    malformed and oversize messages). ``features[i]`` is the drawn request whose
    feature values the i-th message carries (under the ids ``request_ids[i]`` and the
    slot's client); its features drive the outcome of a scored request.
    """

    slots: tuple[RequestSlot, ...]
    request_ids: tuple[str, ...]
    features: tuple[PredictionRequest, ...]
    messages: tuple[tuple[bytes | None, bytes], ...]
    fates: dict[str, Fate] = field(default_factory=dict)
    pii_values: tuple[str, ...] = ()


def day_requests(
    cfg: ScenarioConfig, rngs: tuple[np.random.Generator, np.random.Generator]
) -> DayRequests:
    """Draw the slots, their features and their messages.

    Example:
        >>> from stream_app.demo.config import ScenarioConfig
        >>> rngs = (np.random.default_rng(1), np.random.default_rng(2))
        >>> day = day_requests(ScenarioConfig(n_requests=1000, over_limit_clients=0), rngs)
        >>> len(day.messages), sorted(set(day.fates.values()))
        (1000, ['invalid', 'scored'])
    """
    slots = _slots(cfg, *rngs)
    requests = _requests(cfg, slots)
    start_ms = round(cfg.start.timestamp() * 1000)
    stamps = iso_ms_many(np.array([start_ms + s.at_ms for s in slots], dtype=np.int64))
    messages: list[tuple[bytes | None, bytes]] = []
    fates: dict[str, Fate] = {}
    pii: list[str] = []
    ids = tuple(f"req-{cfg.seed}-{i:06d}" for i in range(len(slots)))
    for slot, request, request_id, stamp in zip(slots, requests, ids, stamps, strict=True):
        client = client_name(slot.client)
        body = _body(request_id, client, stamp, request)
        key: bytes | None = client.encode()
        fate: Fate | None = "scored"
        if slot.role == "invalid":
            value, fate = _invalid(cfg, slot, body)
        else:
            body, key = _special(cfg, slot, body, key, len(pii) // _PII_PER_REQUEST, pii)
            value = encode_body(body)
            if (slot.burst_position or 0) >= cfg.rate_limit_max_requests:
                fate = "throttled"
        messages.append((key, value))
        if fate is not None:
            fates[request_id] = fate
    return DayRequests(tuple(slots), ids, tuple(requests), tuple(messages), fates, tuple(pii))


def _slots(
    cfg: ScenarioConfig, traffic: np.random.Generator, roles: np.random.Generator
) -> list[RequestSlot]:
    """Regular and burst slots sorted by time (regular first on a tie)."""
    n_regular = cfg.n_requests - cfg.burst_requests
    times = regular_offsets(n_regular, DAY_SECONDS + cfg.flush_seconds, traffic)
    clients = traffic.integers(0, cfg.n_clients, n_regular)
    role_of: dict[int, str] = {}
    order = roles.permutation(n_regular).tolist()
    for role in ROLES:
        count = round(n_regular * getattr(cfg, f"{role}_share"))
        role_of.update(dict.fromkeys(order[:count], role))
        order = order[count:]
    regular, invalid_seen = [], 0
    for i in range(n_regular):
        kind = None
        if role_of.get(i) == "invalid":
            kind = _invalid_kind(invalid_seen, cfg.oversize_messages)
            invalid_seen += 1
        regular.append(RequestSlot(float(times[i]), int(clients[i]), None, role_of.get(i), kind))
    size = cfg.rate_limit_max_requests + cfg.over_limit_extra
    bursts = []
    for b in range(cfg.over_limit_clients):
        begin = float(roles.uniform(3600.0, DAY_SECONDS - 3600.0))
        offsets = burst_offsets(begin, size, cfg.rate_limit_window_seconds)
        bursts += [RequestSlot(float(t), cfg.n_clients + b, j) for j, t in enumerate(offsets)]
    return sorted(regular + bursts, key=lambda s: s.at)


def _invalid_kind(j: int, oversize: int) -> str:
    return (
        OVERSIZE_KIND if j < oversize else INVALID_KINDS[(j - oversize) % len(INVALID_KINDS)].name
    )


def _requests(cfg: ScenarioConfig, slots: list[RequestSlot]) -> list[PredictionRequest]:
    """A synthetic request per slot, shifted from ``shift_at_hours`` on (their own ids)."""
    n_before = sum(1 for s in slots if s.at < cfg.shift_at_hours * 3600.0)
    seeds = np.random.SeedSequence([cfg.seed, 7]).generate_state(2)
    drawn = synthetic_requests(n_before, seed=int(seeds[0])) + synthetic_requests(
        len(slots) - n_before, seed=int(seeds[1]), shift={cfg.shift_feature: cfg.shift_amount}
    )
    return drawn


def _body(request_id: str, client: str, stamp: str, request: PredictionRequest) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "client_id": client,
        "timestamp": stamp,
        "user_id": request.user_id,
        "age": request.age,
        "purchase_history": request.purchase_history,
        "category_preference": request.category_preference,
        "session_duration_minutes": request.session_duration_minutes,
    }


def _invalid(
    cfg: ScenarioConfig, slot: RequestSlot, body: dict[str, Any]
) -> tuple[bytes, Fate | None]:
    """The broken message and its fate: None when the request_id cannot be read back."""
    if slot.kind == OVERSIZE_KIND:
        return oversize_body(body, cfg.max_request_bytes), None
    kind = _KINDS[str(slot.kind)]
    return kind.corrupt(body), ("invalid" if kind.reason == "schema" else None)


def _special(
    cfg: ScenarioConfig,
    slot: RequestSlot,
    body: dict[str, Any],
    key: bytes | None,
    pii_index: int,
    pii: list[str],
) -> tuple[dict[str, Any], bytes | None]:
    """Apply a valid request's role: PII fields, no key, a wrong key or no timestamp."""
    if slot.role == "pii":
        extra, planted = pii_fields(pii_index)
        pii.extend(planted.values)
        return {**body, **extra}, key
    if slot.role == "unkeyed":
        return body, None
    if slot.role == "wrong_key":
        return body, client_name((slot.client + 1) % cfg.n_clients).encode()
    if slot.role == "untimed":
        return {k: v for k, v in body.items() if k != "timestamp"}, key
    return body, key
