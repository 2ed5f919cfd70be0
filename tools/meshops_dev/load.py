"""A bounded HTTP load through a loopback port, counting the requests that failed.

Zero-downtime checks and benchmarks run one while an upgrade or a rollback runs: ``rate``
requests per second (each on a new connection, so a gateway pod that stops accepting is seen as
well as one that answers 5xx) to ``127.0.0.1:<port>`` with a Host header, until ``stop()`` or
``max_seconds``, whichever comes first. Only loopback addresses are accepted.
"""

import collections
import http.client
import threading
import time

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Load:
    """``with Load(port, host="httpbin.example.com") as load: ...``; then ``load.summary()``."""

    def __init__(self, port, host, path="/status/200", address="127.0.0.1", rate=20.0, max_seconds=1800, timeout=5.0, expect=200):
        if address not in LOOPBACK:
            raise ValueError(f"load is only sent to a loopback address, not {address!r}")
        self.port, self.host, self.path, self.address = int(port), host, path, address
        self.interval = 1.0 / float(rate)
        self.max_seconds, self.timeout, self.expect = float(max_seconds), float(timeout), expect
        self.sent = 0
        self.failed = 0
        self.reasons = collections.Counter()
        self.failures = []  # (seconds since start, reason), the first 50
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meshops-load", daemon=True)
        self.started = None
        self.elapsed = 0.0

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.started = time.monotonic()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(self.timeout + 5)
        self.elapsed = time.monotonic() - self.started if self.started else 0.0

    def _one(self):
        conn = http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path, headers={"Host": self.host, "Connection": "close"})
            response = conn.getresponse()
            response.read()
            return None if response.status == self.expect else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            conn.close()

    def _run(self):
        deadline = self.started + self.max_seconds
        next_at = self.started
        while not self._stop.is_set() and time.monotonic() < deadline:
            reason = self._one()
            self.sent += 1
            if reason:
                self.failed += 1
                self.reasons[reason] += 1
                if len(self.failures) < 50:
                    self.failures.append((round(time.monotonic() - self.started, 2), reason))
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def summary(self):
        return {
            "sent": self.sent,
            "failed": self.failed,
            "seconds": round(self.elapsed, 1),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed else 0.0,
            "reasons": dict(self.reasons),
            "first_failures": self.failures[:10],
        }
