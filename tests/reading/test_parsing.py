"""Parsing raw mail: encoded words, threading headers, HTML bodies, attachments and safe
filenames, lenience on broken mail; and cutting a reply down to its new text."""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from mailcase.reading import parsing, rawmail, replytext
from mailcase.reading.parsing import ParsedMail, safe_filename
from mailcase.store import models
from tests.support.paths import DATA


def raw_mail(*headers: str, body: str = "Hello.\r\n") -> bytes:
    """A mail from ``headers`` (one line each) and ``body``, with CRLF line ends."""
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


BASIC = (
    "From: Ann Customer <ann@customer.org>",
    "To: support@example.com",
    "Message-ID: <m3@customer.org>",
    "MIME-Version: 1.0",
)


# --- headers -----------------------------------------------------------------------------


def test_encoded_subject_and_display_name_are_decoded() -> None:
    """RFC 2047 encoded words in Subject and in the From display name become text."""
    subject = "Drucker brennt \u2013 Grüße"
    encoded = base64.b64encode(subject.encode()).decode()
    mail = parsing.parse(raw_mail(
        "From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <Andre@Customer.ORG>",
        "To: =?UTF-8?B?U3VwcG9ydCDinJM=?= <support@example.com>",
        f"Subject: =?UTF-8?B?{encoded}?=",
        "Message-ID: <enc@customer.org>",
    ))
    assert mail.subject == subject
    assert mail.sender is not None
    assert mail.sender.name == "André Müller"
    assert mail.sender.email == "andre@customer.org"
    assert mail.to[0].name == "Support ✓"


def test_q_encoded_subject_split_over_folded_words_is_joined() -> None:
    """A Q-encoded subject folded over two lines decodes to one line of text."""
    mail = parsing.parse(raw_mail(
        *BASIC,
        "Subject: =?UTF-8?Q?Caf=C3=A9_au?=\r\n =?UTF-8?Q?_lait_ist_kalt?=",
    ))
    assert mail.subject == "Café au lait ist kalt"


@pytest.mark.parametrize(
    "separator", [" ", ", ", ",", "\r\n ", ",\r\n\t"], ids=["space", "comma-space", "comma",
                                                          "folded", "comma-folded"],
)
def test_references_and_in_reply_to_split_on_spaces_and_commas(separator: str) -> None:
    """Message-IDs in References and In-Reply-To are found whether spaces or commas part them."""
    ids = ["<a@customer.org>", "<b@example.com>", "<c@customer.org>"]
    mail = parsing.parse(raw_mail(
        *BASIC, "Subject: Re: x",
        f"In-Reply-To: {separator.join(ids[1:])}",
        f"References: {separator.join(ids)}",
    ))
    assert mail.references == tuple(ids)
    assert mail.in_reply_to == tuple(ids[1:])


def test_thread_ids_put_in_reply_to_first_then_newest_reference_without_duplicates() -> None:
    """thread_ids lists In-Reply-To, then References newest first, each id once."""
    mail = parsing.parse(raw_mail(
        *BASIC, "Subject: Re: x",
        "In-Reply-To: <c@x>",
        "References: <a@x> <b@x> <c@x>",
    ))
    assert mail.thread_ids == ("<c@x>", "<b@x>", "<a@x>")


def test_message_id_is_read() -> None:
    """The Message-ID is kept with its angle brackets."""
    assert parsing.parse(raw_mail(*BASIC, "Subject: x")).message_id == "<m3@customer.org>"


def test_long_message_ids_are_cut_to_the_width_the_store_keeps() -> None:
    """Reading cuts an overlong Message-ID to exactly the store's column width: reading
    keeps its own limit (it imports no database code), and the two must not drift."""
    long_id = "<" + "x" * 1200 + "@customer.org>"
    [cut] = parsing.message_ids(long_id)
    assert len(cut) == parsing.MESSAGE_ID_MAX == models.MESSAGE_ID_MAX
    assert long_id.startswith(cut)


# --- bodies ------------------------------------------------------------------------------

