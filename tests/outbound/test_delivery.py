"""Delivery through real smarthosts: STARTTLS and implicit TLS with a verified
certificate, AUTH with the password read from a file, and a relay that is down for a
while and then back, all without an operator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select

from mailcase.app import App
from mailcase.store.models import OutboundMail
from tests.support.mailsink import Sink, free_port
from tests.support.servers import mail


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority the relays' certificates come from."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "relay-password"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    return path


def queue_one(app: App) -> None:
    app.intake.accept(mail(message_id="<d@customer.org>").as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()


def outbound(app: App) -> OutboundMail:
    with app.sessions() as session:
        return session.scalars(select(OutboundMail)).one()


@pytest.fixture
def relay(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[Sink]:
    tls, login = request.param
    with Sink(tls=tls, ca=ca, login=login) as sink:
        yield sink


@pytest.mark.parametrize(("relay", "mode"), [
    (("starttls", ("mailcase", "s3cret")), "starttls"),
    (("starttls", ("mailcase", "s3cret")), "opportunistic"),
    (("implicit", ("mailcase", "s3cret")), "implicit"),
], indirect=["relay"])
def test_tls_and_auth_to_the_relay(make_app: Callable[..., App], relay: Sink, mode: str,
                                   ca_file: Path, password_file: Path) -> None:
    """The mail goes over TLS with the relay's certificate checked, and AUTH with the
    password from its file."""
    app = make_app(outbound={"port": relay.port, "tls": mode, "ca_file": str(ca_file),
                             "username": "mailcase", "password_file": str(password_file)})
    queue_one(app)
    assert app.sender.drain() == {"sent": 1}
    relay.expect(1)
    assert relay.logins == ["mailcase"]


@pytest.mark.parametrize("relay", [("starttls", ("mailcase", "s3cret"))], indirect=True)
def test_wrong_password_defers_the_mail(make_app: Callable[..., App], relay: Sink,
                                        ca_file: Path, tmp_path: Path) -> None:
    """A refused login is the relay's trouble, not the recipient's: the mail waits for the
    password to be fixed instead of failing."""
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    app = make_app(outbound={"port": relay.port, "tls": "starttls", "ca_file": str(ca_file),
                             "username": "mailcase", "password_file": str(wrong)})
    queue_one(app)
    assert app.sender.drain() == {"deferred": 1}
    row = outbound(app)
    assert row.status == "pending" and row.last_error and "535" in row.last_error
    relay.expect(0)


@pytest.mark.parametrize("relay", [("starttls", None)], indirect=True)
def test_untrusted_certificate_defers_the_mail(make_app: Callable[..., App],
                                               relay: Sink) -> None:
    """A relay whose certificate does not verify gets nothing; the mail waits."""
    app = make_app(outbound={"port": relay.port, "tls": "starttls"})
    queue_one(app)
    assert app.sender.drain() == {"deferred": 1}
    assert "CERTIFICATE_VERIFY_FAILED" in (outbound(app).last_error or "")
    relay.expect(0)


def test_required_starttls_is_not_skipped(make_app: Callable[..., App], sink: Sink) -> None:
    """With tls = "starttls" a relay that does not offer it gets nothing in the clear."""
    app = make_app(outbound={"tls": "starttls"})
    queue_one(app)
    assert app.sender.drain() == {"deferred": 1}
    assert "does not offer STARTTLS" in (outbound(app).last_error or "")
    sink.expect(0)


def test_relay_down_for_a_while_then_back(make_app: Callable[..., App]) -> None:
    """Mail queued while the relay is down is delivered once it is back, by the ordinary
    retries, with no operator action."""
    port = free_port()
    app = make_app(outbound={"port": port})
    queue_one(app)
    for _ in range(3):
        app.sender.drain()
        with app.sessions.begin() as session:
            session.scalars(select(OutboundMail)).one().next_attempt_at = (
                datetime.now(UTC) - timedelta(seconds=1))
    assert outbound(app).attempts == 3
    with Sink(port=port) as back:
        assert app.sender.drain() == {"sent": 1}
        back.expect(1)
    assert outbound(app).status == "sent"


@pytest.mark.parametrize("relay", [("starttls", None)], indirect=True)
def test_opportunistic_tls_takes_a_self_signed_relay(make_app: Callable[..., App],
                                                     relay: Sink) -> None:
    """The default, opportunistic STARTTLS, encrypts to a relay whose certificate cannot be
    checked (a local Postfix's self-signed one) instead of holding the mail (RFC 7435)."""
    app = make_app(outbound={"port": relay.port})
    queue_one(app)
    assert app.sender.drain() == {"sent": 1}
    relay.expect(1)


@pytest.mark.parametrize("relay", [("starttls", ("mailcase", "s3cret"))], indirect=True)
def test_relay_wanting_auth_we_lack_defers_the_mail(make_app: Callable[..., App],
                                                    relay: Sink, ca_file: Path) -> None:
    """A relay that refuses us at MAIL FROM (AUTH required, sender not allowed) is our
    setup's problem: the mail waits, it does not fail."""
    app = make_app(outbound={"port": relay.port, "tls": "starttls", "ca_file": str(ca_file)})
    queue_one(app)
    assert app.sender.drain() == {"deferred": 1}
    assert "530" in (outbound(app).last_error or "")
