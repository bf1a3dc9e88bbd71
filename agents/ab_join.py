"""The outcome join: exposures + outcomes -> JoinedOutcome on monitor-events.

An exposure is the app's own copy of a delivered prediction (the internal exposures
topic, written by intake), never a record of the public predictions topic, where anyone
allowed to write could add predictions of their choosing. Both topics are keyed by
request_id and co-partitioned, so one agent reads them (and the internal
outcomes-rekeyed topic) and the batch driver keeps one table row per
request_id on the event's own partition, folded with
:func:`~stream_app.monitoring.ab_join.join_fold` at the partition's event-time clock.
An outcome stamped more than ``STREAM_MAX_EVENT_TIME_AHEAD_SECONDS`` after it reached
the broker goes to requests-invalid as ``timestamp_ahead``. An outcome with a missing or
wrong key, or on another partition than its request_id hashes to, is re-sent once
through outcomes-rekeyed to the right partition, keeping its Kafka timestamp. An entry
not written for a TTL is expired by the driver: a waiting outcome then goes to
requests-invalid as ``unknown_outcome``. The first outcome of a request counts; a later
one that says otherwise goes to requests-invalid as ``conflicting_outcome``. The rules
are in stream_app.monitoring.ab_join.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from agents.driver import Keyed, Message, SkipLog, StatefulStep, origin_of, received_at
from agents.faust_step import install_step
from schemas.codec import decode, encode
from schemas.events import Rejection
from schemas.monitor import ExposureRecord, JoinedOutcome
from stream_app.app import StreamApp
from stream_app.inference.validate import check_event_time
from stream_app.monitoring.ab_join import (
    Exposure,
    JoinEntry,
    OutcomeJoin,
    Seen,
    join_fold,
    needs_rekey,
    parse_outcome,
)
from stream_app.partitioner import default_partition

__all__ = ["install"]


def install(app: StreamApp) -> None:
    """Declare the join agent and its table ``ab-join``."""
    settings, topics = app.settings, app.kafka_topics
    # Exposures come from the app's own copy of each delivered prediction (intake writes
    # it): a prediction someone else writes to the public topic joins nothing.
    exposures = topics.exposures.get_topic_name()
    outcomes = topics.outcomes.get_topic_name()
    rekeyed = topics.outcomes_rekeyed.get_topic_name()
    invalid = topics.requests_invalid.get_topic_name()
    monitor = topics.monitor_events.get_topic_name()
    model_key = settings.model_name.encode()
    partitions = settings.partitions
    max_ahead = settings.max_event_time_ahead_seconds
    skips = SkipLog("ab-join")
    join = OutcomeJoin(settings.ab_outcome_ttl_seconds)

    def route(record: Any) -> Keyed[Seen] | Sequence[Message]:
        message, raw = record.message, bytes(record.value or b"")
        if message.topic == exposures:
            seen = _prediction(raw, message.partition, message.timestamp)
            if seen is None:
                skips.skip("undecodable prediction")
                return ()
            where, offset = origin_of(record)
            return Keyed(seen.request_id.encode(), seen, where, offset)
        outcome = parse_outcome(raw)
        if not isinstance(outcome, Rejection):
            # An outcome stamped ahead of its arrival would stop the join's clock.
            ahead = check_event_time(outcome, raw, received_at(message.timestamp),
                                     max_ahead_seconds=max_ahead)  # fmt: skip
            outcome = ahead or outcome
        if isinstance(outcome, Rejection):
            # requests-invalid is keyed by client_id or null; outcomes carry no client_id.
            return (Message(invalid, None, encode(outcome)),)
        key = outcome.request_id.encode()
        # What travels on and waits in the table is the outcome's own fields, re-encoded:
        # extras a producer added (personal data among them) stay behind.
        own = encode(outcome)
        # An outcome read back from outcomes-rekeyed was placed by us: never bounce it again.
        # The copy keeps the original's Kafka timestamp, the time it arrived.
        if message.topic == outcomes and needs_rekey(
            record.key, message.partition, outcome.request_id, partitions
        ):
            to = default_partition(key, partitions)
            return (Message(rekeyed, key, own, partition=to, timestamp=message.timestamp),)
        seen = Seen(outcome.request_id, message.partition, outcome=outcome, raw=own)
        where, offset = origin_of(record)
        return Keyed(key, seen, where, offset)

    async def emit(results: Sequence[JoinedOutcome | Rejection]) -> list[list[Message]]:
        return [
            [Message(invalid, None, encode(r))]
            if isinstance(r, Rejection)
            else [Message(monitor, model_key, encode(r))]
            for r in results
        ]

    step = StatefulStep(
        name="ab-join", table="ab-join", route=route, fold=join_fold(join),
        load=JoinEntry.from_dict, dump=JoinEntry.to_dict, emit=emit, skips=skips,
        clock=lambda record, seen: seen.at, expire_after=join.ttl_seconds,
    )  # fmt: skip
    install_step(app, step, [exposures, outcomes, rekeyed])


def _prediction(raw: bytes, partition: int, kafka_time: float | None) -> Seen | None:
    """What the join keeps of an exposure; its event time is its own, else Kafka's."""
    try:
        p = decode(raw, ExposureRecord)
    except ValidationError:
        return None
    at = p.timestamp.timestamp() if p.timestamp is not None else float(kafka_time or 0.0)
    exposure = Exposure(p.variant, p.model_version, at, p.serving_version, p.challenger_version)
    return Seen(p.request_id, partition, exposure=exposure)