HTML = """<html><head><title>Newsletter title</title>
<style>p { color: red; } .secret { display: none }</style>
<script type="text/javascript">alert("pwned"); var x = 1 < 2;</script></head>
<body><div>Hello <b>world</b> &amp; friends,</div>
<p>The printer&nbsp;is <i>on fire</i>.</p><ul><li>first</li><li>second</li></ul>
</body></html>"""


def test_html_only_mail_becomes_readable_text() -> None:
    """An HTML-only mail gives text without tags, script or style, entities decoded."""
    mail = parsing.parse(raw_mail(
        *BASIC, "Subject: html", "Content-Type: text/html; charset=utf-8", body=HTML,
    ))
    text = mail.text
    assert "Hello world & friends," in text
    assert "on fire" in text
    assert "first" in text
    assert "second" in text
    for leftover in ("<", ">", "color", "alert", "pwned", "var x", "Newsletter title", "&amp;"):
        assert leftover not in text, f"{leftover!r} leaked into {text!r}"
    assert "first\n" in text  # list items are on lines of their own


def test_plain_part_is_preferred_over_html() -> None:
    """In multipart/alternative the text/plain part is the body."""
    body = (
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain words.\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML words</p>\r\n"
        "--alt--\r\n"
    )
    mail = parsing.parse(raw_mail(
        *BASIC, "Subject: alt", 'Content-Type: multipart/alternative; boundary="alt"', body=body,
    ))
    assert mail.text == "Plain words."


def test_latin1_body_is_decoded() -> None:
    """A quoted-printable ISO-8859-1 body decodes to the right characters."""
    raw = raw_mail(
        *BASIC, "Subject: x", "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: quoted-printable", body="Gr=FC=DFe aus K=F6ln\r\n",
    )
    assert parsing.parse(raw).text == "Grüße aus Köln"


# --- attachments -------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def _mixed(*parts: str) -> bytes:
    body = "".join(f"--mix\r\n{part}\r\n" for part in parts) + "--mix--\r\n"
    return raw_mail(*BASIC, "Subject: files", 'Content-Type: multipart/mixed; boundary="mix"',
                    body=body)


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


def test_attachment_bytes_are_kept_intact() -> None:
    """A base64 binary attachment comes out byte for byte, with its name and type."""
    mail = parsing.parse(_mixed(
        "Content-Type: text/plain; charset=utf-8\r\n\r\nSee the attached report.",
        "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
        "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + _b64_lines(PDF),
    ))
    assert len(mail.attachments) == 1
    [attachment] = mail.attachments
    assert attachment.filename == "report.pdf"
    assert attachment.content_type == "application/pdf"
    assert hashlib.sha256(attachment.content).hexdigest() == hashlib.sha256(PDF).hexdigest()
    assert "See the attached report." in mail.text


def test_attachment_with_a_path_in_its_name_loses_the_folders() -> None:
    """An attachment named ``../../etc/passwd`` is stored as ``passwd``."""
    mail = parsing.parse(_mixed(
        "Content-Type: text/plain\r\n\r\nhi",
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + _b64_lines(b"root:x:0:0\n"),
    ))
    [attachment] = mail.attachments
    assert attachment.filename == "passwd"
    assert attachment.content == b"root:x:0:0\n"


def test_attachment_with_an_encoded_unicode_name_keeps_it() -> None:
    """An RFC 2231 encoded unicode filename is decoded and kept."""
    mail = parsing.parse(_mixed(
        "Content-Type: text/plain\r\n\r\nhi",
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E2%82%AC.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + _b64_lines(PDF),
    ))
    [attachment] = mail.attachments
    assert attachment.filename == "Résumé €.pdf"
    assert attachment.content == PDF


# --- safe_filename -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\evil.exe", "evil.exe"),
        ("C:\\Users\\ann\\report.pdf", "report.pdf"),
        ("report.pdf", "report.pdf"),
    ],
)
def test_safe_filename_strips_folders(name: str, expected: str) -> None:
    """Only the last path component of a filename survives, on either slash."""
    assert safe_filename(name) == expected


