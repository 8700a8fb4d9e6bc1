"""Links between cases: parent and child, a clone, and a merge.

The rules every door shares (CLI, mail commands, later the API): the hierarchy stays a
tree (no case its own ancestor), a clone carries a case's fields and people but not its
conversation, and a merge leaves one case to work on. A merged case is closed and points
at its target (``merged_into``); its comments and files move to the target and its
people join it, so the target holds the whole story, while its mail (Message-IDs,
tokens, subject tag) stays where it was: pipeline.matching follows ``merged_into`` to
thread later replies onto the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from mailcase.cases.book import MAX_COLLABORATORS, CaseBook
from mailcase.cases.errors import CaseError
from mailcase.store.db import changed_rows
from mailcase.store.models import Attachment, Case, Comment, Message


def set_parent(book: CaseBook, case: Case, parent: Case | None, actor: str | None) -> None:
    """Make ``parent`` the parent of ``case`` (None: no parent); a cycle is refused.

    The ancestors are read locked, so two changes at once that would close a loop wait
    for each other instead of both passing the check.
    """
    if parent is not None:
        _refuse_cycle(book, case, parent)
    old = case.parent
    if (old.id if old else None) == (parent.id if parent else None):
        return
    book.record(case, "parent", actor, old=old.display_number if old else None,
                new=parent.display_number if parent else None)
    case.parent = parent
    case.updated_at = book.now


def _refuse_cycle(book: CaseBook, case: Case, parent: Case) -> None:
    child = case.display_number
    ancestor: Case | None = parent
    seen: set[int] = set()
    while ancestor is not None and ancestor.id not in seen:  # (a loop already stored ends)
        if ancestor.id == case.id:
            why = ("a case cannot be its own parent" if parent.id == case.id else
                   f"it descends from case {child}, and a case cannot be its own ancestor")
            raise CaseError(f"case {parent.display_number} cannot be the parent of case "
                            f"{child}: {why}")
        seen.add(ancestor.id)
        above = ancestor.parent_id
        ancestor = (book.session.get(Case, above, with_for_update=True)
                    if above is not None else None)


def clone(book: CaseBook, source: Case, subject: str | None, actor: str | None) -> Case:
    """A new case with ``source``'s contact, fields and collaborators, not its comments
    (after Salesforce's Clone); an event on each case names the other."""
    case, _clipped = book.open(
        subject=subject or source.subject, description=source.description,
        mailbox=source.mailbox, contact=source.contact, origin=source.origin,
        parent=source.parent, priority=source.priority, created_by=actor,
        type=source.type, reason=source.reason,  # before its targets are chosen by them
    )
    case.account = source.account
    case.supplied_email, case.supplied_name = source.supplied_email, source.supplied_name
    case.supplied_company, case.supplied_phone = source.supplied_company, source.supplied_phone
    for person in source.collaborators:
        book.add_collaborator(case, person.email, person.name, actor)
    book.record(case, "cloned from", actor, number=source.display_number)
    book.record(source, "cloned to", actor, number=case.display_number)
    return case


@dataclass(frozen=True)
class Merged:
    """What a merge brought onto its target."""

    comments: int
    files: int
    collaborators: tuple[str, ...]
    left_out: tuple[str, ...]  # people the limit of collaborators kept off the target


def merge(book: CaseBook, source: Case, target: Case, actor: str | None) -> Merged:
    """Merge ``source`` into ``target``: source is closed as merged, and its opening
    text, comments, files and people are the target's from now on.

    The opening text (the description) becomes a comment on the target, dated when the
    source was opened and carrying the files of its first mail; the source's comments
    and their files move as they are (internal notes stay internal). The source's
    contact and collaborators become collaborators of the target, within the limit of
    twenty, without the mailbox's eligibility policy: an agent decided they belong.
    """
    _may_merge(source, target)
    moved = changed_rows(book.session, update(Comment).where(Comment.case_id == source.id)
                   .values(case_id=target.id))
    opening = _opening(book, source, target)
    files = _move_files(book, source, target, opening)
    book.session.expire(source, ["comments"])
    book.session.expire(target, ["comments"])
    added, left_out = _move_people(book, source, target, actor)
    if not source.is_closed:
        book.close(source, f"merged into case {target.display_number}", actor)
    source.merged_into_id = target.id
    source.updated_at = book.now
    book.session.expire(source, ["merged_into"])
    book.record(source, "merged", actor, into=target.display_number)
    book.record(target, "merged in", actor, number=source.display_number, comments=moved,
                files=files, collaborators=list(added), left_out=list(left_out))
    return Merged(moved, files, added, left_out)


def _may_merge(source: Case, target: Case) -> None:
    """Refuse a merge into itself, into a case already merged, or one closing a loop."""
    if source.id == target.id:
        raise CaseError(f"case {source.display_number} cannot be merged into itself")
    if source.merged_into is not None:
        raise CaseError(f"case {source.display_number} is already merged into case "
                        f"{source.merged_into.display_number}")
    if target.merged_into is not None:
        onward = target.merged_into
        if onward.id == source.id:
            raise CaseError(f"case {target.display_number} is merged into case "
                            f"{source.display_number}: merging back would make a loop")
        raise CaseError(f"case {target.display_number} is closed as merged into case "
                        f"{onward.display_number}; merge into that one instead")


def _opening(book: CaseBook, source: Case, target: Case) -> Comment:
    """The source's opening text as a comment on the target, by the source's contact."""
    first = book.session.scalar(
        select(Message.id).where(Message.case_id == source.id, Message.direction == "in")
        .order_by(Message.id).limit(1))
    email = source.contact.email if source.contact else source.supplied_email
    header = (f"Case {source.display_number} ({source.subject}), merged into this case, "
              f"was opened with:")
    comment = book.comment(
        target, f"{header}\n\n{source.description}".rstrip(), author_email=email,
        author_name=source.supplied_name,
        author_kind="contact" if source.contact_id == target.contact_id else "participant",
        public=True, message_id=first, answers=False,  # old text: the clock stays
    )
    comment.created_at = source.created_at
    return comment


def _move_files(book: CaseBook, source: Case, target: Case, opening: Comment) -> int:
    """Move every file of the source to the target: those of its first mail onto the
    opening comment, the others with their comments. Returns how many moved."""
    first = changed_rows(book.session, update(Attachment).where(
        Attachment.case_id == source.id, Attachment.comment_id.is_(None),
    ).values(case_id=target.id, comment_id=opening.id))
    rest = changed_rows(book.session, update(Attachment).where(Attachment.case_id == source.id)
                  .values(case_id=target.id))
    book.session.expire(opening, ["attachments"])
    return first + rest


def _move_people(book: CaseBook, source: Case, target: Case,
                 actor: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The source's contact, then its collaborators, join the target as collaborators
    while there is room; returns who joined and who the limit left out."""
    people = [(c.email, c.name) for c in source.collaborators]
    if source.contact is not None:
        people.insert(0, (source.contact.email, source.contact.name))
    owner = target.contact.email if target.contact else target.supplied_email
    added: list[str] = []
    left_out: list[str] = []
    for email, name in people:
        if email == owner or any(c.email == email for c in target.collaborators):
            continue
        if len(target.collaborators) >= MAX_COLLABORATORS:
            left_out.append(email)
            continue
        if book.add_collaborator(target, email, name, actor) is not None:
            added.append(email)
    return tuple(added), tuple(left_out)
