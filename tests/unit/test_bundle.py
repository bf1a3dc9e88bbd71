"""Bundles: round trip, atomic writes, and verification before anything is unpickled."""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from stream_app.errors import BundleIntegrityError, FeatureMismatchError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    load_bundle,
    save_bundle,
)
from tests.utils.pickles import Detonator

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class WarnsOnLoad:
    """Unpickles to None after emitting a warning, as an old pickle format might."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (warnings.warn, ("pickled by an older release",))


class Profile:
    def to_dict(self) -> dict[str, Any]:
        return {"features": {"age": {"mean": np.float64(38.5), "count": np.int64(10)}}}


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, len(FEATURE_NAMES)))
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))


def meta(**extra: Any) -> dict[str, Any]:
    return {"name": "conv", "version": "1.2.0", "features": list(FEATURE_NAMES), **extra}


def test_round_trip_keeps_model_metadata_and_digests(model: Any, tmp_path: Path) -> None:
    metrics = {"accuracy": np.float64(0.75)}
    info = save_bundle(model, meta(metrics=metrics), tmp_path / "b", created_at=CREATED)
    bundle = load_bundle(tmp_path / "b")

    x = np.random.default_rng(1).normal(size=(5, len(FEATURE_NAMES)))
    np.testing.assert_array_equal(bundle.model.predict_proba(x), model.predict_proba(x))
    raw = (tmp_path / "b" / METADATA_FILE).read_bytes()
    assert info.digest == bundle.digest == hashlib.sha256(raw).hexdigest()
    model_digest = hashlib.sha256((tmp_path / "b" / MODEL_FILE).read_bytes()).hexdigest()
    assert info.digests == {MODEL_FILE: model_digest, METADATA_FILE: info.digest}
    assert bundle.metadata["files"] == {MODEL_FILE: model_digest}
    assert (bundle.name, bundle.version) == ("conv", "1.2.0")
    assert bundle.metadata["created_at"] == bundle.metadata["trained_at"] == "2026-03-01T12:00:00Z"
    assert bundle.metadata["metrics"] == {"accuracy": 0.75}
    for key in ("python_version", "numpy_version", "sklearn_version", "joblib_version"):
        assert isinstance(bundle.metadata[key], str)
    assert bundle.warnings == ()
    assert bundle.reference_profile is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging leftovers
    assert not (tmp_path / "b" / SIGNATURE_FILE).exists()


def test_metadata_bytes_are_canonical(model: Any, tmp_path: Path) -> None:
    save_bundle(model, meta(), tmp_path / "b", created_at=CREATED)
    raw = (tmp_path / "b" / METADATA_FILE).read_bytes()
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_reference_profile_is_stored_as_its_dict(model: Any, tmp_path: Path) -> None:
    save_bundle(model, meta(), tmp_path / "b", reference=Profile(), created_at=CREATED)
    bundle = load_bundle(tmp_path / "b")
    assert bundle.reference_profile == {"features": {"age": {"mean": 38.5, "count": 10}}}
    assert bundle.metadata["reference_profile"] == bundle.reference_profile


def test_signed_bundle_loads_with_key_and_warns_without(model: Any, tmp_path: Path) -> None:
    save_bundle(model, meta(), tmp_path / "b", signing_key=KEY, created_at=CREATED)
    signature = (tmp_path / "b" / SIGNATURE_FILE).read_text()
    assert len(signature) == 64 and int(signature, 16) >= 0
    assert load_bundle(tmp_path / "b", signing_key=KEY).warnings == ()
    unverified = load_bundle(tmp_path / "b")
    assert unverified.warnings == (
        "bundle is signed but no signing key is configured: not verified",
    )


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 31])
def test_short_signing_key_is_refused(model: Any, tmp_path: Path, key: bytes) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        save_bundle(model, meta(), tmp_path / "b", signing_key=key)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        load_bundle(tmp_path / "b", signing_key=key)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"version": "1", "features": ["a"]}, "needs"),
        ({"name": "m", "features": ["a"]}, "needs"),
        ({"name": "m", "version": "1", "features": []}, "needs"),
        ({"name": "m", "version": "1", "features": [1, 2]}, "list of strings"),
        ({**meta(), "files": {}}, "computed by save_bundle"),
        ({**meta(), "sklearn_version": "0.1"}, "computed by save_bundle"),
        ({**meta(), "reference_profile": {}}, "computed by save_bundle"),
        ({**meta(), "metrics": {"accuracy": float("nan")}}, "Out of range float"),
        ({**meta(), "trained_at": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_metadata_is_refused_before_writing(
    model: Any, tmp_path: Path, metadata: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        save_bundle(model, metadata, tmp_path / "b", created_at=CREATED)
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_not_overwritten_unless_asked(model: Any, tmp_path: Path) -> None:
    first = save_bundle(model, meta(), tmp_path / "b", created_at=CREATED)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_bundle(model, meta(version="2.0.0"), tmp_path / "b", created_at=CREATED)
    assert load_bundle(tmp_path / "b").digest == first.digest

    second = save_bundle(
        model, meta(version="2.0.0"), tmp_path / "b", created_at=CREATED, overwrite=True
    )
    assert second.digest != first.digest
    assert load_bundle(tmp_path / "b").version == "2.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_empty_target_directory_is_filled(model: Any, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    save_bundle(model, meta(), tmp_path / "b", created_at=CREATED)
    assert load_bundle(tmp_path / "b").version == "1.2.0"


def test_failed_save_leaves_nothing_behind(tmp_path: Path) -> None:
    unpicklable = {"fn": lambda x: x}
    with pytest.raises(Exception, match="lambda"):
        save_bundle(unpicklable, meta(), tmp_path / "b", created_at=CREATED)
    assert list(tmp_path.iterdir()) == []


def test_feature_list_must_match_the_builder(model: Any, tmp_path: Path) -> None:
    swapped = [FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:]]
    save_bundle(model, meta(features=swapped), tmp_path / "b", created_at=CREATED)
    with pytest.raises(FeatureMismatchError, match="purchase_count"):
        load_bundle(tmp_path / "b")
    assert load_bundle(tmp_path / "b", expected_features=swapped).metadata["features"] == swapped


@pytest.mark.parametrize(
    ("running", "warned"),
    [("1.8.2", True), ("2.9.0", True), (None, False)],
)
def test_scikit_learn_minor_mismatch_is_a_warning(
    model: Any, tmp_path: Path, running: str | None, warned: bool
) -> None:
    save_bundle(model, meta(), tmp_path / "b", created_at=CREATED)
    bundle = load_bundle(tmp_path / "b", expected_sklearn=running)
    trained = ".".join(bundle.metadata["sklearn_version"].split(".")[:2])
    expected = (f"trained with scikit-learn {trained}, running {running[:3]}",) if running else ()
    assert bundle.warnings == (expected if warned else ())


def test_warnings_raised_while_unpickling_are_kept(tmp_path: Path) -> None:
    save_bundle(WarnsOnLoad(), meta(), tmp_path / "b", created_at=CREATED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none may escape to the caller
        bundle = load_bundle(tmp_path / "b")
    assert bundle.warnings == ("pickled by an older release",)


def test_same_minor_different_patch_is_silent(model: Any, tmp_path: Path) -> None:
    save_bundle(model, meta(), tmp_path / "b", created_at=CREATED)
    trained = json.loads((tmp_path / "b" / METADATA_FILE).read_bytes())["sklearn_version"]
    patched = ".".join([*trained.split(".")[:2], "99"])
    assert load_bundle(tmp_path / "b", expected_sklearn=patched).warnings == ()


# --- nothing is unpickled unless verified ---------------------------------------------


def _rewrite_metadata(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads((root / METADATA_FILE).read_bytes())
    change(doc)
    (root / METADATA_FILE).write_bytes(json.dumps(doc, sort_keys=True).encode())


def _plant_detonator(root: Path, marker: Path) -> str:
    joblib.dump(Detonator(marker), root / MODEL_FILE)
    return hashlib.sha256((root / MODEL_FILE).read_bytes()).hexdigest()


def tamper_model(root: Path, marker: Path) -> None:
    _plant_detonator(root, marker)


def tamper_metadata_of_signed(root: Path, marker: Path) -> None:
    digest = _plant_detonator(root, marker)
    _rewrite_metadata(root, lambda d: d["files"].update({MODEL_FILE: digest}))


def tamper_listed_digest(root: Path, marker: Path) -> None:
    _plant_detonator(root, marker)
    _rewrite_metadata(root, lambda d: d["files"].update({MODEL_FILE: "0" * 64}))


def remove_model(root: Path, marker: Path) -> None:
    (root / MODEL_FILE).unlink()


def remove_metadata(root: Path, marker: Path) -> None:
    _plant_detonator(root, marker)
    (root / METADATA_FILE).unlink()


def remove_signature(root: Path, marker: Path) -> None:
    (root / SIGNATURE_FILE).unlink()


def sign_with_other_key(root: Path, marker: Path) -> None:
    digest = _plant_detonator(root, marker)
    _rewrite_metadata(root, lambda d: d["files"].update({MODEL_FILE: digest}))
    raw = (root / METADATA_FILE).read_bytes()
    (root / SIGNATURE_FILE).write_text(hmac.new(OTHER_KEY, raw, hashlib.sha256).hexdigest())


def drop_field(root: Path, marker: Path) -> None:
    _rewrite_metadata(root, lambda d: d.pop("version"))


def garble_metadata(root: Path, marker: Path) -> None:
    (root / METADATA_FILE).write_bytes(b"{not json")


def escape_the_bundle(root: Path, marker: Path) -> None:
    _rewrite_metadata(root, lambda d: d["files"].update({"../outside": "0" * 64}))


def add_missing_listed_file(root: Path, marker: Path) -> None:
    _rewrite_metadata(root, lambda d: d["files"].update({"vocab.txt": "0" * 64}))


def model_is_a_directory(root: Path, marker: Path) -> None:
    (root / MODEL_FILE).unlink()
    (root / MODEL_FILE).mkdir()


def metadata_is_a_directory(root: Path, marker: Path) -> None:
    (root / METADATA_FILE).unlink()
    (root / METADATA_FILE).mkdir()


def signature_is_a_directory(root: Path, marker: Path) -> None:
    (root / SIGNATURE_FILE).unlink()
    (root / SIGNATURE_FILE).mkdir()


TAMPERS = [
    (tamper_model, False, r"model\.joblib: SHA-256 mismatch, expected [0-9a-f]{64}, actual"),
    (tamper_metadata_of_signed, True, r"signature does not match metadata\.json"),
    (tamper_listed_digest, False, r"model\.joblib: SHA-256 mismatch, expected 0{64}, actual"),
    (remove_model, False, r"model\.joblib is missing"),
    (remove_metadata, False, r"metadata\.json is missing"),
    (remove_signature, True, r"signature is missing"),
    (sign_with_other_key, True, r"signature does not match"),
    (drop_field, False, r"field 'version' missing"),
    (garble_metadata, False, r"not valid JSON"),
    (escape_the_bundle, False, r"bad 'files' entry '\.\./outside'"),
    (add_missing_listed_file, False, r"vocab\.txt is missing"),
    (model_is_a_directory, False, r"model\.joblib could not be read: Is a directory"),
    (metadata_is_a_directory, False, r"metadata\.json could not be read: Is a directory"),
    (signature_is_a_directory, True, r"signature could not be read: Is a directory"),
]


@pytest.mark.parametrize(
    ("tamper", "signed", "message"), TAMPERS, ids=[t[0].__name__ for t in TAMPERS]
)
def test_tampered_bundle_is_refused_before_unpickling(
    model: Any,
    tmp_path: Path,
    tamper: Callable[[Path, Path], None],
    signed: bool,
    message: str,
) -> None:
    root, marker = tmp_path / "b", tmp_path / "unpickled.marker"
    save_bundle(model, meta(), root, signing_key=KEY if signed else None, created_at=CREATED)
    tamper(root, marker)
    with pytest.raises(BundleIntegrityError, match=message):
        load_bundle(root, signing_key=KEY if signed else None)
    assert not marker.exists()


def test_the_detonator_does_fire_when_its_bundle_is_genuine(tmp_path: Path) -> None:
    # The control for the tests above: a correctly digested pickle is opened.
    marker = tmp_path / "unpickled.marker"
    save_bundle(Detonator(marker), meta(), tmp_path / "b", created_at=CREATED)
    assert not marker.exists()
    load_bundle(tmp_path / "b")
    assert marker.exists()


def test_verified_but_broken_pickle_is_an_integrity_error(model: Any, tmp_path: Path) -> None:
    root = tmp_path / "b"
    save_bundle(model, meta(), root, created_at=CREATED)
    (root / MODEL_FILE).write_bytes(b"not a pickle")
    digest = hashlib.sha256(b"not a pickle").hexdigest()
    _rewrite_metadata(root, lambda d: d["files"].update({MODEL_FILE: digest}))
    with pytest.raises(BundleIntegrityError, match="verified but could not be loaded"):
        load_bundle(root)


@pytest.mark.parametrize("name", [MODEL_FILE, METADATA_FILE, SIGNATURE_FILE])
def test_unreadable_file_is_an_integrity_error_naming_it(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    root = tmp_path / "b"
    save_bundle(model, meta(), root, signing_key=KEY, created_at=CREATED)
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    # The tests run as root, for whom chmod 000 does not stop a read.
    monkeypatch.setattr(Path, "open", refusing_open)
    with pytest.raises(BundleIntegrityError, match=f"{name} could not be read: Permission denied"):
        load_bundle(root, signing_key=KEY)


def test_metric_directions_use_the_registry_words(model: Any, tmp_path: Path) -> None:
    metrics = {"accuracy": 0.9, "latency_ms": 3.0}
    ok = meta(metrics=metrics, metric_directions={"accuracy": "higher", "latency_ms": "lower"})
    save_bundle(model, ok, tmp_path / "ok", created_at=CREATED)
    for directions, message in [
        ({"accuracy": "higher_is_better"}, "must be 'higher' or 'lower'"),
        ({"recall": "higher"}, "'recall' has no value in 'metrics'"),
    ]:
        bad = meta(metrics=metrics, metric_directions=directions)
        with pytest.raises(ValueError, match=message):
            save_bundle(model, bad, tmp_path / "bad", created_at=CREATED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]
