"""Alert rules and the engine's settings, checked once when the engine is built.

A rule is named after the metric it watches and has a warning and/or a critical threshold;
a value at or above a threshold meets it (every rule reads "higher is worse"). A rule whose
name ends in ``_drop`` watches the relative drop of the metric without that suffix against
its trailing average, so ``prediction_volume_drop`` reads ``prediction_volume``. A rule
whose name ends in ``_absent`` is the same drop measured against the trailing average of
the observations where the metric was above zero (at least one is needed), and a value of
zero always reads as a drop of 1, like Prometheus's ``absent()``: ``requests_absent``
fires when a window's requests stop, or fall to a small fraction of what they were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TRAILING",
    "ABSENT_SUFFIX",
    "DROP_SUFFIX",
    "SEVERITIES",
    "AlertConfig",
    "Rule",
    "Severity",
    "parse_rules",
]

Severity = Literal["warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
DROP_SUFFIX = "_drop"
ABSENT_SUFFIX = "_absent"
DEFAULT_TRAILING = 6  # observations (six hours of hourly metrics)

DEFAULT_RULES: Mapping[str, Mapping[str, float]] = {
    "latency_p99_ms": {"warning": 100.0, "critical": 200.0},
    "error_rate": {"warning": 0.05, "critical": 0.10},
    "prediction_volume_drop": {"warning": 0.3, "critical": 0.5},
}


@dataclass(frozen=True)
class Rule:
    """One metric's thresholds; at least one is set, and warning < critical when both are."""

    name: str
    warning: float | None = None
    critical: float | None = None

    def __post_init__(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.name!r}: needs a warning and/or a critical threshold")
        for severity, value in (("warning", self.warning), ("critical", self.critical)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"rule {self.name!r}: {severity} must be finite, got {value!r}")
        if self.warning is not None and self.critical is not None:
            if not self.warning < self.critical:
                raise ValueError(
                    f"rule {self.name!r}: warning ({self.warning}) must be < critical "
                    f"({self.critical})"
                )

    @property
    def is_drop(self) -> bool:
        """Whether the value is derived: the drop of :attr:`metric` against its trailing mean."""
        return self.name.endswith(DROP_SUFFIX) and len(self.name) > len(DROP_SUFFIX)

    @property
    def is_absent(self) -> bool:
        """Whether the value is derived: :attr:`metric` gone to zero, or its drop against
        the trailing mean of its non-zero observations."""
        return self.name.endswith(ABSENT_SUFFIX) and len(self.name) > len(ABSENT_SUFFIX)

    @property
    def metric(self) -> str:
        """The metric read from each observation."""
        if self.is_drop:
            return self.name[: -len(DROP_SUFFIX)]
        if self.is_absent:
            return self.name[: -len(ABSENT_SUFFIX)]
        return self.name

    def severity_for(self, value: float) -> Severity | None:
        """The highest severity whose threshold ``value`` meets, None when it meets none."""
        if self.critical is not None and value >= self.critical:
            return "critical"
        if self.warning is not None and value >= self.warning:
            return "warning"
        return None

    def threshold(self, severity: Severity) -> float:
        """The threshold of ``severity``; a severity the rule lacks falls back to the other."""
        order = (
            (self.critical, self.warning)
            if severity == "critical"
            else (
                self.warning,
                self.critical,
            )
        )
        return next(value for value in order if value is not None)

    @property
    def resolve_below(self) -> float:
        """The value under which the rule is clear (its lowest threshold)."""
        return self.threshold("warning")


def _threshold(rule: str, severity: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"rule {rule!r}: {severity} must be a number, got {raw!r}")
    return float(raw)


def parse_rules(rules: Mapping[str, Mapping[str, float]]) -> tuple[Rule, ...]:
    """Check a rules mapping and turn it into :class:`Rule` values, in the mapping's order.

    Example:
        >>> parse_rules({"error_rate": {"warning": 0.05, "critical": 0.1}})
        (Rule(name='error_rate', warning=0.05, critical=0.1),)
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
    for name, levels in rules.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"rule names must be non-empty strings, got {name!r}")
        if not isinstance(levels, Mapping):
            raise ValueError(
                f"rule {name!r}: thresholds must be a mapping like {{'warning': 100, "
                f"'critical': 200}} (one or both severities), got {levels!r}"
            )
        unknown = sorted(set(levels) - set(SEVERITIES))
        if unknown:
            raise ValueError(
                f"rule {name!r}: unknown severity {unknown[0]!r}; allowed: warning, critical"
            )
        found = {severity: _threshold(name, severity, raw) for severity, raw in levels.items()}
        parsed.append(Rule(name, found.get("warning"), found.get("critical")))
    return tuple(parsed)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: the rules mapping and durations in seconds."""
        rules: dict[str, dict[str, float]] = {}
        for rule in self.rules:
            levels = {"warning": rule.warning, "critical": rule.critical}
            rules[rule.name] = {key: value for key, value in levels.items() if value is not None}
        return {
            "rules": rules,
            "cooldown_seconds": self.cooldown.total_seconds(),
            "trailing": self.trailing,
            "retention_seconds": self.retention.total_seconds(),
        }
