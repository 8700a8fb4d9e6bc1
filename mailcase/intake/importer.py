"""Bulk import of an archive (an mbox file or a Maildir) through the ordinary intake.

Mail is accepted in batches (one transaction each), then processed like any other
mail, except that imported mail is never answered and keeps the date it was written.
The intake's idempotency key makes a second run of the same archive add nothing.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.intake.accept import Intake
from mailcase.store.models import InboundMail

BATCH = 500
BATCH_BYTES = 32 * 1024 * 1024  # a batch of large mails is closed early to bound memory
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Progress = Callable[[str, int, int], None]  # phase, done, total
# Processes every pending mail, calling its argument with the count done so far; handed
# in (the pipeline's drain) because intake comes before processing and never imports it.
Process = Callable[[Callable[[int], None]], object]


class ArchiveError(Exception):
    """The path is not an archive mailcase can read."""


@dataclass
class Summary:
    """What an import did, for the line it prints at the end."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    too_large: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    new_cases: int = 0
    comments: int = 0

    def line(self) -> str:
        parts = [f"{self.read} read", f"{self.stored} new", f"{self.duplicates} already there"]
        if self.too_large:
            parts.append(f"{self.too_large} over smtp.max_message_size (not imported)")
        parts += [f"{self.new_cases} new cases", f"{self.comments} comments"]
        parts += [f"{n} {status}" for status, n in sorted(self.outcomes.items())
                  if status != "processed"]
        return ", ".join(parts)


def open_archive(path: Path) -> tuple[int, Iterator[tuple[bytes, str | None]]]:
    """The number of mails in ``path`` and an iterator of (raw bytes, envelope sender),
    oldest first, so that every reply comes after the mail it answers."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise ArchiveError(f"{path} is a folder but not a Maildir (no cur/new/tmp)")
        maildir = mailbox.Maildir(path, factory=None, create=False)
        keys = _oldest_first(maildir)
        return len(keys), ((maildir.get_bytes(k), None) for k in keys)
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror}") from None
    if not first.startswith(b"From "):
        raise ArchiveError(f"{path} is neither an mbox file (no 'From ' line) nor a Maildir")
    box = mailbox.mbox(path, factory=None, create=False)
    keys = _oldest_first(box)
    return len(keys), ((box.get_bytes(k, from_=False), _envelope(box, k)) for k in keys)


def _oldest_first(box: mailbox.Mailbox[Any]) -> list[str]:
    """Keys sorted by each mail's Date (its headers only are read); undated mail keeps its
    place in the archive's own order, after the dated mail before it."""
    dated = []
    for position, key in enumerate(box.keys()):
        with box.get_file(key) as handle:
            head = _header_block(handle)
        when = _date(BytesHeaderParser(policy=compat32).parsebytes(head).get("date"))
        dated.append((when, position, key))
    last = EPOCH
    ordered = []
    for when, position, key in dated:  # an undated mail sorts just after its predecessor
        last = when or last
        ordered.append((last, position, key))
    return [key for _, _, key in sorted(ordered)]


def _header_block(handle: Any) -> bytes:
    """The lines of a mail up to its first blank line, read without reading the body."""
    lines = []
    while (line := handle.readline()) and line not in (b"\n", b"\r\n"):
        lines.append(line)
    return b"".join(lines)


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _envelope(box: mailbox.mbox, key: str) -> str | None:
    """The sender on the mbox 'From ' line, or None where it says nothing useful."""
    with box.get_file(key, from_=True) as handle:
        line = handle.readline().decode("utf-8", "replace")
    sender = line.removeprefix("From ").split(" ", 1)[0].strip()
    return None if sender in ("", "MAILER-DAEMON") or "@" not in sender else sender


def run(
    intake: Intake,
    readers: sessionmaker[Session],
    process: Process,
    path: Path,
    progress: Progress,
) -> Summary:
    """Import every mail of the archive at ``path`` through ``intake`` and ``process`` it."""
    total, mails = open_archive(path)
    summary = Summary()
    imported: list[int] = []
    batch: list[tuple[bytes, str | None]] = []
    batch_bytes = 0
    limit = intake.max_size
    for raw, sender in mails:
        summary.read += 1
        if len(raw) > limit:
            summary.too_large += 1
        else:
            batch.append((raw, sender))
            batch_bytes += len(raw)
        if len(batch) >= BATCH or batch_bytes >= BATCH_BYTES:
            imported += _store(intake, batch, summary)
            progress("storing", summary.read, total)
            batch, batch_bytes = [], 0
    imported += _store(intake, batch, summary)
    progress("storing", total, total)
    with readers() as session:
        pending = session.scalar(select(func.count()).select_from(InboundMail)
                                 .where(InboundMail.status == "pending")) or 0
    process(lambda done: progress("processing", done, pending))
    progress("processing", pending, pending)
    _count(readers, imported, summary)
    return summary


def _store(intake: Intake, batch: list[tuple[bytes, str | None]], summary: Summary) -> list[int]:
    if not batch:
        return []
    stored, duplicates = intake.accept_many(batch, source="import")
    summary.stored += len(stored)
    summary.duplicates += duplicates
    return stored


def _count(readers: sessionmaker[Session], ids: list[int], summary: Summary) -> None:
    with readers() as session:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows = session.execute(
                select(InboundMail.status, InboundMail.opened_case, func.count())
                .where(InboundMail.id.in_(chunk))
                .group_by(InboundMail.status, InboundMail.opened_case)
            ).all()
            for status, opened, count in rows:
                summary.outcomes[status] = summary.outcomes.get(status, 0) + count
                if status == "processed":
                    if opened:
                        summary.new_cases += count
                    else:
                        summary.comments += count

