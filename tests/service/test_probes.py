"""`mailcase check-config` asks the smarthost and every IMAP server whether they answer, one
line each, against real servers: the aiosmtpd sink (with STARTTLS and AUTH) and Dovecot;
a server that is down or refuses the login exits 69, a config problem still 78, and
``--offline`` asks nobody."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailcase.cli import main
from tests.support.dovecot import USER, Dovecot
from tests.support.mailsink import Sink, free_port
from tests.support.servers import write_config

LOGIN = ("mailcase", "relay-s3cret")


def check(capsys: pytest.CaptureFixture[str], config: Path,
          *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-c", str(config), "check-config", "--no-ports", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def config(tmp_path: Path, **sections: Any) -> Path:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None, **sections)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def relay(ca: trustme.CA) -> Iterator[Sink]:
    """A smarthost that insists on STARTTLS and AUTH, as a real one would."""
    with Sink(tls="starttls", ca=ca, login=LOGIN) as sink:
        yield sink


def relay_settings(tmp_path: Path, ca: trustme.CA, port: int,
                   password: str = LOGIN[1]) -> dict[str, Any]:
    ca_file, password_file = tmp_path / "relay-ca.pem", tmp_path / "relay-password"
    ca.cert_pem.write_to_path(str(ca_file))
    password_file.write_text(password + "\n")
    return {"transport": "smtp", "host": "127.0.0.1", "port": port, "tls": "starttls",
            "ca_file": str(ca_file), "username": LOGIN[0], "password_file": str(password_file)}


def imap_mailbox(dovecot: Dovecot, port: int | None = None, **imap: Any) -> dict[str, Any]:
    return {"address": "support@example.com", "imap": {
        "host": "127.0.0.1", "port": port or dovecot.port, "tls": "none", "username": USER,
        "password_file": str(dovecot.password_file), **imap}}


def test_a_smarthost_that_answers_is_ok_and_gets_no_mail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relay: Sink, ca: trustme.CA
) -> None:
    """EHLO, STARTTLS with the certificate checked, AUTH: one OK line naming what was
    agreed, exit 0; the relay saw a login and no mail."""
    code, out, err = check(capsys, config(
        tmp_path, outbound=relay_settings(tmp_path, ca, relay.port)))
    assert (code, err) == (0, "")
    assert f"smarthost 127.0.0.1:{relay.port}: OK, STARTTLS TLSv1." in out
    assert "AUTH as mailcase" in out
    assert relay.logins == ["mailcase"] and relay.messages == []


def test_a_refused_login_at_the_smarthost_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relay: Sink, ca: trustme.CA
) -> None:
    """A wrong password: exit 69 and the relay's own 535 answer, the password never shown."""
    code, out, err = check(capsys, config(
        tmp_path, outbound=relay_settings(tmp_path, ca, relay.port, "wrong-one")))
    assert code == 69
    assert "config OK" in out
    assert err.startswith(f"mailcase: smarthost 127.0.0.1:{relay.port}: FAILED, "
                          "authentication refused: 535"), err
    assert "wrong-one" not in err


def test_a_certificate_not_trusted_is_a_tls_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relay: Sink, ca: trustme.CA
) -> None:
    """Required STARTTLS against a certificate from a CA we were not given."""
    settings = relay_settings(tmp_path, trustme.CA(), relay.port)
    code, _, err = check(capsys, config(tmp_path, outbound=settings))
    assert code == 69
    assert "FAILED, TLS failed: certificate not accepted (unable to get local issuer" in err, err


def test_a_closed_port_and_a_silent_server_are_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening: "connection refused". A server that accepts the connection but
    never greets: "no answer" after the probe's timeout, not the delivery timeout."""
    closed = free_port()
    code, out, err = check(capsys, config(tmp_path, outbound={
        "transport": "smtp", "host": "127.0.0.1", "port": closed}))
    assert code == 69
    assert err == f"mailcase: smarthost 127.0.0.1:{closed}: FAILED, connection refused\n"
    assert "config OK" in out
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        code, _, err = check(capsys, config(tmp_path, outbound={
            "transport": "smtp", "host": "127.0.0.1", "port": port, "timeout": 0.5}))
    assert code == 69
    assert err == f"mailcase: smarthost 127.0.0.1:{port}: FAILED, no answer within 0.5 s\n"


def test_offline_asks_no_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--offline (for ExecReload): the down relay is not asked and the exit is 0."""
    code, out, err = check(capsys, config(tmp_path, outbound={
        "transport": "smtp", "host": "127.0.0.1", "port": free_port()}), "--offline")
    assert (code, err) == (0, "")
    assert "smarthost" not in out


def test_a_config_problem_outranks_a_server_that_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both at once: every line is listed, and the exit says the config is wrong (78)."""
    port = free_port()
    (tmp_path / "token-secret").write_text("# the secret line was lost\n")
    code, out, err = check(capsys, config(
        tmp_path, outbound={"transport": "smtp", "host": "127.0.0.1", "port": port}))
    assert code == 78 and "config OK" not in out
    assert f"smarthost 127.0.0.1:{port}: FAILED, connection refused" in err
    assert "holds no secret" in err


def test_an_imap_server_that_answers_is_ok_and_nothing_is_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dovecot: Dovecot
) -> None:
    """Log in and open the folder read-only: OK with the folder's count; the mail in it
    keeps its flags."""
    dovecot.append(b"From: ann@customer.org\r\nSubject: waiting\r\n\r\nhello\r\n")
    code, out, err = check(capsys, config(tmp_path, mailbox=imap_mailbox(dovecot)))
    assert (code, err) == (0, "")
    assert (f"IMAP support@example.com ({USER} at 127.0.0.1:{dovecot.port}): OK, no TLS, "
            "logged in, INBOX holds 1 mail(s)") in out
    assert list(dovecot.flags().values()) == [()]


@pytest.mark.parametrize(("imap", "expected"), [
    ({"password_file": "wrong-password"},
     f"FAILED, IMAP login as {USER} refused: [AUTHENTICATIONFAILED]"),
    ({"folder": "Support"}, "FAILED, logged in, but folder 'Support' cannot be opened"),
    ({"port": "closed"}, "FAILED, connection refused"),
])
def test_what_failed_at_the_imap_server_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dovecot: Dovecot,
    imap: dict[str, str], expected: str
) -> None:
    """A wrong password, a folder that does not exist and a closed port: exit 69 and one
    line naming the mailbox and the step that failed."""
    (tmp_path / "wrong-password").write_text("not-the-password\n")
    port = free_port() if imap.pop("port", None) else dovecot.port
    code, out, err = check(capsys, config(tmp_path, mailbox=imap_mailbox(
        dovecot, port, **{k: str(tmp_path / v) if k == "password_file" else v
                          for k, v in imap.items()})))
    assert code == 69 and "config OK" in out
    assert err.startswith(f"mailcase: IMAP support@example.com ({USER} at 127.0.0.1:{port}): "
                          f"{expected}"), err
    assert "not-the-password" not in err