def test_safe_filename_removes_control_and_reserved_characters() -> None:
    """Control characters and characters reserved on common filesystems are removed."""
    reserved = '<>:"|?*'
    name = "a\x00b\x07c\x1bd\x7fe" + "".join(f"{ch}{i}" for i, ch in enumerate(reserved)) + ".txt"
    result = safe_filename(name)
    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in result), repr(result)
    assert not any(ch in reserved for ch in result), repr(result)
    assert result.endswith(".txt")
    kept = [ch for ch in result if ch.isalnum()]
    assert kept == list("abcde0123456txt")


@pytest.mark.parametrize(
    "name",
    ["Résumé.pdf", "履歴書.docx", "Отчёт за март.xlsx", "naïve café \u2013 ½.txt", "📎 notes.md"],
)
def test_safe_filename_keeps_unicode_names(name: str) -> None:
    """Unicode filenames are kept as they are (in NFC)."""
    assert safe_filename(name) == name
    decomposed = unicodedata.normalize("NFD", name)
    assert safe_filename(decomposed) == name


@pytest.mark.parametrize("stem", ["a" * 300, "é" * 300, "x" * 1000])
def test_safe_filename_caps_length_and_keeps_the_extension(stem: str) -> None:
    """A long filename is cut to 255 bytes in UTF-8 (what a Linux filesystem takes for
    one name) and keeps its extension."""
    result = safe_filename(stem + ".pdf")
    assert len(result.encode()) <= 255
    assert result.endswith(".pdf")
    assert result[:-4] == stem[: len(result) - 4]


@pytest.mark.parametrize("name", [None, "", "   ", ".", "..", "...", "../", "/", "\\", " . "])
def test_safe_filename_falls_back_for_empty_names(name: str | None) -> None:
    """A name that is empty after cleaning becomes ``attachment``."""
    assert safe_filename(name) == "attachment"


# --- malformed mail never raises -----------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "garbage-bytes": bytes(range(256)) * 4,
    "nul-and-high-bytes": b"\x00\xff\xfe\xfd\r\n\r\n\x80\x81",
    "no-headers": b"\r\njust a body, no headers at all\r\n",
    "headers-only": b"Subject: nothing else",
    "missing-from-and-to": b"Subject: hi\r\n\r\nbody\r\n",
    "broken-boundary": (
        b"From: a@b.example\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"declared\"\r\n\r\n"
        b"--other\r\nContent-Type: text/plain\r\n\r\nhello\r\n--other\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQK!!!not base64\r\n"
    ),
    "boundary-missing": (
        b"From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed\r\n\r\nbody\r\n"
    ),
    "unterminated-multipart": (
        b"From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nunterminated"
    ),
    "bad-base64-attachment": (
        b"From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=x.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n@@@@ not base64 $$$$\r\n--b--\r\n"
    ),
    "truncated-base64-attachment": (
        b"From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=cut.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PDF)[:401]
    ),
    "unknown-charset": (
        b"From: a@b.example\r\nSubject: =?x-no-such-charset?Q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\ncaf\xe9\r\n"
    ),
    "broken-encoded-word": (
        b"From: =?utf-8?B?!!!?= <a@b.example>\r\nSubject: =?utf-8?B?####?=\r\n\r\nbody\r\n"
    ),
    "bad-addresses": (
        b"From: <<<@@>>>\r\nTo: ,,,;;;\r\nCc: \"unterminated <x@y\r\nSubject: x\r\n\r\nb\r\n"
    ),
    "huge-header-line": b"Subject: " + b"x" * 100_000 + b"\r\n\r\nbody\r\n",
    "undecodable-8bit-body": (
        b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xff\xfe\xc3\x28 broken utf-8\r\n"
    ),
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_mail_never_raises(raw: bytes) -> None:
    """Broken or garbage input parses to a ParsedMail of well-typed fields, never an error."""
    mail = parsing.parse(raw)
    assert isinstance(mail, ParsedMail)
    assert isinstance(mail.subject, str)
    assert isinstance(mail.text, str)
    assert all(isinstance(a.content, bytes) for a in mail.attachments)
    assert all(a.filename and "/" not in a.filename for a in mail.attachments)


# --- the same parse as the standard library's, in less memory ----------------------------

REGRESSIONS = DATA / "regressions"
try:
    import test.test_email as cpython_email_tests
    CPYTHON_CORPUS = sorted((Path(cpython_email_tests.__file__).parent / "data").glob("msg_*"))
