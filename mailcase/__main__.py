"""``python -m mailcase`` and the ``mailcase`` command: run the CLI, with a Ctrl-C quiet
from the very first instant.

The CLI's imports take a noticeable moment; a Ctrl-C in it would otherwise end in a
KeyboardInterrupt traceback. This module imports nothing heavy itself, so the guard is
in place before they start: a Ctrl-C that no command handles itself (``serve`` stops
cleanly on SIGINT once it runs) exits 130, 128 + SIGINT as a shell reports it, without
a word.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn


def run() -> NoReturn:
    """The entry point of the ``mailcase`` command."""
    try:
        from mailcase.cli import main  # noqa: PLC0415 - inside the guard: Ctrl-C while importing

        code = main()
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT  # what a shell reports for a tool ended by Ctrl-C
    sys.exit(code)


if __name__ == "__main__":
    run()
