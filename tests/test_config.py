"""Loading the TOML config: every kind of mistake is refused with the key's dotted name and
what is wrong, relative paths follow the config file, and the example file matches the code."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from mailcase import config
from mailcase.config import ConfigError, Settings
from tests.support.paths import ROOT

EXAMPLE = ROOT / "config.example.toml"
MAILBOX = '[[mailbox]]\naddress = "support@example.com"\n'


def refusal(tmp_path: Path, text: str) -> list[str]:
    """Load ``text`` as a config file that must be refused; its problems, one per phrase."""
    path = tmp_path / "mailcase.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    prefix = f"{path}: "
    assert message.startswith(prefix), f"does not name the file first: {message!r}"
    return message.removeprefix(prefix).split("; ")


def test_valid_minimal_config_loads(tmp_path: Path) -> None:
    """A file holding nothing but one mailbox loads, with the documented defaults."""
    path = tmp_path / "mailcase.toml"
    path.write_text(MAILBOX, encoding="utf-8")
    settings = config.load(path)
    assert [m.address for m in settings.mailbox] == ["support@example.com"]
    assert settings.smtp.port == 2525
    assert settings.outbound.transport == "maildir"


def test_unknown_top_level_section_is_refused(tmp_path: Path) -> None:
    """A section the code does not know ([bogus]) is named as an unknown key."""
    assert refusal(tmp_path, MAILBOX + "[bogus]\nanswer = 42\n") == ["bogus: unknown key"]


def test_unknown_key_in_section_is_refused(tmp_path: Path) -> None:
    """A misspelt key (smtp.prot) is refused with its dotted name, not silently ignored."""
    assert refusal(tmp_path, "[smtp]\nprot = 25\n" + MAILBOX) == ["smtp.prot: unknown key"]


def test_wrong_type_is_refused(tmp_path: Path) -> None:
    """A port given as text names smtp.port, says an integer is needed and shows the value."""
    [problem] = refusal(tmp_path, '[smtp]\nport = "abc"\n' + MAILBOX)
    assert problem.startswith("smtp.port: ")
    assert "integer" in problem
    assert "'abc'" in problem


def test_port_out_of_range_is_refused(tmp_path: Path) -> None:
    """Port 70000 names smtp.port, the limit 65535 and the value given."""
    [problem] = refusal(tmp_path, "[smtp]\nport = 70000\n" + MAILBOX)
    assert problem.startswith("smtp.port: ")
    assert "65535" in problem
    assert "70000" in problem


def test_missing_mailbox_is_refused(tmp_path: Path) -> None:
    """A config without any [[mailbox]] says the mailbox key is required."""
    assert refusal(tmp_path, "[smtp]\nport = 2525\n") == ["mailbox: required key is missing"]


def test_mailbox_address_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    """A mailbox address without an @ is named by its index, and that is the only problem told."""
    problems = refusal(tmp_path, '[[mailbox]]\naddress = "not-an-address"\n')
    assert len(problems) == 1, f"one mistake, several problems told: {problems}"
    assert problems[0].startswith("mailbox[0].address: ")
    assert "'not-an-address' is not an email address" in problems[0]


def test_duplicate_mailbox_addresses_are_refused(tmp_path: Path) -> None:
    """The same address configured twice (in any letter case) is refused under the key mailbox."""
    problems = refusal(tmp_path, MAILBOX + MAILBOX.replace("support@", "Support@"))
    assert problems == ["mailbox: support@example.com is configured twice"]


def test_unsupported_database_backend_is_refused(tmp_path: Path) -> None:
    """A mysql:// URL names database.url and the backends that are supported."""
    [problem] = refusal(tmp_path, '[database]\nurl = "mysql://u@db.example.com/mc"\n' + MAILBOX)
    assert problem.startswith("database.url: ")
    assert "'mysql' is not supported" in problem
    assert "sqlite or postgresql" in problem


