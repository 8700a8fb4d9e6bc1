"""Reply tokens: the signed part of support+<token>@example.com that threads a reply to its case.

A token names a case and the participant it was sent to, and carries an HMAC-SHA256
over both (100 bits, base32) so it cannot be guessed or altered. Several secrets can be
valid at once: the first signs, all verify, so a secret can be rotated without
orphaning the replies to mail already sent. Local parts are lower-cased by some mail
systems, so the token uses only lower-case letters and digits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets as random_secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAC_CHARS = 20  # 20 base32 characters = 100 bits
_BOUNCE = re.compile(r"^bounce-(?P<id>[0-9]{1,12})-(?P<mac>[a-z2-7]+)$")
_SURVEY = re.compile(r"^survey-(?P<case>[0-9]{1,8})-(?P<expires>[0-9]{1,12})-(?P<mac>[a-z2-7]+)$")
_TOKEN = re.compile(
    r"^(?P<case>[0-9]{1,9})-(?P<kind>[can])(?P<pid>[0-9]{1,12})-(?P<mac>[a-z2-7]+)$"
)


class SecretError(Exception):
    """The secret file is missing, unreadable or holds no usable secret."""


@dataclass(frozen=True)
class Participant:
    """Who a token was sent to, by database id: a contact (``c``), an agent (``a``), or an
    agent on an internal note (``n``), whose replies stay internal too."""

    kind: str
    id: int


@dataclass(frozen=True)
class TokenClaim:
    """What a verified token says: the case number and the participant."""

    case_number: int
    participant: Participant


class TokenSigner:
    """Makes and checks reply tokens with the configured secrets."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise SecretError("no token secret configured")
        self._secrets = tuple(secrets)

    def make(self, case_number: int, participant: Participant) -> str:
        payload = f"{case_number}-{participant.kind}{participant.id}"
        return f"{payload}-{self._mac(self._secrets[0], payload)}"

    def verify(self, token: str) -> TokenClaim | None:
        """The claim of a genuine token; None for a forged, altered or foreign one."""
        match = _TOKEN.match(token.lower())
        if match is None:
            return None
        payload = f"{match['case']}-{match['kind']}{match['pid']}"
        if not self._genuine(payload, match["mac"]):
            return None
        return TokenClaim(int(match["case"]), Participant(match["kind"], int(match["pid"])))

    def make_bounce(self, outbound_id: int) -> str:
        """The VERP token of one outbound mail: ``bounce-<id>-<mac>``."""
        payload = f"bounce-{outbound_id}"
        return f"{payload}-{self._mac(self._secrets[0], payload)}"

    def verify_bounce(self, token: str) -> int | None:
        """The outbound id a genuine VERP token names, else None."""
        match = _BOUNCE.match(token.lower())
        if match is None:
            return None
        return int(match["id"]) if self._genuine(f"bounce-{match['id']}", match["mac"]) else None

    def make_survey(self, case_number: int, expires: int) -> str:
        """The token of a case's satisfaction links, valid until ``expires`` (Unix
        seconds): ``survey-<case>-<expires>-<mac>``."""
        payload = f"survey-{case_number}-{expires}"
        return f"{payload}-{self._mac(self._secrets[0], payload)}"

    def verify_survey(self, token: str) -> tuple[int, int] | None:
        """The case number and expiry a genuine survey token names, else None (the
        caller checks the expiry: a forged and an expired link are refused alike)."""
        match = _SURVEY.match(token.lower())
        if match is None:
            return None
        payload = f"survey-{match['case']}-{match['expires']}"
        if not self._genuine(payload, match["mac"]):
            return None
        return int(match["case"]), int(match["expires"])

    def seal(self, payload: str) -> str:
        """``payload`` with its MAC, ``payload.mac``, for ``unseal`` to check when it comes
        back (the console's sign-in form token). The caller names its purpose in the
        payload, so a seal made for one use is nothing to another."""
        return f"{payload}.{self._mac(self._secrets[0], payload)}"

    def unseal(self, sealed: str) -> str | None:
        """The payload of a genuine ``seal``, else None."""
        payload, _, mac = sealed.rpartition(".")
        return payload if payload and self._genuine(payload, mac) else None

    def _genuine(self, payload: str, mac: str) -> bool:
        """Whether ``mac`` signs ``payload`` under any configured secret, in constant time.

        Every secret is checked without stopping early, so timing says nothing about
        which one matched, or whether any did.
        """
        valid = False
        for secret in self._secrets:
            valid |= hmac.compare_digest(self._mac(secret, payload).encode(), mac.encode())
        return valid

    @staticmethod
    def _mac(secret: bytes, payload: str) -> str:
        digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:MAC_CHARS]


def is_bounce_token(token: str) -> bool:
    """Whether a plus-address token is a VERP return path rather than a reply token."""
    return token.lower().startswith("bounce-")


def token_of(address: str, local_part: str) -> str | None:
    """The token in ``local_part+TOKEN@…``, or None when the address carries none."""
    local = address.strip("<> ").rpartition("@")[0].lower()
    prefix = local_part.lower() + "+"
    return local[len(prefix):] if local.startswith(prefix) and len(local) > len(prefix) else None


def load_secrets(path: Path, *, create: bool) -> list[bytes]:
    """Read the secret file (one secret a line, ``#`` comments); make one when asked."""
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# reply-token secrets: the first signs, every line verifies\n")
            handle.write(random_secrets.token_hex(32) + "\n")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SecretError(f"token secret file {path} cannot be read: {exc.strerror}") from None
    secrets = [s.strip().encode() for s in lines if s.strip() and not s.startswith("#")]
    if not secrets:
        raise SecretError(f"token secret file {path} holds no secret")
    short = [s for s in secrets if len(s) < 16]
    if short:
        raise SecretError(f"token secret file {path}: every secret needs at least 16 characters")
    return secrets
