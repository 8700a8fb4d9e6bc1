"""The listener as real deployments run it: STARTTLS, AUTH, the PROXY protocol, LMTP behind
Postfix, connection limits, and the extensions it advertises — each driven over a real
socket with smtplib or a raw transcript."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select

from mailcase.app import App
from mailcase.intake.smtpauth import Authenticator, hash_password, load_users
from mailcase.monitoring.endpoint import Monitor
from mailcase.store.models import InboundMail
from tests.support.servers import mail, running_daemon, send, wait_for

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """A certificate for 127.0.0.1 and its key, as [smtp] takes them."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    return {"tls_cert_file": str(chain), "tls_key_file": str(key)}


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def auth_file(tmp_path: Path) -> str:
    path = tmp_path / "smtp-users"
    path.write_text(f"# relays allowed to submit\nwebform:{hash_password(PASSWORD)}\n")
    return str(path)


def send_over_tls(port: int, context: ssl.SSLContext, message_id: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=context)
        client.send_message(mail(message_id=message_id))


def stored(app: App) -> list[InboundMail]:
    with app.sessions() as session:
        return list(session.scalars(select(InboundMail).order_by(InboundMail.id)))


def test_ehlo_advertises_size_8bitmime_smtputf8_and_no_auth_without_users(app: App) -> None:
    """SIZE carries max_message_size; 8BITMIME and SMTPUTF8 are on; without TLS and
    users there is neither STARTTLS nor AUTH to offer."""
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo("client.example.org")
        assert client.esmtp_features["size"] == str(app.settings.smtp.max_message_size)
        assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
        assert not client.has_extn("starttls") and not client.has_extn("auth")


def test_starttls_then_mail_is_stored(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext
) -> None:
    """With a certificate the listener offers STARTTLS; a verified TLS session delivers."""
    app = make_app(smtp=tls_files)
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_context)
        client.ehlo()
        client.send_message(mail(message_id="<over-tls@customer.org>"))
    assert [row.message_id for row in stored(app)] == ["<over-tls@customer.org>"]


def test_require_tls_refuses_mail_in_the_clear(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext
) -> None:
    """require_tls: MAIL before STARTTLS is refused with 530; after it, mail goes in."""
    app = make_app(smtp={**tls_files, "require_tls": True})
    with running_daemon(app) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.port) as client, \
                pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(mail(message_id="<clear@customer.org>"))
        assert refused.value.smtp_code == 530
        send_over_tls(daemon.port, client_context, "<secret@customer.org>")
    assert [row.message_id for row in stored(app)] == ["<secret@customer.org>"]


def test_auth_only_over_tls_right_and_wrong_passwords(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext,
    auth_file: str,
) -> None:
    """AUTH is not offered in the clear; over TLS the right password gets 235, a wrong one
    535, and auth_required refuses mail from a client that did not log in."""
    app = make_app(smtp={**tls_files, "auth_file": auth_file, "auth_required": True})
    with running_daemon(app) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.ehlo()
            assert not client.has_extn("auth")
            client.starttls(context=client_context)
            client.ehlo()
            assert set(client.esmtp_features["auth"].split()) == {"LOGIN", "PLAIN"}
            with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
                client.login("webform", "not the password")
            assert wrong.value.smtp_code == 535
            with pytest.raises(smtplib.SMTPSenderRefused) as anonymous:
                client.send_message(mail(message_id="<anonymous@customer.org>"))
            assert anonymous.value.smtp_code == 530
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.starttls(context=client_context)
            assert client.login("webform", PASSWORD)[0] == 235
            client.send_message(mail(message_id="<logged-in@customer.org>"))
    assert [row.message_id for row in stored(app)] == ["<logged-in@customer.org>"]


def test_the_auth_file_holds_hashes_not_passwords(auth_file: str) -> None:
    """hash-password's lines are scrypt hashes that verify the password and nothing else."""
    text = Path(auth_file).read_text()
    assert PASSWORD not in text
    [user] = load_users(Path(auth_file)).values()
    assert user.matches(PASSWORD.encode()) and not user.matches(b"correct horse")


