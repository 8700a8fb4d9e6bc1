"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a real SMTP sink, the app.

Every test that takes ``database_url`` runs twice, once per engine. A server a test
needs but cannot reach makes it skip locally with the reason, and fail on CI
(``MAILCASE_TEST_REQUIRE_SERVERS=1``), so CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from mailcase import config
from mailcase.app import App, utc_now
from mailcase.store import db, migrate
from tests.support.dovecot import Dovecot
from tests.support.dovecot import missing as dovecot_missing
from tests.support.mailsink import Sink
from tests.support.servers import require, running_daemon, write_config  # noqa: F401

PG_URL = os.environ.get("MAILCASE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
_counter = itertools.count()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "mailcase.db"
    engine = db.create(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def _pg_admin() -> psycopg.Connection:
    url = make_url(PG_URL)
    try:
        return psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
            password=url.password, autocommit=True, connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        require(False, f"PostgreSQL at {url.host}:{url.port} is not reachable ({exc})".strip())
        raise  # unreachable: require() skips or fails


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once; each test gets a copy made from it."""
    name = f"mailcase_tpl_{os.getpid()}"
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = db.create(make_url(PG_URL).set(database=name).render_as_string(False))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _pg_database(template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of the test's own (a copy of ``template``, else empty)."""
    name = f"mailcase_t{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(False)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_server_url() -> str:
    """The PostgreSQL server's test database, for what needs the server and no schema."""
    _pg_admin().close()  # reachable, or skip (fail where servers are required)
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each engine, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "mailcase.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with _pg_database(template=request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each engine with no schema at all, as on a first start."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with _pg_database() as url:
        yield url


@pytest.fixture
def make_app(tmp_path: Path, database_url: str, sink: Sink) -> Iterator[Callable[..., App]]:
    """Build an App from a real config file; keyword arguments override config sections
    (``dns`` answers the DKIM verifier's lookups, ``clock`` stands in for the time)."""
    apps: list[App] = []

    def build(dns: Callable[..., bytes | None] | None = None,
              clock: Callable[[], datetime] = utc_now, **sections: dict[str, object]) -> App:
        path = write_config(tmp_path, database_url, sink.port, **sections)
        app = App.build(config.load(path), jitter=False, create_secret=True, dns=dns,
                        clock=clock)
        app.ensure_schema()
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    """The app with the default test config: SMTP outbound to the sink."""
    return make_app()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot on a free port with a throwaway config, for this test only.

    Its folder lives outside pytest's private (mode 0700) tmp tree, because Dovecot's
    own unprivileged users must reach the password file and the Maildir.
    """
    reason = dovecot_missing()
    require(reason is None, reason or "")
    root = Path(tempfile.mkdtemp(prefix="mailcase-dovecot-"))
    server = Dovecot(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real aiosmtpd server standing in for the outbound smarthost."""
    with Sink() as server:
        yield server


# Property-based tests: bounded for CI by default, thousands of examples by hand with
# MAILCASE_HYPOTHESIS_PROFILE=thorough. No deadline: a loaded CI machine is no bug.
settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("MAILCASE_HYPOTHESIS_PROFILE", "default"))
