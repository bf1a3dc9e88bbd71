"""Alert rules as the engine takes them, and the engine's settings, checked once when the
engine is built.

Rules come as a mapping of rule name to thresholds and options (:func:`parse_rules`; the
rules file, :mod:`~stream_app.monitoring.alert_file`, gives one) and become
:class:`~stream_app.monitoring.threshold_rule.Rule` values, which say what each reads and
when it fires. :class:`AlertConfig` adds the engine's timing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from stream_app.monitoring.threshold_rule import (
    ABSENT_SUFFIX,
    DIRECTIONS,
    DROP_SUFFIX,
    SEVERITIES,
    Direction,
    Rule,
    Severity,
)

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TRAILING",
    "ABSENT_SUFFIX",
    "DROP_SUFFIX",
    "SEVERITIES",
    "DIRECTIONS",
    "AlertConfig",
    "Direction",
    "Rule",
    "Severity",
    "parse_rules",
    "rule_entry",
]

DEFAULT_TRAILING = 6  # observations (six hours of hourly metrics)

# The engine's own default (AlertEngine() without rules): the first three rules of the
# shipped rules file, alert_rules.yaml, which is what workers use (a test keeps them equal).
DEFAULT_RULES: Mapping[str, Mapping[str, float]] = {
    "latency_p99_ms": {"warning": 100.0, "critical": 200.0},
    "error_rate": {"warning": 0.05, "critical": 0.10},
    "prediction_volume_drop": {"warning": 0.3, "critical": 0.5},
}


RULE_KEYS = (*SEVERITIES, "direction", "metric", "service", "cooldown_seconds", "min_samples")


def _threshold(rule: str, severity: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"rule {rule!r}: {severity} must be a number, got {raw!r}")
    return float(raw)


def _rule(name: str, entry: Mapping[str, Any]) -> Rule:
    """One rule from its mapping; the options' own checks are :class:`Rule`'s."""
    levels = {s: _threshold(name, s, entry[s]) for s in SEVERITIES if s in entry}
    cooldown = entry.get("cooldown_seconds")
    if cooldown is not None:
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float):
            raise ValueError(f"rule {name!r}: cooldown_seconds must be a number")
        if not math.isfinite(cooldown) or cooldown > timedelta.max.total_seconds():
            raise ValueError(f"rule {name!r}: cooldown_seconds must be finite")
    return Rule(
        name,
        levels.get("warning"),
        levels.get("critical"),
        direction=entry.get("direction", "above"),
        metric_name=entry.get("metric"),
        service=entry.get("service"),
        cooldown=None if cooldown is None else timedelta(seconds=cooldown),
        min_samples=entry.get("min_samples", 1),
    )


def parse_rules(rules: Mapping[str, Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Check a rules mapping and turn it into :class:`Rule` values, in the mapping's order.

    Each rule maps its thresholds by severity and, optionally, ``direction``, ``metric``,
    ``service``, ``cooldown_seconds`` and ``min_samples`` (see :class:`Rule`).

    Example:
        >>> [(r.name, r.warning, r.critical) for r in parse_rules({"error_rate": {
        ...     "warning": 0.05, "critical": 0.1}})]
        [('error_rate', 0.05, 0.1)]
        >>> [rule] = parse_rules({"accuracy": {"warning": 0.8, "direction": "below"}})
        >>> rule.severity_for(0.8), rule.severity_for(0.81)
        ('warning', None)
        >>> parse_rules({"error_rate": {"warning": 0.2, "critical": 0.1}})
        Traceback (most recent call last):
        ...
        ValueError: rule 'error_rate': warning (0.2) must be < critical (0.1)
    """
    if not isinstance(rules, Mapping):
        raise ValueError(
            "rules must be a mapping of rule name to thresholds, like "
            f"{{'error_rate': {{'warning': 0.05, 'critical': 0.1}}}}, got {type(rules).__name__}"
        )
    parsed = []
    for name, entry in rules.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"rule names must be non-empty strings, got {name!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(
                f"rule {name!r}: thresholds must be a mapping like {{'warning': 100, "
                f"'critical': 200}} (one or both severities), got {entry!r}"
            )
        unknown = sorted(set(entry) - set(RULE_KEYS))
        if unknown:
            raise ValueError(
                f"rule {name!r}: unknown key {unknown[0]!r}; allowed: {', '.join(RULE_KEYS)}"
            )
        parsed.append(_rule(name, entry))
    return tuple(parsed)


