"""How the IMAP poller connects and logs in: TLS as configured, then a password from a
file or an OAuth 2.0 token (XOAUTH2). ``check-config`` connects the same way.

Providers that turned basic authentication off take only XOAUTH2. mailcase does not run
an OAuth flow itself: the token comes from a file that something else keeps fresh, or
from a command (the usual OAuth helpers print a current token and refresh it on their
own). A command's token is kept until the server refuses it or ``token_lifetime`` has
passed, then the command is run again; a file is read at every login. Secrets (the
password, the token, the command's arguments) never appear in a message or the log.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailcase.config import ImapSettings

TOKEN_COMMAND_TIMEOUT = 60.0


class CredentialError(Exception):
    """The password or token could not be had, or the server refused it."""


class StaleToken(CredentialError):
    """The server refused a token kept from an earlier login: fetch a fresh one and log
    in again on a new connection (providers may close one after a failed AUTHENTICATE)."""


class Credentials:
    """Logs a client in as one mailbox; knows when a session's token grows old."""

    def __init__(self, settings: ImapSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._token: str | None = None
        self._token_at = 0.0
        self._token_reused = False

    def login(self, client: IMAPClient, *, refresh: bool = False) -> None:
        """Log in; ``refresh`` fetches a new token first. Raises StaleToken when a kept
        token was refused, CredentialError when the server refused anything else."""
        imap = self.settings
        if imap.auth == "password":
            secret, method = self._password(), client.login
        else:
            secret, method = self._current_token(refresh=refresh), client.oauth2_login
        try:
            method(imap.username, secret)
        except LoginError as exc:
            if isinstance(exc.__context__, IMAPClientAbortError):
                raise ConnectionError(f"IMAP connection lost during login: {exc}") from None
            if imap.auth == "xoauth2" and self._token_reused:
                self._token = None
                raise StaleToken("the kept token was refused") from None
            kind = "XOAUTH2 login" if imap.auth == "xoauth2" else "login"
            raise CredentialError(
                f"IMAP {kind} as {imap.username} refused: {_server_words(exc)}") from None

    def session_ends(self, logged_in_at: float) -> float:
        """When a session that logged in at ``logged_in_at`` (monotonic) should log in
        again: an XOAUTH2 session must not outlive its token (a command's token is as old
        as its fetch, not the login); a password session may live on."""
        if self.settings.auth == "password":
            return float("inf")
        born = self._token_at if self.settings.token_command is not None else logged_in_at
        return born + self.settings.token_lifetime

    def _password(self) -> str:
        path = self.settings.password_file
        assert path is not None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialError(f"password_file {path}: {exc.strerror}") from None

    def _current_token(self, *, refresh: bool) -> str:
        imap = self.settings
        self._token_reused = False
        if imap.token_file is not None:
            try:
                token = imap.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CredentialError(f"token_file {imap.token_file}: {exc.strerror}") from None
            if not token:
                raise CredentialError(f"token_file {imap.token_file} is empty")
            self._token_at = self.clock()
            return token
        fresh = self.clock() - self._token_at < imap.token_lifetime
        if self._token is None or refresh or not fresh:
            self._token = self._run_command()
            self._token_at = self.clock()
        else:
            self._token_reused = True
        return self._token

    def _run_command(self) -> str:
        command = self.settings.token_command
        assert command
        name = command[0]
        try:
            done = subprocess.run(  # noqa: S603 - the operator's own configured command
                list(command), capture_output=True, text=True, check=False,
                timeout=TOKEN_COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise CredentialError(
                f"token_command {name} gave no token within {TOKEN_COMMAND_TIMEOUT:.0f} s"
            ) from None
        except OSError as exc:
            raise CredentialError(f"token_command {name}: {exc.strerror}") from None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise CredentialError(f"token_command {name} exited with {done.returncode}: {reason}")
        token = done.stdout.strip()
        if not token:
            raise CredentialError(f"token_command {name} printed no token")
        return token


def _server_words(exc: LoginError) -> str:
    """The server's answer as text (imapclient's LoginError holds the repr of its bytes)."""
    cause = exc.__context__
    words = cause.args[0] if cause is not None and cause.args else None
    return words.decode(errors="replace") if isinstance(words, bytes) else str(exc)


class Connector:
    """Opens logged-in sessions to one mailbox's server; remembers when the last began."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.credentials = Credentials(settings)
        self.logged_in_at = 0.0

    @contextmanager
    def session(self) -> Iterator[IMAPClient]:
        """A logged-in connection, TLS as configured, closed however the block ends."""
        imap = self.settings
        context = ssl.create_default_context(cafile=str(imap.ca_file) if imap.ca_file else None)
        if not imap.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = self._connect(context)
        try:
            try:
                self.credentials.login(client)
            except StaleToken:
                _close(client)
                client = self._connect(context)
                self.credentials.login(client, refresh=True)
            self.logged_in_at = time.monotonic()
            yield client
        finally:
            _close(client)

    def _connect(self, context: ssl.SSLContext) -> IMAPClient:
        """A connection, TLS as configured, with TCP keepalive so that a host that
        vanished without closing the connection is noticed in about two minutes."""
        imap = self.settings
        client = IMAPClient(imap.host, port=imap.port, ssl=imap.tls == "implicit",
                            ssl_context=context, timeout=imap.timeout)
        sock = client.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
        if imap.tls == "starttls":
            try:
                client.starttls(context)
            except BaseException:
                client.shutdown()
                raise
        return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError):
        client.shutdown()
