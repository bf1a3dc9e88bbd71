"""Ed25519 signatures of registry events: what verifies, what is refused and why."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.lifecycle.registry import InMemoryRegistryStore, ModelRegistry
from stream_app.lifecycle.registry_signing import (
    EventVerifier,
    check_event,
    gate_digest,
    sign_event,
)
from stream_app.lifecycle.registry_state import RegistryEvent
from tests.utils.keys import make_keys
from tests.utils.lifecycle import TickingClock, passing_report

TOPIC = "p.model-registry"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
AT = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "ab" * 32
PROMOTED = RegistryEvent(
    "promoted", "conversion", "1.1.0", AT, {"previous": "1.0.0", "gate_digest": DIGEST}
)


def test_a_signature_is_deterministic_and_travels_in_the_json() -> None:
    signed = sign_event(PROMOTED, TOPIC, KEY)
    assert signed.signature == sign_event(PROMOTED, TOPIC, KEY).signature
    assert len(base64.b64decode(signed.signature or "")) == 64
    assert RegistryEvent.from_json(signed.to_json()) == signed
    assert "signature" not in PROMOTED.to_dict()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda e: e, None),
        (lambda e: replace(e, signature=None), "unsigned"),
        (lambda e: sign_event(replace(e, signature=None), TOPIC, OTHER), "bad_signature"),
        # The same promotion, replayed as one of another model: the name is signed.
        (lambda e: replace(e, name="churn"), "bad_signature"),
        (lambda e: replace(e, version="1.2.0"), "bad_signature"),
        (lambda e: replace(e, at=datetime(2026, 1, 2, tzinfo=UTC)), "bad_signature"),
        (lambda e: replace(e, payload={**e.payload, "previous": None}), "bad_signature"),
        (lambda e: replace(e, kind="rolled_back"), "bad_signature"),
        (lambda e: replace(e, signature="not base64!"), "bad_signature"),
        (lambda e: replace(e, signature=base64.b64encode(b"short").decode()), "bad_signature"),
    ],
)
def test_any_change_after_signing_is_refused(tamper: object, reason: str | None) -> None:
    event = tamper(sign_event(PROMOTED, TOPIC, KEY))  # type: ignore[operator]
    assert check_event(event, TOPIC, KEY.public_key()) == reason


def test_the_topic_is_signed_so_a_staging_event_does_not_verify_in_production() -> None:
    signed = sign_event(PROMOTED, "staging.model-registry", KEY)
    assert check_event(signed, "staging.model-registry", KEY.public_key()) is None
    assert check_event(signed, TOPIC, KEY.public_key()) == "bad_signature"


def test_a_signed_promotion_without_a_gate_digest_is_refused() -> None:
    bare = RegistryEvent("promoted", "conversion", "1.1.0", AT, {"previous": "1.0.0"})
    assert check_event(sign_event(bare, TOPIC, KEY), TOPIC, KEY.public_key()) == "no_gate_digest"
    short = replace(bare, payload={"previous": "1.0.0", "gate_digest": "abc"})
    assert check_event(sign_event(short, TOPIC, KEY), TOPIC, KEY.public_key()) == "no_gate_digest"
    rollback = RegistryEvent("rolled_back", "conversion", "1.0.0", AT, {"previous": "1.1.0"})
    assert check_event(sign_event(rollback, TOPIC, KEY), TOPIC, KEY.public_key()) is None


def test_the_verifier_refuses_a_copy_and_counts_each_reason() -> None:
    verifier = EventVerifier(KEY.public_key(), TOPIC)
    signed = sign_event(PROMOTED, TOPIC, KEY)
    forged = sign_event(PROMOTED, TOPIC, OTHER)
    results = [verifier.check(e) for e in (signed, signed, PROMOTED, forged, forged)]
    assert results == [None, "replayed", "unsigned", "bad_signature", "bad_signature"]
    assert verifier.refused == {"replayed": 1, "unsigned": 1, "bad_signature": 2}


def test_a_signing_registry_writes_signed_events_that_carry_the_gate_digest() -> None:
    store = InMemoryRegistryStore()
    verifier = EventVerifier(KEY.public_key(), TOPIC)
    registry = ModelRegistry(
        store,
        clock=TickingClock(),
        sign=lambda e: sign_event(e, TOPIC, KEY),
        check=verifier.check,
    )
    registry.register("conversion", "1.0.0", {"auc": 0.8}, "m/1", digest=DIGEST)
    report = passing_report("conversion", "1.0.0")
    registry.promote("conversion", "1.0.0", expected_current=None, gate_report=report)
    events = store.events()
    assert [check_event(e, TOPIC, KEY.public_key()) for e in events] == [None, None]
    assert events[1].payload["gate_digest"] == gate_digest(report)
    assert registry.refused == 0


def test_a_verifying_registry_leaves_out_what_the_workers_leave_out() -> None:
    store = InMemoryRegistryStore()
    writer = ModelRegistry(store, clock=TickingClock(), sign=lambda e: sign_event(e, TOPIC, KEY))
    writer.register("conversion", "1.0.0", {"auc": 0.8}, "m/1", digest=DIGEST)
    writer.register("conversion", "1.1.0", {"auc": 0.8}, "m/2", digest=DIGEST)
    # Anyone with write access appends a promotion of their own (unsigned).
    store.append(
        RegistryEvent("promoted", "conversion", "1.1.0", AT, {"previous": None}),
        expected_position=2,
    )
    reader = ModelRegistry(store, check=EventVerifier(KEY.public_key(), TOPIC).check)
    assert (reader.production("conversion"), reader.position, reader.refused) == (None, 3, 1)
    unchecked = ModelRegistry(store)
    assert unchecked.production("conversion") == "1.1.0"


def test_a_signing_key_that_is_not_the_verify_key_writes_nothing() -> None:
    store = InMemoryRegistryStore()
    registry = ModelRegistry(
        store,
        sign=lambda e: sign_event(e, TOPIC, OTHER),
        check=EventVerifier(KEY.public_key(), TOPIC).check,
    )
    with pytest.raises(Exception, match="the signing key does not match the verify key"):
        registry.register("conversion", "1.0.0", {}, "m/1")
    assert store.events() == []


def test_settings_load_the_key_files_and_refuse_what_is_not_an_ed25519_key(
    tmp_path: Path,
) -> None:
    keys = make_keys(tmp_path)
    settings = load_settings({}, registry_signing_key=keys.signing, registry_verify_key=keys.verify)
    private, public = settings.registry_signer, settings.registry_verifier
    assert private is not None and public is not None
    public.verify(private.sign(b"x"), b"x")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match=r"^STREAM_REGISTRY_VERIFY_KEY: .*junk.pem: not a"):
        load_settings({"STREAM_REGISTRY_VERIFY_KEY": str(tmp_path / "junk.pem")})
    # The public half is no signing key.
    with pytest.raises(ConfigError, match=r"^STREAM_REGISTRY_SIGNING_KEY: "):
        load_settings({"STREAM_REGISTRY_SIGNING_KEY": str(keys.verify)})
