"""`mailcase check-config` checks what a start would need and lists every problem at once:
ports taken, a database that does not answer, unreadable secret files, a bad auth file;
and `hash-password` makes the lines of that auth file."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from mailcase.cli import main
from mailcase.intake.smtpauth import load_users
from tests.support.mailsink import free_port
from tests.support.servers import write_config


def check(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-c", str(config), "check-config", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_problem_is_listed_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A taken SMTP port, a missing relay password file and an auth file with a pasted
    password are all reported in one run, each line naming its key; the pasted
    password itself is never echoed."""
    auth = tmp_path / "smtp-users"
    auth.write_text("webform:hunter2-pasted-by-mistake\n")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", free_port(),
            smtp={"port": port, "auth_file": str(auth), "tls_cert_file": str(cert),
                  "tls_key_file": str(key)},
            outbound={"username": "mailcase", "password_file": str(tmp_path / "nope")})
        code, out, err = check(capsys, config)
        assert check(capsys, config, "--no-ports")[2].count("\n") == err.count("\n") - 1
    assert code == 78 and out == ""
    lines = err.splitlines()
    assert all(line.startswith("mailcase: ") for line in lines), err
    assert any(f"smtp: cannot listen on 127.0.0.1:{port}" in line
               and "already running" in line for line in lines), err
    assert any(f"outbound.password_file {tmp_path / 'nope'} cannot be read" in line
               for line in lines), err
    assert any("smtp.tls_cert_file/tls_key_file" in line for line in lines), err
    assert any(f"smtp.auth_file {auth} line 1" in line for line in lines), err
    assert "hunter2" not in err


def test_an_unreachable_database_is_a_problem_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens where the database should be: one line saying it cannot be reached."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/gone?connect_timeout=2"
    code, _, err = check(capsys, write_config(tmp_path, url, None))
    assert code == 78
    assert "cannot be reached" in err and "Traceback" not in err


def test_a_good_config_says_what_it_will_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All checks pass: exit 0 and one summary line (protocol, address, database state)."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None,
                          smtp={"port": free_port(), "protocol": "lmtp"})
    code, out, err = check(capsys, config)
    assert (code, err) == (0, "")
    assert "config OK" in out and "LMTP on 127.0.0.1:" in out and "database new" in out


def test_hash_password_prints_a_line_the_auth_file_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password comes on stdin (as a script would give it); the printed line loads
    as a user whose hash verifies that password; a short password is refused."""
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    capsys.readouterr()
    assert main(["hash-password", "webform"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("webform:scrypt$") and "a long enough password" not in line
    path = tmp_path / "users"
    path.write_text(line + "\n")
    assert load_users(path)["webform"].matches(b"a long enough password")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["hash-password", "webform"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err
