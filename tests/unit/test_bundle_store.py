"""Bundle stores: chunks and manifest written, every chunk and file checked when fetched,
and a fetched bundle loaded only through the registered digest.

The chunked store runs on the in-memory ChunkLog, which reads like the compacted topic
(the newest record of a key is its value); the Kafka one is tested against the broker in
tests/integration/test_bundle_store.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sklearn.dummy import DummyClassifier

from stream_app.errors import BundleIntegrityError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import SIGNATURE_FILE, save_bundle
from stream_app.lifecycle.bundle_chunks import FileEntry, Manifest, chunk_key, manifest_key
from stream_app.lifecycle.bundle_metadata import METADATA_FILE, MODEL_FILE, canonical_json
from stream_app.lifecycle.bundle_source import BundlePolicy, load_registered
from stream_app.lifecycle.bundle_store import (
    ChunkedBundleStore,
    DirectoryBundleStore,
    InMemoryChunkLog,
    StoredBundle,
)
from stream_app.lifecycle.registry_state import ModelVersion
from tests.utils.pickles import Detonator

KEY = b"k" * 32
AT = datetime(2026, 1, 1, tzinfo=UTC)
MODEL_BYTES = b"0123456789"  # chunks of 4: "0123", "4567", "89"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def handmade(directory: Path, model: bytes = MODEL_BYTES, signature: bytes | None = None) -> bytes:
    """A bundle directory as a store sees it (no unpickling here): its metadata.json bytes."""
    directory.mkdir(parents=True)
    doc = {
        "format_version": 1, "name": "m", "version": "1.0.0", "features": ["x"],
        "trained_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z",
        "python_version": "3.11", "numpy_version": "2", "sklearn_version": "1.6",
        "joblib_version": "1.4", "files": {MODEL_FILE: sha(model)},
    }  # fmt: skip
    raw = canonical_json(doc)
    (directory / METADATA_FILE).write_bytes(raw)
    (directory / MODEL_FILE).write_bytes(model)
    if signature is not None:
        (directory / SIGNATURE_FILE).write_bytes(signature)
    return raw


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_put_writes_every_chunk_then_the_manifest(tmp_path: Path) -> None:
    raw = handmade(tmp_path / "b", signature=b"sig")
    log = InMemoryChunkLog()
    stored = ChunkedBundleStore(log, chunk_bytes=4).put(tmp_path / "b")

    digest = sha(raw)
    assert stored == StoredBundle(digest, f"kafka:{digest}")
    meta_chunks, model_chunks = pieces(raw, 4), pieces(MODEL_BYTES, 4)
    assert [len(c) for c in model_chunks] == [4, 4, 2]
    expected_chunks = [(chunk_key(sha(c)), c) for c in [*meta_chunks, *model_chunks, b"sig"]]
    assert log.records[:-1] == expected_chunks
    key, value = log.records[-1]
    assert key == f"bundle:{digest}"
    assert json.loads(value) == {
        "format": 1,
        "digest": digest,
        "files": [
            {"name": METADATA_FILE, "size": len(raw), "sha256": digest,
             "chunks": [sha(c) for c in meta_chunks]},
            {"name": MODEL_FILE, "size": 10, "sha256": sha(MODEL_BYTES),
             "chunks": [sha(b"0123"), sha(b"4567"), sha(b"89")]},
            {"name": SIGNATURE_FILE, "size": 3, "sha256": sha(b"sig"), "chunks": [sha(b"sig")]},
        ],
    }  # fmt: skip


def test_equal_chunks_are_one_key_and_files_outside_the_bundle_stay_behind(tmp_path: Path) -> None:
    handmade(tmp_path / "b", model=b"abcdabcdab")
    (tmp_path / "b" / "notes.txt").write_bytes(b"not part of the bundle")
    log = InMemoryChunkLog()
    store = ChunkedBundleStore(log, chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    manifest = Manifest.parse(log.read([manifest_key(stored.digest)])[manifest_key(stored.digest)],
                              stored.digest)  # fmt: skip
    assert [f.name for f in manifest.files] == [METADATA_FILE, MODEL_FILE]
    assert manifest.files[1].chunks == (sha(b"abcd"), sha(b"abcd"), sha(b"ab"))
    fetched = store.fetch(stored.location, stored.digest, tmp_path / "into")
    assert sorted(p.name for p in fetched.iterdir()) == [METADATA_FILE, MODEL_FILE]
    assert (fetched / MODEL_FILE).read_bytes() == b"abcdabcdab"


def test_fetch_writes_the_files_into_a_directory_named_by_the_digest(tmp_path: Path) -> None:
    raw = handmade(tmp_path / "b", signature=b"sig")
    store = ChunkedBundleStore(InMemoryChunkLog(), chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    into = tmp_path / "root" / "fetched"

    fetched = store.fetch(stored.location, stored.digest, into)

    assert fetched == into / stored.digest
    assert [p.name for p in into.iterdir()] == [stored.digest]  # no staging left behind
    for name in (METADATA_FILE, MODEL_FILE, SIGNATURE_FILE):
        assert (fetched / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (fetched / METADATA_FILE).read_bytes() == raw
    assert fetched.stat().st_mode & 0o777 == 0o755


class CountingLog(InMemoryChunkLog):
    """Counts the keys read, to tell a reused copy from a download."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[list[str]] = []

    def read(self, keys: Any) -> dict[str, bytes]:
        self.reads.append(sorted(keys))
        return super().read(keys)


