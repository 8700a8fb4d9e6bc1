"""Full-text search on both engines: what it finds (a word deep in a large store, phrases,
senders, internal notes, moved comments), what it refuses to obey (any hostile query is
text), how it ranks and pages, and ``mailcase cases search`` itself."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from mailcase.app import App
from mailcase.cases import searchindex
from mailcase.cases.desk import Desk
from mailcase.cases.errors import BadValue
from mailcase.cli import main
from mailcase.store.models import Case, Comment
from tests.support.delivery import deliver_now
from tests.support.servers import mail

AGENT = "eve@example.com"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WORDS = ("printer", "toner", "paper", "jam", "invoice", "refund", "login", "password",
         "screen", "cable", "driver", "update", "error", "crash", "slow", "network",
         "router", "office", "meeting", "order", "delivery", "parcel", "label", "account",
         "reset", "broken", "please", "thanks", "again", "today", "monday", "urgent")


def seed(app: App, cases: int, comments: int = 3, *, rng: random.Random | None = None,
         words: dict[tuple[int, int], str] | None = None) -> None:
    """``cases`` cases of random words, ``comments`` comments each, written with bulk
    Core inserts (the index triggers see them as they see every write); ``words`` puts a
    word at the end of (case number, comment index)."""
    rng = rng or random.Random(22)
    words = words or {}

    def text(length: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(length))

    with app.sessions.begin() as session:
        session.execute(insert(Case.__table__), [
            {"number": n, "subject": text(4), "description": text(30), "status": "New",
             "mailbox": "support@example.com", "supplied_email": f"c{n % 500}@customer.org",
             "created_at": START + timedelta(minutes=n), "updated_at": START}
            for n in range(1, cases + 1)])
        ids = dict(session.execute(select(Case.number, Case.id)).all())
        session.execute(insert(Comment.__table__), [
            {"case_id": ids[n], "body": f"{text(20)} {words.get((n, index), '')}".strip(),
             "author_email": f"c{n % 500}@customer.org", "author_kind": "contact",
             "public": True, "created_at": START + timedelta(minutes=n, seconds=index)}
            for n in range(1, cases + 1) for index in range(comments)])


def numbers(desk: Desk, query: str, **options: object) -> list[str]:
    return [row["number"] for row in desk.search(query, **options).rows]  # type: ignore[arg-type]


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: object) -> tuple[int, str,
                                                                                     str]:
    """``mailcase -c CONFIG ARGS`` on the test's app: exit code (argparse's too),
    stdout, stderr."""
    capsys.readouterr()
    try:
        code = main(["-c", str(tmp_path / "mailcase.toml"), *map(str, args)])
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def opened(capsys: pytest.CaptureFixture[str], tmp_path: Path, subject: str,
           body: str = "", email: str = "ann@customer.org") -> str:
    """A case opened with ``cases new``; its number."""
    code, out, err = cli(capsys, tmp_path, "cases", "new", "--email", email, "--subject",
                         subject, "--body", body or subject, "--as", AGENT)
    assert code == 0, err
    return out.split()[1]


def test_a_word_from_the_third_comment_among_ten_thousand_cases(app: App) -> None:
    """One word written only in the third comment of one case out of 10,000 (40,000
    texts) finds that case alone, and says it was found in a comment."""
    seed(app, 10_000, words={(7_777, 2): "zeppelin"})
    page = app.desk().search("Zeppelin")
    assert [row["number"] for row in page.rows] == ["00007777"]
    assert page.rows[0]["matched"] == ["comment"]
    assert page.rows[0]["snippet"].endswith("[zeppelin]")
    assert page.next_cursor is None


def test_words_are_anded_across_the_case_and_quotes_make_a_phrase(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every word must be in the case, in any of its texts; quoted words must stand
    next to each other in one text, in that order."""
    desk = app.desk()
    fire = opened(capsys, tmp_path, "Printer on fire", "It smokes.")
    other = opened(capsys, tmp_path, "Printer trouble", "The fire door is on the left.")
    assert desk.reply(int(other), "Toner is on its way.", desk.author(AGENT)) >= 0
    assert sorted(numbers(desk, "printer fire")) == sorted([fire, other])
    assert numbers(desk, '"on fire"') == [fire]
    assert numbers(desk, '"fire on"') == []
    assert numbers(desk, "fire toner") == [other]  # description and comment
    assert numbers(desk, '"printer on" fire') == [fire]


