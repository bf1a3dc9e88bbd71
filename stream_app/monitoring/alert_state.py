"""The alert engine's state and its pure transition, ``step(state, timestamp, metrics, config)``.

Everything the engine remembers is in :class:`AlertState`, which round-trips through JSON,
so the agent can keep it in a Faust table: after a restart the same observations give the
same events, and an observation the state has already seen (a redelivery) gives none.

Lifecycle of one rule: clear -> ``firing`` (warning or critical) -> ``escalated`` /
``deescalated`` as the met severity changes -> ``resolved`` once past its warning-side
threshold (under it, or above it for a rule whose direction is "below"). Only one
severity is active per rule (critical inhibits warning), and a held condition sends
nothing more. If the condition returns less than the rule's cooldown (its own, else
the config's) after the resolution it is suppressed and counted once; if it still holds
at the first observation at or after resolution + cooldown, it fires then, with the
severity it has then.

The cooldown suppresses a return at any severity: a rule that resolves and comes back
straight at critical within the cooldown is suppressed too, and pages only once the
cooldown is over (a rule that resolves and fires again within the cooldown is
suppressed, whatever it fires with). This is deliberate: a value flapping around its
thresholds must not page at every crossing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from stream_app.monitoring.alert_rules import AlertConfig, Rule, Severity
from stream_app.monitoring.alert_values import rule_values

__all__ = ["AlertEvent", "AlertState", "Episode", "EventKind", "RuleState", "fingerprint", "step"]

EventKind = Literal["firing", "escalated", "deescalated", "resolved"]


def fingerprint(rule: str, started_at: datetime) -> str:
    """Stable id of one alert episode: sha256 of the rule name and its UTC start time.

    Example:
        >>> fingerprint("error_rate", datetime(2026, 3, 2, 4, tzinfo=UTC))[:12]
        '5df707131a70'
    """
    key = f"{rule}|{started_at.astimezone(UTC).isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class AlertEvent:
    """One change of a rule's alert; all events of an episode share ``fingerprint``.

    ``severity`` is the new one (for ``resolved``: the one that was active) and
    ``threshold`` the one met (for ``resolved``: the rule's warning-side one, now passed
    back: under it, or above it for a rule whose direction is "below").
    """

    kind: EventKind
    rule: str
    severity: Severity
    value: float
    threshold: float
    timestamp: datetime
    started_at: datetime
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, times as ISO-8601."""
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        data["started_at"] = self.started_at.isoformat()
        return data


@dataclass(frozen=True)
class Episode:
    """A period during which one rule fired; ``ended_at`` is None while it still fires."""

    rule: str
    started_at: datetime
    severity: Severity  # the active one (the last one, once ended)
    worst_value: float
    ended_at: datetime | None = None


@dataclass(frozen=True)
class RuleState:
    """Where one rule stands: its open episode, its last resolution, a running suppression."""

    episode: Episode | None = None
    resolved_at: datetime | None = None
    suppressing: bool = False
    samples: int = 0  # values judged, counted up to the rule's min_samples only


