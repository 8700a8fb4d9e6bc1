"""What a mail proves about its From: sender authentication as a signal, never as a name.

Two sources, per mailbox:

* ``Authentication-Results`` (RFC 8601) stamped by an MTA the operator trusts, named by
  its authserv-id (``trusted_authserv_ids``). Only the topmost header of a trusted id
  counts: RFC 8601 section 5 has that MTA remove headers bearing its id from incoming
  mail, and it stamps its own on top, so one a sender wrote into its mail sits below it
  and is ignored, as is every header of an id nobody trusts.
* DKIM verified here (``verify_dkim``, dkimpy) when no trusted MTA stamped a result: a
  signature that verifies and whose ``d=`` is aligned with the From domain (the same
  organisational domain, after the Public Suffix List, as DMARC's relaxed alignment).

The verdict is ``pass`` (the From domain is proven), ``fail`` (DMARC failed at the
trusted MTA: the From is treated as a stranger's) or ``none`` (nothing either way: the
From is merely claimed). A header block that programs read differently (a bare CR, two
From or Subject lines) proves nothing, whatever its signatures say.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import authres
import dkim
from publicsuffixlist import PublicSuffixList

log = logging.getLogger(__name__)

TxtLookup = Callable[..., bytes | None]  # (name: bytes, timeout=seconds) -> TXT or None
Result = Literal["pass", "fail", "none"]


@dataclass(frozen=True)
class Verdict:
    """What the mail proves about its From domain, and how that was learnt."""

    result: Result
    how: str

    def __str__(self) -> str:
        return f"{self.result}: {self.how}"


UNCHECKED = Verdict("none", "not checked (no trusted Authentication-Results, DKIM not verified)")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organisational(domain: str) -> str:
    """The registrable domain of ``domain`` (``mail.customer.co.uk`` → ``customer.co.uk``)."""
    domain = domain.strip().rstrip(".").lower()
    return _suffixes().privatesuffix(domain) or domain


def aligned(signer: str, from_domain: str) -> bool:
    """DMARC relaxed alignment: both domains share one organisational domain."""
    return organisational(signer) == organisational(from_domain)


_COMMENTS = re.compile(r"\([^()]*\)")


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value (its first word, comments
    aside: ``(x) mx.example.com 1;`` is mx.example.com)."""
    head = value.split(";", 1)[0]
    while _COMMENTS.search(head):
        head = _COMMENTS.sub(" ", head)
    words = head.split()
    return words[0].lower() if words else ""


def from_results(
    values: Sequence[str], trusted: Collection[str], from_domain: str
) -> Verdict | None:
    """The verdict of the topmost Authentication-Results header (``values`` top down) whose
    authserv-id is trusted; None when no trusted MTA stamped one."""
    trusted = {t.lower() for t in trusted}
    for value in values:
        server = authserv_id(value)
        if server not in trusted:
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse(
                "Authentication-Results: " + value)
        except Exception as exc:  # noqa: BLE001 - a malformed stamp proves nothing
            return Verdict("none", f"unreadable Authentication-Results from {server}: {exc}")
        return _judge(header.results, server, from_domain)
    return None


def _judge(results: Sequence[authres.core.AuthenticationResult], server: str,
           from_domain: str) -> Verdict:
    """DMARC's answer when the MTA gave one; else an aligned DKIM or SPF pass."""
    for result in results:
        if result.method != "dmarc":
            continue
        said = _property(result, "header", "from")
        if said is not None and said.strip().rstrip(".").lower() != from_domain.lower():
            # The MTA judged another From than the one mailcase reads: no pass of any
            # other method may stand in for it.
            return Verdict("none", f"dmarc of {said}, not of {from_domain} ({server})")
        if result.result == "pass":
            return Verdict("pass", f"dmarc=pass header.from={from_domain} ({server})")
        if result.result == "fail":
            return Verdict("fail", f"dmarc=fail header.from={from_domain} ({server})")
    for result in results:
        if result.result != "pass":
            continue
        if result.method == "dkim":
            signer = _property(result, "header", "d") or (
                _property(result, "header", "i") or "").rpartition("@")[2]
        elif result.method == "spf":
            signer = (_property(result, "smtp", "mailfrom") or "").rpartition("@")[2]
        else:
            continue
        if signer and aligned(signer, from_domain):
            return Verdict("pass", f"{result.method}=pass aligned with {from_domain} "
                                   f"({server})")
    return Verdict("none", f"no aligned pass for {from_domain} ({server})")


