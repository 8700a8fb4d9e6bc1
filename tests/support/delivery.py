"""One mail through the whole app at once, as tests need it: accepted, processed, and the
mail it caused sent to the sink."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

from mailcase.app import App
from mailcase.store.models import InboundMail
from tests.support.mailsink import Received


def deliver_now(app: App, message: EmailMessage, *, mail_from: str, rcpt: str) -> InboundMail:
    """Accept ``message``, process it and send what it caused; its inbound row after."""
    inbound = app.intake.accept(message.as_bytes(), mail_from=mail_from, rcpt_to=[rcpt],
                                source="test")
    app.processor.drain()
    app.sender.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound.id)
        assert row is not None
        return row


def token_of(message: Received) -> str:
    """The reply address (with its token) of a mail mailcase sent."""
    return parseaddr(message["Reply-To"] or "")[1]
