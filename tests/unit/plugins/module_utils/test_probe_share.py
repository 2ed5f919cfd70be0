"""Probes with ``share``: a batch of requests whose share of answers meeting the expectations
must lie in a range (percentage faults, weighted splits), against a real HTTP server on loopback
that answers 503 to every second request."""

import http.server
import threading

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.probe.runner import ProbeSpecError, prepare, run


class Alternating(http.server.BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_GET(self):
        with Alternating.lock:
            Alternating.count += 1
            status = 503 if Alternating.count % 2 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture(name="server", scope="module")
def fixture_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Alternating)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_one(server, share, retries=0):
    Alternating.count = 0
    probes, settings = prepare(
        [{"name": "half", "host": "flaky.example.com", "path": "/", "share": share, "expect": {"status": 503}}],
        {"address": server},
        {"retries": retries, "delay": 0, "timeout": 60},
    )
    results, summary = run(probes, settings)
    return results[0], summary


def test_a_share_within_the_range_passes(server):
    result, summary = run_one(server, {"samples": 10, "min": 0.4, "max": 0.6})
    assert result["passed"] is True
    assert result["share"] == {"samples": 10, "matched": 5, "fraction": 0.5}
    assert result["attempts"] == 1
    assert summary["passed"] == 1


def test_a_share_outside_the_range_fails_and_says_by_how_much(server):
    result, _summary = run_one(server, {"samples": 10, "min": 0.6}, retries=2)
    assert result["passed"] is False
    assert result["attempts"] == 3  # every attempt is a new batch
    assert result["failed_expectations"] == [
        {"expectation": "share", "expected": "0.6-1.0", "actual": 0.5, "message": "5 of 10 answers met the expectations (50.0%), expected 60.0% to 100.0%"}
    ]


@pytest.mark.parametrize(
    ("share", "message"),
    [
        ({"samples": 0}, "share.samples must be an integer from 1 to 1000, got 0"),
        ({"samples": 1001}, "share.samples must be an integer from 1 to 1000, got 1001"),
        ({"samples": 10, "min": 1.5}, "share.min must be a fraction from 0 to 1, got 1.5"),
        ({"samples": 10, "min": 0.7, "max": 0.2}, "share.min 0.7 is above share.max 0.2"),
        ("half", "share must be a mapping {samples, min, max}"),
    ],
)
def test_bad_shares_are_refused_before_any_request(share, message):
    with pytest.raises(ProbeSpecError) as exc:
        prepare([{"name": "half", "host": "flaky.example.com", "share": share}], {"address": "127.0.0.1:9"}, {})
    assert any(message in error for error in exc.value.errors), exc.value.errors
