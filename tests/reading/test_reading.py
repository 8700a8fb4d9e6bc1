"""Reading what customers really send: mislabelled charsets, encoded words, inline images,
attached mails, Outlook's winmail.dat, size limits, and malformed or hostile structure."""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.reading import parsing, replytext
from mailcase.store.models import Attachment, Blob, Case, InboundMail
from tests.support.builders import raw_mail, winmail_dat
from tests.support.servers import mail


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param(raw_mail("你好 镕".encode("gbk"), b"text/plain; charset=gb2312"), "你好 镕",
                 id="gb2312-that-is-gbk"),
    pytest.param(raw_mail("こんにちは".encode("iso-2022-jp"), b"text/plain", cte=b"7bit"),
                 "こんにちは", id="iso-2022-jp-without-charset"),
    pytest.param(raw_mail("café €".encode("cp1252"), b"text/plain; charset=utf-8"), "café €",
                 id="windows-1252-labelled-utf-8"),
    pytest.param(raw_mail("café".encode("latin-1"), b"text/plain"), "café",
                 id="8-bit-without-charset"),
    pytest.param(raw_mail("naïve".encode(), b"text/plain; charset=x-no-such-charset"), "naïve",
                 id="unknown-charset"),
    pytest.param(raw_mail("안녕하세요".encode("cp949"), b"text/plain; charset=ks_c_5601-1987"),
                 "안녕하세요", id="outlook-korean-label"),
    pytest.param(raw_mail(base64.b64encode("Grüße".encode()), b"text/plain; charset=utf-8",
                          cte=b"base64"), "Grüße", id="base64-utf-8"),
])
def test_body_charset_fallback_chain(raw: bytes, expected: str) -> None:
    """The declared charset is used when it fits; otherwise the chain finds the text."""
    assert parsing.parse(raw).text == expected


def test_encoded_words_folded_across_lines_decode() -> None:
    """An RFC 2047 subject split into encoded words over folded lines decodes to one line."""
    raw = (b"From: =?utf-8?q?J=C3=BCrgen?=\r\n =?utf-8?q?_M=C3=BCller?= <j@kunde.de>\r\n"
           b"Subject: =?utf-8?b?RHJ1Y2tlciDDvGJlcmhpdHp0?=\r\n"
           b" =?iso-8859-1?q?_und_qualmt_=E4rgerlich?=\r\nTo: support@example.com\r\n\r\nx\r\n")
    parsed = parsing.parse(raw)
    assert parsed.subject == "Drucker überhitzt und qualmt ärgerlich"
    assert parsed.sender == parsing.Address("j@kunde.de", "Jürgen Müller")


def test_inline_image_attached_mail_and_winmail_dat() -> None:
    """An inline cid: image keeps its Content-ID, an attached mail is kept whole as .eml,
    and winmail.dat is unpacked into the files it carries."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@b.org", "support@example.com", "x"
    message.set_content("See the picture.")
    message.add_alternative('<p>See <img src="cid:pic1@b.org"></p>', subtype="html")
    html = message.get_payload()[1]
    html.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<pic1@b.org>")
    forwarded = mail(subject="The original complaint", message_id="<orig@x.org>")
    message.add_attachment(forwarded)
    message.add_attachment(winmail_dat({"invoice.pdf": b"%PDF-1.4 fake", "notes.txt": b"hi"}),
                           maintype="application", subtype="ms-tnef", filename="winmail.dat")
    parsed = parsing.parse(message.as_bytes())
    files = {a.filename: a for a in parsed.attachments}
    assert set(files) == {"attachment.png", "The original complaint.eml", "invoice.pdf",
                          "notes.txt"}
    assert files["attachment.png"].content_id == "pic1@b.org"
    assert files["attachment.png"].content == b"\x89PNG fake"
    assert files["The original complaint.eml"].content_type == "message/rfc822"
    assert b"Message-ID: <orig@x.org>" in files["The original complaint.eml"].content
    assert files["invoice.pdf"].content == b"%PDF-1.4 fake"
    assert parsed.text == "See the picture."


def test_broken_winmail_dat_is_kept_as_it_is() -> None:
    """A winmail.dat that cannot be unpacked is kept as a file, with a note."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@b.org", "support@example.com", "x"
    message.set_content("body")
    message.add_attachment(b"not tnef at all", maintype="application", subtype="ms-tnef",
                           filename="winmail.dat")
    parsed = parsing.parse(message.as_bytes())
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert parsed.notes and "winmail.dat could not be unpacked" in parsed.notes[0]