def transcript(port: int, lines: list[bytes], *, replies: int) -> list[bytes]:
    """Send raw protocol lines and read ``replies`` reply lines (greeting included)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(lines))
        reader = sock.makefile("rb")
        got = []
        while len(got) < replies:
            line = reader.readline()
            if not line:
                break
            if line[3:4] != b"-":  # the last line of a multi-line reply
                got.append(line.rstrip(b"\r\n"))
        return got


def test_proxy_protocol_names_the_real_client(make_app: Callable[..., App]) -> None:
    """Behind a load balancer the PROXY header comes first; the mail is stored, and the
    per-client limit counts the address the header names, not the balancer's."""
    app = make_app(smtp={"proxy_protocol": True, "max_connections_per_client": 1})
    message = mail(message_id="<proxied@customer.org>").as_bytes().replace(b"\n", b"\r\n")
    with running_daemon(app) as daemon:
        replies = transcript(daemon.port, [
            b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n",
            b"EHLO lb.example.org\r\n", b"MAIL FROM:<ann@customer.org>\r\n",
            b"RCPT TO:<support@example.com>\r\n", b"DATA\r\n", message, b".\r\n", b"QUIT\r\n",
        ], replies=7)
        assert replies[0].startswith(b"220") and replies[5].startswith(b"250 2.0.0"), replies
        # Two clients behind the one balancer are two clients; a header-less
        # connection is not served at all.
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as first:
            first.sendall(b"PROXY TCP4 203.0.113.8 127.0.0.1 40001 25\r\n")
            assert first.makefile("rb").readline().startswith(b"220")
            again = transcript(daemon.port, [b"PROXY TCP4 203.0.113.8 127.0.0.1 40002 25\r\n"],
                               replies=1)
            other = transcript(daemon.port, [b"PROXY TCP4 203.0.113.9 127.0.0.1 40003 25\r\n"],
                               replies=1)
        assert again[0].startswith(b"421 4.7.0"), again
        assert other[0].startswith(b"220"), other
        assert transcript(daemon.port, [b"EHLO no-header\r\n"], replies=1) == []
    assert [row.message_id for row in stored(app)] == ["<proxied@customer.org>"]


def test_lmtp_answers_each_recipient(make_app: Callable[..., App]) -> None:
    """protocol = "lmtp": LHLO (EHLO is refused), and after DATA one reply per recipient,
    as Postfix's lmtp transport expects; the mail is stored once."""
    app = make_app(smtp={"protocol": "lmtp"})
    message = mail(message_id="<lmtp@customer.org>").as_bytes().replace(b"\n", b"\r\n")
    with running_daemon(app) as daemon:
        assert transcript(daemon.port, [b"EHLO mx\r\n"], replies=2)[1].startswith(b"500")
        replies = transcript(daemon.port, [
            b"LHLO mx.example.org\r\n", b"MAIL FROM:<ann@customer.org>\r\n",
            b"RCPT TO:<support@example.com>\r\n", b"RCPT TO:<support+x@example.com>\r\n",
            b"DATA\r\n", message, b".\r\n", b"QUIT\r\n",
        ], replies=9)
    assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250", b"250", b"354",
                                        b"250", b"250", b"221"], replies
    assert [row.message_id for row in stored(app)] == ["<lmtp@customer.org>"]
    assert stored(app)[0].rcpt_to == ["support@example.com", "support+x@example.com"]


