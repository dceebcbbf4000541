"""Fixtures of the hostile suite: TLS material made with trustme, on loopback only."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme


@dataclass(frozen=True)
class TLSSetup:
    """A server SSL context (None: plain TCP) and the client's ssl_options."""

    server: ssl.SSLContext | None
    client: dict[str, Any]


@pytest.fixture(scope="session")
def tls_setups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TLSSetup]:
    """``trusted``: a certificate for 127.0.0.1 from a CA the client trusts;
    ``untrusted``: a self-signed certificate the client does not trust;
    ``wrong-host``: a trusted CA, but a certificate for another name;
    ``plaintext``: the client trusts the CA, the server does not speak TLS at all."""
    directory: Path = tmp_path_factory.mktemp("tls")
    # Self-signed: the CA's own certificate serves as the server certificate.
    self_signed = trustme.CA()
    cert, key = directory / "self.pem", directory / "self.key"
    self_signed.cert_pem.write_to_path(str(cert))
    self_signed.private_key_pem.write_to_path(str(key))
    untrusted = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    untrusted.load_cert_chain(str(cert), str(key))

    ca = trustme.CA()
    wrong_host = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(wrong_host)
    trusted = {"cadata": ca.cert_pem.bytes().decode("ascii")}
    good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(good)
    return {
        "trusted": TLSSetup(good, trusted),
        "untrusted": TLSSetup(untrusted, {}),
        "wrong-host": TLSSetup(wrong_host, trusted),
        "plaintext": TLSSetup(None, trusted),
    }