def deep(levels: int) -> bytes:
    """A mail nested ``levels`` multiparts deep, with text at the bottom."""
    head = b"From: a@b.org\r\nTo: support@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    inner = b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in range(levels):
        boundary = f"b{level}".encode()
        inner = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--"
                 + boundary + b"\r\n" + inner + b"--" + boundary + b"--\r\n")
    return head + inner


@pytest.mark.parametrize("raw", [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00\xff\xfe garbage \x80\x81", id="garbage"),
    pytest.param(b"no headers at all, just text\r\n", id="no-headers"),
    pytest.param(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nhalf a part",
                 id="unterminated-multipart"),
    pytest.param(b"Content-Type: multipart/mixed\r\n\r\nno boundary given\r\n",
                 id="multipart-without-boundary"),
    pytest.param(b"X-Huge: " + b"a" * 2_000_000 + b"\r\nSubject: big\r\n\r\nbody\r\n",
                 id="two-megabyte-header"),
    pytest.param(b"".join(b"X-Many-%d: v\r\n" % n for n in range(20_000)) + b"\r\nbody",
                 id="twenty-thousand-headers"),
    pytest.param(deep(2000), id="nested-2000-deep"),
    pytest.param(raw_mail(b"=?=?==", b"text/plain; charset=utf-8", cte=b"quoted-printable"),
                 id="bad-quoted-printable"),
    pytest.param(raw_mail(b"@@@ not base64 $$$", b"application/pdf; name=x.pdf",
                          cte=b"base64"), id="bad-base64-attachment"),
])
def test_hostile_structure_never_crashes_the_parser(raw: bytes) -> None:
    """Malformed MIME, huge header blocks and deep nesting parse to something, never raise."""
    parsed = parsing.parse(raw)
    assert isinstance(parsed.text, str)


def test_deep_nesting_is_noted(app: App) -> None:
    """Nesting past the walk's limit becomes a case with a note saying what was not read."""
    inbound = app.intake.accept(deep(200), mail_from="a@b.org", rcpt_to=["support@example.com"],
                                source="test").id
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound)
        assert row is not None and row.status == "processed"
        assert row.outcome and "MIME nesting deeper than" in row.outcome


def test_attachments_stored_once_and_size_limited(make_app: Callable[..., App]) -> None:
    """The same file in two mails is stored once; a file over attachments.max_size is listed
    but not stored apart (the raw mail keeps it)."""
    app = make_app(attachments={"max_size": 1000},
                   mailbox={"address": "support@example.com", "auto_response_interval": 0})
    for number, extra in enumerate((b"", b"x" * 2000)):
        message = mail(message_id=f"<att{number}@customer.org>", subject=f"files {number}")
        message.add_attachment(b"same log", maintype="text", subtype="plain",
                               filename="log.txt")
        if extra:
            message.add_attachment(extra, maintype="application", subtype="octet-stream",
                                   filename="big.bin")
        app.intake.accept(message.as_bytes(), mail_from="ann@customer.org",
                          rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        rows = session.scalars(select(Attachment).order_by(Attachment.id)).all()
        assert [(a.filename, a.blob_sha256 is not None) for a in rows] == [
            ("log.txt", True), ("log.txt", True), ("big.bin", False)]
        assert len(session.scalars(select(Blob.sha256)).all()) == 1
        assert session.scalar(select(InboundMail.outcome).where(
            InboundMail.message_id == "<att1@customer.org>")) == (
            "big.bin (2000 bytes) is over attachments.max_size; kept in the raw mail only")
        assert len(session.scalars(select(Case)).all()) == 2


def test_hostile_filenames_are_made_safe(app: App) -> None:
    """Paths, control characters and reserved characters never reach a stored filename."""
    message = mail(message_id="<names@customer.org>")
    for name in ("../../etc/passwd", "C:\\Windows\\evil.exe", "bell\x07.txt", "a<b>|c.txt",
                 "invoice\u202efdp.exe", "zero\u200bwidth.txt"):
        message.add_attachment(b"x", maintype="application", subtype="octet-stream",
                               filename=name)
    app.intake.accept(message.as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        names = session.scalars(select(Attachment.filename).order_by(Attachment.id)).all()
    assert names == ["passwd", "evil.exe", "bell.txt", "a_b_c.txt", "invoicefdp.exe",
                     "zerowidth.txt"]
    assert parsing.safe_filename("a\x85b\u200b.txt") == "ab.txt"


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param(raw_mail("It’s “broken” – 5€".encode("cp1252"),
                          b"text/plain; charset=iso-8859-1"), "It’s “broken” – 5€",
                 id="iso-8859-1-that-is-windows-1252"),
    pytest.param(raw_mail("Grüße".encode(), b"text/plain; charset=iso-8859-1"), "Grüße",
                 id="utf-8-labelled-latin-1"),
    pytest.param(raw_mail(b"\x1b$B\x2d\x21<j=g\x1b(B ok", b"text/plain; charset=iso-2022-jp",
                          cte=b"7bit"), "①手順 ok", id="iso-2022-jp-with-nec-symbols"),
    pytest.param(b"From: a@b.org\r\nContent-Type: multipart/mixed\r\n\r\nThe text itself.\r\n",
                 "The text itself.", id="multipart-without-boundary-keeps-its-text"),
])
def test_mislabelled_text_reads_right(raw: bytes, expected: str) -> None:
    """Labels that lie in practice still give the text that was meant."""
    assert parsing.parse(raw).text == expected


