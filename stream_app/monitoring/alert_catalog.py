"""The pipeline's alert rules, and the alert messages the alert agent publishes.

The alert agent runs one :class:`~stream_app.monitoring.alerts.AlertEngine` per service
with :func:`configured_rules`: the rules file ``STREAM_ALERT_RULES`` names, or the one
the package ships (:mod:`~stream_app.monitoring.alert_file`): latency p99, error rate,
volume drop, the drift severity the drift agent publishes, the A/B guardrails, and
``requests_absent`` on the ``requests`` of the app's own windows (traffic stopped or
nearly so). An observation that lacks a rule's metric leaves that rule as it was, so
every service can share the same rules while publishing only its own metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.alerts import AlertMessage
from stream_app.monitoring.alert_file import load_rules_file
from stream_app.monitoring.alert_rules import AlertConfig
from stream_app.monitoring.alert_state import AlertEvent, AlertState, fingerprint
from stream_app.monitoring.alerts import summarize

__all__ = [
    "AB_LATENCY_INCREASE",
    "AB_SRM",
    "DRIFT_SEVERITY",
    "REQUESTS_ABSENT",
    "alert_message",
    "alerts_overview",
    "configured_rules",
    "pipeline_rules",
    "service_fingerprint",
]

DRIFT_SEVERITY = "drift_severity"  # 0 clean window, 1 warning, 2 critical
AB_SRM = "ab_srm"  # 1 when the A/B split fails the sample-ratio check
AB_LATENCY_INCREASE = "ab_latency_increase"  # B's relative latency increase over A
# A window's requests at zero, or at or below a fraction of the trailing average of the
# windows that had requests (alert_rules: the ``_absent`` rules).
REQUESTS_ABSENT = "requests_absent"


def pipeline_rules(
    ab_max_latency_increase: float, volume_absent_fraction: float = 0.1
) -> dict[str, dict[str, float]]:
    """The shipped rules, with the thresholds of two of them taken from the settings.

    ``ab_max_latency_increase`` is ``Settings.ab_max_latency_increase``: the relative
    latency increase of B over A at which the guardrail warns. ``volume_absent_fraction``
    is ``Settings.volume_absent_fraction``: ``requests_absent`` fires (critical) when a
    window's requests are zero or at most this fraction of the trailing average, that
    is when their drop reaches ``1 - fraction``.

    Example:
        >>> rules = pipeline_rules(0.5, 0.25)
        >>> rules["drift_severity"], rules["ab_srm"], rules["ab_latency_increase"]
        ({'warning': 1.0, 'critical': 2.0}, {'critical': 1.0}, {'warning': 0.5})
        >>> rules["requests_absent"]
        {'critical': 0.75}
        >>> list(rules)[:3]
        ['latency_p99_ms', 'error_rate', 'prediction_volume_drop']
    """
    if not ab_max_latency_increase > 0:
        raise ValueError(f"ab_max_latency_increase must be > 0, got {ab_max_latency_increase!r}")
    if not 0 <= volume_absent_fraction < 1:
        raise ValueError(
            f"volume_absent_fraction must be in [0, 1), got {volume_absent_fraction!r}"
        )
    rules = load_rules_file(None)
    rules[AB_LATENCY_INCREASE] = {"warning": float(ab_max_latency_increase)}
    rules[REQUESTS_ABSENT] = {"critical": 1.0 - float(volume_absent_fraction)}
    return rules


def configured_rules(
    rules_file: Path | None, ab_max_latency_increase: float, volume_absent_fraction: float
) -> dict[str, dict[str, float]]:
    """The rules of ``rules_file`` as written, or :func:`pipeline_rules` when it is None.

    Example:
        >>> configured_rules(None, 0.5, 0.1) == pipeline_rules(0.5, 0.1)
        True
    """
    if rules_file is None:
        return pipeline_rules(ab_max_latency_increase, volume_absent_fraction)
    return load_rules_file(rules_file)


def service_fingerprint(service: str, rule: str, started_at: datetime) -> str:
    """The episode's fingerprint qualified by its service, so two services never share one.

    The engine's own fingerprint hashes rule and start only; two services whose same
    rule fires at the same event time would otherwise publish the same alert key.

    Example:
        >>> from datetime import UTC, datetime
        >>> at = datetime(2026, 3, 2, tzinfo=UTC)
        >>> service_fingerprint("a", "error_rate", at) != service_fingerprint("b", "error_rate", at)
        True
    """
    return fingerprint(f"{service}/{rule}", started_at)


def alert_message(service: str, event: AlertEvent) -> tuple[str, AlertMessage]:
    """The alerts topic's key (the service-qualified fingerprint) and its message.

    Example:
        >>> from datetime import UTC, datetime
        >>> at = datetime(2026, 3, 2, tzinfo=UTC)
        >>> event = AlertEvent("firing", "error_rate", "warning", 0.07, 0.05, at, at,
        ...                    fingerprint("error_rate", at))
        >>> key, value = alert_message("checkout", event)
        >>> value.service, value.kind, key == value.fingerprint
        ('checkout', 'firing', True)
    """
    key = service_fingerprint(service, event.rule, event.started_at)
    message = AlertMessage(
        kind=event.kind, rule=event.rule, severity=event.severity, value=event.value,
        threshold=event.threshold, timestamp=event.timestamp, started_at=event.started_at,
        fingerprint=key, service=service,
    )  # fmt: skip
    return key, message


def alerts_overview(
    states: Mapping[str, AlertState], config: AlertConfig, window: timedelta
) -> dict[str, Any]:
    """Alerts firing now across services, and each service's summary over ``window``.

    Each service is summarised at its own last observation (its event time), over the
    rules whose service pattern it matches; a service that has not observed anything yet
    is left out.

    Example:
        >>> from datetime import UTC
        >>> from stream_app.monitoring.alert_rules import parse_rules
        >>> from stream_app.monitoring.alert_state import step
        >>> config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05}}))
        >>> _, state = step(AlertState(), datetime(2026, 3, 2, tzinfo=UTC),
        ...                 {"error_rate": 0.2}, config)
        >>> view = alerts_overview({"checkout": state, "idle": AlertState()}, config,
        ...                        timedelta(hours=24))
        >>> [(a["service"], a["rule"], a["severity"]) for a in view["firing_now"]]
        [('checkout', 'error_rate', 'warning')]
        >>> sorted(view["services"])
        ['checkout']
    """
    services: dict[str, Any] = {}
    firing: list[dict[str, Any]] = []
    for service in sorted(states):
        state = states[service]
        if state.last_timestamp is None:
            continue
        own = config.for_service(service)
        summary = summarize(state, own, state.last_timestamp, window).to_dict()
        for alert in summary["firing_now"]:
            started = datetime.fromisoformat(alert["started_at"])
            alert["service"] = service
            alert["fingerprint"] = service_fingerprint(service, alert["rule"], started)
        firing.extend(summary["firing_now"])
        services[service] = summary
    firing.sort(key=lambda alert: (alert["started_at"], alert["service"], alert["rule"]))
    return {"window_seconds": window.total_seconds(), "firing_now": firing, "services": services}
