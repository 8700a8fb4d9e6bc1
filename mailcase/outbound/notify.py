"""Who hears about what happens on a case, and the mail they get: one per person, once.

* a case logged: its collaborators (the contact gets the acknowledgement);
* a case opened by hand, when asked: its contact, the acknowledgement;
* a public comment: the contact, the collaborators and the owner, never its author;
* an internal note: the owner (agents only), never a customer or collaborator;
* a close: the resolution, to the contact and the collaborators;
* a case given to an agent (or a shared queue): an alert to them, and to the agents who
  follow every case when it is new;
* a collaborator added later: one welcome mail with the case's whole public history;
* a merge: the contacts of both cases, once each, on the case merged into.

Every mail is written to the outbox in the caller's transaction, threads into the
case's conversation, and carries the recipient's own reply token. Notifications are
marked ``Auto-Submitted: auto-generated``; an agent's answer, written by a person, is
not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.identity.tokens import Participant
from mailcase.outbound.compose import Composer, Recipient, conversation
from mailcase.store.models import (
    Agent,
    Attachment,
    Blob,
    Case,
    Collaborator,
    Comment,
    Contact,
)


@dataclass(frozen=True)
class Sent:
    """How many mails a notification queued."""

    queued: int


class Notifier:
    """Queues the notifications of case events through the composer."""

    def __init__(self, composer: Composer, attachment_cap: int) -> None:
        self.composer = composer
        self.attachment_cap = attachment_cap

    def logged(self, session: Session, case: Case, now: datetime) -> Sent:
        """Tell the collaborators copied on a new case that it was logged."""
        people = [self._collaborator(session, c) for c in case.collaborators]
        return self._queue(session, case, people, "case_logged",
                           now=now, extra={})

    def acknowledge(self, session: Session, case: Case, now: datetime) -> Sent:
        """Send the contact of a case opened by hand the acknowledgement a mail would
        have got, with their own token to reply into the case."""
        return self._queue(session, case, list(self._contact(case)), "acknowledgement",
                           now=now, extra={})

    def merged(self, session: Session, source: Case, target: Case, now: datetime) -> Sent:
        """Tell the contacts of both cases, once each, that ``source`` was merged into
        ``target``; their tokens name the target, where their replies now go."""
        people = [*self._contact(source), *self._contact(target)]
        merged = {"number": source.display_number, "subject": source.subject}
        return self._queue(session, target, people, "case_merged", now=now,
                           extra={"merged": merged})

    def comment(self, session: Session, case: Case, comment: Comment, now: datetime,
                already_have: Collection[str] = ()) -> Sent:
        """Tell everyone on the case of a comment (agents only of an internal note),
        never its author. Customers and collaborators in ``already_have`` (the To and Cc
        of a proven writer's mail: they got it directly) are spared a second copy; an
        agent always gets theirs, which carries the token they answer with."""
        author = (comment.author_email or "").lower()
        have = {a.lower() for a in already_have}
        if comment.public:
            customers = [p for p in self._customers(session, case)
                         if p.email.lower() not in have]
            people = [*customers, *self._owner(case)]
            template = "agent_reply" if comment.author_kind == "agent" else "new_comment"
        else:
            people = [Recipient(p.email, p.name, Participant("n", p.participant.id))
                      for p in self._owner(case)]
            template = "internal_note"
        people = [p for p in people if p.email.lower() != author]
        if not people:  # the usual reply: its writer is the only one on the case
            return Sent(0)
        view = {"body": comment.body, "author": comment.author_name or comment.author_email,
                "public": comment.public,
                # Written in the mailbox's own name (`cases reply` without --as): the
                # templates sign it with the mailbox's name alone, not "Support, Support".
                "by_mailbox": self.composer.own.owns(comment.author_email or "")}
        listed, files = self._files(session, comment)
        auto = None if comment.author_kind == "agent" and comment.public else "auto-generated"
        return self._queue(session, case, people, template,
                           now=now, extra={"comment": view, "attachments": listed},
                           auto_submitted=auto, files=files)

    def _files(
        self, session: Session, comment: Comment
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, bytes]]]:
        """The comment's files: all attached while they fit under the cap, else listed."""
        rows = session.scalars(select(Attachment).where(Attachment.comment_id == comment.id)
                               .order_by(Attachment.id)).all()
        stored = [r for r in rows if r.blob_sha256 is not None]
        attach = 0 < sum(r.size for r in stored) <= self.attachment_cap
        files = []
        if attach:
            for row in stored:
                blob = session.get(Blob, row.blob_sha256)
                if blob is not None:
                    files.append((row.filename, row.content_type, blob.content))
        listed = [{"filename": r.filename, "size": r.size,
                   "attached": attach and r.blob_sha256 is not None} for r in rows]
        return listed, files

    def assigned(self, session: Session, case: Case, agents: Sequence[Agent], now: datetime,
                 *, why: str) -> Sent:
        """Alert agents that a case is theirs (or their shared queue's), each once, with
        their own agent token: a reply answers the customer, ``/internal`` makes a note."""
        people = [Recipient(a.email, a.name, Participant("a", a.id))
                  for a in agents if a.active]
        return self._queue(session, case, people, "case_assigned", now=now,
                           extra={"why": why, "owner": case.owner_name})

    def target_alert(self, session: Session, case: Case, agents: Sequence[Agent],
                     now: datetime, *, template: str, target: dict[str, Any]) -> Sent:
        """Warn agents that a service target is running out (``sla_warning``) or has
        (``sla_breach``), each once, with their own agent token to answer with."""
        people = [Recipient(a.email, a.name, Participant("a", a.id))
                  for a in agents if a.active]
        return self._queue(session, case, people, template, now=now,
                           extra={"target": target, "owner": case.owner_name})

    def reminder(self, session: Session, case: Case, now: datetime, *,
                 closes_at: str) -> Sent:
        """Remind the contact of a case waiting on them that it closes at ``closes_at``."""
        return self._queue(session, case, list(self._contact(case)), "hold_reminder",
                           now=now, extra={"closes_at": closes_at})

    def auto_closed(self, session: Session, case: Case, now: datetime) -> Sent:
        """Tell the contact and the collaborators that a case closed for want of a reply."""
        return self._queue(session, case, list(self._customers(session, case)),
                           "auto_closed", now=now, extra={})

    def closed(self, session: Session, case: Case, now: datetime) -> Sent:
        """Send the resolution to the contact and the collaborators, and the contact the
        satisfaction survey where the case's mailbox asks for one."""
        sent = self._queue(session, case, list(self._customers(session, case)),
                           "case_closed", now=now, extra={})
        return Sent(sent.queued + self.survey(session, case, now).queued)

    def survey(self, session: Session, case: Case, now: datetime) -> Sent:
        """The satisfaction survey: two signed one-click links, valid for
        satisfaction.valid_days."""
        settings = self.composer.settings
        box = settings.mailbox_for(case.mailbox)
        base = settings.satisfaction.link_base
        if box is None or not box.satisfaction_survey or base is None:
            return Sent(0)
        expires = int((now + timedelta(days=settings.satisfaction.valid_days)).timestamp())
        link = f"{base}/satisfaction/{self.composer.signer.make_survey(case.number, expires)}"
        return self._queue(session, case, list(self._contact(case)), "satisfaction_survey",
                           now=now, extra={"good_url": f"{link}?rating=good",
                                           "bad_url": f"{link}?rating=bad"})

    def rated_bad(self, session: Session, case: Case, now: datetime) -> Sent:
        """Alert the owner (or the queue's members) that the contact rated it bad."""
        people = [Recipient(a.email, a.name, Participant("a", a.id))
                  for a in self.owners(case)]
        return self._queue(session, case, people, "satisfaction_bad", now=now,
                           extra={"comment": case.satisfaction_comment})

    def welcome(self, session: Session, case: Case, collaborator: Collaborator,
                now: datetime) -> Sent:
        """One mail to a late collaborator with every public comment so far."""
        history = [
            {"body": c.body, "author": c.author_name or c.author_email,
             "created_at": c.created_at.strftime("%Y-%m-%d %H:%M UTC")}
            for c in case.comments if c.public
        ]
        person = self._collaborator(session, collaborator)
        return self._queue(session, case, [person], "collaborator_welcome",
                           now=now, extra={"history": history})

    @staticmethod
    def owners(case: Case) -> list[Agent]:
        """Who hears of a case's own news: its agent, else its queue's active members."""
        if case.owner_agent is not None:
            return [case.owner_agent] if case.owner_agent.active else []
        if case.owner_queue is not None:
            return [m.agent for m in case.owner_queue.members if m.agent.active]
        return []

    def _queue(self, session: Session, case: Case, people: list[Recipient], template: str, *,
               now: datetime, extra: dict[str, Any],
               auto_submitted: str | None = "auto-generated",
               files: Sequence[tuple[str, str, bytes]] = ()) -> Sent:
        if not people:
            return Sent(0)
        queued = 0
        # Every recipient answers the same mail: read the conversation once, before this
        # batch's own mails join it.
        thread = conversation(session, case)
        for person in _once(people):
            row = self.composer.queue(session, case, person, template=template,
                                      kind="notification" if auto_submitted else "reply",
                                      now=now, auto_submitted=auto_submitted, extra=extra,
                                      files=files, thread=thread)
            queued += row is not None
        return Sent(queued)

    def _customers(self, session: Session, case: Case) -> Iterator[Recipient]:
        yield from self._contact(case)
        for collaborator in case.collaborators:
            yield self._collaborator(session, collaborator)

    @staticmethod
    def _contact(case: Case) -> Iterator[Recipient]:
        if case.contact is not None:
            yield Recipient(case.contact.email, case.contact.name,
                            Participant("c", case.contact.id))

    @staticmethod
    def _owner(case: Case) -> Iterator[Recipient]:
        if case.owner_agent is not None and case.owner_agent.active:
            agent = case.owner_agent
            yield Recipient(agent.email, agent.name, Participant("a", agent.id))

    @staticmethod
    def _collaborator(session: Session, collaborator: Collaborator) -> Recipient:
        contact = session.get(Contact, collaborator.contact_id) if collaborator.contact_id else None
        contact_id = contact.id if contact is not None else 0
        return Recipient(collaborator.email, collaborator.name, Participant("c", contact_id),
                         collaborator=True)


def _once(people: list[Recipient]) -> Iterator[Recipient]:
    """Each address once, in the order given."""
    seen: set[str] = set()
    for person in people:
        if person.email.lower() not in seen:
            seen.add(person.email.lower())
            yield person
