"""Who may do what, decided in one place: the trust table row by row, our own addresses
in every spelling, trusted and untrusted Authentication-Results, and DKIM verified here
against keys the test publishes."""

from __future__ import annotations

import dkim
import pytest

from mailcase.identity.addresses import OwnAddresses, canonical
from mailcase.identity.authentication import DkimVerifier, aligned, from_results, malformed
from mailcase.identity.trust import Evidence, Policy, decide
from tests.support.dkimkeys import Dns, sign

# --- the table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "policy", "expected"),
    [
        # A new mail opens a case and commands nothing, whatever its From.
        (Evidence(None), Policy(), ("new_case", "none", False, False)),
        (Evidence(None, sender="pass"), Policy(), ("new_case", "authenticated", False, False)),
        (Evidence(None, sender="fail"), Policy(), ("new_case", "forged", False, False)),
        # Through its own token: joins, commands; an agent's token makes an agent.
        (Evidence("token", role="contact", token_holder=True), Policy(),
         ("comment", "token", False, True)),
        (Evidence("token", role="agent", token_holder=True, token_agent=True), Policy(),
         ("comment", "token", True, True)),
        # Someone else's token: the mailbox's foreign_reply, never commands.
        (Evidence("token", role="agent"), Policy(), ("comment", "none", False, False)),
        (Evidence("token"), Policy(foreign_reply="hold"), ("hold", "none", False, False)),
        (Evidence("token"), Policy(foreign_reply="new_case"), ("new_case", "none", False, False)),
        (Evidence("token"), Policy(foreign_reply="park"), ("park", "none", False, False)),
        # Thread or tag: contact and collaborator join; commands only when authenticated.
        (Evidence("thread", role="contact"), Policy(), ("comment", "claimed", False, False)),
        (Evidence("subject tag", role="collaborator", sender="pass"), Policy(),
         ("comment", "authenticated", False, True)),
        # An agent's From alone is nobody's: authenticated it acts, unproven it is a stranger.
        (Evidence("thread", role="agent", sender="pass"), Policy(),
         ("comment", "authenticated", True, True)),
        (Evidence("subject tag", role="agent"), Policy(), ("new_case", "none", False, False)),
        (Evidence("thread", role="stranger"), Policy(unproven_reply="hold"),
         ("hold", "none", False, False)),
        # A DMARC failure makes even the contact a stranger.
        (Evidence("thread", role="contact", sender="fail"), Policy(),
         ("new_case", "forged", False, False)),
        # A release joins the case and still runs no command.
        (Evidence("thread", released=True), Policy(unproven_reply="hold"),
         ("comment", "released", False, False)),
        (Evidence("token", released=True), Policy(foreign_reply="hold"),
         ("comment", "released", False, False)),
        # An archive's agent reply through their own token: an agent's comment, no /close.
        (Evidence("token", token_holder=True, token_agent=True, released=True), Policy(),
         ("comment", "token", True, False)),
        # The holder's address in a From that failed DMARC is not the holder.
        (Evidence("token", role="contact", token_holder=True, sender="fail"), Policy(),
         ("comment", "forged", False, False)),
    ],
)
def test_the_trust_table(evidence: Evidence, policy: Policy,
                         expected: tuple[str, str, bool, bool]) -> None:
    """Each row of identity.trust's table gives the standing it promises."""
    standing = decide(evidence, policy)
    assert (standing.attach, standing.proof, standing.agent, standing.commands) == expected


def test_only_a_token_or_authentication_proves_an_address() -> None:
    """Mail about a refusal may go only to a writer whose address is proven."""
    assert decide(Evidence("token", token_holder=True), Policy()).proven
    assert decide(Evidence("thread", role="contact", sender="pass"), Policy()).proven
    assert not decide(Evidence("thread", role="contact"), Policy()).proven
    assert not decide(Evidence("token"), Policy()).proven


# --- our own addresses ------------------------------------------------------------------

OWN = OwnAddresses(["support@example.com", "billing@example.org"])


@pytest.mark.parametrize("spelling", [
    "support@example.com", "SUPPORT@Example.COM", "<support@example.com>",
    "support@example.com.", '"support"@example.com', '"Support"@EXAMPLE.com.',
    "support+1000-c1-abcdefghijklmnopqrst@example.com", "support+bounce-7-abc@example.com",
    "billing@example.org",
])
def test_every_spelling_of_our_addresses_is_ours(spelling: str) -> None:
    """Case, quotes, angle brackets, a trailing dot and plus-forms change nothing."""
    assert OWN.owns(spelling)


@pytest.mark.parametrize("other", [
    "support@example.net", "supporter@example.com", "ann@example.com",
    "support@sub.example.com", "support-team@example.com", "billing@example.com",
])
def test_other_addresses_are_not_ours(other: str) -> None:
    """Neighbours of our addresses are someone else's."""
    assert not OWN.owns(other)


def test_canonical_form() -> None:
    """Quoted local parts lose their quotes, absolute domains their dot, all lower case."""
    assert canonical(' <"Ann.Smith"@Customer.ORG.> ') == "ann.smith@customer.org"


