"""Ed25519 signatures of registry events: only the signing key's holder can promote.

The writer (the ``stream-app registry`` commands) signs each event with a private key;
every worker checks it with the public key and refuses an event that is unsigned, signed
by another key, altered after signing, or a copy of one it has already seen. What is
signed binds the event to its registry topic and its model name as well as to every field
of the event, so a promotion of one model cannot be replayed as one of another, nor a
staging event on the production topic. A signed promotion carries the digest of the gate
report that let it through (``gate_digest``).

Pure: no I/O except reading key files, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stream_app.lifecycle.gate_report import GateReport
from stream_app.lifecycle.registry_state import RegistryEvent

__all__ = [
    "CONTEXT",
    "EventVerifier",
    "Refusal",
    "check_event",
    "gate_digest",
    "generate_key_pair",
    "load_signing_key",
    "load_verify_key",
    "sign_event",
    "signed_bytes",
]

# Versioned, so a signature made for anything else never verifies as a registry event.
CONTEXT = b"stream-app registry event v1"

Refusal = Literal["unsigned", "bad_signature", "no_gate_digest", "replayed"]


def signed_bytes(event: RegistryEvent, topic: str) -> bytes:
    """What the signature covers: the context, the topic, the model name, then the event.

    The event's JSON holds its name too; naming it apart makes the binding explicit.

    Example:
        >>> from datetime import UTC, datetime
        >>> event = RegistryEvent("promoted", "m", "1.0.0", datetime(2026, 1, 1, tzinfo=UTC),
        ...                       {"previous": None})
        >>> signed_bytes(event, "model-registry")[:51]
        b'stream-app registry event v1\\x00model-registry\\x00m\\x00{"at"'
    """
    body = replace(event, signature=None).to_json().encode()
    return b"\0".join((CONTEXT, topic.encode(), event.name.encode(), body))


def sign_event(event: RegistryEvent, topic: str, key: Ed25519PrivateKey) -> RegistryEvent:
    """The event with its signature (base64 of the 64-byte Ed25519 signature).

    Example:
        >>> from datetime import UTC, datetime
        >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        >>> event = RegistryEvent("rolled_back", "m", "1.0.0", datetime(2026, 1, 1, tzinfo=UTC),
        ...                       {"previous": "1.1.0"})
        >>> signed = sign_event(event, "model-registry", key)
        >>> len(base64.b64decode(signed.signature)), check_event(signed, "model-registry",
        ...                                                       key.public_key())
        (64, None)
    """
    signature = key.sign(signed_bytes(event, topic))
    return replace(event, signature=base64.b64encode(signature).decode("ascii"))


def check_event(event: RegistryEvent, topic: str, key: Ed25519PublicKey) -> Refusal | None:
    """Why ``event`` is refused under ``key`` on ``topic``, or None when it is sound.

    Example:
        >>> from datetime import UTC, datetime
        >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> promoted = RegistryEvent("promoted", "m", "1.0.0", at,
        ...                          {"previous": None, "gate_digest": "0" * 64})
        >>> signed = sign_event(promoted, "t", key)
        >>> check_event(signed, "t", key.public_key()) is None
        True
        >>> check_event(promoted, "t", key.public_key())
        'unsigned'
        >>> check_event(replace(signed, name="other"), "t", key.public_key())
        'bad_signature'
        >>> check_event(signed, "staging.t", key.public_key())
        'bad_signature'
    """
    if event.signature is None:
        return "unsigned"
    try:
        signature = base64.b64decode(event.signature, validate=True)
        key.verify(signature, signed_bytes(event, topic))
    except (InvalidSignature, binascii.Error, ValueError):
        return "bad_signature"
    if event.kind == "promoted" and not _is_sha256(event.payload.get("gate_digest")):
        return "no_gate_digest"
    return None


@dataclass
class EventVerifier:
    """Checks each event of one log in order; an exact copy of an earlier one is a replay.

    Ed25519 signatures are deterministic and every event carries its time, so two events
    with the same signature are the same event written twice: the second is refused.
    ``refused`` counts refusals by reason.

    Example:
        >>> from datetime import UTC, datetime
        >>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        >>> event = RegistryEvent("registered", "m", "1.0.0", datetime(2026, 1, 1, tzinfo=UTC),
        ...                       {"path": "m"})
        >>> verifier = EventVerifier(key.public_key(), "t")
        >>> signed = sign_event(event, "t", key)
        >>> verifier.check(signed), verifier.check(signed), verifier.check(event)
        (None, 'replayed', 'unsigned')
        >>> dict(verifier.refused)
        {'replayed': 1, 'unsigned': 1}
    """

    key: Ed25519PublicKey
    topic: str
    refused: dict[str, int] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set, repr=False)

    def check(self, event: RegistryEvent) -> Refusal | None:
        """None when the event may be applied; else the reason, counted."""
        reason = check_event(event, self.topic, self.key)
        if reason is None and event.signature in self._seen:
            reason = "replayed"
        if reason is not None:
            self.refused[reason] = self.refused.get(reason, 0) + 1
            return reason
        assert event.signature is not None  # noqa: S101 - check_event refused unsigned ones
        self._seen.add(event.signature)
        return None


def gate_digest(report: GateReport) -> str:
    """SHA-256 of the gate report's canonical JSON (sorted keys, no spaces).

    The promotion event keeps this digest; the full report (``promote --json``) can be
    matched against it later.

    Example:
        >>> from stream_app.lifecycle.gate_report import GateCheck
        >>> gate_digest(GateReport((GateCheck("accuracy", True, "ok"),)))[:16]
        '7bc158eccd11a9be'
    """
    text = json.dumps(report.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as PEM: (private key, PKCS#8 unencrypted; public key).

    Example:
        >>> private, public = generate_key_pair()
        >>> private.startswith(b"-----BEGIN PRIVATE KEY-----"), public.split(b"\\n")[0]
        (True, b'-----BEGIN PUBLIC KEY-----')
    """
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``; ValueError saying what is wrong."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key (make one with `stream-app registry keygen`)")
    return key


def load_verify_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``; ValueError saying what is wrong."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 key (make one with `stream-app registry keygen`)")
    return key


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )
