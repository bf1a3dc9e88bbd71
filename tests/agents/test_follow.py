"""A page's follower keeps the newest value per key for a bounded number of keys."""

from __future__ import annotations

from types import SimpleNamespace

from agents.follow import LatestByKey


def _record(key: bytes | None, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(topic="t", key=key, value=value)


def test_the_newest_value_per_key_for_at_most_max_keys_keys() -> None:
    latest = LatestByKey(["127.0.0.1:1"], "t", 1, max_keys=2)
    for key, value in [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (None, b"x")]:
        latest.follower._apply(_record(key, value))
    # "b" was written longest ago when "c" came: it went; "a" was rewritten after it.
    assert dict(latest.latest) == {b"a": b"2", b"c": b"1"}
    latest.follower._apply(_record(b"a", None))  # a tombstone forgets the key
    assert dict(latest.latest) == {b"c": b"1"}
    assert latest.read == 6
