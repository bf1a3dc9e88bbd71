"""`stream-app registry ...`: register, list, pick, promote and roll back model versions.

Every command reads and writes the model-registry topic (``KafkaRegistryStore``), the
log every worker follows; ``register`` records the bundle where ``STREAM_BUNDLE_STORE``
says (its directory under the root, or uploaded to the bundle topic). With
``STREAM_REGISTRY_SIGNING_KEY`` every event written is signed, and events that do not
verify are left out as the workers leave them out.
``promote`` runs the pre-deploy gate on a validation set first and refuses a failing
gate (exit code 1). ``keygen`` makes the key pair. ``--json`` prints JSON for scripts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from stream_app.bundle_kafka import open_bundle_store
from stream_app.commands.registry_io import (
    gate_lines,
    load_gate_config,
    parse_expected,
    parse_tags,
    register_bundle,
    run_gate,
)
from stream_app.config import Settings, load_settings
from stream_app.errors import PromotionRefusedError, RegistryError, StreamAppError
from stream_app.lifecycle.bundle import load_bundle
from stream_app.lifecycle.bundle_source import BundlePolicy, check_location, load_registered
from stream_app.lifecycle.bundle_store import BundleStore, DirectoryBundleStore
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.registry_json import change_dict, version_dict
from stream_app.lifecycle.registry_signing import gate_digest, generate_key_pair
from stream_app.lifecycle.serving_choice import CHALLENGER_TAG, choose_challenger
from stream_app.registry_kafka import open_registry

__all__ = ["registry"]

F = TypeVar("F", bound=Callable[..., Any])

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _one_line_errors(command: F) -> F:
    # A refusal or a missing broker is a sentence for the operator, not a traceback.
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (StreamAppError, OSError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


SIGNING_FILE = "registry-signing.pem"
VERIFY_FILE = "registry-verify.pem"


def _open(*, writes: bool = False) -> tuple[ModelRegistry, BundlePolicy]:
    settings = load_settings()
    if writes and settings.registry_signing_key is None:
        click.echo(
            "warning: STREAM_REGISTRY_SIGNING_KEY is not set: this event is unsigned, and "
            "workers with STREAM_REGISTRY_VERIFY_KEY refuse it",
            err=True,
        )
    return open_registry(settings), bundle_policy(settings)


def upload_store(settings: Settings) -> BundleStore:
    """Where ``register`` puts bundles: STREAM_BUNDLE_STORE's choice."""
    if settings.bundle_store == "kafka":
        return open_bundle_store(settings)
    return DirectoryBundleStore(settings.bundle_root)


def bundle_policy(settings: Settings) -> BundlePolicy:
    """What the commands accept as a bundle: the same as a worker with these settings."""
    return BundlePolicy(
        settings.bundle_root, settings.bundle_signing_key_bytes, settings.allow_unsigned_bundles
    )


def _emit(as_json: bool, data: Any, lines: Sequence[str]) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else "\n".join(lines))


@click.group()
def registry() -> None:
    """The model registry on the model-registry topic (STREAM_ settings pick the broker)."""


@registry.command()
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--challenger", is_flag=True, help="Tag it role=challenger (served as variant B).")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="A tag; repeat for more.")
@_json_option
@_one_line_errors
def register(bundle_dir: Path, challenger: bool, tags: tuple[str, ...], as_json: bool) -> None:
    """Verify the bundle at BUNDLE_DIR, store it and register its name, version and metrics.

    With STREAM_BUNDLE_STORE=directory the bundle must lie under STREAM_BUNDLE_ROOT and is
    registered by its path; with kafka it is uploaded to the bundle topic from anywhere and
    registered as kafka:<digest>, which every worker can fetch.
    """
    reg, policy = _open(writes=True)
    settings = load_settings()
    directory = bundle_dir.resolve()
    if settings.bundle_store == "directory":
        directory = check_location(str(directory), policy.root)
    bundle = load_bundle(
        directory, signing_key=policy.signing_key, allow_unverified=policy.allow_unsigned
    )
    for note in bundle.warnings:
        click.echo(f"warning: {note}", err=True)
    stored = upload_store(settings).put(directory)
    if stored.digest != bundle.digest:
        raise RegistryError(f"{directory} changed while it was stored; register it again")
    labels = parse_tags(tags)
    if challenger:
        tag_key, tag_value = CHALLENGER_TAG
        if labels.get(tag_key, tag_value) != tag_value:
            raise RegistryError(f"--challenger sets {tag_key}={tag_value}; --tag says otherwise")
        labels[tag_key] = tag_value
    registered = register_bundle(reg, bundle, labels, location=stored.location)
    tagged = ", ".join(f"{k}={v}" for k, v in sorted(registered.tags.items())) or "no tags"
    line = f"registered {registered.name} {registered.version} ({tagged}) from {registered.path}"
    _emit(as_json, version_dict(registered), [line])