def test_an_intact_copy_is_reused_and_a_changed_one_fetched_again(tmp_path: Path) -> None:
    handmade(tmp_path / "b")
    log = CountingLog()
    store = ChunkedBundleStore(log, chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    into = tmp_path / "into"
    store.fetch(stored.location, stored.digest, into)
    log.reads.clear()

    store.fetch(stored.location, stored.digest, into)
    assert log.reads == [[manifest_key(stored.digest)]]  # the manifest only

    (into / stored.digest / MODEL_FILE).write_bytes(b"changed on this host")
    fetched = store.fetch(stored.location, stored.digest, into)
    assert len(log.reads) == 1 + 3  # the manifest, then metadata.json and model.joblib
    assert (fetched / MODEL_FILE).read_bytes() == MODEL_BYTES


def _manifest_doc(log: InMemoryChunkLog, digest: str) -> dict[str, Any]:
    return dict(json.loads(log.read([manifest_key(digest)])[manifest_key(digest)]))


def _rewrite_manifest(log: InMemoryChunkLog, digest: str, doc: dict[str, Any]) -> None:
    log.write([(manifest_key(digest), json.dumps(doc).encode())])


def _tamper_chunk(log: InMemoryChunkLog, digest: str) -> None:
    log.write([(chunk_key(sha(b"4567")), b"4X67")])


def _drop_chunk(log: InMemoryChunkLog, digest: str) -> None:
    log.records = [r for r in log.records if r[0] != chunk_key(sha(b"89"))]


def _other_digest(log: InMemoryChunkLog, digest: str) -> None:
    _rewrite_manifest(log, digest, {**_manifest_doc(log, digest), "digest": "ab" * 32})


def _escaping_name(log: InMemoryChunkLog, digest: str) -> None:
    doc = _manifest_doc(log, digest)
    doc["files"][1]["name"] = "../model.joblib"
    _rewrite_manifest(log, digest, doc)


def _other_model(log: InMemoryChunkLog, digest: str) -> None:
    # Sound chunks of another model, and a manifest that names them: metadata.json
    # lists another digest for model.joblib, so they are never fetched.
    other = b"another model"
    log.write([(chunk_key(sha(other)), other)])
    doc = _manifest_doc(log, digest)
    doc["files"][1].update(size=len(other), sha256=sha(other), chunks=[sha(other)])
    _rewrite_manifest(log, digest, doc)


def _other_metadata(log: InMemoryChunkLog, digest: str) -> None:
    # metadata.json's entry keeps the registered digest, its chunks are other sound ones.
    other = b'{"name":"m"}'
    log.write([(chunk_key(sha(other)), other)])
    doc = _manifest_doc(log, digest)
    doc["files"][0].update(size=len(other), chunks=[sha(other)])
    _rewrite_manifest(log, digest, doc)


def _unlisted_file(log: InMemoryChunkLog, digest: str) -> None:
    doc = _manifest_doc(log, digest)
    doc["files"].append({"name": "extra.py", "size": 0, "sha256": sha(b""), "chunks": []})
    _rewrite_manifest(log, digest, doc)


def _no_manifest(log: InMemoryChunkLog, digest: str) -> None:
    log.records = [r for r in log.records if r[0] != manifest_key(digest)]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_tamper_chunk, "model.joblib: chunk 2 of 3 holds other bytes than its digest "
                        f"{sha(b'4567')[:16]}... (tampered or corrupt)"),
        (_drop_chunk, f"model.joblib: chunk 3 of 3 ({sha(b'89')[:16]}...) is not in the store"),
        (_other_digest, "the bundle manifest is for 'abab"),
        (_escaping_name, "the bundle manifest is not valid: bad file name '../model.joblib'"),
        (_other_model, "the bundle manifest lists model.joblib with another SHA-256 than "
                       "metadata.json"),
        (_other_metadata, "metadata.json: assembled 12 bytes with SHA-256 "),
        (_unlisted_file, "the bundle manifest lists files metadata.json does not: ['extra.py']"),
        (_no_manifest, "the bundle store holds no manifest for "),
    ],
)  # fmt: skip
def test_a_bundle_that_does_not_check_out_is_refused_and_nothing_is_left(
    tmp_path: Path, tamper: Any, message: str
) -> None:
    handmade(tmp_path / "b")
    log = InMemoryChunkLog()
    store = ChunkedBundleStore(log, chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    tamper(log, stored.digest)
    into = tmp_path / "into"
    with pytest.raises(BundleIntegrityError) as refused:
        store.fetch(stored.location, stored.digest, into)
    assert str(refused.value).startswith(message), str(refused.value)
    assert not into.exists() or list(into.iterdir()) == []


def test_the_newest_record_of_a_key_counts_so_a_second_put_repairs_a_forged_chunk(
    tmp_path: Path,
) -> None:
    handmade(tmp_path / "b")
    log = InMemoryChunkLog()
    store = ChunkedBundleStore(log, chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    _tamper_chunk(log, stored.digest)
    with pytest.raises(BundleIntegrityError, match="chunk 2 of 3 holds other bytes"):
        store.fetch(stored.location, stored.digest, tmp_path / "into")
    assert store.put(tmp_path / "b") == stored
    fetched = store.fetch(stored.location, stored.digest, tmp_path / "into")
    assert (fetched / MODEL_FILE).read_bytes() == MODEL_BYTES


def test_a_location_must_name_the_registered_digest(tmp_path: Path) -> None:
    handmade(tmp_path / "b")
    store = ChunkedBundleStore(InMemoryChunkLog(), chunk_bytes=4)
    stored = store.put(tmp_path / "b")
    with pytest.raises(BundleIntegrityError, match="does not name the registered digest cdcd"):
        store.fetch(stored.location, "cd" * 32, tmp_path / "into")


def test_put_refuses_a_bundle_whose_files_are_not_what_metadata_lists(tmp_path: Path) -> None:
    handmade(tmp_path / "b")
    (tmp_path / "b" / MODEL_FILE).write_bytes(b"changed after saving")
    log = InMemoryChunkLog()
    with pytest.raises(BundleIntegrityError, match="lists model.joblib with another SHA-256"):
        ChunkedBundleStore(log, chunk_bytes=4).put(tmp_path / "b")
    assert not any(key.startswith("bundle:") for key, _ in log.records)


def _version(location: str, digest: str | None) -> ModelVersion:
    return ModelVersion("conversion", "1.0.0", {}, {}, location, digest, {}, AT)


def _meta() -> dict[str, Any]:
    return {"name": "conversion", "version": "1.0.0", "features": list(FEATURE_NAMES)}


def test_a_version_in_the_store_loads_from_a_copy_under_the_root(tmp_path: Path) -> None:
    model = DummyClassifier().fit([[0.0] * len(FEATURE_NAMES)] * 2, [0, 1])
    info = save_bundle(model, _meta(), tmp_path / "trainer" / "b", signing_key=KEY, created_at=AT)
    store = ChunkedBundleStore(InMemoryChunkLog(), chunk_bytes=1024)
    stored = store.put(info.directory)
    root = tmp_path / "worker-root"

    bundle = load_registered(_version(stored.location, info.digest), BundlePolicy(root, KEY), store)

    assert (bundle.version, bundle.digest) == ("1.0.0", info.digest)
    assert bundle.directory == root / "fetched" / info.digest
    assert bundle.warnings == ()


@pytest.mark.parametrize(
    ("tamper", "registered", "message"),
    [
        (None, "ab" * 32, "the location 'kafka:"),  # another digest recorded
        ("chunk", None, "holds other bytes than its digest"),
        ("unsigned", None, "no bundle signing key to verify the bundle with"),
    ],
)
def test_a_fetched_bundle_is_checked_before_its_pickle_runs(
    tmp_path: Path, tamper: str | None, registered: str | None, message: str
) -> None:
    marker = tmp_path / "the-pickle-ran"
    info = save_bundle(Detonator(marker), _meta(), tmp_path / "b", signing_key=KEY, created_at=AT)
    log = InMemoryChunkLog()
    store = ChunkedBundleStore(log, chunk_bytes=64)
    stored = store.put(info.directory)
    policy = BundlePolicy(tmp_path / "root", KEY)
    if tamper == "chunk":
        manifest = Manifest.parse(log.read([manifest_key(info.digest)])[manifest_key(info.digest)],
                                  info.digest)  # fmt: skip
        model = next(f for f in manifest.files if f.name == MODEL_FILE)
        log.write([(chunk_key(model.chunks[0]), b"\x80\x04K\x01.")])  # a pickle of its own
    if tamper == "unsigned":
        policy = BundlePolicy(tmp_path / "root")
    with pytest.raises(BundleIntegrityError, match=message):
        load_registered(_version(stored.location, registered or info.digest), policy, store)
    assert not marker.exists()


def test_without_a_store_a_version_in_one_is_refused(tmp_path: Path) -> None:
    policy = BundlePolicy(tmp_path, KEY)
    with pytest.raises(BundleIntegrityError, match="in a bundle store this process cannot read"):
        load_registered(_version("kafka:" + "ab" * 32, "ab" * 32), policy)
    with pytest.raises(BundleIntegrityError, match="the registry recorded no digest"):
        load_registered(_version("kafka:" + "ab" * 32, None), policy)


def test_the_directory_store_registers_a_bundle_by_its_path_under_the_root(tmp_path: Path) -> None:
    raw = handmade(tmp_path / "root" / "b")
    store = DirectoryBundleStore(tmp_path / "root")
    stored = store.put(tmp_path / "root" / "x" / ".." / "b")
    assert stored == StoredBundle(sha(raw), str(tmp_path / "root" / "b"))
    assert (
        store.fetch(stored.location, stored.digest, tmp_path / "unused") == tmp_path / "root" / "b"
    )
    handmade(tmp_path / "elsewhere")
    with pytest.raises(BundleIntegrityError, match="outside STREAM_BUNDLE_ROOT"):
        store.put(tmp_path / "elsewhere")


def test_chunk_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="chunk_bytes must be >= 1, got 0"):
        ChunkedBundleStore(InMemoryChunkLog(), chunk_bytes=0)
    assert FileEntry("a", 0, sha(b""), ()).chunks == ()
