"""Registry references: the bundle root, the registered digest before unpickling, and the
unsigned-bundle policy, each refusing before a planted pickle could run."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stream_app.config import load_settings
from stream_app.errors import BundleIntegrityError, ConfigError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import save_bundle
from stream_app.lifecycle.bundle_source import (
    UNSIGNED_WARNING,
    BundlePolicy,
    check_location,
    load_registered,
)
from stream_app.lifecycle.registry_state import ModelVersion
from tests.utils.pickles import Detonator

KEY = b"k" * 32
AT = datetime(2026, 1, 1, tzinfo=UTC)
OUTSIDE = "the bundle path lies outside STREAM_BUNDLE_ROOT: refused before reading it"
_OPENED: list[str] = []
_RECORDING: list[bool] = [False]


def _record_opens(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING[0] and event == "open" and args and isinstance(args[0], str | bytes | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)  # audit hooks cannot be removed; this one only records


def planted(directory: Path, marker: Path, key: bytes | None = None) -> ModelVersion:
    """A self-consistent bundle whose model runs code when unpickled, and its registry
    record (the right digest)."""
    meta = {"name": "conversion", "version": "1.0.0", "features": list(FEATURE_NAMES)}
    info = save_bundle(Detonator(marker), meta, directory, signing_key=key, created_at=AT)
    return version_at(str(directory), info.digest)


def version_at(path: str, digest: str | None) -> ModelVersion:
    return ModelVersion("conversion", "1.0.0", {}, {}, path, digest, {}, AT)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/srv/bundles/m-1", True),
        ("/srv/bundles/team/m-1/", True),
        ("/srv/bundles", True),
        ("/srv/bundles/../bundles/m-1", True),
        ("/srv/bundles/../other/m-1", False),
        ("/srv/bundles-old/m-1", False),  # a sibling sharing the prefix is outside
        ("/srv", False),
        ("bundles/m-1", False),  # relative: it would depend on the worker's directory
        ("", False),
    ],
)
def test_only_paths_under_the_root_are_allowed(path: str, allowed: bool) -> None:
    root = Path("/srv/bundles")
    if allowed:
        assert root in (check_location(path, root), *check_location(path, root).parents)
    else:
        with pytest.raises(BundleIntegrityError, match=f"^{OUTSIDE}$"):
            check_location(path, root)


def test_a_symlink_inside_the_root_that_leads_out_is_refused(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "link").symlink_to(elsewhere)
    with pytest.raises(BundleIntegrityError, match=f"^{OUTSIDE}$"):
        check_location(str(root / "link"), root)


def test_a_reference_outside_the_root_opens_no_file(tmp_path: Path) -> None:
    root, marker = tmp_path / "root", tmp_path / "ran"
    root.mkdir()
    version = planted(tmp_path / "outside" / "m-1", marker, KEY)
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        with pytest.raises(BundleIntegrityError, match=f"^{OUTSIDE}$"):
            load_registered(version, BundlePolicy(root, KEY))
    finally:
        _RECORDING[0] = False
    assert [p for p in _OPENED if p.startswith(str(tmp_path))] == []
    assert not marker.exists()
    # The same bundle under the root loads (and runs its pickle): the refusal was the root.
    inside = planted(root / "m-1", marker, KEY)
    load_registered(inside, BundlePolicy(root, KEY))
    assert marker.exists()


def test_the_registered_digest_is_checked_before_anything_is_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    version = planted(tmp_path / "m-1", marker)
    other = version_at(version.path, "0" * 64)
    with pytest.raises(BundleIntegrityError) as refused:
        load_registered(other, BundlePolicy(tmp_path, allow_unsigned=True))
    assert str(refused.value) == (
        f"<bundle>: metadata.json digest {version.digest} is not the registered {'0' * 64}"
    )
    assert not marker.exists()
    with pytest.raises(BundleIntegrityError, match="^the registry recorded no digest"):
        load_registered(version_at(version.path, None), BundlePolicy(tmp_path, allow_unsigned=True))
    assert not marker.exists()


def test_without_a_key_a_bundle_is_refused_unless_unsigned_ones_are_allowed(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    version = planted(tmp_path / "m-1", marker)
    with pytest.raises(BundleIntegrityError) as refused:
        load_registered(version, BundlePolicy(tmp_path))
    assert str(refused.value) == (
        "<bundle>: no bundle signing key to verify the bundle with, and unsigned bundles "
        "are not allowed (set STREAM_BUNDLE_SIGNING_KEY, or STREAM_ALLOW_UNSIGNED_BUNDLES=true)"
    )
    assert not marker.exists()
    loaded = load_registered(version, BundlePolicy(tmp_path, allow_unsigned=True))
    assert marker.exists()
    assert loaded.warnings[0] == UNSIGNED_WARNING


def test_a_signed_bundle_under_the_root_loads_without_warnings(tmp_path: Path) -> None:
    version = planted(tmp_path / "m-1", tmp_path / "ran", KEY)
    assert load_registered(version, BundlePolicy(tmp_path, KEY)).warnings == ()
    with pytest.raises(BundleIntegrityError, match="signature does not match"):
        load_registered(version, BundlePolicy(tmp_path, b"o" * 32))


def test_the_root_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        BundlePolicy(Path("models"))


def test_settings_resolve_the_root_and_refuse_unsigned_bundles_with_a_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).bundle_root == tmp_path / "models"
    assert load_settings({"STREAM_BUNDLE_ROOT": "b/../c"}).bundle_root == tmp_path / "c"
    assert load_settings({}).allow_unsigned_bundles is False
    key = base64.b64encode(KEY).decode()
    with pytest.raises(ConfigError) as refused:
        load_settings({"STREAM_ALLOW_UNSIGNED_BUNDLES": "true", "STREAM_BUNDLE_SIGNING_KEY": key})
    assert str(refused.value) == (
        "STREAM_ALLOW_UNSIGNED_BUNDLES is used only without STREAM_BUNDLE_SIGNING_KEY "
        "(with a key every bundle must be signed)"
    )
