"""The Web-to-Case guard's rules on their own: which hosts an allow-list admits, which
retURLs may be followed, and how the rate counts slide with time."""

from __future__ import annotations

import pytest

from mailcase.web.guard import Limiter, Refused, check_origin, host_allowed, return_url

ALLOWED = ("www.example.com", "*.example.org", "shop.example.net:8443")


@pytest.mark.parametrize(("host", "port", "allowed"), [
    ("www.example.com", None, True),
    ("WWW.Example.com.", 443, True),  # any port when the entry names none
    ("example.com", None, False),
    ("www.example.com.evil.example", None, False),
    ("help.example.org", None, True),
    ("a.b.example.org", None, True),
    ("example.org", None, False),  # *.domain is the hosts under it, not the domain
    ("evilexample.org", None, False),
    ("shop.example.net", 8443, True),
    ("shop.example.net", None, False),
    ("shop.example.net", 443, False),
])
def test_hosts_on_the_allow_list(host: str, port: int | None, allowed: bool) -> None:
    """A host passes when named, under a "*." entry, and on the port an entry names."""
    assert host_allowed(host, port, ALLOWED) is allowed


def test_origin_decides_before_referer() -> None:
    """The Origin header decides; the Referer only where Origin is missing or "null"."""
    check_origin({"origin": "https://www.example.com"}, ALLOWED)
    check_origin({"origin": "null", "referer": "https://help.example.org/form"}, ALLOWED)
    with pytest.raises(Refused) as refused:
        check_origin({"origin": "https://evil.example",
                      "referer": "https://www.example.com/"}, ALLOWED)
    assert refused.value.status == 403
    check_origin({}, ())  # no list: anything goes


@pytest.mark.parametrize("url", [
    "https://evil.example/", "ftp://www.example.com/", "https://www.example.com\\@evil/",
    "https://user@www.example.com/", "https://www.example.com/\r\nSet-Cookie: x=1",
    "/relative/path", "https://www.exämple.com/", "https://www.example.com:99999/",
])
def test_return_urls_that_are_refused(url: str) -> None:
    """Anything but an http(s) address on an allowed host, without tricks, is refused."""
    with pytest.raises(Refused) as refused:
        return_url(url, ALLOWED)
    assert refused.value.status == 422


def test_return_urls_that_are_followed() -> None:
    """An allowed host's address is kept as given; an empty retURL is none."""
    assert return_url("https://www.example.com/thanks?a=1#top", ALLOWED) == \
        "https://www.example.com/thanks?a=1#top"
    assert return_url("http://help.example.org/", ALLOWED) == "http://help.example.org/"
    assert return_url("", ALLOWED) is None


def test_rate_counts_slide_and_can_be_given_back() -> None:
    """A key at its limit waits until its oldest count leaves the window; a refused take
    counts nothing; a form given back frees its count."""
    now = [1000.0]
    limiter = Limiter(clock=lambda: now[0])
    assert limiter.take([("a", 2), ("ip", 3)], 60) == 0.0
    now[0] += 10
    assert limiter.take([("a", 2), ("ip", 3)], 60) == 0.0
    now[0] += 10
    assert limiter.take([("a", 2), ("ip", 3)], 60) == pytest.approx(40)
    assert limiter.take([("b", 2), ("ip", 3)], 60) == 0.0
    assert limiter.take([("c", 2), ("ip", 3)], 60) == pytest.approx(40)
    limiter.give_back(["b", "ip"])
    assert limiter.take([("c", 2), ("ip", 3)], 60) == 0.0
    now[0] += 41
    assert limiter.take([("a", 2), ("d", 9)], 60) == 0.0
