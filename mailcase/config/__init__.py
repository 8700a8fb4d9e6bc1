"""Configuration: one TOML file loaded into frozen, validated settings before anything starts.

Every later stage receives these settings as an argument; nothing reads the file again.
A wrong key or value stops start-up with the key's dotted name and what is wrong, so
an operator can fix the file from the one line mailcase prints.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mailcase.config.base import QUEUE_PREFIX as QUEUE_PREFIX
from mailcase.config.base import Port, Priority, Section, check_address, check_owner
from mailcase.config.clock import ALWAYS_OPEN, BusinessHoursSettings, SlaSettings
from mailcase.config.console import ConsoleSettings
from mailcase.config.durations import Duration as Duration
from mailcase.config.durations import DurationText
from mailcase.config.webform import WebToCaseSettings
from mailcase.config.webhooks import WebhookSettings

DEFAULT_CONFIG_NAME = "mailcase.toml"
CONFIG_ENV = "MAILCASE_CONFIG"

# SQLite through the standard library, PostgreSQL through psycopg 3 (the default for
# "postgresql://" here); other drivers are not installed with mailcase.
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")

Seconds = Annotated[float, Field(gt=0)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the key and the problem."""


class DatabaseSettings(Section):
    """Where cases and mail are stored: a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    url: str = "sqlite:///var/mailcase.db"

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError(f"{value!r} is not a database URL") from None
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"{driver!r} is not supported (use sqlite or postgresql: "
                "sqlite:///PATH or postgresql://USER@HOST/DB)"
            )
        return value


class SmtpSettings(Section):
    """The SMTP listener that accepts mail for the configured mailboxes."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 2525
    max_message_size: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    hostname: str | None = None
    # "lmtp" behind a mail server that delivers with LMTP (Postfix's lmtp transport).
    protocol: Literal["smtp", "lmtp"] = "smtp"
    # STARTTLS with this certificate chain and key (both PEM); require_tls refuses
    # mail from a client that did not start TLS first.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    require_tls: bool = False
    # AUTH PLAIN/LOGIN (only once TLS is up) against "user:hash" lines, made with
    # `mailcase hash-password`; auth_required refuses mail from clients that did not.
    auth_file: Path | None = None
    auth_required: bool = False
    # The PROXY protocol (v1 and v2) behind a load balancer that sends it on every
    # connection; proxy_timeout bounds the wait for its header.
    proxy_protocol: bool = False
    proxy_timeout: Seconds = 10.0
    # Connections open at once (421 beyond them), in all and from one client address.
    max_connections: Annotated[int, Field(ge=1)] = 200
    max_connections_per_client: Annotated[int, Field(ge=1)] = 20
    # A session that says nothing, or moves no mail on (NOOP and RSET are no progress),
    # for this long is closed.
    session_timeout: Seconds = 300.0
    # Recipients of one mail (RFC 5321 4.5.3.1.8 asks for at least 100); more get 452.
    max_recipients: Annotated[int, Field(ge=100)] = 100
    # Failed AUTH attempts from one client address within auth_failure_seconds; beyond
    # them its AUTH is refused with 454 (no password is checked) until the window passes.
    auth_failures_per_client: Annotated[int, Field(ge=1)] = 10
    auth_failure_seconds: Seconds = 600.0

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_key_file: give both tls_cert_file and tls_key_file, or neither")
        if self.require_tls and self.tls_cert_file is None:
            raise ValueError("require_tls: needs tls_cert_file and tls_key_file")
        if self.auth_file is not None and self.tls_cert_file is None:
            raise ValueError("auth_file: AUTH is offered only over TLS, so it needs tls_cert_file "
                             "and tls_key_file")
        if self.auth_required and self.auth_file is None:
            raise ValueError("auth_required: needs auth_file")
        if self.require_tls and self.protocol == "lmtp":
            # aiosmtpd lets only EHLO through before STARTTLS: LHLO would get a permanent
            # 530, and the MTA in front would bounce the mail. LMTP runs on a trusted link.
            raise ValueError("require_tls: not with protocol = \"lmtp\" (LMTP runs between "
                             "mail servers on a trusted link)")
        return self


class MailCriteria(Section):
    """Conditions on a new mail; all that are set must hold, an empty one always does."""

    senders: tuple[str, ...] = ()  # addresses, or "@domain" for a whole domain
    subject_words: tuple[str, ...] = ()
    body_words: tuple[str, ...] = ()
    priority: Priority | None = None

    @field_validator("senders")
    @classmethod
    def _addresses_or_domains(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip().lower() for v in values)
        for value in cleaned:
            if "@" not in value:
                raise ValueError(f"{value!r} is neither an address nor an @domain")
        return cleaned


