"""TCP routes for real (issue 11): the external host gets two more listeners, on ports 9000 and
9001 (go-httpbin with the path prefixes /a and /b, so each answers 404 to the other's paths),
the reference egress route declares them as TCP ports and splits port 9000 50/50 over both with
a tcp rule. The mesh client opens one connection per request: the sidecar, which cannot read
TCP, spreads the connections by weight, and the answers show where each went. The reference
routes are restored at the end."""

import collections
import copy

import pytest

from meshops_dev import apps
from tests.fixtures import scenario
from tests.helpers import failed_task
from tests.support.kind import recap

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

HOST = "edition.cnn.com"
LISTENERS = {"meshops-edition-cnn-tcp-a": (9000, "/a"), "meshops-edition-cnn-tcp-b": (9001, "/b")}
SAMPLES = 60


@pytest.fixture(name="listeners", scope="module")
def fixture_listeners(cluster):
    for name, (port, prefix) in LISTENERS.items():
        apps.external_listener_up(name, port, prefix=prefix)
    yield
    rc, output = cluster.site({"traffic_prune": True}, tags=("traffic", "verify"))
    for name in LISTENERS:
        apps.external_host_down(name)
    assert rc == 0, recap(output)
    assert cluster.kubectl("-n", "httpbin", "get", "virtualservice", "direct-cnn-through-egress-gateway", "-o", "jsonpath={.spec.tcp}") == ""


def split_route(weights):
    route = copy.deepcopy(scenario.egress_routes()[0])
    route["ports"] += [{"number": port, "name": f"tcp-{port}", "protocol": "TCP"} for port, _prefix in LISTENERS.values()]
    ports = [port for port, _prefix in LISTENERS.values()]
    route["tcp"] = [{"port": 9000, "route": [{"host": HOST, "port": port, "weight": w} for port, w in zip(ports, weights, strict=True)]}]
    return route


def statuses(cluster, path, count):
    """The status of ``count`` requests to edition.cnn.com:9000``path`` from the mesh client, one connection each."""
    script = f'for i in $(seq {count}); do curl -s -o /dev/null --max-time 5 -w "%{{http_code}}\\n" http://{HOST}:9000{path}; done'
    out = cluster.kubectl("-n", "httpbin", "exec", "deploy/meshops-curl", "-c", "curl", "--", "sh", "-c", script, timeout=300)
    return collections.Counter(out.split())


def test_tcp_connections_are_split_by_weight(cluster, listeners):
    rc, output = cluster.site({"traffic_egress_routes": [split_route((50, 50))]}, tags=("traffic", "verify"))
    assert rc == 0, (recap(output), failed_task(output, "kind-meshops"))
    spec = cluster.kubectl("-n", "httpbin", "get", "virtualservice", "direct-cnn-through-egress-gateway", "-o", "jsonpath={.spec.tcp[0].route[*].weight}")
    assert spec == "50 50", spec
    # until the sidecar has the rule, port 9000 only ever reaches listener a: wait for b's answer
    for _attempt in range(60):
        if statuses(cluster, "/b/get", 1)["200"]:
            break
    else:
        pytest.fail("no connection to port 9000 reached the listener of port 9001 within 60 attempts: the tcp rule did not apply")
    seen = statuses(cluster, "/a/get", SAMPLES)
    # 200: the connection went to listener a (port 9000), 404: to listener b (port 9001)
    assert seen["200"] + seen["404"] == SAMPLES, seen
    assert seen["200"] >= 10 and seen["404"] >= 10, seen


def test_a_tcp_rule_with_all_weight_on_one_port(cluster, listeners):
    rc, output = cluster.site({"traffic_egress_routes": [split_route((0, 100))]}, tags=("traffic", "verify"))
    assert rc == 0, (recap(output), failed_task(output, "kind-meshops"))
    for _attempt in range(60):
        if statuses(cluster, "/b/get", 1)["200"] and not statuses(cluster, "/a/get", 3)["200"]:
            break
    else:
        pytest.fail("port 9000 still reached listener a after the weights moved to port 9001")
    seen = statuses(cluster, "/a/get", 20)
    assert seen == collections.Counter({"404": 20}), seen
