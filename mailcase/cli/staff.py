"""Who answers cases: ``mailcase agents add|list|deactivate|set-password`` and ``mailcase
queues add|list|members`` (the rules are in cases.staff and cases.passwords)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from mailcase.cases.errors import CaseError
from mailcase.cases.passwords import Passwords, check_strength
from mailcase.cases.staff import Staff
from mailcase.cli.common import UsageError, changing, new_password, opened
from mailcase.cli.output import emit_json, table
from mailcase.store.models import Agent, Queue
from mailcase.store.models.people import QUEUE_MODES, ROUND_ROBIN


def register(commands: Any) -> None:
    agents = commands.add_parser("agents", help="the people who own and answer cases")
    actions = agents.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add an agent, or make one active again")
    add.add_argument("email")
    add.add_argument("--name", default="")
    add.add_argument("--follow-all", action="store_true",
                     help="alert this agent of every new case, whoever owns it")
    add.set_defaults(handler=cmd_agents_add)
    listing = actions.add_parser("list", help="every agent, active or not")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_agents_list)
    off = actions.add_parser("deactivate", help="no new cases or alerts; the history stays")
    off.add_argument("email")
    off.set_defaults(handler=cmd_agents_deactivate)
    password = actions.add_parser(
        "set-password", help="the agent's password for the web console (asked for twice, "
                             "or --password-stdin); --clear takes it away")
    password.add_argument("email")
    given = password.add_mutually_exclusive_group()
    given.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin (for scripts)")
    given.add_argument("--clear", action="store_true",
                       help="remove the password: no password sign-in for this agent")
    password.set_defaults(handler=cmd_agents_set_password)

    queues = commands.add_parser("queues", help="groups of agents that take cases in turn")
    actions = queues.add_subparsers(dest="queues_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="a new queue")
    add.add_argument("name")
    add.add_argument("--members", required=True, type=_emails, metavar="A,B",
                     help="agents' addresses, comma-separated (agents add them first)")
    add.add_argument("--mode", choices=QUEUE_MODES, default=ROUND_ROBIN,
                     help="how a case picks a member (default round-robin)")
    add.add_argument("--address", metavar="EMAIL", help="the queue's own address, if any")
    add.set_defaults(handler=cmd_queues_add)
    listing = actions.add_parser("list", help="every queue with its members")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_queues_list)
    members = actions.add_parser("members", help="add agents to a queue or take them off")
    members.add_argument("name")
    members.add_argument("--add", type=_emails, default=[], metavar="A,B")
    members.add_argument("--remove", type=_emails, default=[], metavar="A,B")
    members.set_defaults(handler=cmd_queues_members)


def _emails(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _agent_view(agent: Agent) -> dict[str, Any]:
    return {"email": agent.email, "name": agent.name, "active": agent.active,
            "follow_all": agent.follow_all, "has_password": agent.password_hash is not None}


def _queue_view(queue: Queue) -> dict[str, Any]:
    return {"name": queue.name, "mode": queue.mode, "address": queue.email,
            "members": [{"email": m.agent.email, "active": m.agent.active}
                        for m in queue.members]}


def cmd_agents_add(args: argparse.Namespace) -> int:
    with changing(args) as (_, session):
        agent = Staff(session).add_agent(args.email, args.name, follow_all=args.follow_all)
        email = agent.email
    print(f"agent {email} is active" + (" and follows every new case" if args.follow_all
                                        else ""))
    return 0


def _listing(args: argparse.Namespace, rows_of: Callable[[Staff], list[dict[str, Any]]],
             cells: Callable[[dict[str, Any]], tuple[object, ...]], headers: list[str]) -> int:
    """Print what ``rows_of`` reads, as JSON or as a table of ``cells``."""
    with opened(args) as app, app.readers() as session:
        rows = rows_of(Staff(session))
    if args.json:
        emit_json(rows)
    else:
        table([cells(r) for r in rows], headers)
    return 0


def cmd_agents_list(args: argparse.Namespace) -> int:
    return _listing(
        args, lambda staff: [_agent_view(a) for a in staff.agents()],
        lambda r: (r["email"], r["name"], "yes" if r["active"] else "no",
                   "yes" if r["follow_all"] else "", "yes" if r["has_password"] else ""),
        ["EMAIL", "NAME", "ACTIVE", "FOLLOWS ALL", "PASSWORD"])


def cmd_agents_deactivate(args: argparse.Namespace) -> int:
    with changing(args) as (app, session):
        agent = Staff(session).deactivate(args.email)
        email = agent.email
        # The config naming them would stop the next start: change it first.
        if named := Staff(session).problems(app.settings):
            raise CaseError(f"{email} stays active: the config still names them "
                            f"({named[0].split(':')[0]}); change it, reload, then "
                            "deactivate")
    print(f"agent {email} gets no new cases or alerts; their cases keep them as owner")
    return 0


def cmd_agents_set_password(args: argparse.Namespace) -> int:
    if args.clear:
        with changing(args) as (_, session):
            email = Passwords(session).clear(args.email).email
        print(f"agent {email} has no password: no password sign-in to the console")
        return 0
    if not args.password_stdin and not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal: give --password-stdin to read the "
                         "password from it")
    password = new_password(args.email, from_stdin=args.password_stdin)
    check_strength(password)  # before opening the store: a short one is refused at once
    with changing(args) as (_, session):
        email = Passwords(session).set(args.email, password).email
    print(f"agent {email} can sign in to the console with this password")
    return 0


def cmd_queues_add(args: argparse.Namespace) -> int:
    if not args.members:
        raise UsageError("--members: name at least one agent")
    with changing(args) as (_, session):
        queue = Staff(session).add_queue(args.name, args.members, mode=args.mode,
                                         address=args.address)
        name, count = queue.name, len(queue.members)
    print(f"queue {name} ({args.mode}) with {count} member(s)")
    return 0


def cmd_queues_list(args: argparse.Namespace) -> int:
    return _listing(
        args, lambda staff: [_queue_view(q) for q in staff.queues()],
        lambda r: (r["name"], r["mode"], r["address"] or "",
                   ", ".join(m["email"] + ("" if m["active"] else " (inactive)")
                             for m in r["members"])),
        ["QUEUE", "MODE", "ADDRESS", "MEMBERS"])


def cmd_queues_members(args: argparse.Namespace) -> int:
    if not args.add and not args.remove:
        raise UsageError("say whom to --add or --remove")
    with changing(args) as (_, session):
        staff = Staff(session)
        queue = staff.queue(args.name, lock=True)
        if queue is None:
            raise CaseError(f"there is no queue {args.name!r}")
        staff.change_members(queue, add=args.add, remove=args.remove)
        members = [m.agent.email for m in queue.members]
    print(f"queue {args.name}: {', '.join(members) or 'no members'}")
    return 0
