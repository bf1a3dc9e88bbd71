"""parse_request: bytes to PredictionRequest or Rejection, never raising, never echoing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import PredictionRequest, Rejection, decode, encode
from schemas.events import DEFAULT_MAX_PURCHASE_HISTORY, MAX_PURCHASE_AMOUNT, MAX_SESSION_MINUTES
from stream_app.inference import validate
from stream_app.inference.validate import MAX_REPORTED_ERRORS, _field_error, parse_request

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)

VALID: dict[str, Any] = {
    "request_id": "req-1",
    "client_id": "shop-web",
    "timestamp": "2026-01-31T12:00:00Z",
    "user_id": "USR123",
    "age": 34,
    "purchase_history": [19.99, 120, 7.5],
    "category_preference": "electronics",
    "session_duration_minutes": 12.5,
}


def raw_with(**changes: Any) -> bytes:
    body = {**VALID, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not _MISSING}).encode()


_MISSING = object()


def test_valid_request_parses_with_extras_carried() -> None:
    result = parse_request(raw_with(email="jo@example.com", customer_id="C-1"))
    assert isinstance(result, PredictionRequest)
    assert result.age == 34
    assert result.purchase_history == [19.99, 120.0, 7.5]
    assert result.model_extra == {"email": "jo@example.com", "customer_id": "C-1"}


@pytest.mark.parametrize(
    ("field", "value", "loc", "kind"),
    [
        ("age", True, "age", "int_type"),
        ("age", 30.5, "age", "int_type"),
        ("age", 30.000001, "age", "int_type"),
        ("age", 1e400, "age", "int_type"),
        ("age", "30", "age", "int_type"),
        ("age", 12, "age", "greater_than_equal"),
        ("age", 121, "age", "less_than_equal"),
        ("purchase_history", [], "purchase_history", "too_short"),
        ("purchase_history", "12.5", "purchase_history", "list_type"),
        ("purchase_history", [10, -1], "purchase_history.1", "greater_than"),
        ("purchase_history", [10, 20, 0], "purchase_history.2", "greater_than"),
        ("purchase_history", [True], "purchase_history.0", "float_type"),
        ("purchase_history", ["12"], "purchase_history.0", "float_type"),
        ("purchase_history", [1.0] * 1001, "purchase_history", "value_error"),
        ("category_preference", "toys", "category_preference", "literal_error"),
        ("category_preference", "Home", "category_preference", "literal_error"),
        ("session_duration_minutes", 0, "session_duration_minutes", "greater_than"),
        ("session_duration_minutes", -3.5, "session_duration_minutes", "greater_than"),
        ("session_duration_minutes", "5", "session_duration_minutes", "float_type"),
        ("user_id", "ABC123", "user_id", "value_error"),
        ("user_id", "", "user_id", "value_error"),
        ("user_id", "usr1", "user_id", "value_error"),
        ("user_id", 123, "user_id", "string_type"),
        ("request_id", "", "request_id", "string_too_short"),
        ("request_id", "r" * 129, "request_id", "string_too_long"),
        ("client_id", "", "client_id", "string_too_short"),
        ("timestamp", "2026-01-31T12:00:00", "timestamp", "timezone_aware"),
        ("timestamp", "yesterday", "timestamp", "datetime_from_date_parsing"),
        ("age", _MISSING, "age", "missing"),
    ],
)
def test_schema_errors_name_the_field(field: str, value: Any, loc: str, kind: str) -> None:
    result = parse_request(raw_with(**{field: value}))
    assert isinstance(result, Rejection)
    assert result.reason == "schema"
    assert [(e.loc, e.type) for e in result.errors] == [(loc, kind)]
    # An id that is itself invalid is not copied onto the rejection.
    assert result.request_id == (None if field == "request_id" else "req-1")
    assert result.client_id == (None if field == "client_id" else "shop-web")


@pytest.mark.parametrize(
    ("literal", "age"),
    [(b"30", 30), (b"30.0", 30), (b"3e1", 30), (b"13.0", 13), (b"120.0", 120), (b"-0.0", None)],
)
def test_an_integral_json_float_is_an_age(literal: bytes, age: int | None) -> None:
    # Many JSON encoders write every number as a float; 30.0 is the integer 30.
    raw = raw_with(age=99).replace(b'"age": 99', b'"age": ' + literal)
    result = parse_request(raw)
    if age is None:
        assert isinstance(result, Rejection)
        assert [(e.loc, e.type) for e in result.errors] == [("age", "greater_than_equal")]
    else:
        assert isinstance(result, PredictionRequest)
        assert result.age == age and type(result.age) is int


@pytest.mark.parametrize("user_id", ["USR", "USR1", "USR-ab_9"])
def test_user_id_needs_only_the_prefix(user_id: str) -> None:
    result = parse_request(raw_with(user_id=user_id))
    assert isinstance(result, PredictionRequest)
    assert result.user_id == user_id


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_duration_is_a_schema_error(literal: bytes) -> None:
    raw = raw_with(session_duration_minutes=1.0).replace(
        b'"session_duration_minutes": 1.0', b'"session_duration_minutes": ' + literal
    )
    result = parse_request(raw)
    assert isinstance(result, Rejection)
    assert [(e.loc, e.type) for e in result.errors] == [
        ("session_duration_minutes", "finite_number")
    ]


JUST_OVER_AMOUNT = math.nextafter(MAX_PURCHASE_AMOUNT, math.inf)
JUST_OVER_SESSION = math.nextafter(MAX_SESSION_MINUTES, math.inf)


@pytest.mark.parametrize(
    ("field", "value", "locs"),
    [
        ("purchase_history", [5.0, JUST_OVER_AMOUNT], ["purchase_history.1"]),
        ("purchase_history", [1e39], ["purchase_history.0"]),
        # Each amount is finite in float64 but their total is not.
        ("purchase_history", [1e308, 1e308], ["purchase_history.0", "purchase_history.1"]),
        ("session_duration_minutes", JUST_OVER_SESSION, ["session_duration_minutes"]),
        ("session_duration_minutes", 1e300, ["session_duration_minutes"]),
    ],
)
def test_values_over_an_upper_bound_are_schema_errors_that_do_not_echo_them(
    field: str, value: Any, locs: list[str]
) -> None:
    result = parse_request(raw_with(**{field: value}))
    assert isinstance(result, Rejection)
    assert result.reason == "schema"
    assert [(e.loc, e.type) for e in result.errors] == [(loc, "less_than_equal") for loc in locs]
    planted = value if isinstance(value, float) else value[-1]
    for error in result.errors:
        assert repr(planted) not in error.message
        assert json.dumps(planted) not in error.message


def test_values_at_every_bound_are_accepted() -> None:
    raw = raw_with(
        age=120,
        purchase_history=[MAX_PURCHASE_AMOUNT] * DEFAULT_MAX_PURCHASE_HISTORY,
        session_duration_minutes=MAX_SESSION_MINUTES,
    )
    result = parse_request(raw)
    assert isinstance(result, PredictionRequest)
    assert result.purchase_history[-1] == MAX_PURCHASE_AMOUNT
    assert result.session_duration_minutes == MAX_SESSION_MINUTES


def test_purchase_history_bound_is_configurable() -> None:
    raw = raw_with(purchase_history=[1.0, 2.0, 3.0, 4.0])
    assert isinstance(parse_request(raw), PredictionRequest)
    result = parse_request(raw, max_purchase_history=3)
    assert isinstance(result, Rejection)
    assert result.errors[0].message == "Value error, must have at most 3 items"


def test_overlong_history_is_refused_before_its_items_are_checked() -> None:
    result = parse_request(raw_with(purchase_history=[-1] * 50_000))
    assert isinstance(result, Rejection)
    assert [(e.loc, e.type) for e in result.errors] == [("purchase_history", "value_error")]


def test_many_bad_items_are_listed_up_to_the_cap() -> None:
    result = parse_request(raw_with(purchase_history=[-1] * 500))
    assert isinstance(result, Rejection)
    assert len(result.errors) == MAX_REPORTED_ERRORS + 1
    assert result.errors[-1].type == "too_many_errors"
    assert result.errors[-1].message == f"{500 - MAX_REPORTED_ERRORS} more errors not listed"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"request_id": "r1",}',
        b"\xff\xfe{}",
        b'{"request_id": "\xff"}',
        b"[1, 2]",
        b'"a string"',
        b"null",
        b"42",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_json(raw: bytes) -> None:
    result = parse_request(raw)
    assert isinstance(result, Rejection)
    assert result.reason == "malformed_json"
    assert result.raw == raw
    assert result.errors
    assert result.request_id is None
    assert result.client_id is None


def test_too_large_is_refused_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed a message over the size limit")

    raw = raw_with()
    monkeypatch.setattr(validate.PredictionRequest, "model_validate_json", must_not_parse)
    result = parse_request(raw, max_bytes=len(raw) - 1)
    assert isinstance(result, Rejection)
    assert result.reason == "too_large"
    assert result.raw == raw
    assert result.errors[0].message == f"message has {len(raw)} bytes, the limit is {len(raw) - 1}"


def test_size_limit_is_inclusive() -> None:
    raw = raw_with()
    assert isinstance(parse_request(raw, max_bytes=len(raw)), PredictionRequest)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_bytes": 0}, "max_bytes must be >= 1, got 0"),
        ({"max_purchase_history": 0}, "max_purchase_history must be >= 1, got 0"),
    ],
)
def test_limits_are_checked(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_request(b"{}", **kwargs)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ({"request_id": "r-9", "client_id": "c-9"}, ("r-9", "c-9")),
        ({"request_id": 9, "client_id": ["c"]}, (None, None)),
        ({"request_id": "r" * 129, "client_id": "c" * 257}, (None, None)),
        ({"request_id": "r" * 128, "client_id": ""}, ("r" * 128, None)),
        ({"request_id": _MISSING, "client_id": _MISSING}, (None, None)),
    ],
)
def test_ids_are_recovered_only_as_bounded_strings(
    ids: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    result = parse_request(raw_with(age=5, **ids))
    assert isinstance(result, Rejection)
    assert (result.request_id, result.client_id) == expected


def test_rejection_round_trips_through_the_codec() -> None:
    raw = b'{"request_id": "r1", "age": "x\xff"}'
    result = parse_request(raw)
    assert isinstance(result, Rejection)
    assert decode(encode(result), Rejection) == result


def test_unknown_error_types_get_a_generic_message() -> None:
    # A future pattern rule would report "String should match pattern ..." with ctx
    # built from the schema, but any type we have not checked is masked.
    error = _field_error(
        {"type": "string_pattern_mismatch", "loc": ("note",), "msg": "bad zq-secret", "input": 1}
    )
    assert (error.loc, error.message, error.type) == (
        "note",
        "invalid value (string_pattern_mismatch)",
        "string_pattern_mismatch",
    )


@pytest.mark.parametrize("value", ["zq-secret-77", 987654321, 3.25])
def test_custom_validator_messages_that_quote_the_input_are_masked(value: Any) -> None:
    error = _field_error(
        {
            "type": "value_error",
            "loc": ("user_id",),
            "msg": f"Value error, {value} bad",
            "input": value,
        }
    )
    assert error.message == "invalid value (value_error)"


# -- properties ---------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = parse_request(raw)
    assert isinstance(result, PredictionRequest | Rejection)
    if isinstance(result, Rejection):
        assert result.raw == raw
        assert result.reason in ("malformed_json", "schema")


@PROPERTY
@given(st.binary(max_size=200), st.integers(0, 3))
def test_corrupted_valid_messages_never_raise(noise: bytes, where: int) -> None:
    raw = raw_with()
    cut = len(raw) * where // 4
    result = parse_request(raw[:cut] + noise + raw[cut:])
    assert isinstance(result, PredictionRequest | Rejection)


SECRET = st.from_regex(r"zq[a-z0-9]{6,12}", fullmatch=True)
BIG_NUMBER = st.one_of(
    st.integers(min_value=10_000).map(lambda n: n * (-1) ** n),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: abs(x) >= 10_000),
)
FIELDS = [*VALID, "purchase_history_item"]


@PROPERTY
@given(st.sampled_from(FIELDS), st.one_of(SECRET, BIG_NUMBER), st.booleans())
def test_errors_never_echo_a_planted_value(field: str, planted: Any, as_text: bool) -> None:
    value = str(planted) if as_text else planted
    if field == "purchase_history_item":
        raw = raw_with(purchase_history=[5.0, value])
    else:
        raw = raw_with(**{field: value})
    result = parse_request(raw)
    if isinstance(result, PredictionRequest):
        return  # e.g. a zq... string is a valid client_id
    rendered = [repr(planted), str(planted), json.dumps(planted)]
    if isinstance(planted, float) and planted.is_integer() and not math.isinf(planted):
        rendered.append(str(int(planted)))
    for error in result.errors:
        for text in rendered:
            assert text not in error.message
            assert text not in error.loc


@pytest.mark.parametrize(
    ("extras", "refused"),
    [
        ({f"x{i}": "v" for i in range(64)}, False),  # at the cap
        ({f"x{i}": "v" for i in range(65)}, True),
        ({f"x{i}": "abc" for i in range(20_000)}, True),  # 0.3 s to scrub if accepted
        ({"note": "y" * 16_000}, False),
        ({"note": "y" * 16_400}, True),
    ],
)
def test_extras_beyond_the_caps_are_refused_without_echoing_them(
    extras: dict[str, str], refused: bool
) -> None:
    raw = raw_with(**extras)
    result = parse_request(raw)
    if not refused:
        assert not isinstance(result, Rejection)
        return
    assert isinstance(result, Rejection)
    assert (result.reason, [e.type for e in result.errors]) == ("schema", ["too_many_extras"])
    assert result.request_id is not None and result.raw == raw
    assert "abc" not in result.errors[0].message and "yyy" not in result.errors[0].message
