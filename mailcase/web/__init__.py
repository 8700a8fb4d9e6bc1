"""The doors over HTTP: the API for other programs (JSON under /api/v1, with API keys),
Web-to-Case, the public form whose submissions become cases, and the agents' web
console (``console``, behind its own sign-in).

Every change the API makes goes through the same case rules as the command line
(cases.desk): a route reads its request, calls the Desk and answers; none writes to the
database on its own. A Web-to-Case form is written as a mail and stored by the same
durable intake as mail (intake.accept), so the pipeline opens its case. Database work
runs in the framework's thread pool, so the daemon's event loop (the SMTP listener)
never waits for it.

May import: ``app`` and everything below it.
"""
