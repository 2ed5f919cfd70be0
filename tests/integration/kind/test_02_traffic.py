"""The reference traffic for real: ingress and egress through Istio's gateways on kind (issue 5)."""

import collections
import http.client
import json

import pytest

from tests.integration.kind import probes
from tests.integration.kind.conftest import INGRESS, recap

pytestmark = pytest.mark.kind

UNREGISTERED = "unregistered.meshops.test"


def test_reference_ingress_checks_pass_through_the_gateway(cluster):
    rc, result = cluster.probe(probes.SEED, retries=30, delay=2, consecutive_successes=2)
    assert rc == 0, result.get("msg")
    by_name = {p["name"]: p for p in result["probes"]}
    status = by_name["status 200 through the gateway"]
    assert status["status"] == 200
    assert status["headers"]["server"] == "istio-envoy"
    assert int(status["headers"]["x-envoy-upstream-service-time"]) >= 0
    assert by_name["delay 1s"]["latency"] >= 1.0
    assert by_name["unrouted /headers"]["status"] == 404
    assert by_name["other host"]["status"] == 404


def test_a_failing_probe_names_the_probe_and_explains_the_route(cluster):
    wrong = dict(probes.HEADERS_404, name="expects /headers routed", expect={"status": 200})
    rc, result = cluster.probe([wrong])
    assert rc != 0
    assert "expects /headers routed" in result["msg"]
    assert "VirtualService httpbin/httpbin" in result["msg"], result["msg"]


def test_changing_a_route_in_the_inventory_changes_live_behaviour(cluster):
    rc, output = cluster.site(
        {
            "traffic_ingress_routes": [probes.route_with("/status", "/delay", "/headers")],
            "verify_ingress_probes": [probes.STATUS_200, probes.HEADERS_200],
            "verify_egress": False,
        }
    )
    assert rc == 0, recap(output)
    assert recap(output)["changed"] >= 1
    rc, result = cluster.probe([probes.HEADERS_200], retries=30, delay=1)
    assert rc == 0, result.get("msg")
    # back to the reference routes: /headers is refused again
    rc, output = cluster.site({"verify_egress": False})
    assert rc == 0, recap(output)
    rc, result = cluster.probe([probes.HEADERS_404], retries=30, delay=1)
    assert rc == 0, result.get("msg")


def hostnames(count):
    """Ask httpbin's /hostname through the gateway `count` times; return a Counter of pod names."""
    seen = collections.Counter()
    host, port = INGRESS.split(":")
    for _ in range(count):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/hostname", headers={"Host": probes.HOST})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body[:200])
            seen[json.loads(body)["hostname"]] += 1
        finally:
            conn.close()
    return seen


def test_two_replicas_share_the_requests(cluster):
    extra = {
        "httpbin_replicas": 2,
        "traffic_ingress_routes": [probes.route_with("/status", "/delay", "/hostname")],
        "verify_ingress_probes": [probes.STATUS_200],
        "verify_egress": False,
    }
    rc, output = cluster.site(extra)
    assert rc == 0, recap(output)
    rc, result = cluster.probe([{"name": "hostname", "host": probes.HOST, "path": "/hostname", "expect": {"status": 200}}], retries=30, delay=1)
    assert rc == 0, result.get("msg")
    seen = hostnames(60)
    pods = cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=httpbin", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert sorted(seen) == sorted(pods), seen
    assert min(seen.values()) >= 10, seen
    rc, output = cluster.site({"verify_egress": False})
    assert rc == 0, recap(output)


def egress_gateway_requests(cluster, host):
    """Requests the egress gateway sent to `host` (Envoy's upstream_rq_total of its cluster)."""
    pod = cluster.kubectl("-n", "istio-system", "get", "pods", "-l", "istio=egressgateway", "-o", "jsonpath={.items[0].metadata.name}")
    stats = cluster.kubectl("-n", "istio-system", "exec", pod, "-c", "istio-proxy", "--", "pilot-agent", "request", "GET", "stats?filter=upstream_rq_total")
    total = 0
    for line in stats.splitlines():
        name, _sep, value = line.rpartition(": ")
        if name.startswith(f"cluster.outbound|80||{host}.") and name.endswith(".upstream_rq_total"):
            total += int(value)
    return total


def client_curl(cluster, url):
    pod = cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=meshops-curl", "-o", "jsonpath={.items[0].metadata.name}")
    out = cluster.kubectl(
        "-n", "httpbin", "exec", pod, "-c", "curl", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url, check=False
    )
    return out.strip()


def test_mesh_traffic_to_the_external_host_leaves_through_the_egress_gateway(cluster):
    before = egress_gateway_requests(cluster, "edition.cnn.com")
    for _ in range(3):
        assert client_curl(cluster, "http://edition.cnn.com/status/200") == "200"
    assert egress_gateway_requests(cluster, "edition.cnn.com") >= before + 3


def test_registry_only_refuses_hosts_without_a_serviceentry(cluster):
    # with ALLOW_ANY the unregistered host (a container of ours) answers directly
    assert client_curl(cluster, f"http://{UNREGISTERED}/status/200") == "200"
    extra = {"control_plane_outbound_traffic_policy": "REGISTRY_ONLY", "verify_blocked_hosts": [UNREGISTERED]}
    try:
        rc, output = cluster.site(extra)
        assert rc == 0, recap(output)
        assert client_curl(cluster, f"http://{UNREGISTERED}/status/200") != "200"
        assert client_curl(cluster, "http://edition.cnn.com/status/200") == "200"
    finally:
        rc, output = cluster.site({"verify_egress": False})
        assert rc == 0, recap(output)
