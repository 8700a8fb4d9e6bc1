"""Service: the running daemon and what keeps it running under a service manager.

The daemon (listener, workers, scheduler on one loop), the processing child, SIGHUP
reload, the systemd protocol (readiness, watchdog, passed sockets) and the pre-flight
checks behind ``check-config``.

May import: ``app`` (the wiring it runs) and every room below it. Only the CLI imports
the service.
"""
