"""The one place where mailcase is wired together from its settings.

``App.build`` creates the engine, the reply-token signer, the templates and the
workers; the daemon, the CLI and the tests all get their parts from here, so each
dependency is made once and passed in, never looked up.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.desk import Desk
from mailcase.cases.staff import Staff
from mailcase.cases.survey import Surveys
from mailcase.cases.targets import TargetRules
from mailcase.config import Settings
from mailcase.identity.authentication import DkimVerifier, TxtLookup
from mailcase.identity.tokens import SecretError, TokenSigner, load_secrets
from mailcase.intake.accept import Intake
from mailcase.intake.polls import PollRecord
from mailcase.lifecycle.sweeps import Sweeps
from mailcase.monitoring.health import HealthCheck
from mailcase.monitoring.metrics import Metrics
from mailcase.outbound.compose import Composer
from mailcase.outbound.notify import Notifier
from mailcase.outbound.outbox import OutboxSender
from mailcase.outbound.templates import Templates
from mailcase.outbound.transports import MaildirTransport, Relay, SmtpTransport, Transport
from mailcase.outbound.webhooks import Webhooks, WebhookSender
from mailcase.pipeline.context import Services
from mailcase.pipeline.processor import Processor
from mailcase.store import db, migrate
from mailcase.store.doorbell import Doorbell

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def _services(settings: Settings, create_secret: bool, dns: TxtLookup | None) -> Services:
    """What the pipeline stages use: token signer, templates, composer, notifier, our own
    addresses and the DKIM verifier (its DNS lookups through ``dns``, else the system's)."""
    signer = TokenSigner(load_secrets(settings.tokens.secret_file, create=create_secret))
    composer = Composer(settings, Templates(settings.templates.dir), signer)
    return Services(settings=settings, signer=signer, composer=composer,
                    notifier=Notifier(composer, settings.attachments.notify_max_size),
                    own=composer.own, dkim=DkimVerifier(dns),
                    targets=TargetRules.of(settings), webhooks=Webhooks.of(settings))


def _sweeps(settings: Settings, engine: Engine, sessions: sessionmaker[Session],
            services: Services, clock: Clock) -> Sweeps:
    return Sweeps(settings, engine, sessions, notifier=services.notifier,
                  targets=services.targets, hooks=services.webhooks, clock=clock)


def make_transport(settings: Settings) -> Transport:
    """The outbound transport the settings ask for."""
    if settings.outbound.transport == "maildir":
        return MaildirTransport(settings.outbound.maildir)
    return SmtpTransport(make_relay(settings))


def make_relay(settings: Settings) -> Relay:
    """How to reach the configured smarthost; SecretError when its password file cannot
    be read."""
    out = settings.outbound
    context = ssl.create_default_context(cafile=str(out.ca_file) if out.ca_file else None)
    if not out.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    password = None
    if out.password_file is not None:
        try:
            password = out.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(
                f"outbound.password_file {out.password_file} cannot be read: {exc.strerror}"
            ) from None
    return Relay(
        host=out.host, port=out.port, timeout=out.timeout, tls=out.tls, context=context,
        username=out.username, password=password, local_hostname=settings.smtp.hostname,
    )


@dataclass
class App:
    """mailcase's parts, built from one Settings."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    services: Services
    intake: Intake
    processor: Processor
    sender: OutboxSender
    polls: PollRecord
    health: HealthCheck
    metrics: Metrics
    doorbell: Doorbell
    sweeps: Sweeps
    webhook_sender: WebhookSender
    clock: Clock

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        transport: Transport | None = None,
        jitter: bool = True,
        create_secret: bool = False,
        dns: TxtLookup | None = None,
    ) -> App:
        """Wire every part; ``create_secret`` makes the token secret file on first start;
        ``dns`` answers the DKIM verifier's TXT lookups (tests serve their own keys)."""
        engine = db.create(settings.database.url)
        sessions = db.session_factory(engine)
        readers = db.reader_factory(engine)
        gate = db.WriterGate.for_engine(engine)
        services = _services(settings, create_secret, dns)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            readers=readers,
            services=services,
            intake=Intake(sessions, clock, settings.smtp.max_message_size, gate),
            processor=Processor(sessions, services, clock, jitter=jitter, gate=gate),
            sender=OutboxSender(
                sessions, transport or make_transport(settings), settings.outbound, clock,
                jitter=jitter,
            ),
            polls=PollRecord(sessions, clock),
            health=HealthCheck(readers, settings, clock),
            metrics=Metrics(readers, clock),
            doorbell=Doorbell.for_engine(engine),
            sweeps=_sweeps(settings, engine, sessions, services, clock),
            webhook_sender=WebhookSender(sessions, services.webhooks, clock),
            clock=clock,
        )

    def reconfigured(self, settings: Settings) -> App:
        """The same store, metrics and clock with parts made anew from ``settings`` (a
        reload): templates, token secrets and the relay password read again. Raises
        (SecretError, TemplateProblem…) before anything is swapped when a new part
        cannot be made."""
        services = _services(settings, create_secret=False, dns=self.services.dkim.txt)
        # Made anew (the relay password file is read again), unless it was handed in.
        transport = (make_transport(settings)
                     if isinstance(self.sender.transport, SmtpTransport | MaildirTransport)
                     else self.sender.transport)
        gate = self.processor.gate
        return replace(
            self,
            settings=settings,
            services=services,
            intake=Intake(self.sessions, self.clock, settings.smtp.max_message_size, gate),
            processor=Processor(self.sessions, services, self.clock,
                                jitter=self.processor.jitter, gate=gate),
            sender=OutboxSender(self.sessions, transport, settings.outbound, self.clock,
                                jitter=self.sender.jitter),
            health=HealthCheck(self.readers, settings, self.clock),
            sweeps=_sweeps(settings, self.engine, self.sessions, services, self.clock),
            webhook_sender=WebhookSender(self.sessions, services.webhooks, self.clock),
        )

    def desk(self) -> Desk:
        """What agents do to cases, over this app's store, settings, notifier and clock."""
        return Desk(settings=self.settings, sessions=self.sessions, readers=self.readers,
                    notifier=self.services.notifier, clock=self.clock,
                    ring=self.doorbell.ring, targets=self.services.targets,
                    hooks=self.services.webhooks)

    def surveys(self) -> Surveys:
        """The answers to satisfaction surveys, over this app's store and notifier."""
        return Surveys(settings=self.settings, sessions=self.sessions,
                       notifier=self.services.notifier, clock=self.clock,
                       ring=self.doorbell.ring)

    def owner_problems(self) -> list[str]:
        """Owners the settings name (rules, mailboxes, the default) that the store does
        not have: a start and a reload refuse them (see cases.staff)."""
        with self.readers() as session:
            return Staff(session).problems(self.settings)

    def ensure_schema(self) -> None:
        """Create a new database's schema, or refuse one that needs ``db upgrade``."""
        migrate.ensure_current(self.engine)

    def close(self) -> None:
        self.engine.dispose()