except ImportError:  # some Python builds ship without their test suite
    CPYTHON_CORPUS = []


def _shape(message: Message) -> list[object]:
    """Everything the parser decided about a message, part by part."""
    return [
        (part.items(), part.get_content_type(), part.preamble, part.epilogue,
         None if part.is_multipart() else part.get_payload(),
         [type(defect).__name__ for defect in part.defects])
        for part in message.walk()
    ]


SAMPLES = {**MALFORMED, **{p.name: p.read_bytes() for p in sorted(REGRESSIONS.glob("*.eml"))},
           **{p.name: p.read_bytes() for p in CPYTHON_CORPUS},
           "bare-lf-multipart": (
               b"From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
               b"Content-Type: text/plain\n\nhi\r\n--b\rContent-Type: text/html\n\n<p>x"
               + b"y" * 20_000 + b"\n--b--\nepilogue\n")}


@pytest.mark.parametrize("raw", list(SAMPLES.values()), ids=list(SAMPLES))
def test_read_message_parses_as_message_from_bytes(raw: bytes) -> None:
    """Feeding the parser in slices builds the same tree, headers, payloads and defects as
    email.message_from_bytes."""
    assert _shape(rawmail.read_message((raw,))) == _shape(message_from_bytes(raw, policy=compat32))


ENCODED = {
    "base64 CRLF lines": ("base64", base64.encodebytes(PDF * 3).replace(b"\n", b"\r\n")),
    "base64 with spaces": ("base64", b"JVBE Ri0x LjQK\r\n"),
    "base64 missing padding": ("base64", b"JVBERi0xLjQ\r\n"),
    "base64 data after padding": ("base64", b"QQ==\r\nQUJD\r\n"),
    "base64 one char too many": ("base64", b"QUJDR\r\n"),
    "base64 with 8-bit junk": ("base64", b"JVBE\xe9Ri0xLjQK\r\n"),
    "quoted-printable": ("quoted-printable", b"caf=E9 =\r\nsoft break, =3D sign\r\n"),
    "quoted-printable 8-bit": ("quoted-printable", b"caf\xe9=20\r\n"),
    "BASE64 upper case": ("BASE64", b"JVBERi0xLjQK\r\n"),
}


@pytest.mark.parametrize(("encoding", "body"), list(ENCODED.values()), ids=list(ENCODED))
def test_attachment_bytes_match_the_standard_library(encoding: str, body: bytes) -> None:
    """An attachment decodes to exactly what get_payload(decode=True) gives, for clean and
    broken base64 and quoted-printable alike."""
    raw = (b"From: a@b.example\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename=x.bin\r\n"
           b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + body)
    [attachment] = parsing.parse(raw).attachments
    assert attachment.content == message_from_bytes(raw, policy=compat32).get_payload(
        decode=True)


# --- replytext.new_text ---------------------------------------------------------------------


def test_new_text_drops_quoted_lines() -> None:
    """Lines quoted with ``>`` are cut, the writer's own lines kept."""
    body = "Thanks, that worked.\n> Did you try turning it off?\n>> Original question\nBye"
    assert replytext.new_text(body) == "Thanks, that worked.\nBye"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 2 Mar 2026 at 10:00, Support <support@example.com> wrote:",
        "On 2026-03-02, support@example.com wrote:",
        "-----Original Message-----",
    ],
)
def test_new_text_cuts_at_the_attribution_line(attribution: str) -> None:
    """The attribution line and everything after it (even unquoted) is cut."""
    body = f"Still burning.\n\n{attribution}\nWe are sorry to hear that.\n> older\nSupport"
    assert replytext.new_text(body) == "Still burning."


def test_dateless_attribution_needs_quoted_lines_after_it() -> None:
    """"on Monday, Support wrote:" is an attribution when quoted lines follow it; the same
    shape in the writer's own text ("On Monday I wrote:") is kept."""
    quoted = "Still burning.\n\non Monday, Support wrote:\n> We are sorry to hear that."
    assert replytext.new_text(quoted) == "Still burning."
    own = ("Sorry, a correction to my first mail.\nOn Monday I wrote:\n"
           "the serial is 4711. It is 4712.\nPlease update the case.")
    assert replytext.new_text(own) == own


