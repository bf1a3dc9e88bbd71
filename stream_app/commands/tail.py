"""`stream-app tail TOPIC`: read one of the app's topics, one line per message.

TOPIC is a short name (``predictions``, ``requests-invalid``, ...: the topics of
stream_app/topics.py SPECS, under STREAM_TOPIC_PREFIX). The command joins no consumer
group and commits nothing, so it never moves a worker's position.
"""

from __future__ import annotations

import json

import click

from stream_app.commands.topic_io import (
    KafkaRecord,
    one_line_errors,
    open_consumer,
    read_to_end,
    resolve_topic,
    run,
    topic_name,
)
from stream_app.commands.topic_view import decode_for_topic, message_line
from stream_app.config import Settings, load_settings

__all__ = ["tail"]


@click.command()
@click.argument("topic", metavar="TOPIC")
@click.option("--from-beginning", is_flag=True, help="Every message kept, not the last ones.")
@click.option(
    "-n",
    "--lines",
    "last",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Without --from-beginning: start this many offsets before the end of each "
    "partition (fewer messages where transaction markers take offsets).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep reading new messages (Ctrl-C ends).")
@click.option("--json", "as_json", is_flag=True, help="Print each message as one JSON object.")
@click.option("--key", metavar="K", help="Only the messages whose key is K.")
@one_line_errors
def tail(
    topic: str, from_beginning: bool, last: int, follow: bool, as_json: bool, key: str | None
) -> None:
    """Print the messages of TOPIC, one line each (--follow: keep reading).

    Stops at the end of the topic unless --follow.
    TOPIC is one of: prediction-requests, requests-invalid, requests-throttled,
    predictions, prediction-logs, outcomes, service-metrics, drift-reports, ab-reports,
    alerts, model-registry, model-bundles. A line shows the broker's time (UTC),
    partition:offset, key and the fields worth a glance (ids, never a request's personal
    fields); --json prints the decoded value whole instead.
    """
    short = resolve_topic(topic).replace("_", "-")
    settings = load_settings()
    run(_tail(settings, short, None if from_beginning else last, follow, as_json, key))


async def _tail(
    settings: Settings, short: str, last: int | None, follow: bool, as_json: bool, key: str | None
) -> None:
    wanted = None if key is None else key.encode()
    consumer = open_consumer(settings)
    await consumer.start()
    try:
        async for record in read_to_end(
            settings, consumer, topic_name(settings, short), last=last, follow=follow
        ):
            if wanted is None or record.key == wanted:
                click.echo(_line(short, record, as_json))
    finally:
        await consumer.stop()


def _line(short: str, record: KafkaRecord, as_json: bool) -> str:
    data = decode_for_topic(short, record.value)
    if not as_json:
        return message_line(
            short, partition=record.partition, offset=record.offset,
            timestamp_ms=record.timestamp_ms, key=record.key, data=data,
        )  # fmt: skip
    shown = {
        "topic": short,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "value": data,
    }
    return json.dumps(shown, sort_keys=True)
