"""``stream-app demo`` (``make demo``): a seeded day through the whole pipeline, then its report.

Starts the local Kafka if none answers (and leaves it running), trains and registers the
two demo bundles, promotes A through the gate, starts a worker, plays the day and prints
the report; see :mod:`stream_app.demo.run`.
"""

from __future__ import annotations

import click

from stream_app.demo.run import DEFAULT_REQUESTS, DemoOptions, run_demo
from stream_app.errors import StreamAppError

__all__ = ["demo"]


@click.group(invoke_without_command=True)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the day.")
@click.option(
    "--requests",
    "requests",
    default=DEFAULT_REQUESTS,
    show_default=True,
    type=click.IntRange(min=300),
    help="Prediction requests in the day (outcomes and metrics come on top).",
)
@click.option(
    "--keep-worker",
    is_flag=True,
    help="Leave the worker running after the report and print its pages.",
)
@click.option(
    "--timeout",
    default=180.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds to wait for the last outputs after everything is sent.",
)
def demo(seed: int, requests: int, keep_worker: bool, timeout: float) -> None:
    """Play a seeded day of traffic through a fresh worker and print what it found."""
    options = DemoOptions(
        seed=seed, requests=requests, keep_worker=keep_worker, drain_timeout=timeout
    )
    try:
        result = run_demo(options, click.echo)
    except (StreamAppError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
    if not result.drained:
        raise SystemExit(1)
