"""Outbound: the mail mailcase writes, from template to smarthost.

Templates, MIME building, composing into the outbox (in the transaction that caused the
mail), who is notified of what, and the outbox sender with its transports (SMTP relay,
local Maildir).

May import: ``identity`` (reply tokens in Reply-To), ``reading`` (the loop marker that
screening looks for), ``store``, ``config``. Never cases, the pipeline, intake, service
or CLI.
"""
