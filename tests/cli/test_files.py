"""Files in and out from the command line, on both engines: a case's attachments and a
raw mail written out byte for byte where the user says and nowhere else, and files sent
with an agent's reply to the relay."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cases.errors import BadValue
from mailcase.cases.files import NewFile
from mailcase.cli import main
from mailcase.store.db import BLOB_SLICE
from mailcase.store.models import Attachment, Blob, Comment, InboundMail, OutboundMail
from tests.cli.test_cli import CONSOLE_SCRIPT, assert_one_line_error, subprocess_env
from tests.support.mailsink import Sink
from tests.support.servers import mail

# Bytes a text-mode copy would break: CR, LF, CRLF, NUL, every byte value.
REPORT = bytes(range(256)) * 800 + b"\r\n\x00\r\r\n\n" * 1000
CONTACT = "ann@customer.org"


def run(capsysbinary: pytest.CaptureFixture[bytes], config: Path,
        *args: object) -> tuple[int, bytes, str]:
    """``mailcase -c CONFIG ARGS`` in-process: its exit code, stdout as bytes, stderr."""
    capsysbinary.readouterr()
    try:
        code = main(["-c", str(config), *(str(a) for a in args)])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def console(config: Path, *args: object, **options: Any) -> subprocess.CompletedProcess[bytes]:
    """The installed ``mailcase`` script as a shell runs it."""
    return subprocess.run([str(CONSOLE_SCRIPT), "-c", str(config), *(str(a) for a in args)],
                          env=subprocess_env(), cwd=config.parent, timeout=120, check=False,
                          **options)


def accept(app: App, message: EmailMessage | bytes) -> int:
    """Store and process a customer's mail; its inbound id."""
    raw = message if isinstance(message, bytes) else message.as_bytes()
    accepted = app.intake.accept(raw, mail_from=CONTACT, rcpt_to=["support@example.com"],
                                 source="test")
    app.processor.drain()
    return accepted.id


def with_file(content: bytes, filename: str, *, message_id: str = "<report@customer.org>",
              maintype: str = "application", subtype: str = "pdf") -> EmailMessage:
    message = mail(message_id=message_id, subject="The report", body="Report attached.\n")
    message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def shown_files(capsysbinary: pytest.CaptureFixture[bytes], config: Path,
                number: str = "1000") -> list[dict[str, Any]]:
    """Every file of a case as `cases show --json` lists them, the case's own first."""
    code, out, err = run(capsysbinary, config, "cases", "show", number, "--json")
    assert code == 0, err
    case = json.loads(out)
    return [*case["attachments"], *(a for c in case["comments"] for a in c["attachments"])]


def last_comments(capsysbinary: pytest.CaptureFixture[bytes],
                  config: Path) -> list[dict[str, Any]]:
    code, out, err = run(capsysbinary, config, "cases", "show", "1000", "--json")
    assert code == 0, err
    return list(json.loads(out)["comments"])


def counts(app: App) -> dict[str, int]:
    with app.sessions() as session:
        return {model.__name__: int(session.scalar(select(func.count()).select_from(model))
                                    or 0)
                for model in (Comment, Attachment, Blob, OutboundMail)}


@pytest.fixture
def report_case(app: App, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
                ) -> tuple[Path, int]:
    """Case 00001000 opened by a mail with REPORT attached as "Quarterly report.pdf";
    the config and the file's ID."""
    accept(app, with_file(REPORT, "Quarterly report.pdf"))
    [listed] = shown_files(capsysbinary, tmp_path / "mailcase.toml")
    assert (listed["filename"], listed["size"], listed["stored"]) == (
        "Quarterly report.pdf", len(REPORT), True)
    return tmp_path / "mailcase.toml", listed["id"]


