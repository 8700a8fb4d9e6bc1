"""How cases look from outside: the dictionaries behind ``cases list|show`` and their ``--json``.

These field names are part of the public contract (DESIGN.md); change them only with care.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailcase.cases.targets import describe
from mailcase.store.models import Attachment, Case, CaseTarget, Comment, Event, Message


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# What case_summary reads beyond the case's row, loaded for a whole list at once.
SUMMARY_LOADS = (selectinload(Case.contact), selectinload(Case.parent),
                 selectinload(Case.owner_agent), selectinload(Case.owner_queue))


def case_summary(case: Case, due_at: datetime | None = None) -> dict[str, Any]:
    """One line of ``cases list``; ``due_at``: when its next running target is due."""
    return {
        "number": case.display_number,
        "subject": case.subject,
        "status": case.status,
        "is_closed": case.is_closed,
        "priority": case.priority,
        "origin": case.origin,
        "supplied_email": case.supplied_email,
        "contact": case.contact.email if case.contact else None,
        "owner": case.owner_name,  # the agent's address, else queue:NAME
        "queue": case.owner_queue.name if case.owner_queue else None,
        "parent": case.parent.display_number if case.parent else None,
        "is_escalated": case.is_escalated,
        "created_at": _when(case.created_at),
        "closed_at": _when(case.closed_at),
        "updated_at": _when(case.updated_at),
        "due_at": _when(due_at),
    }


def _attachment(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,  # for `cases attachment NUMBER ID`
        "filename": attachment.filename,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "content_id": attachment.content_id,
        "stored": attachment.blob_sha256 is not None,
    }


def _comment(comment: Comment, verdicts: dict[int, str]) -> dict[str, Any]:
    return {
        "author": comment.author_email,
        "author_name": comment.author_name,
        "body": comment.body,
        "public": comment.public,
        "created_at": _when(comment.created_at),
        "attachments": [_attachment(a) for a in comment.attachments],
        # What the mail proved about its From, when its mailbox checks (else None).
        "sender_auth": verdicts.get(comment.message_id) if comment.message_id else None,
    }


def _verdicts(session: Session, case: Case) -> tuple[dict[int, str], str | None]:
    """The sender-authentication verdicts of the mail behind the case's comments by
    message id (a merged case's mail among them), and that of the mail that opened it."""
    mail = {c.message_id for c in case.comments if c.message_id is not None}
    rows = session.execute(
        select(Message.id, Message.case_id, Message.sender_auth).where(
            (Message.case_id == case.id) | Message.id.in_(mail), Message.direction == "in")
        .order_by(Message.id)
    ).all()
    verdicts = {row.id: row.sender_auth for row in rows if row.sender_auth}
    opening = next((row.sender_auth for row in rows if row.case_id == case.id), None)
    return verdicts, opening


def _reason(d: dict[str, Any]) -> str:
    return f": {d['reason']}" if d.get("reason") else ""


def _bounce(d: dict[str, Any]) -> str:
    kind = "hard" if d.get("permanent") else "soft"
    status = f", {d['status']}" if d.get("status") else ""
    said = f": {d['diagnostic']}" if d.get("diagnostic") else ""
    # A report that came to no signed return path only quotes our Message-ID: anyone
    # who saw it could have written it, so it is shown for what it is.
    doubt = "" if d.get("verified", True) else "unverified report of a "
    return (f"{doubt}{kind} bounce for {d.get('email')} (outbound {d.get('outbound_id')}"
            f"{status}){said}")


def _reopened(d: dict[str, Any]) -> str:
    was = f" (its resolution was: {d['resolution']})" if d.get("resolution") else ""
    return f"reopened as {d.get('new')}{was}"


def _owner(d: dict[str, Any]) -> str:
    queue = f"queue:{d['queue']}" if d.get("queue") else None
    who = d.get("new") or queue or "nobody"
    if d.get("new") and queue:
        who += f" (for {queue})"
    return f"owner → {who}" + (f", {d['why']}" if d.get("why") else "")
def _opened(d: dict[str, Any]) -> str:
    child = f", child of case {d['parent']}" if d.get("parent") else ""
    return f"case opened ({d.get('origin') or 'unknown origin'}){child}"


def _merged_in(d: dict[str, Any]) -> str:
    joined = d.get("collaborators") or []
    left = d.get("left_out") or []
    people = f"; collaborators added: {', '.join(joined)}" if joined else ""
    people += f"; not added (the limit of collaborators): {', '.join(left)}" if left else ""
    return (f"case {d.get('number')} merged in: {d.get('comments', 0)} comment(s) and "
            f"{d.get('files', 0)} file(s) moved here{people}")


# What each kind of feed entry says, from its detail.
SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "created": _opened,
    "comment": lambda d: "public comment" if d.get("public") else "internal note",
    "status": lambda d: f"status {d.get('old')} → {d.get('new')}",
    "priority": lambda d: f"priority {d.get('old')} → {d.get('new')}",
    "owner": _owner,
    "closed": lambda d: f"closed: {d.get('resolution') or '(no resolution)'}",
    "reopened": _reopened,
    "collaborator added": lambda d: f"collaborator added: {d.get('email')}",
    "collaborator removed": lambda d: f"collaborator removed: {d.get('email')}",
    "bounce": _bounce,
    "undeliverable": lambda d: (f"{d.get('email')} marked undeliverable{_reason(d)}; "
                                "no more mail to it until cleared"),
    "mail skipped": lambda d: f"{d.get('email')} skipped{_reason(d)}",
    "mail held": lambda d: (f"outbound {d.get('outbound_id')} to {d.get('email')} "
                            f"held{_reason(d)}"),
    "mail failed": lambda d: (f"outbound {d.get('outbound_id')} to {d.get('email')} "
                              f"failed{_reason(d)}"),
    "parent": lambda d: f"parent {d.get('old') or 'none'} → {d.get('new') or 'none'}",
    "cloned from": lambda d: f"cloned from {d.get('number')}",
    "cloned to": lambda d: f"cloned to {d.get('number')}",
    "merged": lambda d: f"merged into case {d.get('into')}",
    "merged in": _merged_in,
    "automatic reply": lambda d: f"automatic reply noted, not added ({d.get('reason')})",
    "sla": lambda d: f"service targets: {d.get('new') or 'none'} (was {d.get('old') or 'none'})",
    "target met": lambda d: (f"{_target(d)} met" + (" late" if d.get("late") else "")
                             + f" (due {_short(d.get('due_at'))})"),
    "target warning": lambda d: f"{_target(d)} due soon (by {_short(d.get('due_at'))})",
    "target breached": lambda d: (f"{_target(d)} overdue (was due {_short(d.get('due_at'))}); "
                                  "escalated"),
    "satisfaction": lambda d: f"the contact rated it {d.get('new')}"
                              + (f" (was {d['old']})" if d.get("old") else ""),
    "satisfaction comment": lambda d: f"the contact commented: {d.get('comment')}",
    "reminded": lambda d: f"customer reminded; closes {_short(d.get('closes_at'))} "
                          "without a reply",
}


