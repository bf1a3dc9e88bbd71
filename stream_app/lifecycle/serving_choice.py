"""Which registered versions a worker should serve, and whether a loaded bundle is them.

Pure: the registry follower folds the registry log into a ``RegistryState`` and asks
:func:`choose_serving` what to load; after loading it asks :func:`check_loaded` whether
the bundle on disk is the version the registry names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.registry_state import ModelRecord, ModelVersion, RegistryState, semver_key

__all__ = ["CHALLENGER_TAG", "ServingChoice", "check_loaded", "choose_challenger", "choose_serving"]

# The tag `stream-app registry register --challenger` sets: ("role", "challenger").
CHALLENGER_TAG = ("role", "challenger")


@dataclass(frozen=True)
class ServingChoice:
    """The production version (variant A) and the challenger (variant B), either may be None."""

    production: ModelVersion | None
    challenger: ModelVersion | None

    @property
    def versions(self) -> tuple[str | None, str | None]:
        """(production, challenger) version strings, for comparing choices and showing them."""
        return (
            None if self.production is None else self.production.version,
            None if self.challenger is None else self.challenger.version,
        )


def choose_challenger(record: ModelRecord) -> ModelVersion | None:
    """The newest (semver) version tagged role=challenger that is not in production.

    Example:
        >>> from datetime import UTC, datetime
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> def v(version, **tags):
        ...     return ModelVersion("m", version, {}, {}, f"m/{version}", None, tags, at)
        >>> versions = {"1.0.0": v("1.0.0"), "1.1.0": v("1.1.0", role="challenger"),
        ...             "1.10.0": v("1.10.0", role="challenger")}
        >>> choose_challenger(ModelRecord("m", versions, lineage=("1.0.0",))).version
        '1.10.0'
        >>> print(choose_challenger(ModelRecord("m", versions, lineage=("1.10.0",))).version)
        1.1.0
        >>> choose_challenger(ModelRecord("m", {"1.0.0": v("1.0.0")})) is None
        True
    """
    key, value = CHALLENGER_TAG
    tagged = [
        v
        for v in record.versions.values()
        if v.tags.get(key) == value and v.version != record.production
    ]
    return max(tagged, key=lambda v: semver_key(v.version)) if tagged else None


def choose_serving(state: RegistryState, name: str) -> ServingChoice:
    """What a worker serving model ``name`` should load, from the folded registry.

    No production version means nothing to serve: the challenger alone is never served,
    because variant B needs a variant A to be compared with.

    Example:
        >>> from datetime import UTC, datetime
        >>> from stream_app.lifecycle.registry_state import RegistryEvent, fold
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> state = fold([
        ...     RegistryEvent("registered", "m", "1.0.0", at, {"path": "a"}),
        ...     RegistryEvent("registered", "m", "1.1.0", at,
        ...                   {"path": "b", "tags": {"role": "challenger"}}),
        ... ])
        >>> choose_serving(state, "m").versions
        (None, None)
        >>> state = fold([RegistryEvent("promoted", "m", "1.0.0", at, {"previous": None})], state)
        >>> choose_serving(state, "m").versions
        ('1.0.0', '1.1.0')
        >>> choose_serving(state, "other").versions
        (None, None)
    """
    record = state.models.get(name)
    if record is None or record.production is None:
        return ServingChoice(None, None)
    return ServingChoice(record.versions[record.production], choose_challenger(record))


def check_loaded(expected: ModelVersion, metadata: Mapping[str, Any], digest: str) -> None:
    """Refuse a verified bundle that is not the registered version (moved or replaced files).

    The digest is compared when the registry recorded one.

    Example:
        >>> from datetime import UTC, datetime
        >>> expected = ModelVersion("m", "1.0.0", {}, {}, "m/1", "abc", {},
        ...                         datetime(2026, 1, 1, tzinfo=UTC))
        >>> check_loaded(expected, {"name": "m", "version": "1.0.0"}, "abc")
        >>> check_loaded(expected, {"name": "m", "version": "1.0.0"}, "def")
        Traceback (most recent call last):
        ...
        stream_app.errors.BundleIntegrityError: m/1: bundle digest def is not the registered abc
    """
    found = (str(metadata.get("name")), str(metadata.get("version")))
    if found != (expected.name, expected.version):
        raise BundleIntegrityError(
            f"{expected.path}: bundle is {found[0]} {found[1]}, "
            f"the registry names {expected.name} {expected.version}"
        )
    if expected.digest is not None and digest != expected.digest:
        raise BundleIntegrityError(
            f"{expected.path}: bundle digest {digest} is not the registered {expected.digest}"
        )
