"""Make request data safe to log: drop PII keys, mask PII in text, pseudonymise join keys.

How a key is read (case, separators and full-width letters never matter: ``Email``,
``EMAIL``, ``e-mail``, ``customerId`` and ``Customer-ID`` all compare equal to their
snake_case form):

1. an exact join key (``user_id`` when configured) keeps its key and gets a keyed
   HMAC-SHA256 pseudonym ``psn_<hex>`` instead of its value, so logs stay joinable;
2. an exact PII key (``email``) is dropped with its value;
3. an exact structured key (``timestamp``, ``request_id``, ...) keeps its value
   unscanned: ids and ISO timestamps are not phone numbers;
4. a key that merely contains a PII key is also dropped, plurals included (``names``,
   ``customer_ids``, ``addresses``, ``e_mails``): a PII key of five letters or more
   (``email``, ``phone``, ``address``, ``customer_id``) anywhere in it
   (``phonenumbers``, ``emailVerified``, ``headphones`` too), a shorter one (``ssn``,
   ``name``) when the key ends with it (``first_name``, ``username``) or has it as a
   word (``name_list``), words being split on ``_ - .``, spaces and camelCase, and a
   plural word read as its singular. Dropping a harmless ``hostname`` or ``headphones``
   from a log is the cheap mistake; keeping a phone is not;
5. a key whose own text holds an e-mail, phone or card number is dropped, even one
   that reads like a join or structured key;
6. anything else is kept, and its string values are scanned by
   :func:`~stream_app.inference.redact.redact_text`.

Values: mappings are scrubbed at any depth, lists and tuples element by element (a list
under a structured key keeps its strings unscanned). Records are mappings too: a
pydantic model (anything with ``model_dump``), a dataclass instance and a named tuple
are turned into their fields and scrubbed key by key, never through ``str()``, whose
``name='Ann Smith'`` no text pattern would catch. JSON numbers, booleans and null are
values, not text, and are kept. Datetimes become ISO strings, numpy scalars Python
numbers, bytes ``"[BYTES]"``, other objects their scanned ``str()``; the output is plain
JSON data. Containers nested deeper than ``max_depth`` become ``"[TRUNCATED]"``. The input
is never mutated.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from hashlib import sha256
from typing import Any, Final

import numpy as np

from schemas.events import Prediction, PredictionLog
from stream_app.inference.keys import compact, has_run, key_words, singular
from stream_app.inference.records import record_fields
from stream_app.inference.redact import contains_pii, redact_text

__all__ = [
    "DEFAULT_PII_KEYS",
    "DEFAULT_POLICY",
    "DEFAULT_STRUCTURED_KEYS",
    "ScrubPolicy",
    "build_prediction_log",
    "log_policy",
    "scrub",
]

DEFAULT_PII_KEYS: Final = frozenset({"email", "customer_id", "phone", "ssn", "address", "name"})
# user_id is an internal id, kept as it is by the default policy; the service passes
# join_keys={"user_id"} and a key from its settings, which turns it into a pseudonym.
DEFAULT_STRUCTURED_KEYS: Final = frozenset(
    {
        "timestamp",
        "request_id",
        "client_id",
        "user_id",
        "category_preference",
        "model_name",
        "model_version",
        "variant",
        "event",
        "label",
    }
)

_DROP, _JOIN, _KEEP, _SCAN = "drop", "join", "keep", "scan"
_CACHE_LIMIT: Final = 4096


@dataclass(frozen=True)
class ScrubPolicy:
    """What :func:`scrub` removes, keeps and pseudonymises.

    ``pseudonym_key`` (bytes, at least 16) is required when ``join_keys`` is not empty;
    the caller brings it from the settings. ``pseudonym_chars``: hex characters kept
    from the HMAC, 16..64. ``max_depth``: nesting kept, 1..256.

    Example:
        >>> policy = ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=b"k" * 32)
        >>> scrub({"User-ID": "USR42", "firstName": "Ann"}, policy)["User-ID"][:4]
        'psn_'
    """

    pii_keys: frozenset[str] = DEFAULT_PII_KEYS
    structured_keys: frozenset[str] = DEFAULT_STRUCTURED_KEYS
    join_keys: frozenset[str] = frozenset()
    pseudonym_key: bytes = field(default=b"", repr=False)
    pseudonym_chars: int = 32
    max_depth: int = 32
    _pii: frozenset[str] = field(init=False, repr=False, compare=False)
    _pii_long: frozenset[str] = field(init=False, repr=False, compare=False)
    _pii_words: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _exact: dict[str, str] = field(init=False, repr=False, compare=False)
    _cache: dict[str, str] = field(init=False, repr=False, compare=False)
    _mac: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        # A key in two sets: join beats PII beats structured (later entries overwrite),
        # so join_keys={"user_id"} works without editing the structured defaults.
        exact = {compact(k): _KEEP for k in self.structured_keys}
        exact.update({compact(k): _DROP for k in self.pii_keys})
        exact.update({compact(k): _JOIN for k in self.join_keys})
        object.__setattr__(self, "_exact", exact)
        pii = frozenset(compact(k) for k in self.pii_keys)
        object.__setattr__(self, "_pii", pii)
        object.__setattr__(self, "_pii_long", frozenset(k for k in pii if len(k) >= 5))
        words = tuple(tuple(singular(w) for w in key_words(k)) for k in self.pii_keys)
        object.__setattr__(self, "_pii_words", tuple(w for w in words if w))
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_mac", hmac.new(self.pseudonym_key, digestmod=sha256))

    def _check(self) -> None:
        if self.join_keys and len(self.pseudonym_key) < 16:
            raise ValueError("pseudonym_key must be at least 16 bytes when join_keys are set")
        if not 16 <= self.pseudonym_chars <= 64:
            raise ValueError(f"pseudonym_chars must be in 16..64, got {self.pseudonym_chars}")
        if not 1 <= self.max_depth <= 256:
            raise ValueError(f"max_depth must be in 1..256, got {self.max_depth}")
        if any(not compact(k) for k in self.pii_keys | self.join_keys | self.structured_keys):
            raise ValueError("every policy key needs at least one letter or digit")

    def classify(self, key: str) -> str:
        """How a key is treated: "drop", "join", "keep" (unscanned) or "scan"."""
        kind = self._cache.get(key)
        if kind is None:
            kind = self._classify(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()  # bounded: attacker-chosen keys cannot grow it
            self._cache[key] = kind
        return kind

    def _classify(self, key: str) -> str:
        words = key_words(key)
        joined = "".join(words)
        exact = self._exact.get(joined)
        if exact is not None:
            # Words are ASCII: "re@quest.id" or a key with non-ASCII digits can still read
            # as a structured key, and a kept key is written to the log as it is.
            return _DROP if exact != _DROP and contains_pii(key) else exact
        # Plurals count for PII only: "request_ids" is not the structured "request_id".
        singular_words = tuple(singular(w) for w in words)
        forms = {joined, "".join(singular_words), singular(joined)}
        if (
            any(pii in form for form in forms for pii in self._pii_long)
            or any(form.endswith(pii) for form in forms for pii in self._pii)
            or any(has_run(singular_words, run) for run in self._pii_words)
        ):
            return _DROP
        return _DROP if contains_pii(key) else _SCAN

    def pseudonym(self, value: Any) -> str | None:
        """``psn_`` + the keyed HMAC-SHA256 of the value (None stays None).

        Strings and integers of the same digits give the same pseudonym. A policy
        without a ``pseudonym_key`` of 16 bytes or more refuses (ValueError): an unkeyed
        hash of a user id can be reversed by hashing every candidate id.
        """
        if len(self.pseudonym_key) < 16:
            raise ValueError("pseudonym_key must be at least 16 bytes to make pseudonyms")
        if value is None:
            return None
        if isinstance(value, str):
            text = value
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        else:
            text = json.dumps(_plain(value, self, 0, keep=True), sort_keys=True)
        mac = self._mac.copy()  # cheaper than keying a new HMAC for every value
        mac.update(text.encode())
        return "psn_" + mac.hexdigest()[: self.pseudonym_chars]


DEFAULT_POLICY: Final = ScrubPolicy()


def log_policy(pseudonym_key: bytes | None) -> ScrubPolicy:
    """The service's policy for prediction-logs: user_id pseudonymised, or dropped.

    With a key (``STREAM_PSEUDONYM_KEY``) user_id becomes a stable HMAC pseudonym that
    still joins across events and workers; without one it is dropped like other PII,
    since a pseudonym from a made-up key would not join anything.

    Example:
        >>> scrub({"user_id": "USR42", "age": 30}, log_policy(None))
        {'age': 30}
        >>> scrub({"user_id": "USR42"}, log_policy(b"k" * 32))["user_id"][:4]
        'psn_'
    """
    if pseudonym_key is None:
        return ScrubPolicy(pii_keys=DEFAULT_PII_KEYS | {"user_id"})
    return ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=pseudonym_key)


_PASS: Final = frozenset({int, bool, type(None)})


def scrub(data: Mapping[str, Any] | object, policy: ScrubPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """A log-safe copy of ``data`` (see the module docstring for the rules).

    ``data`` is a mapping or a record (pydantic model, dataclass instance, named tuple);
    anything else is a TypeError.

    Example:
        >>> scrub({"request_id": "r-5551234567", "Email": "a@b.io", "age": 30,
        ...        "note": "call 555-123-4567", "contact": {"phone_number": "n/a"}})
        {'request_id': 'r-5551234567', 'age': 30, 'note': 'call [PHONE]', 'contact': {}}
    """
    fields = data if isinstance(data, Mapping) else record_fields(data)
    if fields is None:
        raise TypeError(
            f"scrub needs a mapping, a pydantic model or a dataclass, got {type(data).__name__}"
        )
    return _scrub_mapping(fields, policy, 1)


def _scrub_mapping(data: Mapping[Any, Any], policy: ScrubPolicy, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cache = policy._cache
    for raw_key, value in data.items():
        key = raw_key if type(raw_key) is str else str(raw_key)
        kind = cache.get(key) or policy.classify(key)
        if kind == _DROP:
            continue
        # Strings and plain scalars first: they are nearly every value of a request.
        if kind == _JOIN:
            out[key] = policy.pseudonym(value)
        elif type(value) is str:
            out[key] = value if kind == _KEEP else redact_text(value)
        elif type(value) in _PASS:
            out[key] = value
        elif type(value) is float:
            # NaN and infinity are not JSON: strict readers of the log topic would refuse them.
            out[key] = value if math.isfinite(value) else None
        else:
            out[key] = _plain(value, policy, depth, keep=kind == _KEEP)
    return out


def _plain(value: Any, policy: ScrubPolicy, depth: int, *, keep: bool) -> Any:
    """One value made log-safe; ``keep``: strings are not scanned (structured key)."""
    if isinstance(value, str):
        return value if keep else redact_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if depth >= policy.max_depth:
            return "[TRUNCATED]"
        if isinstance(value, Mapping):
            return _scrub_mapping(value, policy, depth + 1)
        if type(value) is not list and type(value) is not tuple:
            fields = record_fields(value)  # a named tuple keeps its field names
            if fields is not None:
                return _scrub_mapping(fields, policy, depth + 1)
        return [
            v
            if type(v) in _PASS or (type(v) is float and math.isfinite(v))
            else _plain(v, policy, depth + 1, keep=keep)
            for v in value
        ]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _plain(value.item(), policy, depth, keep=keep)
    if isinstance(value, bytes | bytearray | memoryview):
        return "[BYTES]"
    fields = record_fields(value)
    if fields is not None:
        if depth >= policy.max_depth:
            return "[TRUNCATED]"
        return _scrub_mapping(fields, policy, depth + 1)
    return redact_text(str(value))


def build_prediction_log(
    request_id: str,
    input_data: Mapping[str, Any] | object,
    prediction: Prediction | Mapping[str, Any],
    latency_ms: float,
    *,
    now: datetime,
    policy: ScrubPolicy = DEFAULT_POLICY,
) -> PredictionLog:
    """The prediction-logs event, built as (so validated by) ``schemas.PredictionLog``.

    ``now`` must be timezone-aware (a naive time is ambiguous in a log: ValueError); it
    is written in UTC with millisecond precision and a ``Z``. ``prediction`` is a
    Prediction or a mapping with model_name, model_version, variant, score and label.

    Example:
        >>> from datetime import datetime, timezone
        >>> log = build_prediction_log(
        ...     "r1", {"age": 30, "email": "a@b.io"},
        ...     {"model_name": "conv", "model_version": "3", "variant": "A",
        ...      "score": 0.75, "label": 1}, 4.2,
        ...     now=datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc))
        >>> log.timestamp, log.input, log.output
        ('2026-01-31T12:00:00.000Z', {'age': 30}, {'score': 0.75, 'label': 1})
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (event time in UTC)")
    name, version, variant, score, label = _prediction_fields(prediction)
    latency = float(latency_ms)
    if not (math.isfinite(latency) and latency >= 0):
        raise ValueError(f"latency_ms must be finite and >= 0, got {latency_ms!r}")
    stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return PredictionLog(
        timestamp=stamp + "Z",
        request_id=request_id,
        model_name=name,
        model_version=version,
        variant=variant,
        input=scrub(input_data, policy),
        output={"score": score, "label": label},
        latency_ms=latency,
    )


def _prediction_fields(
    prediction: Prediction | Mapping[str, Any],
) -> tuple[str, str, str, float, int]:
    """Model name, version, variant, score and label as plain Python values."""
    if isinstance(prediction, Prediction):
        p = prediction
        return p.model_name, p.model_version, p.variant, p.score, p.label
    try:
        name, version = str(prediction["model_name"]), str(prediction["model_version"])
        variant = str(prediction["variant"])
        # float()/int() also turn numpy scalars into values json.dumps accepts.
        score, label = float(prediction["score"]), int(prediction["label"])
    except KeyError as exc:
        raise ValueError(f"prediction is missing {exc.args[0]!r}") from exc
    if variant not in ("A", "B"):
        raise ValueError(f"variant must be 'A' or 'B', got {variant!r}")
    return name, version, variant, score, label
