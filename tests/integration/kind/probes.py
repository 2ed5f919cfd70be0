"""Probes of the reference scenario (SEED.md), from the verify role's defaults."""

import copy

from tests.fixtures import scenario

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