def test_unknown_outbound_transport_is_refused(tmp_path: Path) -> None:
    """outbound.transport other than smtp or maildir names both allowed values."""
    [problem] = refusal(tmp_path, '[outbound]\ntransport = "pigeon"\n' + MAILBOX)
    assert problem.startswith("outbound.transport: ")
    assert "'smtp' or 'maildir'" in problem
    assert "'pigeon'" in problem


def test_new_status_not_in_statuses_is_refused(tmp_path: Path) -> None:
    """A cases.new_status missing from cases.statuses is refused under its dotted name."""
    [problem] = refusal(tmp_path, '[cases]\nnew_status = "Fresh"\n' + MAILBOX)
    assert problem.startswith("cases.new_status: "), problem
    assert "'Fresh' is not one of statuses" in problem


def test_closed_status_not_in_statuses_is_refused(tmp_path: Path) -> None:
    """A cases.closed_statuses entry that is no status is refused under its dotted name."""
    [problem] = refusal(tmp_path, '[cases]\nclosed_statuses = ["Done"]\n' + MAILBOX)
    assert problem.startswith("cases.closed_statuses: "), problem
    assert "'Done' is not one of statuses" in problem


def test_reopen_status_that_is_closed_is_refused(tmp_path: Path) -> None:
    """Reopening into a closed status is refused under cases.reopen_status."""
    [problem] = refusal(tmp_path, '[cases]\nreopen_status = "Closed"\n' + MAILBOX)
    assert problem.startswith("cases.reopen_status: "), problem
    assert "'Closed' is a closed status" in problem


def test_invalid_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    """A TOML syntax error is reported as such, with the file and the line."""
    [problem] = refusal(tmp_path, MAILBOX + "[smtp\nport = 1\n")
    assert problem.startswith("not valid TOML: ")
    assert "line 3" in problem


def test_missing_config_file_says_how_to_name_one(tmp_path: Path) -> None:
    """A missing file is named, with the two ways to point mailcase at the right one."""
    missing = tmp_path / "nowhere" / "mailcase.toml"
    with pytest.raises(ConfigError) as caught:
        config.load(missing)
    message = str(caught.value)
    assert str(missing) in message
    assert "not found" in message
    assert "-c/--config" in message
    assert "MAILCASE_CONFIG" in message


def test_example_config_loads_with_paths_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.example.toml loads, and its relative paths point into the repository, not the
    current directory."""
    monkeypatch.chdir(tmp_path)
    settings = config.load(EXAMPLE)
    url = make_url(settings.database.url)
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(ROOT / "var" / "mailcase.db")
    assert settings.outbound.maildir == ROOT / "var" / "outbound"
    assert settings.templates.dir is None  # the built-in templates
    assert settings.tokens.secret_file == ROOT / "var" / "token-secret"
    assert [m.address for m in settings.mailbox] == ["support@example.com"]


def test_relative_config_path_resolves_paths_to_absolute_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config named by a relative path (as -c etc/mailcase.toml) gives absolute paths under
    its own folder, so later chdirs cannot move the database."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "mailcase.toml").write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        '# dir = "templates"', 'dir = "templates"'), encoding="utf-8")
    (folder / "templates").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = config.load(Path("etc/mailcase.toml"))
    assert settings.templates.dir == folder / "templates"
    assert make_url(settings.database.url).database == str(folder / "var" / "mailcase.db")
    assert settings.outbound.maildir == folder / "var" / "outbound"
    assert settings.tokens.secret_file == folder / "var" / "token-secret"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    """Absolute paths and a PostgreSQL URL come through unchanged."""
    path = tmp_path / "mailcase.toml"
    path.write_text(
        '[database]\nurl = "postgresql://mc:secret@db.example.com/mailcase"\n'
        f'[templates]\ndir = "{ROOT / "templates"}"\n'
        '[outbound]\nmaildir = "/srv/mail/out"\n' + MAILBOX,
        encoding="utf-8",
    )
    settings = config.load(path)
    assert settings.database.url == "postgresql://mc:secret@db.example.com/mailcase"
    assert settings.templates.dir == ROOT / "templates"
    assert settings.outbound.maildir == Path("/srv/mail/out")


def test_config_path_prefers_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """-c/--config wins over $MAILCASE_CONFIG."""
    monkeypatch.setenv("MAILCASE_CONFIG", "/etc/from-env.toml")
    assert config.config_path("/etc/from-cli.toml") == Path("/etc/from-cli.toml")


def test_config_path_falls_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -c, $MAILCASE_CONFIG names the file."""
    monkeypatch.setenv("MAILCASE_CONFIG", "/etc/from-env.toml")
    assert config.config_path(None) == Path("/etc/from-env.toml")


