"""The demo's own keys: a registry key pair, made once and reused.

A worker with a verify key refuses unsigned registry events; the demo signs them with
keys it keeps under ``<data_dir>/demo/keys/``, unless the environment names keys of its
own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stream_app.config import Settings
from stream_app.lifecycle.registry_signing import generate_key_pair

__all__ = ["demo_keys"]

SIGNING_FILE = "registry-signing.pem"
VERIFY_FILE = "registry-verify.pem"


def demo_keys(base: Settings, directory: Path) -> dict[str, Any]:
    """Settings overrides for the registry keys ``base`` leaves unset.

    ``directory`` holds the keys made by an earlier run; missing ones are made (the
    private key mode 0600).
    """
    given = base.model_fields_set
    overrides: dict[str, Any] = {}
    if not {"registry_signing_key", "registry_verify_key"} & given:
        signing, verify = directory / SIGNING_FILE, directory / VERIFY_FILE
        if not (signing.is_file() and verify.is_file()):
            private, public = generate_key_pair()
            signing.unlink(missing_ok=True)
            _private_file(signing, lambda: private)
            verify.write_bytes(public)
        overrides.update(registry_signing_key=signing, registry_verify_key=verify)
    return overrides


def _private_file(path: Path, make: Any) -> bytes:
    """The bytes of ``path``, written first (mode 0600) with ``make()`` when missing."""
    if path.is_file():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    data: bytes = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return data
