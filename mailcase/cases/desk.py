"""What agents do to cases from the command line: open, clone, reply, note, update,
close, reopen and merge.

Each action is one transaction: the case change, its comment, its feed entry and the
mail it causes (through the outbox) commit together or not at all. After the commit the
Desk rings the daemon's doorbell, so the mail leaves now rather than at its next look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases import links, replies, routing
from mailcase.cases.book import CaseBook, parse_number, priority_of
from mailcase.cases.errors import BadValue, CaseError
from mailcase.cases.search import SearchPage
from mailcase.cases.search import search as search_cases
from mailcase.cases.staff import Staff
from mailcase.cases.targets import TargetRules, clock_filtered, next_due_query
from mailcase.cases.views import SUMMARY_LOADS, case_detail, case_summary
from mailcase.config import Settings
from mailcase.identity.addresses import OwnAddresses
from mailcase.outbound.notify import Notifier
from mailcase.reading.commands import single_address
from mailcase.store.models import Agent, Case, Queue


@dataclass(frozen=True)
class Author:
    """Who acts: an agent's address and name (the mailbox itself when none is given)."""

    email: str
    name: str


@dataclass(frozen=True)
class NewCase:
    """A case an agent opens by hand (after Salesforce's "Create Cases"): for a phone
    call, a walk-in, a mail that went to someone's own inbox.

    ``resolution`` closes it at once (``is_closed_on_create``); ``notify_contact`` mails
    the contact the acknowledgement (or, when closed at once, the resolution) with
    their own reply token, so they can write into it.
    """

    email: str
    subject: str
    body: str = ""
    origin: str = "Phone"
    priority: str = "Medium"
    parent: int | None = None
    notify_contact: bool = False
    resolution: str | None = None
    assign_using_rules: bool = False  # an owner as if it had come by mail, alerted


@dataclass(frozen=True)
class Opened:
    """A case opened by hand: its number and how many mails went out about it."""

    number: int
    queued: int


