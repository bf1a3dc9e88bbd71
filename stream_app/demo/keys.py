"""The demo's own keys: a bundle key and a registry key pair, made once and reused.

A worker refuses unsigned bundles and, with a verify key, unsigned registry events; the
demo signs both with keys it keeps under ``<data_dir>/demo/keys/`` (so a rerun reuses its
bundles), unless the environment names keys of its own.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from stream_app.config import Settings
from stream_app.lifecycle.registry_signing import generate_key_pair

__all__ = ["demo_keys"]

BUNDLE_KEY_FILE = "bundle.key"
SIGNING_FILE = "registry-signing.pem"
VERIFY_FILE = "registry-verify.pem"


def demo_keys(base: Settings, directory: Path) -> dict[str, Any]:
    """Settings overrides for the keys and bundle root ``base`` leaves unset.

    ``directory`` holds the keys made by an earlier run; missing ones are made (private
    files mode 0600). The bundle root becomes the demo's bundle directory.
    """
    given = base.model_fields_set
    overrides: dict[str, Any] = {}
    if "bundle_root" not in given:
        overrides["bundle_root"] = base.data_dir / "demo" / "bundles"
    if not {"bundle_signing_key", "allow_unsigned_bundles"} & given:
        key = _private_file(directory / BUNDLE_KEY_FILE, lambda: secrets.token_bytes(32))
        overrides["bundle_signing_key"] = SecretStr(base64.b64encode(key).decode())
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
