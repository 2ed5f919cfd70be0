"""Things that run on this host's loopback: free ports and bounded waits (the lab, the
benchmarks and the tests use these; traffic goes to 127.0.0.1 and the project's own namespaces)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import WaitTimeout

T = TypeVar("T")


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct free loopback ports (all sockets stay bound until every port is known)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something true and return that; bounded in time.

    An exception from ``predicate`` counts as "not yet" (the thing is not up); the last one is
    named in the ``WaitTimeout`` raised after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # any failure of the probe means: not ready yet
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")
        time.sleep(interval)