def test_config_path_defaults_to_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -c and $MAILCASE_CONFIG, ./mailcase.toml is read."""
    monkeypatch.delenv("MAILCASE_CONFIG", raising=False)
    assert config.config_path(None) == Path("mailcase.toml")


def _section_model(annotation: object) -> type[BaseModel] | None:
    """The settings model behind a field's type (X, X | None, tuple[X, ...]), if any."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _documented_keys(model: type[BaseModel], section: str) -> list[tuple[str, str]]:
    """Every (section, key) of ``model``, nested sections (like mailbox.imap) included."""
    keys = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        nested = _section_model(field.annotation)
        if nested is not None:
            keys += _documented_keys(nested, f"{section}.{key}" if section else key)
        else:
            keys.append((section, key))
    return keys


def _example_sections() -> dict[str, str]:
    """The example file's text per section header (commented-out headers count too)."""
    header = re.compile(r"^\s*#?\s*\[\[?\s*([\w.]+)\s*\]\]?\s*$")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = header.match(line)
        if match:
            current = match.group(1)
            sections.setdefault(current, [])
        else:
            sections.setdefault(current, []).append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def test_example_config_mentions_every_key() -> None:
    """config.example.toml shows every key of every settings section (set or commented out),
    so the example cannot drift from the code."""
    sections = _example_sections()
    keys = _documented_keys(Settings, "")
    assert ("outbound", "from") in keys  # the alias, not the Python name from_
    missing = [
        f"{section}.{key}" for section, key in keys
        if not re.search(rf"^\s*#?\s*{re.escape(key)}\s*=", sections.get(section, ""), re.M)
    ]
    assert missing == [], f"config.example.toml does not mention: {', '.join(missing)}"


def test_postgresql_driver_other_than_psycopg_is_refused(tmp_path: Path) -> None:
    """A PostgreSQL URL naming a driver mailcase does not install is refused at start."""
    [problem] = refusal(
        tmp_path, '[database]\nurl = "postgresql+psycopg2://u@db/mc"\n' + MAILBOX
    )
    assert problem.startswith("database.url: 'postgresql+psycopg2' is not supported")


def test_mailbox_address_with_plus_is_refused(tmp_path: Path) -> None:
    """A mailbox with '+' in its local part is refused: plus-addresses carry reply tokens."""
    [problem] = refusal(tmp_path, '[[mailbox]]\naddress = "help+desk@example.com"\n')
    assert problem.startswith("mailbox[0].address: ")
    assert "has a '+'" in problem


IMAP = MAILBOX + '[mailbox.imap]\nhost = "imap.example.com"\nusername = "support"\n'


@pytest.mark.parametrize(("extra", "expected"), [
    ("", 'password_file: required when auth = "password"'),
    ('auth = "xoauth2"\n', 'auth = "xoauth2" needs exactly one of token_file and token_command'),
    ('auth = "xoauth2"\ntoken_file = "t"\ntoken_command = ["x"]\n',
     'auth = "xoauth2" needs exactly one of token_file and token_command'),
    ('auth = "xoauth2"\ntoken_command = []\n', "token_command: an empty command"),
    ('password_file = "p"\nquarantine_folder = "INBOX"\n',
     "quarantine_folder: must differ from folder and processed_folder"),
    ('auth = "kerberos"\npassword_file = "p"\n', "'password' or 'xoauth2'"),
])
def test_imap_credentials_and_folders_are_checked(tmp_path: Path, extra: str,
                                                  expected: str) -> None:
    """Each way to get IMAP login or folders wrong is one problem under mailbox[0].imap."""
    [problem] = refusal(tmp_path, IMAP + extra)
    assert problem.startswith("mailbox[0].imap"), problem
    assert expected in problem, problem


