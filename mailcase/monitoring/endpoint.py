"""The loopback HTTP endpoint beside the listener: ``/healthz`` and ``/metrics``.

A standard-library WSGI server in a thread of its own: both answers read the database,
which must never hold up the event loop that serves SMTP, and monitoring sends a
request every few seconds, not a load. Each connection gets a thread and a read
timeout, so one client that connects and says nothing holds up no one else.
``/healthz`` answers 200 with a JSON report when mail flows and 503 with the same
report when something is wrong; ``/metrics`` is Prometheus' text format.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mailcase.monitoring.health import HealthCheck
from mailcase.monitoring.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


REQUEST_TIMEOUT = 10.0
"""Seconds a connection may take to send its request before it is closed."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread a connection: a silent client blocks only itself."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out or hung up is no traceback on stderr."""
        log.debug("http client %s: %s", client_address, sys.exc_info()[1])


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not to stderr; a silent client times out."""

    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class Monitor:
    """Serves the health report and the metrics until stopped."""

    def __init__(self, health: HealthCheck, metrics: Metrics, host: str, port: int) -> None:
        self.health = health
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind (OSError when the address is taken) and serve in a daemon thread."""
        self._server = make_server(self.host, self.requested_port, self.app,
                                   server_class=_ThreadingServer, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)
        self._thread.start()
        log.info("health and metrics on http://%s:%s/", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: GET /healthz, GET /metrics."""
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/healthz":
            report = self.health.report()
            body = json.dumps(report.as_json(), indent=2).encode() + b"\n"
            status = "200 OK" if report.ok else "503 Service Unavailable"
            return _answer(start_response, status, body, "application/json")
        if path == "/metrics":
            try:
                body = self.metrics.exposition()
            except Exception as exc:  # noqa: BLE001 - a scrape must fail visibly, not crash
                log.error("metrics could not be read: %s", exc)
                return _answer(start_response, "503 Service Unavailable",
                               f"metrics unavailable: {exc}\n".encode())
            return _answer(start_response, "200 OK", body, CONTENT_TYPE)
        return _answer(start_response, "404 Not Found", b"/healthz or /metrics\n")


def _answer(start_response: StartResponse, status: str, body: bytes,
            content_type: str = "text/plain; charset=utf-8") -> list[bytes]:
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body)))])
    return [body]
