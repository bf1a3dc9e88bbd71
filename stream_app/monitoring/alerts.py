"""The alert engine: metric observations in, alert lifecycle events and a summary out.

:class:`AlertEngine` wraps the pure :func:`~stream_app.monitoring.alert_state.step` with
its checked :class:`~stream_app.monitoring.alert_rules.AlertConfig`; rules, lifecycle and
cooldown semantics are described in those two modules. Time is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from stream_app.fold import Fold, Folded, fold_each
from stream_app.monitoring.alert_rules import (
    DEFAULT_RULES,
    DEFAULT_TRAILING,
    AlertConfig,
    Rule,
    Severity,
    parse_rules,
)
from stream_app.monitoring.alert_state import AlertEvent, AlertState, Episode, fingerprint, step

__all__ = [
    "DEFAULT_RULES",
    "AlertConfig",
    "AlertEngine",
    "AlertEvent",
    "AlertState",
    "AlertSummary",
    "FiringAlert",
    "RuleSummary",
    "alert_fold",
    "summarize",
]


@dataclass(frozen=True)
class RuleSummary:
    """One rule over the summary window (episodes that overlap it, the open one included)."""

    episodes: int
    worst_value: float | None
    firing_seconds: float
    suppressed: int


@dataclass(frozen=True)
class FiringAlert:
    """An alert that is active at the summary's ``now``."""

    rule: str
    severity: Severity
    started_at: datetime
    worst_value: float
    fingerprint: str