class AutoResponseRule(MailCriteria):
    """One auto-response rule of a mailbox: when all its conditions hold, answer a new
    case with ``template`` ("" answers nothing)."""

    template: str = "acknowledgement"


class AssignmentRule(MailCriteria):
    """Who owns a new case: the first rule (in file order) whose conditions all hold
    names an agent or ``queue:NAME``; no match leaves it to ``cases.default_owner``."""

    name: str = ""  # said in the case's history; "assignment_rule[N]" when empty
    mailbox: str | None = None  # the support address the mail came to
    regex: str | None = None  # searched in the subject and the body, ignoring case
    header: str | None = None  # a header that must be present…
    header_value: str | None = None  # …with a value this regex finds (ignoring case)
    owner: str

    @field_validator("mailbox")
    @classmethod
    def _mailbox_address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("regex", "header_value")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)

    @model_validator(mode="after")
    def _header_named(self) -> AssignmentRule:
        if self.header_value is not None and not self.header:
            raise ValueError("header_value: name the header it is looked for in (header)")
        return self


class ImapSettings(Section):
    """A hosted mailbox mailcase polls over IMAP instead of receiving by SMTP."""

    host: str
    port: Port = 993
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    tls_verify: bool = True
    ca_file: Path | None = None
    username: str
    # "password": LOGIN with the password in password_file. "xoauth2": SASL XOAUTH2
    # with an OAuth 2.0 access token from token_file (read at every login, kept fresh
    # by whatever writes it) or from token_command (an argument list run without a
    # shell, whose output is the token; run again when the server refuses the token or
    # token_lifetime has passed).
    auth: Literal["password", "xoauth2"] = "password"
    password_file: Path | None = None
    token_file: Path | None = None
    token_command: tuple[str, ...] | None = None
    token_lifetime: Seconds = 3000.0
    folder: str = "INBOX"
    # How a stored mail is marked on the server, always after the commit: "keyword"
    # (a flag people never set, the default), "seen", "move" to processed_folder, or
    # "delete".
    acknowledge: Literal["keyword", "seen", "move", "delete"] = "keyword"
    keyword: str = "$MailcaseStored"
    processed_folder: str | None = None
    # Where a copy of mail that could not be processed (parked) is put, for the people
    # who read the mailbox; none by default.
    quarantine_folder: str | None = None
    poll_seconds: Seconds = 60.0
    timeout: Seconds = 30.0

    @model_validator(mode="after")
    def _consistent(self) -> ImapSettings:
        if self.acknowledge == "move" and not self.processed_folder:
            raise ValueError('processed_folder: required when acknowledge = "move"')
        if self.auth == "password" and self.password_file is None:
            raise ValueError('password_file: required when auth = "password"')
        if self.auth == "xoauth2" and (self.token_file is None) == (self.token_command is None):
            raise ValueError('auth = "xoauth2" needs exactly one of token_file and token_command')
        if self.token_command is not None and not self.token_command:
            raise ValueError("token_command: an empty command")
        if self.quarantine_folder is not None and _folder_key(self.quarantine_folder) in (
                _folder_key(self.folder), _folder_key(self.processed_folder or "")):
            raise ValueError("quarantine_folder: must differ from folder and processed_folder")
        return self


def _folder_key(name: str) -> str:
    """A folder name as the server compares it: INBOX in any letter case is INBOX."""
    return "INBOX" if name.upper() == "INBOX" else name


