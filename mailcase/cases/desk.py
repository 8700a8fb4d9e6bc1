"""What agents do to cases from the command line (and the API to come): open, clone,
reply and note with files, update, close, reopen and merge; read a case's files and the
raw mail back out.

Each action is one transaction: the case change, its comment, its feed entry and the
mail it causes (through the outbox) commit together or not at all. After the commit the
Desk rings the daemon's doorbell, so the mail leaves now rather than at its next look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases import links, replies, routing
from mailcase.cases.book import CaseBook, parse_number, priority_of
from mailcase.cases.errors import BadValue, CaseError
from mailcase.cases.files import NewFile, StoredFile, case_file, prepared, raw_mail, store
from mailcase.cases.finder import CaseFilter, Sort, find
from mailcase.cases.search import SearchPage
from mailcase.cases.search import search as search_cases
from mailcase.cases.staff import Staff
from mailcase.cases.targets import TargetRules
from mailcase.cases.views import case_detail
from mailcase.config import Settings
from mailcase.identity import eligibility
from mailcase.identity.addresses import OwnAddresses
from mailcase.outbound.notify import Notifier
from mailcase.outbound.webhooks import Webhooks
from mailcase.reading.commands import single_address
from mailcase.store.models import Agent, Case, Comment


@dataclass(frozen=True)
class Author:
    """Who acts: an agent's address and name (the mailbox itself when none is given),
    and ``via`` the API key they act through, if any: the history names both."""

    email: str
    name: str
    via: str | None = None
    mailbox: bool = False  # no agent named: the mailbox's own name

    @property
    def actor(self) -> str:
        """Who the case's history says did it: ``bob@…``, ``bob@… (api:crm)``, or
        ``api:crm`` when a key acts in the mailbox's name."""
        if self.via is None:
            return self.email
        return f"api:{self.via}" if self.mailbox else f"{self.email} (api:{self.via})"


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
        hooks: Webhooks | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.readers = readers
        self.notifier = notifier
        self.clock = clock
        self.ring = ring  # wakes a running daemon after a commit (see store.doorbell)
        self.targets = targets or TargetRules.of(settings)
        self.hooks = hooks or Webhooks.of(settings)

    @contextmanager
    def _book(self) -> Iterator[CaseBook]:
        with self.sessions.begin() as session:
            yield CaseBook(session, self.settings.cases, self.clock(), self.targets,
                           self.hooks)
        self.ring()

    def author(self, email: str | None, via: str | None = None) -> Author:
        """The agent ``email`` (None: the first mailbox), acting through API key
        ``via`` if given."""
        if email is None:
            box = self.settings.mailbox[0]
            return Author(box.address, box.name, via, mailbox=True)
        if "@" not in email:
            raise BadValue(f"{email!r} is not an email address")
        return Author(email.lower(), "", via)

    def list(self, wanted: CaseFilter, limit: int, *, sort: Sort | None = None,
             offset: int = 0) -> list[dict[str, Any]]:
        """Up to ``limit`` cases ``wanted`` describes after the first ``offset``, newest
        first (``due``: soonest due first) unless ``sort`` says otherwise; each row says
        when its next running target is due."""
        with self.readers() as session:
            return find(session, wanted, limit, self.settings.cases.statuses, sort=sort,
                        offset=offset)

    def search(self, query: str, *, limit: int = 20, cursor: str | None = None,
               open_only: bool = False, internal: bool = True) -> SearchPage:
        """The cases holding every word of ``query`` (words, "phrases", prefix*, an
        address or domain: cases.searchtext), best first, then newest; ``limit`` rows
        (1-200) from ``cursor``, the previous page's ``next_cursor``. ``internal=False``
        searches no internal notes. ``limited`` on the page: every word is in more texts
        than a search reads, and only the newest were searched (cases.search). BadValue
        for an empty query, a bad limit or cursor."""
        with self.readers() as session:
            return search_cases(session, query, limit=limit, cursor=cursor,
                                open_only=open_only, internal=internal)

    def exists(self, number: int) -> bool:
        """Whether there is a case ``number``."""
        with self.readers() as session:
            return session.scalar(select(Case.id).where(Case.number == number)) is not None

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
                created_by=author.actor,
            )
            if clipped:  # as for mail: the description holds 32 KB, a comment the rest
                book.comment(case, request.body, author_email=author.email,
                             author_name=author.name, author_kind="agent", public=True,
                                   actor=author.actor)
            if request.resolution is not None:
                book.close(case, request.resolution, author.actor)
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
            return links.clone(book, source, subject and subject.strip(), author.actor).number

    def merge(self, source: int, target: int, author: Author) -> tuple[links.Merged, int]:
        """Merge case ``source`` into case ``target`` and tell both contacts once; returns
        what moved and how many mails were queued."""
        with self._book() as book:
            # Both rows locked, the lower number first, as every merge takes them.
            locked = {n: book.get(n) for n in sorted({source, target})}
            merged = links.merge(book, locked[source], locked[target], author.actor)
            sent = self.notifier.merged(book.session, locked[source], locked[target],
                                        book.now)
            return merged, sent.queued

    def reply(self, number: int, body: str, author: Author, *, hold: bool | None = None,
              files: Sequence[NewFile] = ()) -> int:
        """A public answer, mailed to the contact, collaborators and owner with its
        ``files``; returns the number of mails queued. ``hold`` puts the case on hold
        (waiting on the customer), False keeps its status, None does as its mailbox says
        (``hold_on_reply``)."""
        _need_text(body)
        ready = self._prepared(files)
        with self._book() as book:
            case = book.get(number)
            comment = self._comment(book, case, body, author, ready, public=True)
            if hold or (hold is None and replies.holds_on_reply(self.settings, case)):
                replies.hold(book, case, author.actor)
            return self.notifier.comment(book.session, case, comment, book.now).queued

    def note(self, number: int, body: str, author: Author, *,
             files: Sequence[NewFile] = ()) -> int:
        """An internal note with its ``files``: recorded on the case, mailed to the owner
        only (never to the customer or collaborators); returns the number of mails
        queued."""
        _need_text(body)
        ready = self._prepared(files)
        with self._book() as book:
            case = book.get(number)
            comment = self._comment(book, case, body, author, ready, public=False)
            return self.notifier.comment(book.session, case, comment, book.now).queued

    def _prepared(self, files: Sequence[NewFile]) -> tuple[NewFile, ...]:
        """Every file cleaned and checked before anything is written: one refused, none
        recorded."""
        return tuple(prepared(file, self.settings.attachments.max_size) for file in files)

    def _comment(self, book: CaseBook, case: Case, body: str, author: Author,
                 files: Sequence[NewFile], *, public: bool) -> Comment:
        """An agent's comment on ``case`` with its files listed on it and stored."""
        self._agent(book.session, author)
        comment = book.comment(case, body, author_email=author.email,
                               author_name=author.name, author_kind="agent", public=public,
                               actor=author.actor)
        for file in files:
            assert file.content_type is not None  # (prepared)
            store(book.session, case, filename=file.filename, content_type=file.content_type,
                  content=file.content, limit=self.settings.attachments.max_size,
                  comment_id=comment.id)
        return comment

    @contextmanager
    def attachment(self, number: int, attachment_id: int) -> Iterator[StoredFile]:
        """File ``attachment_id`` of case ``number``, readable for the block."""
        with self.readers() as session:
            book = CaseBook(session, self.settings.cases, self.clock(), self.targets)
            yield case_file(session, book.get(number, lock=False), attachment_id)

    @contextmanager
    def raw_mail(self, inbound_id: int) -> Iterator[StoredFile]:
        """Accepted mail ``inbound_id`` exactly as stored, readable for the block."""
        with self.readers() as session:
            yield raw_mail(session, inbound_id)

    def add_collaborator(self, number: int, email: str, name: str,
                         author: Author | None) -> bool:
        """Keep ``email`` informed of case ``number``, if the mailbox's policy lets them
        (at most 20); a new collaborator gets one mail with the public history. Whether
        they were added (False: they already were)."""
        address = single_address(email)
        if address is None:
            raise BadValue(f"{email!r} is not one plain email address")
        with self._book() as book:
            case = book.get(number)
            mailbox = self.settings.mailbox_for(case.mailbox) or self.settings.mailbox[0]
            refusal = eligibility.refusal(self.settings, mailbox, case.supplied_email or "",
                                          address)
            if refusal is not None:
                raise CaseError(f"{address} cannot collaborate on case "
                                f"{case.display_number}: {refusal}")
            added = book.add_collaborator(case, address, name,
                                          author.actor if author else None)
            if added is not None:
                self.notifier.welcome(book.session, case, added, book.now)
            return added is not None

    def remove_collaborator(self, number: int, email: str, author: Author | None) -> None:
        """Stop keeping ``email`` informed of case ``number``; ``author`` None: nobody
        named (the history says mailcase)."""
        with self._book() as book:
            book.remove_collaborator(book.get(number), email,
                                     author.actor if author else None)

    def update(self, number: int, *, status: str | None, priority: str | None,
               owner: str | None, author: Author, parent: str | None = None) -> None:
        """Change what is given; ``owner`` and ``parent`` take "none" to clear them."""
        with self._book() as book:
            case = book.get(number)
            if parent is not None:
                new_parent = (None if parent.strip().lower() == "none"
                              else book.get(parse_number(parent), lock=False))
                links.set_parent(book, case, new_parent, author.actor)
            if status is not None:
                book.set_status(case, status, author.actor)
            if priority is not None:
                book.set_priority(case, priority, author.actor)
            if owner is not None:
                wanted = None if owner.strip().lower() == "none" else owner.strip()
                alerted = book.assign(case, wanted, author.actor, why="by hand")
                self.notifier.assigned(book.session, case, alerted, book.now,
                                       why=f"{author.actor} assigned it")

    def close(self, number: int, resolution: str, author: Author) -> int:
        """Close with a resolution, which goes to the contact and collaborators."""
        with self._book() as book:
            case = book.get(number)
            book.close(case, resolution, author.actor)
            return self.notifier.closed(book.session, case, book.now).queued

    def reopen(self, number: int, author: Author) -> None:
        with self._book() as book:
            book.reopen(book.get(number), author.actor)

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
