"""Identity: who is writing, and who may be written to.

Reply tokens (the signed address that proves a reply reached its participant) and the
collaborator eligibility policy of a mailbox. The inbound pipeline checks tokens, the
outbound composer signs them into Reply-To, and the CLI checks eligibility, so this
room sits below all three. What a mail proves about its sender lives here as it grows.

May import: ``store``, ``config``. Never reading's callers (pipeline, outbound, cases).
"""