class MailboxSettings(Section):
    """One support address; its plus-addresses (support+token@…) carry reply tokens."""

    address: str
    name: str = "Support"
    auto_response: bool = True
    auto_response_interval: Annotated[float, Field(ge=0)] = 86400.0
    auto_response_rule: tuple[AutoResponseRule, ...] = ()
    flood_mails: Annotated[int, Field(ge=1)] = 10
    flood_seconds: Annotated[float, Field(gt=0)] = 600.0
    # A reply through someone else's token (a forward): a comment without commands, held
    # for review, a new case, or parked.
    foreign_reply: Literal["accept", "hold", "new_case", "park"] = "accept"
    # A reply found by its thread or subject tag whose writer does not take part in the
    # case (or whose From failed DMARC): a new case, or held for review.
    unproven_reply: Literal["new_case", "hold"] = "new_case"
    # Authentication-Results from these MTAs (their authserv-id) prove a From domain.
    trusted_authserv_ids: tuple[str, ...] = ()
    # Without a trusted MTA's results, verify DKIM here (DNS lookups while processing).
    verify_dkim: bool = False
    imap: ImapSettings | None = None
    collaborators: Literal["anyone", "same_domain", "domains", "none"] = "same_domain"
    collaborator_domains: tuple[str, ...] = ()
    # What a new case of this address starts with (Salesforce's routing addresses):
    # its origin, its priority (None: the sender's X-Priority/Importance, else Medium),
    # its owner when no assignment rule matches (an agent or queue:NAME; None: the
    # cases.default_owner), its type and reason.
    # What a reply to a closed case of this address does, and within how many days it
    # reopens (None: as [cases] says).
    on_reply_to_closed: Literal["reopen", "follow_up"] | None = None
    reopen_days: Annotated[float, Field(ge=0)] | None = None
    # An agent's public reply puts the case in cases.hold_status (waiting on the
    # customer) without writing /hold.
    hold_on_reply: bool = False
    # The calendar ([[business_hours]] name, or "24x7") of this address's cases'
    # targets, where their [[sla]] rule names none.
    business_hours: str | None = None
    # On close, the contact gets a satisfaction survey (template satisfaction_survey)
    # with signed one-click links to [satisfaction] link_base.
    satisfaction_survey: bool = False
    origin: str = "Email"
    priority: Priority | None = None
    owner: str | None = None
    type: str | None = None
    reason: str | None = None

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return None if value is None else check_owner(value)

    @model_validator(mode="after")
    def _domains_given(self) -> MailboxSettings:
        if self.collaborators == "domains" and not self.collaborator_domains:
            raise ValueError('collaborator_domains: list the domains when collaborators = '
                             '"domains"')
        return self
    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        if "+" in value.rpartition("@")[0]:
            raise ValueError(f"{value!r} has a '+': mailcase uses support+<token>@ for replies")
        return check_address(value)

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


class OutboundSettings(Section):
    """How mail leaves: through a smarthost, or into a local Maildir for trying things out."""

    transport: Literal["smtp", "maildir"] = "maildir"
    host: str = "127.0.0.1"
    port: Port = 25
    maildir: Path = Path("var/outbound")
    from_: str | None = Field(default=None, alias="from")
    verp: bool = True
    tls: Literal["none", "opportunistic", "starttls", "implicit"] = "opportunistic"
    tls_verify: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    timeout: Seconds = 30.0
    batch_size: Annotated[int, Field(gt=0)] = 100
    retry_base_seconds: Seconds = 60.0
    retry_max_seconds: Seconds = 3600.0
    retry_deadline_hours: Seconds = 48.0

    @field_validator("from_")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)


class AttachmentSettings(Section):
    """Limits on the files stored apart from the raw mail (which always keeps them)."""

    max_size: Annotated[int, Field(ge=0)] = 25 * 1024 * 1024
    notify_max_size: Annotated[int, Field(ge=0)] = 10 * 1024 * 1024


class TemplateSettings(Section):
    """The operator's own Jinja templates, if any: a set found there replaces the built-in
    one whole; unset, every mail uses the templates built into the package."""

    dir: Path | None = None


class TokenSettings(Section):
    """The secrets that sign reply tokens: one per line, the first signs, all verify."""

    secret_file: Path = Path("var/token-secret")


