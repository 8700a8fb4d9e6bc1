"""A large stored mail is read back a slice at a time (SQLite blob I/O, PostgreSQL
substring) and parses exactly as its whole bytes do, so processing a 25 MB mail never
holds those 25 MB twice."""

from __future__ import annotations

import os
import random
from email.message import EmailMessage

from sqlalchemy import select

from mailcase.app import App
from mailcase.reading import parsing
from mailcase.store.db import BLOB_SLICE, raw_slices
from mailcase.store.models import Attachment


def big_mail(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@customer.org>"
    message["To"] = "support@example.com"
    message["Subject"] = "The whole log"
    message["Message-ID"] = "<big-slices@customer.org>"
    message.set_content("The log is attached.")
    message.add_attachment(os.urandom(size), maintype="application",
                           subtype="octet-stream", filename="server.log")
    return message.as_bytes()


def test_slices_from_the_store_are_the_stored_bytes(app: App) -> None:
    """Every engine gives back exactly the bytes stored, in pieces of at most BLOB_SLICE."""
    raw = big_mail(3 * BLOB_SLICE)
    accepted = app.intake.accept(raw, mail_from="ann@customer.org",
                                 rcpt_to=["support@example.com"], source="test")
    with app.sessions() as session:
        pieces = list(raw_slices(session, accepted.id, len(raw)))
    assert len(pieces) > 1 and max(len(p) for p in pieces) <= BLOB_SLICE
    assert b"".join(pieces) == raw


def test_a_large_mail_is_processed_from_slices_with_its_attachment(app: App) -> None:
    """Processing reads the large mail in slices and stores its attachment whole."""
    raw = big_mail(2 * BLOB_SLICE)
    app.intake.accept(raw, mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    assert app.processor.drain()["processed"] == 1
    with app.sessions() as session:
        [attachment] = session.scalars(select(Attachment)).all()
    assert attachment.filename == "server.log" and attachment.size == 2 * BLOB_SLICE


def test_where_the_slices_are_cut_does_not_change_the_parse() -> None:
    """Slices cut at arbitrary points (inside lines, inside CRLF) parse like the whole."""
    raw = big_mail(50_000).replace(b"\n", b"\r\n")
    whole = parsing.parse(raw)
    cuts = sorted(random.Random(7).sample(range(1, len(raw)), 40))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    sliced = parsing.parse(lambda: iter(pieces))
    assert sliced == whole
