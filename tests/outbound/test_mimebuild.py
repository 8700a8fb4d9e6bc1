"""Outbound MIME as mailcase builds it: what a mail client reads back, within RFC 5322's
line limits."""

from __future__ import annotations

from email import message_from_bytes, policy

from mailcase.outbound import mimebuild


def test_outbound_mime_keeps_lines_short_and_long_filenames_whole() -> None:
    """A paragraph typed without line breaks and a long non-ASCII file name: every line
    on the wire stays within 78 octets (quoted-printable text, RFC 2231 continuation
    pieces), and a mail client reads back the same text and file name."""
    name = "Rapport trimestriel — données de facturation du deuxième trimestre (finale).pdf"
    text = "word " * 300 + "\n"
    raw = mimebuild.build([("From", "Support <s@example.com>"), ("Subject", "Ärger im Büro")],
                          text, "<p>" + "x" * 2000 + "</p>",
                          [(name, "application/pdf", b"%PDF-1.4"),
                           ("a b.txt", "text/plain", b"hi")])
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Ärger im Büro"
    assert parsed.get_body(("plain",)).get_content().rstrip() == text.rstrip()
    assert parsed.get_body(("html",)).get_content().strip() == "<p>" + "x" * 2000 + "</p>"
    assert [(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()] == [
        (name, b"%PDF-1.4"), ("a b.txt", "hi")]
