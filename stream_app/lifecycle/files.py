"""File helpers for bundles: streamed SHA-256, durable writes, atomic directory publish."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CHUNK_BYTES",
    "fsync_directory",
    "publish_directory",
    "sha256_file",
    "sha256_stream",
    "write_durably",
]

CHUNK_BYTES = 1 << 20


def sha256_stream(handle: BinaryIO) -> str:
    """Hex SHA-256 of everything left in ``handle``, read in 1 MiB chunks.

    Example:
        >>> import io
        >>> sha256_stream(io.BytesIO(b"abc"))[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed so a large model never sits in memory twice."""
    with path.open("rb") as handle:
        return sha256_stream(handle)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it before returning."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_directory(staged: Path, target: Path, *, overwrite: bool) -> None:
    """Move a fully written ``staged`` directory to ``target`` with a rename.

    A missing or empty ``target`` is replaced in one atomic rename. A non-empty one is
    refused with FileExistsError unless ``overwrite``; then the old directory is renamed
    aside first, so readers see either the old bundle, no bundle for an instant, or the
    new one, never a mixture.
    """
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{target} already holds files; pass overwrite=True to replace")
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        os.rename(target, aside)
        os.rename(staged, target)
        fsync_directory(target.parent)
        shutil.rmtree(aside)
        return
    # os.replace onto an empty directory is one atomic rename on POSIX.
    os.replace(staged, target)
    fsync_directory(target.parent)
