"""API keys from the command line: made once and shown once, stored only as a hash,
checked in constant time, revoked at once, scopes that nest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cases.apikeys import ApiKeys, allows
from mailcase.cli import main
from mailcase.store.models import ApiKey


def cli(tmp_path: Path, *args: str) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *args])


def test_a_key_is_shown_once_and_kept_only_as_a_hash(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`api-keys create` prints the key once; the store and `list` never hold it; it
    verifies until revoked, and a changed or unknown key never does."""
    app = make_app()
    assert cli(tmp_path, "api-keys", "create", "crm-sync", "--scope", "write") == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("mck_") and "not shown again" in out.err
    with app.sessions() as session:
        [row] = session.scalars(select(ApiKey)).all()
        assert key.split("_", 2)[2] not in (row.secret_sha256, row.key_id)
    assert cli(tmp_path, "api-keys", "list", "--json") == 0
    listed = capsys.readouterr().out
    assert key.split("_", 2)[2] not in listed
    assert json.loads(listed)[0]["scope"] == "write"

    with app.sessions.begin() as session:
        keys = ApiKeys(session, app.clock())
        found = keys.verify(key)
        assert found is not None and found.name == "crm-sync"
        assert found.last_used_at is not None
        assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert keys.verify("mck_000000000000_" + key.split("_", 2)[2]) is None
        assert keys.verify("Bearer nonsense") is None
    assert cli(tmp_path, "api-keys", "revoke", "crm-sync") == 0
    with app.sessions() as session:
        assert ApiKeys(session, app.clock()).verify(key) is None


def test_names_are_unique_while_in_use_and_mistakes_are_one_line(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A second key of a name in use is refused (exit 1); revoked, the name is free;
    revoking an unknown key exits 1; an unknown scope exits 2."""
    make_app()
    assert cli(tmp_path, "api-keys", "create", "portal") == 0
    assert cli(tmp_path, "api-keys", "create", "portal") == 1
    assert cli(tmp_path, "api-keys", "revoke", "portal") == 0
    assert cli(tmp_path, "api-keys", "create", "portal") == 0
    assert cli(tmp_path, "api-keys", "revoke", "nobody") == 1
    with pytest.raises(SystemExit) as usage:
        cli(tmp_path, "api-keys", "create", "x", "--scope", "root")
    assert usage.value.code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert "mailcase: there is already a key called 'portal'; revoke it first" in errors
    assert "mailcase: there is no key called 'nobody' that is in use" in errors
    assert all("Traceback" not in line for line in errors)


def test_scopes_nest() -> None:
    """admin may do what write may, write what read may, never the other way."""
    assert allows("admin", "write") and allows("write", "read") and allows("read", "read")
    assert not allows("read", "write") and not allows("write", "admin")
