"""The alerts topic's message: one change of one rule's alert for one service.

Key: ``fingerprint``. An episode of a rule (from firing to resolved) is one fingerprint:
``firing``, then any number of ``escalated`` / ``deescalated``, then ``resolved``. A
consumer that pages keeps the episodes it has seen by fingerprint; the ``value`` is the
observed figure, never a request's content.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.wire import IsoTime, ReportFloat, without_example

__all__ = ["AlertKind", "AlertMessage", "AlertSeverity"]

AlertKind = Literal["firing", "escalated", "deescalated", "resolved"]
AlertSeverity = Literal["warning", "critical"]


class AlertMessage(BaseModel):
    """An alert event as the alert agent publishes it (the alerts topic's contract).

    Example:
        >>> raw = ('{"kind": "firing", "rule": "error_rate", "severity": "warning",'
        ...        ' "value": 0.07, "threshold": 0.05, "timestamp": "2026-03-02T10:00:00+00:00",'
        ...        ' "started_at": "2026-03-02T10:00:00+00:00", "fingerprint": "ab12",'
        ...        ' "service": "checkout"}')
        >>> alert = AlertMessage.model_validate_json(raw)
        >>> alert.kind, alert.severity, alert.value > alert.threshold
        ('firing', 'warning', True)
    """

    model_config = ConfigDict(frozen=True, json_schema_extra=without_example)

    kind: AlertKind = Field(
        description="firing: the episode starts; escalated / deescalated: its severity "
        "changed; resolved: the value went back past the rule's warning-side threshold "
        "(under it; above it for a rule whose direction is below)."
    )
    rule: str = Field(
        description="The rule's name, e.g. latency_p99_ms, error_rate, drift_severity, "
        "ab_srm, requests_absent."
    )
    severity: AlertSeverity = Field(
        description="The new severity; for resolved, the one that was active."
    )
    value: ReportFloat = Field(description="The observed value that changed the alert.")
    threshold: ReportFloat = Field(
        description="The threshold met; for resolved, the rule's warning-side one, now passed back."
    )
    timestamp: IsoTime = Field(description="Event time of the observation.")
    started_at: IsoTime = Field(description="Event time at which the episode started.")
    fingerprint: str = Field(
        description="Id of the episode, shared by all its events (also the message key)."
    )
    service: str = Field(description="The service whose metrics the rule watched.")