class CaseSettings(Section):
    """The case lifecycle: numbering, the status list and what a reply to a closed case does."""

    first_number: Annotated[int, Field(ge=1, le=99_999_999)] = 1000
    statuses: tuple[str, ...] = ("New", "Working", "On Hold", "Escalated", "Closed")
    closed_statuses: tuple[str, ...] = ("Closed",)
    new_status: str = "New"
    reopen_status: str = "Working"
    on_reply_to_closed: Literal["reopen", "follow_up"] = "reopen"
    # With "reopen": a reply this many days after the close opens a follow-up case
    # instead (its parent the closed one); None reopens whenever the reply comes.
    reopen_days: Annotated[float, Field(ge=0)] | None = 30.0
    # Statuses during which a service target's clock stands still (waiting on the
    # customer). Default: "On Hold", when it is one of statuses.
    pauses_sla: tuple[str, ...] = ()
    # The status an agent's /hold (or a mailbox's hold_on_reply) puts a case in; a
    # customer's reply brings it back to reopen_status. Default: "On Hold", when it is
    # one of statuses; None turns /hold off.
    hold_status: str | None = None
    # A case in hold_status with no customer reply for this long is closed with
    # auto_close_resolution and a notice (template auto_closed); remind_before that, the
    # customer is reminded (template hold_reminder). Wall-clock time; None: never.
    auto_close_after: DurationText | None = None
    remind_before: DurationText | None = None
    auto_close_resolution: str = "Closed automatically: we did not hear back from you."
    # How often the scheduler looks for due targets, reminders and auto-closes.
    sweep_seconds: Seconds = 60.0
    # Who owns a new case that neither an assignment rule nor its mailbox's owner
    # places: an agent's address or queue:NAME; None leaves it unassigned.
    default_owner: str | None = None

    @field_validator("default_owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return None if value is None else check_owner(value)

    @model_validator(mode="before")
    @classmethod
    def _hold_defaults(cls, data: Any) -> Any:
        """"On Hold" pauses targets and is what /hold sets, unless the status list
        (an operator's own) has no such status."""
        if not isinstance(data, dict):
            return data
        statuses = data.get("statuses", cls.model_fields["statuses"].default)
        has_hold = isinstance(statuses, list | tuple) and "On Hold" in statuses
        data = dict(data)
        data.setdefault("pauses_sla", ["On Hold"] if has_hold else [])
        data.setdefault("hold_status", "On Hold" if has_hold else None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> CaseSettings:
        known = set(self.statuses)
        if len(known) != len(self.statuses):
            raise ValueError("statuses: a status is listed twice")
        for key in ("new_status", "reopen_status"):
            if getattr(self, key) not in known:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of statuses")
        unknown = [s for s in self.closed_statuses if s not in known]
        if unknown:
            raise ValueError(f"closed_statuses: {unknown[0]!r} is not one of statuses")
        if not self.closed_statuses:
            raise ValueError("closed_statuses: at least one status must close a case")
        for key in ("new_status", "reopen_status"):
            if getattr(self, key) in self.closed_statuses:
                raise ValueError(f"{key}: {getattr(self, key)!r} is a closed status")
        return self

    @model_validator(mode="after")
    def _clock_consistent(self) -> CaseSettings:
        known = set(self.statuses)
        for key, names in (("pauses_sla", self.pauses_sla),
                           ("hold_status", (self.hold_status,) if self.hold_status else ())):
            for name in names:
                if name not in known:
                    raise ValueError(f"{key}: {name!r} is not one of statuses")
                if name in self.closed_statuses:
                    raise ValueError(f"{key}: {name!r} is a closed status")
        if self.remind_before is not None and self.auto_close_after is None:
            raise ValueError("remind_before: set auto_close_after too (it counts back "
                             "from the close)")
        if (self.remind_before is not None and self.auto_close_after is not None
                and self.remind_before.wall_seconds >= self.auto_close_after.wall_seconds):
            raise ValueError("remind_before: must be shorter than auto_close_after")
        return self


class ProcessingSettings(Section):
    """Retries of inbound mail that failed unexpectedly, before it is parked for an operator."""

    max_attempts: Annotated[int, Field(ge=1)] = 5
    retry_base_seconds: Seconds = 30.0
    retry_max_seconds: Seconds = 3600.0
    poll_seconds: Seconds = 15.0
    # Mails processed in one transaction during a burst (1: one transaction each).
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 32
    # serve: process and send mail in a child process at a lower CPU priority, so a
    # burst of SMTP never waits for processing; false keeps them in one process.
    worker_process: bool = True


class ServiceSettings(Section):
    """How the daemon behaves as a service."""

    # SIGTERM: new SMTP connections get 421 while mail in DATA finishes; after this
    # long whatever is still open is closed (unacknowledged, so its sender retries).
    shutdown_seconds: Seconds = 30.0


class HttpSettings(Section):
    """The loopback HTTP endpoint for health checks (/healthz) and metrics (/metrics)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8025
    # /healthz fails when due mail has waited longer than this to be processed or sent,
    max_pending_seconds: Seconds = 600.0
    # or when an IMAP mailbox has had no good poll for this long.
    max_poll_age_seconds: Seconds = 1800.0


class ApiSettings(Section):
    """The HTTP API (JSON under /api/v1, for other programs, with API keys): off unless
    enabled, on its own address so it can stay private while other doors are public."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 8026
    # The most cases one page of GET /api/v1/cases holds (a request may ask for fewer).
    max_page_size: Annotated[int, Field(ge=1, le=1000)] = 100


class SatisfactionSettings(Section):
    """The survey a closed case's contact may get (per mailbox: satisfaction_survey):
    one-click links, signed, served by the Web-to-Case listener."""

    # Where those links point: the public address of the Web-to-Case listener, e.g.
    # "https://support.example.com" (the links are link_base/satisfaction/…).
    link_base: str | None = None
    valid_days: Annotated[float, Field(gt=0)] = 30.0  # a link older than this is refused

    @field_validator("link_base")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) address like "
                             "\"https://support.example.com\"")
        return value.rstrip("/") if value else value


