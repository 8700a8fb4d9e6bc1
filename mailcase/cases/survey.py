"""Satisfaction surveys answered: the case rules behind the survey's one-click links.

A closed case's contact gets two signed links (outbound.notify: ``survey``); each names
the case and an expiry under the reply-token secret, so a link cannot be made for
another case, or kept working past ``satisfaction.valid_days``. The first click records
the rating, a later one changes it, a comment may follow; a rating that turns bad tells
the owner. The door (web.satisfaction) only carries the click here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.book import CaseBook
from mailcase.cases.errors import CaseError
from mailcase.config import Settings
from mailcase.outbound.notify import Notifier


class SurveyRefused(CaseError):
    """A survey link that is not one mailcase made, or no longer valid."""

    def __init__(self, message: str, *, expired: bool) -> None:
        super().__init__(message)
        self.expired = expired


class Surveys:
    """Records the contact's answers, through the case rules."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session],
                 notifier: Notifier, clock: Callable[[], datetime],
                 ring: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.notifier = notifier
        self.clock = clock
        self.ring = ring  # wakes the daemon to send the owner's alert now

    def answer(self, token: str, rating: str, comment: str | None = None) -> str:
        """Record ``rating`` (and ``comment``) for the case ``token`` names; its number."""
        claim = self.notifier.composer.signer.verify_survey(token)
        if claim is None:
            raise SurveyRefused("this is not a survey link we sent", expired=False)
        number, expires = claim
        now = self.clock()
        if now.timestamp() > expires:
            raise SurveyRefused("this survey link has expired", expired=True)
        with self.sessions.begin() as session:
            book = CaseBook(session, self.settings.cases, now)
            case = book.get(number)
            if book.rate(case, rating, comment):
                self.notifier.rated_bad(session, case, now)
            shown = case.display_number
        self.ring()
        return shown
