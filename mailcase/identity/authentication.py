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
trusted MTA, or an aligned signature did not verify here: the From is treated as a
stranger's) or ``none`` (nothing either way: the From is merely claimed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
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


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value (its first word)."""
    head = value.split(";", 1)[0].strip()
    return head.split()[0].lower() if head else ""


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
        if said is not None and organisational(said) != organisational(from_domain):
            continue  # DMARC of some other From: not about this one
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
        """``pass`` for a verified signature aligned with ``from_domain``; ``fail`` when an
        aligned signature's key was found and the mail does not match it; ``none``
        otherwise (unsigned, or no signature could be checked)."""
        try:
            checker = dkim.DKIM(raw, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - a mail dkimpy cannot read proves nothing
            return Verdict("none", f"DKIM not checked: {exc}")
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        broken: list[str] = []
        for index in range(count):
            checker.domain = checker.selector = None  # set anew by each signature
            try:
                good = checker.verify(idx=index, dnsfunc=self.txt)
            except dkim.ValidationError as exc:  # e.g. the body was changed after signing
                log.info("DKIM signature %d does not verify: %s", index, exc)
                good = False
            except dkim.DKIMException as exc:
                # A DNS failure, a key or signature dkimpy cannot read: nothing is proven
                # either way (a DNS outage must not make mail look forged).
                log.info("DKIM signature %d not verifiable: %s", index, exc)
                continue
            signer = (checker.domain or b"").decode("ascii", "replace").lower()
            if not signer or not aligned(signer, from_domain):
                continue
            if good:
                return Verdict("pass", f"dkim=pass d={signer} (verified by mailcase)")
            if _published(self.txt, checker, self.timeout):
                broken.append(signer)  # a real key, and the mail does not match it
        if broken:
            return Verdict("fail", f"dkim=fail d={broken[0]}: a signature of the From's "
                                   "domain did not verify (verified by mailcase)")
        return Verdict("none", f"no DKIM signature of {from_domain}")


def _published(txt: TxtLookup, checker: dkim.DKIM, timeout: int) -> bool:
    """Whether the key the last verified signature names is in DNS (dkimpy answers False
    alike for a missing key and for a signature that does not match its key)."""
    if not checker.domain or not checker.selector:
        return False
    name = checker.selector + b"._domainkey." + checker.domain + b"."
    try:
        return bool(txt(name, timeout=timeout))
    except Exception:  # noqa: BLE001 - a failing lookup proves nothing either way
        return False


def sender_verdict(
    *,
    results: Sequence[str],
    trusted: Collection[str],
    from_domain: str | None,
    raw: Callable[[], bytes] | None,
    verifier: DkimVerifier | None,
) -> Verdict:
    """The verdict for one mail: a trusted MTA's results first, then DKIM checked here
    (when a verifier is given), else UNCHECKED."""
    if not from_domain:
        return Verdict("none", "no From domain")
    stamped = from_results(results, trusted, from_domain) if trusted else None
    if stamped is not None:
        return stamped
    if verifier is not None and raw is not None:
        return verifier.verdict(raw(), from_domain)
    return UNCHECKED
