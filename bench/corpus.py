"""A reproducible benchmark corpus: the mix of mail a support address really gets.

Deterministic from a seed: new mails from a pool of customers, replies threading into
earlier cases (In-Reply-To, References, the quoted original below the answer), HTML
alternatives, and one mail in fifty carrying a ~200 KB attachment. The same seed gives
the same bytes on every machine, so runs compare.
"""

from __future__ import annotations

import base64
import mailbox
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

REPLY_SHARE = 0.35
HTML_SHARE = 0.3
ATTACHMENT_EVERY = 50
ATTACHMENT_BYTES = 150_000  # ~200 KB once base64-encoded
# Enough senders that a burst is many people writing once or twice, as in an outage,
# not a few tripping the flood breaker.
CUSTOMERS = 5000
QUOTED = 12  # lines of the previous mail quoted below a reply
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

WORDS = (
    "printer", "invoice", "login", "password", "account", "order", "delivery", "refund",
    "screen", "error", "update", "server", "report", "backup", "network", "license",
    "install", "crash", "slow", "export", "please", "urgent", "again", "since",
    "yesterday", "morning", "customer", "team", "office", "laptop", "cannot", "open",
    "works", "fails", "shows", "message", "attached", "version", "settings",
)
SURNAMES = ("Meier", "Dubois", "Rossi", "Novak", "Silva", "Jansen", "Berg", "Kowalski")
GIVEN = ("Ann", "Bruno", "Chiara", "David", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jon")


@dataclass(frozen=True)
class Customer:
    name: str
    address: str


@dataclass
class Thread:
    """What a later reply needs of an earlier mail."""

    customer: Customer
    subject: str
    message_ids: list[str]
    last_body: str


class CorpusBuilder:
    """Builds the mails one by one from a seeded random source."""

    def __init__(self, seed: int, to: str) -> None:
        self.random = random.Random(seed)
        self.seed = seed
        self.to = to
        self.customers = [
            Customer(f"{self.random.choice(GIVEN)} {self.random.choice(SURNAMES)}",
                     f"user{n}@customer{n % 500}.example")
            for n in range(CUSTOMERS)
        ]
        self.threads: list[Thread] = []

    def mail(self, index: int) -> bytes:
        date = START + timedelta(seconds=37 * index)
        message_id = f"<bench-{self.seed}-{index}@mail.customer.example>"
        if self.threads and self.random.random() < REPLY_SHARE:
            thread = self.random.choice(self.threads[-200:])
            subject = "Re: " + thread.subject
            references = thread.message_ids[-5:]
            quoted = "\n".join("> " + line for line in thread.last_body.splitlines()[:QUOTED])
            attribution = f"On {format_datetime(date - timedelta(hours=3))}, support wrote:"
            body = self._text(3) + "\n\n" + attribution + "\n" + quoted
            customer = thread.customer
            thread.message_ids.append(message_id)
            thread.last_body = body
        else:
            customer = self.random.choice(self.customers)
            subject = " ".join(self.random.choices(WORDS, k=5)).capitalize()
            references = []
            body = self._text(6)
            self.threads.append(Thread(customer, subject, [message_id], body))
        headers = [
            f"From: {customer.name} <{customer.address}>",
            f"To: Support <{self.to}>",
            f"Subject: {subject}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: {message_id}",
            "MIME-Version: 1.0",
        ]
        if references:
            headers += [f"In-Reply-To: {references[-1]}",
                        "References: " + " ".join(references)]
        return self._assemble(index, headers, body)

    def _assemble(self, index: int, headers: list[str], body: str) -> bytes:
        text = _part("text/plain; charset=utf-8", body)
        content = text
        if self.random.random() < HTML_SHARE:
            html = "<html><body>" + "".join(f"<p>{line}</p>" for line in body.splitlines()) + \
                "</body></html>"
            content = _multipart("alternative", f"alt{index}",
                                 [text, _part("text/html; charset=utf-8", html)])
        if index % ATTACHMENT_EVERY == ATTACHMENT_EVERY - 1:
            data = base64.encodebytes(self.random.randbytes(ATTACHMENT_BYTES)).decode()
            attachment = (
                "Content-Type: application/octet-stream\n"
                f'Content-Disposition: attachment; filename="report-{index}.bin"\n'
                "Content-Transfer-Encoding: base64\n\n" + data
            )
            content = _multipart("mixed", f"mix{index}", [content, attachment])
        return ("\n".join(headers) + "\n" + content).replace("\n", "\r\n").encode()

    def _text(self, sentences: int) -> str:
        lines = []
        for _ in range(sentences):
            words = self.random.choices(WORDS, k=self.random.randint(6, 14))
            lines.append(" ".join(words).capitalize() + ".")
        return "Hello,\n\n" + "\n".join(lines) + "\n\nThanks"


def _part(content_type: str, body: str) -> str:
    return f"Content-Type: {content_type}\nContent-Transfer-Encoding: 8bit\n\n{body}\n"


def _multipart(subtype: str, boundary: str, parts: list[str]) -> str:
    inner = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n{inner}--{boundary}--\n'


def generate(count: int, seed: int = 1, to: str = "support@example.com") -> list[bytes]:
    """``count`` mails, in the order they are sent: the same bytes for the same seed."""
    builder = CorpusBuilder(seed, to)
    return [builder.mail(index) for index in range(count)]


def write_mbox(path: Path, mails: list[bytes]) -> None:
    """The corpus as an mbox file (for the import benchmark)."""
    box = mailbox.mbox(str(path), create=True)
    box.lock()
    try:
        for raw in mails:
            box.add(raw)
        box.flush()
    finally:
        box.unlock()
        box.close()
