"""Find the case a mail belongs to: reply token first, then In-Reply-To/References.

Order after DESIGN.md: a token in a recipient address (envelope recipients first,
then To, Cc, Delivered-To), then the Message-IDs the mail answers. A token that does
not verify is ignored, never trusted: a forged or foreign token attaches nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.config import Settings
from mailcase.models import Case, Message
from mailcase.parsing import ParsedMail
from mailcase.tokens import Participant, TokenSigner, token_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    """The case a mail threads into, how it was found, and who the token named."""

    case: Case
    by: str
    participant: Participant | None = None


def recipient_addresses(mail: ParsedMail, envelope_rcpts: Iterable[str]) -> list[str]:
    """Every recipient address, in the order tokens are looked for."""
    seen = [a.strip("<> ").lower() for a in envelope_rcpts]
    seen += [a.email for a in mail.to] + [a.email for a in mail.cc] + list(mail.delivered_to)
    return list(dict.fromkeys(seen))


def find_case(
    session: Session,
    mail: ParsedMail,
    envelope_rcpts: Iterable[str],
    settings: Settings,
    signer: TokenSigner,
) -> Match | None:
    """The case ``mail`` replies to, or None when it starts a new one."""
    for address in recipient_addresses(mail, envelope_rcpts):
        match = _by_token(session, address, settings, signer)
        if match is not None:
            return match
    return _by_thread(session, mail)


def _by_token(
    session: Session, address: str, settings: Settings, signer: TokenSigner
) -> Match | None:
    mailbox = settings.mailbox_for(address)
    token = token_of(address, mailbox.local_part) if mailbox else None
    if token is None:
        return None
    claim = signer.verify(token)
    if claim is None:
        log.warning("ignored a reply token that does not verify in %s", address)
        return None
    case = session.scalar(
        select(Case).where(Case.number == claim.case_number).with_for_update()
    )
    return Match(case, "token", claim.participant) if case is not None else None


def _by_thread(session: Session, mail: ParsedMail) -> Match | None:
    ids = mail.thread_ids
    if not ids:
        return None
    rows = session.execute(
        select(Message.case_id, Message.message_id).where(Message.message_id.in_(ids))
    ).all()
    if not rows:
        return None
    # Prefer the message the mail answers directly (In-Reply-To), then the newest reference.
    rank = {mid: position for position, mid in enumerate(ids)}
    best = min(rows, key=lambda row: rank.get(row.message_id, len(ids)))
    case = session.get(Case, best.case_id, with_for_update=True)
    return Match(case, "thread") if case is not None else None
