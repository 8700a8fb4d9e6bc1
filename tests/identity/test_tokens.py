"""Reply tokens: made, verified, refused when forged or altered, rotated, and read from
addresses; and the secret file they are signed with."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from mailcase.identity.tokens import (
    Participant,
    SecretError,
    TokenClaim,
    TokenSigner,
    load_secrets,
    token_of,
)

SECRET = b"0123456789abcdef0123456789abcdef"
OLD_SECRET = b"old-secret-old-secret-old-secret"
FOREIGN_SECRET = b"foreign-secret-of-another-install"
ANN = Participant("c", 42)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner([SECRET])


@pytest.fixture
def token(signer: TokenSigner) -> str:
    return signer.make(1000, ANN)


def mac_of(token: str) -> str:
    return token.rpartition("-")[2]


def test_made_token_verifies_to_its_case_and_participant(signer: TokenSigner, token: str) -> None:
    """A token verifies to the case number and participant it was made for."""
    assert signer.verify(token) == TokenClaim(1000, ANN)
    agent_token = signer.make(99_999_999, Participant("a", 7))
    assert signer.verify(agent_token) == TokenClaim(99_999_999, Participant("a", 7))


def _flip_last_mac_char(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("a" if last != "a" else "b")


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(_flip_last_mac_char, id="altered-mac"),
        pytest.param(lambda t: t.replace("1000-", "1001-", 1), id="altered-case-number"),
        pytest.param(lambda t: t.replace("-c42-", "-c43-", 1), id="altered-participant-id"),
        pytest.param(lambda t: t.replace("-c42-", "-a42-", 1), id="altered-participant-kind"),
        pytest.param(lambda t: t[:-1], id="truncated-by-one"),
        pytest.param(lambda t: t[:-10], id="truncated-mac"),
        pytest.param(lambda t: t.rpartition("-")[0], id="mac-removed"),
        pytest.param(lambda t: t + "a", id="mac-extended"),
    ],
)
def test_altered_token_is_refused(
    signer: TokenSigner, token: str, alter: Callable[[str], str]
) -> None:
    """Any change to a genuine token makes it verify to None."""
    altered = alter(token)
    assert altered != token
    assert signer.verify(altered) is None


@pytest.mark.parametrize(
    "garbage",
    ["", "hello", "1000", "1000-c42", "1000-c42-", "-c42-aaaaaaaaaaaaaaaaaaaa",
     "1000-x42-aaaaaaaaaaaaaaaaaaaa", "1000-c42-aaaaaaaaaaaaaaaaaaaa", "1000-c42-!!!!",
     "support@example.com", "1000-c42-" + "a" * 10_000],
)
def test_garbage_is_refused(signer: TokenSigner, garbage: str) -> None:
    """Strings that are not tokens verify to None without raising."""
    assert signer.verify(garbage) is None


def test_token_of_a_foreign_secret_is_refused(token: str) -> None:
    """A token signed by another installation's secret does not verify here."""
    foreign = TokenSigner([FOREIGN_SECRET]).make(1000, ANN)
    assert foreign != token
    assert TokenSigner([SECRET]).verify(foreign) is None


def test_upper_cased_token_still_verifies(signer: TokenSigner, token: str) -> None:
    """Mail systems that change the case of local parts do not break a token."""
    assert signer.verify(token.upper()) == TokenClaim(1000, ANN)
    assert signer.verify(token.swapcase()) == TokenClaim(1000, ANN)


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_secret() -> None:
    """After rotation old tokens still verify and new tokens are signed with the first secret."""
    old_token = TokenSigner([OLD_SECRET]).make(1000, ANN)
    rotated = TokenSigner([SECRET, OLD_SECRET])
    assert rotated.verify(old_token) == TokenClaim(1000, ANN)

    new_token = rotated.make(1000, ANN)
    assert new_token == TokenSigner([SECRET]).make(1000, ANN)
    assert new_token != old_token
    assert TokenSigner([SECRET]).verify(new_token) == TokenClaim(1000, ANN)
    assert TokenSigner([OLD_SECRET]).verify(new_token) is None


def test_mac_has_at_least_80_bits(token: str) -> None:
    """The MAC is at least 20 base32 characters (100 bits, well over 80) of lower case."""
    mac = mac_of(token)
    assert len(mac) >= 20
    assert len(mac) * 5 >= 80
    assert set(mac) <= set("abcdefghijklmnopqrstuvwxyz234567")


def test_token_is_lower_case_letters_digits_and_dashes(token: str) -> None:
    """A token survives a local part being lower-cased by using no upper-case letters."""
    assert token == token.lower()
    assert all(ch.isalnum() or ch == "-" for ch in token)


def test_signer_without_secrets_is_refused() -> None:
    """A signer cannot be built without at least one secret."""
    with pytest.raises(SecretError):
        TokenSigner([])


def test_token_of_extracts_the_token(token: str) -> None:
    """token_of returns what follows ``support+`` in the local part."""
    assert token_of(f"support+{token}@example.com", "support") == token
    assert token_of(f"<support+{token}@example.com>", "support") == token
    assert token_of("support+TOKEN@example.com", "support") == "token"
    assert token_of(f"Support+{token.upper()}@Example.COM", "support") == token


@pytest.mark.parametrize(
    "address",
    ["support@example.com", "other+x@example.com", "support+@example.com",
     "supportx+abc@example.com", "no-at-sign", ""],
)
def test_token_of_returns_none_without_a_token(address: str) -> None:
    """Addresses that carry no token of our local part give None."""
    assert token_of(address, "support") is None


def test_load_secrets_creates_a_private_file(tmp_path: Path) -> None:
    """With create=True a missing secret file is made, mode 0600, holding one long secret."""
    path = tmp_path / "state" / "token-secret"
    secrets = load_secrets(path, create=True)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secrets) == 1
    assert len(secrets[0]) >= 16
    assert load_secrets(path, create=True) == secrets  # a second start reuses it


def test_load_secrets_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    """Without create=True a missing secret file is an error, not a silent new secret."""
    path = tmp_path / "token-secret"
    with pytest.raises(SecretError):
        load_secrets(path, create=False)
    assert not path.exists()


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "   \n# x\n"])
def test_load_secrets_refuses_a_file_without_secrets(tmp_path: Path, content: str) -> None:
    """An empty secret file (or one of comments only) is refused."""
    path = tmp_path / "token-secret"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SecretError, match="no secret"):
        load_secrets(path, create=True)


def test_load_secrets_refuses_a_short_secret(tmp_path: Path) -> None:
    """A secret shorter than 16 characters is refused, even beside a long one."""
    path = tmp_path / "token-secret"
    path.write_text("a" * 32 + "\n" + "tooshort\n", encoding="utf-8")
    with pytest.raises(SecretError, match="16"):
        load_secrets(path, create=False)
    path.write_text("x" * 15 + "\n", encoding="utf-8")
    with pytest.raises(SecretError, match="16"):
        load_secrets(path, create=False)


def test_load_secrets_skips_comments(tmp_path: Path) -> None:
    """Comment lines and blank lines are skipped; secrets keep their order."""
    path = tmp_path / "token-secret"
    path.write_text(
        "# new secret first\n" + "n" * 20 + "\n\n# old one, kept for replies\n" + "o" * 20 + "\n",
        encoding="utf-8",
    )
    assert load_secrets(path, create=False) == [b"n" * 20, b"o" * 20]
