"""The registry follower's fold and installs, with a fake bundle loader (no broker)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from stream_app.config import load_settings
from stream_app.errors import BundleIntegrityError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import Bundle
from stream_app.lifecycle.registry_signing import load_signing_key, sign_event
from stream_app.lifecycle.registry_state import ModelVersion, RegistryEvent
from stream_app.registry_follower import RegistryFollower
from stream_app.serving import ServingModels
from tests.utils.keys import make_keys

AT = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = DummyClassifier().fit(np.zeros((2, len(FEATURE_NAMES))), [0, 1])


class FakeLoader:
    """Loads every version except those listed as broken; records what it loaded."""

    def __init__(self, broken: tuple[str, ...] = ()) -> None:
        self.broken = set(broken)
        self.loaded: list[str] = []

    def __call__(self, version: ModelVersion) -> Bundle:
        self.loaded.append(version.version)
        if version.version in self.broken:
            raise BundleIntegrityError(f"{version.path}: model.joblib: SHA-256 mismatch")
        meta = {"name": version.name, "version": version.version, "features": list(FEATURE_NAMES)}
        return Bundle(MODEL, meta, "digest", Path(version.path))


def records(*events: RegistryEvent, start: int = 0) -> list[tuple[int, bytes | None]]:
    return [(start + i, e.to_json().encode()) for i, e in enumerate(events)]


def registered(version: str, challenger: bool = False) -> RegistryEvent:
    tags = {"role": "challenger"} if challenger else {}
    return RegistryEvent("registered", "conversion", version, AT, {"path": version, "tags": tags})


def promoted(version: str, previous: str | None) -> RegistryEvent:
    return RegistryEvent("promoted", "conversion", version, AT, {"previous": previous})


def follower(loader: FakeLoader) -> RegistryFollower:
    settings = load_settings({}, model_name="conversion")
    return RegistryFollower(settings, ServingModels(b_share=0.5), load=loader)


def test_nothing_is_installed_before_a_promotion() -> None:
    loader = FakeLoader()
    f = follower(loader)
    f.fold(records(registered("1.0.0"), registered("1.1.0", challenger=True)))
    asyncio.run(f.sync())
    assert f.serving.current is None
    assert loader.loaded == []


def test_production_and_challenger_are_installed_and_swapped() -> None:
    loader = FakeLoader()
    f = follower(loader)
    f.fold(
        records(registered("1.0.0"), registered("1.1.0", challenger=True), promoted("1.0.0", None))
    )
    asyncio.run(f.sync())
    assert f.serving.current is not None
    assert (f.serving.current.production_version, f.serving.current.challenger_version) == (
        "1.0.0",
        "1.1.0",
    )
    f.fold(records(promoted("1.1.0", "1.0.0"), start=3))
    asyncio.run(f.sync())
    assert f.serving.current.production_version == "1.1.0"
    assert f.serving.current.challenger_version is None
    # 1.1.0 was already loaded as the challenger: reused, not loaded again.
    assert loader.loaded == ["1.0.0", "1.1.0"]


class FetchingLoader(FakeLoader):
    """Loads a version of the bundle store from a fetched copy elsewhere, as a worker does."""

    def __call__(self, version: ModelVersion) -> Bundle:
        bundle = super().__call__(version)
        assert version.digest is not None
        return replace(bundle, digest=version.digest,
                       directory=Path("/root/fetched") / version.digest)  # fmt: skip


def test_a_fetched_bundle_that_stays_chosen_is_reused_by_its_digest() -> None:
    loader = FetchingLoader()
    f = follower(loader)
    stored = [
        RegistryEvent("registered", "conversion", version, AT,
                      {"path": f"kafka:{digest}", "digest": digest, "tags": tags})
        for version, digest, tags in (("1.0.0", "aa" * 32, {}),
                                      ("1.1.0", "bb" * 32, {"role": "challenger"}))
    ]  # fmt: skip
    f.fold(records(*stored, promoted("1.0.0", None)))
    asyncio.run(f.sync())
    f.fold(records(promoted("1.1.0", "1.0.0"), start=3))
    asyncio.run(f.sync())
    assert f.serving.current is not None
    assert f.serving.current.production_version == "1.1.0"
    assert loader.loaded == ["1.0.0", "1.1.0"]  # the challenger's copy serves as production


def test_a_refused_bundle_leaves_the_previous_set_serving() -> None:
    loader = FakeLoader(broken=("1.1.0",))
    f = follower(loader)
    f.fold(records(registered("1.0.0"), registered("1.1.0"), promoted("1.0.0", None)))
    asyncio.run(f.sync())
    f.fold(records(promoted("1.1.0", "1.0.0"), start=3))
    asyncio.run(f.sync())
    assert f.serving.current is not None
    assert f.serving.current.production_version == "1.0.0"
    assert f.serving.refused is not None
    assert f.serving.refused.version == "1.1.0"
    assert "SHA-256 mismatch" in f.serving.refused.reason
    asyncio.run(f.sync())  # the same choice again: not retried
    assert loader.loaded == ["1.0.0", "1.1.0"]
    # A rollback to a version that loads clears the refusal.
    f.fold(records(RegistryEvent("rolled_back", "conversion", "1.0.0", AT,
                                 {"previous": "1.1.0"}), start=4))  # fmt: skip
    asyncio.run(f.sync())
    assert f.serving.refused is None
    assert f.serving.current.production_version == "1.0.0"


def test_a_worker_started_after_a_refused_promotion_serves_the_earlier_version() -> None:
    loader = FakeLoader(broken=("1.2.0", "1.1.0"))
    f = follower(loader)  # a fresh worker: nothing served yet when it reads the log
    f.fold(records(registered("1.0.0"), registered("1.1.0"), registered("1.2.0"),
                   promoted("1.0.0", None), promoted("1.1.0", "1.0.0"),
                   promoted("1.2.0", "1.1.0")))  # fmt: skip
    asyncio.run(f.sync())
    assert f.serving.current is not None
    assert f.serving.current.production_version == "1.0.0"  # the newest that verifies
    assert f.serving.refused is not None and f.serving.refused.version == "1.2.0"
    assert loader.loaded == ["1.2.0", "1.1.0", "1.0.0"]


def test_a_broken_challenger_refuses_the_whole_new_set() -> None:
    loader = FakeLoader(broken=("1.2.0",))
    f = follower(loader)
    f.fold(records(registered("1.0.0"), promoted("1.0.0", None)))
    asyncio.run(f.sync())
    f.fold(records(registered("1.2.0", challenger=True), start=2))
    asyncio.run(f.sync())
    assert f.serving.current is not None
    assert f.serving.current.challenger_version is None
    assert f.serving.refused is not None and f.serving.refused.version == "1.2.0"


@pytest.mark.parametrize(
    "value", [b"not json", b'{"kind": "deleted"}', None, registered("1.0.0").to_json().encode()]
)
def test_bad_records_are_skipped_and_counted(value: bytes | None) -> None:
    f = follower(FakeLoader())
    f.fold(records(registered("1.0.0")))
    f.fold([(1, value)])  # the last case: a duplicate registration the fold refuses
    assert (f.applied, f.skipped) == (1, 1)
    report = f.report()
    assert report["records_skipped"] == 1
    assert [v["version"] for v in report["versions"]] == ["1.0.0"]


def test_the_report_shows_versions_production_challenger_and_history() -> None:
    f = follower(FakeLoader())
    f.fold(
        records(registered("1.0.0"), registered("1.1.0", challenger=True), promoted("1.0.0", None))
    )
    asyncio.run(f.sync())
    report = f.report()
    assert (report["model"], report["production"], report["challenger"]) == (
        "conversion",
        "1.0.0",
        "1.1.0",
    )
    assert [h["version"] for h in report["history"]] == ["1.0.0"]
    assert report["serving"]["loaded"] is True


def test_with_a_verify_key_only_signed_events_are_applied(tmp_path: Path) -> None:
    keys, other = make_keys(tmp_path / "ours"), make_keys(tmp_path / "theirs")
    settings = load_settings({}, model_name="conversion", registry_verify_key=keys.verify)
    topic = f"{settings.topic_prefix}{settings.topic_model_registry}"
    ours, theirs = load_signing_key(keys.signing), load_signing_key(other.signing)
    loader = FakeLoader()
    f = RegistryFollower(settings, ServingModels(b_share=0.5), load=loader)

    def signed(event: RegistryEvent, key: Any = ours) -> RegistryEvent:
        return sign_event(event, topic, key)

    gate = {"previous": "1.0.0", "gate_digest": "ab" * 32}
    first = {"previous": None, "gate_digest": "ab" * 32}
    churn_promotion = signed(RegistryEvent("promoted", "churn", "1.1.0", AT, gate))
    f.fold(
        records(
            signed(registered("1.0.0")),
            signed(registered("1.1.0")),
            signed(RegistryEvent("promoted", "conversion", "1.0.0", AT, first)),
        )
    )
    asyncio.run(f.sync())
    assert f.health() == {"up": True, "signatures_verified": True, "refused": {}}
    forged = RegistryEvent("promoted", "conversion", "1.1.0", AT, gate)
    f.fold(
        records(
            forged,  # written with a plain producer
            signed(forged, theirs),  # signed by another key
            replace(churn_promotion, name="conversion"),  # another model's, renamed
            start=3,
        )
    )
    asyncio.run(f.sync())
    assert f.state.models["conversion"].production == "1.0.0"
    assert (f.serving.current and f.serving.current.production_version) == "1.0.0"
    assert f.applied == 3
    assert f.health() == {
        "up": False,
        "signatures_verified": True,
        "refused": {"bad_signature": 2, "unsigned": 1},
        "error": "registry record at offset 5 refused for its signature; "
        "the model before it keeps serving",
    }
    # The next verified event clears the degraded state; the counts stay.
    f.fold(records(signed(RegistryEvent("promoted", "conversion", "1.1.0", AT, gate)), start=6))
    asyncio.run(f.sync())
    assert f.health()["up"] is True
    assert (f.serving.current and f.serving.current.production_version) == "1.1.0"


def test_without_a_verify_key_events_apply_unchecked() -> None:
    f = follower(FakeLoader())
    f.fold(records(registered("1.0.0"), promoted("1.0.0", None)))
    assert f.state.models["conversion"].production == "1.0.0"
    assert f.health() == {"up": True, "signatures_verified": False, "refused": {}}


def test_the_served_bundles_warnings_are_kept_for_health_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class WarningLoader(FakeLoader):
        def __call__(self, version: ModelVersion) -> Bundle:
            bundle = super().__call__(version)
            return replace(bundle, warnings=(f"trained with scikit-learn 0.{version.version}",))

    f = follower(WarningLoader())
    f.fold(records(registered("1.0.0"), registered("1.1.0", True), promoted("1.0.0", None)))
    with caplog.at_level("WARNING", logger="stream_app.registry_follower"):
        asyncio.run(f.sync())
    assert f.serving.bundle_warnings == {
        "1.0.0": ("trained with scikit-learn 0.1.0.0",),
        "1.1.0": ("trained with scikit-learn 0.1.1.0",),
    }
    assert [r.getMessage() for r in caplog.records] == [
        "bundle 1.0.0: trained with scikit-learn 0.1.0.0",
        "bundle 1.1.0: trained with scikit-learn 0.1.1.0",
    ]


class LogConsumer:
    """The registry partition as a follower's consumer sees it, one batch per getmany;
    it notes at each call whether the follower said it was caught up."""

    def __init__(self, follower: RegistryFollower, batches: list[list[tuple[int, bytes | None]]]):
        self.follower, self.batches = follower, batches
        self.end = sum(len(b) for b in batches)
        self.read = 0
        self.seen: list[tuple[bool, str | None]] = []

    async def getmany(self, tp: Any, timeout_ms: int) -> dict[Any, list[Any]]:
        current = self.follower.serving.current
        self.seen.append((self.follower.caught_up.is_set(),
                          None if current is None else current.production_version))  # fmt: skip
        if not self.batches:
            await asyncio.Event().wait()  # nothing more in the log
        batch = self.batches.pop(0)
        self.read += len(batch)
        return {tp: [SimpleNamespace(offset=o, value=v) for o, v in batch]}

    def last_stable_offset(self, tp: Any) -> int:
        return self.end

    async def position(self, tp: Any) -> int:
        return self.read


async def test_caught_up_once_the_log_is_read_to_its_end_and_the_choice_installed() -> None:
    f = follower(FakeLoader())
    log = records(registered("1.0.0"), registered("1.1.0", challenger=True),
                  promoted("1.0.0", None))  # fmt: skip
    consumer = LogConsumer(f, [log[:2], log[2:]])
    following = asyncio.create_task(f._consume(consumer))
    try:
        await asyncio.wait_for(f.caught_up.wait(), 10)
    finally:
        following.cancel()
    assert f.serving.current is not None and f.serving.current.production_version == "1.0.0"
    # Not caught up after the first batch, which ended before the log did.
    assert consumer.seen[:2] == [(False, None), (False, None)]


async def test_an_empty_log_is_caught_up_at_once_with_nothing_to_serve() -> None:
    f = follower(FakeLoader())
    consumer = LogConsumer(f, [[]])
    following = asyncio.create_task(f._consume(consumer))
    try:
        await asyncio.wait_for(f.caught_up.wait(), 10)
    finally:
        following.cancel()
    assert f.serving.current is None
