"""The case rules of CaseBook on a real database (SQLite and PostgreSQL): numbering, the
status lifecycle, supplied fields, clipping, case numbers as typed, and the event feed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.book import CaseBook, parse_number
from mailcase.cases.errors import CaseError
from mailcase.config import CaseSettings
from mailcase.store import db
from mailcase.store.models import Case, Event

# Not UTC on purpose: the store keeps UTC and must give back the same instant.
NOW = datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=2)))
MAILBOX = "support@example.com"
DESCRIPTION_MAX_BYTES = 32768


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = db.create(database_url)
    yield db.session_factory(engine)
    engine.dispose()


def open_case(book: CaseBook, subject: str = "Printer on fire", description: str = "It burns.",
              email: str = "ann@customer.org", name: str = "Ann Customer") -> Case:
    case, _clipped = book.open(subject=subject, description=description, mailbox=MAILBOX,
                               contact=book.contact(email, name))
    return case


def reload(sessions: sessionmaker[Session], number: int) -> Case:
    """The case as a fresh session reads it back from the database."""
    with sessions() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        assert case is not None, f"case {number} is not in the database"
        session.expunge(case)
        return case


def event_kinds(sessions: sessionmaker[Session], number: int) -> list[str]:
    with sessions() as session:
        case_id = session.scalar(select(Case.id).where(Case.number == number))
        return list(session.scalars(
            select(Event.kind).where(Event.case_id == case_id).order_by(Event.id)
        ))


# --- numbering ---------------------------------------------------------------------------


def test_numbers_start_at_first_number_and_go_up_by_one(
    sessions: sessionmaker[Session],
) -> None:
    """The first case is 1000, each next one is one more, shown as eight zero-padded digits."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        first, second = open_case(book), open_case(book, email="bob@customer.org")
    with sessions.begin() as session:
        third = open_case(CaseBook(session, CaseSettings(), NOW))
    assert [first.number, second.number, third.number] == [1000, 1001, 1002]
    assert [c.display_number for c in (first, second, third)] == [
        "00001000", "00001001", "00001002"]
    assert reload(sessions, 1002).display_number == "00001002"


def test_raising_first_number_jumps_ahead_and_never_reuses_a_number(
    sessions: sessionmaker[Session],
) -> None:
    """A higher first_number takes effect at once; lowering it again reuses no number."""
    with sessions.begin() as session:
        assert open_case(CaseBook(session, CaseSettings(), NOW)).number == 1000
    with sessions.begin() as session:
        raised = CaseBook(session, CaseSettings(first_number=5000), NOW)
        assert [open_case(raised).number, open_case(raised).number] == [5000, 5001]
    with sessions.begin() as session:
        lowered = CaseBook(session, CaseSettings(first_number=1000), NOW)
        assert open_case(lowered).number == 5002
    with sessions() as session:
        numbers = list(session.scalars(select(Case.number).order_by(Case.number)))
    assert numbers == [1000, 5000, 5001, 5002]


def test_display_number_is_eight_digits(sessions: sessionmaker[Session]) -> None:
    """A case number shows zero-padded to exactly eight digits, also at the top of the range."""
    with sessions.begin() as session:
        case = open_case(CaseBook(session, CaseSettings(first_number=99_999_999), NOW))
    assert case.display_number == "99999999"
    assert len(case.display_number) == 8


# --- status lifecycle --------------------------------------------------------------------


def test_is_closed_follows_status_and_close_sets_closed_at_and_resolution(
    sessions: sessionmaker[Session],
) -> None:
    """A new case is open; close() sets a closed status, closed_at and the resolution."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        assert (case.status, case.is_closed, case.closed_at) == ("New", False, None)
        book.close(case, "  Replaced the fuser.  ", "agent@example.com")
    stored = reload(sessions, case.number)
    assert stored.status == "Closed"
    assert stored.status in CaseSettings().closed_statuses
    assert stored.is_closed is True
    assert stored.closed_at == NOW
    assert stored.closed_at is not None and stored.closed_at.tzinfo is not None
    assert stored.resolution == "Replaced the fuser."


def test_reopen_clears_closed_state(sessions: sessionmaker[Session]) -> None:
    """reopen() moves a closed case to the reopen status and clears is_closed and closed_at."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        book.close(case, "Done", None)
        book.reopen(case, "ann@customer.org")
    stored = reload(sessions, case.number)
    assert (stored.status, stored.is_closed, stored.closed_at) == ("Working", False, None)