def test_lmtp_offers_pipelining_and_records_its_source(make_app: Callable[..., App]) -> None:
    """RFC 2033 requires PIPELINING of an LMTP server: LHLO (and EHLO over SMTP) offer
    it, and the mail is recorded as come by LMTP."""
    app = make_app(smtp={"protocol": "lmtp"})
    with running_daemon(app) as daemon:
        client = smtplib.LMTP("127.0.0.1", daemon.port)
        client.ehlo("mx.example.org")  # smtplib's LMTP sends LHLO for it
        assert client.has_extn("pipelining")
        client.sendmail("ann@customer.org", ["support@example.com"],
                        mail(message_id="<lmtp-source@customer.org>").as_bytes())
        client.quit()
    assert [row.source for row in stored(app)] == ["lmtp"]
    smtp_app = make_app()
    with running_daemon(smtp_app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo("mx.example.org")
        assert client.has_extn("pipelining")


def test_connections_over_the_limits_get_421(make_app: Callable[..., App]) -> None:
    """One connection more than max_connections_per_client (or max_connections) is
    answered 421 and closed; once one closes, the next is served again."""
    app = make_app(smtp={"max_connections": 3, "max_connections_per_client": 2})
    with running_daemon(app) as daemon:
        first = smtplib.SMTP("127.0.0.1", daemon.port)
        second = smtplib.SMTP("127.0.0.1", daemon.port)
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", daemon.port)
        assert refused.value.smtp_code == 421
        assert b"from your address" in refused.value.smtp_error
        first.quit()
        send(daemon.port, mail(message_id="<after@customer.org>"))
        second.quit()
    # Every test client comes from 127.0.0.1: lift the per-client limit to meet the total.
    app = make_app(smtp={"max_connections": 2, "max_connections_per_client": 10})
    with running_daemon(app) as daemon:
        held = [smtplib.SMTP("127.0.0.1", daemon.port) for _ in range(2)]
        with pytest.raises(smtplib.SMTPConnectError) as full:
            smtplib.SMTP("127.0.0.1", daemon.port)
        assert full.value.smtp_code == 421 and b"Too many connections" in full.value.smtp_error
        for client in held:
            client.quit()


def test_a_client_stuck_in_starttls_or_gone_leaves_the_count(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext
) -> None:
    """A client that says STARTTLS and then nothing is closed after session_timeout and no
    longer counts; so is one that hangs up mid-session; the address is served again."""
    app = make_app(smtp={**tls_files, "session_timeout": 1, "max_connections_per_client": 1})
    with running_daemon(app) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as stuck:
            reader = stuck.makefile("rb")
            assert reader.readline().startswith(b"220")
            stuck.sendall(b"EHLO stuck.example.org\r\n")
            while reader.readline()[3:4] == b"-":
                pass
            stuck.sendall(b"STARTTLS\r\n")
            assert reader.readline().startswith(b"220")
            # ... and no handshake: the server gives up and closes.
            assert reader.readline() == b""
        assert daemon.sessions.open == set() and not daemon.sessions.clients
        gone = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        assert gone.makefile("rb").readline().startswith(b"220")
        gone.close()  # abruptly, mid-session
        wait_for(lambda: not daemon.sessions.clients, what="the closed session to leave")
        send_over_tls(daemon.port, client_context, "<served-again@customer.org>")
    assert [row.message_id for row in stored(app)] == ["<served-again@customer.org>"]


def test_auth_tries_are_limited_mail_on_one_connection_is_not(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext,
    auth_file: str,
) -> None:
    """Three AUTH tries a session, then 421 (each costs a slow hash); a logged-in client
    still sends as many mails as it likes on one connection."""
    app = make_app(smtp={**tls_files, "auth_file": auth_file})
    with running_daemon(app) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.starttls(context=client_context)
            client.ehlo()
            for _ in range(3):
                code, _ = client.docmd("AUTH", "PLAIN AHdlYmZvcm0Ad3Jvbmc=")  # webform/wrong
                assert code == 535
            code, reply = client.docmd("AUTH", "PLAIN AHdlYmZvcm0Ad3Jvbmc=")
            assert code == 421 and b"too many times" in reply
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.starttls(context=client_context)
            client.login("webform", PASSWORD)
            for n in range(25):
                client.send_message(mail(message_id=f"<many-{n}@customer.org>"))
    assert len(stored(app)) == 25


def test_a_stop_says_421_to_sessions_between_mails(app: App) -> None:
    """A client idle between mails when the daemon stops hears 421 before the close
    (RFC 5321 3.8), so it knows to come back rather than guess."""
    with running_daemon(app) as daemon:
        client = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        reader = client.makefile("rb")
        assert reader.readline().startswith(b"220")
    assert reader.readline().startswith(b"421 4.3.2")
    client.close()


def test_proxy_unknown_counts_the_balancer_not_each_port(make_app: Callable[..., App]) -> None:
    """A PROXY UNKNOWN header (a balancer's health check) names no client: such
    connections count against the balancer's address, whatever their source port."""
    app = make_app(smtp={"proxy_protocol": True, "max_connections_per_client": 1})
    with running_daemon(app) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as first:
            first.sendall(b"PROXY UNKNOWN\r\n")
            assert first.makefile("rb").readline().startswith(b"220")
            again = transcript(daemon.port, [b"PROXY UNKNOWN\r\n"], replies=1)
        assert again[0].startswith(b"421 4.7.0"), again


# --- nothing one sender does blocks the rest (issue: slots held, RCPT floods, AUTH guesses) --


def test_noop_keeps_no_slot_past_the_session_timeout(make_app: Callable[..., App]) -> None:
    """Idle means no mail progress, not no bytes: a client that sends NOOP and RSET and
    no mail is told 421 and closed after session_timeout, and the address it held is
    served again."""
    app = make_app(smtp={"session_timeout": 1, "max_connections_per_client": 1})
    with running_daemon(app) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as idle:
            reader = idle.makefile("rb")
            assert reader.readline().startswith(b"220")
            replies = []
            for command in [b"EHLO idle.example.org", *[b"NOOP", b"RSET"] * 40]:
                try:
                    idle.sendall(command + b"\r\n")
                except OSError:
                    break
                line = reader.readline()
                while line[3:4] == b"-":
                    line = reader.readline()
                replies.append(line)
                if not line or line.startswith(b"421"):
                    break
                time.sleep(0.05)  # a client's pace, well inside the timeout
            assert replies[-1].startswith(b"421 4.4.2"), replies[-3:]
        wait_for(lambda: not daemon.sessions.clients, what="the idle session to leave")
        send(daemon.port, mail(message_id="<after-idle@customer.org>"))
    assert [row.message_id for row in stored(app)] == ["<after-idle@customer.org>"]


def test_a_mail_takes_at_most_max_recipients(app: App) -> None:
    """RFC 5321 4.5.3.1.8: 100 recipients are taken, the 101st hears 452 (the client
    sends the rest in another transaction), and the mail is stored for the 100."""
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo()
        client.mail("ann@customer.org")
        codes = [client.rcpt(f"support+r{n}@example.com")[0] for n in range(101)]
        assert codes == [250] * 100 + [452]
        assert client.data(mail(message_id="<many-rcpt@customer.org>").as_bytes())[0] == 250
    [row] = stored(app)
    assert len(row.rcpt_to) == 100


def test_auth_guesses_are_limited_per_address_and_hashed_off_the_loop(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext,
    auth_file: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failures count per client address across connections: past the limit, even the
    right password gets 454 without being checked. Every check runs off the event
    loop's thread."""
    on_loop: list[bool] = []
    real_verify = Authenticator.verify

    def recording(self: Authenticator, user: str, password: bytes) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # a worker thread runs no event loop
            on_loop.append(False)
        return real_verify(self, user, password)

    monkeypatch.setattr(Authenticator, "verify", recording)
    app = make_app(smtp={**tls_files, "auth_file": auth_file, "auth_failures_per_client": 2})
    with running_daemon(app) as daemon:
        for _ in range(2):  # two connections, one wrong guess each
            with smtplib.SMTP("127.0.0.1", daemon.port) as client:
                client.starttls(context=client_context)
                client.ehlo()
                assert client.docmd("AUTH", "PLAIN AHdlYmZvcm0Ad3Jvbmc=")[0] == 535
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.starttls(context=client_context)
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("webform", PASSWORD)
        assert refused.value.smtp_code == 454
    assert on_loop == [False, False]  # two checked, off the loop; the third never was


def test_a_silent_http_client_blocks_no_health_check(app: App) -> None:
    """One TCP client that connects to the monitoring port and says nothing does not
    keep /healthz from anyone else."""
    monitor = Monitor(app.health, app.metrics, "127.0.0.1", 0)
    monitor.start()
    try:
        with (socket.create_connection(("127.0.0.1", monitor.port), timeout=10),
              urllib.request.urlopen(f"http://127.0.0.1:{monitor.port}/healthz",
                                     timeout=5) as answer):
            assert answer.status == 200
    finally:
        monitor.stop()


def test_auth_login_with_and_without_an_initial_response(
    make_app: Callable[..., App], tls_files: dict[str, str], client_context: ssl.SSLContext,
    auth_file: str,
) -> None:
    """AUTH LOGIN asks for what the client did not send with the command (RFC 4954), and
    a wrong password is a 535."""
    app = make_app(smtp={**tls_files, "auth_file": auth_file})

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    with running_daemon(app) as daemon:
        for first in (("LOGIN",), ("LOGIN", b64("webform"))):
            with smtplib.SMTP("127.0.0.1", daemon.port) as client:
                client.starttls(context=client_context)
                client.ehlo()
                code, _ = client.docmd("AUTH", " ".join(first))
                assert code == 334
                if len(first) == 1:
                    assert client.docmd(b64("webform"))[0] == 334
                assert client.docmd(b64(PASSWORD))[0] == 235
        with smtplib.SMTP("127.0.0.1", daemon.port) as client:
            client.starttls(context=client_context)
            client.ehlo()
            assert client.docmd("AUTH", "LOGIN " + b64("webform"))[0] == 334
            assert client.docmd(b64("wrong"))[0] == 535
