"""The doors over HTTP: the API for other programs (JSON under /api/v1, with API keys).

Every change goes through the same case rules as the command line (cases.desk): a route
reads its request, calls the Desk and answers; none writes to the database on its own.
Routes are plain functions, so the framework runs them in its thread pool and the
daemon's event loop (the SMTP listener) never waits for the database.

May import: ``app`` and everything below it.
"""
