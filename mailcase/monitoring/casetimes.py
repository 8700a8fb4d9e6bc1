"""The case's clock in ``/metrics``: first-response and resolution times as histograms,
and the open cases marked escalated.

The times are frozen on each case when they happen (cases.targets), so the histograms
are counted from the database, in one statement: exact across restarts and instances.
They are gauge histograms (Prometheus' ``gaugehistogram``): the distribution of the
cases there are now, which may shrink (a reopened case's resolution time is no longer
frozen), not a counter. The statement reads every case, so its answer is reused for a
minute rather than run on every scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mailcase.cases.book import RATINGS
from mailcase.store.models import Case

# From five minutes to a month: support times, not request latencies.
BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800,
           1209600, 2592000)
TIMES = {
    "mailcase_case_first_response_seconds": (
        "From a case's start to its first public agent reply",
        Case.first_response_seconds, Case.business_first_response_seconds),
    "mailcase_case_resolution_seconds": (
        "From a case's start to its close",
        Case.resolution_seconds, Case.business_resolution_seconds),
}


REUSE_SECONDS = 60.0


class CaseTimes:
    """The case-time metrics, counted at most once a ``REUSE_SECONDS``."""

    def __init__(self) -> None:
        self._last: tuple[datetime, list[Metric]] | None = None

    def collect(self, session: Session, now: datetime) -> list[Metric]:
        if self._last is None or (now - self._last[0]).total_seconds() >= REUSE_SECONDS:
            self._last = (now, list(case_time_metrics(session)))
        return self._last[1]


def case_time_metrics(session: Session) -> Iterator[Metric]:
    """The two histograms (label ``time``: ``wall`` or ``business``) and the gauge."""
    columns: list[Any] = []
    for _help, *pair in TIMES.values():
        for column in pair:
            columns += [func.sum(case((column <= bound, 1), else_=0)) for bound in BUCKETS]
            columns += [func.count(column), func.coalesce(func.sum(column), 0)]
    columns.append(func.sum(case((Case.is_escalated & ~Case.is_closed, 1), else_=0)))
    columns += [func.sum(case((Case.satisfaction == rating, 1), else_=0))
                for rating in RATINGS]
    row = list(session.execute(select(*columns)).one())
    width = len(BUCKETS) + 2
    for index, (name, (text, *_pair)) in enumerate(TIMES.items()):
        family = GaugeHistogramMetricFamily(name, text, labels=["time"])
        for offset, label in enumerate(("wall", "business")):
            start = (index * 2 + offset) * width
            counts = [int(v or 0) for v in row[start:start + len(BUCKETS)]]
            total, summed = int(row[start + len(BUCKETS)] or 0), row[start + len(BUCKETS) + 1]
            buckets = [(str(float(bound)), count) for bound, count in zip(BUCKETS, counts,
                                                                           strict=True)]
            buckets.append(("+Inf", total))
            family.add_metric([label], buckets, float(summed or 0))
        yield family
    ratings = row[-len(RATINGS):]
    escalated = GaugeMetricFamily("mailcase_cases_escalated", "Open cases marked escalated")
    escalated.add_metric([], int(row[-len(RATINGS) - 1] or 0))
    yield escalated
    rated = GaugeMetricFamily("mailcase_satisfaction", "Cases by their contact's rating",
                              labels=["rating"])
    for rating, count in zip(RATINGS, ratings, strict=True):
        rated.add_metric([rating], int(count or 0))
    yield rated
