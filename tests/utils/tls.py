"""A throwaway certificate authority and a broker certificate for 127.0.0.1 (openssl).

For the SASL_SSL test broker: :func:`make_broker_tls` writes the CA certificate the
clients trust and the broker's PEM keystore (its certificate, then its unencrypted
PKCS#8 key), valid for a day.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerTls", "make_broker_tls"]

_CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE\n"
    "keyUsage=critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier=hash\n"
)
_LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)


@dataclass(frozen=True)
class BrokerTls:
    """``ca_file``: what clients trust; ``keystore``: the broker's certificate and key."""

    ca_file: Path
    keystore: Path


def make_broker_tls(directory: Path) -> BrokerTls:
    """A new CA and a broker certificate signed by it, as PEM files in ``directory``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl not found on PATH: the TLS test makes its certificates with it")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key, request, cert = (
        directory / "broker.key",
        directory / "broker.csr",
        directory / "broker.pem",
    )
    (directory / "ca.ext").write_text(_CA_EXTENSIONS)
    (directory / "broker.ext").write_text(_LEAF_EXTENSIONS)
    for args in (
        ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ca_key],
        ["req", "-new", "-x509", "-key", ca_key, "-out", ca_file, "-days", "1",
         "-subj", "/CN=stream-app test CA", "-extensions", "v3", "-config", _config(directory)],
        ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
        ["req", "-new", "-key", key, "-out", request, "-subj", "/CN=127.0.0.1",
         "-config", _config(directory)],
        ["x509", "-req", "-in", request, "-CA", ca_file, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", directory / "broker.ext"],
    ):  # fmt: skip
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)  # noqa: S603
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(cert.read_text() + key.read_text())
    return BrokerTls(ca_file=ca_file, keystore=keystore)


def _config(directory: Path) -> Path:
    # A minimal openssl.cnf, so the CA's extensions do not depend on the system's file.
    path = directory / "openssl.cnf"
    if not path.exists():
        path.write_text("[req]\ndistinguished_name=dn\nprompt=no\n[dn]\n[v3]\n" + _CA_EXTENSIONS)
    return path