def _target(d: dict[str, Any]) -> str:
    return f"{str(d.get('target', 'target')).replace('_', ' ')} (rule {d.get('sla')})"


def _short(when: Any) -> str:
    """An ISO time as the history shows it: to the minute, in UTC."""
    return str(when or "?")[:16].replace("T", " ") + (" UTC" if when else "")


def summary_of(event: Event) -> str:
    """One line saying what an entry of the feed means, for people."""
    describe = SUMMARIES.get(event.kind)
    return describe(event.detail or {}) if describe else event.kind


def _event(event: Event) -> dict[str, Any]:
    return {"kind": event.kind, "actor": event.actor, "at": _when(event.created_at),
            "summary": summary_of(event), "detail": event.detail or {}}


def case_detail(session: Session, case: Case) -> dict[str, Any]:
    """Everything ``cases show`` tells about one case."""
    first_files = session.scalars(
        select(Attachment).where(Attachment.case_id == case.id, Attachment.comment_id.is_(None))
        .order_by(Attachment.id)
    ).all()
    verdicts, opening = _verdicts(session, case)
    children = session.scalars(
        select(Case.number).where(Case.parent_id == case.id).order_by(Case.number))
    # In the order written: a merged case's comments keep their dates among these. Their
    # files come in one query for all of them, not one each.
    comments = sorted(session.scalars(
        select(Comment).where(Comment.case_id == case.id)
        .options(selectinload(Comment.attachments))).all(),
        key=lambda c: (c.created_at, c.id))
    targets = session.scalars(
        select(CaseTarget).where(CaseTarget.case_id == case.id).order_by(CaseTarget.id)).all()
    running = [t.due_at for t in targets if t.met_at is None and t.paused_at is None]
    return {
        **case_summary(case, min(running, default=None)),
        "sla": case.sla,
        "targets": [describe(t) for t in targets],
        "first_response_seconds": case.first_response_seconds,
        "business_first_response_seconds": case.business_first_response_seconds,
        "resolution_seconds": case.resolution_seconds,
        "business_resolution_seconds": case.business_resolution_seconds,
        "satisfaction": ({"rating": case.satisfaction, "comment": case.satisfaction_comment,
                          "at": _when(case.satisfaction_at)} if case.satisfaction else None),
        "children": [f"{number:08d}" for number in children],
        "merged_into": case.merged_into.display_number if case.merged_into else None,
        "description": case.description,
        "reason": case.reason,
        "type": case.type,
        "resolution": case.resolution,
        "supplied_name": case.supplied_name,
        "supplied_company": case.supplied_company,
        "supplied_phone": case.supplied_phone,
        "account": case.account.name if case.account else None,
        "mailbox": case.mailbox,
        "is_closed_on_create": case.is_closed_on_create,
        "has_unread_comments_for_owner": case.has_unread_comments_for_owner,
        "attachments": [_attachment(a) for a in first_files],
        "collaborators": [{"email": c.email, "name": c.name} for c in case.collaborators],
        "sender_auth": opening,
        "comments": [_comment(c, verdicts) for c in comments],
        "events": [_event(e) for e in session.scalars(
            select(Event).where(Event.case_id == case.id).order_by(Event.id))],
    }
