"""Case rules after Salesforce's Case: numbering, the status lifecycle, comments and the feed.

Every change to a case goes through a CaseBook so the rules hold whoever asks: the
processor for mail, the CLI for agents. A broken rule raises CaseError with a sentence
a user can act on.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailcase.cases.errors import BadValue, CaseError, NotFound
from mailcase.cases.routing import queue_name
from mailcase.cases.staff import Staff
from mailcase.cases.targets import CaseClock, TargetRules
from mailcase.config import CaseSettings
from mailcase.outbound.webhooks import Webhooks
from mailcase.store.db import insert_or_nothing
from mailcase.store.models import (
    DESCRIPTION_MAX_BYTES,
    SUBJECT_MAX,
    Account,
    Agent,
    Case,
    Collaborator,
    Comment,
    Contact,
    Counter,
    Event,
)

PRIORITIES = ("High", "Medium", "Low")
RATINGS = ("good", "bad")
COMMENT_MAX = 4000  # a satisfaction comment is a few lines, not a new case
MAX_COLLABORATORS = 20
_NUMBER = re.compile(r"^#?0*([0-9]{1,8})$")


def parse_number(text: str) -> int:
    """A case number as people type it: ``1000``, ``00001000`` or ``#00001000``."""
    match = _NUMBER.match(text.strip())
    if match is None:
        raise BadValue(f"{text!r} is not a case number (like 00001000)")
    return int(match.group(1))


def priority_of(text: str) -> str:
    """A priority as people type it (``high``, ``HIGH``), spelled as the case keeps it."""
    wanted = text.strip().capitalize()
    if wanted not in PRIORITIES:
        raise BadValue(f"unknown priority {text!r}; known: {', '.join(PRIORITIES)}")
    return wanted