@registry.command("list")
@click.argument("name", required=False)
@_json_option
@_one_line_errors
def list_(name: str | None, as_json: bool) -> None:
    """The models, or the versions of NAME with production (*) and challenger (B)."""
    reg, _ = _open()
    if name is None:
        rows = [
            {"name": n, "versions": len(reg.versions(n)), "production": reg.production(n)}
            for n in reg.models()
        ]
        lines = [f"{r['name']}: {r['versions']} versions, production {r['production']}"
                 for r in rows]  # fmt: skip
        _emit(as_json, rows, lines or ["no models registered"])
        return
    record = reg.state.models.get(name)
    if record is None:
        raise RegistryError(f"unknown model {name!r}")
    challenger = choose_challenger(record)
    versions = [reg.get(name, v) for v in reg.versions(name)]
    lines = []
    for v in versions:
        mark = "*" if v.version == record.production else "B" if v is challenger else " "
        metrics = " ".join(f"{k}={m:.4g}" for k, m in sorted(v.metrics.items()))
        lines.append(f"{mark} {v.version}  {metrics}  {v.path}")
    data = {
        "name": name,
        "production": record.production,
        "challenger": None if challenger is None else challenger.version,
        "versions": [version_dict(v) for v in versions],
    }
    _emit(as_json, data, lines)


@registry.command()
@click.argument("name")
@click.option("--metric", required=True, help="Metric name, e.g. roc_auc.")
@_json_option
@_one_line_errors
def best(name: str, metric: str, as_json: bool) -> None:
    """The version of NAME with the best METRIC (its registered direction decides)."""
    reg, _ = _open()
    found = reg.best(name, metric)
    if found is None:
        raise RegistryError(f"no version of {name!r} has the metric {metric!r}")
    value = found.metrics[metric]
    _emit(as_json, version_dict(found), [f"{found.version}  {metric}={value:.6g}"])


@registry.command()
@click.argument("name")
@click.argument("version")
@click.option(
    "--expected-current",
    required=True,
    metavar="V|none",
    help="The production version you expect now (none: no production yet).",
)
@click.option(
    "--validation",
    "source",
    required=True,
    metavar="SOURCE",
    help="demo:SEED (demo users) or a .npz file with arrays X and y.",
)
@click.option(
    "--gate-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object of gate settings over the defaults.",
)
@_json_option
@_one_line_errors
def promote(name: str, version: str, expected_current: str, source: str,
            gate_config: Path | None, as_json: bool) -> None:  # fmt: skip
    """Make VERSION of NAME production if the gate passes and production is as expected."""
    reg, policy = _open(writes=True)
    expected = parse_expected(expected_current)
    if reg.production(name) != expected:
        raise PromotionRefusedError(
            f"production of {name!r} is {reg.production(name)!r}, you expected {expected!r}"
        )
    # A version in the bundle topic is fetched into the bundle root, as a worker does.
    store = open_bundle_store(load_settings())
    bundle = load_registered(reg.get(name, version), policy, store)
    baseline = (
        None
        if expected in (None, version)
        else load_registered(reg.get(name, expected), policy, store)
    )
    overrides = load_gate_config(gate_config) if gate_config else None
    report = run_gate(bundle, source, baseline=baseline, overrides=overrides)
    if not report.passed:
        _emit(as_json, report.to_dict(), gate_lines(report))
        raise PromotionRefusedError(f"the gate did not pass ({', '.join(report.failed)})")
    change = reg.promote(name, version, expected_current=expected, gate_report=report)
    digest = gate_digest(report)
    lines = [*gate_lines(report), f"promoted {name} {change.version} (was {change.previous})"]
    lines.append(f"gate report digest {digest}")
    data = {"change": change_dict(change), "gate": report.to_dict(), "gate_digest": digest}
    _emit(as_json, data, lines)


@registry.command()
@click.argument("name")
@click.option("--expected-current", metavar="V", help="Refuse unless V is production now.")
@_json_option
@_one_line_errors
def rollback(name: str, expected_current: str | None, as_json: bool) -> None:
    """Return NAME to the production version before the last promotion in effect."""
    reg, _ = _open(writes=True)
    change = reg.rollback(name, expected_current=expected_current)
    line = f"rolled back {name}: {change.previous} -> {change.version}"
    _emit(as_json, change_dict(change), [line])


@registry.command()
@click.argument("name")
@_json_option
@_one_line_errors
def history(name: str, as_json: bool) -> None:
    """Every promotion and rollback of NAME, oldest first."""
    reg, _ = _open()
    changes = reg.history(name)
    lines = [f"{c.at.isoformat()}  {c.kind:<11} {c.version}  (was {c.previous})" for c in changes]
    _emit(as_json, [change_dict(c) for c in changes], lines or [f"{name}: never promoted"])


@registry.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_one_line_errors
def keygen(directory: Path) -> None:
    """Write a new Ed25519 key pair for registry events into DIRECTORY.

    registry-signing.pem (private, mode 0600) goes to whoever runs `stream-app registry`
    (STREAM_REGISTRY_SIGNING_KEY); registry-verify.pem to every worker
    (STREAM_REGISTRY_VERIFY_KEY). Existing files are never overwritten.
    """
    private, public = generate_key_pair()
    directory.mkdir(parents=True, exist_ok=True)
    signing, verify = directory / SIGNING_FILE, directory / VERIFY_FILE
    for path in (signing, verify):
        if path.exists():
            raise RegistryError(f"{path} exists; keys are never overwritten")
    fd = os.open(signing, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    verify.write_bytes(public)
    click.echo(f"STREAM_REGISTRY_SIGNING_KEY={signing.resolve()}")
    click.echo(f"STREAM_REGISTRY_VERIFY_KEY={verify.resolve()}")
