"""What the daemon writes to its log: JSON lines with each mail's inbound id and Message-ID
as fields when asked, and never a password or token secret — even at DEBUG, even when
the relay refuses the login."""

from __future__ import annotations

import io
import json
import logging
import signal
from pathlib import Path

from mailcase import config
from mailcase.logs import MASK, JsonFormatter, Redactor, about, configure
from mailcase.reading import bounces
from tests.service.test_serve import serve_process
from tests.support.mailsink import Sink, free_port
from tests.support.paths import DATA
from tests.support.servers import mail, send, wait_for, write_config

RELAY_PASSWORD = "relay-password-that-is-wrong"


def serve_one_mail(folder: Path, message_id: str, until: str, relay_port: int | None = None,
                   **sections: dict[str, object]) -> str:
    """`mailcase serve` as a process, one mail sent to it, stopped once ``until`` shows in
    its log (exit 0); the whole log."""
    port = free_port()
    path = write_config(folder, f"sqlite:///{folder / 'mailcase.db'}", relay_port,
                        smtp={"port": port}, **sections)
    log = folder / "serve.log"
    daemon = serve_process(path, port, log)
    try:
        send(port, mail(message_id=message_id))
        wait_for(lambda: until in log.read_text(), timeout=15, what=f"{until!r} in the log")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    return log.read_text()


def test_json_lines_carry_the_mails_ids(tmp_path: Path) -> None:
    """format = "json": every line of both processes is one JSON object, and the lines
    about the mail (accepted by the listener, processed by the child) name it."""
    output = serve_one_mail(tmp_path, "<json@customer.org>", '"processed inbound=',
                            logging={"format": "json"})
    lines = [json.loads(line) for line in output.splitlines()]
    about_it = [line for line in lines if line.get("message_id") == "<json@customer.org>"]
    assert {line["logger"] for line in about_it} >= {"mailcase.intake.accept",
                                                     "mailcase.pipeline.processor"}, lines
    assert all(isinstance(line["inbound"], int) for line in about_it)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)


def test_no_secret_reaches_the_log_at_debug(tmp_path: Path) -> None:
    """A relay refusing our login (wrong password) at log level DEBUG: the password and
    the token secret appear nowhere in what the daemon wrote."""
    (tmp_path / "relay-password").write_text(RELAY_PASSWORD + "\n")
    with Sink(login=("mailcase", "the-right-password")) as relay:
        output = serve_one_mail(
            tmp_path, "<secretive@customer.org>", "outbound 1 to", relay.port,
            logging={"level": "DEBUG"},
            outbound={"tls": "none", "username": "mailcase", "password_file": "relay-password"})
    secret = (tmp_path / "token-secret").read_text().splitlines()[-1]
    assert "DEBUG" in output and "outbound 1 to" in output
    assert RELAY_PASSWORD not in output
    assert secret not in output


def test_the_redactor_masks_secrets_in_messages_and_tracebacks() -> None:
    """Should code ever format a secret into a log line or an exception, the handler's
    filter masks it in the text that is written."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor(["s3cret-value-1", "tiny"]))
    logger = logging.getLogger("test.redactor")
    logger.addHandler(handler)
    try:
        logger.error("login with %s failed", "s3cret-value-1")
        try:
            raise RuntimeError("server said: bad password s3cret-value-1")
        except RuntimeError:
            logger.exception("relay trouble")
        logger.error("a tiny word stays")  # shorter than any real secret: not masked
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cret-value-1" not in text
    assert text.startswith(f"login with {MASK} failed\n")
    assert f"RuntimeError: server said: bad password {MASK}" in text and "tiny word" in text


def test_configure_twice_replaces_only_its_own_handler(tmp_path: Path) -> None:
    """A reload configures logging again: one handler of ours, others left in place."""
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", None,
                        logging={"format": "json"})
    (tmp_path / "token-secret").write_text("0123456789abcdef0123\n")
    settings = config.load(path)
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure(settings, io.StringIO())
        configure(settings, io.StringIO())
        ours = [h for h in root.handlers if h not in before]
        assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
        assert all(h in root.handlers for h in before)
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def test_about_gives_the_fields_json_lines_show() -> None:
    """about() sets the attributes the JSON formatter turns into fields."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    for key, value in about(7, "<a@b>").items():
        setattr(record, key, value)
    assert json.loads(JsonFormatter().format(record))["inbound"] == 7


def test_a_delivered_mail_is_one_info_line(tmp_path: Path, sink: Sink) -> None:
    """At the default level an operator sees each outbound mail leave: which, what
    kind, to whom, and what the relay said."""
    said = "outbound 1 (auto_response) to ann@customer.org delivered"
    output = serve_one_mail(tmp_path, "<leaves@customer.org>", said, sink.port)
    [line] = [line for line in output.splitlines() if said in line]
    assert " INFO " in line
    # a shutdown says so, of each process, once it is done
    assert "processing child stopped" in output and "mailcase stopped" in output


def test_reading_a_bounce_adds_no_library_chatter(tmp_path: Path) -> None:
    """flufl.bounce logs each step at INFO (17 lines a bounce); at the daemon's INFO
    level none of it is written."""
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", None)
    (tmp_path / "token-secret").write_text("0123456789abcdef0123\n")
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure(config.load(path), stream)
        bounce = (DATA / "sisimai" / "lhost-qmail-01.eml").read_bytes()
        assert bounces.read(bounce).failures  # flufl.bounce did the reading
        logging.getLogger("mailcase").info("marker")
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
    assert "marker" in stream.getvalue()
    assert "flufl" not in stream.getvalue()
