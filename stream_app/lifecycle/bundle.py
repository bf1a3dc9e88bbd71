"""Model bundles: a directory holding a model and the metadata that vouches for it.

Layout: ``model.joblib`` (the pickled estimator), ``metadata.json`` (canonical JSON:
name, version, features, timestamps, library versions, the SHA-256 of every other file,
the drift reference profile) and, when signed, ``signature`` (hex HMAC-SHA256 over the
exact bytes of metadata.json). Loading checks the signature, the metadata fields and
every digest before anything is unpickled: a pickle runs code, so an unverified one is
never opened.

Signature policy: with a key, a missing or wrong signature is an error. Without a key
a present signature cannot be checked: with ``allow_unverified`` (the default of this
function) the bundle loads with a warning saying so, without it the bundle is refused
before anything is unpickled (a worker loads registry references that way unless
STREAM_ALLOW_UNSIGNED_BUNDLES=true; see bundle_source.py). ``expected_digest`` (the
registry's record) is compared with the SHA-256 of metadata.json as soon as it is read,
so a bundle other than the registered one is refused before its model file is opened.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

import joblib

from stream_app.errors import BundleIntegrityError, FeatureMismatchError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle_metadata import (
    METADATA_FILE,
    MODEL_FILE,
    build_metadata,
    canonical_json,
    minor_version,
    parse_metadata,
)
from stream_app.lifecycle.files import (
    fsync_directory,
    publish_directory,
    sha256_file,
    sha256_stream,
    write_durably,
)

__all__ = [
    "METADATA_FILE",
    "MIN_KEY_BYTES",
    "MODEL_FILE",
    "SIGNATURE_FILE",
    "Bundle",
    "BundleInfo",
    "SupportsToDict",
    "load_bundle",
    "save_bundle",
]

SIGNATURE_FILE = "signature"
MIN_KEY_BYTES = 32


class SupportsToDict(Protocol):
    """Anything with a JSON-safe ``to_dict()``, such as the drift ReferenceProfile."""

    def to_dict(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class BundleInfo:
    """What save_bundle wrote: where, each file's SHA-256, and the bundle's identity."""

    directory: Path
    digests: Mapping[str, str]
    digest: str


@dataclass(frozen=True)
class Bundle:
    """A verified, loaded bundle. ``digest`` is the SHA-256 of metadata.json."""

    model: Any
    metadata: Mapping[str, Any]
    digest: str
    directory: Path
    warnings: tuple[str, ...] = ()

    @property
    def reference_profile(self) -> Mapping[str, Any] | None:
        """The drift reference profile stored in the metadata, None when there is none."""
        reference = self.metadata.get("reference_profile")
        return reference if isinstance(reference, dict) else None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def save_bundle(
    model: Any,
    metadata: Mapping[str, Any],
    directory: str | Path,
    *,
    reference: SupportsToDict | None = None,
    signing_key: bytes | None = None,
    created_at: datetime | None = None,
    overwrite: bool = False,
) -> BundleInfo:
    """Write a bundle atomically: stage in a hidden sibling directory, fsync, rename.

    ``metadata`` needs name, version and features; trained_at defaults to created_at,
    which defaults to the current UTC time (the one clock read in this module). Other
    keys (metrics...) are kept as given. An existing non-empty ``directory`` is refused
    with FileExistsError unless ``overwrite``.

    Example:
        >>> import tempfile
        >>> from datetime import UTC
        >>> from sklearn.dummy import DummyClassifier
        >>> model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     info = save_bundle(model, {"name": "m", "version": "1.0.0", "features": ["x"]},
        ...                        f"{tmp}/m-1", created_at=datetime(2026, 1, 1, tzinfo=UTC))
        ...     bundle = load_bundle(info.directory, expected_features=["x"])
        >>> bundle.version, bundle.digest == info.digest, sorted(info.digests)
        ('1.0.0', True, ['metadata.json', 'model.joblib'])
    """
    _check_key(signing_key)
    target = Path(directory)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} already holds files; pass overwrite=True to replace")
    doc = build_metadata(metadata, created_at)
    if reference is not None:
        doc["reference_profile"] = dict(reference.to_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        # mkdtemp makes the directory private (0700); a worker running as another user
        # must still be able to read the published bundle.
        staged.chmod(0o755)
        with (staged / MODEL_FILE).open("xb") as handle:
            joblib.dump(model, handle)
            handle.flush()
            os.fsync(handle.fileno())
        doc["files"] = {MODEL_FILE: sha256_file(staged / MODEL_FILE)}
        raw = canonical_json(doc)
        write_durably(staged / METADATA_FILE, raw)
        if signing_key is not None:
            write_durably(staged / SIGNATURE_FILE, _sign(raw, signing_key).encode())
        fsync_directory(staged)
        publish_directory(staged, target, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    digest = hashlib.sha256(raw).hexdigest()
    return BundleInfo(target, {**doc["files"], METADATA_FILE: digest}, digest)


def load_bundle(
    directory: str | Path,
    *,
    signing_key: bytes | None = None,
    expected_sklearn: str | None = None,
    expected_features: Sequence[str] | None = FEATURE_NAMES,
    expected_digest: str | None = None,
    allow_unverified: bool = True,
) -> Bundle:
    """Verify a bundle, then unpickle its model.

    Order: metadata.json read, its SHA-256 compared with ``expected_digest`` when given,
    signature checked (see module docstring), fields and
    feature list checked, every listed file's SHA-256 compared; only then joblib.load.
    ``expected_sklearn`` is the scikit-learn version to compare against (default: the
    running one); a different major or minor version adds a warning. Integrity problems
    (a digest or signature mismatch, a file missing, a directory in a file's place or a
    file that cannot be read) raise BundleIntegrityError naming the file; a feature list
    other than ``expected_features`` raises FeatureMismatchError (None skips that check).

    Example:
        >>> import tempfile
        >>> from sklearn.dummy import DummyClassifier
        >>> model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +ELLIPSIS
        ...     root = Path(tmp) / "m-1"
        ...     _ = save_bundle(model, {"name": "m", "version": "1.0.0", "features": ["x"]}, root)
        ...     print(load_bundle(root, expected_features=["x"]).version)
        ...     _ = (root / MODEL_FILE).write_bytes(b"swapped after saving")
        ...     try:
        ...         load_bundle(root, expected_features=["x"])
        ...     except BundleIntegrityError as exc:
        ...         print("refused:", str(exc).split(": ")[1])
        1.0.0
        refused: SHA-256 mismatch, expected ..., actual ...
    """
    _check_key(signing_key)
    root = Path(directory)
    raw = _read_file(root, METADATA_FILE)
    digest = hashlib.sha256(raw).hexdigest()
    if expected_digest is not None and not hmac.compare_digest(digest, expected_digest):
        raise BundleIntegrityError(
            f"{root}: {METADATA_FILE} digest {digest} is not the registered {expected_digest}"
        )
    if signing_key is None and not allow_unverified:
        raise BundleIntegrityError(
            f"{root}: no bundle signing key to verify the bundle with, and unsigned bundles "
            "are not allowed (set STREAM_BUNDLE_SIGNING_KEY, or "
            "STREAM_ALLOW_UNSIGNED_BUNDLES=true)"
        )
    notes: list[str] = []
    _verify_signature(root, raw, signing_key, notes)
    doc = parse_metadata(raw)
    if expected_features is not None and doc["features"] != list(expected_features):
        raise FeatureMismatchError(
            f"{root}: bundle features {doc['features']} != expected {list(expected_features)}"
        )
    running = expected_sklearn or importlib_metadata.version("scikit-learn")
    trained_with = minor_version(doc["sklearn_version"])
    if trained_with != minor_version(running):
        notes.append(f"trained with scikit-learn {trained_with}, running {minor_version(running)}")
    model = _verified_load(root, doc["files"], notes)
    return Bundle(
        model=model,
        metadata=doc,
        digest=digest,
        directory=root,
        warnings=tuple(notes),
    )


def _check_key(key: bytes | None) -> None:
    if key is not None and len(key) < MIN_KEY_BYTES:
        raise ValueError(f"signing key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")


def _sign(raw: bytes, key: bytes) -> str:
    return hmac.new(key, raw, hashlib.sha256).hexdigest()


def _read_file(root: Path, name: str) -> bytes:
    try:
        return (root / name).read_bytes()
    except OSError as exc:
        raise _unreadable(root, name, exc) from None


def _unreadable(root: Path, name: str, exc: OSError) -> BundleIntegrityError:
    """The integrity error for a bundle file that is absent, a directory or unreadable."""
    if isinstance(exc, FileNotFoundError):
        return BundleIntegrityError(f"{root}: {name} is missing")
    return BundleIntegrityError(f"{root}: {name} could not be read: {exc.strerror or exc}")


def _hash_file(root: Path, name: str) -> str:
    try:
        return sha256_file(root / name)
    except OSError as exc:
        raise _unreadable(root, name, exc) from None


def _verify_signature(root: Path, raw: bytes, key: bytes | None, notes: list[str]) -> None:
    present = (root / SIGNATURE_FILE).is_file()
    if key is None:
        if present:
            notes.append("bundle is signed but no signing key is configured: not verified")
        return
    stored = _read_file(root, SIGNATURE_FILE).decode("ascii", "replace").strip()
    expected = _sign(raw, key)
    if not hmac.compare_digest(stored.encode(), expected.encode()):
        raise BundleIntegrityError(
            f"{root}: {SIGNATURE_FILE} does not match {METADATA_FILE} under the configured key"
        )


def _check_digest(root: Path, name: str, expected: str, actual: str) -> None:
    if not hmac.compare_digest(expected, actual):
        raise BundleIntegrityError(
            f"{root / name}: SHA-256 mismatch, expected {expected}, actual {actual}"
        )


def _verified_load(root: Path, files: Mapping[str, str], notes: list[str]) -> Any:
    for name, expected in files.items():
        if name != MODEL_FILE:
            if not (root / name).is_file():
                raise BundleIntegrityError(f"{root}: {name} is missing")
            _check_digest(root, name, expected, _hash_file(root, name))
    try:
        handle = (root / MODEL_FILE).open("rb")  # a directory in its place fails here too
    except OSError as exc:
        raise _unreadable(root, MODEL_FILE, exc) from None
    with handle:
        # Hash and unpickle through one descriptor, so the verified bytes are the
        # loaded bytes even if the path is swapped in between.
        try:
            actual = sha256_stream(handle)
        except OSError as exc:
            raise _unreadable(root, MODEL_FILE, exc) from None
        _check_digest(root, MODEL_FILE, files[MODEL_FILE], actual)
        handle.seek(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = joblib.load(handle)
            except Exception as exc:
                raise BundleIntegrityError(
                    f"{root / MODEL_FILE}: verified but could not be loaded: {exc!r}"
                ) from exc
    notes.extend(str(w.message) for w in caught)
    return model
