"""Gauge values for /metrics from what a worker's followers hold: drift and alerts.

Both take the state the /reports/drift and /alerts pages show (agents/dashboards.py), so
every worker reports the same values whichever partitions it owns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from stream_app.monitoring.alert_rules import AlertConfig
from stream_app.monitoring.alerts import AlertState
from stream_app.monitoring.drift_report import SEVERITY_RANK

__all__ = ["alerts_firing", "drift_levels"]

_RANK: dict[str, int] = {str(name): rank for name, rank in SEVERITY_RANK.items()}


def drift_levels(latest: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """``(model, feature) -> 0 none, 1 warning, 2 critical`` in each model's latest drift
    report (a drift-reports message); a severity it does not know counts as none.

    Example:
        >>> report = {"features": {"age": {"severity": "critical"},
        ...                        "purchase_total": {"severity": "none"}}}
        >>> drift_levels({"conversion": report})
        {('conversion', 'age'): 2, ('conversion', 'purchase_total'): 0}
    """
    levels: dict[tuple[str, str], int] = {}
    for model, report in latest.items():
        for feature, verdict in dict(report.get("features") or {}).items():
            severity = verdict.get("severity") if isinstance(verdict, Mapping) else None
            levels[(model, str(feature))] = _RANK.get(str(severity), 0)
    return levels


def alerts_firing(
    states: Mapping[str, AlertState], config: AlertConfig
) -> dict[tuple[str, str], int]:
    """``(rule, severity) -> alerts firing now`` across services: 0 for every severity a
    configured rule has, so a resolved alert goes back to 0 rather than vanishing.

    Example:
        >>> from datetime import UTC, datetime
        >>> from stream_app.monitoring.alert_rules import parse_rules
        >>> from stream_app.monitoring.alert_state import step
        >>> config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05, "critical": 0.1}}))
        >>> _, state = step(AlertState(), datetime(2026, 3, 2, tzinfo=UTC),
        ...                 {"error_rate": 0.2}, config)
        >>> alerts_firing({"checkout": state, "search": state, "idle": AlertState()}, config)
        {('error_rate', 'critical'): 2, ('error_rate', 'warning'): 0}
    """
    counts: Counter[tuple[str, str]] = Counter()
    for rule in config.rules:
        for severity, threshold in (("warning", rule.warning), ("critical", rule.critical)):
            if threshold is not None:
                counts[(rule.name, severity)] += 0
    for state in states.values():
        for name, rule_state in state.rules.items():
            episode = rule_state.episode
            if episode is not None and episode.ended_at is None:
                counts[(name, episode.severity)] += 1
    return dict(sorted(counts.items()))
