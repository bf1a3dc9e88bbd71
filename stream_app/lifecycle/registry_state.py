"""Registry events and the state they fold into (pure: no I/O, no clock).

The event log is the source of truth: ``fold(events)`` rebuilds the registry exactly,
whichever store the events came from. ``apply`` also re-checks each event against the
state it lands on, so a log edited by hand or merged wrongly is refused, not believed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from stream_app.errors import RegistryError

__all__ = [
    "Direction",
    "EventKind",
    "ModelRecord",
    "ModelVersion",
    "ProductionChange",
    "RegistryBuilder",
    "RegistryEvent",
    "RegistryState",
    "apply",
    "finite_metric",
    "fold",
    "semver_key",
]

EventKind = Literal["registered", "promoted", "rolled_back"]
Direction = Literal["higher", "lower"]

# Semantic versioning 2.0 without build metadata: "1.2.3+build" and "1.2.3" would tie
# in precedence, and a registry version must order strictly.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?$"
)


def semver_key(version: str) -> tuple[int, int, int, tuple[tuple[int, int, str], ...]]:
    """Sort key giving semantic-version precedence; RegistryError when not a version.

    Example:
        >>> sorted(["1.10.0", "1.9.0", "1.10.0-rc.1", "1.10.0-rc.2"], key=semver_key)
        ['1.9.0', '1.10.0-rc.1', '1.10.0-rc.2', '1.10.0']
    """
    match = _SEMVER.match(version) if isinstance(version, str) else None
    if match is None:
        raise RegistryError(f"{version!r} is not a semantic version MAJOR.MINOR.PATCH[-pre]")
    major, minor, patch, pre = match.groups()
    if pre is None:
        # A release outranks every pre-release of the same numbers.
        return int(major), int(minor), int(patch), ((2, 0, ""),)
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return int(major), int(minor), int(patch), parts


@dataclass(frozen=True)
class RegistryEvent:
    """One fact in the registry log: a version registered, promoted or rolled back.

    ``payload`` holds JSON values only (it is normalised through JSON on creation):
    registered: metrics, directions, path, digest, tags; promoted: previous, gate,
    gate_digest; rolled_back: previous (the version rolled away from). ``signature`` is
    the writer's Ed25519 signature (base64) when it signed the event
    (``registry_signing``); it is not part of what it signs.
    """

    kind: EventKind
    name: str
    version: str
    at: datetime
    payload: Mapping[str, Any]
    signature: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(EventKind):
            raise RegistryError(f"event kind must be one of {get_args(EventKind)}")
        if not isinstance(self.name, str) or not self.name:
            raise RegistryError("event name must be a non-empty string")
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:
            raise RegistryError("event time must be a timezone-aware datetime")
        semver_key(self.version)
        if self.signature is not None and not isinstance(self.signature, str):
            raise RegistryError("event signature must be a string")
        try:
            payload = json.loads(json.dumps(dict(self.payload), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"event payload is not JSON-safe: {exc}") from exc
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        object.__setattr__(self, "payload", payload)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``signature`` only when the event is signed."""
        data = {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "at": self.at.isoformat(),
            "payload": dict(self.payload),
        }
        if self.signature is not None:
            data["signature"] = self.signature
        return data

    def to_json(self) -> str:
        """One line of compact JSON (the JSONL store and the Kafka topic value)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> RegistryEvent:
        """Parse ``to_json`` output; RegistryError when it is not a registry event."""
        try:
            data = json.loads(text)
            return cls(
                kind=data["kind"],
                name=data["name"],
                version=data["version"],
                at=datetime.fromisoformat(data["at"]),
                payload=data["payload"],
                signature=data.get("signature"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"not a registry event: {exc}") from exc


@dataclass(frozen=True)
class ModelVersion:
    """A registered, immutable model version."""

    name: str
    version: str
    metrics: Mapping[str, float]
    directions: Mapping[str, Direction]
    path: str
    digest: str | None
    tags: Mapping[str, str]
    registered_at: datetime


@dataclass(frozen=True)
class ProductionChange:
    """A promotion or rollback of the production alias."""

    kind: Literal["promoted", "rolled_back"]
    version: str
    previous: str | None
    at: datetime
    gate: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelRecord:
    """Everything known about one model name."""

    name: str
    versions: Mapping[str, ModelVersion]
    history: tuple[ProductionChange, ...] = ()
    # Promotions still in effect, oldest first; a rollback pops the last one.
    lineage: tuple[str, ...] = ()

    @property
    def production(self) -> str | None:
        """The version serving now, or None before the first promotion."""
        return self.lineage[-1] if self.lineage else None


@dataclass(frozen=True)
class RegistryState:
    """The whole registry: one record per model name."""

    models: Mapping[str, ModelRecord]


class RegistryBuilder:
    """Folds events into a registry in place: each event costs about the same however
    long the log already is, so replaying a log is linear (a copy of a record per event
    made it quadratic). :meth:`apply` checks an event before it changes anything.

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> builder = RegistryBuilder()
        >>> builder.apply(RegistryEvent("registered", "churn", "1.0.0", at, {"path": "m"}))
        >>> builder.apply(RegistryEvent("promoted", "churn", "2.0.0", at, {"previous": None}))
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryError: unknown version 2.0.0 of 'churn'
        >>> builder.state().models["churn"].production is None
        True
    """

    def __init__(self, state: RegistryState | None = None) -> None:
        self._models: dict[str, ModelRecord] = dict(state.models) if state else {}
        # Models changed since the last state(): mutable versions, history, lineage.
        self._open: dict[str, tuple[dict[str, ModelVersion], list[ProductionChange], list[str]]]
        self._open = {}

    def apply(self, event: RegistryEvent) -> None:
        """Fold one event; RegistryError (and no change) when it cannot follow."""
        versions, history, lineage = self._opened(event.name)
        if event.kind == "registered":
            if event.version in versions:
                raise RegistryError(f"{event.name} {event.version} is already registered")
            versions[event.version] = _version(event)
            return
        if event.version not in versions:
            raise RegistryError(f"unknown version {event.version} of {event.name!r}")
        previous = event.payload.get("previous")
        production = lineage[-1] if lineage else None
        if event.kind == "rolled_back" and (len(lineage) < 2 or lineage[-2] != event.version):
            raise RegistryError("rollback target is not the previous production version")
        if previous != production:
            raise RegistryError(f"previous {previous!r} is not production {production!r}")
        if event.kind == "promoted":
            gate = event.payload.get("gate")
            history.append(ProductionChange("promoted", event.version, previous, event.at, gate))
            lineage.append(event.version)
        else:
            history.append(ProductionChange("rolled_back", event.version, previous, event.at))
            lineage.pop()

    def state(self) -> RegistryState:
        """The registry as folded so far (a model appears once it has a version)."""
        for name, (versions, history, lineage) in self._open.items():
            if versions:
                self._models[name] = ModelRecord(name, versions, tuple(history), tuple(lineage))
        self._open = {}
        return RegistryState(models=dict(self._models))

    def _opened(
        self, name: str
    ) -> tuple[dict[str, ModelVersion], list[ProductionChange], list[str]]:
        if name not in self._open:
            record = self._models.get(name)
            if record is None:
                self._open[name] = ({}, [], [])
            else:
                self._open[name] = (dict(record.versions), list(record.history),
                                    list(record.lineage))  # fmt: skip
        return self._open[name]


def fold(
    events: Iterable[RegistryEvent], state: RegistryState | None = None, *, start: int = 0
) -> RegistryState:
    """Replay events from an empty registry, or from ``state`` when resuming.

    ``start`` is the log position of the first event given (used in error messages):
    ``fold(log[n:], fold(log[:n]), start=n) == fold(log)``.

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> log = [RegistryEvent("registered", "churn", "1.0.0", at, {"metrics": {}, "path": "m"}),
        ...        RegistryEvent("promoted", "churn", "1.0.0", at, {"previous": None})]
        >>> fold(log).models["churn"].production
        '1.0.0'
        >>> fold(log[1:], fold(log[:1]), start=1) == fold(log)
        True
    """
    builder = RegistryBuilder(state)
    for position, event in enumerate(events, start=start):
        try:
            builder.apply(event)
        except RegistryError as exc:
            raise RegistryError(
                f"event {position} ({event.kind} {event.name} {event.version}): {exc}"
            ) from exc
    return builder.state()


def apply(state: RegistryState, event: RegistryEvent) -> RegistryState:
    """The state after one event; RegistryError when the event cannot follow this state.
    (To fold many events, :class:`RegistryBuilder` or :func:`fold`: linear in the log.)

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> state = apply(RegistryState(models={}),
        ...               RegistryEvent("registered", "churn", "1.0.0", at, {"path": "m"}))
        >>> promoted = RegistryEvent("promoted", "churn", "1.0.0", at, {"previous": None})
        >>> state = apply(state, promoted)
        >>> state.models["churn"].production
        '1.0.0'
        >>> apply(state, promoted)
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryError: previous None is not production '1.0.0'
    """
    builder = RegistryBuilder(state)
    builder.apply(event)
    return builder.state()


def _version(event: RegistryEvent) -> ModelVersion:
    payload = event.payload
    return ModelVersion(
        name=event.name,
        version=event.version,
        metrics={str(k): finite_metric(k, v) for k, v in _mapping(payload, "metrics").items()},
        directions={
            str(k): cast(Direction, _direction(v))
            for k, v in _mapping(payload, "directions").items()
        },
        path=str(payload["path"]) if "path" in payload else "",
        digest=None if payload.get("digest") is None else str(payload["digest"]),
        tags={str(k): str(v) for k, v in _mapping(payload, "tags").items()},
        registered_at=event.at,
    )


def _mapping(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key) or {}
    if not isinstance(value, Mapping):
        raise RegistryError(f"payload {key!r} must be an object")
    return value


def _direction(value: Any) -> str:
    if value not in get_args(Direction):
        raise RegistryError(f"metric direction must be 'higher' or 'lower', got {value!r}")
    return str(value)


def finite_metric(name: str, value: Any) -> float:
    """A metric value as float; RegistryError unless a finite real number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RegistryError(f"metric {name!r} must be a finite number, got {value!r}")
    return float(value)