class LoggingSettings(Section):
    """How much the daemon says, and how: text lines, or JSON lines for a log shipper."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(Section):
    """The whole configuration, as read from one file."""

    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    mailbox: Annotated[tuple[MailboxSettings, ...], Field(min_length=1)]
    outbound: OutboundSettings = OutboundSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    templates: TemplateSettings = TemplateSettings()
    tokens: TokenSettings = TokenSettings()
    cases: CaseSettings = CaseSettings()
    processing: ProcessingSettings = ProcessingSettings()
    service: ServiceSettings = ServiceSettings()
    http: HttpSettings = HttpSettings()
    api: ApiSettings = ApiSettings()
    web_to_case: WebToCaseSettings = WebToCaseSettings()
    console: ConsoleSettings = ConsoleSettings()
    satisfaction: SatisfactionSettings = SatisfactionSettings()
    logging: LoggingSettings = LoggingSettings()
    assignment_rule: tuple[AssignmentRule, ...] = ()
    business_hours: tuple[BusinessHoursSettings, ...] = ()
    sla: tuple[SlaSettings, ...] = ()
    webhook: tuple[WebhookSettings, ...] = ()

    @model_validator(mode="after")
    def _rules_name_mailboxes(self) -> Settings:
        known = {box.address for box in self.mailbox}
        for index, rule in enumerate(self.assignment_rule):
            if rule.mailbox is not None and rule.mailbox not in known:
                raise ValueError(f"assignment_rule[{index}].mailbox: {rule.mailbox} is not "
                                 "a configured [[mailbox]]")
        web = self.web_to_case.mailbox
        if web is not None and web not in known:
            raise ValueError(f"web_to_case.mailbox: {web} is not a configured [[mailbox]]")
        return self

    @property
    def web_mailbox(self) -> MailboxSettings:
        """The mailbox Web-to-Case files its forms into: the one named, else the first."""
        named = self.web_to_case.mailbox
        return next((box for box in self.mailbox if box.address == named), self.mailbox[0])
    @field_validator("webhook")
    @classmethod
    def _distinct_webhooks(
        cls, hooks: tuple[WebhookSettings, ...]
    ) -> tuple[WebhookSettings, ...]:
        names = [hook.name for hook in hooks]
        if len(set(names)) != len(names):
            raise ValueError("a webhook name is used twice")
        return hooks

    @model_validator(mode="after")
    def _slas_name_what_exists(self) -> Settings:
        calendars = [hours.name for hours in self.business_hours]
        if len(set(calendars)) != len(calendars):
            raise ValueError("business_hours: a name is used twice")
        boxes = {box.address for box in self.mailbox}
        named = [(f"sla[{index}]", rule.business_hours) for index, rule in enumerate(self.sla)]
        named += [(f"mailbox[{index}]", box.business_hours)
                  for index, box in enumerate(self.mailbox)]
        for where, name in named:
            if name is not None and name != ALWAYS_OPEN and name not in calendars:
                raise ValueError(f"{where}.business_hours: {name!r} is neither "
                                 f"\"{ALWAYS_OPEN}\" nor a [[business_hours]] name")
        surveyed = [box.address for box in self.mailbox if box.satisfaction_survey]
        if surveyed and self.satisfaction.link_base is None:
            raise ValueError(f"satisfaction.link_base: set it, where the survey links of "
                             f"{surveyed[0]} point (the Web-to-Case listener)")
        for index, rule in enumerate(self.sla):
            where = f"sla[{index}]"
            for address in rule.mailbox:
                if address not in boxes:
                    raise ValueError(f"{where}.mailbox: {address} is not a configured "
                                     "[[mailbox]]")
            status = rule.escalate_status
            if status is not None and (status not in self.cases.statuses
                                       or status in self.cases.closed_statuses):
                raise ValueError(f"{where}.escalate_status: {status!r} is not an open status "
                                 "of cases.statuses")
        return self

    def calendar_named(self, name: str) -> BusinessHoursSettings | None:
        """The ``[[business_hours]]`` called ``name`` (None for the built-in 24x7)."""
        return next((hours for hours in self.business_hours if hours.name == name), None)

    @field_validator("mailbox")
    @classmethod
    def _distinct_mailboxes(
        cls, boxes: tuple[MailboxSettings, ...]
    ) -> tuple[MailboxSettings, ...]:
        seen: set[str] = set()
        for box in boxes:
            if box.address in seen:
                raise ValueError(f"{box.address} is configured twice")
            seen.add(box.address)
        return boxes

    def mailbox_for(self, address: str) -> MailboxSettings | None:
        """The mailbox that owns ``address``, its plus-addresses included."""
        local, _, domain = address.lower().rpartition("@")
        base = local.split("+", 1)[0]
        for box in self.mailbox:
            if box.domain == domain and box.local_part == base:
                return box
        return None


def config_path(cli_value: str | None) -> Path:
    """The file to read: ``-c/--config``, else ``$MAILCASE_CONFIG``, else ``./mailcase.toml``."""
    return Path(cli_value or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load(path: Path) -> Settings:
    """Read, validate and resolve one config file, or raise ConfigError with one clear line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found (give -c/--config PATH or set {CONFIG_ENV})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    return _resolve_paths(settings, path.resolve().parent)


