"""The people who answer cases: agents, the queues they take cases for, and the choice
of the member a queue hands a new case to.

Agents and queues live in the store and are managed from the command line (``mailcase
agents|queues``); assignment rules name them. An inactive agent keeps its history but
gets no new case and no alert. A queue's mode says how it hands out a case:

* ``round-robin`` — its active members in turn. The turn is a counter on the queue's
  row, read and advanced under that row's lock, so several instances on PostgreSQL
  never give two cases the same turn nor skip a member.
* ``least-busy`` — the active member owning the fewest open cases (ties: the earlier
  member), counted under the same lock.
* ``shared`` — the queue keeps the case and every active member hears of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailcase.cases.errors import BadValue, CaseError
from mailcase.cases.routing import owners_named, queue_name
from mailcase.config import Settings
from mailcase.store.models import Agent, Case, Queue, QueueMember
from mailcase.store.models.people import LEAST_BUSY, QUEUE_MODES, ROUND_ROBIN, SHARED


def _address(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email:
        raise BadValue(f"{email!r} is not an email address")
    return email


class Staff:
    """Agents and queues, within one session and transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- agents ---------------------------------------------------------------------

    def agent(self, email: str, *, active_only: bool = True) -> Agent | None:
        query = select(Agent).where(Agent.email == email.strip().lower())
        if active_only:
            query = query.where(Agent.active.is_(True))
        return self.session.scalar(query)

    def add_agent(self, email: str, name: str = "", *, follow_all: bool = False) -> Agent:
        """A new agent, or an existing one made active again (name and following as
        given: the operator's latest word)."""
        email = _address(email)
        agent = self.agent(email, active_only=False)
        if agent is None:
            agent = Agent(email=email, name=name, active=True, follow_all=follow_all)
            self.session.add(agent)
        else:
            agent.active, agent.follow_all = True, follow_all
            agent.name = name or agent.name
        self.session.flush()
        return agent

    def deactivate(self, email: str) -> Agent:
        agent = self.agent(email, active_only=False)
        if agent is None:
            raise CaseError(f"there is no agent {email.strip().lower()}")
        agent.active = False
        return agent

    def agents(self) -> Sequence[Agent]:
        return self.session.scalars(select(Agent).order_by(Agent.email)).all()

    def followers(self) -> Sequence[Agent]:
        """Active agents who hear of every new case."""
        return self.session.scalars(select(Agent).where(
            Agent.active.is_(True), Agent.follow_all.is_(True)).order_by(Agent.id)).all()

    # -- queues ---------------------------------------------------------------------

    def queue(self, name: str, *, lock: bool = False) -> Queue | None:
        query = select(Queue).where(Queue.name == name.strip()).options(
            selectinload(Queue.members).selectinload(QueueMember.agent))
        return self.session.scalar(query.with_for_update(of=Queue) if lock else query)

    def add_queue(self, name: str, members: Sequence[str], *, mode: str = ROUND_ROBIN,
                  address: str | None = None) -> Queue:
        name = name.strip()
        if not name or ":" in name:
            raise BadValue(f"{name!r} cannot name a queue (no ':' and not empty)")
        if mode not in QUEUE_MODES:
            raise BadValue(f"unknown mode {mode!r}; known: {', '.join(QUEUE_MODES)}")
        if self.queue(name) is not None:
            raise CaseError(f"there is a queue {name} already")
        queue = Queue(name=name, mode=mode, turn=0,
                      email=_address(address) if address else None, members=[])
        self.session.add(queue)
        self.session.flush()
        self.change_members(queue, add=members, remove=())
        return queue

    def change_members(self, queue: Queue, *, add: Sequence[str],
                       remove: Sequence[str]) -> None:
        """Add agents (they must exist) to ``queue`` and take others off it."""
        current = {m.agent.email: m for m in queue.members}
        for email in remove:
            member = current.pop(email.strip().lower(), None)
            if member is None:
                raise CaseError(f"{email.strip().lower()} is not a member of {queue.name}")
            queue.members.remove(member)
        for email in add:
            agent = self.agent(email, active_only=False)
            if agent is None:
                raise CaseError(f"there is no agent {email.strip().lower()} (add it first: "
                                "mailcase agents add EMAIL)")
            if agent.email not in current:
                member = QueueMember(queue_id=queue.id, agent=agent)
                queue.members.append(member)
                current[agent.email] = member
        self.session.flush()

    def queues(self) -> Sequence[Queue]:
        return self.session.scalars(select(Queue).order_by(Queue.name).options(
            selectinload(Queue.members).selectinload(QueueMember.agent))).all()

    def pick(self, queue: Queue) -> Agent | None:
        """The active member a new case of ``queue`` goes to (the queue's row is locked
        by the caller); None for a shared queue or one without active members."""
        active = [m.agent for m in queue.members if m.agent.active]
        if queue.mode == SHARED or not active:
            return None
        if queue.mode == LEAST_BUSY:
            counts: dict[int | None, int] = dict(self.session.execute(
                select(Case.owner_agent_id, func.count()).where(
                    Case.owner_agent_id.in_([a.id for a in active]),
                    Case.is_closed.is_(False)).group_by(Case.owner_agent_id)).all())
            return min(active, key=lambda a: counts.get(a.id, 0))
        chosen = active[queue.turn % len(active)]
        queue.turn += 1
        return chosen

    def problems(self, settings: Settings) -> list[str]:
        """Owners the settings name that are not here (an unknown or inactive agent, an
        unknown queue), each with the key that names it."""
        found = []
        for key, owner in owners_named(settings):
            name = queue_name(owner)
            if name is not None:
                if self.queue(name) is None:
                    found.append(f"{key}: there is no queue {name!r} "
                                 "(mailcase queues add NAME --members …)")
            elif self.agent(owner) is None:
                found.append(f"{key}: {owner} is not an active agent "
                             "(mailcase agents add EMAIL)")
        return found
