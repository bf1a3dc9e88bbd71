"""scrub and build_prediction_log: PII never reaches prediction-logs."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Prediction, PredictionLog, PredictionRequest
from stream_app.inference.redact import redact_text
from stream_app.inference.scrub import (
    DEFAULT_POLICY,
    ScrubPolicy,
    build_prediction_log,
    scrub,
)
from tests.utils import pii

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)
KEY = b"k" * 32
JOIN_POLICY = ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=KEY)
NOW = datetime(2026, 1, 31, 12, 0, 0, 250_000, tzinfo=UTC)

REQUEST: dict[str, Any] = {
    "request_id": "3f2b9c1e-8d4a-4f6b-9e2d-7a1c5b8e0f42",
    "client_id": "shop-web",
    "timestamp": "2026-01-31T12:00:00Z",
    "user_id": "USR0012345",
    "age": 34,
    "purchase_history": [19.99, 120.5],
    "category_preference": "electronics",
    "session_duration_minutes": 12.5,
    "email": "jane.doe@example.com",
    "customer_id": "CUST-99812",
    "note": "Call back at +1 (555) 123-4567 after the delivery on 2026-01-31.",
}


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        # exact PII keys, any case or separator style
        ("email", "drop"),
        ("Email", "drop"),
        ("EMAIL", "drop"),
        ("e-mail", "drop"),
        ("customer_id", "drop"),
        ("customerId", "drop"),
        ("Customer-ID", "drop"),
        ("SSN", "drop"),
        # keys ending with a PII key, or with a PII key as one of their words
        ("first_name", "drop"),
        ("firstName", "drop"),
        ("username", "drop"),
        ("email_address", "drop"),
        ("userEmail", "drop"),
        ("telephone", "drop"),
        ("phone_number", "drop"),
        ("address_line_1", "drop"),
        ("home.address", "drop"),
        ("ssn_last4", "drop"),
        ("emailVerified", "drop"),
        # plural and variant forms
        ("names", "drop"),
        ("customer_ids", "drop"),
        ("customerIds", "drop"),
        ("addresses", "drop"),
        ("emails", "drop"),
        ("EMAILS", "drop"),
        ("phones", "drop"),
        ("phone_numbers", "drop"),
        ("PhoneNumbers", "drop"),
        ("phonenumbers", "drop"),
        ("e_mails", "drop"),
        ("E-Mail", "drop"),
        ("E-Mails", "drop"),
        ("ssns", "drop"),
        ("first_names", "drop"),
        ("userNames", "drop"),
        ("home_addresses", "drop"),
        ("emailaddresses", "drop"),
        ("customeridlist", "drop"),
        ("\uff45\uff4d\uff41\uff49\uff4c", "drop"),  # full-width "email"
        # keys that are themselves PII, even when they read like a structured key
        ("jo@example.com", "drop"),
        ("re@quest.id", "drop"),
        (" \u0660\u0660\u0660.\u0660\u0660\u0660\u0660 MODELNAME", "drop"),
        ("555-123-4567", "drop"),
        # structured keys: kept unscanned
        ("timestamp", "keep"),
        ("request_id", "keep"),
        ("requestId", "keep"),
        ("client_id", "keep"),
        ("model_name", "keep"),
        ("category_preference", "keep"),
        ("user_id", "keep"),
        # the rest is scanned
        ("note", "scan"),
        ("session_duration_minutes", "scan"),
        ("session", "scan"),
        ("customer_segment", "scan"),
        ("age", "scan"),
        ("status", "scan"),
        ("namespace", "scan"),
        ("", "scan"),
    ],
)
def test_key_classification(key: str, kind: str) -> None:
    assert DEFAULT_POLICY.classify(key) == kind


def test_join_key_takes_precedence_over_structured() -> None:
    assert JOIN_POLICY.classify("user_id") == "join"
    assert JOIN_POLICY.classify("userId") == "join"


def test_realistic_request() -> None:
    assert scrub(REQUEST) == {
        **{k: v for k, v in REQUEST.items() if k not in ("email", "customer_id", "note")},
        "note": "Call back at [PHONE] after the delivery on 2026-01-31.",
    }


def test_pii_keys_are_dropped_at_any_depth_and_inside_lists() -> None:
    data = {
        "order": {"items": [{"sku": "A1", "Name": "Ann"}, {"sku": "B2", "PHONE": 5551234}]},
        "contacts": [[{"email": "x@y.io", "kind": "home"}]],
    }
    assert scrub(data) == {
        "order": {"items": [{"sku": "A1"}, {"sku": "B2"}]},
        "contacts": [[{"kind": "home"}]],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31 555-123-4567", "2026-01-31 555-123-4567"),  # structured: not scanned
        (["a@b.io", "5551234567"], ["a@b.io", "5551234567"]),
        ({"note": "a@b.io", "email": "x"}, {"note": "[EMAIL]"}),  # mappings still scrubbed
    ],
)
def test_structured_values_are_not_scanned(value: Any, expected: Any) -> None:
    assert scrub({"timestamp": value}) == {"timestamp": expected}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5551234567, 5551234567),  # a JSON number is a value, not text
        (4111111111111111, 4111111111111111),
        (1234567.89, 1234567.89),
        (True, True),
        (None, None),
        ("5551234567", "[PHONE]"),
        (("a@b.io", 3), ["[EMAIL]", 3]),
        (frozenset({"y"}), ["y"]),
        (datetime(2026, 1, 31, 12, tzinfo=UTC), "2026-01-31T12:00:00+00:00"),
        (date(2026, 1, 31), "2026-01-31"),
        (np.float32(0.5), 0.5),
        (np.int64(7), 7),
        (np.str_("a@b.io"), "[EMAIL]"),
        (b"\x00raw", "[BYTES]"),
        (timedelta(seconds=3), "0:00:03"),
    ],
)
def test_values_become_plain_json(value: Any, expected: Any) -> None:
    out = scrub({"field": value})
    assert out == {"field": expected}
    assert type(out["field"]) is type(expected)
    json.dumps(out)


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    note: str
    tags: tuple[str, ...] = ()


@dataclass
class Ticket:
    ticket_id: str
    contact: Contact


class Shipment(NamedTuple):
    carrier: str
    address: str


class Dumpable:
    """Not a pydantic model, but speaks its protocol."""

    def model_dump(self) -> dict[str, Any]:
        return {"customer_id": "CUST-1", "note": "mail jo@example.com"}

    def __str__(self) -> str:
        return "customer_id=CUST-1 jo@example.com"


def _request_model() -> PredictionRequest:
    return PredictionRequest(
        request_id="r1",
        client_id="c1",
        user_id="USR1",
        age=30,
        purchase_history=[1.0],
        category_preference="home",
        session_duration_minutes=1.0,
        name="Ann Smith",
        customer_id="CUST-99812",
        note="call 555-123-4567",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            _request_model(),
            {
                "request_id": "r1",
                "client_id": "c1",
                "timestamp": None,
                "user_id": "USR1",
                "age": 30,
                "purchase_history": [1.0],
                "category_preference": "home",
                "session_duration_minutes": 1.0,
                "note": "call [PHONE]",
            },
        ),
        (
            Contact("Ann Smith", "555-123-4567", "ring 555-987-6543", ("vip", "a@b.io")),
            {"note": "ring [PHONE]", "tags": ["vip", "[EMAIL]"]},
        ),
        (
            Ticket("T-1", Contact("Ann Smith", "5551234567", "ok")),
            {"ticket_id": "T-1", "contact": {"note": "ok", "tags": []}},
        ),
        (Shipment("DHL", "1 Main St"), {"carrier": "DHL"}),
        (Dumpable(), {"note": "mail [EMAIL]"}),
    ],
)
def test_objects_are_scrubbed_field_by_field(value: Any, expected: Any) -> None:
    out = scrub({"record": value})
    assert out == {"record": expected}
    json.dumps(out)


def test_a_model_or_dataclass_can_be_scrubbed_directly() -> None:
    assert "name" not in scrub(_request_model())
    assert scrub(Contact("Ann", "1", "x")) == {"note": "x", "tags": []}
    with pytest.raises(TypeError, match="a mapping, a pydantic model or a dataclass"):
        scrub(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_a_dataclass_class_is_a_value_not_a_record() -> None:
    assert scrub({"kind": Contact}) == {"kind": str(Contact)}


def test_join_keys_get_a_keyed_pseudonym() -> None:
    out = scrub(
        {"user_id": "USR42", "nested": [{"USER-ID": 42}], "x": {"userId": None}}, JOIN_POLICY
    )
    pseudonym = out["user_id"]
    assert re.fullmatch(r"psn_[0-9a-f]{32}", pseudonym)
    assert out["nested"] == [{"USER-ID": JOIN_POLICY.pseudonym("42")}]
    assert out["x"] == {"userId": None}
    assert scrub({"user_id": "USR42"}, JOIN_POLICY)["user_id"] == pseudonym
    other_key = ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=b"z" * 32)
    assert scrub({"user_id": "USR42"}, other_key)["user_id"] != pseudonym
    short = ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=KEY, pseudonym_chars=16)
    assert short.pseudonym("USR42") == pseudonym[:20]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"join_keys": frozenset({"user_id"})}, "pseudonym_key must be at least 16 bytes"),
        (
            {"join_keys": frozenset({"user_id"}), "pseudonym_key": b"short"},
            "pseudonym_key must be at least 16 bytes",
        ),
        ({"pseudonym_chars": 15}, r"pseudonym_chars must be in 16\.\.64, got 15"),
        ({"pseudonym_chars": 65}, r"pseudonym_chars must be in 16\.\.64, got 65"),
        ({"max_depth": 0}, r"max_depth must be in 1\.\.256, got 0"),
        ({"pii_keys": frozenset({"__"})}, "every policy key needs at least one letter"),
    ],
)
def test_policy_is_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScrubPolicy(**kwargs)


def test_no_pseudonym_without_a_key() -> None:
    with pytest.raises(ValueError, match="pseudonym_key must be at least 16 bytes"):
        DEFAULT_POLICY.pseudonym("USR42")


def test_policy_repr_hides_the_key() -> None:
    assert "kkkk" not in repr(JOIN_POLICY)


def test_custom_pii_keys() -> None:
    policy = ScrubPolicy(pii_keys=frozenset({"IBAN", "date_of_birth"}))
    out = scrub({"iban": "DE00", "dateOfBirth": "1990-01-01", "email": "x@y.io"}, policy)
    assert out == {"email": "[EMAIL]"}


def test_deep_nesting_is_truncated() -> None:
    data: dict[str, Any] = {"leaf": "a@b.io"}
    for _ in range(40):
        data = {"n": data}
    out = scrub(data, ScrubPolicy(max_depth=3))
    assert out == {"n": {"n": {"n": "[TRUNCATED]"}}}


def test_input_is_never_mutated() -> None:
    data = copy.deepcopy(REQUEST) | {"nested": {"email": "a@b.io", "l": [{"phone": "1"}]}}
    before = copy.deepcopy(data)
    scrub(data, JOIN_POLICY)
    assert data == before


def test_key_cache_stays_bounded() -> None:
    policy = ScrubPolicy()
    scrub({f"field_{i}": i for i in range(10_000)}, policy)
    assert len(policy._cache) <= 4096


# -- build_prediction_log -------------------------------------------------------


def _prediction(**changes: Any) -> dict[str, Any]:
    fields = {
        "model_name": "conversion",
        "model_version": "3",
        "variant": "B",
        "score": np.float32(0.75),
        "label": np.int64(1),
    }
    return fields | changes


def test_prediction_log_from_a_mapping_with_numpy_values() -> None:
    event = build_prediction_log("req-1", REQUEST, _prediction(), np.float64(3.25), now=NOW)
    log = event.model_dump()
    assert json.loads(json.dumps(log)) == log
    assert PredictionLog.model_validate_json(event.model_dump_json()) == event
    assert log == {
        "timestamp": "2026-01-31T12:00:00.250Z",
        "request_id": "req-1",
        "event": "prediction",
        "model_name": "conversion",
        "model_version": "3",
        "variant": "B",
        "input": scrub(REQUEST),
        "output": {"score": 0.75, "label": 1},
        "latency_ms": 3.25,
    }
    assert type(log["output"]["label"]) is int and type(log["latency_ms"]) is float


def test_prediction_log_from_a_prediction_event_with_a_join_policy() -> None:
    prediction = Prediction(
        request_id="req-2",
        model_name="conversion",
        model_version="4",
        variant="A",
        score=0.1,
        label=0,
        latency_ms=1.0,
    )
    log = build_prediction_log(
        "req-2", REQUEST, prediction, 2, now=NOW, policy=JOIN_POLICY
    ).model_dump()
    assert log["output"] == {"score": 0.1, "label": 0}
    assert log["input"]["user_id"].startswith("psn_")
    assert "jane.doe" not in json.dumps(log)


def test_timestamp_is_converted_to_utc() -> None:
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    log = build_prediction_log("r", {}, _prediction(), 0.0, now=berlin)
    assert log.timestamp == "2026-01-31T12:00:00.250Z"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"now": datetime(2026, 1, 31, 12)}, "now must be timezone-aware"),
        ({"prediction": {"model_name": "m"}}, "prediction is missing 'model_version'"),
        ({"prediction": _prediction(variant="C")}, "variant must be 'A' or 'B'"),
        ({"latency_ms": -1.0}, "latency_ms must be finite and >= 0"),
        ({"latency_ms": float("nan")}, "latency_ms must be finite and >= 0"),
    ],
)
def test_prediction_log_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"prediction": _prediction(), "latency_ms": 1.0, "now": NOW}
    arguments |= kwargs
    with pytest.raises(ValueError, match=message):
        build_prediction_log("r", {}, **arguments)


# -- property: nothing planted survives ---------------------------------------

NEUTRAL_KEYS = st.sampled_from(["note", "comment", "details", "items", "meta", "Text", "x"])
RANDOM_KEYS = st.text(max_size=8).filter(lambda k: DEFAULT_POLICY.classify(k) == "scan")
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
FILLER = st.one_of(
    st.integers(-1000, 1000),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    TEXT,
)
MARKER = st.from_regex(r"zqpii[a-z0-9]{8}", fullmatch=True)


@st.composite
def planted_documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A random nested document with PII planted in free text, under PII keys and in
    records; free-text PII touches random neighbouring text on both sides."""
    planted: list[str] = []

    def free_text() -> str:
        secret = draw(pii.secrets())
        planted.append(secret)
        return draw(pii.glued(secret, TEXT))

    def under_pii_key() -> dict[str, Any]:
        marker = draw(MARKER)
        planted.append(marker)
        value = draw(st.sampled_from([marker, [marker], {"v": marker}]))
        return {draw(pii.pii_keys()): value}

    def node(depth: int) -> Any:
        choice = draw(st.integers(0, 6 if depth < 4 else 2))
        if choice == 0:
            return draw(FILLER)
        if choice == 1:
            return free_text()
        if choice == 2:
            return under_pii_key()
        if choice == 3:
            return [node(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        if choice == 4:
            return {free_text(): draw(FILLER)}  # PII as a key
        if choice == 5:
            name, phone = draw(MARKER), draw(MARKER)
            planted.extend((name, phone))
            return pii.Contact(name=name, phone=phone, note=node(depth + 1))
        return {draw(st.one_of(NEUTRAL_KEYS, RANDOM_KEYS)): node(depth + 1) for _ in range(3)}

    document = {draw(NEUTRAL_KEYS): node(0) for _ in range(draw(st.integers(1, 4)))}
    return document, planted


@PROPERTY
@given(planted_documents())
def test_no_planted_pii_survives(case: tuple[dict[str, Any], list[str]]) -> None:
    document, planted = case
    before = copy.deepcopy(document)
    rendered = json.dumps(scrub(document), ensure_ascii=False)
    for secret in planted:
        assert secret not in rendered
    assert document == before


@PROPERTY
@given(pii.pii_keys())
def test_every_pii_key_variant_is_dropped(key: str) -> None:
    assert DEFAULT_POLICY.classify(key) == "drop"


@PROPERTY
@given(st.one_of(pii.phones(), pii.cards(), st.emails(), pii.idn_emails()), st.data())
def test_glued_pii_is_masked_in_plain_text(secret: str, data: st.DataObject) -> None:
    text = data.draw(pii.glued(secret, TEXT))
    assert secret not in redact_text(text)


def test_non_finite_numbers_become_null_so_the_log_stays_strict_json() -> None:
    data = {"score_hint": float("nan"), "extra": {"hist": [1.5, float("inf"), np.float64("-inf")]}}
    out = scrub(data)
    assert out == {"score_hint": None, "extra": {"hist": [1.5, None, None]}}
    json.dumps(out, allow_nan=False)
