"""The search measure: ``Desk.search`` latency on a large store (issue 22).

A store of ``cases`` cases, each with a subject, a description and ``comments``
comments, is written with Core bulk inserts at schema 0007 (before search), then
migration 0008 indexes it all, as ``mailcase db upgrade`` would an existing database;
both times are reported. The text is pseudo-words drawn by Zipf's law from a vocabulary
of 20,000 (so a few words are in most texts and most words in few), an order number in
each description, and senders from a pool of addresses and domains. Then a fixed mix
of queries (`QUERY_KINDS`) is timed, a warm-up pass first; the baseline is the first
page of ``Desk.list`` on the same store, timed the same way.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from mailcase.store import migrate
from mailcase.store.models import Case, Comment

VOCABULARY = 20_000
ZIPF = 1.0
ADDRESSES = 100_000  # senders; each writes about ten cases of a million
DOMAINS = 5_000
BATCH = 5_000  # cases a bulk insert
SUBJECT_WORDS, DESCRIPTION_WORDS, COMMENT_WORDS = 5, 30, 20
START = datetime(2024, 1, 1, tzinfo=UTC)
QUERY_KINDS = ("order number", "rare word", "uncommon word", "common word", "two words",
               "phrase", "prefix", "address", "domain")


@dataclass
class Store:
    """What the seeded text is made of, to draw queries that find something."""

    rng: random.Random
    words: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)  # adjacent words of real subjects
    orders: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        seen: set[str] = set()
        while len(self.words) < VOCABULARY:
            word = "".join(self.rng.choices(syllables, k=self.rng.randint(2, 4)))
            if word not in seen:
                seen.add(word)
                self.words.append(word)
        self.weights = list(itertools.accumulate(1 / rank ** ZIPF
                                                 for rank in range(1, VOCABULARY + 1)))

    def text(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.weights, k=count))

    def subject(self, number: int) -> str:
        subject = self.text(SUBJECT_WORDS).capitalize()
        if number % 1000 == 1:  # kept for the queries: two words next to each other
            self.phrases.append(" ".join(subject.lower().split()[1:3]))
        return subject

    def description(self, number: int) -> str:
        order = f"ord{self.rng.randrange(10**7):07d}"
        if number % 1000 == 1:
            self.orders.append(order)
        return f"{self.text(DESCRIPTION_WORDS)}. Order {order}."


def sender(number: int) -> str:
    address = number * 7919 % ADDRESSES
    return f"user{address}@company{address % DOMAINS}.example"


def seed(engine: Engine, cases: int, comments: int, store: Store,
         progress: Callable[[int], None] = lambda done: None) -> tuple[float, float]:
    """Write the store at 0007 with bulk inserts, then upgrade; (insert, index) seconds."""
    migrate.upgrade(engine, "0007")
    started = time.perf_counter()
    for first in range(1, cases + 1, BATCH):
        numbers = range(first, min(first + BATCH, cases + 1))
        with engine.begin() as connection:
            connection.execute(insert(Case), [
                {"id": n, "number": n, "subject": store.subject(n),
                 "description": store.description(n), "status": "Closed", "is_closed": True,
                 "mailbox": "support@example.com", "supplied_email": sender(n),
                 "created_at": START + timedelta(minutes=n), "updated_at": START}
                for n in numbers])
            connection.execute(insert(Comment), [
                {"case_id": n, "body": store.text(COMMENT_WORDS),
                 "author_email": sender(n) if index % 2 else "agent@example.com",
                 "author_kind": "agent", "public": index % 3 != 2,
                 "created_at": START + timedelta(minutes=n, seconds=index)}
                for n in numbers for index in range(comments)])
        progress(numbers[-1])
    with engine.begin() as connection:
        connection.execute(text("UPDATE counters SET value = :n WHERE name = 'case_number'"),
                           {"n": cases})
        if engine.dialect.name == "postgresql":
            for table in ("cases", "comments"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', "
                                        f"'id'), (SELECT max(id) FROM {table}))"))
    inserted = time.perf_counter() - started
    migrate.upgrade(engine)
    indexed = time.perf_counter() - started - inserted
    settle = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(settle))
    return inserted, indexed


def queries(store: Store, cases: int, per_kind: int) -> Iterator[tuple[str, str]]:
    """``per_kind`` queries of each kind, interleaved, meant to find some of the
    ``cases`` (two random words may happen never to meet in one case)."""
    rng, words = store.rng, store.words
    draw: dict[str, Callable[[], str]] = {
        "order number": lambda: rng.choice(store.orders),
        "rare word": lambda: rng.choice(words[15_000:]),
        "uncommon word": lambda: rng.choice(words[2_000:5_000]),
        "common word": lambda: rng.choice(words[10:100]),
        "two words": lambda: f"{rng.choice(words[100:1_000])} {rng.choice(words[100:1_000])}",
        "phrase": lambda: f'"{rng.choice(store.phrases)}"',
        "prefix": lambda: rng.choice(words[1_000:5_000])[:5] + "*",
        "address": lambda: sender(rng.randrange(1, cases + 1)),
        "domain": lambda: "@" + sender(rng.randrange(1, cases + 1)).split("@")[1],
    }
    for _ in range(per_kind):
        for kind in QUERY_KINDS:
            yield kind, draw[kind]()


def timed(call: Callable[[], Any], repeat: int = 1) -> list[float]:
    """Seconds each of ``repeat`` calls took."""
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    return took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(values: list[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    return (f"{statistics.median(values) * 1000:,.1f} / {percentile(values, 0.99) * 1000:,.1f}"
            f" / {max(values) * 1000:,.1f} ms")
