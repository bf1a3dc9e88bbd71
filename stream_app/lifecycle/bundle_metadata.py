"""The metadata.json document of a bundle: what it must hold, and its canonical bytes."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, get_args

import numpy as np

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.registry_state import Direction

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "MODEL_FILE",
    "REQUIRED_FIELDS",
    "build_metadata",
    "canonical_json",
    "minor_version",
    "parse_metadata",
    "utc_iso",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1

REQUIRED_FIELDS: dict[str, type] = {
    "format_version": int,
    "name": str,
    "version": str,
    "features": list,
    "trained_at": str,
    "created_at": str,
    "python_version": str,
    "numpy_version": str,
    "sklearn_version": str,
    "joblib_version": str,
    "files": dict,
}
# Keys save_bundle computes itself; a caller supplying one would be silently overruled.
_RESERVED = (frozenset(REQUIRED_FIELDS) - {"name", "version", "features", "trained_at"}) | {
    "reference_profile"
}


def utc_iso(moment: datetime) -> str:
    """An aware datetime as ISO-8601 UTC ending in "Z".

    Example:
        >>> from datetime import timedelta, timezone
        >>> utc_iso(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
        '2026-01-01T00:00:00Z'
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_metadata(metadata: Mapping[str, Any], created_at: datetime | None) -> dict[str, Any]:
    """The caller's metadata plus the fields save_bundle vouches for (all but "files").

    ``created_at`` None means now (UTC); trained_at defaults to created_at. An optional
    ``metric_directions`` maps metrics of ``metrics`` to "higher" or "lower" (the
    registry's words: both go to ``ModelRegistry.register`` unchanged).

    Example:
        >>> doc = build_metadata({"name": "m", "version": "1", "features": ["x"]},
        ...                      datetime(2026, 1, 1, tzinfo=UTC))
        >>> doc["trained_at"], doc["format_version"], "sklearn_version" in doc
        ('2026-01-01T00:00:00Z', 1, True)
    """
    missing = [k for k in ("name", "version", "features") if not metadata.get(k)]
    if missing:
        raise ValueError(f"metadata needs {missing}")
    clashing = sorted(_RESERVED & set(metadata))
    if clashing:
        raise ValueError(f"metadata keys {clashing} are computed by save_bundle")
    features = list(metadata["features"])
    if not all(isinstance(f, str) for f in features):
        raise ValueError("metadata 'features' must be a list of strings")
    _check_directions(metadata)
    created = utc_iso(created_at or datetime.now(UTC))
    trained = metadata.get("trained_at", created)
    doc = dict(metadata)
    doc.update(
        format_version=FORMAT_VERSION,
        name=str(metadata["name"]),
        version=str(metadata["version"]),
        features=features,
        trained_at=utc_iso(trained) if isinstance(trained, datetime) else str(trained),
        created_at=created,
        python_version=platform.python_version(),
        numpy_version=importlib_metadata.version("numpy"),
        sklearn_version=importlib_metadata.version("scikit-learn"),
        joblib_version=importlib_metadata.version("joblib"),
    )
    return doc


def _check_directions(metadata: Mapping[str, Any]) -> None:
    """``metric_directions`` speaks the registry's words, so it can be registered as is."""
    directions = metadata.get("metric_directions")
    if directions is None:
        return
    if not isinstance(directions, Mapping):
        raise ValueError("metadata 'metric_directions' must map metric names to 'higher'/'lower'")
    metrics = metadata.get("metrics")
    for metric, direction in directions.items():
        if direction not in get_args(Direction):
            raise ValueError(
                f"metric_directions[{metric!r}] must be 'higher' or 'lower', got {direction!r}"
            )
        if not isinstance(metrics, Mapping) or metric not in metrics:
            raise ValueError(
                f"metric_directions names {metric!r}, but {metric!r} has no value in 'metrics'"
            )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime):
        return utc_iso(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-safe")


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The one byte form of a metadata document, which the signature and digest cover.

    Sorted keys, fixed separators and ASCII: equal documents give equal bytes. NaN and
    infinity are refused (they are not JSON); numpy scalars become plain numbers.

    Example:
        >>> canonical_json({"b": np.float64(0.5), "a": [1, 2]})
        b'{"a":[1,2],"b":0.5}'
    """
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
    )
    return text.encode("ascii")


def parse_metadata(raw: bytes) -> dict[str, Any]:
    """Parse metadata.json bytes and check every required field and file entry.

    Any problem raises BundleIntegrityError naming metadata.json and the field.

    Example:
        >>> try:
        ...     parse_metadata(b'{"name": "m"}')
        ... except BundleIntegrityError as exc:
        ...     print(exc)
        metadata.json: field 'format_version' missing or not int
    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleIntegrityError(f"{METADATA_FILE} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BundleIntegrityError(f"{METADATA_FILE} must hold a JSON object")
    for key, kind in REQUIRED_FIELDS.items():
        if not isinstance(doc.get(key), kind):
            raise BundleIntegrityError(
                f"{METADATA_FILE}: field {key!r} missing or not {kind.__name__}"
            )
    if not doc["name"] or not all(isinstance(f, str) for f in doc["features"]):
        raise BundleIntegrityError(f"{METADATA_FILE}: empty name or non-string feature")
    files = doc["files"]
    if MODEL_FILE not in files:
        raise BundleIntegrityError(f"{METADATA_FILE}: 'files' does not list {MODEL_FILE}")
    for name, digest in files.items():
        # A listed name is opened relative to the bundle: no separators, no "..".
        if Path(name).name != name or name in ("", ".", "..") or not _is_sha256(digest):
            raise BundleIntegrityError(f"{METADATA_FILE}: bad 'files' entry {name!r}")
    return doc


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def minor_version(version: str) -> str:
    """Major.minor of a version string: pickles are compatible within a minor release.

    Example:
        >>> minor_version("1.9.1")
        '1.9'
    """
    return ".".join(version.split(".")[:2])
