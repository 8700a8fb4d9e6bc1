"""The load generator: concurrent SMTP clients, each in a process of its own.

Each client sends its share of the corpus, a new connection per message or one
connection reused, and times each message from the end of its DATA (the final dot)
to the server's reply: the time a sender waits for the durable commit behind a 250.
An optional rate paces the clients (for latency at a given load); without it they
send as fast as the server answers.
"""

from __future__ import annotations

import multiprocessing
import re
import smtplib
import time
from dataclasses import dataclass, field

DOT = re.compile(rb"(?m)^\.")
SENDER = "bench@customer.example"


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    started: float = 0.0
    ended: float = 0.0


@dataclass(frozen=True)
class LoadResult:
    """What the clients saw: acknowledged mail, refusals, the span and the latencies."""

    sent: int
    refused: int
    seconds: float
    latencies: list[float]
    started: float  # time.monotonic() when the first client began

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _deliver(client: smtplib.SMTP, raw: bytes, recipient: str) -> tuple[int, float]:
    client.ehlo_or_helo_if_needed()
    code, _ = client.mail(SENDER)
    if code != 250:
        return code, 0.0
    code, _ = client.rcpt(recipient)
    if code not in (250, 251):
        client.rset()
        return code, 0.0
    code, _ = client.docmd("DATA")
    if code != 354:
        return code, 0.0
    body = DOT.sub(b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    client.send(body + b".\r\n")
    started = time.perf_counter()
    code, _ = client.getreply()
    return code, time.perf_counter() - started


def _client(port: int, mails: list[bytes], recipient: str, reuse: bool,
            interval: float | None, start_at: float) -> ClientResult:
    result = ClientResult()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    result.started = time.monotonic()
    connection: smtplib.SMTP | None = None
    next_send = result.started
    for raw in mails:
        if interval is not None:
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_send += interval
        if connection is None:
            connection = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                                      timeout=120)
        code, latency = _deliver(connection, raw, recipient)
        if code == 250:
            result.latencies.append(latency)
        else:
            result.refused += 1
        if not reuse:
            connection.quit()
            connection = None
    if connection is not None:
        connection.quit()
    result.ended = time.monotonic()
    return result


def run(port: int, mails: list[bytes], *, concurrency: int, reuse: bool,
        rate: float | None = None, recipient: str = "support@example.com") -> LoadResult:
    """Send ``mails`` from ``concurrency`` client processes; ``rate`` paces all of them
    together (messages per second), None sends as fast as answered."""
    shares = [mails[n::concurrency] for n in range(concurrency)]
    interval = concurrency / rate if rate else None
    start_at = time.monotonic() + 0.5  # every process connected and waiting
    context = multiprocessing.get_context("fork")
    with context.Pool(concurrency) as pool:
        results = pool.starmap(_client, [(port, share, recipient, reuse, interval, start_at)
                                         for share in shares])
    return gather(results)


def gather(results: list[ClientResult]) -> LoadResult:
    """The clients' results as one: every latency, all refusals, from the first start to
    the last end."""
    latencies = [value for result in results for value in result.latencies]
    return LoadResult(
        sent=len(latencies),
        refused=sum(result.refused for result in results),
        seconds=max(r.ended for r in results) - min(r.started for r in results),
        latencies=latencies,
        started=min(r.started for r in results),
    )
