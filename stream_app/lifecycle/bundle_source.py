"""Where a registry reference may point, and how a registered bundle is loaded.

A registry event names a bundle by path and digest; a pickle runs code when it is
loaded, so a reference is trusted only as far as these checks go, in this order:

1. the path lies under the allowed root (``STREAM_BUNDLE_ROOT``), judged on the text of
   the path first (no file is touched for a path outside) and then with symlinks
   resolved (a link inside the root that points out of it is refused too);
2. the registry recorded a digest, and it is the SHA-256 of the bundle's metadata.json,
   which lists the SHA-256 of the model file: compared before anything is unpickled;
3. the bundle's signature (``STREAM_BUNDLE_SIGNING_KEY``); without a key the bundle is
   refused unless ``STREAM_ALLOW_UNSIGNED_BUNDLES=true``, and then loads with a warning.

A location in the Kafka bundle store (``kafka:<digest>``) is fetched first, by the
store the caller passes, into ``<root>/fetched/<digest>``: the store checks every chunk
and file against the registered digest, and the copy then goes through the same three
checks as any directory under the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.bundle import Bundle, load_bundle
from stream_app.lifecycle.bundle_chunks import KAFKA_LOCATION_PREFIX
from stream_app.lifecycle.registry_state import ModelVersion
from stream_app.lifecycle.serving_choice import check_loaded

if TYPE_CHECKING:
    from stream_app.lifecycle.bundle_store import BundleStore

__all__ = [
    "FETCHED_DIR",
    "UNSIGNED_WARNING",
    "BundlePolicy",
    "check_location",
    "is_store_location",
    "load_registered",
]

# Where bundles fetched from a bundle store are kept, under the bundle root.
FETCHED_DIR = "fetched"

UNSIGNED_WARNING = (
    "bundle signature not verified: no STREAM_BUNDLE_SIGNING_KEY, loaded because "
    "STREAM_ALLOW_UNSIGNED_BUNDLES=true"
)


@dataclass(frozen=True)
class BundlePolicy:
    """What a worker (or the CLI) accepts from a registry reference.

    ``root`` must be absolute (Settings resolves it at start).
    """

    root: Path
    signing_key: bytes | None = None
    allow_unsigned: bool = False

    def __post_init__(self) -> None:
        if not self.root.is_absolute():
            raise ValueError(f"the bundle root must be an absolute path, got {self.root}")


def check_location(path: str, root: Path) -> Path:
    """The bundle directory ``path`` names, refused unless it lies under ``root``.

    The text is judged first: a relative path, or one whose ``..`` parts leave the root,
    is refused without touching the file system. Then symlinks are resolved and the
    real location judged again.

    Example:
        >>> root = Path("/srv/bundles")
        >>> check_location("/srv/bundles/m-1.0.0", root).as_posix()
        '/srv/bundles/m-1.0.0'
        >>> check_location("/srv/bundles/../home/x", root)
        Traceback (most recent call last):
        ...
        stream_app.errors.BundleIntegrityError: the bundle path lies outside \
STREAM_BUNDLE_ROOT: refused before reading it
    """
    text = os.path.normpath(path) if path else ""
    if not os.path.isabs(text) or not _under(Path(text), root):
        raise _outside()
    real = Path(text).resolve()
    if not _under(real, root.resolve()):
        raise _outside()
    return real


def is_store_location(location: str) -> bool:
    """True for a location in the Kafka bundle store rather than a directory.

    Example:
        >>> is_store_location("kafka:" + "ab" * 32), is_store_location("/srv/bundles/m")
        (True, False)
    """
    return location.startswith(KAFKA_LOCATION_PREFIX)


def load_registered(
    version: ModelVersion, policy: BundlePolicy, store: BundleStore | None = None
) -> Bundle:
    """Load the bundle a registry version names, by the checks of this module.

    ``store`` fetches a version whose location is in the Kafka bundle store (None: such a
    version is refused). Raises BundleIntegrityError (or FeatureMismatchError) saying which
    check refused it; the message never holds the bundle's path.
    """
    location = version.path
    if is_store_location(location):
        if version.digest is None:
            raise BundleIntegrityError("the registry recorded no digest for this version")
        if store is None:
            raise BundleIntegrityError("the bundle is in a bundle store this process cannot read")
        into = policy.root / FETCHED_DIR
        location = str(store.fetch(location, version.digest, into))
    directory = check_location(location, policy.root)
    if version.digest is None:
        raise BundleIntegrityError("the registry recorded no digest for this version")
    try:
        bundle = load_bundle(
            directory,
            signing_key=policy.signing_key,
            expected_digest=version.digest,
            allow_unverified=policy.allow_unsigned,
        )
    except BundleIntegrityError as exc:
        raise BundleIntegrityError(str(exc).replace(str(directory), "<bundle>")) from None
    check_loaded(version, bundle.metadata, bundle.digest)
    if policy.signing_key is None:
        bundle = replace(bundle, warnings=(UNSIGNED_WARNING, *bundle.warnings))
    return bundle


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _outside() -> BundleIntegrityError:
    return BundleIntegrityError(
        "the bundle path lies outside STREAM_BUNDLE_ROOT: refused before reading it"
    )
