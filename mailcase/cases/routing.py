"""Who a new case goes to: assignment rules, the mailbox's owner, the default owner.

After Salesforce's assignment rules and routing addresses: the rules are read in file
order and the first whose conditions all hold names the owner; a case no rule places
goes to its mailbox's ``owner``, else to ``cases.default_owner``, else stays
unassigned. An owner is an agent's address or ``queue:NAME``; a queue hands the case
to one of its active members (round-robin or least-busy, see staff). Matching is
pure: it looks at the facts of the mail, never at the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mailcase.config import QUEUE_PREFIX, AssignmentRule, MailCriteria, Settings


@dataclass(frozen=True)
class Facts:
    """What the conditions of a rule look at: the new case's mail."""

    sender: str
    subject: str
    body: str
    priority: str
    mailbox: str = ""
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)  # lower-case names


@dataclass(frozen=True)
class Route:
    """Where a case goes and why (said in its history)."""

    owner: str  # an agent's address or queue:NAME
    why: str


def holds(criteria: MailCriteria, facts: Facts) -> bool:
    """Whether every condition ``criteria`` sets holds for ``facts`` (words ignore case)."""
    domain = "@" + facts.sender.rpartition("@")[2]
    if criteria.senders and facts.sender not in criteria.senders \
            and domain not in criteria.senders:
        return False
    subject, body = facts.subject.lower(), facts.body.lower()
    if criteria.subject_words and not any(w.lower() in subject for w in criteria.subject_words):
        return False
    if criteria.body_words and not any(w.lower() in body for w in criteria.body_words):
        return False
    return not (criteria.priority and criteria.priority != facts.priority)


def _rule_holds(rule: AssignmentRule, facts: Facts) -> bool:
    if not holds(rule, facts):
        return False
    if rule.mailbox is not None and rule.mailbox != facts.mailbox:
        return False
    if rule.regex is not None and not (re.search(rule.regex, facts.subject, re.IGNORECASE)
                                       or re.search(rule.regex, facts.body, re.IGNORECASE)):
        return False
    if rule.header is not None:
        values = facts.headers.get(rule.header.lower(), ())
        if not values:
            return False
        if rule.header_value is not None and not any(
                re.search(rule.header_value, v, re.IGNORECASE) for v in values):
            return False
    return True


def rule_name(rule: AssignmentRule, index: int) -> str:
    return rule.name or f"assignment_rule[{index}]"


def routes(settings: Settings, facts: Facts) -> Iterator[Route]:
    """Who may own a new case with ``facts``, in order: every matching rule's owner,
    then its mailbox's, then the default. The first that can take it does; the rest
    stand by for an owner that has gone (an agent deactivated since the check)."""
    for index, rule in enumerate(settings.assignment_rule):
        if _rule_holds(rule, facts):
            yield Route(rule.owner, f"rule {rule_name(rule, index)}")
    mailbox = settings.mailbox_for(facts.mailbox) if facts.mailbox else None
    if mailbox is not None and mailbox.owner is not None:
        yield Route(mailbox.owner, f"mailbox {mailbox.address}")
    if settings.cases.default_owner is not None:
        yield Route(settings.cases.default_owner, "the default owner")


def route(settings: Settings, facts: Facts) -> Route | None:
    """The owner of a new case with ``facts``: the first matching rule's, else its
    mailbox's, else the default; None when nobody is named anywhere."""
    return next(routes(settings, facts), None)


def queue_name(owner: str) -> str | None:
    """The queue an owner names (``queue:NAME``), or None for an agent's address."""
    return owner[len(QUEUE_PREFIX):] if owner.startswith(QUEUE_PREFIX) else None


def owners_named(settings: Settings) -> list[tuple[str, str]]:
    """Every owner the settings name, and every agent an escalation alerts, with the key
    that names it (for checking that the agents and queues exist)."""
    named = [(f"assignment_rule[{i}].owner", rule.owner)
             for i, rule in enumerate(settings.assignment_rule)]
    named += [(f"mailbox {box.address}: owner", box.owner) for box in settings.mailbox
              if box.owner is not None]
    if settings.cases.default_owner is not None:
        named.append(("cases.default_owner", settings.cases.default_owner))
    for index, sla in enumerate(settings.sla):
        if sla.reassign is not None:
            named.append((f"sla[{index}].reassign", sla.reassign))
        # Escalation alerts carry an agent's reply token: only agents receive them.
        named += [(f"sla[{index}].alert", address) for address in sla.alert]
    return named