def test_imap_token_file_follows_the_config_file(tmp_path: Path) -> None:
    """A relative token_file is relative to the config file, like every other path."""
    path = tmp_path / "mailcase.toml"
    path.write_text(IMAP + 'auth = "xoauth2"\ntoken_file = "secrets/token"\n', encoding="utf-8")
    imap = config.load(path).mailbox[0].imap
    assert imap is not None and imap.token_file == tmp_path / "secrets" / "token"
    assert imap.token_lifetime == 3000.0 and imap.password_file is None


@pytest.mark.parametrize(("smtp", "key"), [
    ('tls_cert_file = "c.pem"', "smtp.tls_key_file"),
    ("require_tls = true", "smtp.require_tls"),
    ('auth_file = "users"', "smtp.auth_file"),
    ("auth_required = true", "smtp.auth_required"),
    ('protocol = "lmtp"\nrequire_tls = true\ntls_cert_file = "c"\ntls_key_file = "k"',
     "smtp.require_tls"),
])
def test_listener_options_that_do_not_fit_together_are_refused(
    tmp_path: Path, smtp: str, key: str
) -> None:
    """TLS needs both files; require_tls, AUTH and auth_required need what they rely on;
    LMTP does not take require_tls (its LHLO would get a permanent 530)."""
    [problem] = refusal(tmp_path, f"[smtp]\n{smtp}\n" + MAILBOX)
    assert problem.startswith(f"{key}: "), problem


OFFICE = ('[[business_hours]]\nname = "office"\ntime_zone = "Europe/Berlin"\n'
          'hours = { mon = "09:00-17:00", fri = "09:00-12:00, 13:00-17:00" }\n')


@pytest.mark.parametrize(("text", "problem"), [
    ('[[business_hours]]\nname = "x"\ntime_zone = "Mars/Olympus"\n',
     "business_hours[0].time_zone: 'Mars/Olympus' is not an IANA time zone"),
    ('[[business_hours]]\nname = "x"\nhours = { mon = "9 to 5" }\n',
     "business_hours[0].hours.mon: '9 to 5' is not opening hours like \"09:00-17:00\""),
    ('[[business_hours]]\nname = "x"\nhours = { mon = "09:00-12:00, 11:00-17:00" }\n',
     "business_hours[0].hours.mon: '09:00-12:00, 11:00-17:00' has overlapping hours"),
    ('[[business_hours]]\nname = "x"\nhours = { someday = "09:00-17:00" }\n',
     "business_hours[0].hours: 'someday' is not a weekday"),
    ('[[business_hours]]\nname = "x"\nhours = { sat = "closed" }\n',
     "business_hours[0].hours: open on no day of the week"),
    ('[[business_hours]]\nname = "x"\ncountry = "XX"\n',
     "business_hours[0].country: no public holidays known for 'XX'"),
    ('[[business_hours]]\nname = "x"\nsubdivision = "BY"\n',
     "business_hours[0].subdivision: name the country it belongs to (country)"),
    ('[[business_hours]]\nname = "24x7"\n', "business_hours[0].name: '24x7' is built in"),
    ('[[sla]]\nname = "s"\nfirst_response = "4 hours"\n',
     "sla[0].first_response: '4 hours' is not a duration like"),
    ('[[sla]]\nname = "s"\n', "sla[0].first_response: give at least one target"),
    ('[[sla]]\nname = "s"\nresolution = "1d"\nbusiness_hours = "office"\n',
     "sla[0].business_hours: 'office' is neither \"24x7\" nor a [[business_hours]] name"),
    ('[[sla]]\nname = "s"\nresolution = "1d"\nescalate_status = "Closed"\n',
     "sla[0].escalate_status: 'Closed' is not an open status of cases.statuses"),
    ('[[sla]]\nname = "s"\nresolution = "1d"\nmailbox = ["other@example.com"]\n',
     "sla[0].mailbox: other@example.com is not a configured [[mailbox]]"),
    ('[[sla]]\nname = "s"\nresolution = "1d"\nwarning = 1.5\n', "sla[0].warning: "),
    ('[cases]\nremind_before = "2d"\n',
     "cases.remind_before: set auto_close_after too"),
    ('[cases]\nauto_close_after = "2d"\nremind_before = "3d"\n',
     "cases.remind_before: must be shorter than auto_close_after"),
    ('[cases]\npauses_sla = ["Waiting"]\n', "cases.pauses_sla: 'Waiting' is not one of statuses"),
    ('[cases]\nhold_status = "Closed"\n', "cases.hold_status: 'Closed' is a closed status"),
])
def test_clock_mistakes_are_refused_with_their_key(tmp_path: Path, text: str,
                                                   problem: str) -> None:
    """A wrong business calendar, service target or hold setting stops the start with
    the key that holds it and what is wrong."""
    found = refusal(tmp_path, text + MAILBOX)
    assert found[0].startswith(problem), found


