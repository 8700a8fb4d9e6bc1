"""The console measure: the pages an agent opens, on a store of a million cases.

The store is the API measure's (bench.api.prepare: seeded old cases and one realistic
case with a dozen comments), with a working day laid over it by ``open_work``: one case
in every thousand open again — the agent's own, unassigned ones, a queue's, escalated
ones — each with a running resolution target, so every list has pages to show and
"due soon" has targets to sort. The agent is signed in by opening a session as the
sign-in form does; each page is then fetched by one client alone, as fast as it is
answered (bench.api.run), to time what one agent waits for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, text

from bench.api import AGENT

QUEUE = "Billing"
SHARE = 1000  # one case in this many is open
PAGES = (
    ("my open cases", "/?view=mine"),
    ("unassigned", "/?view=unassigned"),
    ("a queue", f"/?view=queue&queue={QUEUE}"),
    ("due soon", "/?view=due"),
    ("escalated", "/?view=escalated"),
    ("recently updated", "/?view=recent"),
    ("my open cases sorted by priority", "/?view=mine&sort=priority"),
    ("search for a word of one case", "/search?q=printer"),
    ("search for a word of every case", "/search?q=old"),
)


def open_work(config: Path, cases: int) -> tuple[str, int]:
    """Open a share of the ``cases`` seeded (see the module's docstring; one in ten of a
    small store, so its lists are not empty) and sign the agent in; the Cookie header
    that carries the session, and how many cases are open."""
    from mailcase import config as mailcase_config  # noqa: PLC0415 - only this measure
    from mailcase.app import App  # noqa: PLC0415
    from mailcase.cases.signins import Signins  # noqa: PLC0415
    from mailcase.cases.staff import Staff  # noqa: PLC0415
    from mailcase.store.models.base import UTCDateTime  # noqa: PLC0415

    app = App.build(mailcase_config.load(config))
    postgres = app.engine.dialect.name == "postgresql"
    false = "false" if postgres else "0"
    when = (bindparam("now", type_=UTCDateTime()), bindparam("due", type_=UTCDateTime()))
    now = datetime.now(UTC)
    try:
        with app.sessions.begin() as session:
            staff = Staff(session)
            agent = staff.agent(AGENT)
            assert agent is not None, "bench.api.prepare adds the agent"
            queue = staff.add_queue(QUEUE, [AGENT])
            session.flush()
            share = SHARE if cases >= 100 * SHARE else 10
            chosen = f"number % {share} IN (1, 2, 3, 4) AND number <= {cases}"
            session.execute(text(
                f"UPDATE cases SET is_closed = {false}, closed_at = NULL, status = CASE "
                f"number % {share} WHEN 2 THEN 'New' ELSE 'Working' END, "
                f"owner_agent_id = CASE number % {share} WHEN 1 THEN :agent WHEN 4 THEN "
                f":agent ELSE NULL END, owner_queue_id = CASE number % {share} WHEN 3 THEN "
                f":queue ELSE NULL END, is_escalated = (number % {share} = 4), "
                f"priority = CASE number % 3 WHEN 0 THEN 'High' WHEN 1 THEN 'Medium' "
                f"ELSE 'Low' END, updated_at = :now WHERE {chosen}").bindparams(when[0]),
                {"agent": agent.id, "queue": queue.id, "now": now})
            # Changed at different times, as a real store's cases were (the seed gives
            # them all one moment, which no index of changes is made for).
            spread = ("timestamp '2025-01-01' + number * interval '1 second'" if postgres
                      else "datetime('2025-01-01', '+' || number || ' seconds')")
            session.execute(text(f"UPDATE cases SET updated_at = {spread} "
                                 f"WHERE number <= {cases} AND NOT ({chosen})"))
            session.execute(text(
                "INSERT INTO case_targets (case_id, name, sla, calendar, target_days, "
                "target_seconds, started_at, due_at) SELECT id, 'resolution', 'standard', "
                f"'24x7', 2, 0, :now, :due FROM cases WHERE {chosen}").bindparams(*when),
                {"now": now, "due": now + timedelta(days=2)})
            opened = session.scalar(text(
                f"SELECT count(*) FROM cases WHERE is_closed = {false}")) or 0
            secret, _ = Signins(session, now, app.settings.console).open(agent)
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
    finally:
        app.close()
    return f"mailcase_session={secret}", int(opened)
