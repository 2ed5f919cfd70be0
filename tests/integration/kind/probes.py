"""Probes of the reference scenario (SEED.md), from the verify role's defaults."""

import copy
import http.client
import json
import time

from tests.fixtures import scenario
from tests.support.kind import INGRESS

HOST = scenario.variable("verify_ingress_host")
SEED = scenario.probes()
SEED_ROUTE = scenario.ingress_routes()[0]


def _probe(path, host=HOST):
    return next(p for p in SEED if p["path"] == path and p["host"] == host)


STATUS_200 = _probe("/status/200")
DELAY_1 = _probe("/delay/1")
HEADERS_404 = _probe("/headers")
OTHER_HOST_404 = next(p for p in SEED if p["host"] != HOST)
# not part of the scenario: what a route change makes true
HEADERS_200 = {
    "name": "/headers routed",
    "host": HOST,
    "path": "/headers",
    "expect": {"status": 200, "json": [{"query": "headers.Host[0]", "equals": HOST}]},
}


def route_with(*prefixes):
    """The reference ingress route, matching these prefixes."""
    route = copy.deepcopy(SEED_ROUTE)
    route["http"] = [{"match": [{"prefix": p} for p in prefixes], "route": copy.deepcopy(SEED_ROUTE["http"][0]["route"])}]
    return route


# a container of the project's kind network that no ServiceEntry registers
UNREGISTERED = "unregistered.meshops.test"


def client_curl(cluster, url, agent="meshops-test", host=None):
    """Status code of a request from the mesh client pod (with its sidecar), as a string."""
    pod = cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=meshops-curl", "-o", "jsonpath={.items[0].metadata.name}")
    curl = ["curl", "-sS", "-A", agent, "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *(["-H", f"Host: {host}"] if host else []), url]
    out = cluster.kubectl("-n", "httpbin", "exec", pod, "-c", "curl", "--", *curl, check=False)
    return out.strip()


def ingress_request(request):
    """``(status, headers with lower-case names, body)`` of one request through the ingress
    gateway (127.0.0.1), ``request``: method, path, host, headers."""
    address, port = INGRESS.split(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=10)
    try:
        conn.request(request["method"], request["path"], headers=dict(request["headers"], Host=request["host"]))
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


class Tally:
    """The counts of a differential test (a static prediction against the real gateway)."""

    def __init__(self):
        self.cases = 0
        self.unsupported = 0
        self.disagreements = []

    def add(self, verdict, detail):
        """``verdict``: True, False or None (not comparable); ``detail`` describes a disagreement."""
        self.cases += 1
        if verdict is None:
            self.unsupported += 1
        elif not verdict:
            self.disagreements.append(detail)

    def check(self, title, configs):
        """Print the figures, then fail on a disagreement or too few comparable predictions."""
        comparable = self.cases - self.unsupported
        rate = (comparable - len(self.disagreements)) / comparable if comparable else 0.0
        print(
            f"\n{title}: {self.cases} cases over {configs} configurations, {comparable} comparable, {self.unsupported} unsupported, "
            f"{len(self.disagreements)} disagreements, agreement rate {rate:.1%}"
        )
        assert comparable >= self.cases * 0.9, "too many predictions were not comparable"
        assert not self.disagreements, json.dumps(self.disagreements[:5], indent=1)


def wait_for(predicate, what, timeout=180, interval=2, diagnose=None):
    """Poll ``predicate`` until it is true, at most ``timeout`` seconds; on a timeout the
    message ends with what ``diagnose()`` returns (the state that kept the predicate false)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f":\n{diagnose()}" if diagnose else ""))