def test_clock_settings_load_and_hold_follows_the_status_list(tmp_path: Path) -> None:
    """Calendars, rules and durations load as written; "On Hold" pauses targets and is
    the hold status only when the status list has it."""
    path = tmp_path / "mailcase.toml"
    path.write_text(OFFICE + '[[sla]]\nname = "s"\nbusiness_hours = "office"\n'
                    'first_response = "1d4h"\nresolution = "90s"\n' + MAILBOX)
    settings = config.load(path)
    assert settings.cases.pauses_sla == ("On Hold",)
    assert settings.cases.hold_status == "On Hold"
    [rule] = settings.sla
    assert str(rule.first_response) == "1d4h"
    assert rule.targets()["resolution"].wall_seconds == 90
    assert settings.calendar_named("office").hours["fri"] == "09:00-12:00, 13:00-17:00"
    path.write_text('[cases]\nstatuses = ["Open", "Closed"]\nnew_status = "Open"\n'
                    'reopen_status = "Open"\n' + MAILBOX)
    settings = config.load(path)
    assert (settings.cases.pauses_sla, settings.cases.hold_status) == ((), None)


@pytest.mark.parametrize(("text", "problem"), [
    ('[web_to_case]\nmailbox = "other@example.com"\n',
     "web_to_case.mailbox: other@example.com is not a configured [[mailbox]]"),
    ('[web_to_case]\nallowed_origins = ["https://www.example.com/contact"]\n',
     "web_to_case.allowed_origins: 'https://www.example.com/contact': give a host like"),
    ('[web_to_case]\nredirect_hosts = ["exa mple.com"]\n',
     "web_to_case.redirect_hosts: 'exa mple.com' is not a host like"),
    ('[web_to_case]\nhoneypot = "email"\n',
     "web_to_case.honeypot: 'email' is one of the form's own fields"),
    ('[web_to_case]\nrate_window = "0s"\n', "web_to_case.rate_window: must be longer than 0s"),
    ('[web_to_case]\nrate_window = "an hour"\n',
     "web_to_case.rate_window: 'an hour' is not a duration like"),
    ('[web_to_case]\ntrusted_proxies = ["proxy.example.com"]\n',
     "web_to_case.trusted_proxies: 'proxy.example.com' is not an IP address or network"),
    ('[web_to_case]\nper_address = 0\n', "web_to_case.per_address: "),
    ('[web_to_case]\nmax_size = 0\n', "web_to_case.max_size: "),
])
def test_web_to_case_mistakes_are_refused_with_their_key(tmp_path: Path, text: str,
                                                         problem: str) -> None:
    """A Web-to-Case setting that cannot work stops the start with its key and why."""
    found = refusal(tmp_path, text + MAILBOX)
    assert found[0].startswith(problem), found


