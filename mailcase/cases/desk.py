"""What agents do to cases from the command line: reply, note, update, close, reopen.

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
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailcase.cases.book import CaseBook
from mailcase.cases.errors import BadValue
from mailcase.cases.views import case_detail, case_summary
from mailcase.config import Settings
from mailcase.outbound.notify import Notifier
from mailcase.store.models import Agent, Case, Queue


@dataclass(frozen=True)
class Author:
    """Who acts: an agent's address and name (the mailbox itself when none is given)."""

    email: str
    name: str


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
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.readers = readers
        self.notifier = notifier
        self.clock = clock
        self.ring = ring  # wakes a running daemon after a commit (see store.doorbell)

    @contextmanager
    def _book(self) -> Iterator[CaseBook]:
        with self.sessions.begin() as session:
            yield CaseBook(session, self.settings.cases, self.clock())
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
             unassigned: bool = False) -> list[dict[str, Any]]:
        """The newest ``limit`` cases, of one status or open ones if asked, of one owner
        or queue or nobody's; a status the lifecycle does not know is refused, as an
        update to it is."""
        if status is not None and status not in self.settings.cases.statuses:
            raise BadValue(f"unknown status {status!r}; known: "
                           f"{', '.join(self.settings.cases.statuses)}")
        with self.readers() as session:
            query = (
                select(Case).order_by(Case.number.desc()).limit(limit)
                .options(selectinload(Case.contact), selectinload(Case.parent),
                         selectinload(Case.owner_agent), selectinload(Case.owner_queue))
            )
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
            return [case_summary(c) for c in session.scalars(query)]

    def show(self, number: int, viewer: str | None = None) -> dict[str, Any]:
        """One case; when ``viewer`` is its owner, the case is marked read for them."""
        with self.readers() as session:
            book = CaseBook(session, self.settings.cases, self.clock())
            case = book.get(number, lock=False)
            detail = case_detail(session, case)
        owner = case.owner_agent.email if case.owner_agent else None
        if viewer is not None and viewer == owner and case.has_unread_comments_for_owner:
            with self._book() as book:
                book.get(number).has_unread_comments_for_owner = False
        return detail

    def reply(self, number: int, body: str, author: Author) -> int:
        """A public answer, mailed to the contact, collaborators and owner; returns the
        number of mails queued."""
        _need_text(body)
        with self._book() as book:
            case = book.get(number)
            self._agent(book.session, author)
            comment = book.comment(case, body, author_email=author.email,
                                   author_name=author.name, author_kind="agent", public=True)
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
               owner: str | None, author: Author) -> None:
        with self._book() as book:
            case = book.get(number)
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
