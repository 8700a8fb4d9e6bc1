"""Who calls the API: an ``Authorization: Bearer <key>`` header checked against the keys
``mailcase api-keys`` made, and the scope a route needs."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from mailcase.app import App
from mailcase.cases.apikeys import ApiKeys, allows
from mailcase.store.models import ApiKey

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mailcase"'}


def caller(app: Callable[[], App], request: Request, needed: str) -> ApiKey:
    """The key the request carries, if it is in use and may do what needs ``needed``:
    401 without a usable key (no header, not a key, revoked), 403 with too small a
    scope."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "an API key is needed: Authorization: Bearer mck_…",
                            headers=CHALLENGE)
    current = app()
    with current.sessions.begin() as session:
        key = ApiKeys(session, current.clock()).verify(token)
        if key is None:
            raise HTTPException(401, "this API key is not one in use", headers=CHALLENGE)
        session.expunge(key)
    if not allows(key.scope, needed):
        raise HTTPException(403, f"this key's scope is {key.scope}; this needs {needed}")
    return key