@pytest.mark.parametrize("resolution", ["", "   ", "\n\t"])
def test_close_without_a_resolution_is_refused(
    sessions: sessionmaker[Session], resolution: str
) -> None:
    """Closing needs a resolution; an empty or blank one raises and leaves the case open."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        with pytest.raises(CaseError, match="resolution"):
            book.close(case, resolution, None)
    stored = reload(sessions, case.number)
    assert (stored.status, stored.is_closed, stored.closed_at) == ("New", False, None)


def test_closed_case_is_locked_against_status_changes_until_reopened(
    sessions: sessionmaker[Session],
) -> None:
    """set_status on a closed case raises; after reopen() it works again."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        book.close(case, "Fixed", None)
        with pytest.raises(CaseError, match="reopen"):
            book.set_status(case, "Working", None)
        assert (case.status, case.is_closed) == ("Closed", True)
        book.reopen(case, None)
        book.set_status(case, "On Hold", None)
    stored = reload(sessions, case.number)
    assert (stored.status, stored.is_closed) == ("On Hold", False)


def test_closing_a_closed_case_again_is_refused(sessions: sessionmaker[Session]) -> None:
    """close() on a closed case raises rather than overwriting its resolution."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        book.close(case, "First resolution", None)
        with pytest.raises(CaseError):
            book.close(case, "Second resolution", None)
        assert case.resolution == "First resolution"


def test_set_status_to_a_closed_status_is_refused(sessions: sessionmaker[Session]) -> None:
    """A closed status cannot be set with set_status; close() with a resolution is needed."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        with pytest.raises(CaseError, match="close"):
            book.set_status(case, "Closed", None)
    stored = reload(sessions, case.number)
    assert (stored.status, stored.is_closed, stored.resolution) == ("New", False, None)


def test_configured_closed_status_is_refused_by_set_status(
    sessions: sessionmaker[Session],
) -> None:
    """Every configured closed status, not only "Closed", needs close()."""
    settings = CaseSettings(statuses=("New", "Working", "Solved", "Closed"),
                            closed_statuses=("Solved", "Closed"))
    with sessions.begin() as session:
        book = CaseBook(session, settings, NOW)
        case = open_case(book)
        with pytest.raises(CaseError):
            book.set_status(case, "Solved", None)
        book.close(case, "Answered", None)
        assert (case.status, case.is_closed) == ("Solved", True)


def test_unknown_status_is_refused_naming_the_known_ones(
    sessions: sessionmaker[Session],
) -> None:
    """An unknown status raises with every known status in the message."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        with pytest.raises(CaseError) as raised:
            book.set_status(case, "Bogus", None)
        assert case.status == "New"
    message = str(raised.value)
    assert "Bogus" in message
    for status in CaseSettings().statuses:
        assert status in message


def test_unknown_priority_is_refused_naming_the_known_ones(
    sessions: sessionmaker[Session],
) -> None:
    """An unknown priority raises with High, Medium and Low in the message."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        with pytest.raises(CaseError) as raised:
            book.set_priority(case, "Urgent", None)
        assert case.priority == "Medium"
        book.set_priority(case, "high", None)
    message = str(raised.value)
    for priority in ("High", "Medium", "Low"):
        assert priority in message
    assert reload(sessions, case.number).priority == "High"


# --- supplied fields and clipping --------------------------------------------------------


def test_supplied_email_and_name_are_kept_from_creation(sessions: sessionmaker[Session]) -> None:
    """supplied_email/name come from the contact at creation and stay when the contact changes."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book, email="Ann@Customer.ORG", name="Ann Customer")
        assert (case.supplied_email, case.supplied_name) == ("ann@customer.org", "Ann Customer")
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        contact = book.contact("ann@customer.org")
        contact.name = "Ann Married-Name"
        contact.email = "ann@new-employer.example"
    stored = reload(sessions, case.number)
    assert stored.supplied_email == "ann@customer.org"
    assert stored.supplied_name == "Ann Customer"


def test_long_subject_is_clipped_to_255_characters(sessions: sessionmaker[Session]) -> None:
    """A 300-character subject is stored as at most 255 characters, starting the same."""
    subject = "".join(f"word{i} " for i in range(100))[:300]
    assert len(subject) == 300
    with sessions.begin() as session:
        case = open_case(CaseBook(session, CaseSettings(), NOW), subject=subject)
    stored = reload(sessions, case.number)
    assert 250 <= len(stored.subject) <= 255
    assert stored.subject[:250] == subject[:250]


# Every offset of the multi-byte characters against the 32 KB limit, so whatever byte the
# cut falls on, some case puts it in the middle of a character.
@pytest.mark.parametrize(
    ("prefix", "char"), [("", "é"), ("x", "é"), ("", "€"), ("x", "€"), ("xx", "€")]
)
def test_long_description_is_clipped_on_a_character_boundary(
    sessions: sessionmaker[Session], prefix: str, char: str
) -> None:
    """A 40 KB description is stored in at most 32768 UTF-8 bytes, cut between characters."""
    description = prefix + char * (40 * 1024 // len(char.encode()))
    assert len(description.encode()) > 40_000
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case, clipped = book.open(subject="Long", description=description, mailbox=MAILBOX,
                                  contact=book.contact("ann@customer.org"))
    assert clipped is True
    stored = reload(sessions, case.number).description
    assert len(stored.encode("utf-8")) <= DESCRIPTION_MAX_BYTES
    kept = stored.rstrip("…")
    assert description.startswith(kept)  # whole characters only: no mangled last one
    assert "\ufffd" not in stored
    assert len(kept.encode()) > DESCRIPTION_MAX_BYTES - 16


def test_short_description_is_not_clipped(sessions: sessionmaker[Session]) -> None:
    """A description within 32 KB is stored whole and open() says it was not clipped."""
    description = "€" * (DESCRIPTION_MAX_BYTES // 3)
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case, clipped = book.open(subject="Short", description=description, mailbox=MAILBOX,
                                  contact=None)
    assert clipped is False
    stored = reload(sessions, case.number)
    assert stored.description == description
    assert (stored.supplied_email, stored.supplied_name) == (None, None)


# --- case numbers as typed ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["1000", "00001000", "#00001000", " 1000 ", "#1000"])
def test_parse_number_accepts_the_ways_people_type_it(text: str) -> None:
    """Plain, zero-padded and #-prefixed case numbers all parse to the number."""
    assert parse_number(text) == 1000


