"""Probes of the reference scenario (SEED.md), in route_verify's format."""

HOST = "httpbin.example.com"

STATUS_200 = {
    "name": "status 200 through the gateway",
    "host": HOST,
    "path": "/status/200",
    "method": "HEAD",
    "expect": {"status": 200, "headers": {"server": "istio-envoy"}, "headers_present": ["x-envoy-upstream-service-time"]},
}
DELAY_1 = {"name": "delay 1s", "host": HOST, "path": "/delay/1", "expect": {"status": 200, "min_latency": 1.0}}
HEADERS_404 = {"name": "unrouted /headers", "host": HOST, "path": "/headers", "expect": {"status": 404}}
OTHER_HOST_404 = {"name": "other host", "host": "other.example.com", "path": "/status/200", "expect": {"status": 404}}
HEADERS_200 = {
    "name": "/headers routed",
    "host": HOST,
    "path": "/headers",
    "expect": {"status": 200, "json": [{"query": "headers.Host[0]", "equals": HOST}]},
}
SEED = [STATUS_200, DELAY_1, HEADERS_404, OTHER_HOST_404]

SEED_ROUTE = {
    "name": "httpbin",
    "hosts": [HOST],
    "gateway": {"name": "httpbin-gateway", "port": 80, "protocol": "HTTP"},
    "http": [{"match": [{"prefix": "/status"}, {"prefix": "/delay"}], "route": [{"host": "httpbin", "port": 8000}]}],
}


def route_with(*prefixes):
    """The reference ingress route, matching these prefixes."""
    route = dict(SEED_ROUTE)
    route["http"] = [{"match": [{"prefix": p} for p in prefixes], "route": [{"host": "httpbin", "port": 8000}]}]
    return route
