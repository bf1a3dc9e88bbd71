"""Where bundles are kept: one small interface, a directory store and a chunked store.

A ``BundleStore`` takes a verified bundle directory and answers with the bundle's
digest (the SHA-256 of metadata.json) and a location, the two things a registry entry
records; given that location and the registered digest it puts a directory the bundle
can be loaded from under ``into``. Nothing here unpickles: ``bundle_source`` loads what
``fetch`` returns with every check of a bundle, the registered digest included.

- ``DirectoryBundleStore``: a bundle stays where it was written, under
  ``STREAM_BUNDLE_ROOT``; the location is its absolute path (a shared file system, or a
  single host).
- ``ChunkedBundleStore``: a bundle is cut into digest-addressed chunks and a manifest
  (``bundle_chunks``) kept in a ``ChunkLog``: a compacted Kafka topic in production
  (``stream_app/bundle_kafka.py``), a list in tests. The location is
  ``kafka:<digest>``; ``fetch`` checks every chunk, file and the registered digest,
  then writes the files into ``into/<digest>`` and publishes that directory with one
  rename, so nothing half-written or unchecked is ever at that path.

An object store would be a third implementation of the same two methods.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.bundle_chunks import (
    KAFKA_LOCATION_PREFIX,
    FileEntry,
    Manifest,
    assemble_file,
    bundle_files,
    check_against_metadata,
    chunk_key,
    iter_chunks,
    manifest_key,
)
from stream_app.lifecycle.bundle_metadata import METADATA_FILE
from stream_app.lifecycle.bundle_source import check_location
from stream_app.lifecycle.files import (
    fsync_directory,
    publish_directory,
    sha256_file,
    write_durably,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "BundleStore",
    "ChunkLog",
    "ChunkedBundleStore",
    "DirectoryBundleStore",
    "InMemoryChunkLog",
    "StoredBundle",
]

# Well under the broker's default largest message (1,048,588 bytes) with key and headers.
DEFAULT_CHUNK_BYTES = 512 * 1024


@dataclass(frozen=True)
class StoredBundle:
    """What a registry entry records of a stored bundle: its digest and location."""

    digest: str
    location: str


class BundleStore(Protocol):
    """Keeps bundles where every worker can read them."""

    def put(self, directory: Path) -> StoredBundle:
        """Store the bundle in ``directory``; its digest and where it now is."""
        ...

    def fetch(self, location: str, digest: str, into: Path) -> Path:
        """A directory holding the bundle at ``location`` (under ``into`` when copied),
        refused with BundleIntegrityError unless it is the bundle of ``digest``."""
        ...


class DirectoryBundleStore:
    """Bundles stay in their directories under ``root``; the location is the path."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ValueError(f"the bundle root must be an absolute path, got {root}")
        self.root = root

    def put(self, directory: Path) -> StoredBundle:
        """The directory itself (refused outside the root) and its metadata's digest."""
        real = check_location(str(directory.absolute()), self.root)
        return StoredBundle(sha256_file(real / METADATA_FILE), str(real))

    def fetch(self, location: str, digest: str, into: Path) -> Path:
        """The directory ``location`` names, refused outside the root; ``into`` is unused
        (the bundle is read in place) and the digest is checked when it is loaded."""
        return check_location(location, self.root)


class ChunkLog(Protocol):
    """Key-value records in order; the newest record of a key is its value."""

    def write(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Append the records in order; every one is stored when this returns."""
        ...

    def read(self, keys: Collection[str]) -> dict[str, bytes]:
        """The newest value of each of ``keys`` that has one."""
        ...


class InMemoryChunkLog:
    """A ChunkLog in a list: the test fake, and what a compacted topic reads as."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    def write(self, records: Iterable[tuple[str, bytes]]) -> None:
        self.records.extend(records)

    def read(self, keys: Collection[str]) -> dict[str, bytes]:
        wanted = set(keys)
        return {key: value for key, value in self.records if key in wanted}


class ChunkedBundleStore:
    """Bundles as digest-addressed chunks and a manifest in a ChunkLog."""

    def __init__(self, log: ChunkLog, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        self.log = log
        self.chunk_bytes = chunk_bytes

    def put(self, directory: Path) -> StoredBundle:
        """Write every chunk, then the manifest: a manifest is never read before its chunks.

        Refused (BundleIntegrityError) when the files are not those metadata.json lists,
        or changed while they were read; chunks written by then are harmless (a later
        put of the same bytes writes the same records).
        """
        raw = (directory / METADATA_FILE).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        entries: list[FileEntry] = []
        self.log.write(self._chunks(directory, bundle_files(directory), entries))
        manifest = Manifest(digest, tuple(entries))
        if entries[0].sha256 != digest:
            raise BundleIntegrityError(f"{METADATA_FILE} changed while the bundle was stored")
        check_against_metadata(manifest, raw)
        self.log.write([(manifest_key(digest), manifest.to_json())])
        return StoredBundle(digest, KAFKA_LOCATION_PREFIX + digest)

    def _chunks(
        self, directory: Path, names: list[str], entries: list[FileEntry]
    ) -> Iterator[tuple[str, bytes]]:
        for name in names:
            whole, size, digests = hashlib.sha256(), 0, []
            with (directory / name).open("rb") as handle:
                for chunk_digest, chunk in iter_chunks(handle, self.chunk_bytes):
                    whole.update(chunk)
                    size += len(chunk)
                    digests.append(chunk_digest)
                    yield chunk_key(chunk_digest), chunk
            entries.append(FileEntry(name, size, whole.hexdigest(), tuple(digests)))

    def fetch(self, location: str, digest: str, into: Path) -> Path:
        """``into/<digest>``, holding the bundle once every chunk and file checked out.

        Order: the location must name ``digest``; the manifest must be one for it;
        metadata.json is assembled and must hash to ``digest``; the manifest's other
        files must be those metadata.json lists, with its digests; then each file is
        assembled, every chunk hashed against its key. A directory already at the
        target that holds exactly the manifest's files is used as it is.
        """
        if location != KAFKA_LOCATION_PREFIX + digest:
            raise BundleIntegrityError(
                f"the location {location!r} does not name the registered digest {digest}"
            )
        key = manifest_key(digest)
        raw = self.log.read([key]).get(key)
        if raw is None:
            raise BundleIntegrityError(f"the bundle store holds no manifest for {digest}")
        manifest = Manifest.parse(raw, digest)
        target = into / digest
        if _holds(target, manifest):
            return target
        metadata = self._assemble(manifest.files[0])
        check_against_metadata(manifest, metadata)
        into.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}.tmp-", dir=into))
        try:
            staged.chmod(0o755)
            write_durably(staged / METADATA_FILE, metadata)
            for entry in manifest.files[1:]:
                write_durably(staged / entry.name, self._assemble(entry))
            fsync_directory(staged)
            publish_directory(staged, target, overwrite=True)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return target

    def _assemble(self, entry: FileEntry) -> bytes:
        return assemble_file(entry, self.log.read([chunk_key(d) for d in entry.chunks]))


def _holds(target: Path, manifest: Manifest) -> bool:
    """True when ``target`` holds each manifest file with its size and SHA-256, and no
    other file (a copy fetched before, untouched since)."""
    try:
        if not target.is_dir() or {p.name for p in target.iterdir()} != {
            f.name for f in manifest.files
        }:
            return False
        return all(
            (target / f.name).is_file()
            and (target / f.name).stat().st_size == f.size
            and sha256_file(target / f.name) == f.sha256
            for f in manifest.files
        )
    except OSError:
        return False