def clip_subject(subject: str) -> str:
    """The subject cut to the 255 characters a case holds (the message keeps it whole)."""
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def clip_description(text: str) -> tuple[str, bool]:
    """The description cut to 32 KB on a character boundary, and whether it was cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= DESCRIPTION_MAX_BYTES:
        return text, False
    return encoded[: DESCRIPTION_MAX_BYTES - 3].decode("utf-8", errors="ignore") + "…", True


class CaseBook:
    """The case rules, applied within one session and one transaction."""

    def __init__(self, session: Session, settings: CaseSettings, now: datetime,
                 targets: TargetRules | None = None, hooks: Webhooks | None = None) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.hooks = hooks  # the webhooks told of the feed's entries, in this transaction
        # Set while an archive's mail is recorded at its own Date (self.now): when it
        # really is, so targets that ran out before are history (cases.targets).
        self.history_until: datetime | None = None
        # The service targets' bookkeeping (cases.targets); no [[sla]] rules, no targets.
        self.clock = CaseClock(session, targets or TargetRules(), lambda: self.now,
                               self.record)

    def get(self, number: int, *, lock: bool = True) -> Case:
        """The case, locked for this transaction (unless reading) so changes queue behind it."""
        query = select(Case).where(Case.number == number)
        case = self.session.scalar(query.with_for_update() if lock else query)
        if case is None:
            raise NotFound(f"there is no case {number:08d}")
        return case

    def contact(self, email: str, name: str = "") -> Contact:
        """The contact for ``email``, created on first sight (with its account by domain)."""
        email = email.lower()
        found = self.session.scalar(select(Contact).where(Contact.email == email))
        if found is not None:
            if name and not found.name:
                found.name = name
            return found
        domain = email.rpartition("@")[2]
        # The account by domain is looked up inside the INSERT: one statement, not two.
        account = select(Account.id).where(Account.domain == domain).scalar_subquery()
        values = {"email": email, "name": name, "account_id": account, "created_at": self.now}
        contact = self.session.scalars(
            insert_or_nothing(self.session, Contact, values, ["email"]).returning(Contact)
        ).first()
        if contact is None:  # another instance added them a moment ago
            contact = self.session.scalar(select(Contact).where(Contact.email == email))
        assert contact is not None
        return contact

    def open(
        self,
        *,
        subject: str,
        description: str,
        mailbox: str,
        contact: Contact | None,
        origin: str = "Email",
        parent: Case | None = None,
        priority: str = "Medium",
        created_by: str | None = None,
        type: str | None = None,
        reason: str | None = None,
    ) -> tuple[Case, bool]:
        """A new case with the next number; returns it and whether the description was cut.

        The feed names ``created_by`` as who opened it (an agent, for a case opened by
        hand), else the contact.
        """
        text, clipped = clip_description(description)
        case = Case(
            number=self._next_number(),
            subject=clip_subject(subject),
            description=text,
            status=self.settings.new_status,
            is_closed=False,
            priority=priority,
            origin=origin,
            mailbox=mailbox,
            contact=contact,
            account=contact.account if contact else None,
            supplied_email=contact.email if contact else None,
            supplied_name=(contact.name or None) if contact else None,
            parent=parent,
            type=type,
            reason=reason,
            created_at=self.now,
            updated_at=self.now,
            collaborators=[],  # known to be empty: no query when notifications look
        )
        self.session.add(case)
        self.session.flush()
        opener = created_by or (contact.email if contact else None)
        if parent is None:
            self.record(case, "created", opener, origin=origin)
        else:
            self.record(case, "created", opener, origin=origin, parent=parent.display_number)
        self.clock.fit(case, history_until=self.history_until)
        return case, clipped

    def _next_number(self) -> int:
        """The next case number: one counter row updated under its row lock, never reused.

        Raising ``cases.first_number`` later jumps ahead; lowering it never goes back.
        """
        first = self.settings.first_number
        counter = Counter.__table__.c
        bumped = sql_case((counter.value + 1 < first, first), else_=counter.value + 1)
        value = self.session.execute(
            update(Counter).where(counter.name == "case_number").values(value=bumped)
            .returning(counter.value)
        ).scalar()
        if value is None:
            raise RuntimeError("the case_number counter row is missing; run 'mailcase db upgrade'")
        return int(value)

    def comment(
        self,
        case: Case,
        body: str,
        *,
        author_email: str | None,
        author_name: str | None,
        author_kind: str,
        public: bool,
        message_id: int | None = None,
        actor: str | None = None,
        answers: bool = True,
    ) -> Comment:
        """Add a comment; anything not written by the owner marks the case unread for
        them, and the owner's own comment marks it read. The history names ``actor``
        (who acted, e.g. through an API key), else the author. ``answers``: whether it
        is someone's answer now, which moves the case's clock (a merged case's old
        text is not)."""
        self.not_merged(case)
        comment = Comment(
            case=case, body=body, author_email=author_email, author_name=author_name,
            author_kind=author_kind, public=public, message_id=message_id, created_at=self.now,
        )
        self.session.add(comment)
        owner = case.owner_agent.email if case.owner_agent else None
        # The owner's own words mean they have read the case.
        case.has_unread_comments_for_owner = author_email != owner
        case.updated_at = self.now
        self.session.flush()
        self.record(case, "comment", actor or author_email, public=public,
                    comment_id=comment.id)
        if public and answers:
            self._answered(case, author_email, author_kind)
        return comment

    def _answered(self, case: Case, author_email: str | None, author_kind: str) -> None:
        """What a public comment does to the case's clock: an agent's answers it; a
        customer's brings a case waiting on them back to work and awaits an answer."""
        if author_kind == "agent":
            self.clock.agent_replied(case, author_email)
            return
        if not case.is_closed and case.status in (*self.settings.pauses_sla,
                                                  self.settings.hold_status):
            self.set_status(case, self.settings.reopen_status, author_email)
        self.clock.customer_replied(case)

    def add_collaborator(
        self, case: Case, email: str, name: str, added_by: str | None
    ) -> Collaborator | None:
        """Keep ``email`` informed of ``case``; None if it already is. The 21st is refused."""
        email = email.lower()
        self.not_merged(case)
        if any(c.email == email for c in case.collaborators):
            return None
        if len(case.collaborators) >= MAX_COLLABORATORS:
            raise CaseError(
                f"case {case.display_number} already has {MAX_COLLABORATORS} collaborators, "
                f"the most a case can have; {email} was not added"
            )
        contact = self.contact(email, name)
        collaborator = Collaborator(
            case=case, contact_id=contact.id, email=email, name=name or contact.name,
            added_by=added_by, created_at=self.now,
        )
        self.session.add(collaborator)
        self.session.flush()
        self.record(case, "collaborator added", added_by, email=email)
        return collaborator

    def remove_collaborator(self, case: Case, email: str, actor: str | None) -> None:
        """Stop keeping ``email`` informed of ``case``."""
        email = email.lower()
        found = next((c for c in case.collaborators if c.email == email), None)
        if found is None:
            raise CaseError(f"{email} is not a collaborator of case {case.display_number}")
        case.collaborators.remove(found)
        self.session.flush()
        self.record(case, "collaborator removed", actor, email=email)

    def set_status(self, case: Case, status: str, actor: str | None) -> None:
        """Move an open case to another open status."""
        if status not in self.settings.statuses:
            raise BadValue(
                f"unknown status {status!r}; known: {', '.join(self.settings.statuses)}"
            )
        if case.is_closed:
            raise CaseError(f"case {case.display_number} is closed; reopen it first")
        if status in self.settings.closed_statuses:
            raise CaseError(f"{status!r} closes the case: close it with a resolution instead")
        if status != case.status:
            self.record(case, "status", actor, old=case.status, new=status)
            old, case.status = case.status, status
            case.updated_at = self.now
            self.clock.status_changed(case, old, status)
            waiting = status == self.settings.hold_status
            # Waiting on the customer starts the reminder and auto-close count afresh.
            case.waiting_since = self.now if waiting else None
            case.reminded_at = None

    def set_priority(self, case: Case, priority: str, actor: str | None) -> None:
        wanted = priority_of(priority)
        if wanted != case.priority:
            self.record(case, "priority", actor, old=case.priority, new=wanted)
            case.priority = wanted
            case.updated_at = self.now
            self.clock.fit(case)

    def close(self, case: Case, resolution: str, actor: str | None) -> None:
        """Close with a resolution; a closed case is locked until reopened."""
        if case.is_closed:
            raise CaseError(f"case {case.display_number} is already closed")
        if not resolution.strip():
            raise BadValue("closing a case needs a resolution")
        old = case.status
        case.status = self.settings.closed_statuses[0]
        case.is_closed = True
        case.resolution = resolution.strip()
        case.closed_at = self.now
        case.updated_at = self.now
        case.waiting_since = case.reminded_at = None
        self.record(case, "closed", actor, old=old, resolution=case.resolution)
        self.clock.closed(case, actor)

    def reopen(self, case: Case, actor: str | None) -> None:
        self.not_merged(case)
        if not case.is_closed:
            raise CaseError(f"case {case.display_number} is not closed")
        # The resolution belonged to the close; the history keeps it with the reopening.
        self.record(case, "reopened", actor, new=self.settings.reopen_status,
                    resolution=case.resolution)
        closed_at = case.closed_at
        case.status = self.settings.reopen_status
        case.is_closed = False
        case.closed_at = None
        case.resolution = None
        case.updated_at = self.now
        self.clock.reopened(case, closed_at)

    def assign(self, case: Case, owner: str | None, actor: str | None,
               why: str | None = None) -> list[Agent]:
        """Give ``case`` to ``owner`` — an active agent's address, ``queue:NAME`` (one of
        its active members, by the queue's mode) or None (nobody); the history says who
        did it and ``why`` (a rule's name). Returns the agents to alert: the new owner,
        or every active member of a shared queue."""
        staff = Staff(self.session)
        agent, queue = None, None
        if owner is not None and (name := queue_name(owner)) is not None:
            queue = staff.queue(name, lock=True)
            if queue is None:
                raise CaseError(f"there is no queue {name!r}")
            agent = staff.pick(queue)
        elif owner is not None:
            if "@" not in owner:
                raise BadValue(f"{owner!r} is neither an agent's address nor queue:NAME")
            agent = staff.agent(owner)
            if agent is None:
                raise CaseError(f"{owner.strip().lower()} is not an active agent")
        case.owner_agent, case.owner_queue = agent, queue
        case.updated_at = self.now
        self.record(case, "owner", actor, new=agent.email if agent else None,
                    queue=queue.name if queue else None, why=why)
        self.clock.fit(case)  # a rule may name the queue
        if agent is not None:
            return [agent]
        return [m.agent for m in queue.members if m.agent.active] if queue else []
    def rate(self, case: Case, rating: str, comment: str | None = None) -> bool:
        """The contact's satisfaction: ``good`` or ``bad`` (a later click changes it),
        and an optional comment; whether the rating changed to bad (the owner is then
        told)."""
        if rating not in RATINGS:
            raise BadValue(f"unknown rating {rating!r}; known: {', '.join(RATINGS)}")
        turned_bad = rating == "bad" and case.satisfaction != "bad"
        if rating != case.satisfaction:
            self.record(case, "satisfaction", case.supplied_email, old=case.satisfaction,
                        new=rating)
            case.satisfaction, case.satisfaction_at = rating, self.now
        if comment is not None and comment.strip():
            text = comment.strip()[:COMMENT_MAX]
            self.record(case, "satisfaction comment", case.supplied_email, comment=text)
            case.satisfaction_comment, case.satisfaction_at = text, self.now
        return turned_bad

    @staticmethod
    def not_merged(case: Case) -> None:
        """Refuse to change a case merged into another: its mail and work go there."""
        if case.merged_into_id is not None and case.merged_into is not None:
            into = case.merged_into.display_number
            raise CaseError(f"case {case.display_number} is merged into case {into}; "
                            f"work on case {into}")

    def record(self, case: Case, kind: str, actor: str | None, **detail: Any) -> None:
        """Append an entry to the case's feed, and queue it for the webhooks that want it."""
        self.session.add(Event.of(case.id, kind, actor, self.now, **detail))
        if self.hooks is not None:
            self.hooks.queue(self.session, case, kind, actor=actor, detail=detail,
                             now=self.now)