def rule_entry(rule: Rule) -> dict[str, Any]:
    """A rule as :func:`parse_rules` takes it: thresholds, and the options not at default.

    Example:
        >>> rule_entry(Rule("accuracy", warning=0.8, direction="below", min_samples=3))
        {'warning': 0.8, 'direction': 'below', 'min_samples': 3}
    """
    entry: dict[str, Any] = {}
    for key, value in (("warning", rule.warning), ("critical", rule.critical)):
        if value is not None:
            entry[key] = value
    if rule.direction != "above":
        entry["direction"] = rule.direction
    if rule.metric_name is not None:
        entry["metric"] = rule.metric_name
    if rule.service is not None:
        entry["service"] = rule.service
    if rule.cooldown is not None:
        entry["cooldown_seconds"] = rule.cooldown.total_seconds()
    if rule.min_samples != 1:
        entry["min_samples"] = rule.min_samples
    return entry


@dataclass(frozen=True)
class AlertConfig:
    """Rules plus timing: the re-fire cooldown, the drop rules' trailing length, retention.

    ``retention`` bounds the state: closed episodes and suppressions older than that (in
    event time) are forgotten, so a summary window longer than it sees only what is kept.
    """

    rules: tuple[Rule, ...]
    cooldown: timedelta = timedelta(hours=1)
    trailing: int = DEFAULT_TRAILING
    retention: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        # isinstance first: comparing a number with a timedelta would raise TypeError.
        if not isinstance(self.cooldown, timedelta) or not self.cooldown > timedelta(0):
            raise ValueError(f"cooldown must be a timedelta > 0, got {self.cooldown!r}")
        trailing = self.trailing
        if isinstance(trailing, bool) or not isinstance(trailing, int) or trailing < 1:
            raise ValueError(f"volume_trailing must be an integer >= 1, got {trailing!r}")
        if not isinstance(self.retention, timedelta) or not self.retention >= self.cooldown:
            raise ValueError(
                f"retention must be a timedelta >= cooldown ({self.cooldown}), "
                f"got {self.retention!r}"
            )
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        for rule in self.rules:
            if rule.cooldown is not None and not self.retention >= rule.cooldown:
                raise ValueError(
                    f"retention must be a timedelta >= rule {rule.name!r}'s cooldown "
                    f"({rule.cooldown}), got {self.retention!r}"
                )

    def cooldown_of(self, rule: Rule) -> timedelta:
        """The rule's own cooldown, else the engine's."""
        return self.cooldown if rule.cooldown is None else rule.cooldown

    def for_service(self, service: str) -> AlertConfig:
        """The same config with only the rules whose ``service`` pattern ``service`` matches.

        Example:
            >>> config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05},
            ...     "checkout_error_rate": {"warning": 0.01, "metric": "error_rate",
            ...                             "service": "checkout(-.+)?"}}))
            >>> [r.name for r in config.for_service("checkout-eu").rules]
            ['error_rate', 'checkout_error_rate']
            >>> [r.name for r in config.for_service("search").rules]
            ['error_rate']
        """
        rules = tuple(rule for rule in self.rules if rule.applies_to(service))
        return self if rules == self.rules else replace(self, rules=rules)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: the rules mapping and durations in seconds."""
        rules = {rule.name: rule_entry(rule) for rule in self.rules}
        return {
            "rules": rules,
            "cooldown_seconds": self.cooldown.total_seconds(),
            "trailing": self.trailing,
            "retention_seconds": self.retention.total_seconds(),
        }
