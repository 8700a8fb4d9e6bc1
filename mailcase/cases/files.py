"""A case's files: stored once per distinct content (SHA-256) up to attachments.max_size,
listed on the case and its comment, and read back out a slice at a time.

Every file that reaches a case is stored here, whether it came attached to a mail (the
pipeline) or an agent added it to a reply or note (the desk, for the CLI and the API);
and every door that hands a file or a raw mail back out reads it through here.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.cases.errors import BadValue, CaseError, NotFound
from mailcase.reading.parsing import safe_filename
from mailcase.store.db import blob_slices, insert_unless_present, raw_slices
from mailcase.store.models import Attachment, Blob, Case, InboundMail, Message

# type/subtype as RFC 2045 spells a token: the value goes into a header of our mail.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")


class NewFile(NamedTuple):
    """A file an agent adds to a comment: its name as given (only its last part is
    kept, cleaned), its type (None: guessed from the name) and its bytes."""

    filename: str
    content_type: str | None
    content: bytes


@dataclass(frozen=True)
class StoredFile:
    """A file on its way out: its name, type and size, and its bytes a slice at a time
    (readable while the session it was found in is open)."""

    filename: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


def refuse_size(name: str, size: int, limit: int) -> None:
    """Refuse a file an agent adds that is larger than attachments.max_size: a mail's
    file is kept in its raw bytes, a file an agent adds would be kept nowhere."""
    if size > limit:
        raise CaseError(f"{name} is {size} bytes, over the limit for a file "
                        f"(attachments.max_size = {limit}); nothing was recorded")


def prepared(file: NewFile, limit: int) -> NewFile:
    """``file`` as it is stored: the name cleaned (no folders, no control characters),
    its type given or guessed from that name, its size within ``limit``."""
    name = safe_filename(file.filename)
    refuse_size(name, len(file.content), limit)
    content_type = (file.content_type or "").strip().lower()
    if not content_type:
        content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    elif not _CONTENT_TYPE.fullmatch(content_type):
        raise BadValue(f"{file.content_type!r} is not a content type (like text/plain)")
    return NewFile(name, content_type, file.content)


def store(session: Session, case: Case, *, filename: str, content_type: str, content: bytes,
          limit: int, message_id: int | None = None, comment_id: int | None = None,
          content_id: str | None = None) -> Attachment:
    """List a file on ``case`` (and on its comment, if any); its content is stored once
    per distinct SHA-256 when it is at most ``limit`` bytes, else only listed (the caller
    says where it is kept: a mail's file stays in its raw bytes)."""
    digest: str | None = None
    if len(content) <= limit:
        digest = hashlib.sha256(content).hexdigest()
        if session.scalar(select(Blob.sha256).where(Blob.sha256 == digest)) is None:
            # Two instances storing the same file at once: one row, neither fails.
            insert_unless_present(session, Blob, {"sha256": digest, "size": len(content),
                                                  "content": content}, ["sha256"])
    attachment = Attachment(
        case_id=case.id, message_id=message_id, comment_id=comment_id, filename=filename,
        content_type=content_type, content_id=content_id, size=len(content),
        blob_sha256=digest)
    session.add(attachment)
    return attachment


def case_file(session: Session, case: Case, attachment_id: int) -> StoredFile:
    """Attachment ``attachment_id`` of ``case`` (as ``cases show --json`` lists it), its
    content read from the store a slice at a time. A file of another case is no file of
    this one; a file over attachments.max_size when it came is kept only in its mail."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.case_id != case.id:
        raise NotFound(f"no such attachment {attachment_id} on case {case.display_number}")
    if attachment.blob_sha256 is None:
        raise CaseError(_unstored(session, attachment))
    size = session.scalar(select(Blob.size).where(Blob.sha256 == attachment.blob_sha256))
    assert size is not None  # a foreign key keeps the blob while an attachment names it
    return StoredFile(safe_filename(attachment.filename), attachment.content_type, size,
                      blob_slices(session, attachment.blob_sha256, size))


def _unstored(session: Session, attachment: Attachment) -> str:
    what = (f"attachment {attachment.id} ({attachment.filename}, {attachment.size} bytes) "
            "was over attachments.max_size when it came, so only its mail keeps it")
    inbound = session.scalar(select(Message.inbound_id).where(
        Message.id == attachment.message_id)) if attachment.message_id else None
    if inbound is None:
        return what
    return (f"{what}: 'mailcase inbound raw {inbound} -o FILE.eml' writes that mail, "
            "with the file in it")


def raw_mail(session: Session, inbound_id: int) -> StoredFile:
    """The bytes of accepted mail ``inbound_id`` exactly as stored, a slice at a time."""
    size = session.scalar(select(InboundMail.size).where(InboundMail.id == inbound_id))
    if size is None:
        raise NotFound(f"there is no inbound mail {inbound_id}")
    return StoredFile(f"inbound-{inbound_id}.eml", "message/rfc822", size,
                      raw_slices(session, inbound_id, size))
