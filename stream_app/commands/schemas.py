"""`stream-app schemas ...`: the topics' contracts as JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from schemas.contracts import CONTRACTS, json_schema

__all__ = ["export_schemas", "schemas"]


def export_schemas(directory: Path) -> list[Path]:
    """Write ``<short name>.schema.json`` (draft 2020-12) for every topic in CONTRACTS.

    Files are written with sorted keys, so an unchanged contract gives the same bytes.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     written = export_schemas(Path(tmp) / "out")
        ...     sorted(p.name for p in written)[:2]
        ['ab_reports.schema.json', 'alerts.schema.json']
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


@click.group()
def schemas() -> None:
    """The contracts of the topics' messages."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write one JSON Schema file per topic into DIRECTORY (created if absent)."""
    for path in export_schemas(directory):
        click.echo(str(path))