def _describe(exc: ValidationError) -> str:
    """Turn pydantic's errors into ``key.path: problem`` phrases joined on one line."""
    phrases = []
    errors = exc.errors()
    failed_inside = {e["loc"][:n] for e in errors for n in range(1, len(e["loc"]))}
    for error in errors:
        if error["type"] == "too_short" and error["loc"] in failed_inside:
            continue  # an item of the list failed; "too short" would only mislead
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        # Checks across a section's keys say which key they mean as "key: problem".
        named = re.match(r"^([a-z_][a-z_0-9.\[\]]*): (.*)$", message, re.DOTALL)
        if error["type"] == "value_error" and named:
            loc, message = (*loc, named.group(1)), named.group(2)
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
        key = key.replace(".[", "[") or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and not isinstance(error["input"], dict | list):
            message = f"{message} (got {error['input']!r})"
        phrases.append(f"{key}: {message}")
    return "; ".join(phrases)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make every relative path (the SQLite file too) relative to the config file's folder."""

    def rooted(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(rooted(Path(url.database or ""))))
    update: dict[str, Any] = {
        "database": settings.database.model_copy(
            update={"url": url.render_as_string(hide_password=False)}
        ),
        "smtp": settings.smtp.model_copy(update={
            key: rooted(getattr(settings.smtp, key))
            for key in ("tls_cert_file", "tls_key_file", "auth_file")
            if getattr(settings.smtp, key) is not None
        }),
        "outbound": settings.outbound.model_copy(update={
            "maildir": rooted(settings.outbound.maildir),
            "ca_file": rooted(settings.outbound.ca_file) if settings.outbound.ca_file else None,
            "password_file": (rooted(settings.outbound.password_file)
                              if settings.outbound.password_file else None),
        }),
        "templates": settings.templates.model_copy(update={
            "dir": rooted(settings.templates.dir) if settings.templates.dir else None}),
        "tokens": settings.tokens.model_copy(
            update={"secret_file": rooted(settings.tokens.secret_file)}
        ),
        "webhook": tuple(hook.model_copy(update={"secret_file": rooted(hook.secret_file)})
                         for hook in settings.webhook),
        "mailbox": tuple(
            box.model_copy(update={"imap": box.imap.model_copy(update={
                "password_file": (rooted(box.imap.password_file)
                                  if box.imap.password_file else None),
                "token_file": rooted(box.imap.token_file) if box.imap.token_file else None,
                "token_command": _rooted_command(box.imap.token_command, base),
                "ca_file": rooted(box.imap.ca_file) if box.imap.ca_file else None,
            })}) if box.imap is not None else box
            for box in settings.mailbox
        ),
    }
    return settings.model_copy(update=update)


def _rooted_command(command: tuple[str, ...] | None, base: Path) -> tuple[str, ...] | None:
    """A command given as a relative path ("bin/token") is relative to the config file,
    like every other path; a bare name ("oauth2ms") is looked up on PATH."""
    if not command or "/" not in command[0] or Path(command[0]).is_absolute():
        return command
    return (str(base / command[0]), *command[1:])