def test_an_address_or_a_domain_finds_the_cases_it_wrote(app: App) -> None:
    """A sender's address finds the cases it opened or commented on, its domain all of
    that domain's, exactly: not a longer address or a sub-domain."""
    for sender, subject in (("ann@customer.org", "Printer on fire"),
                            ("x.ann@customer.org", "Paper jam"),
                            ("carl@sub.customer.org", "Login broken")):
        deliver_now(app, mail(sender=sender, subject=subject), mail_from=sender,
                    rcpt="support@example.com")
    desk = app.desk()
    desk.reply(1002, "Which browser?", desk.author("bob@partner.example"))
    assert numbers(desk, "ann@customer.org") == ["00001000"]
    assert numbers(desk, "<ANN@Customer.ORG>") == ["00001000"]
    assert sorted(numbers(desk, "@customer.org")) == ["00001000", "00001001"]
    assert numbers(desk, "customer.org jam") == ["00001001"]
    assert numbers(desk, "partner.example") == ["00001002"]
    assert numbers(desk, "nobody@customer.org") == []
    [row] = desk.search("ann@customer.org").rows
    assert row["matched"] == ["sender"]


def test_an_internal_note_is_found_by_agents_only(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A word of an internal note finds its case from the (agents') command line, and
    not for a door that leaves internal notes out."""
    number = opened(capsys, tmp_path, "Printer on fire")
    assert cli(capsys, tmp_path, "cases", "note", number, "--body",
               "Customer owes us three invoices.", "--as", AGENT)[0] == 0
    code, out, err = cli(capsys, tmp_path, "cases", "search", "invoices", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["number"], row["matched"]) == (number, ["internal note"])
    assert "[invoices]" in row["snippet"]
    assert numbers(app.desk(), "invoices", internal=False) == []


def test_a_comment_moved_by_a_merge_is_found_on_its_new_case(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After ``cases merge`` a word of a comment the merge moved finds the case it was
    merged into, which now holds it."""
    source = opened(capsys, tmp_path, "Printer smokes", "Smoke everywhere.")
    target = opened(capsys, tmp_path, "Printer on fire", "Flames.")
    assert cli(capsys, tmp_path, "cases", "reply", source, "--body",
               "Unplug the cartridge carousel.", "--as", AGENT)[0] == 0
    assert numbers(app.desk(), "carousel") == [source]
    assert cli(capsys, tmp_path, "cases", "merge", source, "--into", target, "--as",
               AGENT)[0] == 0
    code, out, _ = cli(capsys, tmp_path, "cases", "search", "carousel", "--json")
    assert code == 0
    assert [(row["number"], row["matched"]) for row in json.loads(out)] == [
        (target, ["comment"])]
    # The source's opening text came along as a comment of the target too.
    assert sorted(numbers(app.desk(), "smoke everywhere")) == sorted([source, target])


# None of their words is in the seeded cases' text (WORDS).
HOSTILE = ('"', '""', '"""', "*", "**", "-", "--", "-flamingo", "NOT flamingo", "flamingo OR",
           "NEAR(flamingo fire)", "NEAR/2", "(", ")", "(()", "a AND", "AND", "^flamingo",
           "subject:flamingo", "{subject body}:fire", "sender:x", "'", "''", "\\", "%", "_",
           "'; DROP TABLE cases; --", "\" OR 1=1 --", "x' OR '1'='1", "!", "&", "|", "<->",
           ":*", "fire:*", "flamingo & !fire", "a <-> b", "@", "@@", "@.", "a@", "@b", "..",
           "\x00", "\u202e", "zz" * 450, "語" * 999, "ǅ", "%s %d {0}", "$1", "`id`", "[x]",
           "ann@", "@customer", "x@y@z.org")


def test_hostile_queries_find_nothing_and_never_fail(app: App) -> None:
    """Query syntax, operators and SQL typed as a search are words or nothing: no error,
    no match (the store holds none of those words), and the tables are still there."""
    seed(app, 20, comments=1)
    desk = app.desk()
    for query in HOSTILE:
        assert numbers(desk, query) == [], query
    assert len(numbers(desk, "printer", limit=200)) > 0


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=st.text(max_size=80))
def test_any_text_is_a_query_or_refused_as_empty(app: App, query: str) -> None:
    """Whatever text is given, a search answers (here: nothing, the store is empty), or
    says in a BadValue that it is blank or has too many words."""
    try:
        page = app.desk().search(query)
    except BadValue as refused:
        assert not query.strip() or "at most" in str(refused)
    else:
        assert page.rows == []


def test_case_and_accents_do_not_matter_and_a_star_ends_a_prefix(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CAFÉ finds café and cafe, and print* finds printer."""
    number = opened(capsys, tmp_path, "Café au lait spilt", "The printer's tray is wet.")
    desk = app.desk()
    for query in ("cafe", "CAFÉ", "café", "print*", "TRAY", "printer s"):
        assert numbers(desk, query) == [number], query
    assert numbers(desk, "prin") == []


def test_best_match_first_then_newest_and_pages_that_hold_still(app: App) -> None:
    """A word in a subject outranks it deep in a comment; equal matches come newest
    first; pages meet without a gap or an overlap, a case opened meanwhile does not
    shift them, and a cursor is refused by another search."""
    seed(app, 30, comments=1, words={(n, 0): "gasket" for n in range(1, 26)})
    with app.sessions.begin() as session:
        session.execute(update(Case).where(Case.number == 3).values(subject="Gasket leaks"))
    desk = app.desk()
    first = desk.search("gasket", limit=10)
    assert first.rows[0]["number"] == "00000003"
    assert first.rows[0]["matched"] == ["subject", "comment"]
    numbers_seen = [row["number"] for row in first.rows]
    assert numbers_seen[1:3] == ["00000025", "00000024"]
    with app.sessions.begin() as session:
        session.execute(insert(Case.__table__).values(
            number=99, subject="Gasket", description="", status="New",
            mailbox="support@example.com", created_at=START + timedelta(days=9),
            updated_at=START))
    cursor = first.next_cursor
    while cursor is not None:
        page = desk.search("gasket", limit=10, cursor=cursor)
        numbers_seen += [row["number"] for row in page.rows]
        cursor = page.next_cursor
    assert sorted(numbers_seen) == [f"{n:08d}" for n in range(1, 26)]
    assert first.next_cursor is not None
    with pytest.raises(BadValue, match="another search"):
        desk.search("printer", cursor=first.next_cursor)
    with pytest.raises(BadValue, match="not a search cursor"):
        desk.search("gasket", cursor="bogus")
    assert numbers(desk, "gasket")[0] == "00000099"  # a new search sees it


def test_the_index_follows_edits_deletes_and_rollbacks(app: App) -> None:
    """Changed text is found by its new words only, a deleted comment not at all, and a
    comment rolled back never was; the case's own row follows its subject."""
    seed(app, 2, comments=1, words={(1, 0): "walrus"})
    desk = app.desk()
    with app.sessions.begin() as session:
        session.execute(update(Comment).where(Comment.body.contains("walrus"))
                        .values(body="Now about a narwhal."))
        session.execute(update(Case).where(Case.number == 2).values(subject="Otter"))
    assert (numbers(desk, "walrus"), numbers(desk, "narwhal")) == ([], ["00000001"])
    assert numbers(desk, "otter") == ["00000002"]
    with app.sessions.begin() as session:
        session.execute(delete(Comment).where(Comment.body.contains("narwhal")))
    assert numbers(desk, "narwhal") == []
    with app.sessions() as session:
        session.execute(insert(Comment.__table__).values(
            case_id=1, body="A pelican.", author_kind="agent", public=True, created_at=START))
        assert len(desk.search("pelican").rows) == 0  # not committed: not visible
        session.rollback()
    assert numbers(desk, "pelican") == []


def test_search_from_the_command_line(app: App, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``cases search`` prints each case with where it matched and a snippet; --json
    gives cases list's fields with ``snippet`` and ``matched``; --open leaves closed
    cases out; --limit says on stderr when there are more."""
    closed = opened(capsys, tmp_path, "Printer on fire", "Flames everywhere.")
    assert cli(capsys, tmp_path, "cases", "close", closed, "--resolution", "Replaced")[0] == 0
    fresh = opened(capsys, tmp_path, "Printer jams", "Paper stuck, flames none.")
    code, out, err = cli(capsys, tmp_path, "cases", "search", "flames")
    assert (code, err) == (0, "")
    assert f"{fresh}  [New]" in out and "matched: description" in out
    assert "    Paper stuck, [flames] none.\n" in out
    code, out, err = cli(capsys, tmp_path, "cases", "search", "flames", "--json")
    listed = json.loads(cli(capsys, tmp_path, "cases", "list", "--json")[1])
    rows = {row["number"]: row for row in json.loads(out)}
    assert set(rows) == {fresh, closed}
    assert set(rows[fresh]) == set(listed[0]) | {"snippet", "matched"}
    assert {key: rows[fresh][key] for key in listed[0]} == listed[0]
    assert (rows[fresh]["snippet"], rows[fresh]["matched"]) == (
        "Paper stuck, [flames] none.", ["description"])
    code, out, _ = cli(capsys, tmp_path, "cases", "search", "flames", "--open", "--json")
    assert [row["number"] for row in json.loads(out)] == [fresh]
    code, out, err = cli(capsys, tmp_path, "cases", "search", "printer", "--limit", "1")
    assert code == 0 and err.startswith("mailcase: showing the best 1 matches")


@pytest.mark.parametrize(("args", "says"), [
    (("   ",), "the search is empty"),
    (("printer", "--limit", "0"), "argument --limit"),
    (("printer", "--limit", "201"), "between 1 and 200"),
    (("x " * 600,), "longer than 1,000 characters"),
    ((" ".join(f"w{n}" for n in range(17)),), "at most 16"),
])
def test_a_mistake_in_a_search_exits_2_with_one_line(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
        says: str) -> None:
    """An empty or overlong query or a bad limit: exit 2, one line on stderr."""
    code, out, err = cli(capsys, tmp_path, "cases", "search", *args)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and says in err, err
    assert err.startswith("mailcase cases search: ")


def test_a_word_in_more_texts_than_its_window_finds_the_newest_cases_and_says_so(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word in a comment of each of 30 cases, more than the 10 texts read whole, is
    searched in its window of 5: it finds the 5 newest of those cases and says the
    search was limited; so do two such words, and a
    case holding both only in an old comment is not found. A window reaches back over
    ``REACH`` ids at most."""
    monkeypatch.setattr(searchindex, "WHOLE", 10)
    monkeypatch.setattr(searchindex, "CANDIDATES", 5)
    seed(app, 30, comments=2, words={**{(n, 0): "gasket" for n in range(1, 31)},
                                     **{(n, 1): "valve" for n in range(1, 31)}})
    desk = app.desk()
    page = desk.search("gasket", limit=200)
    assert sorted(row["number"] for row in page.rows) == [f"{n:08d}" for n in range(26, 31)]
    assert page.limited and page.next_cursor is None
    both = desk.search("gasket valve", limit=200)
    assert both.limited
    assert "00000003" not in [row["number"] for row in both.rows]
    assert sorted(row["number"] for row in both.rows) == [f"{n:08d}" for n in range(26, 31)]
    # A window looks back over so many ids at most: the 6 newest comments, cases 28-30's.
    monkeypatch.setattr(searchindex, "REACH", 6)
    assert sorted(numbers(desk, "gasket")) == [f"{n:08d}" for n in range(28, 31)]


def test_a_rarer_word_reaches_an_old_case_behind_the_window_exactly(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a word in more texts than are read whole, a word in fewer makes the
    search exact: an old case holding both is found, wherever its texts hold the common
    word, and the page is not limited; so is a rare word alone (one in more texts than a
    window holds too), and an address."""
    monkeypatch.setattr(searchindex, "WHOLE", 10)
    monkeypatch.setattr(searchindex, "CANDIDATES", 5)
    seed(app, 30, comments=2, words={**{(n, 0): "gasket" for n in range(1, 31)},
                                     **{(n, 1): "valve" for n in range(5, 14)},
                                     (3, 1): "zeppelin", (4, 0): "gasket zeppelin"})
    desk = app.desk()
    page = desk.search("gasket zeppelin", limit=200)
    assert sorted(row["number"] for row in page.rows) == ["00000003", "00000004"]
    assert not page.limited
    assert page.rows[0]["matched"] == ["comment"]
    assert sorted(numbers(desk, "zeppelin")) == ["00000003", "00000004"]
    assert not desk.search("zeppelin").limited
    # In 9 texts, more than a window holds and fewer than are read whole: all found.
    valve = desk.search("valve")
    assert (len(valve.rows), valve.limited) == (9, False)
    # c3@customer.org wrote cases 3, 503…: one case here, under its window.
    found = desk.search("c3@customer.org gasket")
    assert ([row["number"] for row in found.rows], found.limited) == (["00000003"], False)


def test_pages_under_the_window_neither_repeat_nor_skip(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paged three at a time, a search limited to windows of 7 texts gives the same
    cases as one page of all of them, once each, though cases and comments holding the
    word are written between the pages."""
    monkeypatch.setattr(searchindex, "WHOLE", 10)
    monkeypatch.setattr(searchindex, "CANDIDATES", 7)
    seed(app, 40, comments=1, words={(n, 0): "gasket" for n in range(1, 41)})
    with app.sessions.begin() as session:
        session.execute(update(Case).where(Case.number.in_([5, 38])).values(
            subject="Gasket leaks"))
    desk = app.desk()
    whole = numbers(desk, "gasket", limit=200)
    # The 7 newest comments (cases 34-40), and both cases' own texts: all 2 of them.
    assert sorted(whole) == ["00000005", *(f"{n:08d}" for n in range(34, 41))]
    seen: list[str] = []
    page = desk.search("gasket", limit=3)
    while True:
        assert page.limited
        seen += [row["number"] for row in page.rows]
        if page.next_cursor is None:
            break
        with app.sessions.begin() as session:
            number = 100 + len(seen)
            session.execute(insert(Case.__table__).values(
                number=number, subject="Gasket again", description="", status="New",
                mailbox="support@example.com", created_at=START + timedelta(days=9),
                updated_at=START))
            session.execute(insert(Comment.__table__).values(
                case_id=session.scalar(select(Case.id).where(Case.number == 1)),
                body="One more gasket.", author_kind="agent", public=True,
                created_at=START + timedelta(days=9)))
        page = desk.search("gasket", limit=3, cursor=page.next_cursor)
    assert sorted(seen) == sorted(whole) and len(set(seen)) == len(seen)


def test_a_limited_search_says_so_on_the_command_line_and_in_the_api_json(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``cases search`` says in one line on stderr that only the newest texts were
    searched, and what reaches older cases; stdout stays the rows (JSON too)."""
    monkeypatch.setattr(searchindex, "WHOLE", 3)
    monkeypatch.setattr(searchindex, "CANDIDATES", 2)
    for subject in ("Printer jams", "Printer smokes", "Printer is slow"):
        opened(capsys, tmp_path, subject)
    code, out, err = cli(capsys, tmp_path, "cases", "search", "printer", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    [line] = err.splitlines()
    assert "newest 2 case texts and 2 comments" in line and "a rarer word" in line
    code, out, err = cli(capsys, tmp_path, "cases", "search", "smokes")
    assert (code, err) == (0, "")
