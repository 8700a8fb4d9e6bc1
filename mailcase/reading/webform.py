"""A Web-to-Case form as a mail: the source its inbound row is stored with, and the headers
that carry what a form has and a mail does not (the submitter's company and phone).

Anyone can write these headers into a mail, so they mean something only on a row whose
source is ``SOURCE``, which nothing but the Web-to-Case door stores; the pipeline checks
the source before it reads them (pipeline.stages).
"""

from __future__ import annotations

from mailcase.reading.headers import decode_words
from mailcase.reading.parsing import ParsedMail

SOURCE = "web"
ORIGIN = "Web"  # the origin of the cases its forms open, whatever their mailbox's
COMPANY = "X-Mailcase-Web-Company"
PHONE = "X-Mailcase-Web-Phone"


def supplied(mail: ParsedMail) -> tuple[str | None, str | None]:
    """The company and phone a form's submitter gave (None where the form had none)."""
    return _value(mail, COMPANY), _value(mail, PHONE)


def _value(mail: ParsedMail, name: str) -> str | None:
    return decode_words(mail.header(name) or "").strip() or None
