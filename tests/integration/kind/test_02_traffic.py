"""The reference traffic for real: ingress and egress through Istio's gateways on kind (issue 5)."""

import collections
import copy
import http.client
import re
import time

import pytest

from tests.fixtures import scenario
from tests.helpers import failed_task
from tests.integration.kind import probes
from tests.integration.kind.probes import UNREGISTERED, client_curl
from tests.support.kind import INGRESS, recap

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]


def test_reference_ingress_checks_pass_through_the_gateway(cluster):
    rc, result = cluster.probe(probes.SEED, retries=30, delay=2, consecutive_successes=2)
    assert rc == 0, result.get("msg")
    by_name = {p["name"]: p for p in result["probes"]}
    status = by_name[probes.STATUS_200["name"]]
    assert status["status"] == 200
    assert status["headers"]["server"] == "istio-envoy"
    assert int(status["headers"]["x-envoy-upstream-service-time"]) >= 0
    assert by_name[probes.DELAY_1["name"]]["latency"] >= 1.0
    assert by_name[probes.HEADERS_404["name"]]["status"] == 404
    assert by_name[probes.OTHER_HOST_404["name"]]["status"] == 404


def test_a_failing_probe_names_the_probe_and_explains_the_route(cluster):
    wrong = dict(probes.HEADERS_404, name="expects /headers routed", expect={"status": 200})
    rc, result = cluster.probe([wrong])
    assert rc != 0
    assert "expects /headers routed" in result["msg"]
    assert "VirtualService httpbin/httpbin" in result["msg"], result["msg"]


def test_changing_a_route_in_the_inventory_changes_live_behaviour(cluster):
    # only the roles a route change concerns, as the README shows
    rc, output = cluster.site(
        {
            "traffic_ingress_routes": [probes.route_with("/status", "/delay", "/headers")],
            "verify_ingress_probes": [probes.STATUS_200, probes.HEADERS_200],
            "verify_egress": False,
        },
        tags=("traffic", "verify"),
    )
    assert rc == 0, recap(output)
    assert recap(output)["changed"] >= 1
    rc, result = cluster.probe([probes.HEADERS_200], retries=30, delay=1)
    assert rc == 0, result.get("msg")
    # back to the reference routes: /headers is refused again
    rc, output = cluster.site({"verify_egress": False}, tags=("traffic", "verify"))
    assert rc == 0, recap(output)
    rc, result = cluster.probe([probes.HEADERS_404], retries=30, delay=1)
    assert rc == 0, result.get("msg")


def upstreams(cluster, count):
    """Send `count` requests through the gateway; return a Counter of the pod addresses that answered.

    The ingress gateway's access log names the upstream host of every request (%UPSTREAM_HOST%).
    """
    marker = f"meshops-spread-{time.time_ns()}"
    host, port = INGRESS.split(":")
    for _attempt in range(count):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/status/200", headers={"Host": probes.HOST, "User-Agent": marker})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        finally:
            conn.close()
    pattern = re.compile(r'"' + re.escape(marker) + r'" "[^"]*" "' + re.escape(probes.HOST) + r'" "([0-9.]+):[0-9]+"')
    seen = collections.Counter()
    deadline = time.monotonic() + 30
    while sum(seen.values()) < count and time.monotonic() < deadline:
        log = cluster.kubectl("-n", "istio-system", "logs", "-l", "istio=ingressgateway", "-c", "istio-proxy", "--tail=2000")
        seen = collections.Counter(pattern.findall(log))
        time.sleep(1)
    return seen


def test_two_replicas_share_the_requests(cluster):
    rc, output = cluster.site({"httpbin_replicas": 2, "verify_ingress_probes": [probes.STATUS_200], "verify_egress": False}, tags=("httpbin", "verify"))
    assert rc == 0, recap(output)
    pod_ips = cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=httpbin", "-o", "jsonpath={.items[*].status.podIP}").split()
    assert len(pod_ips) == 2
    seen = upstreams(cluster, 60)
    assert sum(seen.values()) == 60, seen
    assert sorted(seen) == sorted(pod_ips), seen
    assert min(seen.values()) >= 10, seen
    rc, output = cluster.site({"verify_egress": False}, tags=("httpbin",))
    assert rc == 0, recap(output)


def egress_gateway_log_lines(cluster, marker):
    """Access-log lines of the egress gateway that carry `marker` (the client's user agent)."""
    log = cluster.kubectl("-n", "istio-system", "logs", "-l", "istio=egressgateway", "-c", "istio-proxy", "--tail=2000")
    return [line for line in log.splitlines() if marker in line]


@pytest.fixture(name="mesh_client")
def fixture_mesh_client(cluster):
    """The verify role's curl pod (with a sidecar); a full site.yml run starts it when it is missing."""
    if not cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=meshops-curl", "-o", "name").strip():
        rc, output = cluster.site()
        assert rc == 0, recap(output)
    return cluster


