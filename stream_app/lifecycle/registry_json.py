"""JSON forms of registry records, for the /registry page and the registry commands.

Example:
    >>> from datetime import UTC, datetime
    >>> from stream_app.lifecycle.registry_state import RegistryEvent, fold
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> state = fold([RegistryEvent("registered", "m", "1.0.0", at, {"path": "m/1"}),
    ...               RegistryEvent("promoted", "m", "1.0.0", at, {"previous": None})])
    >>> summary = record_summary(state.models["m"])
    >>> summary["versions"][0]["path"], summary["history"][0]["kind"]
    ('m/1', 'promoted')
"""

from __future__ import annotations

from typing import Any

from stream_app.lifecycle.registry_state import (
    ModelRecord,
    ModelVersion,
    ProductionChange,
    semver_key,
)

__all__ = ["change_dict", "record_summary", "version_dict"]


def version_dict(version: ModelVersion) -> dict[str, Any]:
    """JSON form of a registered version."""
    return {
        "name": version.name,
        "version": version.version,
        "metrics": dict(version.metrics),
        "directions": dict(version.directions),
        "tags": dict(version.tags),
        "path": version.path,
        "digest": version.digest,
        "registered_at": version.registered_at.isoformat(),
    }


def change_dict(change: ProductionChange) -> dict[str, Any]:
    """JSON form of a promotion or rollback (the gate summary's verdict only)."""
    return {
        "kind": change.kind,
        "version": change.version,
        "previous": change.previous,
        "at": change.at.isoformat(),
        "gate_passed": None if change.gate is None else change.gate.get("passed"),
    }


def record_summary(record: ModelRecord) -> dict[str, Any]:
    """One model's versions (semantic-version order) and its production history."""
    ordered = sorted(record.versions, key=semver_key)
    return {
        "versions": [version_dict(record.versions[v]) for v in ordered],
        "history": [change_dict(change) for change in record.history],
    }
