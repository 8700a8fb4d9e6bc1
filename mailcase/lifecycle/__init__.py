"""A case's clock: business hours, service targets, escalation, reminders and auto-close.

A room of its own because time drives it, not mail: the scheduler's sweeps act on cases
whether or not anything arrives, through the same case rules as every other door.
"""