def test_mesh_traffic_to_the_external_host_leaves_through_the_egress_gateway(mesh_client):
    cluster = mesh_client
    marker = f"meshops-egress-{time.time_ns()}"
    for _attempt in range(3):
        assert client_curl(cluster, "http://edition.cnn.com/status/200", agent=marker) == "200"
    deadline = time.monotonic() + 30
    lines = egress_gateway_log_lines(cluster, marker)
    while len(lines) < 3 and time.monotonic() < deadline:
        time.sleep(1)
        lines = egress_gateway_log_lines(cluster, marker)
    assert len(lines) == 3, lines
    # each request went out of the egress gateway to the external host's cluster
    assert all("outbound|80||edition.cnn.com" in line and '"edition.cnn.com"' in line for line in lines), lines


def test_registry_only_refuses_hosts_without_a_serviceentry(mesh_client):
    cluster = mesh_client
    # with ALLOW_ANY the unregistered host (a container of ours) answers directly
    assert client_curl(cluster, f"http://{UNREGISTERED}/status/200") == "200"
    extra = {"control_plane_outbound_traffic_policy": "REGISTRY_ONLY", "verify_blocked_hosts": [UNREGISTERED]}
    try:
        rc, output = cluster.site(extra, tags=("control_plane", "verify"))
        assert rc == 0, recap(output)
        assert client_curl(cluster, f"http://{UNREGISTERED}/status/200") != "200"
        assert client_curl(cluster, "http://edition.cnn.com/status/200") == "200"
    finally:
        rc, output = cluster.site({"verify_egress": False}, tags=("control_plane",))
        assert rc == 0, recap(output)


LOOKAHEAD = {
    "name": "lookahead",
    "hosts": ["lookahead.example.com"],
    "gateway": {"name": "lookahead-gateway"},
    "http": [{"match": [{"regex": "^/(?!admin).*"}], "route": [{"host": "httpbin", "port": 8000}]}],
}


def lookahead_objects_exist(cluster):
    return any(
        cluster.kubectl("-n", "httpbin", "get", resource, name, "--ignore-not-found", "-o", "name")
        for resource, name in (("gateways.networking.istio.io", "lookahead-gateway"), ("virtualservices.networking.istio.io", "lookahead"))
    )


def test_a_regex_istiod_would_refuse_stops_site_yml_before_any_change(cluster):
    # RE2 has no lookahead: the data model refuses it before anything reaches the cluster
    rc, output = cluster.site({"traffic_ingress_routes": [probes.SEED_ROUTE, LOOKAHEAD], "verify_egress": False})
    assert rc != 0
    name, result = failed_task(output, "kind-meshops")
    assert name == "Stop when an input is invalid (nothing was changed on any cluster)"
    assert "traffic: traffic_ingress_routes[1] (lookahead): http[0].match[0].regex: '^/(?!admin).*'" in result["msg"], result["msg"]
    assert "RE2 rejects it" in result["msg"]
    assert recap(output)["changed"] == 0
    assert not lookahead_objects_exist(cluster)


def test_an_object_the_webhook_rejects_is_reported_and_nothing_is_applied(cluster):
    """Objects that bypass the data model: istiod's webhook refuses one, none is applied."""
    objects = scenario.objects({"traffic_ingress_routes": [probes.SEED_ROUTE]})
    gateway = dict(scenario.pick(objects, "Gateway", "httpbin-gateway"))
    gateway["metadata"] = dict(gateway["metadata"], name="lookahead-gateway")
    service = copy.deepcopy(scenario.pick(objects, "VirtualService", "httpbin"))
    service["metadata"]["name"] = "lookahead"
    service["spec"]["hosts"] = ["lookahead.example.com"]
    service["spec"]["gateways"] = ["lookahead-gateway"]
    service["spec"]["http"][0]["match"] = [{"uri": {"regex": "^/(?!admin).*"}}]
    rc, result = cluster.object_set([gateway, service])
    assert rc != 0
    assert result["msg"].startswith("the cluster rejected 1 object(s), nothing was applied: VirtualService httpbin/lookahead:"), result["msg"]
    assert "validation.istio.io" in result["msg"], result["msg"]
    # the Gateway of the same set, valid on its own, was not applied either
    assert not lookahead_objects_exist(cluster)


EGRESS_OBJECTS = [
    ("serviceentries.networking.istio.io", "cnn"),
    ("gateways.networking.istio.io", "istio-egressgateway"),
    ("destinationrules.networking.istio.io", "egressgateway-for-cnn"),
    ("virtualservices.networking.istio.io", "direct-cnn-through-egress-gateway"),
]


def exists(cluster, resource, name):
    return cluster.kubectl("-n", "httpbin", "get", resource, name, "--ignore-not-found", "-o", "name").strip() != ""


def test_prune_removes_the_objects_of_a_route_that_left_the_inventory(cluster):
    rc, output = cluster.site({"traffic_egress_routes": []}, tags=("traffic",))
    assert rc == 0, recap(output)
    assert all(exists(cluster, *obj) for obj in EGRESS_OBJECTS), "without prune nothing is deleted"
    rc, output = cluster.site({"traffic_egress_routes": [], "traffic_prune": True}, tags=("traffic",))
    assert rc == 0, recap(output)
    assert not any(exists(cluster, *obj) for obj in EGRESS_OBJECTS)
    assert exists(cluster, "virtualservices.networking.istio.io", "httpbin")
    rc, output = cluster.site(tags=("traffic", "verify"))
    assert rc == 0, recap(output)
    assert all(exists(cluster, *obj) for obj in EGRESS_OBJECTS)
