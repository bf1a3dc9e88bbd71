"""A bundle as digest-addressed chunks and a manifest that names them (pure: no I/O but files).

A bundle store that keeps records of bounded size (a Kafka topic: a record must fit the
broker's message size) cuts each bundle file into chunks of at most ``chunk_bytes``.
Every chunk is stored under the key ``chunk:<SHA-256 of its bytes>``, so equal chunks of
two bundles are one record and a record that holds other bytes than its key names is
found out by hashing it. The manifest, stored under ``bundle:<bundle digest>`` (the
SHA-256 of metadata.json, the digest the registry records), lists each file with its
size, SHA-256 and chunk digests in order.

Nothing in a manifest is trusted: it is checked against the digest the registry
recorded (metadata.json's entry must carry it), metadata.json once assembled is hashed
against that digest, and every other file must carry the SHA-256 metadata.json lists for
it (the signature file, which metadata.json cannot list, is checked by its HMAC when the
bundle is loaded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.bundle import SIGNATURE_FILE
from stream_app.lifecycle.bundle_metadata import METADATA_FILE, MODEL_FILE, parse_metadata

__all__ = [
    "CHUNK_KEY_PREFIX",
    "KAFKA_LOCATION_PREFIX",
    "MANIFEST_FORMAT",
    "MANIFEST_KEY_PREFIX",
    "MAX_MANIFEST_FILES",
    "FileEntry",
    "Manifest",
    "assemble_file",
    "bundle_files",
    "check_against_metadata",
    "chunk_key",
    "iter_chunks",
    "manifest_key",
]

# A registry location in the Kafka bundle store: this prefix and the bundle digest.
KAFKA_LOCATION_PREFIX = "kafka:"
CHUNK_KEY_PREFIX = "chunk:"
MANIFEST_KEY_PREFIX = "bundle:"
MANIFEST_FORMAT = 1
# A bundle is metadata.json, the files it lists and a signature: a handful of files.
MAX_MANIFEST_FILES = 64


def chunk_key(digest: str) -> str:
    """The record key of the chunk whose bytes have SHA-256 ``digest``.

    Example:
        >>> chunk_key(hashlib.sha256(b"abc").hexdigest())[:22]
        'chunk:ba7816bf8f01cfea'
    """
    return CHUNK_KEY_PREFIX + digest


def manifest_key(bundle_digest: str) -> str:
    """The record key of the manifest of the bundle whose metadata.json has this SHA-256.

    Example:
        >>> manifest_key("ab" * 32)[:11]
        'bundle:abab'
    """
    return MANIFEST_KEY_PREFIX + bundle_digest


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest: its name in the bundle, size, SHA-256 and chunk digests."""

    name: str
    size: int
    sha256: str
    chunks: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """What a bundle store holds of one bundle: its digest and its files, metadata.json first."""

    digest: str
    files: tuple[FileEntry, ...]

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, no spaces): equal manifests give equal bytes.

        Example:
            >>> entry = FileEntry("metadata.json", 3, "cd" * 32, ("cd" * 32,))
            >>> manifest = Manifest("cd" * 32, (entry,))
            >>> manifest.to_json().startswith(b'{"digest":"cdcd'), manifest.to_json().count(b" ")
            (True, 0)
        """
        doc = {
            "format": MANIFEST_FORMAT,
            "digest": self.digest,
            "files": [
                {"name": f.name, "size": f.size, "sha256": f.sha256, "chunks": list(f.chunks)}
                for f in self.files
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def parse(cls, raw: bytes, expected_digest: str) -> Manifest:
        """A manifest from its bytes, refused unless it is one for ``expected_digest``.

        Checked: the format, the digest, file names a bundle may hold (no separators, no
        repeats; metadata.json and model.joblib present), sizes, hex digests, and that
        metadata.json's entry carries the expected digest itself. BundleIntegrityError
        says what is wrong.
        """
        try:
            doc = json.loads(raw)
            if doc["format"] != MANIFEST_FORMAT or not isinstance(doc["files"], list):
                raise ValueError("unknown format")
            files = tuple(_entry(item) for item in doc["files"])
            digest = doc["digest"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise BundleIntegrityError(f"the bundle manifest is not valid: {exc}") from None
        if digest != expected_digest:
            raise BundleIntegrityError(
                f"the bundle manifest is for {digest!r}, not the registered {expected_digest}"
            )
        names = [f.name for f in files]
        if len(set(names)) != len(names) or not 0 < len(names) <= MAX_MANIFEST_FILES:
            raise BundleIntegrityError("the bundle manifest repeats a file or lists too many")
        if names[0] != METADATA_FILE or MODEL_FILE not in names:
            raise BundleIntegrityError(
                f"the bundle manifest must list {METADATA_FILE} first and {MODEL_FILE}"
            )
        if not hmac.compare_digest(files[0].sha256, expected_digest):
            raise BundleIntegrityError(
                f"the bundle manifest lists {METADATA_FILE} with another SHA-256 than the "
                f"registered {expected_digest}"
            )
        return cls(digest, files)


def _entry(item: Any) -> FileEntry:
    name, size, sha, chunks = item["name"], item["size"], item["sha256"], item["chunks"]
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"bad file name {name!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"bad size of {name!r}")
    if not _is_sha256(sha) or not isinstance(chunks, list) or not all(map(_is_sha256, chunks)):
        raise ValueError(f"bad digest of {name!r}")
    return FileEntry(name, size, sha, tuple(chunks))


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def bundle_files(directory: Path) -> list[str]:
    """The files of a bundle a store keeps: metadata.json, those it lists, the signature.

    Other files in the directory are not part of the bundle and are left behind.
    """
    raw = (directory / METADATA_FILE).read_bytes()
    listed = sorted(parse_metadata(raw)["files"])
    signed = [SIGNATURE_FILE] if (directory / SIGNATURE_FILE).is_file() else []
    return [METADATA_FILE, *listed, *signed]


def iter_chunks(handle: BinaryIO, chunk_bytes: int) -> Iterator[tuple[str, bytes]]:
    """``(SHA-256, bytes)`` of each chunk of ``handle``, at most ``chunk_bytes`` each.

    An empty file has no chunks.

    Example:
        >>> import io
        >>> [(d[:8], c) for d, c in iter_chunks(io.BytesIO(b"abcdefghij"), 4)]
        [('88d4266f', b'abcd'), ('e5e088a0', b'efgh'), ('c9df9c3f', b'ij')]
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    while chunk := handle.read(chunk_bytes):
        yield hashlib.sha256(chunk).hexdigest(), chunk


