"""What ``/metrics`` says, in Prometheus' text format (prometheus-client).

Mail is accepted in the listener but processed and sent in its child process (and, on
PostgreSQL, perhaps by other instances), so most figures are read from the shared
database when Prometheus scrapes: the counters are the database's totals (they only
grow, as mail is never deleted), the queue gauges its current state, and the processing
and sending latencies are observed once per mail from its timestamps, as finished
mail turns up between two scrapes. Only the accept latency, which lives in the
listener alone, is measured in this process. The registry is this App's own, never
the library's global one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.monitoring.casetimes import CaseTimes
from mailcase.monitoring.health import pending_since
from mailcase.store.models import Bounce, InboundMail, OutboundMail

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The registry: the accept latency observed in this process, everything else read
    from the database at each scrape."""

    def __init__(self, readers: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accept_seconds = Histogram(
            "mailcase_accept_seconds",
            "From the end of an SMTP DATA to its durable commit (the wait before 250)",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        # Not registered: the store collector observes them from the database and then
        # yields them, so a scrape already includes what it has just observed.
        self.process_seconds = Histogram(
            "mailcase_process_seconds", "From a mail's acceptance until it was processed",
            buckets=LATENCY_BUCKETS, registry=None)
        self.send_seconds = Histogram(
            "mailcase_send_seconds", "From an outbound mail's queuing until the relay took it",
            buckets=LATENCY_BUCKETS, registry=None)
        self.registry.register(StoreCollector(readers, clock, self))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Counters and gauges read from the database at each scrape; the latencies of mail
    finished since the previous scrape go into the histograms."""

    def __init__(self, readers: sessionmaker[Session], clock: Callable[[], datetime],
                 metrics: Metrics) -> None:
        self.readers = readers
        self.clock = clock
        self.metrics = metrics
        self._lock = threading.Lock()  # one scrape at a time advances the watermarks
        self._seen: dict[str, int] | None = None
        self.case_times = CaseTimes()

    def describe(self) -> list[Metric]:
        return []  # read from the database only when scraped

    def collect(self) -> Iterator[Metric]:
        with self._lock, self.readers() as session:
            now = self.clock()
            inbound = _by_status(session, InboundMail)
            yield from self._counters(session, inbound)
            yield from self._queues(session, now, inbound)
            yield from self.case_times.collect(session, now)
            self._observe_latencies(session)
        yield from self.metrics.process_seconds.collect()
        yield from self.metrics.send_seconds.collect()

    def _counters(self, session: Session, inbound: dict[str, int]) -> Iterator[Metric]:
        outbound = _by_status(session, OutboundMail)
        bounced = session.scalar(select(func.count()).select_from(Bounce)) or 0
        accepted = CounterMetricFamily("mailcase_accepted", "Mails stored by the intake")
        accepted.add_metric([], sum(inbound.values()))
        yield accepted
        ended = CounterMetricFamily("mailcase_inbound_mail", "Inbound mail by how it ended",
                                    labels=["outcome"])
        for outcome in ("processed", "dropped", "parked", "held"):
            ended.add_metric([outcome], inbound.get(outcome, 0))
        yield ended
        out = CounterMetricFamily("mailcase_outbound_mail", "Outbound mail by how it ended",
                                  labels=["outcome"])
        for outcome in ("sent", "failed"):
            out.add_metric([outcome], outbound.get(outcome, 0))
        yield out
        bounces = CounterMetricFamily("mailcase_bounces", "Recipients reported by bounces")
        bounces.add_metric([], bounced)
        yield bounces

    def _queues(self, session: Session, now: datetime,
                inbound: dict[str, int]) -> Iterator[Metric]:
        depth = GaugeMetricFamily("mailcase_queue_depth", "Mails waiting", labels=["queue"])
        oldest = GaugeMetricFamily("mailcase_queue_oldest_seconds",
                                   "How long the oldest due mail has waited", labels=["queue"])
        for queue, model in (("inbound", InboundMail), ("outbound", OutboundMail)):
            count, age = pending_since(session, model, now)
            depth.add_metric([queue], count)
            oldest.add_metric([queue], max(age or 0.0, 0.0))
        yield depth
        yield oldest
        parked = GaugeMetricFamily("mailcase_parked", "Inbound mail parked for an operator")
        parked.add_metric([], inbound.get("parked", 0))
        yield parked
        held = GaugeMetricFamily("mailcase_held", "Replies held for review (inbound release)")
        held.add_metric([], inbound.get("held", 0))
        yield held

    def _observe_latencies(self, session: Session) -> None:
        """Observe each mail finished since the last scrape once. The watermark is the
        oldest mail still pending then (everything below it had finished and was seen)."""
        marks = {"inbound": _low_mark(session, InboundMail),
                 "outbound": _low_mark(session, OutboundMail)}
        if self._seen is not None:
            # A replayed mail is pending again below the mark: the mark never goes back,
            # so nothing is observed twice.
            marks = {queue: max(mark, self._seen[queue]) for queue, mark in marks.items()}
            since_in, since_out = self._seen["inbound"], self._seen["outbound"]
            for received, processed in session.execute(
                select(InboundMail.received_at, InboundMail.processed_at)
                .where(InboundMail.id >= since_in, InboundMail.id < marks["inbound"],
                       InboundMail.processed_at.is_not(None))
            ):
                self.metrics.process_seconds.observe(_seconds(received, processed))
            for created, sent in session.execute(
                select(OutboundMail.created_at, OutboundMail.sent_at)
                .where(OutboundMail.id >= since_out, OutboundMail.id < marks["outbound"],
                       OutboundMail.sent_at.is_not(None))
            ):
                self.metrics.send_seconds.observe(_seconds(created, sent))
        self._seen = marks


def _by_status(session: Session, model: type[InboundMail] | type[OutboundMail]
               ) -> dict[str, int]:
    """How many rows of a queue have each status."""
    return {status: int(count) for status, count in session.execute(
        select(model.status, func.count()).group_by(model.status))}


def _low_mark(session: Session, model: type[InboundMail] | type[OutboundMail]) -> int:
    """The id of the oldest pending row, else one past the newest row."""
    pending = session.scalar(select(func.min(model.id)).where(model.status == "pending"))
    if pending is not None:
        return int(pending)
    return int(session.scalar(select(func.max(model.id))) or 0) + 1


def _seconds(start: datetime, end: datetime | None) -> float:
    """end - start, never below 0 (instances' clocks may differ a little)."""
    return max((end - start).total_seconds(), 0.0) if end is not None else 0.0
