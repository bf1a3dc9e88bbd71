"""`stream-app gate BUNDLE`: the pre-deploy gate as a dry run, for CI before a release.

The same gate ``registry promote`` runs (``registry_io.run_gate``, DEFAULT_GATE with
``--gate-config`` over it), on a bundle directory anywhere on disk. It never writes to
the registry: ``--baseline VERSION`` only reads it, to compare with a registered version
of the bundle's model. Exit code 0: the gate passed; 1: it failed; 2: it could not run
(an unreadable bundle or validation set, an unknown version, no broker).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from aiokafka.errors import KafkaError

from stream_app.bundle_kafka import open_bundle_store
from stream_app.commands.registry import bundle_policy
from stream_app.commands.registry_io import gate_lines, load_gate_config, run_gate
from stream_app.config import load_settings
from stream_app.errors import StreamAppError
from stream_app.lifecycle.bundle import Bundle, load_bundle
from stream_app.lifecycle.bundle_source import load_registered
from stream_app.registry_kafka import open_registry

__all__ = ["GateNotRun", "gate"]


class GateNotRun(click.ClickException):
    """The gate could not run at all: exit code 2, apart from a failed gate's 1."""

    exit_code = 2


@click.command()
@click.argument(
    "bundle_dir", metavar="BUNDLE", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--validation",
    "source",
    required=True,
    metavar="demo:SEED|FILE.npz",
    help="demo:SEED: the demo's validation set drawn with that seed; or a .npz file with "
    "the array X (rows of features, in the bundle's feature order) and y (0/1 labels).",
)
@click.option(
    "--baseline",
    metavar="VERSION",
    help="A registered version of the bundle's model to compare with (the no-regression "
    "check); the registry is read, never written.",
)
@click.option(
    "--gate-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object of gate settings over the defaults.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the gate report as JSON.")
@click.pass_context
def gate(
    ctx: click.Context,
    bundle_dir: Path,
    source: str,
    baseline: str | None,
    gate_config: Path | None,
    as_json: bool,
) -> None:
    """Dry-run the pre-deploy gate on a bundle; registers nothing.

    BUNDLE is a bundle directory anywhere on disk.
    Exit code 0 when the gate passes, 1 when it fails, 2 when it cannot run.
    """
    try:
        settings = load_settings()
        policy = bundle_policy(settings)
        bundle = load_bundle(
            bundle_dir.resolve(),
            signing_key=policy.signing_key,
            allow_unverified=policy.allow_unsigned,
        )
        for note in bundle.warnings:
            click.echo(f"warning: {note}", err=True)
        against = None if baseline is None else _registered(bundle, baseline)
        overrides = load_gate_config(gate_config) if gate_config else None
        report = run_gate(bundle, source, baseline=against, overrides=overrides)
    except (StreamAppError, OSError, KafkaError) as exc:
        raise GateNotRun(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(f"gate for {bundle.name} {bundle.version}" + (
            f" against {baseline}" if baseline else ""))  # fmt: skip
        click.echo("\n".join(gate_lines(report)))
    ctx.exit(0 if report.passed else 1)


def _registered(bundle: Bundle, version: str) -> Bundle:
    """The registered ``version`` of the bundle's model, loaded as a worker would load it."""
    settings = load_settings()
    registry = open_registry(settings)
    found = registry.get(bundle.name, version)
    # A version in the bundle topic is fetched into the bundle root, as a worker does.
    return load_registered(found, bundle_policy(settings), open_bundle_store(settings))