@pytest.mark.parametrize(("text", "problem"), [
    ('[console]\nport = 70000\n', "console.port: "),
    ('[console]\nsession_idle = "0s"\n', "console.session_idle: must be longer than 0s"),
    ('[console]\nsession_max = "a week"\n',
     "console.session_max: 'a week' is not a duration like"),
    ('[console]\nsession_idle = "8d"\n',
     "console.session_idle: must not be longer than session_max"),
    ('[console]\nlogin_attempts = 0\n', "console.login_attempts: "),
    ('[console]\nlogin_window = "0m"\n', "console.login_window: must be longer than 0s"),
    ('[console]\npasswords = false\n',
     "console.passwords: with passwords = false, set trusted_header"),
    ('[console]\ntrusted_header = "X Remote User"\ntrusted_proxies = ["127.0.0.1"]\n',
     "console.trusted_header: 'X Remote User' is not a header name"),
    ('[console]\ntrusted_header = "X-Remote-User"\n',
     "console.trusted_proxies: name the proxy that sets trusted_header"),
    ('[console]\ntrusted_proxies = ["sso.example.com"]\n',
     "console.trusted_proxies: 'sso.example.com' is not an IP address or network"),
    ('[console]\nsecure_cookie = true\n', "console.secure_cookie: unknown key"),
])
def test_console_mistakes_are_refused_with_their_key(tmp_path: Path, text: str,
                                                     problem: str) -> None:
    """A console setting that cannot work stops the start with its key and why."""
    found = refusal(tmp_path, text + MAILBOX)
    assert found[0].startswith(problem), found


def test_console_defaults(tmp_path: Path) -> None:
    """The console is off by default on loopback, with passwords, 8-hour idle and 7-day
    sessions, 5 failures per 15 minutes, plain-HTTP cookies and no trusted header."""
    path = tmp_path / "mailcase.toml"
    path.write_text(MAILBOX)
    console = config.load(path).console
    assert (console.enabled, console.host, console.port) == (False, "127.0.0.1", 8028)
    assert (console.session_idle.wall_seconds, console.session_max.wall_seconds) == (
        8 * 3600, 7 * 86400)
    assert (console.login_attempts, console.login_window.wall_seconds) == (5, 900)
    assert (console.passwords, console.secure_cookies) == (True, False)
    assert (console.trusted_header, console.trusted_proxies) == (None, ())


def test_web_to_case_defaults_and_the_mailbox_it_files_into(tmp_path: Path) -> None:
    """Web-to-Case is off by default with the documented limits, and files into the first
    mailbox unless one is named."""
    path = tmp_path / "mailcase.toml"
    path.write_text(MAILBOX + '[[mailbox]]\naddress = "sales@example.com"\n')
    settings = config.load(path)
    web = settings.web_to_case
    assert (web.enabled, web.host, web.port, web.max_size) == (False, "127.0.0.1", 8027,
                                                                10 * 1024 * 1024)
    assert (web.per_address, web.per_client, web.rate_window.wall_seconds) == (5, 20, 3600)
    assert (web.honeypot, web.allowed_origins, web.redirect_hosts) == ("website", (), ())
    assert settings.web_mailbox.address == "support@example.com"
    path.write_text(MAILBOX + '[[mailbox]]\naddress = "sales@example.com"\n'
                    '[web_to_case]\nmailbox = "Sales@Example.com"\n'
                    'allowed_origins = ["WWW.Example.com", "*.example.org:8443"]\n')
    settings = config.load(path)
    assert settings.web_mailbox.address == "sales@example.com"
    assert settings.web_to_case.allowed_origins == ("www.example.com", "*.example.org:8443")
