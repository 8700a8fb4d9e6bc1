"""The inbound pipeline: ordered stages that turn one accepted mail into case changes.

Matching a mail to its case, the stages (screen, identify, match, record, respond), the
actions of commands by mail, and the processor that runs them one transaction per mail.

May import: ``cases`` (every change goes through the case rules), ``outbound``,
``identity``, ``reading``, ``store``, ``logs``, ``config``. Never intake, service or CLI.
"""