@dataclass(frozen=True)
class AlertState:
    """All the engine remembers; bounded by the config's rules, trailing and retention."""

    last_timestamp: datetime | None = None
    rules: Mapping[str, RuleState] = field(default_factory=dict)
    trailing: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    closed: tuple[Episode, ...] = ()
    suppressions: tuple[tuple[str, datetime], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for a Faust table."""
        return {
            "last_timestamp": _iso(self.last_timestamp),
            "rules": {name: _rule_state_dict(rs) for name, rs in self.rules.items()},
            "trailing": {name: list(values) for name, values in self.trailing.items()},
            "closed": [_episode_dict(e) for e in self.closed],
            "suppressions": [[rule, at.isoformat()] for rule, at in self.suppressions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Rebuild a state from :meth:`to_dict` output."""
        return cls(
            last_timestamp=_time(data["last_timestamp"]),
            rules={name: _rule_state(rs) for name, rs in data["rules"].items()},
            trailing={name: tuple(map(float, v)) for name, v in data["trailing"].items()},
            closed=tuple(_episode(e) for e in data["closed"]),
            suppressions=tuple(
                (rule, datetime.fromisoformat(at)) for rule, at in data["suppressions"]
            ),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _episode_dict(episode: Episode) -> dict[str, Any]:
    data = asdict(episode)
    data["started_at"] = episode.started_at.isoformat()
    data["ended_at"] = _iso(episode.ended_at)
    return data


def _episode(data: Mapping[str, Any]) -> Episode:
    return Episode(
        rule=data["rule"],
        started_at=datetime.fromisoformat(data["started_at"]),
        severity=data["severity"],
        worst_value=float(data["worst_value"]),
        ended_at=_time(data["ended_at"]),
    )


def _rule_state_dict(state: RuleState) -> dict[str, Any]:
    return {
        "episode": None if state.episode is None else _episode_dict(state.episode),
        "resolved_at": _iso(state.resolved_at),
        "suppressing": state.suppressing,
        "samples": state.samples,
    }


def _rule_state(data: Mapping[str, Any]) -> RuleState:
    return RuleState(
        episode=None if data["episode"] is None else _episode(data["episode"]),
        resolved_at=_time(data["resolved_at"]),
        suppressing=bool(data["suppressing"]),
        # A state written before rules had min_samples: as if it had judged none.
        samples=int(data.get("samples", 0)),
    )


def _event(
    kind: EventKind, rule: Rule, severity: Severity, value: float, at: datetime, episode: Episode
) -> AlertEvent:
    threshold = rule.resolve_below if kind == "resolved" else rule.threshold(severity)
    return AlertEvent(
        kind=kind,
        rule=rule.name,
        severity=severity,
        value=value,
        threshold=threshold,
        timestamp=at,
        started_at=episode.started_at,
        fingerprint=fingerprint(rule.name, episode.started_at),
    )


@dataclass(frozen=True)
class _Change:
    state: RuleState
    event: AlertEvent | None = None
    closed: Episode | None = None
    suppressed: bool = False


def _advance(
    rule: Rule, state: RuleState, value: float, at: datetime, config: AlertConfig
) -> _Change:
    """One rule's next state given its value at ``at``."""
    state = replace(state, samples=min(state.samples + 1, rule.min_samples))
    # Until the rule has judged min_samples values it stays clear, whatever they are.
    target = rule.severity_for(value) if state.samples >= rule.min_samples else None
    episode = state.episode
    if episode is None:
        if target is None:
            return _Change(replace(state, suppressing=False))
        if state.resolved_at is not None and at - state.resolved_at < config.cooldown_of(rule):
            # Counted once per suppressed return, not once per observation.
            return _Change(replace(state, suppressing=True), suppressed=not state.suppressing)
        episode = Episode(rule.name, at, target, value)
        fired = RuleState(episode=episode, resolved_at=state.resolved_at, samples=state.samples)
        return _Change(fired, _event("firing", rule, target, value, at, episode))
    worst = value if rule.worse(value, episode.worst_value) else episode.worst_value
    if target is None:
        closed = replace(episode, worst_value=worst, ended_at=at)
        event = _event("resolved", rule, episode.severity, value, at, closed)
        return _Change(RuleState(resolved_at=at, samples=state.samples), event, closed)
    grown = replace(episode, severity=target, worst_value=worst)
    if target == episode.severity:
        return _Change(replace(state, episode=grown))
    kind: EventKind = "escalated" if target == "critical" else "deescalated"
    return _Change(replace(state, episode=grown), _event(kind, rule, target, value, at, grown))


def step(
    state: AlertState, timestamp: datetime, metrics: Mapping[str, float], config: AlertConfig
) -> tuple[list[AlertEvent], AlertState]:
    """Apply one observation (event time, metric values) and return its events and new state.

    One state serves one source of metrics (the agent keys its table by service): an
    observation not later than the last one applied is taken as a redelivery after a
    restart, or as out of order, and gives no events and leaves the state as it is.

    Example:
        >>> from datetime import timedelta
        >>> from stream_app.monitoring.alert_rules import parse_rules
        >>> config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05, "critical": 0.1}}))
        >>> t0 = datetime(2026, 3, 2, tzinfo=UTC)
        >>> events, state = step(AlertState(), t0, {"error_rate": 0.07}, config)
        >>> [(e.kind, e.severity, e.threshold) for e in events]
        [('firing', 'warning', 0.05)]
        >>> events, state = step(state, t0 + timedelta(minutes=30), {"error_rate": 0.01}, config)
        >>> [e.kind for e in events]
        ['resolved']
        >>> # Back at critical 30 minutes later, inside the 1 h cooldown: suppressed, counted.
        >>> events, state = step(state, t0 + timedelta(hours=1), {"error_rate": 0.2}, config)
        >>> events, len(state.suppressions)
        ([], 1)
        >>> events, state = step(state, t0 + timedelta(hours=2), {"error_rate": 0.2}, config)
        >>> [(e.kind, e.severity) for e in events]
        [('firing', 'critical')]
    """
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    if state.last_timestamp is not None and timestamp <= state.last_timestamp:
        return [], state
    values, trailing = rule_values(metrics, config, state.trailing)
    rules, events = dict(state.rules), []
    closed, suppressions = list(state.closed), list(state.suppressions)
    for rule in config.rules:
        if rule.name not in values:
            continue
        current = rules.get(rule.name, RuleState())
        change = _advance(rule, current, values[rule.name], timestamp, config)
        rules[rule.name] = change.state
        if change.event is not None:
            events.append(change.event)
        if change.closed is not None:
            closed.append(change.closed)
        if change.suppressed:
            suppressions.append((rule.name, timestamp))
    horizon = timestamp - config.retention
    return events, AlertState(
        last_timestamp=timestamp,
        rules=rules,
        trailing=trailing,
        closed=tuple(e for e in closed if e.ended_at is not None and e.ended_at >= horizon),
        suppressions=tuple(s for s in suppressions if s[1] >= horizon),
    )
