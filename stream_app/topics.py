"""Every topic of the app on one screen; names come from Settings (``STREAM_TOPIC_*``).

Values travel as raw bytes: agents decode them with the ``schemas`` models and encode
with ``schemas.codec``, so a malformed message reaches the agent (intake turns it into a
Rejection) instead of failing inside Faust's deserialiser. ``schemas.contracts.CONTRACTS``
maps each attribute below to the model of its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_app.app import StreamApp
    from stream_app.config import Settings

__all__ = [
    "INTERNAL_SPECS",
    "MAX_MESSAGE_BYTES",
    "REPLAYED_SPEC",
    "REQUEST_MAX_BYTES",
    "SPECS",
    "TIMESTAMP_TYPE",
    "TopicSpec",
    "Topics",
    "declare_topics",
    "internal_topic_names",
    "replayed_topic_name",
    "topic_config",
    "topic_names",
]

# The registry is the history of which model served when: never compacted, never expired.
_KEEP_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
# A request may be up to 1 MiB (validate.DEFAULT_MAX_BYTES). The request topic takes up to
# 3 MiB, so an oversize request up to that size reaches intake and is refused there with a
# reason instead of failing at the producer. Its Rejection keeps the bytes in base64 (4/3
# larger, 4 MiB), and a throttled or logged request carries its body re-encoded, so the
# topics that carry request bodies take up to 5 MiB; the app's producer allows that too.
REQUEST_MAX_BYTES = 3 * 1024 * 1024
MAX_MESSAGE_BYTES = 5 * 1024 * 1024
_BODIES = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
# The bundle store: a chunk's key is the digest of its bytes and a manifest's the bundle's
# digest, so compaction keeps one record per key and loses nothing a reader needs.
_COMPACTED = {"cleanup.policy": "compact"}
# The inputs that producers outside the app write: the broker stamps each message with its
# own time when it appends it, so a Kafka timestamp is a time no producer chose. The rate
# limit runs on it and every payload timestamp is checked against it.
TIMESTAMP_TYPE = "message.timestamp.type"
_ARRIVAL = {TIMESTAMP_TYPE: "LogAppendTime"}
_REQUESTS = {"max.message.bytes": str(REQUEST_MAX_BYTES), **_ARRIVAL}


@dataclass(frozen=True)
class TopicSpec:
    """One topic: ``attr`` on Topics (its name is Settings' ``topic_<attr>``), key, value."""

    attr: str
    key: str
    value: str
    config: Mapping[str, str] = field(default_factory=dict)
    partitions: int | None = None  # None: Settings.partitions (co-partitioned with requests)


SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "prediction_requests", "client_id", "PredictionRequest JSON, from upstream", _REQUESTS
    ),
    TopicSpec(
        "requests_invalid", "client_id or null", "Rejection: raw bytes, reason, errors", _BODIES
    ),
    TopicSpec("requests_throttled", "client_id", "ThrottledRequest: retry_after_seconds", _BODIES),
    TopicSpec("predictions", "request_id", "Prediction: variant, model, score, latency"),
    TopicSpec("prediction_logs", "request_id", "PredictionLog, PII scrubbed", _BODIES),
    TopicSpec("outcomes", "request_id", "Outcome: converted 0/1, from upstream", _ARRIVAL),
    TopicSpec(
        "service_metrics",
        "service name",
        "ServiceMetrics, upstream and ours (AppServiceMetrics)",
        _ARRIVAL,
    ),
    TopicSpec("drift_reports", "model name", "DriftReportMessage: one closed window's verdicts"),
    TopicSpec("ab_reports", "model name", "ABReportMessage: one closed interval's comparison"),
    TopicSpec("alerts", "alert fingerprint", "AlertMessage: firing/escalated/deescalated/resolved"),
    # One partition: the registry is one ordered log that every worker reads whole.
    TopicSpec("model_registry", "model name", "RegistryEventMessage", _KEEP_FOREVER, partitions=1),
    # One partition: a reader scans it whole for the keys of one bundle.
    TopicSpec(
        "model_bundles",
        "chunk:<sha256> or bundle:<digest>",
        "bundle chunks and manifests",
        _COMPACTED,
        partitions=1,
    ),  # fmt: skip
)

