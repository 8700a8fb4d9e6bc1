"""A case's clock over time: escalation at service-target warnings and breaches, reminders
and auto-close of cases waiting on the customer, run by the scheduler's sweeps.

A room of its own because time drives it, not mail: the sweeps act on cases whether or
not anything arrives, through the same case rules as every other door. How targets are
kept on a case (started, paused, met) and business-time arithmetic are case rules, in
mailcase.cases; this room decides when time has run out and what then happens.
"""
