"""The baseline: a bare aiosmtpd server that answers 250 to every mail and keeps nothing.

Run as its own process (``python -m bench.bare PORT``), like ``mailcase serve``, so both
meet the same clients on the same cores. It counts what it received and prints the
count when it is stopped (SIGTERM), which the fan-out measure also reads as a sink.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class Bare:
    """Takes every message and forgets it."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        self.received += 1
        return "250 OK"


async def serve(port: int) -> None:
    handler = Bare()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=64 * 1024 * 1024, hostname="bare"),
        "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    print(f"received {handler.received}", flush=True)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