# --- Authentication-Results ---------------------------------------------------------------

TRUSTED = ("mx.example.com",)


def test_a_trusted_dmarc_pass_proves_the_from() -> None:
    """DMARC pass from a trusted authserv-id for the From's domain: pass."""
    verdict = from_results(
        ["mx.example.com; dkim=pass header.d=customer.org; dmarc=pass header.from=customer.org"],
        TRUSTED, "customer.org")
    assert verdict is not None and verdict.result == "pass"
    assert "dmarc=pass" in verdict.how and "mx.example.com" in verdict.how


def test_a_trusted_dmarc_fail_marks_a_forgery() -> None:
    """DMARC fail from the trusted MTA: fail, whatever else the header says."""
    verdict = from_results(
        ["mx.example.com; spf=pass smtp.mailfrom=evil.test; dmarc=fail header.from=customer.org"],
        TRUSTED, "customer.org")
    assert verdict is not None and verdict.result == "fail"


def test_untrusted_and_sender_written_results_are_ignored() -> None:
    """An unknown authserv-id proves nothing; below the trusted MTA's own header, a header
    a sender wrote with the trusted id is never read."""
    assert from_results(["mx.evil.test; dmarc=pass header.from=customer.org"], TRUSTED,
                        "customer.org") is None
    verdict = from_results(
        ["mx.example.com; dmarc=none header.from=customer.org",
         "mx.example.com; dmarc=pass header.from=customer.org"], TRUSTED, "customer.org")
    assert verdict is not None and verdict.result == "none"


def test_aligned_dkim_without_dmarc_and_unaligned_passes() -> None:
    """Without DMARC an aligned DKIM (or SPF) pass proves the From; a pass for another
    domain does not."""
    aligned_pass = from_results(["mx.example.com; dkim=pass header.d=mail.customer.org"],
                                TRUSTED, "customer.org")
    other = from_results(["mx.example.com; dkim=pass header.d=evil.test; spf=pass "
                          "smtp.mailfrom=bounce@evil.test"], TRUSTED, "customer.org")
    assert aligned_pass is not None and aligned_pass.result == "pass"
    assert other is not None and other.result == "none"


def test_alignment_follows_the_public_suffix_list() -> None:
    """Relaxed alignment shares an organisational domain; a public suffix is shared by
    nobody."""
    assert aligned("mail.customer.co.uk", "customer.co.uk")
    assert not aligned("evil.co.uk", "customer.co.uk")
    assert not aligned("attacker.github.io", "victim.github.io")


# --- DKIM verified here -------------------------------------------------------------------

RAW = (b"From: Ann <ann@customer.org>\r\nTo: support@example.com\r\nSubject: Hello\r\n"
       b"Message-ID: <dkim1@customer.org>\r\n\r\nMy printer is on fire.\r\n")


def test_dkim_verified_against_the_published_key() -> None:
    """A signature that verifies and is aligned passes; the same mail altered proves
    nothing (a broken signature is no signature, RFC 6376 6.1), nor does an unsigned mail,
    a signature of another domain, or one whose l= leaves the rest of the body unsigned."""
    dns = Dns()
    dns.publish("customer.org")
    dns.publish("evil.test")
    verifier = DkimVerifier(dns.txt)
    signed = sign(RAW, "customer.org")
    assert verifier.verdict(signed, "customer.org").result == "pass"
    altered = signed.replace(b"on fire", b"fine, send your password")
    assert verifier.verdict(altered, "customer.org").result == "none"
    assert verifier.verdict(RAW, "customer.org").result == "none"
    assert verifier.verdict(sign(RAW, "evil.test"), "customer.org").result == "none"
    assert verifier.verdict(sign(RAW, "customer.org", length=True), "customer.org").result \
        == "none"
    assert "test._domainkey.customer.org." in dns.asked


def test_a_header_block_read_two_ways_proves_nothing() -> None:
    """A bare CR, or a second From or Subject, makes the header block unreadable for
    authentication; an ordinary block is fine."""
    assert malformed(b"From: a@b\r\nSubject: x", {"from": ["a@b"], "subject": ["x"]}) is None
    assert malformed(b"X: y\rFrom: bob@example.com", {"x": ["y"]}) == \
        "a bare CR in the header block"
    assert "Subject" in (malformed(b"Subject: a\r\nSubject: b", {"subject": ["a", "b"]}) or "")
    assert from_results(["(hidden) mx.example.com; dmarc=fail header.from=customer.org"],
                        TRUSTED, "customer.org").result == "fail"  # type: ignore[union-attr]


def test_dkim_with_no_published_key_or_no_dns_proves_nothing_either_way() -> None:
    """A signature whose key is not in DNS, or whose lookup fails, is neither a pass nor
    a forgery: a DNS outage must not make a customer's mail look forged."""
    signed = sign(RAW, "customer.org")
    assert DkimVerifier(Dns().txt).verdict(signed, "customer.org").result == "none"

    def failing(name: bytes, timeout: int = 5) -> bytes | None:
        raise dkim.DnsTimeoutError("no answer")

    assert DkimVerifier(failing).verdict(signed, "customer.org").result == "none"
