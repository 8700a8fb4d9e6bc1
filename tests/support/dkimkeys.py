"""A test DKIM signer and the DNS that publishes its keys, so verification is real.

dkimpy signs with the private key, and the verifier asks ``Dns.txt`` (handed to the App
as its DNS) for ``<selector>._domainkey.<domain>``, which answers with the public key
exactly as a zone would publish it. Nothing leaves the machine.
"""

from __future__ import annotations

import base64
from functools import lru_cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@lru_cache(maxsize=4)
def _key(domain: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Dns:
    """TXT records of the test's zones: DKIM keys of the domains it signs for."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.asked: list[str] = []

    def publish(self, domain: str, selector: str = "test") -> None:
        public = _key(domain).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.records[f"{selector}._domainkey.{domain}."] = (
            b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))

    def txt(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        key = name.decode() if isinstance(name, bytes) else name
        key = key if key.endswith(".") else key + "."
        self.asked.append(key)
        return self.records.get(key)


def sign(raw: bytes, domain: str, selector: str = "test", *, length: bool = False) -> bytes:
    """``raw`` with a DKIM-Signature of ``domain`` on top (relaxed/simple, rsa-sha256;
    ``length`` adds l=, which signs only the body as it is now)."""
    private = _key(domain).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())
    signature = dkim.sign(raw, selector.encode(), domain.encode(), private,
                          include_headers=[b"from", b"to", b"subject", b"message-id"],
                          length=length)
    return signature + raw
