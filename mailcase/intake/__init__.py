"""Intake: every way mail comes in, and the durable accept that comes before any yes.

The SMTP/LMTP listener and its protocol, SMTP AUTH, group commit, the IMAP poller and
its login and poll records, archive import, and ``accept`` itself, which stores the raw
bytes and commits before a mail is acknowledged (250, IMAP flag, exit 0).

May import: ``reading`` (a mail's Message-IDs for its idempotency key), ``store``,
``logs``, ``config``. Never the pipeline (processing comes after the commit, in its own
time), the outbound room, the service or the CLI.
"""
