"""The ``mailcase`` command as a user meets it: exit codes, one-line errors, JSON output, and
the real entry points (the console script and ``python -m mailcase``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Collaborator, InboundMail
from tests.support.mailsink import free_port
from tests.support.paths import ROOT
from tests.support.servers import mail, write_config

VENV_BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = VENV_BIN / "mailcase"
SECRET = "# test secret\n" + "0123456789abcdef" * 4 + "\n"
ATTACHMENT = bytes(range(64))

# The fields DESIGN.md's public contract promises in `cases show NUMBER --json`.
CASE_FIELDS = {
    "number", "subject", "status", "is_closed", "priority", "origin", "supplied_email",
    "contact", "owner", "parent", "is_escalated", "created_at", "closed_at",
}
DETAIL_FIELDS = CASE_FIELDS | {"collaborators", "comments", "events", "children", "merged_into"}
COMMENT_FIELDS = {"author", "body", "public", "created_at", "attachments"}


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``mailcase ARGS`` in-process; its exit code (argparse's own too), stdout and
    stderr."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str) -> str:
    """A user error: non-zero exit, exactly one line on stderr, prefixed with the
    command's name (``mailcase:``, or ``mailcase cases list:`` for a usage mistake), no
    traceback."""
    assert code != 0
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert re.match(r"mailcase( [a-z-]+)*: ", lines[0]), lines[0]
    return lines[0]


def customer_mail(
    message_id: str, *, subject: str = "Printer on fire", body: str = "My printer is on fire.\n",
    filename: str | None = None, **headers: str,
) -> bytes:
    """A customer's mail as an MTA would pipe it, optionally with one binary attachment."""
    message: EmailMessage = mail(subject=subject, body=body, message_id=message_id, **headers)
    if filename is not None:
        message.add_attachment(ATTACHMENT, maintype="application", subtype="octet-stream",
                               filename=filename)
    return bytes(message)


def ingest(capsys: pytest.CaptureFixture[str], config: Path, raw: bytes,
           name: str = "mail.eml") -> tuple[int, str, str]:
    """Feed ``raw`` to ``mailcase ingest FILE`` as an MTA's pipe would."""
    path = config.parent / name
    path.write_bytes(raw)
    return run(capsys, "-c", config, "ingest", path, "--sender", "ann@customer.org",
               "--recipient", "support@example.com")


def inbound_count(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(InboundMail)) or 0)


@pytest.fixture
def sqlite_config(tmp_path: Path) -> Path:
    """A config of our own on a SQLite file that does not exist yet; outbound to a maildir."""
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None)


