"""Who may do what: the one table that turns what a mail proves into what it may do.

A From header proves nothing by itself. What does:

* a valid reply token, used by the very participant it was sent to: the token reached
  that person (an agent's token makes an agent);
* a sender-authentication ``pass`` (a trusted MTA's DMARC, or DKIM aligned with the
  From): the From is real;
* nothing else. A DMARC ``fail`` is worse than nothing: that From is treated as a
  stranger's.

found by                 | writer                      | joins the case | commands
-------------------------|-----------------------------|----------------|-------------------
token, its own holder    | anyone                      | yes            | yes (agent: as one)
token, someone else      | (a forward, or DMARC fail)  | foreign_reply  | no
thread or subject tag    | contact, collaborator       | yes            | if authenticated
thread or subject tag    | agent, authenticated        | yes            | yes, as agent
thread or subject tag    | anyone else, or DMARC fail  | unproven_reply | no
nothing                  | anyone                      | new case       | no

A From that failed authentication ("forged") may still open a case of its own, but it
is answered by no one and copies no one in: mail to that address would be backscatter
to the person it names.

``foreign_reply`` is "accept" (a comment without commands), "hold", "new_case" or
"park"; ``unproven_reply`` is "new_case" or "hold". An operator's release of a held
mail (and an archive import) lets it join as a comment, never with commands: a release
proves nothing about who wrote it. The pipeline gathers the evidence (pipeline.writer)
and acts on the Standing; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Role = Literal["agent", "contact", "collaborator", "stranger"]
Attach = Literal["comment", "new_case", "hold", "park"]
Proof = Literal["token", "authenticated", "claimed", "forged", "released", "none"]


@dataclass(frozen=True)
class Evidence:
    """What is known of one mail's writer.

    ``path`` is how the mail found its case ("token", "thread", "subject tag") or None;
    ``role`` the writer's part in that case by their address; ``token_holder`` whether a
    token was sent to this very writer, ``token_agent`` whether that is an active agent's
    token; ``sender`` the authentication verdict; ``released`` an operator's release.
    """

    path: str | None
    role: Role = "stranger"
    token_holder: bool = False
    token_agent: bool = False
    sender: str = "none"
    released: bool = False


@dataclass(frozen=True)
class Policy:
    """A mailbox's answers for the writers who prove too little."""

    foreign_reply: str = "accept"
    unproven_reply: str = "new_case"


@dataclass(frozen=True)
class Standing:
    """What the mail may do: join its case (or not, and how not), act as an agent, and
    give the commands its writer's role allows."""

    attach: Attach
    proof: Proof
    agent: bool = False
    commands: bool = False

    @property
    def proven(self) -> bool:
        """Whether the writer's address is proven, so mail to it is no backscatter."""
        return self.proof in ("token", "authenticated")


def decide(evidence: Evidence, policy: Policy) -> Standing:
    """The writer's standing, after the table in this module's docstring."""
    if evidence.path is None:
        proofs: dict[str, Proof] = {"pass": "authenticated", "fail": "forged"}
        return Standing("new_case", proofs.get(evidence.sender, "none"))
    if evidence.path == "token":
        forged = evidence.sender == "fail"
        if evidence.token_holder and not forged:
            standing = Standing("comment", "token", agent=evidence.token_agent, commands=True)
        else:  # someone else's token, or the holder's address in a From that failed DMARC
            standing = _unproven(evidence, policy.foreign_reply, "forged" if forged else "none")
    else:
        standing = _by_address(evidence, policy)
    if evidence.released:  # a release (or an archive) proves nothing: no commands
        standing = replace(standing, commands=False)
    return standing


def _by_address(evidence: Evidence, policy: Policy) -> Standing:
    """A mail that found its case by thread or subject tag: the writer's address and what
    their mail proves about it decide."""
    if evidence.sender == "fail":
        return _unproven(evidence, policy.unproven_reply, "forged")
    proven = evidence.sender == "pass"
    if evidence.role in ("contact", "collaborator"):
        return Standing("comment", "authenticated" if proven else "claimed", commands=proven)
    if evidence.role == "agent" and proven:
        return Standing("comment", "authenticated", agent=True, commands=True)
    return _unproven(evidence, policy.unproven_reply, "none")


def _unproven(evidence: Evidence, choice: str, proof: Proof) -> Standing:
    """A writer who proved too little: released by an operator, or the mailbox's policy."""
    if evidence.released:
        return Standing("comment", "released")
    if choice == "accept":
        return Standing("comment", proof)
    attach: Attach = "hold" if choice == "hold" else "park" if choice == "park" else "new_case"
    return Standing(attach, proof)
