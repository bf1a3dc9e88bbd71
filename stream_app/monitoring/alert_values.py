"""The value each alert rule judges, from one observation and the trailing history.

A plain rule reads its metric. A ``_drop`` rule reads the relative drop of its metric
against the mean of the ``trailing`` observations before it (all of them needed, with a
positive mean). An ``_absent`` rule reads 1 when its metric is zero, else the drop against
the mean of up to ``trailing`` earlier observations that were above zero (at least one
needed), never below 0: like Prometheus's ``absent()``, a stop fires it however short the
history, and an outage does not lower the mean its end is judged by. A missing or
non-finite metric gives its rule no value, which leaves the rule as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from stream_app.monitoring.alert_rules import AlertConfig

__all__ = ["absent_value", "rule_values"]

History = dict[str, tuple[float, ...]]


def rule_values(
    metrics: Mapping[str, float], config: AlertConfig, trailing: Mapping[str, tuple[float, ...]]
) -> tuple[dict[str, float], History]:
    """Each evaluable rule's value, and the trailing history after this observation
    (drop rules keep it under their metric's name, absent rules under their own).

    Example:
        >>> from stream_app.monitoring.alert_rules import parse_rules
        >>> rules = {"error_rate": {"warning": 0.1}, "requests_absent": {"critical": 0.9}}
        >>> config = AlertConfig(parse_rules(rules))
        >>> values, history = rule_values({"error_rate": 0.2, "requests": 40.0}, config, {})
        >>> values, history
        ({'error_rate': 0.2}, {'requests_absent': (40.0,)})
        >>> rule_values({"requests": 0.0}, config, history)[0]
        {'requests_absent': 1.0}
    """
    history = dict(trailing)
    drops = _drops(metrics, config, history)
    values = {}
    for rule in config.rules:
        if rule.is_absent:
            value = absent_value(_finite(metrics.get(rule.metric)), rule.name, config, history)
        elif rule.is_drop:
            value = drops.get(rule.metric)
        else:
            value = _finite(metrics.get(rule.metric))
        if value is not None:
            values[rule.name] = value
    return values, history


def _drops(metrics: Mapping[str, float], config: AlertConfig, history: History) -> dict[str, float]:
    """The drop of each drop rule's metric by metric name; updates ``history``."""
    drops: dict[str, float] = {}
    for base in dict.fromkeys(rule.metric for rule in config.rules if rule.is_drop):
        current = _finite(metrics.get(base))
        if current is None:
            continue
        earlier = history.get(base, ())[-config.trailing :]
        if len(earlier) == config.trailing:
            mean = sum(earlier) / config.trailing
            if mean > 0:
                drops[base] = (mean - current) / mean
        history[base] = (*earlier, current)[-config.trailing :]
    return drops


def absent_value(
    current: float | None, name: str, config: AlertConfig, history: History
) -> float | None:
    """An absent rule's value (1 at zero, else the drop against the mean of the earlier
    positive values, never below 0); None before any positive value. Updates ``history``.

    Example:
        >>> from stream_app.monitoring.alert_rules import parse_rules
        >>> config = AlertConfig(parse_rules({"requests_absent": {"critical": 0.9}}), trailing=3)
        >>> history, values = {}, (0.0, 40.0, 20.0, 0.0, 3.0, 90.0)
        >>> [absent_value(v, "requests_absent", config, history) for v in values]
        [None, None, 0.5, 1.0, 0.9, 0.0]
        >>> history["requests_absent"]
        (20.0, 3.0, 90.0)
    """
    if current is None:
        return None
    earlier = history.get(name, ())
    value = None
    if earlier:
        mean = sum(earlier) / len(earlier)
        value = 1.0 if current <= 0 else max(0.0, (mean - current) / mean)
    if current > 0:
        history[name] = (*earlier, current)[-config.trailing :]
    return value


def _finite(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