@pytest.mark.parametrize("text", ["abc", "-1", "123456789", "", "#", "10 00", "1000x", "1e3"])
def test_parse_number_rejects_what_is_not_a_case_number(text: str) -> None:
    """Letters, signs, nine significant digits and empty text are not case numbers."""
    with pytest.raises(CaseError):
        parse_number(text)


def test_get_unknown_case_is_refused(sessions: sessionmaker[Session]) -> None:
    """Asking for a case that does not exist raises with its display number."""
    with sessions() as session, pytest.raises(CaseError, match="00004242"):
        CaseBook(session, CaseSettings(), NOW).get(4242)


# --- the event feed ----------------------------------------------------------------------


def test_every_change_writes_an_event(sessions: sessionmaker[Session]) -> None:
    """Opening, status, priority, comment, close and reopen each add one Event row."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        number = case.number
    expected = ["created"]
    assert event_kinds(sessions, number) == expected

    steps = [
        ("status", lambda b, c: b.set_status(c, "Working", "agent@example.com")),
        ("priority", lambda b, c: b.set_priority(c, "High", "agent@example.com")),
        ("comment", lambda b, c: b.comment(
            c, "Looking into it.", author_email="agent@example.com", author_name="Agent",
            author_kind="agent", public=True)),
        ("closed", lambda b, c: b.close(c, "Fixed", "agent@example.com")),
        ("reopened", lambda b, c: b.reopen(c, "ann@customer.org")),
    ]
    for kind, change in steps:
        with sessions.begin() as session:
            book = CaseBook(session, CaseSettings(), NOW)
            change(book, book.get(number))
        expected.append(kind)
        assert event_kinds(sessions, number) == expected, f"after {kind}"

    with sessions() as session:
        events = list(session.scalars(select(Event).order_by(Event.id)))
    assert [e.actor for e in events] == [
        "ann@customer.org", "agent@example.com", "agent@example.com", "agent@example.com",
        "agent@example.com", "ann@customer.org"]
    assert all(e.created_at == NOW for e in events)
    assert all(e.created_at.tzinfo is not None for e in events)
    assert events[1].detail == {"old": "New", "new": "Working"}
    assert events[4].detail.get("resolution") == "Fixed"


def test_no_op_status_change_writes_no_event(sessions: sessionmaker[Session]) -> None:
    """Setting the status or priority a case already has changes nothing and writes no event."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        book.set_status(case, "New", None)
        book.set_priority(case, "Medium", None)
    assert event_kinds(sessions, case.number) == ["created"]


def test_refused_change_writes_no_event(sessions: sessionmaker[Session]) -> None:
    """A change the rules refuse leaves no trace in the feed."""
    with sessions.begin() as session:
        book = CaseBook(session, CaseSettings(), NOW)
        case = open_case(book)
        for refused in (lambda: book.set_status(case, "Bogus", None),
                        lambda: book.set_status(case, "Closed", None),
                        lambda: book.close(case, " ", None),
                        lambda: book.reopen(case, None)):
            with pytest.raises(CaseError):
                refused()
    assert event_kinds(sessions, case.number) == ["created"]


def test_now_is_stored_as_utc(sessions: sessionmaker[Session]) -> None:
    """created_at reads back as the same instant, timezone-aware, on either engine."""
    with sessions.begin() as session:
        case = open_case(CaseBook(session, CaseSettings(), NOW))
    stored = reload(sessions, case.number)
    assert stored.created_at == NOW
    assert stored.created_at.utcoffset() == UTC.utcoffset(None)
