"""Who wrote this mail, and what it may do: the stages around matching that apply trust.

``authenticate`` reads what the mail proves about its From (a trusted MTA's
Authentication-Results, or DKIM verified here, as the mailbox says). ``authorize``
gathers the rest of the evidence — how the mail found its case, whose token it came
through, the writer's part in the case — and applies identity.trust's decision: the
mail joins its case (with or without commands, as an agent or not), opens a new case,
is held for review, or is parked. No other stage decides who may act.
"""

from __future__ import annotations

from sqlalchemy import select

from mailcase.identity.addresses import canonical
from mailcase.identity.authentication import malformed, sender_verdict
from mailcase.identity.trust import Evidence, Policy, Standing, decide
from mailcase.pipeline.context import Context, Hold, Park
from mailcase.pipeline.matching import Match, role_of
from mailcase.store.models import Agent, Contact


def authenticate(ctx: Context) -> None:
    """Record what the mail proves about its From domain (``ctx.auth``)."""
    mailbox, sender = ctx.mailbox, ctx.parsed.sender
    if mailbox is None:
        return
    if not mailbox.trusted_authserv_ids and not mailbox.verify_dkim:
        return  # nothing to ask: the From stays merely claimed (UNCHECKED)
    ctx.auth = sender_verdict(
        results=ctx.parsed.headers.get("authentication-results", []),
        trusted=mailbox.trusted_authserv_ids,
        from_domain=sender.email.rpartition("@")[2] if sender else None,
        raw=lambda: b"".join(ctx.raw_slices()),
        verifier=ctx.services.dkim if mailbox.verify_dkim else None,
        unreadable=malformed(_head(ctx), ctx.parsed.headers),
    )
    ctx.notes.append(f"sender {ctx.auth}")


def _head(ctx: Context) -> bytes:
    """The raw header block, up to the first blank line (read a slice at a time)."""
    head = b""
    for piece in ctx.raw_slices():
        head += piece
        ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
        if ends:
            return head[:min(ends)]
    return head


def authorize(ctx: Context) -> None:
    """Decide what the writer may do, and act on what is decided about the case."""
    match, sender, mailbox = ctx.match, ctx.sender, ctx.mailbox
    policy = Policy(mailbox.foreign_reply, mailbox.unproven_reply) if mailbox else Policy()
    if match is None or sender is None:
        ctx.standing = decide(Evidence(None, sender=ctx.auth.result), policy)
        return
    evidence, holder = _evidence(ctx, match)
    standing = ctx.standing = decide(evidence, policy)
    ctx.found_by = match.by
    if standing.agent:
        ctx.acting_agent = holder if isinstance(holder, Agent) else _agent(ctx, sender.email)
    if standing.proof == "released" and ctx.inbound.released:
        ctx.notes.append("released by an operator: joins the case without commands")
    if standing.attach == "comment":
        if evidence.path == "token" and not evidence.token_holder:
            # Forwards and shared mailboxes are common; the token says whose copy it was.
            ctx.notes.append(f"reply token was sent to {_whom(holder)}, reply came from "
                             f"{sender.email}")
        return
    why = _why(ctx, match, evidence, holder, standing)
    if standing.attach == "park":
        raise Park(why)
    if standing.attach == "hold":
        raise Hold(f"held for review: {why}")
    ctx.notes.append(f"{why}; opened a new case")
    ctx.match = None


def _evidence(ctx: Context, match: Match) -> tuple[Evidence, Contact | Agent | None]:
    """The evidence about the writer of a mail that found a case, and the person its token
    was sent to (None without a token)."""
    sender = ctx.sender
    assert sender is not None
    holder: Contact | Agent | None = None
    token_holder = token_agent = False
    claimed = match.participant
    if claimed is not None:
        # A reply to an internal note stays internal, whoever sends it.
        ctx.reply_internal = claimed.kind == "n"
        holder = (ctx.session.get(Contact, claimed.id) if claimed.kind == "c"
                  else ctx.session.get(Agent, claimed.id))
        token_holder = holder is not None and holder.email == sender.email
        token_agent = token_holder and isinstance(holder, Agent) and holder.active
    evidence = Evidence(
        path=match.by, role=role_of(ctx.session, match.case, sender.email),
        token_holder=token_holder, token_agent=token_agent, sender=ctx.auth.result,
        # An archive import is the operator's own history: its replies join their
        # threads as if released (as comments, never with commands).
        released=ctx.inbound.released or ctx.inbound.source == "import",
    )
    return evidence, holder


def _why(ctx: Context, match: Match, evidence: Evidence, holder: Contact | Agent | None,
         standing: Standing) -> str:
    """One line for the record: why the mail did not join the case it found."""
    sender = ctx.sender
    assert sender is not None
    if evidence.path == "token":
        return f"reply through the token sent to {_whom(holder)} came from {sender.email}"
    case = match.case.display_number
    if standing.proof == "forged":
        return f"{sender.email} failed sender authentication ({ctx.auth.how}) in a reply " \
               f"to case {case} (found by {match.by})"
    role = "an agent whose sender is not authenticated" if evidence.role == "agent" else \
        "not on the case"
    return f"{sender.email} wrote in case {case}'s thread (found by {match.by}) but is {role}"


def _whom(holder: Contact | Agent | None) -> str:
    return holder.email if holder is not None else "a participant"


def _agent(ctx: Context, email: str) -> Agent | None:
    """The active agent with this (proven) address."""
    return ctx.session.scalar(select(Agent).where(
        Agent.email == canonical(email), Agent.active.is_(True)).limit(1))