def _property(result: authres.core.AuthenticationResult, kind: str, name: str) -> str | None:
    for prop in result.properties:
        if prop.type == kind and prop.name == name:
            return str(prop.value)
    return None


class DkimVerifier:
    """DKIM signatures verified here, with DNS through ``txt`` (dkimpy's resolver unless
    a test or an operator hands in another)."""

    def __init__(self, txt: TxtLookup | None = None, timeout: int = 5) -> None:
        self.txt: TxtLookup = txt or dkim.dnsplug.get_txt
        self.timeout = timeout

    def verdict(self, raw: bytes, from_domain: str) -> Verdict:
        """``pass`` for a verified signature aligned with ``from_domain`` that covers the
        whole body; ``none`` otherwise. A signature that does not verify counts as no
        signature (RFC 6376 6.1: lists and gateways break them), never as a forgery:
        forgery is DMARC's verdict, which needs the trusted MTA's view (SPF, policy)."""
        try:
            checker = dkim.DKIM(raw, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - a mail dkimpy cannot read proves nothing
            return Verdict("none", f"DKIM not checked: {exc}")
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        for index in range(count):
            checker.domain = None  # set anew by each signature
            try:
                good = checker.verify(idx=index, dnsfunc=self.txt)
            except dkim.DKIMException as exc:
                # Does not verify, a DNS failure, a key or signature dkimpy cannot read.
                log.info("DKIM signature %d not verified: %s", index, exc)
                continue
            signer = (checker.domain or b"").decode("ascii", "replace").lower()
            if not good or not signer or not aligned(signer, from_domain):
                continue
            if b"l" in checker.signature_fields:
                # l= signs only the first octets of the body: anything may follow them.
                log.info("DKIM signature %d of %s has a body length: not counted", index,
                         signer)
                continue
            return Verdict("pass", f"dkim=pass d={signer} (verified by mailcase)")
        return Verdict("none", f"no verified DKIM signature of {from_domain}")


# Headers a mail has at most once (RFC 5322 3.6). Two of one kind are read differently by
# different programs (a DKIM verifier takes the last, a parser the first or both), so a
# mail with two proves nothing about the one mailcase reads.
SINGLE = ("from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id",
          "in-reply-to", "references")


def malformed(head: bytes, headers: Mapping[str, Sequence[str]]) -> str | None:
    """Why the header block cannot be authenticated as mailcase reads it: a bare CR (a
    line end to the standard library's parser, none to a DKIM verifier or an MTA), or a
    header that may stand once standing twice. None when it can."""
    if b"\r" in head.replace(b"\r\n", b""):
        return "a bare CR in the header block"
    twice = [name for name in SINGLE if len(headers.get(name, ())) > 1]
    if twice:
        return f"{twice[0].title()} appears more than once"
    return None


def sender_verdict(
    *,
    results: Sequence[str],
    trusted: Collection[str],
    from_domain: str | None,
    raw: Callable[[], bytes] | None,
    verifier: DkimVerifier | None,
    unreadable: str | None = None,
) -> Verdict:
    """The verdict for one mail: a trusted MTA's results first, then DKIM checked here
    (when a verifier is given), else UNCHECKED. A header block that others may read
    differently (``unreadable``, see ``malformed``) proves nothing."""
    if not from_domain:
        return Verdict("none", "no From domain")
    if unreadable:
        return Verdict("none", f"not authenticated: {unreadable}")
    stamped = from_results(results, trusted, from_domain) if trusted else None
    if stamped is not None:
        return stamped
    if verifier is not None and raw is not None:
        return verifier.verdict(raw(), from_domain)
    return UNCHECKED
