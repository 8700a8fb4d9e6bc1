"""The monitoring endpoint: /healthz says whether mail flows (503 when the database is
gone or mail waits too long), /metrics counts what happened in Prometheus' format."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailcase import config
from mailcase.app import App
from mailcase.monitoring.endpoint import Monitor
from tests.support.mailsink import free_port
from tests.support.servers import mail, write_config


@contextmanager
def serving(app: App) -> Iterator[str]:
    """The app's monitor on a free loopback port; yields its base URL."""
    monitor = Monitor(app.health, app.metrics, "127.0.0.1", 0)
    monitor.start()
    try:
        yield f"http://127.0.0.1:{monitor.port}"
    finally:
        monitor.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def healthz_once(app: App) -> tuple[int, str]:
    """One GET /healthz of an app built for it, which is closed after."""
    try:
        with serving(app) as base:
            return get(base + "/healthz")
    finally:
        app.close()


def sample(text: str, name: str) -> float:
    """The value of one sample line (``name`` with its labels) in an exposition."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"no {name} in:\n{text}"
    return float(match.group(1))


def accept(app: App, message_id: str) -> None:
    app.intake.accept(mail(message_id=message_id).as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")


def test_healthz_is_200_with_a_report_while_mail_flows(app: App) -> None:
    """A working database and empty queues: 200 and a JSON report of every check."""
    with serving(app) as base:
        status, body = get(base + "/healthz")
    report = json.loads(body)
    assert status == 200, body
    assert report["status"] == "ok"
    assert report["checks"]["database"]["ok"] is True
    assert report["inbound_pending"] == 0 and report["parked"] == 0


def test_healthz_fails_when_due_mail_waits_too_long(
    make_app: Callable[..., App]
) -> None:
    """Mail nobody processed for longer than http.max_pending_seconds turns it 503."""
    app = make_app(http={"max_pending_seconds": 60})
    accept(app, "<waiting@customer.org>")
    later = App.build(app.settings, clock=lambda: datetime.now(UTC) + timedelta(minutes=5))
    status, body = healthz_once(later)
    assert status == 503, body
    assert json.loads(body)["checks"]["inbound"]["ok"] is False


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    """A database that does not answer (nothing listens on its port) gives 503, with the
    reason in the report, not a traceback."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/gone?connect_timeout=2"
    settings = config.load(write_config(tmp_path, url, None))
    status, body = healthz_once(App.build(settings, create_secret=True))
    assert status == 503, body
    check = json.loads(body)["checks"]["database"]
    assert check["ok"] is False and check["detail"].startswith("unreachable")


def test_metrics_count_a_processed_mail_and_its_latency(app: App) -> None:
    """A mail accepted and processed between two scrapes shows in the counters, the
    queue gauges and (once) in the processing latency histogram."""
    with serving(app) as base:
        _, before = get(base + "/metrics")
        accept(app, "<counted@customer.org>")
        _, queued = get(base + "/metrics")
        app.processor.drain()
        status, after = get(base + "/metrics")
        _, again = get(base + "/metrics")
    assert status == 200
    processed = 'mailcase_inbound_mail_total{outcome="processed"}'
    assert sample(after, processed) == sample(before, processed) + 1
    assert sample(after, "mailcase_accepted_total") == sample(before, "mailcase_accepted_total") + 1
    assert sample(queued, 'mailcase_queue_depth{queue="inbound"}') == 1
    assert sample(after, 'mailcase_queue_depth{queue="inbound"}') == 0
    assert sample(after, 'mailcase_queue_depth{queue="outbound"}') == 1  # the acknowledgement
    assert sample(after, "mailcase_process_seconds_count") == 1
    assert sample(again, "mailcase_process_seconds_count") == 1  # observed once only


def test_unknown_paths_and_methods_are_refused(app: App) -> None:
    """Only GET /healthz and GET /metrics exist."""
    with serving(app) as base:
        assert get(base + "/")[0] == 404
        request = urllib.request.Request(base + "/metrics", method="POST", data=b"")
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("POST was answered")
        except urllib.error.HTTPError as error:
            assert error.code == 405