class Desk:
    """Agent actions over the store, with the case rules of CaseBook.

    Made from its parts (``App.desk`` hands them over), so the case rules stay below the
    wiring: every door that acts for an agent gets the same Desk.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        readers: sessionmaker[Session],
        notifier: Notifier,
        clock: Callable[[], datetime],
        ring: Callable[[], None] = lambda: None,
        targets: TargetRules | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.readers = readers
        self.notifier = notifier
        self.clock = clock
        self.ring = ring  # wakes a running daemon after a commit (see store.doorbell)
        self.targets = targets or TargetRules.of(settings)

    @contextmanager
    def _book(self) -> Iterator[CaseBook]:
        with self.sessions.begin() as session:
            yield CaseBook(session, self.settings.cases, self.clock(), self.targets)
        self.ring()

    def author(self, email: str | None) -> Author:
        if email is None:
            box = self.settings.mailbox[0]
            return Author(box.address, box.name)
        if "@" not in email:
            raise BadValue(f"{email!r} is not an email address")
        return Author(email.lower(), "")

    def list(self, *, status: str | None, open_only: bool, limit: int,
             owner: str | None = None, queue: str | None = None,
             unassigned: bool = False, clock: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` cases, of one status or open ones if asked, of one owner
        or queue or nobody's; a status the lifecycle does not know is refused, as an
        update to it is. ``clock``: only cases with a target running, soonest due first
        (``due``), marked escalated (``escalated``), or with a target overdue and not
        yet met (``breached``). Each row says when its next running target is due."""
        if status is not None and status not in self.settings.cases.statuses:
            raise BadValue(f"unknown status {status!r}; known: "
                           f"{', '.join(self.settings.cases.statuses)}")
        with self.readers() as session:
            next_due = next_due_query()
            query = (
                select(Case, next_due.c.due_at).outerjoin(next_due, next_due.c.case_id == Case.id)
                .order_by(Case.number.desc()).limit(limit).options(*SUMMARY_LOADS)
            )
            query = clock_filtered(query, clock, next_due)
            if status is not None:
                query = query.where(Case.status == status)
            if open_only:
                query = query.where(Case.is_closed.is_(False))
            if owner is not None:
                query = query.where(Case.owner_agent.has(Agent.email == owner.strip().lower()))
            if queue is not None:
                query = query.where(Case.owner_queue.has(Queue.name == queue.strip()))
            if unassigned:
                query = query.where(Case.owner_agent_id.is_(None), Case.owner_queue_id.is_(None))
            return [case_summary(case, due) for case, due in session.execute(query)]

    def search(self, query: str, *, limit: int = 20, cursor: str | None = None,
               open_only: bool = False, internal: bool = True) -> SearchPage:
        """The cases holding every word of ``query`` (words, "phrases", prefix*, an
        address or domain: cases.searchtext), best first, then newest; ``limit`` rows
        (1-200) from ``cursor``, the previous page's ``next_cursor``. ``internal=False``
        searches no internal notes. BadValue for an empty query, a bad limit or cursor."""
        with self.readers() as session:
            return search_cases(session, query, limit=limit, cursor=cursor,
                                open_only=open_only, internal=internal)

    def show(self, number: int, viewer: str | None = None) -> dict[str, Any]:
        """One case; when ``viewer`` is its owner, the case is marked read for them."""
        with self.readers() as session:
            book = CaseBook(session, self.settings.cases, self.clock(), self.targets)
            case = book.get(number, lock=False)
            detail = case_detail(session, case)
        owner = case.owner_agent.email if case.owner_agent else None
        if viewer is not None and viewer == owner and case.has_unread_comments_for_owner:
            with self._book() as book:
                book.get(number).has_unread_comments_for_owner = False
        return detail

    def new(self, request: NewCase, author: Author) -> Opened:
        """Open a case by hand for ``request.email``, in the first mailbox."""
        email = self._contact_address(request.email)
        if not request.subject.strip():
            raise BadValue("a case needs a subject")
        origin = request.origin.strip()
        if not origin:
            raise BadValue("the origin is empty (e.g. Phone, Web, Email)")
        with self._book() as book:
            parent = book.get(request.parent) if request.parent is not None else None
            case, clipped = book.open(
                subject=request.subject.strip(), description=request.body,
                mailbox=self.settings.mailbox[0].address, contact=book.contact(email),
                origin=origin, parent=parent, priority=priority_of(request.priority),
                created_by=author.email,
            )
            if clipped:  # as for mail: the description holds 32 KB, a comment the rest
                book.comment(case, request.body, author_email=author.email,
                             author_name=author.name, author_kind="agent", public=True)
            if request.resolution is not None:
                book.close(case, request.resolution, author.email)
                case.is_closed_on_create = True
            queued = 0
            if request.assign_using_rules:
                queued += self._route(book, case, request)
            if request.notify_contact:
                notifier = self.notifier
                sent = (notifier.closed(book.session, case, book.now) if case.is_closed
                        else notifier.acknowledge(book.session, case, book.now))
                queued += sent.queued
            return Opened(case.number, queued)

    def _route(self, book: CaseBook, case: Case, request: NewCase) -> int:
        """Give a case opened by hand the owner the routing would give its mail, and
        alert that owner and the agents who follow every case; the mails queued."""
        facts = routing.Facts(sender=case.supplied_email or "", subject=case.subject,
                              body=request.body, priority=case.priority, mailbox=case.mailbox)
        chosen = routing.route(self.settings, facts)
        alerted = [] if chosen is None else book.assign(case, chosen.owner, None,
                                                        why=chosen.why)
        why = f"a new case ({chosen.why if chosen else 'no owner'})"
        return self.notifier.assigned(book.session, case,
                                      [*alerted, *Staff(book.session).followers()],
                                      book.now, why=why).queued

    def _contact_address(self, text: str) -> str:
        email = single_address(text.strip().strip("<>"))
        if email is None:
            raise BadValue(f"{text!r} is not one plain email address")
        if OwnAddresses.of(self.settings).owns(email):
            raise CaseError(f"{email} is one of mailcase's own addresses, never a contact")
        return email

    def clone(self, number: int, subject: str | None, author: Author) -> int:
        """A copy of case ``number`` (contact, fields, collaborators; not the comments);
        returns the new case's number."""
        if subject is not None and not subject.strip():
            raise BadValue("the subject is empty")
        with self._book() as book:
            source = book.get(number)
            return links.clone(book, source, subject and subject.strip(), author.email).number

    def merge(self, source: int, target: int, author: Author) -> tuple[links.Merged, int]:
        """Merge case ``source`` into case ``target`` and tell both contacts once; returns
        what moved and how many mails were queued."""
        with self._book() as book:
            # Both rows locked, the lower number first, as every merge takes them.
            locked = {n: book.get(n) for n in sorted({source, target})}
            merged = links.merge(book, locked[source], locked[target], author.email)
            sent = self.notifier.merged(book.session, locked[source], locked[target],
                                        book.now)
            return merged, sent.queued

    def reply(self, number: int, body: str, author: Author, *, hold: bool | None = None) -> int:
        """A public answer, mailed to the contact, collaborators and owner; returns the
        number of mails queued. ``hold`` puts the case on hold (waiting on the customer),
        False keeps its status, None does as its mailbox says (``hold_on_reply``)."""
        _need_text(body)
        with self._book() as book:
            case = book.get(number)
            self._agent(book.session, author)
            comment = book.comment(case, body, author_email=author.email,
                                   author_name=author.name, author_kind="agent", public=True)
            if hold or (hold is None and replies.holds_on_reply(self.settings, case)):
                replies.hold(book, case, author.email)
            return self.notifier.comment(book.session, case, comment,
                                                      book.now).queued

    def note(self, number: int, body: str, author: Author) -> int:
        """An internal note: recorded on the case, mailed to the owner only (never to the
        customer or collaborators); returns the number of mails queued."""
        _need_text(body)
        with self._book() as book:
            case = book.get(number)
            self._agent(book.session, author)
            comment = book.comment(case, body, author_email=author.email,
                                   author_name=author.name, author_kind="agent", public=False)
            return self.notifier.comment(book.session, case, comment,
                                                      book.now).queued

    def update(self, number: int, *, status: str | None, priority: str | None,
               owner: str | None, author: Author, parent: str | None = None) -> None:
        """Change what is given; ``owner`` and ``parent`` take "none" to clear them."""
        with self._book() as book:
            case = book.get(number)
            if parent is not None:
                new_parent = (None if parent.strip().lower() == "none"
                              else book.get(parse_number(parent), lock=False))
                links.set_parent(book, case, new_parent, author.email)
            if status is not None:
                book.set_status(case, status, author.email)
            if priority is not None:
                book.set_priority(case, priority, author.email)
            if owner is not None:
                wanted = None if owner.strip().lower() == "none" else owner.strip()
                alerted = book.assign(case, wanted, author.email, why="by hand")
                self.notifier.assigned(book.session, case, alerted, book.now,
                                       why=f"{author.email} assigned it")

    def close(self, number: int, resolution: str, author: Author) -> int:
        """Close with a resolution, which goes to the contact and collaborators."""
        with self._book() as book:
            case = book.get(number)
            book.close(case, resolution, author.email)
            return self.notifier.closed(book.session, case, book.now).queued

    def reopen(self, number: int, author: Author) -> None:
        with self._book() as book:
            book.reopen(book.get(number), author.email)

    @staticmethod
    def _agent(session: Session, author: Author) -> Agent:
        agent = session.scalar(select(Agent).where(Agent.email == author.email))
        if agent is None:
            agent = Agent(email=author.email, name=author.name, active=True)
            session.add(agent)
            session.flush()
        return agent


def _need_text(body: str) -> None:
    if not body.strip():
        raise BadValue("the text is empty")
