"""`mailcase import`: an mbox or a Maildir becomes cases and comments, is never answered,
keeps its dates, and a second run of the same archive adds nothing."""

from __future__ import annotations

import mailbox
import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Comment, InboundMail, OutboundMail
from tests.support.servers import mail

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def archive_mails(count: int) -> list[EmailMessage]:
    """``count`` mails: every fourth starts a thread, the others reply to the latest one."""
    mails: list[EmailMessage] = []
    thread = ""
    for number in range(count):
        message_id = f"<archive-{number}@customer.org>"
        if number % 4 == 0:
            message = mail(message_id=message_id, subject=f"Problem {number}",
                           sender=f"customer{number}@customer.org")
            thread = message_id
        else:
            message = mail(message_id=message_id, subject="Re: problem", In_Reply_To=thread,
                           References=thread, body=f"Reply {number}\n\n> quoted text\n")
        message["Date"] = format_datetime(START + timedelta(minutes=number))
        mails.append(message)
    return mails


def write_mbox(path: Path, count: int) -> Path:
    box = mailbox.mbox(path)
    for message in archive_mails(count):
        box.add(message)
    box.flush()
    box.close()
    return path


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_thousand_message_mbox_imported_twice_adds_nothing_the_second_time(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000 mails: 250 cases and 750 comments, no acknowledgement to anyone; the same
    import again finds them all already there."""
    archive = write_mbox(tmp_path / "archive.mbox", 1000)
    config = str(tmp_path / "mailcase.toml")
    capsys.readouterr()
    assert main(["-c", config, "import", str(archive)]) == 0
    first = capsys.readouterr().out
    assert first.strip().endswith(
        "1000 read, 1000 new, 0 already there, 250 new cases, 750 comments")
    assert (count(app, Case), count(app, Comment), count(app, OutboundMail)) == (250, 750, 0)

    assert main(["-c", config, "import", str(archive)]) == 0
    second = capsys.readouterr().out
    assert "1000 read, 0 new, 1000 already there, 0 new cases, 0 comments" in second
    assert (count(app, Case), count(app, Comment), count(app, InboundMail)) == (250, 750, 1000)


def test_maildir_import_keeps_the_dates_of_the_archive(app: App, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Cases and comments from an archive carry the time their mail was written."""
    folder = mailbox.Maildir(tmp_path / "Maildir")
    for message in archive_mails(2):
        folder.add(message)
    assert main(["-c", str(tmp_path / "mailcase.toml"), "import",
                 str(tmp_path / "Maildir")]) == 0
    assert "2 read, 2 new" in capsys.readouterr().out
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.created_at == START
        assert [c.created_at for c in case.comments] == [START + timedelta(minutes=1)]
        assert [c.body for c in case.comments] == ["Reply 1"]


@pytest.mark.parametrize("content", [b"just some text\n", None])
def test_not_an_archive_is_one_line(app: App, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str],
                                    content: bytes | None) -> None:
    """A file that is no mbox, or a folder that is no Maildir, is refused in one line."""
    target = tmp_path / "thing"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    capsys.readouterr()
    assert main(["-c", str(tmp_path / "mailcase.toml"), "import", str(target)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "is neither an mbox file" in err or "is a folder but not a Maildir" in err


def test_shuffled_archive_is_imported_oldest_first(app: App, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An mbox whose replies come before the mails they answer still threads: the import
    goes by each mail's Date, not by its place in the file."""
    mails = archive_mails(40)
    random.Random(7).shuffle(mails)
    box = mailbox.mbox(tmp_path / "shuffled.mbox")
    for message in mails:
        box.add(message)
    box.flush()
    box.close()
    assert main(["-c", str(tmp_path / "mailcase.toml"), "import",
                 str(tmp_path / "shuffled.mbox")]) == 0
    assert "10 new cases, 30 comments" in capsys.readouterr().out
    assert (count(app, Case), count(app, Comment)) == (10, 30)