def test_header_words_use_the_charset_chain() -> None:
    """An encoded word labelled gb2312 but holding GBK decodes, in subject and name."""
    subject = "=?gb2312?B?" + base64.b64encode("朱镕基".encode("gbk")).decode() + "?="
    name = "=?gb2312?B?" + base64.b64encode("王镕".encode("gbk")).decode() + "?="
    raw = (f"From: {name} <wang@x.cn>\r\nSubject: {subject} bad =?x-none?q?=FF?=\r\n"
           "To: support@example.com\r\n\r\nhi\r\n").encode()
    parsed = parsing.parse(raw)
    assert parsed.subject.startswith("朱镕基 bad")
    assert parsed.sender == parsing.Address("wang@x.cn", "王镕")


@pytest.mark.parametrize(("html", "expected"), [
    pytest.param('<div>Fixed now.</div><div id="appendonsend"></div><hr>'
                 '<div id="divRplyFwdMsg"><b>From:</b> Support</div><div>old text</div>',
                 "Fixed now.", id="outlook-web"),
    pytest.param('<p class="MsoNormal">Fixed now.</p><div style="border:none;border-top:solid '
                 '#E1E1E1 1.0pt"><p><b>From:</b> Support</p></div><p>old text</p>',
                 "Fixed now.", id="outlook-desktop"),
    pytest.param('<div>Fixed now.</div><div><br><blockquote type="cite"><div>old text</div>'
                 '</blockquote></div>', "Fixed now.", id="apple-mail"),
    pytest.param('<p>Fixed now.</p><div class="moz-cite-prefix">On 23/11/2026, Support wrote:'
                 '<br></div><blockquote type="cite">old text</blockquote>', "Fixed now.",
                 id="thunderbird"),
    pytest.param('<div>Fixed now.</div><div class="yahoo_quoted">On Monday, Support wrote: '
                 '<div>old text</div></div>', "Fixed now.", id="yahoo"),
    pytest.param("<div>Fixed now.</div><div><br></div>-- <br><div>Ann Customer<br>"
                 "Customer Inc.</div>", "Fixed now.", id="signature-dash-dash-br"),
    pytest.param('<div dir="ltr">Fixed now.<br clear="all"><div><br></div>-- <br>'
                 '<div dir="ltr" class="gmail_signature">Ann Customer</div></div>',
                 "Fixed now.", id="gmail-signature"),
    pytest.param("<table><tr><th>Order</th><td>4711</td></tr></table>"
                 '<p>Log: <a href="https://x.example/log">here</a></p>',
                 "Order 4711\nLog: here <https://x.example/log>", id="table-and-link"),
])
def test_html_only_replies_are_cut_at_their_quote_markup(html: str, expected: str) -> None:
    """HTML-only replies from each client lose their quoted history, tables keep their
    cells apart, and links keep where they point."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@b.org", "support@example.com", "Re"
    message.set_content(html, subtype="html")
    assert replytext.comment_text(parsing.parse(message.as_bytes())) == expected
