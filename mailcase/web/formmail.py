"""A Web-to-Case form read and checked, and written as the mail it stands for.

A form becomes an RFC 5322 message — From the name and address given, the subject, the
description as text/plain, the files as attachments with safe names, a Message-ID and
a Date — so it is stored and processed exactly as mail is. The company and phone ride
in headers that count only on rows the Web-to-Case door stored (reading.webform).
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr
from typing import BinaryIO

from starlette.datastructures import FormData, UploadFile

from mailcase.config import MailboxSettings
from mailcase.config.webform import WebToCaseSettings
from mailcase.identity.addresses import OwnAddresses
from mailcase.outbound import mimebuild
from mailcase.reading import webform
from mailcase.reading.commands import single_address
from mailcase.reading.parsing import safe_filename
from mailcase.web.guard import Refused, return_url

# The longest value of each one-line field (after Salesforce's Case fields; the subject
# as the case keeps it). The description is bounded by web_to_case.max_size alone.
LONGEST = {"email": 254, "name": 80, "company": 80, "phone": 40, "subject": 255}
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


@dataclass(frozen=True)
class Attached:
    """A file of the form: its safe name, its type, and where its bytes wait."""

    filename: str
    content_type: str
    file: BinaryIO


@dataclass(frozen=True)
class Submission:
    """A form that passed every check: what the case is opened with."""

    email: str
    name: str
    company: str
    phone: str
    subject: str
    description: str
    return_url: str | None
    files: tuple[Attached, ...]


def submission(form: FormData, settings: WebToCaseSettings, own: OwnAddresses) -> Submission:
    """The form's fields checked; Refused (400 a filled honeypot, 422 a missing or bad
    value, too many files) otherwise."""
    if settings.honeypot and _text(form, settings.honeypot).strip():
        raise Refused(400, "This form was refused: a field meant to stay empty was filled "
                           "in, as robots do.")
    fields = {name: _line(_text(form, name)) for name in LONGEST}
    for name, longest in LONGEST.items():
        if len(fields[name]) > longest:
            raise Refused(422, f"{name}: at most {longest} characters, please.")
    email = single_address(fields["email"]) if fields["email"] else None
    if email is None:
        raise Refused(422, "email: please give your email address, like ann@example.com "
                           "(one address).")
    if own.owns(email):
        raise Refused(422, "email: please give your own address, not this help desk's.")
    if not fields["subject"]:
        raise Refused(422, "subject: please say in a few words what it is about.")
    files = _files(form)
    if len(files) > settings.max_files:
        raise Refused(422, f"At most {settings.max_files} files, please.")
    return Submission(
        email=email, name=fields["name"], company=fields["company"], phone=fields["phone"],
        subject=fields["subject"], description=_paragraphs(_text(form, "description")),
        return_url=return_url(_text(form, "retURL").strip(), settings.redirect_hosts),
        files=files)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _line(value: str) -> str:
    """One line of text: whitespace runs (line ends too) as one space, no control or
    format characters (a header must not be split, nor a name disguised)."""
    value = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf")
                    or c.isspace())
    return " ".join(value.split())


def _paragraphs(value: str) -> str:
    """The description with LF line ends and no control characters but tabs."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc").strip()


def _files(form: FormData) -> tuple[Attached, ...]:
    """Every file of the form, whatever its field's name; an empty file input (no name,
    no bytes) is none."""
    found = []
    for _name, value in form.multi_items():
        if not isinstance(value, UploadFile):
            continue
        size = value.file.seek(0, 2)
        value.file.seek(0)
        if not value.filename and not size:
            continue
        filename = safe_filename(value.filename)
        found.append(Attached(filename, _content_type(value.content_type, filename),
                              value.file))
    return tuple(found)


def _content_type(given: str | None, filename: str) -> str:
    """The type the browser gave, if it is one; else the filename's; else octets."""
    kind = (given or "").partition(";")[0].strip().lower()
    if _CONTENT_TYPE.match(kind) and not kind.startswith(("multipart/", "message/")):
        return kind
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def message(form: Submission, mailbox: MailboxSettings, *, client: str,
            now: datetime) -> bytes:
    """The mail the form stands for, addressed to ``mailbox``; the files are read here
    (call it off the event loop)."""
    headers: list[tuple[str, str]] = [
        ("Received", f"from [{client}] by mailcase with HTTP (Web-to-Case); "
                     f"{format_datetime(now)}"),
        ("From", formataddr((form.name, form.email))),
        ("To", formataddr((mailbox.name, mailbox.address))),
        ("Subject", form.subject),
        ("Date", format_datetime(now)),
        ("Message-ID", f"<web.{secrets.token_hex(16)}@{mailbox.domain}>"),
    ]
    headers += [(name, value) for name, value in ((webform.COMPANY, form.company),
                                                  (webform.PHONE, form.phone)) if value]
    return mimebuild.build(headers, form.description + "\n", files=_contents(form.files))


def _contents(files: Sequence[Attached]) -> list[tuple[str, str, bytes]]:
    contents = []
    for attached in files:
        attached.file.seek(0)
        contents.append((attached.filename, attached.content_type, attached.file.read()))
    return contents