@pytest.fixture
def ready_config(sqlite_config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """``sqlite_config`` after ``mailcase db upgrade``."""
    code, _, err = run(capsys, "-c", sqlite_config, "db", "upgrade")
    assert code == 0, err
    return sqlite_config


@pytest.fixture
def case_config(ready_config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """``ready_config`` holding case 00001000, opened by ``mailcase ingest`` + ``process``."""
    code, _, err = ingest(capsys, ready_config, customer_mail("<first@customer.org>"))
    assert code == 0, err
    code, _, err = run(capsys, "-c", ready_config, "process")
    assert code == 0, err
    return ready_config


def subprocess_env() -> dict[str, str]:
    """The environment of a real run, without a config named by the test runner's shell."""
    env = dict(os.environ)
    env.pop("MAILCASE_CONFIG", None)
    return env


# --- user errors ---------------------------------------------------------------------------


ARGUMENT_MISTAKES = {  # exit 2, whether argparse or the command finds them
    "bad-number": (["cases", "show", "abc"], "'abc' is not a case number"),
    "empty-resolution": (["cases", "close", "1000", "--resolution", "  "], "resolution"),
    "unknown-status": (["cases", "update", "1000", "--status", "Nonsense"], "Nonsense"),
    "unknown-priority": (["cases", "update", "1000", "--priority", "Urgent"], "Urgent"),
    "owner-not-an-address": (["cases", "update", "1000", "--owner", "bob"], "'bob'"),
    "nothing-to-update": (["cases", "update", "1000"], "--status, --priority, --owner or --parent"),
    "no-text": (["cases", "note", "1000"], "--body"),
    "empty-text": (["cases", "reply", "1000", "--body", " "], "the text is empty"),
    "agent-not-an-address": (["cases", "reply", "1000", "--body", "Hi", "--as", "bob"],
                             "'bob' is not an email address"),
    "list-unknown-status": (["cases", "list", "--status", "Bogus"], "Bogus"),
    "bad-limit": (["cases", "list", "--limit", "0"], "--limit"),
    "collaborator-list": (["collaborators", "add", "1000", "a@x.org, b@x.org"],
                          "not one plain email address"),
    "replay-nothing": (["inbound", "replay"], "--all-parked"),
    "replay-both": (["inbound", "replay", "1", "--all-parked"], "one or the other"),
    "outbox-bad-id": (["outbox", "retry", "x"], "'x' is not a whole number"),
    "user-with-colon": (["hash-password", "a:b"], "':'"),
    "new-not-an-address": (["cases", "new", "--email", "nobody", "--subject", "x"],
                           "'nobody' is not one plain email address"),
    "new-empty-subject": (["cases", "new", "--email", "a@x.org", "--subject", " "],
                          "a case needs a subject"),
    "clone-empty-subject": (["cases", "clone", "1000", "--subject", " "], "subject is empty"),
    "queue-with-colon": (["queues", "add", "a:b", "--members", "x@y.org"], "cannot name a queue"),
    "queue-no-members": (["queues", "add", "Q", "--members", ","], "--members"),
    "members-nothing": (["queues", "members", "Q"], "--add or --remove"),
}
REFUSED_REQUESTS = {  # well-formed, but they cannot be done: exit 1
    "unknown-case": (["cases", "show", "99999"], "there is no case 00099999"),
    "reopen-open": (["cases", "reopen", "1000"], "is not closed"),
    "status-that-closes": (["cases", "update", "1000", "--status", "Closed"],
                           "close it with a resolution"),
    "not-a-collaborator": (["collaborators", "remove", "1000", "eve@customer.org"],
                           "not a collaborator"),
    "unknown-inbound": (["inbound", "replay", "99999"], "no inbound mail 99999"),
    "unknown-outbound": (["outbox", "retry", "99999"], "no outbound mail 99999"),
}


@pytest.mark.parametrize(("args", "says"), ARGUMENT_MISTAKES.values(),
                         ids=ARGUMENT_MISTAKES.keys())
def test_an_argument_mistake_exits_2_in_one_line_naming_the_command(
    case_config: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    """A mistake in the command line exits 2 with one line naming the command and its
    --help, as argparse's own mistakes do, whether argparse or the command found it."""
    code, out, err = run(capsys, "-c", case_config, *args)
    line = assert_one_line_error(code, err)
    assert code == 2, line
    assert says in line
    assert line.startswith(f"mailcase {args[0]}") and "--help" in line
    assert out == ""


@pytest.mark.parametrize(("args", "says"), REFUSED_REQUESTS.values(),
                         ids=REFUSED_REQUESTS.keys())
def test_a_refused_request_exits_1_in_one_line(
    case_config: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    """A well-formed request the case rules or the queues refuse exits 1, one line."""
    code, out, err = run(capsys, "-c", case_config, *args)
    line = assert_one_line_error(code, err)
    assert code == 1, line
    assert line.startswith("mailcase: ") and says in line
    assert out == ""


def test_close_with_empty_resolution_leaves_case_open(
    case_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused close changes nothing: the case is still open afterwards."""
    code, _, err = run(capsys, "-c", case_config, "cases", "close", "1000", "--resolution", " ")
    assert_one_line_error(code, err)
    code, out, _ = run(capsys, "-c", case_config, "cases", "show", "1000", "--json")
    assert code == 0
    assert json.loads(out)["is_closed"] is False


def test_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config with a misspelt key stops any command with one line naming smtp.prot."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None,
                          smtp={"prot": 25})
    code, out, err = run(capsys, "-c", config, "cases", "list")
    line = assert_one_line_error(code, err)
    assert "smtp.prot: unknown key" in line
    assert str(config) in line
    assert out == ""


def test_missing_config_file_is_one_line_saying_how_to_name_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A -c pointing nowhere says so in one line, mentioning -c/--config and MAILCASE_CONFIG."""
    code, _, err = run(capsys, "-c", tmp_path / "nowhere.toml", "check-config")
    line = assert_one_line_error(code, err)
    assert "nowhere.toml" in line
    assert "-c/--config" in line
    assert "MAILCASE_CONFIG" in line


def unreachable_database(tmp_path: Path, where: str) -> str:
    """A database URL that fails at once: a SQLite file under a regular file, or a closed port."""
    if where == "sqlite-under-a-file":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a regular file\n", encoding="utf-8")
        return f"sqlite:///{blocker / 'mailcase.db'}"
    return f"postgresql://mailcase@127.0.0.1:{free_port()}/mailcase"


@pytest.mark.parametrize("where", ["sqlite-under-a-file", "postgresql-closed-port"])
def test_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """cases list on a database that cannot be opened says so in one line, no traceback."""
    config = write_config(tmp_path, unreachable_database(tmp_path, where), None)
    (tmp_path / "token-secret").write_text(SECRET, encoding="utf-8")  # only the database fails
    code, out, err = run(capsys, "-c", config, "cases", "list")
    line = assert_one_line_error(code, err)
    assert "database" in line
    assert out == ""


# --- choosing the config file --------------------------------------------------------------


def test_config_named_by_environment_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -c, the command reads the file $MAILCASE_CONFIG names."""
    folder = tmp_path / "etc"
    folder.mkdir()
    config = write_config(folder, f"sqlite:///{folder / 'mailcase.db'}", None,
                          mailbox={"address": "help@env.example"})
    monkeypatch.setenv("MAILCASE_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check-config")
    assert code == 0, err
    assert "help@env.example" in out


def test_config_in_current_directory_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -c and $MAILCASE_CONFIG, the command reads ./mailcase.toml."""
    write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None,
                 mailbox={"address": "help@cwd.example"})
    monkeypatch.delenv("MAILCASE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check-config")
    assert code == 0, err
    assert "help@cwd.example" in out


# --- cases list / show --json ----------------------------------------------------------------


@pytest.fixture
def threaded_case(app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Case 00001000 on each engine: a first mail with an attachment, then a reply with another,
    both through ``mailcase ingest`` and ``mailcase process``; plus one collaborator."""
    config = tmp_path / "mailcase.toml"
    first = customer_mail("<first@customer.org>", filename="screenshot.bin")
    reply = customer_mail("<second@customer.org>", subject="Re: Printer on fire",
                          body="Here is the log.\n", filename="printer.log",
                          In_Reply_To="<first@customer.org>")
    for name, raw in (("first.eml", first), ("reply.eml", reply)):
        code, out, err = ingest(capsys, config, raw, name)
        assert (code, "stored" in out) == (0, True), err
        code, _, err = run(capsys, "-c", config, "process")
        assert code == 0, err
    with app.sessions.begin() as session:
        case = session.scalars(select(Case)).one()
        session.add(Collaborator(case_id=case.id, email="bob@customer.org", name="Bob Helper",
                                 added_by="ann@customer.org", created_at=datetime.now(UTC)))
    return config


def test_cases_list_json_has_contract_fields(
    threaded_case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cases list --json` gives, per case, every scalar field of the public contract."""
    code, out, err = run(capsys, "-c", threaded_case, "cases", "list", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    missing = CASE_FIELDS - set(row)
    assert not missing, f"cases list --json lacks {sorted(missing)}"
    assert row["number"] == "00001000"
    assert row["subject"] == "Printer on fire"
    assert row["status"] == "New"
    assert row["is_closed"] is False
    assert row["supplied_email"] == "ann@customer.org"


def test_cases_show_tells_the_history(
    threaded_case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cases show` and its --json list the feed (who, when, what); a reopened case no
    longer shows the resolution of its close, which stays in its history."""
    config = threaded_case
    for args in (("update", "00001000", "--status", "Working", "--as", "eve@example.com"),
                 ("close", "00001000", "--resolution", "Fuser replaced.", "--as",
                  "eve@example.com"),
                 ("reopen", "00001000", "--as", "eve@example.com")):
        assert run(capsys, "-c", config, "cases", *args)[0] == 0
    code, out, err = run(capsys, "-c", config, "cases", "show", "00001000", "--json")
    assert code == 0, err
    case = json.loads(out)
    assert case["resolution"] is None
    events = case["events"]
    assert [e["kind"] for e in events][:1] == ["created"]
    assert {"comment", "status", "closed", "reopened"} <= {
        e["kind"] for e in events}
    status = next(e for e in events if e["kind"] == "status")
    assert status["actor"] == "eve@example.com"
    assert status["summary"] == "status New → Working"
    assert datetime.fromisoformat(status["at"]).tzinfo is not None
    reopened = events[-1]
    assert reopened["kind"] == "reopened"
    assert reopened["detail"]["resolution"] == "Fuser replaced."
    code, out, err = run(capsys, "-c", config, "cases", "show", "00001000")
    assert code == 0, err
    assert "Resolution:" not in out
    history = out.split("History:", 1)[1]
    assert "eve@example.com  closed: Fuser replaced." in history
    assert "reopened as Working (its resolution was: Fuser replaced.)" in history


def test_cases_show_json_has_contract_fields(
    threaded_case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cases show N --json` gives every field of the public contract, with collaborators,
    comments and their attachments in the promised shape (each with the ID `cases
    attachment` takes)."""
    code, out, err = run(capsys, "-c", threaded_case, "cases", "show", "00001000", "--json")
    assert code == 0, err
    case = json.loads(out)
    missing = DETAIL_FIELDS - set(case)
    assert not missing, f"cases show --json lacks {sorted(missing)}"
    assert case["number"] == "00001000"
    assert case["subject"] == "Printer on fire"
    assert (case["status"], case["is_closed"], case["closed_at"]) == ("New", False, None)
    assert case["priority"] == "Medium"
    assert case["origin"] == "Email"
    assert case["supplied_email"] == "ann@customer.org"
    assert case["contact"] == "ann@customer.org"
    assert (case["owner"], case["parent"], case["is_escalated"]) == (None, None, False)
    assert (case["children"], case["merged_into"]) == ([], None)
    assert datetime.fromisoformat(case["created_at"]).tzinfo is not None
    assert case["collaborators"] == [{"email": "bob@customer.org", "name": "Bob Helper"}]
    assert [a["filename"] for a in case["attachments"]] == ["screenshot.bin"]
    [comment] = case["comments"]
    assert set(comment) >= COMMENT_FIELDS, f"comment lacks {sorted(COMMENT_FIELDS - set(comment))}"
    assert comment["author"] == "ann@customer.org"
    assert comment["body"] == "Here is the log."
    assert comment["public"] is True
    assert datetime.fromisoformat(comment["created_at"]).tzinfo is not None
    [first_file] = case["attachments"]
    assert comment["attachments"] == [
        {"id": first_file["id"] + 1, "filename": "printer.log", "size": len(ATTACHMENT),
         "content_type": "application/octet-stream", "content_id": None, "stored": True},
    ]


# --- ingest exit codes -----------------------------------------------------------------------


def test_ingest_stores_once_and_accepts_a_duplicate(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ingest exits 0 saying 'stored'; the same mail again exits 0 and is not stored twice."""
    config = tmp_path / "mailcase.toml"
    raw = customer_mail("<once@customer.org>")
    code, out, err = ingest(capsys, config, raw)
    assert code == 0, err
    assert out.startswith("stored")
    assert "duplicate" not in out
    code, out, err = ingest(capsys, config, raw)
    assert code == 0, err
    assert "duplicate" in out
    assert inbound_count(app) == 1


def test_ingest_too_large_exits_65(
    make_app: Callable[..., App], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail over smtp.max_message_size is refused for good (EX_DATAERR 65), not stored."""
    app = make_app(smtp={"max_message_size": 400})
    raw = customer_mail("<big@customer.org>", body="x" * 1000 + "\n")
    assert len(raw) > 400
    code, out, err = ingest(capsys, tmp_path / "mailcase.toml", raw)
    assert code == 65
    line = assert_one_line_error(code, err)
    assert "400" in line
    assert out == ""
    assert inbound_count(app) == 0


@pytest.mark.parametrize("where", ["sqlite-under-a-file", "postgresql-closed-port"])
def test_ingest_unreachable_database_exits_75(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """When the database cannot be reached, ingest exits 75 (EX_TEMPFAIL) so the MTA retries."""
    config = write_config(tmp_path, unreachable_database(tmp_path, where), None)
    (tmp_path / "token-secret").write_text(SECRET, encoding="utf-8")  # only the database fails
    code, out, err = ingest(capsys, config, customer_mail("<retry@customer.org>"))
    assert code == 75
    line = assert_one_line_error(code, err)
    assert "not stored" in line
    assert out == ""


# --- check-config ----------------------------------------------------------------------------


def test_check_config_accepts_a_good_config(
    sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config exits 0 and says the config is fine, naming the mailbox."""
    code, out, err = run(capsys, "-c", sqlite_config, "check-config")
    assert code == 0, err
    assert "config OK" in out
    assert "support@example.com" in out
    assert err == ""


def test_check_config_creates_no_database(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Checking is read-only: a SQLite file (and its folder) that does not exist yet is
    reported as new and left uncreated, whether the check passes or fails."""
    database = tmp_path / "var" / "mailcase.db"
    good = write_config(tmp_path, f"sqlite:///{database}", None)
    code, out, err = run(capsys, "-c", good, "check-config", "--no-ports")
    assert code == 0, err
    assert "database new" in out
    bad = write_config(tmp_path, f"sqlite:///{database}", None, templates={"dir": "missing"})
    assert run(capsys, "-c", bad, "check-config", "--no-ports")[0] != 0
    assert not database.parent.exists()


@pytest.mark.parametrize("filename", ["acknowledgement.txt.j2", "agent_reply.html.j2"])
def test_check_config_names_broken_template_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], filename: str
) -> None:
    """A template syntax error, in a text or an HTML part, fails check-config with the
    template's path and line number."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    broken = templates / filename
    lines = broken.read_text(encoding="utf-8").splitlines()
    lines[3] = "case {% if %} and will answer as soon as we can."
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None,
                          templates={"dir": "templates"})
    code, out, err = run(capsys, "-c", config, "check-config")
    assert code != 0
    line = assert_one_line_error(code, err)
    assert str(broken) in line
    assert "line 4" in line
    assert "config OK" not in out


# --- db upgrade and a database never created -------------------------------------------------


def test_db_upgrade_creates_then_reports_current(
    sqlite_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """db upgrade on a new SQLite file upgrades it; run again, it says the schema is current."""
    code, out, err = run(capsys, "-c", sqlite_config, "db", "upgrade")
    assert code == 0, err
    assert "upgraded" in out
    assert (tmp_path / "mailcase.db").exists()
    code, out, err = run(capsys, "-c", sqlite_config, "db", "upgrade")
    assert code == 0, err
    assert "already" in out
    assert "upgraded" not in out


def test_cases_on_never_created_database_says_run_db_upgrade(
    sqlite_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cases list on a database without a schema says, in one line, how to create it."""
    (tmp_path / "token-secret").write_text(SECRET, encoding="utf-8")
    code, _, err = run(capsys, "-c", sqlite_config, "cases", "list")
    line = assert_one_line_error(code, err)
    assert "'mailcase db upgrade'" in line
    assert "'mailcase serve'" in line


def test_cases_on_fresh_install_says_run_db_upgrade(
    sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after installing (no database, no token secret yet), cases list points the user
    at 'mailcase db upgrade' rather than at a missing secret file."""
    code, _, err = run(capsys, "-c", sqlite_config, "cases", "list")
    line = assert_one_line_error(code, err)
    assert "'mailcase db upgrade'" in line
    assert "'mailcase serve'" in line


# --- the real entry points -------------------------------------------------------------------


def test_console_script_reports_user_error_in_one_line(ready_config: Path) -> None:
    """The installed `mailcase` script exits 1 with one stderr line for an unknown case."""
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "-c", str(ready_config), "cases", "show", "99999"],
        capture_output=True, text=True, env=subprocess_env(), cwd=ready_config.parent,
        timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.returncode, result.stderr)
    assert "00099999" in result.stderr


def test_console_script_ingests_from_stdin(ready_config: Path) -> None:
    """`mailcase ingest` reads the mail from stdin as an MTA pipes it, and exits 0 'stored'."""
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "-c", str(ready_config), "ingest",
         "--sender", "ann@customer.org", "--recipient", "support@example.com"],
        input=customer_mail("<piped@customer.org>"), capture_output=True,
        env=subprocess_env(), cwd=ready_config.parent, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("stored")


def test_python_m_mailcase_lists_cases_as_json(case_config: Path) -> None:
    """`python -m mailcase` is the same command: it lists the case as JSON."""
    result = subprocess.run(
        [sys.executable, "-m", "mailcase", "-c", str(case_config), "cases", "list", "--json"],
        capture_output=True, text=True, env=subprocess_env(), cwd=case_config.parent,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [row["number"] for row in json.loads(result.stdout)] == ["00001000"]


def test_body_and_body_file_together_are_a_usage_error(
    case_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Which text would be meant is unclear: argparse refuses the pair (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["-c", str(case_config), "cases", "reply", "1000", "--body", "a",
              "--body-file", "-"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["cases", "list"], ["inbound", "list"],
                                     ["outbox", "list", "--json"]])
def test_a_list_cut_by_its_limit_says_so_on_stderr(
    case_config: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Two cases, two inbound mails, two acknowledgements, listed one at a time: stderr
    says there are more; stdout holds exactly the one row (JSON stays parseable)."""
    second = customer_mail("<second@customer.org>", sender="Bob <bob@customer.org>")
    assert ingest(capsys, case_config, second)[0] == 0
    assert run(capsys, "-c", case_config, "process")[0] == 0
    code, out, err = run(capsys, "-c", case_config, *command, "--limit", "1")
    assert code == 0, err
    assert "showing the newest 1" in err and "--limit" in err
    if "--json" in command:
        assert len(json.loads(out)) == 1
    code, out, err = run(capsys, "-c", case_config, *command, "--limit", "2")
    assert (code, err) == (0, "")


@pytest.mark.parametrize("command", [["cases", "show", "00001000"],
                                     ["cases", "show", "00001000", "--json"]])
def test_a_reader_that_stops_early_is_no_error(ready_config: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               command: list[str]) -> None:
    """`mailcase … | head -1` over a real pipe, with more output than the pipe holds:
    the reader closes early, mailcase stops quietly as a Unix tool does (128 + SIGPIPE),
    with nothing on stderr (it exited 70 with "unexpected error: BrokenPipeError")."""
    story = "".join(f"Line {number} of a long story about a printer.\n"
                    for number in range(6000))  # about 300 KB: far more than a pipe holds
    assert ingest(capsys, ready_config, customer_mail("<long@customer.org>", body=story))[0] == 0
    assert run(capsys, "-c", ready_config, "process")[0] == 0
    shell = (f"{CONSOLE_SCRIPT} -c {ready_config} {' '.join(command)} 2>err | head -c 100 "
             ">/dev/null; echo ${PIPESTATUS[0]}")
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True,
                            env=subprocess_env(), cwd=ready_config.parent, timeout=120,
                            check=False)
    # 141 when the write that found the pipe closed raised; 0 when the kernel took part
    # of it and the rest never had to be written. Never 70 and an error message.
    assert result.stdout.strip() in ("141", "0"), (result.stdout, result.stderr)
    assert (ready_config.parent / "err").read_text() == ""


# --- envelope sender of piped mail -----------------------------------------------------------


@pytest.mark.parametrize(("headers", "status"), [
    ("", "processed"),                              # unknown sender: not a bounce
    ("Return-Path: <ann@customer.org>\n", "processed"),
    ("Return-Path: <>\n", "dropped"),               # the null sender of a bounce
])
def test_ingest_without_sender_reads_return_path(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], headers: str, status: str
) -> None:
    """Without --sender, ingest takes the envelope sender from Return-Path; with none at
    all the sender is unknown, and the mail is not mistaken for a bounce."""
    path = tmp_path / "piped.eml"
    path.write_bytes(headers.encode() + customer_mail("<piped@customer.org>"))
    code, out, err = run(capsys, "-c", tmp_path / "mailcase.toml", "ingest", path)
    assert code == 0, err
    assert out.endswith(f"status {status}\n")
    with app.sessions() as session:
        assert session.scalars(select(InboundMail.status)).one() == status


# --- usage and database errors are one line on both engines ----------------------------------


@pytest.mark.parametrize("argv", [
    ["cases", "list", "--limit", "-1"],
    ["inbound", "list", "--limit", "0"],
    ["inbound", "replay", "99999999999"],
    ["cases", "show"],
    ["cases", "frobnicate"],
])
def test_usage_mistake_is_one_line(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """A mistake in the arguments is told in one line naming the command, exit 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["-c", str(tmp_path / "mailcase.toml"), *argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith("mailcase ")
    assert "--help" in err


def test_unexpected_error_is_one_line(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even a bug reaches the user as one line (with how to see more), exit 70."""
    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr("mailcase.cases.desk.Desk.list", broken)
    code, _, err = run(capsys, "-c", tmp_path / "mailcase.toml", "cases", "list")
    assert code == 70
    line = assert_one_line_error(code, err)
    assert "KeyError" in line and "MAILCASE_DEBUG=1" in line
