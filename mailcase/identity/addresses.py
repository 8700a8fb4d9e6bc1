"""Our own addresses, in every spelling: no mail from them opens a case, none goes to them.

A configured mailbox (``support@example.com``), its plus-forms (reply tokens, VERP return
paths), any other configured mailbox and the outbound From are all mailcase itself.
Mail systems and attackers spell one address many ways, so an address is compared in
its canonical form: lower-cased, without angle brackets, with a quoted local part
unquoted (RFC 5321 4.1.2: ``"support"@example.com`` is ``support@example.com``) and
without the trailing dot of an absolute domain name (``example.com.``).
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import parseaddr

from mailcase.config import Settings


def canonical(address: str) -> str:
    """``address`` as one spelling: lower case, unquoted local part, no trailing dot."""
    text = address.strip().strip("<>").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = local[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return f"{local}@{domain.rstrip('.')}"


class OwnAddresses:
    """Tells whether an address is one of mailcase's own, in any of its spellings."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self._exact: set[str] = set()
        self._plus: set[tuple[str, str]] = set()  # (local part + "+", domain)
        for address in addresses:
            local, _, domain = canonical(address).rpartition("@")
            self._exact.add(f"{local}@{domain}")
            self._plus.add((local + "+", domain))

    @classmethod
    def of(cls, settings: Settings) -> OwnAddresses:
        """Every mailbox address of ``settings`` and the outbound From, if one is set."""
        addresses = [m.address for m in settings.mailbox]
        if settings.outbound.from_:
            addresses.append(parseaddr(settings.outbound.from_)[1] or settings.outbound.from_)
        return cls(addresses)

    def owns(self, address: str) -> bool:
        """Whether ``address`` (any spelling, any plus-form) is one of ours."""
        text = canonical(address)
        if text in self._exact:
            return True
        local, _, domain = text.rpartition("@")
        return any(domain == own_domain and local.startswith(prefix)
                   for prefix, own_domain in self._plus)
