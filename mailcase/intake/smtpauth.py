"""SMTP AUTH for the listener: users and scrypt password hashes from ``smtp.auth_file``.

The file holds one ``user:hash`` line per user (``#`` starts a comment), the hash as
``mailcase hash-password`` prints it: ``scrypt$<log2 N>$<r>$<p>$<salt>$<key>`` with
the salt and key in base64. Passwords are never stored or logged in the clear. A hash
costs tens of milliseconds on purpose, so it runs off the event loop (see
OffLoopAuth below), a password that proved right is remembered (as a keyed digest,
not the password) so the same relay logging in again costs microseconds, and an
address that keeps failing is refused before any hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from base64 import b64decode
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)

SCRYPT_LOG2_N = 14  # 16 MiB and ~50 ms a hash: OWASP's minimum for scrypt is 2**13
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024


class AuthFileError(Exception):
    """The auth file cannot be read or has a line that is not ``user:hash``."""


@dataclass(frozen=True)
class ScryptHash:
    """One stored password hash and its parameters."""

    log2_n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, text: str) -> ScryptHash:
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("not a scrypt$N$r$p$salt$key hash")
        log2_n, r, p = (int(part) for part in parts[1:4])
        if not (1 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        return cls(log2_n, r, p, base64.b64decode(parts[4], validate=True),
                   base64.b64decode(parts[5], validate=True))

    def derive(self, password: bytes) -> bytes:
        return hashlib.scrypt(password, salt=self.salt, n=2 ** self.log2_n, r=self.r,
                              p=self.p, maxmem=SCRYPT_MAXMEM, dklen=len(self.key))

    def matches(self, password: bytes) -> bool:
        return hmac.compare_digest(self.derive(password), self.key)

    def __str__(self) -> str:
        salt, key = (base64.b64encode(v).decode() for v in (self.salt, self.key))
        return f"scrypt${self.log2_n}${self.r}${self.p}${salt}${key}"


def hash_password(password: str) -> str:
    """A new hash line's second half for ``password`` (a fresh random salt)."""
    template = ScryptHash(SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, secrets.token_bytes(16), b"")
    key = hashlib.scrypt(password.encode("utf-8"), salt=template.salt, n=2 ** SCRYPT_LOG2_N,
                         r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32)
    return str(ScryptHash(template.log2_n, template.r, template.p, template.salt, key))


def load_users(path: Path) -> dict[str, ScryptHash]:
    """The users of an auth file; AuthFileError names the line that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthFileError(f"smtp.auth_file {path} cannot be read: {exc.strerror}") from None
    users: dict[str, ScryptHash] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        try:
            if not sep or not user:
                raise ValueError("not user:hash")
            users[user] = ScryptHash.parse(hashed)
        except ValueError as exc:
            # The line itself may be a password pasted by mistake: never echo it.
            raise AuthFileError(f"smtp.auth_file {path} line {number}: {exc} "
                                "(make one with: mailcase hash-password)") from None
    if not users:
        raise AuthFileError(f"smtp.auth_file {path} has no users")
    return users


AUTH_BLOCKED = "454 4.7.0 Too many failed authentications from your address, try later"


class Authenticator:
    """aiosmtpd's ``authenticator``: LOGIN and PLAIN against the auth file's users.

    Called off the event loop (GatewaySMTP runs it in a worker thread: a hash costs
    ~50 ms), so its state is behind a lock. Failures are counted per client address as
    well as per session: past ``max_failures`` within ``window`` seconds an address gets
    454 without a password being checked, however many connections it opens.
    """

    def __init__(self, users: dict[str, ScryptHash], *, max_failures: int = 10,
                 window: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = users
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._key = secrets.token_bytes(32)  # for the remembered digests, this process only
        self._proven: dict[str, bytes] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        # An unknown user costs the same hash as a known one: the time of an answer must
        # not tell which user names exist.
        self._decoy = ScryptHash.parse(hash_password(secrets.token_hex(16)))

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,
                 mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        client = getattr(server, "client", None) or str(session.peer[0] if isinstance(
            session.peer, tuple) else session.peer)
        if self.blocked(client):
            log.warning("AUTH %s refused for %s: too many failures", mechanism, client)
            return AuthResult(success=False, handled=False, message=AUTH_BLOCKED)
        user = auth_data.login.decode("utf-8", "replace")
        if self.verify(user, auth_data.password):
            log.info("AUTH %s as %r from %s", mechanism, user, client)
            return AuthResult(success=True, auth_data=user)
        self.failed(client)
        log.warning("AUTH %s failed for %r from %s", mechanism, user, client)
        return AuthResult(success=False, handled=False)

    def blocked(self, client: str) -> bool:
        """Whether ``client`` used up its failures within the window."""
        with self._lock:
            recent = self._recent(client)
            return recent is not None and len(recent) >= self.max_failures

    def failed(self, client: str) -> None:
        with self._lock:
            recent = self._recent(client)
            if recent is None:
                recent = self._failures[client] = deque()
            recent.append(self.clock())

    def _recent(self, client: str) -> deque[float] | None:
        """The client's failures within the window (older ones forgotten)."""
        recent = self._failures.get(client)
        if recent is None:
            return None
        horizon = self.clock() - self.window
        while recent and recent[0] < horizon:
            recent.popleft()
        if not recent:
            del self._failures[client]
            return None
        return recent

    def verify(self, user: str, password: bytes) -> bool:
        stored = self.users.get(user)
        if stored is None:
            self._decoy.matches(password)
            return False
        digest = hmac.new(self._key, user.encode() + b"\0" + password, "sha256").digest()
        with self._lock:
            proven = self._proven.get(user)
        if proven is not None and hmac.compare_digest(proven, digest):
            return True
        if not stored.matches(password):
            return False
        with self._lock:
            self._proven[user] = digest
        return True


class OffLoopAuth(SMTP):
    """aiosmtpd's SMTP with AUTH PLAIN and LOGIN read as aiosmtpd reads them, but the
    password check (a deliberately slow hash) run in a worker thread instead of on the
    event loop that serves every other session."""

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        blob = await self._first_response(args, "")
        if not isinstance(blob, bytes):
            return blob
        try:
            _authzid, login, password = blob.split(b"\x00")  # RFC 4616
        except ValueError:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._authenticate_off_loop("PLAIN", LoginPassword(login, password))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        login = await self._first_response(args, self.AuthLoginUsernameChallenge)
        if not isinstance(login, bytes):
            return login
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False)
        return await self._authenticate_off_loop("LOGIN", LoginPassword(login, password))

    async def _first_response(self, args: list[str], challenge: str) -> bytes | AuthResult:
        """The client's first answer: given with AUTH (RFC 4954's initial response), or
        asked for; an AuthResult to return when there is none to read."""
        if len(args) == 1:
            answer = await self.challenge_auth(challenge)
            return answer if isinstance(answer, bytes) else AuthResult(success=False)
        try:
            return b64decode(args[1].encode(), validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Can't decode base64")
            return AuthResult(success=False, handled=True)

    async def _authenticate_off_loop(self, mechanism: str, data: LoginPassword) -> AuthResult:
        result = await self.loop.run_in_executor(None, self._authenticate, mechanism, data)
        assert isinstance(result, AuthResult)
        return result

