"""Service health and readiness from component reports (pure, no I/O).

Critical components (the model and Kafka by default) decide healthy vs unhealthy;
the failure of any other component only makes the service degraded. The web layer
turns a report into ``/health`` (``http_status``) and ``/readyz``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from stream_app.jsonfloat import encode_float

__all__ = [
    "FLAG_KEYS",
    "ComponentStatus",
    "HealthReport",
    "HealthStatus",
    "ReadinessReport",
    "UpDown",
    "evaluate_health",
    "evaluate_readiness",
]

UpDown = Literal["up", "down"]
HealthStatus = Literal["healthy", "degraded", "unhealthy"]

# The boolean keys a component mapping may use to say it works; all present must be True.
FLAG_KEYS: tuple[str, ...] = ("loaded", "connected", "available", "healthy", "up")

_MISSING = "critical component did not report"


@dataclass(frozen=True)
class ComponentStatus:
    """What one component reported: up or down, the observed value, when, and why not."""

    name: str
    status: UpDown
    observed: Any = None
    checked_at: datetime | None = None
    error: str | None = None
    critical: bool = False

    def __post_init__(self) -> None:
        if self.status not in ("up", "down"):
            raise ValueError(f"status must be 'up' or 'down', got {self.status!r}")

    @property
    def up(self) -> bool:
        """True when the component works."""
        return self.status == "up"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the /health body."""
        return {
            "name": self.name,
            "status": self.status,
            "observed": _json_safe(self.observed),
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "error": self.error,
            "critical": self.critical,
        }


@dataclass(frozen=True)
class HealthReport:
    """The service's health: overall status plus every component's detail."""

    status: HealthStatus
    components: Mapping[str, ComponentStatus]
    critical_failures: tuple[str, ...]
    non_critical_failures: tuple[str, ...]
    checked_at: datetime | None = None

    @property
    def http_status(self) -> int:
        """200 while the service can still answer (healthy or degraded), else 503."""
        return 503 if self.status == "unhealthy" else 200

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the /health body."""
        return {
            "status": self.status,
            "http_status": self.http_status,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "components": {name: c.to_dict() for name, c in self.components.items()},
            "critical_failures": list(self.critical_failures),
            "non_critical_failures": list(self.non_critical_failures),
        }


@dataclass(frozen=True)
class ReadinessReport:
    """Whether the worker may receive traffic, with the reasons when it may not."""

    ready: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def http_status(self) -> int:
        """200 when ready, else 503."""
        return 200 if self.ready else 503

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the /readyz body."""
        return {"ready": self.ready, "http_status": self.http_status, "reasons": list(self.reasons)}


def evaluate_health(
    components: Mapping[str, ComponentStatus | Mapping[str, Any]],
    critical: str | Collection[str] = ("model", "kafka"),
    *,
    now: datetime | None = None,
) -> HealthReport:
    """Combine component reports into healthy, degraded or unhealthy.

    A component is given as a ``ComponentStatus`` or as a mapping using any of
    ``FLAG_KEYS`` (``{"loaded": True}``, ``{"available": False, "error": "..."}``) or
    ``{"status": "up" | "down"}``. A shape that cannot be read counts as down, with an
    error saying why, rather than raising: a health endpoint must always answer.
    A critical component missing from ``components`` counts as down. ``critical`` is a
    collection of names, or one name as a bare string (``critical="model"``). ``now``
    stamps components that carry no ``checked_at`` of their own.

    Example:
        >>> report = evaluate_health(
        ...     {"model": {"loaded": True}, "database": {"connected": True},
        ...      "cache": {"available": False, "error": "timeout"}},
        ...     critical=("model", "database"))
        >>> report.status, report.non_critical_failures, report.http_status
        ('degraded', ('cache',), 200)
    """
    # A bare string is one name: set("model") would make "m", "o", "d"... critical.
    critical_names = {critical} if isinstance(critical, str) else set(critical)
    statuses: dict[str, ComponentStatus] = {}
    for name, reported in components.items():
        status = _component(name, reported, now)
        statuses[name] = replace(status, critical=status.critical or name in critical_names)
    for name in sorted(critical_names - statuses.keys()):
        statuses[name] = ComponentStatus(
            name, "down", checked_at=now, error=_MISSING, critical=True
        )

    critical_failures = tuple(n for n, s in statuses.items() if not s.up and s.critical)
    other_failures = tuple(n for n, s in statuses.items() if not s.up and not s.critical)
    overall: HealthStatus = "healthy"
    if critical_failures:
        overall = "unhealthy"
    elif other_failures:
        overall = "degraded"
    return HealthReport(
        status=overall,
        components=MappingProxyType(statuses),
        critical_failures=critical_failures,
        non_critical_failures=other_failures,
        checked_at=now,
    )


