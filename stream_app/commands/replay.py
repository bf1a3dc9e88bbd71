"""`stream-app replay requests-invalid`: re-send dead letters once upstream is fixed.

Every Rejection on requests-invalid keeps the original bytes of what was refused. The
command re-sends those of one reason that arrived since a time to prediction-requests,
each at most once: a marker per dead letter goes to the compacted topic
``<requests-invalid>-replayed`` in the same Kafka transaction as the re-sent request,
so both are written or neither, whichever machine the command runs on. The
transactional id is one per topic, so a second replay started meanwhile fences the
first before it reads the markers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from aiokafka import AIOKafkaProducer

from schemas.events import Rejection
from stream_app.commands.replay_plan import (
    REPLAYABLE_REASONS,
    ReplayCount,
    judge,
    marker_key,
    parse_since,
)
from stream_app.commands.topic_io import (
    one_line_errors,
    open_consumer,
    open_producer,
    read_to_end,
    run,
    topic_partitions,
)
from stream_app.config import Settings, load_settings
from stream_app.errors import ConfigError
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.kafka_auth import client_security
from stream_app.topics import REPLAYED_SPEC, replayed_topic_name, topic_names

__all__ = ["replay"]

# Dead letters re-sent per transaction: a crash loses at most one open transaction,
# which the broker aborts, and the next run sends those again.
_PER_TRANSACTION = 500


@click.command()
@click.argument("source", type=click.Choice(["requests-invalid"]))
@click.option(
    "--reason",
    required=True,
    type=click.Choice(REPLAYABLE_REASONS),
    help="Only dead letters refused for this reason.",
)
@click.option(
    "--since",
    required=True,
    metavar="TIME",
    help="Only dead letters that reached requests-invalid at or after TIME: an ISO time "
    "(UTC unless it names a zone) or a duration back from now (90m, 6h, 2d).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be sent; send nothing.")
@one_line_errors
def replay(source: str, reason: str, since: str, dry_run: bool) -> None:
    """Re-send dead letters of requests-invalid to the requests, each once.

    Prints how many were sent and how many were not, and why: already replayed,
    another reason, before --since, an outcome's (outcomes are never re-sent as
    requests), not a Rejection.
    """
    try:
        since_at = parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    settings = load_settings()
    count = run(_replay(settings, reason, int(since_at.timestamp() * 1000), dry_run))
    click.echo("\n".join(count.lines(dry_run=dry_run)))


async def _replay(settings: Settings, reason: str, since_ms: int, dry_run: bool) -> ReplayCount:
    names = topic_names(settings)
    invalid, markers = names["requests_invalid"], replayed_topic_name(settings)
    await topic_partitions(settings, invalid, names["prediction_requests"])
    producer = None if dry_run else await _writer(settings, markers)
    count = ReplayCount()
    try:
        replayed = await _replayed(settings, markers)
        consumer = open_consumer(settings)
        await consumer.start()
        try:
            pending: list[tuple[str, Rejection]] = []
            async for record in read_to_end(settings, consumer, invalid):
                marker = marker_key(record.partition, record.offset, record.timestamp_ms)
                fate, rejection = judge(
                    record.value, record.timestamp_ms, marker, reason=reason,
                    since_ms=since_ms, replayed=replayed,
                )  # fmt: skip
                count.fates[fate] += 1
                if fate == "sent" and producer is not None and rejection is not None:
                    pending.append((marker, rejection))
                    if len(pending) >= _PER_TRANSACTION:
                        await _resend(producer, names["prediction_requests"], markers, pending)
            if producer is not None:
                await _resend(producer, names["prediction_requests"], markers, pending)
        finally:
            await consumer.stop()
    finally:
        if producer is not None:
            await producer.stop()
    return count


async def _writer(settings: Settings, markers: str) -> AIOKafkaProducer:
    """The transactional producer; started before the markers are read, so a replay
    running meanwhile is fenced first and its open transaction aborted."""
    request = TopicRequest(markers, 1, settings.replication_factor, REPLAYED_SPEC.config)
    await ensure_topics(settings.bootstrap_servers, [request], security=client_security(settings))
    producer = open_producer(settings, transactional_id=f"{markers}-writer")
    await producer.start()
    return producer


async def _replayed(settings: Settings, markers: str) -> set[str]:
    """The markers of every dead letter replayed so far (none when the topic is new)."""
    try:
        await topic_partitions(settings, markers)
    except ConfigError:
        return set()  # a dry run before any replay: the topic is not made yet
    consumer = open_consumer(settings)
    await consumer.start()
    found: set[str] = set()
    try:
        async for record in read_to_end(settings, consumer, markers):
            key = (record.key or b"").decode("utf-8", "replace")
            if record.value:
                found.add(key)
            else:  # a tombstone: someone asked for this dead letter to be replayable again
                found.discard(key)
    finally:
        await consumer.stop()
    return found


async def _resend(
    producer: AIOKafkaProducer,
    requests: str,
    markers: str,
    pending: list[tuple[str, Rejection]],
) -> None:
    """Each request with its marker, in one transaction; ``pending`` is emptied."""
    if not pending:
        return
    at = datetime.now(UTC).isoformat()
    async with producer.transaction():
        for marker, rejection in pending:
            key = rejection.client_id.encode() if rejection.client_id else None
            await producer.send(requests, rejection.raw, key=key)
            await producer.send(markers, _marker_value(rejection, at), key=marker.encode())
    pending.clear()


def _marker_value(rejection: Rejection, at: str) -> bytes:
    # Ids and the reason only: the request's bytes stay in the two topics that hold them.
    fields: dict[str, str | None] = {
        "request_id": rejection.request_id,
        "reason": rejection.reason,
        "replayed_at": at,
    }
    return json.dumps(fields, sort_keys=True).encode()
