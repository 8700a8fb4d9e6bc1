"""Carrying out the commands of a reply, for the people allowed to give them.

``/cc`` and ``/uncc`` are for the case's contact and agents; ``/unsubscribe`` for a
collaborator leaving; ``/close``, ``/status``, ``/hold``, ``/priority``, ``/assign`` and
``/merge`` only for an agent. Every command but ``/internal`` (which only keeps words
private) needs a writer whose mail proved who they are (identity.trust: their own token,
or an authenticated From). A refused or failed command is noted on the inbound mail, and
explained by mail only to a proven writer: a forged mail must cause no mail to the
address it names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mailcase.cases import links, replies
from mailcase.cases.book import parse_number
from mailcase.cases.errors import CaseError
from mailcase.identity import eligibility
from mailcase.identity.tokens import Participant
from mailcase.outbound.compose import Recipient
from mailcase.pipeline.context import Context
from mailcase.reading.commands import AGENTS, Command, single_address
from mailcase.store.models import Agent, Case

log = logging.getLogger(__name__)


def carry_out(ctx: Context, case: Case, commands: list[Command], agent: Agent | None, *,
              proven: bool) -> None:
    """Apply each command in order for a ``proven`` writer; note refusals, and explain
    them by mail to a proven writer only."""
    refusals = []
    for command in commands:
        try:
            if not proven and command.name != "internal":
                raise CaseError("commands by mail need a reply through your own link or an "
                                "authenticated sender")
            _one(ctx, case, command, agent)
        except CaseError as exc:
            refusals.append(f"/{command.name} {command.argument}".strip() + f": {exc}")
    if refusals:
        ctx.notes.extend(refusals)
        if proven:
            explain(ctx, case, refusals)


def _one(ctx: Context, case: Case, command: Command, agent: Agent | None) -> None:
    sender = ctx.sender
    assert sender is not None
    actor = sender.email
    if command.name == "internal":
        return  # anyone may keep their own words private: the caller makes them a note
    if command.name in AGENTS:
        if agent is None:
            raise CaseError("only an agent replying through their own link may do that")
        _agent_command(ctx, case, command, actor)
        return
    if command.name == "unsubscribe":
        ctx.book.remove_collaborator(case, actor, actor)
        return
    if agent is None and case.contact_id != sender.id:
        raise CaseError("only the case's contact or an agent may change who follows it")
    address = single_address(command.argument.strip().strip("<>"))
    if address is None:
        raise CaseError(f"{command.argument!r} is not one plain email address")
    if command.name == "uncc":
        ctx.book.remove_collaborator(case, address, actor)
        return
    mailbox = ctx.services.settings.mailbox_for(case.mailbox) or ctx.services.settings.mailbox[0]
    refusal = eligibility.refusal(ctx.services.settings, mailbox, case.supplied_email or "",
                                  address)
    if refusal is not None:
        raise CaseError(f"{address} cannot follow this case: {refusal}")
    added = ctx.book.add_collaborator(case, address, "", actor)
    if added is not None:
        _mail_safely(ctx, lambda: ctx.services.notifier.welcome(ctx.session, case, added,
                                                                ctx.now))


def _agent_command(ctx: Context, case: Case, command: Command, actor: str) -> None:
    book = ctx.book
    if command.name == "close":
        book.close(case, command.argument, actor)
        _mail_safely(ctx, lambda: ctx.services.notifier.closed(ctx.session, case, ctx.now))
    elif command.name == "status":
        book.set_status(case, command.argument, actor)
    elif command.name == "hold":
        replies.hold(book, case, actor)
    elif command.name == "priority":
        book.set_priority(case, command.argument, actor)
    elif command.name == "assign":
        wanted = command.argument.strip()
        if not wanted:
            raise CaseError("/assign needs an agent's address or queue:NAME")
        alerted = book.assign(case, wanted, actor, why="by mail")
        _mail_safely(ctx, lambda: ctx.services.notifier.assigned(
            ctx.session, case, alerted, ctx.now, why=f"{actor} assigned it"))
    elif command.name == "merge":
        _merge(ctx, case, command.argument, actor)


def _merge(ctx: Context, case: Case, argument: str, actor: str) -> None:
    """``/merge NUMBER``: this case goes into case NUMBER; both contacts are told."""
    if not argument.strip():
        raise CaseError("say which case to merge into: /merge 00001000")
    target = ctx.book.get(parse_number(argument))
    links.merge(ctx.book, case, target, actor)
    _mail_safely(ctx, lambda: ctx.services.notifier.merged(ctx.session, case, target,
                                                           ctx.now))


def _mail_safely(ctx: Context, send: Callable[[], object]) -> None:
    """Queue mail in a savepoint: a mail that cannot be composed is noted, and costs
    neither the reply nor the command that caused it."""
    try:
        with ctx.session.begin_nested():
            send()
    except Exception as exc:  # noqa: BLE001 - the change is recorded; say what was not sent
        log.error("mail not queued inbound=%s message_id=%s: %s", ctx.inbound.id,
                  ctx.inbound.message_id, exc, extra=ctx.log_fields)
        ctx.notes.append(f"mail not sent: {exc}")


def explain(ctx: Context, case: Case, refusals: list[str]) -> None:
    """Mail the sender why some of what they asked was not done (never to a robot: robot
    mail never gets this far)."""
    sender = ctx.sender
    assert sender is not None
    try:
        with ctx.session.begin_nested():
            ctx.services.composer.queue(
                ctx.session, case, Recipient(sender.email, sender.name,
                                             Participant("c", sender.id)),
                template="command_refused", kind="notice", now=ctx.now,
                auto_submitted="auto-replied", extra={"refusals": refusals},
            )
    except Exception as exc:  # noqa: BLE001 - the reply is recorded; the notice is a courtesy
        log.error("command notice failed inbound=%s message_id=%s: %s", ctx.inbound.id,
                  ctx.inbound.message_id, exc, extra=ctx.log_fields)
