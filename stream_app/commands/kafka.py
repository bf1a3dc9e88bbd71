"""``stream-app kafka up|down|status|version|run``: the local broker from the shell;
``stream-app kafka topics``: the app's topics on any broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.errors import StreamAppError

__all__ = ["kafka"]

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(command: F) -> F:
    # A missing java, mvn or a taken port is a sentence for the user, not a traceback.
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StreamAppError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _config() -> localkafka.BrokerConfig:
    return localkafka.broker_config(load_settings())


@click.group()
def kafka() -> None:
    """A real single-node Apache Kafka on 127.0.0.1 (jars cached in .kafka/), and the
    app's topics on the broker of STREAM_BROKER_URL."""


@kafka.command()
@_one_line_errors
def up() -> None:
    """Start the broker unless one answers already; wait until metadata answers."""
    info = localkafka.start(_config())
    click.echo(info.describe())
    if info.pid is not None:
        click.echo("stop it with: make kafka-down (or stream-app kafka down)")


@kafka.command()
@_one_line_errors
def down() -> None:
    """Stop the broker this project started (SIGTERM, then SIGKILL after 30 s)."""
    config = _config()
    if localkafka.stop(config):
        click.echo(f"stopped the local broker on {config.bootstrap}")
        return
    other = localkafka.status(config)
    click.echo(other.describe() + "; left alone" if other else "no local broker runs")


@kafka.command()
@_one_line_errors
def status() -> None:
    """Say what answers on the broker port; exit 1 when nothing does."""
    config = _config()
    info = localkafka.status(config)
    if info is None:
        click.echo(f"no Kafka broker answers on {config.bootstrap}")
        sys.exit(1)
    click.echo(info.describe())


@kafka.command()
def version() -> None:
    """Print the pinned Apache Kafka version."""
    click.echo(localkafka.KAFKA_VERSION)


@kafka.command(context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@_one_line_errors
def run(command: tuple[str, ...]) -> None:
    """Run COMMAND with a broker up; stop the broker after only if this started it.

    The exit code is COMMAND's, so `make test` fails when the tests fail.
    """
    with localkafka.running_broker(_config()) as info:
        click.echo(info.describe(), err=True)
        process = subprocess.Popen(command)  # noqa: S603 - the user's own command line
        try:
            code = process.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the command too; let it finish its cleanup.
            code = process.wait()
    sys.exit(code)


@kafka.command()
@_one_line_errors
def topics() -> None:
    """Create the app's topics that STREAM_BROKER_URL lacks, as a worker does at start.

    For a stack whose producers write before the first worker started (the broker does
    not create topics on demand). Run it again at no cost: existing topics are kept.
    """
    # Imported here: building the app imports Faust, which the other commands never need.
    from agents import build_pipeline
    from stream_app.app import create_app

    app = build_pipeline(create_app(load_settings()))
    created = asyncio.run(app.create_topics())
    click.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