@dataclass(frozen=True)
class AlertSummary:
    """What the alerts did in the window ending at ``now``; ``to_dict()`` is JSON-safe."""

    now: datetime
    window_seconds: float
    per_rule: Mapping[str, RuleSummary]
    firing_now: tuple[FiringAlert, ...]
    suppressed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, times as ISO-8601."""
        return {
            "now": self.now.isoformat(),
            "window_seconds": self.window_seconds,
            "per_rule": {name: asdict(rule) for name, rule in self.per_rule.items()},
            "firing_now": [
                {**asdict(alert), "started_at": alert.started_at.isoformat()}
                for alert in self.firing_now
            ],
            "suppressed": self.suppressed,
        }


def _worst(rule: Rule, values: Sequence[float]) -> float | None:
    pick = max if rule.direction == "above" else min
    return pick(values, default=None)


def _overlap(episode: Episode, start: datetime, now: datetime) -> float:
    end = now if episode.ended_at is None else min(episode.ended_at, now)
    return max((end - max(episode.started_at, start)).total_seconds(), 0.0)


def summarize(
    state: AlertState, config: AlertConfig, now: datetime, window: timedelta
) -> AlertSummary:
    """Per-rule episodes, worst value, time firing and suppressions in the window.

    An episode counts when it started by ``now`` and had not ended by ``now - window``; its
    worst value is over the whole episode, its time firing only the part inside the window.

    Example:
        >>> from datetime import UTC
        >>> from stream_app.monitoring.alert_state import step
        >>> config = AlertConfig(parse_rules({"latency_p99_ms": {"warning": 100, "critical": 200}}))
        >>> t0, state = datetime(2026, 3, 2, tzinfo=UTC), AlertState()
        >>> for hour, value in enumerate([80, 150, 250, 90]):
        ...     at = t0 + timedelta(hours=hour)
        ...     _, state = step(state, at, {"latency_p99_ms": value}, config)
        >>> report = summarize(state, config, t0 + timedelta(hours=4), timedelta(hours=24))
        >>> rule = report.per_rule["latency_p99_ms"]
        >>> rule.episodes, rule.worst_value, rule.firing_seconds, report.firing_now
        (1, 250.0, 7200.0, ())
    """
    if not window > timedelta(0):
        raise ValueError(f"window must be > 0, got {window!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    start = now - window
    open_episodes = [rs.episode for rs in state.rules.values() if rs.episode is not None]
    per_rule: dict[str, RuleSummary] = {}
    for rule in config.rules:
        episodes = [
            e
            for e in (*state.closed, *open_episodes)
            if e.rule == rule.name
            and e.started_at <= now
            and (e.ended_at is None or e.ended_at > start)
        ]
        per_rule[rule.name] = RuleSummary(
            episodes=len(episodes),
            worst_value=_worst(rule, [e.worst_value for e in episodes]),
            firing_seconds=sum(_overlap(e, start, now) for e in episodes),
            suppressed=sum(
                1 for name, at in state.suppressions if name == rule.name and start < at <= now
            ),
        )
    firing = tuple(
        FiringAlert(
            e.rule, e.severity, e.started_at, e.worst_value, fingerprint(e.rule, e.started_at)
        )
        for e in open_episodes
        if e.started_at <= now
    )
    return AlertSummary(
        now=now,
        window_seconds=window.total_seconds(),
        per_rule=per_rule,
        firing_now=firing,
        suppressed=sum(r.suppressed for r in per_rule.values()),
    )


class AlertEngine:
    """Threshold alerts with a lifecycle, cooldown and a restartable JSON state.

    Example:
        >>> from datetime import UTC
        >>> engine = AlertEngine({"error_rate": {"warning": 0.05, "critical": 0.10}})
        >>> t0 = datetime(2026, 3, 2, tzinfo=UTC)
        >>> [e.kind for e in engine.observe(t0, {"error_rate": 0.07})]
        ['firing']
        >>> engine.observe(t0 + timedelta(hours=1), {"error_rate": 0.08})
        []
        >>> restarted = AlertEngine.from_dict(engine.to_dict())
        >>> [(e.kind, e.severity) for e in restarted.observe(t0 + timedelta(hours=2),
        ...                                                  {"error_rate": 0.12})]
        [('escalated', 'critical')]
    """

    def __init__(
        self,
        rules: Mapping[str, Mapping[str, Any]] = DEFAULT_RULES,
        cooldown: timedelta = timedelta(hours=1),
        *,
        volume_trailing: int = DEFAULT_TRAILING,
        retention: timedelta = timedelta(days=7),
        state: AlertState | None = None,
    ) -> None:
        self._config = AlertConfig(parse_rules(rules), cooldown, volume_trailing, retention)
        self._state = AlertState() if state is None else state

    @property
    def config(self) -> AlertConfig:
        """The checked rules and timing."""
        return self._config

    @property
    def state(self) -> AlertState:
        """The current state (immutable; store ``state.to_dict()`` to survive a restart)."""
        return self._state

    def observe(self, timestamp: datetime, metrics: Mapping[str, float]) -> list[AlertEvent]:
        """Apply one observation at event time ``timestamp``; returns its events in rule order."""
        events, self._state = step(self._state, timestamp, metrics, self._config)
        return events

    def summary(self, now: datetime, window: timedelta = timedelta(hours=24)) -> AlertSummary:
        """What happened in the ``window`` up to ``now``, normally the last observation's time."""
        return summarize(self._state, self._config, now, window)

    def fold(
        self,
        state: AlertState | None,
        events: Sequence[tuple[datetime, Mapping[str, float]]],
        now: float,
    ) -> Folded[AlertState, AlertEvent]:
        """The alert step as a fold over one service's ``(timestamp, metrics)`` observations
        (the engine's own state is not used or changed)."""
        return alert_fold(self._config)(state, events, now)

    def to_dict(self) -> dict[str, Any]:
        """Config and state, JSON-safe."""
        return {"config": self._config.to_dict(), "state": self._state.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertEngine:
        """An engine restored from :meth:`to_dict` output (config re-checked)."""
        config = data["config"]
        return cls(
            config["rules"],
            timedelta(seconds=float(config["cooldown_seconds"])),
            volume_trailing=int(config["trailing"]),
            retention=timedelta(seconds=float(config["retention_seconds"])),
            state=AlertState.from_dict(data["state"]),
        )


def alert_fold(
    config: AlertConfig,
) -> Fold[AlertState, tuple[datetime, Mapping[str, float]], AlertEvent]:
    """Alerts as a fold: one service's observations in, its alert events out.

    Folded with no observations (the driver's expiry of a service not heard from for a
    while), a service with nothing firing is forgotten (None); one with an alert firing
    is kept, so that its alert still resolves when the service comes back.

    Example:
        >>> from datetime import UTC
        >>> config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05}}))
        >>> fold = alert_fold(config)
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> quiet = fold(None, [(at, {"error_rate": 0.01})], now=0.0).state
        >>> fold(quiet, [], now=0.0).state is None
        True
        >>> firing = fold(None, [(at, {"error_rate": 0.5})], now=0.0).state
        >>> fold(firing, [], now=0.0).state is firing
        True
    """

    def observe(
        state: AlertState | None, observation: tuple[datetime, Mapping[str, float]], now: float
    ) -> tuple[AlertState, list[AlertEvent]]:
        events, new_state = step(state or AlertState(), *observation, config)
        return new_state, events

    each = fold_each(observe)

    def fold(
        state: AlertState | None,
        events: Sequence[tuple[datetime, Mapping[str, float]]],
        now: float,
    ) -> Folded[AlertState, AlertEvent]:
        if events or state is None:
            return each(state, events, now)
        firing = any(rule.episode is not None for rule in state.rules.values())
        return Folded(state if firing else None, ())

    return fold