# The app's own topics between its agents, named "<prefix><app_id>-<name>" like Faust's
# changelogs, so two apps on one cluster never share them.
INTERNAL_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("requests_rekeyed", "client_id", "request bytes whose key was missing or wrong",
              _BODIES),
    TopicSpec("monitor_events", "model name", "MonitorEvent JSON: batch summaries, counts, ticks"),
    TopicSpec("metrics_rekeyed", "service name",
              "ServiceMetrics whose key was missing or on the wrong partition"),
    TopicSpec("outcomes_rekeyed", "request_id", "outcome bytes whose key or partition was wrong"),
    # The A/B join's exposures come from here, never from the public predictions topic,
    # which anyone who may write to it could fill with predictions of their choosing.
    TopicSpec("exposures", "request_id", "ExposureRecord: a delivered prediction's variant, pair"),
)  # fmt: skip


# What `stream-app replay` re-sent from requests-invalid, one record per dead letter, so
# each is re-sent at most once by any operator on any machine. Compacted: a dead letter
# replayed is one key forever. Not a worker's topic: the command creates it on first use.
REPLAYED_SPEC = TopicSpec(
    "requests_replayed", "<partition>:<offset>:<timestamp ms> of the dead letter",
    "replay marker JSON: request_id, reason, replayed_at", _COMPACTED, partitions=1,
)  # fmt: skip


@dataclass(frozen=True)
class Topics:
    """The app's Faust topics (``faust.TopicT``), one attribute per SPECS entry."""

    prediction_requests: Any
    requests_invalid: Any
    requests_throttled: Any
    predictions: Any
    prediction_logs: Any
    outcomes: Any
    service_metrics: Any
    drift_reports: Any
    ab_reports: Any
    alerts: Any
    model_registry: Any
    model_bundles: Any
    requests_rekeyed: Any
    monitor_events: Any
    metrics_rekeyed: Any
    outcomes_rekeyed: Any
    exposures: Any


def topic_names(settings: Settings) -> dict[str, str]:
    """``attr -> topic name`` for every topic, from the settings (prefix included).

    Example:
        >>> from stream_app.config import load_settings
        >>> topic_names(load_settings({}))["predictions"]
        'predictions'
        >>> topic_names(load_settings({"STREAM_TOPIC_PREFIX": "staging."}))["alerts"]
        'staging.alerts'
    """
    prefix = settings.topic_prefix
    return {spec.attr: prefix + getattr(settings, f"topic_{spec.attr}") for spec in SPECS}


def internal_topic_names(settings: Settings) -> dict[str, str]:
    """``attr -> topic name`` for the app's internal topics.

    Example:
        >>> from stream_app.config import load_settings
        >>> internal_topic_names(load_settings({}, app_id="w1"))["requests_rekeyed"]
        'w1-requests-rekeyed'
    """
    base = f"{settings.topic_prefix}{settings.app_id}-"
    return {spec.attr: base + spec.attr.replace("_", "-") for spec in INTERNAL_SPECS}


def replayed_topic_name(settings: Settings) -> str:
    """The replay markers' topic: requests-invalid's name with ``-replayed``.

    Example:
        >>> from stream_app.config import load_settings
        >>> replayed_topic_name(load_settings({"STREAM_TOPIC_PREFIX": "s."}))
        's.requests-invalid-replayed'
    """
    return topic_names(settings)["requests_invalid"] + "-replayed"


def declare_topics(app: StreamApp) -> Topics:
    """Create the Faust topics on ``app``; the app creates them on the broker at start."""
    names = {**topic_names(app.settings), **internal_topic_names(app.settings)}
    made = {
        spec.attr: app.declared_topic(
            names[spec.attr], config=topic_config(spec, app.settings), partitions=spec.partitions
        )
        for spec in (*SPECS, *INTERNAL_SPECS)
    }
    return Topics(**made)


def topic_config(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    """The config a topic is created with: its spec's, and for requests-invalid, which
    keeps refused messages' raw bytes, a retention of ``STREAM_INVALID_RETENTION_HOURS``.

    Example:
        >>> from stream_app.config import load_settings
        >>> invalid = next(s for s in SPECS if s.attr == "requests_invalid")
        >>> topic_config(invalid, load_settings({}))["retention.ms"]
        '259200000'
    """
    config = dict(spec.config)
    if spec.attr == "requests_invalid":
        config["retention.ms"] = str(int(settings.invalid_retention_hours * 3_600_000))
    return config