def test_shipping_label_is_no_header_block() -> None:
    """"From: … / To: …" in the writer's text, with no Sent/Date line, cuts nothing."""
    body = ("The shipment is still wrong. The label says\nFrom: Berlin warehouse\n"
            "To: Munich office\nPlease fix before Friday.")
    assert replytext.new_text(body) == body


def test_inline_answers_keep_the_answers_and_drop_the_quoted_lines() -> None:
    """Answers written between quoted lines are the reply: the attribution and the quoted
    lines go, the answers stay in order."""
    body = ("Hi Bob, answers inline.\n\nOn Mon, 23 Nov 2026 at 10:00, Bob <b@x.org> wrote:\n"
            "> Which firmware?\n4.2.1\n> Did it restart?\nYes, twice.\n\n-- \nAnn")
    assert replytext.new_text(body) == "Hi Bob, answers inline.\n\n4.2.1\nYes, twice."


def test_bottom_post_keeps_the_text_under_the_quote() -> None:
    """A group reply with the answer below the quote (mutt, Thunderbird bottom posting)
    keeps only the answer."""
    body = ("On Mon, Nov 23, 2026 at 10:00:00AM +0100, Support wrote:\n"
            "> Which firmware do you run?\n> Please check the label.\n\n"
            "It is 4.2.1, the label says so.\n\n-- \nAnn")
    assert replytext.new_text(body) == "It is 4.2.1, the label says so."


def test_a_wrapped_quoted_line_stays_quote() -> None:
    """A long quoted line that the client wrapped (its end unquoted between quoted lines)
    is quote, not an answer."""
    body = ("Thanks, that helps.\n\nOn Mon, 23 Nov 2026, Support <s@x.org> wrote:\n"
            "> Please update to the firmware on https://downloads.example.com/printers/\n"
            "fw-4.2.1.bin\n> and restart.")
    assert replytext.new_text(body) == "Thanks, that helps."


def test_a_writers_python_prompt_is_kept_in_a_mail_without_quotes() -> None:
    """``>>> `` lines in a mail that quotes nothing are the writer's Python session."""
    body = "This fails:\n>>> import mailcase\n>>> mailcase.main()\nTraceback: E42"
    assert replytext.new_text(body) == body


def test_forwarded_mail_is_kept_whole() -> None:
    """A forward keeps the forwarded mail: it is what the writer brings to the case."""
    body = ("Here is what our branch office sees.\n\n---------- Forwarded message ---------\n"
            "From: Branch <branch@customer.org>\nDate: Mon, 23 Nov 2026 at 09:00\n"
            "Subject: Error\nTo: Ann <ann@customer.org>\n\nError E42 on serial 9000.")
    assert replytext.new_text(body) == body


def test_new_text_cuts_the_signature() -> None:
    """A ``-- `` signature separator and the signature after it are cut."""
    body = "It works now.\n\n-- \nAnn Customer\nCustomer Inc.\n"
    assert replytext.new_text(body) == "It works now."


def test_new_text_keeps_a_double_dash_that_is_not_a_signature() -> None:
    """A ``--`` line without the trailing space, in the middle of the text with more than a
    signature's few lines under it, is text."""
    body = "Before\n--\n" + "\n".join(f"Step {n} of the fix." for n in range(1, 8))
    assert replytext.new_text(body) == body


def test_a_bare_double_dash_above_a_short_block_is_a_signature() -> None:
    """Clients that strip trailing spaces send ``--``: above a few short lines at the
    end, after a blank line, it is the signature separator."""
    body = "It works now.\n\n--\nAnn Customer\nCustomer Inc."
    assert replytext.new_text(body) == "It works now."


@pytest.mark.parametrize(
    "body",
    [
        "> everything\n> is quoted",
        "On Mon, 2 Mar 2026, Support wrote:\n> everything quoted",
        "-- \nonly a signature",
    ],
)
def test_new_text_never_strips_to_nothing(body: str) -> None:
    """When cutting would leave nothing, the whole body is kept."""
    assert replytext.new_text(body) == body.strip()
