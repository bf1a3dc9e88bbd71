"""``stream-app``: the project's command groups, and Faust's CLI for everything else.

``stream-app kafka up`` runs a project group (stream_app/commands/, registered in
``commands.GROUPS``); ``stream-app worker -l info`` and every other Faust command run
Faust's CLI on the app built from the settings.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import click

from stream_app.commands import GROUPS, load_group
from stream_app.config import load_settings
from stream_app.errors import ConfigError

if TYPE_CHECKING:
    from stream_app.app import StreamApp

__all__ = ["main", "run_faust", "top_help"]

_ABOUT = (
    "stream-app serves a scikit-learn model on Kafka: it validates and rate-limits "
    "prediction requests, scores them in micro-batches, watches drift, runs A/B tests, "
    "raises alerts and follows a model registry. Its workers are Faust workers."
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``stream-app`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in GROUPS:
        # A project group needs no Faust app (and no agents imported): run it alone.
        load_group(args[0]).main(args[1:], prog_name=f"stream-app {args[0]}")
        raise SystemExit(0)  # click's main exits itself; this is for the type checker
    try:
        settings = load_settings()
        # Imported only here: Faust takes a second to import, and project groups need none.
        from agents import build_pipeline
        from stream_app.app import create_app

        app = build_pipeline(create_app(settings))  # a TLS file that cannot be read: here
    except ConfigError as exc:
        _refuse(exc)
    run_faust(app, args)


def run_faust(app: StreamApp, argv: Sequence[str]) -> NoReturn:
    """Run Faust's command line (worker, agents, tables, send, ...) for ``app``.

    The project groups are listed in ``--help`` too, so one help shows every command.
    A worker first logs in to Kafka once when TLS or SASL is set: a refused password or
    an untrusted certificate ends it with one line naming the setting (exit code 2).
    """
    from faust.cli.faust import cli  # imported late: it registers Faust's commands

    from stream_app.kafka_auth import check_login

    if argv[:1] == ["worker"] and app.settings.kafka_security_protocol != "PLAINTEXT":
        # A loop of its own: asyncio.run would leave none current for Faust's worker.
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(check_login(app.settings, app.kafka_security))
        except ConfigError as exc:
            _refuse(exc)
        finally:
            loop.close()

    for name in GROUPS:
        # A project command of the same name as Faust's (send) is the one that runs.
        cli.add_command(load_group(name), name)
    cli.help = top_help()  # instead of Faust's generic welcome
    if argv[:1] == ["worker"] and app.settings.log_format == "json":
        # Every line of the worker's output is then a JSON object: no banner (Faust's
        # --quiet), and warnings go through logging instead of straight to stderr.
        argv = ["--quiet", *argv]
        logging.captureWarnings(True)
    sys.argv = ["stream-app", *argv]  # Faust's CLI re-reads sys.argv for -A/--workdir
    app.main()
    raise SystemExit(0)


def top_help() -> str:
    """What ``stream-app --help`` says before the options: the app, then its commands.

    Example:
        >>> top_help().splitlines()[3]
        "The project's commands (no Faust needed; stream-app COMMAND --help for each):"
    """
    lines = [
        _ABOUT,
        "",
        "\b",  # click keeps the lines of a paragraph that starts with \b as they are
        "The project's commands (no Faust needed; stream-app COMMAND --help for each):",
    ]
    lines += [f"  {name:<9} {load_group(name).get_short_help_str(68)}" for name in GROUPS]
    lines += [
        "",
        "\b",
        "Start a worker with: stream-app worker -l info",
        "Faust's commands (worker, agents, tables, ...) are listed below with the project's;",
        "send is the project's, in place of Faust's send to an agent.",
    ]
    return "\n".join(lines)


def _refuse(exc: ConfigError) -> NoReturn:
    click.echo(f"stream-app: {exc}", err=True)
    raise SystemExit(2) from None


if __name__ == "__main__":
    main()