def evaluate_readiness(
    partitions_assigned: bool,
    tables_recovered: bool,
    model_loaded: bool,
    failing: Sequence[str] = (),
) -> ReadinessReport:
    """Ready when partitions are assigned, tables recovered, a verified model loaded and
    no agent failing (``failing``: one line per agent that is down).

    Example:
        >>> evaluate_readiness(True, False, True).reasons
        ('tables not recovered from their changelogs yet',)
        >>> evaluate_readiness(True, True, True).ready
        True
        >>> evaluate_readiness(True, True, True, ["agent intake failing"]).reasons
        ('agent intake failing',)
    """
    reasons: list[str] = []
    if not partitions_assigned:
        reasons.append("no partitions assigned yet")
    if not tables_recovered:
        reasons.append("tables not recovered from their changelogs yet")
    if not model_loaded:
        reasons.append("no verified model loaded")
    reasons.extend(failing)
    return ReadinessReport(ready=not reasons, reasons=tuple(reasons))


def _component(
    name: str, reported: ComponentStatus | Mapping[str, Any], now: datetime | None
) -> ComponentStatus:
    """Read one component report; anything unreadable becomes a 'down' with the reason."""
    if isinstance(reported, ComponentStatus):
        if reported.checked_at is None:
            return replace(reported, name=name, checked_at=now)
        return replace(reported, name=name)
    if not isinstance(reported, Mapping):
        return _unreadable(
            name,
            now,
            f"expected a ComponentStatus or a mapping, got {type(reported).__name__}",
            reported,
        )
    checked_at = reported.get("checked_at")
    stamp = checked_at if isinstance(checked_at, datetime) else now
    error = reported.get("error")
    error_text = None if error is None else str(error)
    observed = {k: v for k, v in reported.items() if k not in ("error", "checked_at")}
    up, problem = _read_flags(reported)
    if problem is not None:
        return _unreadable(name, stamp, problem, observed)
    if not up and error_text is None:
        error_text = "reported down"
    return ComponentStatus(name, "up" if up else "down", observed, stamp, error_text)


def _read_flags(reported: Mapping[str, Any]) -> tuple[bool, str | None]:
    """The up/down verdict of a mapping, or the reason it cannot be read."""
    verdicts: list[bool] = []
    for key in FLAG_KEYS:
        if key in reported:
            value = reported[key]
            if not isinstance(value, bool):
                return False, f"{key!r} must be true or false, got {type(value).__name__}"
            verdicts.append(value)
    if "status" in reported:
        value = reported["status"]
        if value not in ("up", "down"):
            return False, f"'status' must be 'up' or 'down', got {value!r}"
        verdicts.append(value == "up")
    if not verdicts:
        keys = ", ".join((*FLAG_KEYS, "status"))
        return False, f"unrecognised report: none of {keys} present"
    return all(verdicts), None


def _unreadable(name: str, at: datetime | None, reason: str, observed: Any) -> ComponentStatus:
    return ComponentStatus(name, "down", observed, at, reason)


def _json_safe(value: Any) -> Any:
    """Best-effort JSON form of an observed value; never raises."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return repr(value)