def assemble_file(entry: FileEntry, chunks: Mapping[str, bytes]) -> bytes:
    """The bytes of ``entry`` from the chunk records found, each one checked.

    ``chunks`` maps record keys (``chunk:<digest>``) to the newest value stored under
    each. Refused (BundleIntegrityError naming the file and the chunk's place) when a
    chunk is missing, holds other bytes than its digest names, or when the whole is not
    the size and SHA-256 the manifest lists.

    Example:
        >>> data = {chunk_key(d): c for d, c in [(hashlib.sha256(b"ab").hexdigest(), b"ab")]}
        >>> entry = FileEntry("x", 2, hashlib.sha256(b"ab").hexdigest(), tuple(k[6:] for k in data))
        >>> assemble_file(entry, data)
        b'ab'
        >>> assemble_file(entry, {k: b"AB" for k in data})
        Traceback (most recent call last):
        ...
        stream_app.errors.BundleIntegrityError: x: chunk 1 of 1 holds other bytes than its \
digest fb8e20fc2e4c3f24... (tampered or corrupt)
    """
    parts: list[bytes] = []
    total = 0
    for index, digest in enumerate(entry.chunks, start=1):
        place = f"{entry.name}: chunk {index} of {len(entry.chunks)}"
        value = chunks.get(chunk_key(digest))
        if value is None:
            raise BundleIntegrityError(f"{place} ({digest[:16]}...) is not in the store")
        if not hmac.compare_digest(hashlib.sha256(value).hexdigest(), digest):
            raise BundleIntegrityError(
                f"{place} holds other bytes than its digest {digest[:16]}... (tampered or corrupt)"
            )
        total += len(value)
        if total > entry.size:
            raise BundleIntegrityError(f"{entry.name}: its chunks exceed its size {entry.size}")
        parts.append(value)
    data = b"".join(parts)
    actual = hashlib.sha256(data).hexdigest()
    if total != entry.size or not hmac.compare_digest(actual, entry.sha256):
        raise BundleIntegrityError(
            f"{entry.name}: assembled {total} bytes with SHA-256 {actual}, the manifest lists "
            f"{entry.size} bytes with {entry.sha256}"
        )
    return data


def check_against_metadata(manifest: Manifest, metadata_raw: bytes) -> None:
    """Refuse a manifest whose files are not those metadata.json lists (plus the signature).

    metadata.json has been checked against the registered digest already; so each file
    it lists must appear with its SHA-256, and nothing else but the signature may appear.
    """
    listed: Mapping[str, str] = parse_metadata(metadata_raw)["files"]
    entries = {f.name: f for f in manifest.files[1:]}
    extra = sorted(set(entries) - set(listed) - {SIGNATURE_FILE})
    if extra:
        raise BundleIntegrityError(
            f"the bundle manifest lists files metadata.json does not: {extra}"
        )
    for name, digest in sorted(listed.items()):
        entry = entries.get(name)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise BundleIntegrityError(
                f"the bundle manifest lists {name} with another SHA-256 than {METADATA_FILE}"
            )
