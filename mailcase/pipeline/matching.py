"""Find the case a mail belongs to: reply token, then In-Reply-To/References, then tag.

Order after DESIGN.md: a token in a recipient address (envelope recipients first,
then To, Cc, Delivered-To), then the Message-IDs the mail answers, then a case tag in
the subject. A token that does not verify is ignored, never trusted: a forged or
foreign token attaches nothing. Whichever way a case is found, a case merged into
another passes the mail on (``landing``): a merged case's tokens, Message-IDs and tag
all lead to the case it was merged into, to the end of a chain of merges. Finding a
case is not joining it: whether the writer may (they take part in it, and what their
mail proves) is decided after, in one place (identity.trust, applied by
pipeline.writer).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.config import Settings
from mailcase.identity.addresses import canonical
from mailcase.identity.tokens import Participant, TokenSigner, is_bounce_token, token_of
from mailcase.identity.trust import Role
from mailcase.reading.parsing import ParsedMail
from mailcase.store.models import Agent, Case, Collaborator, Message

log = logging.getLogger(__name__)

# "[Case #00001000]" as mailcase writes it; also "[case #1000]" and "[Case# 1000]".
SUBJECT_TAG = re.compile(r"\[\s*Case\s*#\s*([0-9]{1,8})\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class Match:
    """The case a mail threads into, how it was found, and who the token named."""

    case: Case
    by: str
    participant: Participant | None = None
    merged: str | None = None  # the number of the merged case the mail was meant for


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
    found = None
    for address in recipient_addresses(mail, envelope_rcpts):
        found = _by_token(session, address, settings, signer, mail.message_id)
        if found is not None:
            break
    found = found or _by_thread(session, mail) or _by_subject_tag(session, mail)
    if found is None or found.case.merged_into_id is None:
        return found
    return replace(found, case=landing(session, found.case),
                   merged=found.case.display_number)


def landing(session: Session, case: Case) -> Case:
    """The case mail for ``case`` lands on: itself, or, for a case merged into another,
    the end of its chain of merges (locked, as a found case is). The case rules never
    make a loop; should the data hold one, the chain stops where it would repeat."""
    seen = {case.id}
    while case.merged_into_id is not None:
        onward = session.get(Case, case.merged_into_id, with_for_update=True)
        if onward is None or onward.id in seen:
            log.error("case %s is merged into a case that is missing or loops back",
                      case.display_number)
            break
        seen.add(onward.id)
        case = onward
    return case


def _by_token(
    session: Session, address: str, settings: Settings, signer: TokenSigner,
    message_id: str | None,
) -> Match | None:
    mailbox = settings.mailbox_for(address)
    token = token_of(address, mailbox.local_part) if mailbox else None
    if token is None or is_bounce_token(token):
        return None
    claim = signer.verify(token)
    if claim is None:
        log.warning("ignored a reply token that does not verify in %s message_id=%s",
                    address, message_id, extra={"message_id": message_id})
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


def _by_subject_tag(session: Session, mail: ParsedMail) -> Match | None:
    """The case named by a ``[Case #00001000]`` tag. A tag is easy to copy: the writer's
    part in the case decides whether the mail may join it (identity.trust)."""
    found = SUBJECT_TAG.search(mail.subject)
    if found is None:
        return None
    case = session.scalar(
        select(Case).where(Case.number == int(found.group(1))).with_for_update()
    )
    return Match(case, "subject tag") if case is not None else None


def role_of(session: Session, case: Case, email: str) -> Role:
    """The part ``email`` takes in ``case``: its contact, a collaborator, an (active)
    agent, or a stranger. Only the address is compared: what proves it is trust's job."""
    email = canonical(email)
    if email in (case.supplied_email, case.contact.email if case.contact else None):
        return "contact"
    collaborator = select(Collaborator.id).where(Collaborator.case_id == case.id,
                                                 Collaborator.email == email)
    if session.scalar(collaborator.limit(1)) is not None:
        return "collaborator"
    agent = select(Agent.id).where(Agent.email == email, Agent.active.is_(True))
    return "agent" if session.scalar(agent.limit(1)) is not None else "stranger"
