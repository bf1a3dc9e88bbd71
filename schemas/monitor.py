"""Events on the app's internal monitor-events topic (key: model name).

The request path cannot update shared aggregates itself: a Faust table is sharded by
the partition of the event being processed, and a micro-batch mixes partitions. So the
scorer, the intake and the outcome join send small summaries here, keyed by model name,
and the monitoring agents (drift, A/B, service metrics) fold them into their tables.

Every event but a ``SilenceTick`` (the worker's clock, for windows of a silent input)
carries event time. A ``BatchSummary`` covers the part of one micro-batch
that falls in one metrics window (``bucket_start``, ``Settings.metrics_window_seconds``
long); the drift window and the A/B interval are whole multiples of it, so a summary
never straddles any window boundary.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.events import Variant

__all__ = [
    "MONITOR_EVENT",
    "BatchSummary",
    "JoinedOutcome",
    "MonitorEvent",
    "RequestCounted",
    "SilenceTick",
]


class BatchSummary(BaseModel):
    """What the scorer saw in one metrics window of one micro-batch.

    ``features`` is ``WindowStats.to_dict()`` of the scored requests, binned on
    ``reference`` (the serving bundle's reference profile, ``ReferenceProfile.to_dict()``);
    both are empty when the bundle has no profile. ``variants`` holds
    ``ABCounters.to_dict()`` per variant: exposures and the latency sketch of the
    requests that variant scored. ``failed`` requests went to requests-invalid.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["scored"] = "scored"
    model_name: str
    bucket_start: AwareDatetime
    first_event: AwareDatetime
    last_event: AwareDatetime
    serving_version: str
    challenger_version: str | None = None
    scored: int = Field(ge=0)
    failed: int = Field(0, ge=0)
    variants: dict[Variant, dict[str, Any]] = Field(default_factory=dict)
    features: dict[str, Any] = Field(default_factory=dict)
    reference: dict[str, Any] = Field(default_factory=dict)


class RequestCounted(BaseModel):
    """One request that left through requests-invalid or requests-throttled at intake."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["rejected", "throttled"]
    timestamp: AwareDatetime


class JoinedOutcome(BaseModel):
    """An outcome matched with the prediction it belongs to (the A/B conversion signal)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    kind: Literal["outcome"] = "outcome"
    timestamp: AwareDatetime
    request_id: str
    variant: Variant
    model_version: str
    converted: Literal[0, 1]
    # The versions the prediction was scored under: the A/B experiment it belongs to
    # (None in outcomes joined before exposures carried them).
    serving_version: str | None = None
    challenger_version: str | None = None


class ExposureRecord(BaseModel):
    """The A/B join's copy of a delivered prediction (the app's internal exposures topic,
    key request_id): its variant and version, the version pair it was scored under and
    its event time."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    request_id: str
    variant: Variant
    model_version: str
    serving_version: str
    challenger_version: str | None = None
    timestamp: AwareDatetime | None = None


class SilenceTick(BaseModel):
    """A beat of the worker's wall clock, sent while the model's partition is owned.

    It carries no time of its own: the fold reads the time of its record (the Kafka
    timestamp, stamped by the worker that sent it) as its partition's clock, and closes
    the open windows of an input that has been silent for longer than a window plus the
    grace (``stream_app/monitoring/silence.py``).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["tick"] = "tick"


MonitorEvent = Annotated[
    BatchSummary | RequestCounted | JoinedOutcome | SilenceTick, Field(discriminator="kind")
]

# ``MONITOR_EVENT.validate_json(raw)`` -> the right model by ``kind``.
MONITOR_EVENT: TypeAdapter[BatchSummary | RequestCounted | JoinedOutcome | SilenceTick] = (
    TypeAdapter(MonitorEvent)
)
