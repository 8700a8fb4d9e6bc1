"""The answering stage: the acknowledgement a new case's sender gets, within its limits.

An acknowledgement is a courtesy; it must never cost the case. It is composed in a
savepoint, so a template or address problem is logged and noted while the case is
still recorded. Imported archives are never answered, and a sender gets at most one
acknowledgement per ``mailbox.auto_response_interval`` (RFC 3834 section 2: limit
automatic responses to the same sender).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from mailcase.compose import Recipient
from mailcase.models import OutboundMail
from mailcase.pipeline.context import Context
from mailcase.tokens import Participant

log = logging.getLogger(__name__)

QUIET_SOURCES = frozenset({"import"})  # archived mail was answered long ago


def acknowledge(ctx: Context) -> None:
    """Queue the auto-response to the sender of a new case, when one is due."""
    mailbox, sender = ctx.mailbox, ctx.sender
    if not ctx.new_case or mailbox is None or not mailbox.auto_response or sender is None:
        return
    if ctx.inbound.source in QUIET_SOURCES:
        return
    since = ctx.now - timedelta(seconds=mailbox.auto_response_interval)
    recent = ctx.session.scalar(
        select(OutboundMail.id).where(
            OutboundMail.rcpt_to == sender.email, OutboundMail.kind == "auto_response",
            OutboundMail.created_at > since,
        ).limit(1)
    )
    if recent is not None:
        ctx.notes.append(f"no acknowledgement: {sender.email} got one in the last "
                         f"{mailbox.auto_response_interval:g} s")
        return
    try:
        with ctx.session.begin_nested():
            queued = ctx.services.composer.queue(
                ctx.session, ctx.case_required,
                Recipient(sender.email, sender.name, Participant("c", sender.id)),
                template="acknowledgement", kind="auto_response", now=ctx.now,
                auto_submitted="auto-replied",
            )
        if queued is None:
            ctx.notes.append(f"no acknowledgement: {sender.email} is marked undeliverable")
    except Exception as exc:  # noqa: BLE001 - a failed courtesy must not cost the case
        log.error("acknowledgement failed inbound=%s message_id=%s: %s",
                  ctx.inbound.id, ctx.inbound.message_id, exc)
        ctx.notes.append(f"acknowledgement not sent: {exc}")
