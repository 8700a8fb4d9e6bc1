"""Sisimai's public corpus of real bounces, feedback reports and auto-replies (629 mails
from every MTA and provider, tests/data/sisimai, BSD licence): none is ever answered or
opens a case, and the failed recipients are found where Sisimai finds them as often as
the README says. The shares are floors: a change that reads fewer fails here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from mailcase.app import App
from mailcase.reading import bounces, parsing, screen
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.support.paths import DATA

CORPUS = DATA / "sisimai"
OWN = frozenset({"support@example.com"})
# Measured on this corpus (README, "Reliability and security"); raise them as the
# reader learns more formats, never lower them.
SCREENED_WITHOUT_ENVELOPE = 624
RECIPIENTS_FOUND = 576
# Bounces where an address is found that Sisimai does not name (an alias's source, the
# original's sender quoted as text): a ceiling, never raised.
BEYOND_SISIMAI = 12


@dataclass(frozen=True)
class Sample:
    """One manifest line: the file, what Sisimai says it is, and whom it names."""

    name: str
    kind: str
    recipients: frozenset[str]


def samples() -> Iterator[Sample]:
    for line in (CORPUS / "manifest.tsv").read_text(encoding="utf-8").splitlines():
        name, kind, recipients, _reason, _source = line.split("\t")
        found = {r.strip().lower() for r in recipients.split(",") if r.strip()}
        yield Sample(name, kind, frozenset(found))


SAMPLES = list(samples())


def test_the_manifest_names_every_file() -> None:
    """All 629 mails are in the manifest, and only they."""
    assert sorted(s.name for s in SAMPLES) == sorted(p.name for p in CORPUS.glob("*.eml"))
    assert len(SAMPLES) == 629


def test_every_sample_is_taken_for_automatic_mail() -> None:
    """From the null sender, as a bounce arrives by SMTP, every one is a robot's; with
    the envelope unknown (IMAP, a pipe), no fewer than the README's figure."""
    unknown_envelope = 0
    for sample in SAMPLES:
        mail = parsing.parse((CORPUS / sample.name).read_bytes())
        assert screen.robot_reason(mail, "", OWN), sample.name
        unknown_envelope += screen.robot_reason(mail, None, OWN) is not None
    assert unknown_envelope >= SCREENED_WITHOUT_ENVELOPE


def test_failed_recipients_are_found_and_never_made_up() -> None:
    """For bounces, every recipient Sisimai names is found in at least RECIPIENTS_FOUND
    of them; whatever is found looks like an address (no pipe, path or JSON), and
    addresses Sisimai does not name turn up in no more than BEYOND_SISIMAI."""
    complete = beyond = 0
    for sample in (s for s in SAMPLES if s.kind == "bounce"):
        raw = (CORPUS / sample.name).read_bytes()
        found = {f.recipient for f in bounces.read(raw).failures}
        assert all("@" in r and " " not in r and "|" not in r for r in found), sample.name
        complete += bool(sample.recipients) and sample.recipients <= found
        beyond += bool(found - sample.recipients)
    assert complete >= RECIPIENTS_FOUND, complete
    assert beyond <= BEYOND_SISIMAI, beyond


def test_no_sample_opens_a_case_or_is_answered(app: App) -> None:
    """The whole corpus through the pipeline, as it would arrive by SMTP: no case, no
    outbound mail, every mail recorded as dropped with its reason (samples that are
    copies of one mail are stored once)."""
    stored = {app.intake.accept((CORPUS / sample.name).read_bytes(), mail_from="",
                                rcpt_to=["support@example.com"], source="test").id
              for sample in SAMPLES}
    app.processor.drain()
    with app.sessions() as session:
        cases = session.scalar(select(func.count()).select_from(Case))
        outbound = session.scalar(select(func.count()).select_from(OutboundMail))
        statuses = dict(session.execute(select(InboundMail.status, func.count())
                                        .group_by(InboundMail.status)).all())
        reasons = session.scalars(select(InboundMail.outcome)).all()
    assert (cases, outbound) == (0, 0)
    assert statuses == {"dropped": len(stored)}
    assert all(reasons)