def test_an_attachment_is_written_byte_identical_to_a_path_and_to_a_pipe(
        report_case: tuple[Path, int], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """`cases attachment N ID -o PATH` writes the file from the mail exactly, and so does
    the installed command into a real pipe, with nothing else on stdout."""
    config, file_id = report_case
    target = config.parent / "copy.pdf"
    code, out, err = run(capsysbinary, config, "cases", "attachment", "1000", file_id,
                         "-o", target)
    assert code == 0, err
    assert target.read_bytes() == REPORT
    assert f"written to {target} ({len(REPORT)} bytes)".encode() in out
    piped = console(config, "cases", "attachment", "00001000", file_id, capture_output=True)
    assert piped.returncode == 0, piped.stderr.decode()
    assert (piped.stdout, piped.stderr) == (REPORT, b"")
    code, out, err = run(capsysbinary, config, "cases", "attachment", "1000", file_id)
    assert (code, out) == (0, REPORT), err


def test_a_terminal_is_refused_with_a_hint(
        report_case: tuple[Path, int]) -> None:
    """Bytes are never poured onto a terminal: exit 2, one line suggesting -o."""
    config, file_id = report_case
    controller, terminal = pty.openpty()
    try:
        result = console(config, "cases", "attachment", "1000", file_id, stdout=terminal,
                         stderr=subprocess.PIPE)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2
    line = assert_one_line_error(result.returncode, result.stderr.decode())
    assert "terminal" in line and "-o PATH" in line


def test_a_folder_gets_the_stored_name_and_nothing_is_overwritten(
        report_case: tuple[Path, int], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """-o FOLDER writes the file under its stored name in it; a second time, or over a
    symlink planted at that name, it refuses (exit 1) and changes nothing."""
    config, file_id = report_case
    folder = config.parent / "downloads"
    folder.mkdir()
    command = ("cases", "attachment", "1000", file_id, "-o", folder)
    assert run(capsysbinary, config, *command)[0] == 0
    written = folder / "Quarterly report.pdf"
    assert written.read_bytes() == REPORT
    written.write_bytes(b"my own edits")
    code, _, err = run(capsysbinary, config, *command)
    assert code == 1
    assert "exists already" in assert_one_line_error(code, err)
    assert written.read_bytes() == b"my own edits"
    written.unlink()
    elsewhere = config.parent / "elsewhere.pdf"
    written.symlink_to(elsewhere)
    code, _, err = run(capsysbinary, config, *command)
    assert code == 1, err
    assert not elsewhere.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["Quarterly report.pdf"]


HOSTILE = b"""From: Ann <ann@customer.org>
To: support@example.com
Message-ID: <hostile-names@customer.org>
Subject: Files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Four files.
--b
Content-Type: text/plain
Content-Disposition: attachment; filename="../../etc/passwd"

root
--b
Content-Type: application/x-sh
Content-Disposition: attachment; filename*=utf-8''..%2F..%2F.ssh%2Fevil%00name.sh

echo
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''""" + b"%C3%A9" * 300 + b""".bin

long
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?utf-8?q?=2E=2E=2F=2E=2E=2Fetc=2Fshadow?="

shadow
--b--
"""


def outside(root: Path) -> set[Path]:
    """Everything under ``root`` but the output folder and SQLite's own files."""
    return {p for p in root.rglob("*") if "out" not in p.relative_to(root).parts
            and not p.name.startswith("mailcase.db")}


def test_hostile_filenames_never_leave_the_folder(
        app: App, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Names with folders, a NUL and 600 bytes of UTF-8 each land as one plain file in the
    folder given (at most 255 bytes long, no hidden file); nothing appears outside it."""
    accept(app, HOSTILE)
    config = tmp_path / "mailcase.toml"
    listed = shown_files(capsysbinary, config)
    assert len(listed) == 4
    before = outside(tmp_path)
    for file in listed:
        folder = tmp_path / "out" / str(file["id"])
        folder.mkdir(parents=True)
        code, _, err = run(capsysbinary, config, "cases", "attachment", "1000", file["id"],
                           "-o", folder)
        assert code == 0, err
        [written] = list(folder.iterdir())
        name = written.name
        assert written.is_file() and not written.is_symlink()
        assert "\x00" not in name and not name.startswith(".")
        assert len(name.encode()) <= 255
        assert written.read_bytes().strip() in (b"root", b"echo", b"long", b"shadow")
    assert outside(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())[:3] == [
        "evilname.sh", "passwd", "shadow"]


def test_an_unstored_attachment_says_how_to_get_it(
        make_app: Callable[..., App], tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """A file over attachments.max_size is listed but not stored: asking for it exits 1
    naming the raw mail that keeps it, which `inbound raw` writes out; a file of another
    case, or of no case, is no file of this one."""
    app = make_app(attachments={"max_size": 1000})
    inbound = accept(app, with_file(b"z" * 5000, "big.bin"))
    config = tmp_path / "mailcase.toml"
    [listed] = shown_files(capsysbinary, config)
    assert listed["stored"] is False
    target = tmp_path / "big.bin"
    code, _, err = run(capsysbinary, config, "cases", "attachment", "1000", listed["id"],
                       "-o", target)
    line = assert_one_line_error(code, err)
    assert code == 1 and not target.exists()
    assert "attachments.max_size" in line and f"mailcase inbound raw {inbound}" in line
    code, out, err = run(capsysbinary, config, "inbound", "raw", inbound)
    assert code == 0, err
    with app.readers() as session:
        assert out == session.get(InboundMail, inbound).raw
    code, out, _ = run(capsysbinary, config, "cases", "show", "1000")
    assert f"[file {listed['id']}] big.bin".encode() in out and b"only in its mail" in out

    accept(app, mail(message_id="<other@customer.org>", sender="bob@customer.org"))
    for number, wanted in (("1001", "no such attachment"), ("1002", "no case 00001002")):
        code, _, err = run(capsysbinary, config, "cases", "attachment", number, listed["id"])
        assert code == 1
        assert wanted in assert_one_line_error(code, err)


def test_inbound_raw_is_byte_identical_for_a_multi_megabyte_mail(
        app: App, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """`inbound raw ID` writes a 3 MB mail exactly as stored, to a path, into a folder and
    to a pipe, read from the store a slice at a time; its 3 MB file comes out of the case
    whole."""
    payload = os.urandom(3 * BLOB_SLICE)
    raw = with_file(payload, "dump.bin", subtype="octet-stream").as_bytes()
    inbound = accept(app, raw)
    config = tmp_path / "mailcase.toml"
    target = tmp_path / "mail.eml"
    code, _, err = run(capsysbinary, config, "inbound", "raw", inbound, "-o", target)
    assert code == 0, err
    assert target.read_bytes() == raw
    code, _, err = run(capsysbinary, config, "inbound", "raw", inbound, "-o", tmp_path)
    assert code == 0, err
    assert (tmp_path / f"inbound-{inbound}.eml").read_bytes() == raw
    piped = console(config, "inbound", "raw", inbound, capture_output=True)
    assert (piped.returncode, piped.stdout) == (0, raw), piped.stderr.decode()
    desk = app.desk()
    with desk.raw_mail(inbound) as stored:
        pieces = list(stored.chunks)
    assert len(pieces) > 1 and max(map(len, pieces)) <= BLOB_SLICE
    [listed] = shown_files(capsysbinary, config)
    with desk.attachment(1000, listed["id"]) as stored:
        pieces = list(stored.chunks)
    assert len(pieces) > 1 and b"".join(pieces) == payload
    code, _, err = run(capsysbinary, config, "inbound", "raw", inbound + 1)
    assert code == 1
    assert f"there is no inbound mail {inbound + 1}" in assert_one_line_error(code, err)


def test_reply_attach_reaches_the_relay_and_is_listed(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """`cases reply --attach` sends the files to the contact and the collaborators as MIME
    attachments with their names, types and bytes, lists them on the comment, and stores
    the same bytes once."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    accept(app, mail(message_id="<fix@customer.org>", Cc="carl@customer.org"))
    app.sender.drain()
    sink.messages.clear()
    config = tmp_path / "mailcase.toml"
    patch, shot = tmp_path / "fix.patch", tmp_path / "screen shot.png"
    patch.write_bytes(b"--- a\n+++ b\n")
    shot.write_bytes(REPORT)
    copy = tmp_path / "copy.png"
    copy.write_bytes(REPORT)
    code, out, err = run(capsysbinary, config, "cases", "reply", "1000", "--body",
                         "The fix and a screenshot.", "--attach", patch, "--attach", shot,
                         "--attach", copy)
    assert code == 0, err
    assert b"with 3 file(s)" in out
    app.sender.drain()
    for person in (CONTACT, "carl@customer.org"):
        [sent] = sink.expect(1, to=person)
        files = {part.get_filename(): part for part in sent.message.iter_attachments()}
        assert set(files) == {"fix.patch", "screen shot.png", "copy.png"}
        assert files["screen shot.png"].get_content_type() == "image/png"
        assert files["screen shot.png"].get_payload(decode=True) == REPORT
        assert files["fix.patch"].get_payload(decode=True) == b"--- a\n+++ b\n"
    [*_, reply] = last_comments(capsysbinary, config)
    assert reply["public"] is True
    assert [(a["filename"], a["size"], a["stored"]) for a in reply["attachments"]] == [
        ("fix.patch", 12, True), ("screen shot.png", len(REPORT), True),
        ("copy.png", len(REPORT), True)]
    code, out, err = run(capsysbinary, config, "cases", "attachment", "1000",
                         reply["attachments"][1]["id"])
    assert (code, out) == (0, REPORT), err
    assert counts(app)["Blob"] == 2


def test_note_attach_keeps_the_file_on_the_internal_note(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """`cases note --attach` lists the file on the internal note and mails no customer."""
    app = make_app()
    accept(app, mail(message_id="<note@customer.org>"))
    app.sender.drain()
    sink.messages.clear()
    config = tmp_path / "mailcase.toml"
    trace = tmp_path / "trace.txt"
    trace.write_bytes(b"stack trace\n")
    code, out, err = run(capsysbinary, config, "cases", "note", "1000", "--body",
                         "Their trace.", "--attach", trace)
    assert (code, b"with 1 file(s)" in out) == (0, True), err
    app.sender.drain()
    assert sink.messages == []
    [*_, note] = last_comments(capsysbinary, config)
    assert note["public"] is False
    assert [(a["filename"], a["content_type"]) for a in note["attachments"]] == [
        ("trace.txt", "text/plain")]


def test_a_missing_unreadable_or_oversize_file_is_refused_with_nothing_recorded(
        make_app: Callable[..., App], tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """A file that is missing, a folder, or over attachments.max_size is refused in one
    line (exit 1) beside a good one, and nothing is recorded; a file ID that is no number
    is an argument mistake (exit 2)."""
    app = make_app(attachments={"max_size": 1000})
    accept(app, mail(message_id="<refused@customer.org>"))
    config = tmp_path / "mailcase.toml"
    good, big = tmp_path / "good.txt", tmp_path / "big.bin"
    good.write_bytes(b"fine")
    big.write_bytes(b"x" * 1001)
    before = counts(app)
    for command in ("reply", "note"):
        for bad, wanted in ((tmp_path / "missing.txt", "cannot read"),
                            (tmp_path, "cannot read"),
                            (big, "over the limit for a file (attachments.max_size = 1000)")):
            code, out, err = run(capsysbinary, config, "cases", command, "1000", "--body",
                                 "See attached.", "--attach", good, "--attach", bad)
            assert (code, out) == (1, b""), err
            assert wanted in assert_one_line_error(code, err)
    assert counts(app) == before
    code, _, err = run(capsysbinary, config, "cases", "attachment", "1000", "first")
    assert code == 2
    assert "'first' is not a whole number" in assert_one_line_error(code, err)


def test_the_desk_takes_files_from_any_door(app: App) -> None:
    """Desk.reply, which the API will call too, keeps only a file name's last part and
    guesses its type; a content type that is no type is refused before anything is
    recorded."""
    accept(app, mail(message_id="<desk@customer.org>"))
    desk = app.desk()
    author = desk.author("eve@example.com")
    desk.reply(1000, "Here.", author, files=[NewFile("../../notes/plan.pdf", None, b"%PDF")])
    with pytest.raises(BadValue, match="not a content type"):
        desk.reply(1000, "Again.", author,
                   files=[NewFile("a.txt", "text/plain\r\nBcc: x@evil.test", b"a")])
    with app.sessions() as session:
        [row] = session.scalars(select(Attachment)).all()
        replies = session.scalar(select(func.count()).select_from(Comment))
    assert (row.filename, row.content_type, row.size) == ("plan.pdf", "application/pdf", 4)
    assert replies == 1
