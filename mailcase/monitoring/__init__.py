"""Monitoring: is mail flowing? Health checks, metrics and the loopback HTTP endpoint.

Read from the shared database at the time of the request, so the answer covers every
process and instance. ``app`` builds the checks and the daemon serves them, so this room
sits below both.

May import: ``store``, ``config``. Never intake, the pipeline or outbound: it reads
what they wrote, it does not ask them.
"""
