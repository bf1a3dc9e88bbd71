"""Which versions a worker serves: production from the alias, challenger from the tag."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream_app.errors import BundleIntegrityError
from stream_app.lifecycle.registry_state import ModelRecord, ModelVersion, RegistryEvent, fold
from stream_app.lifecycle.serving_choice import check_loaded, choose_challenger, choose_serving

AT = datetime(2026, 1, 1, tzinfo=UTC)


def version(number: str, digest: str | None = None, **tags: str) -> ModelVersion:
    return ModelVersion("m", number, {}, {}, f"models/{number}", digest, tags, AT)


CHALLENGER = {"role": "challenger"}


@pytest.mark.parametrize(
    ("tagged", "untagged", "production", "expected"),
    [
        ((), ("1.0.0",), "1.0.0", None),  # nothing tagged
        (("1.1.0",), ("1.0.0",), "1.0.0", "1.1.0"),
        (("1.1.0", "1.10.0", "1.9.0"), ("1.0.0",), "1.0.0", "1.10.0"),  # semver, not text
        (("2.0.0-rc.1", "1.5.0"), ("1.0.0",), "1.0.0", "2.0.0-rc.1"),  # a pre-release is newer
        (("1.1.0",), (), "1.1.0", None),  # the challenger was promoted: no B
        (("1.1.0", "1.2.0"), (), "1.2.0", "1.1.0"),  # the newest is production: next one
        (("1.1.0",), ("1.0.0",), None, "1.1.0"),  # chosen even before a promotion
    ],
)
def test_the_challenger_is_the_newest_tagged_version_not_in_production(
    tagged: tuple[str, ...], untagged: tuple[str, ...], production: str | None, expected: str | None
) -> None:
    versions = {v: version(v, **CHALLENGER) for v in tagged}
    versions.update({v: version(v) for v in untagged})
    record = ModelRecord("m", versions, lineage=(production,) if production else ())
    chosen = choose_challenger(record)
    assert (None if chosen is None else chosen.version) == expected


def test_other_role_tags_are_not_challengers() -> None:
    record = ModelRecord("m", {"1.1.0": version("1.1.0", role="shadow")}, lineage=())
    assert choose_challenger(record) is None


def test_serving_follows_promotions_and_rollbacks() -> None:
    events = [
        RegistryEvent("registered", "m", "1.0.0", AT, {"path": "a"}),
        RegistryEvent("registered", "m", "1.1.0", AT, {"path": "b", "tags": CHALLENGER}),
        RegistryEvent("promoted", "m", "1.0.0", AT, {"previous": None}),
    ]
    state = fold(events)
    assert choose_serving(state, "m").versions == ("1.0.0", "1.1.0")
    state = fold([RegistryEvent("promoted", "m", "1.1.0", AT, {"previous": "1.0.0"})], state)
    assert choose_serving(state, "m").versions == ("1.1.0", None)
    state = fold([RegistryEvent("rolled_back", "m", "1.0.0", AT, {"previous": "1.1.0"})], state)
    assert choose_serving(state, "m").versions == ("1.0.0", "1.1.0")
    assert choose_serving(state, "other").versions == (None, None)


@pytest.mark.parametrize(
    ("metadata", "digest", "problem"),
    [
        ({"name": "m", "version": "1.0.0"}, "abc", None),
        ({"name": "m", "version": "1.0.1"}, "abc", "bundle is m 1.0.1"),
        ({"name": "x", "version": "1.0.0"}, "abc", "bundle is x 1.0.0"),
        ({"name": "m", "version": "1.0.0"}, "abd", "digest abd is not the registered abc"),
    ],
)
def test_a_loaded_bundle_must_be_the_registered_version(
    metadata: dict[str, str], digest: str, problem: str | None
) -> None:
    expected = version("1.0.0", digest="abc")
    if problem is None:
        check_loaded(expected, metadata, digest)
        return
    with pytest.raises(BundleIntegrityError, match=problem):
        check_loaded(expected, metadata, digest)


def test_without_a_registered_digest_any_digest_is_accepted() -> None:
    check_loaded(version("1.0.0"), {"name": "m", "version": "1.0.0"}, "whatever")
