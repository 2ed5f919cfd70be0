"""Lint findings on Istio routing objects (the check the traffic role runs before applying)."""

import copy
import pathlib

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio.lint import has_errors, lint
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario

REPO = pathlib.Path(__file__).resolve().parents[4]
SEED = scenario.mesh_objects("default")


def seed():
    return copy.deepcopy(SEED)


def find(objects, name):
    return next(o for o in objects if o["metadata"]["name"] == name and o["kind"] in ("VirtualService", "Gateway"))


def codes(findings):
    return sorted((f["severity"], f["code"], f["object"]) for f in findings)


def test_seed_objects_are_clean():
    assert lint(SEED) == []


def test_findings_have_exactly_the_documented_keys():
    objects = seed()
    find(objects, "httpbin")["spec"]["gateways"] = ["nope"]
    findings = lint(objects)
    assert findings
    assert all(set(f) == {"severity", "code", "object", "message"} for f in findings)


def test_gateway_host_no_virtual_service_serves():
    objects = seed()
    find(objects, "httpbin-gateway")["spec"]["servers"][0]["hosts"].append("extra.example.com")
    findings = lint(objects)
    assert codes(findings) == [("warning", "gateway-host-unserved", "Gateway default/httpbin-gateway")]
    assert findings[0]["message"] == (
        "Gateway default/httpbin-gateway: server 0 (port 80) host extra.example.com is served by no VirtualService bound to this Gateway; "
        "requests for it get 404"
    )
    assert not has_errors(findings)


def test_virtual_service_bound_to_a_missing_gateway():
    objects = seed()
    find(objects, "httpbin")["spec"]["gateways"] = ["httpbin-gatewy"]
    findings = lint(objects)
    assert ("error", "virtualservice-gateway-missing", "VirtualService default/httpbin") in codes(findings)
    message = next(f["message"] for f in findings if f["code"] == "virtualservice-gateway-missing")
    assert "gateway default/httpbin-gatewy does not exist" in message
    # and the Gateway's host is left unserved
    assert ("warning", "gateway-host-unserved", "Gateway default/httpbin-gateway") in codes(findings)
    assert has_errors(findings)


def test_short_gateway_name_resolves_in_the_virtual_service_namespace():
    objects = seed()
    vs = find(objects, "httpbin")
    vs["metadata"]["namespace"] = "apps"
    findings = lint(objects)
    assert "gateway apps/httpbin-gateway does not exist" in next(f["message"] for f in findings if f["code"] == "virtualservice-gateway-missing")
    vs["spec"]["gateways"] = ["default/httpbin-gateway"]
    vs["spec"]["http"][0]["route"][0]["destination"]["host"] = "httpbin.default.svc.cluster.local"
    assert lint(objects) == []


def test_virtual_service_bound_to_a_gateway_that_does_not_serve_its_hosts():
    objects = seed()
    find(objects, "httpbin")["spec"]["hosts"] = ["api.example.com"]
    findings = lint(objects)
    assert ("error", "virtualservice-gateway-host-mismatch", "VirtualService default/httpbin") in codes(findings)
    message = next(f["message"] for f in findings if f["code"] == "virtualservice-gateway-host-mismatch")
    assert message == (
        "VirtualService default/httpbin: bound to Gateway default/httpbin-gateway, which serves none of its hosts api.example.com "
        "(Gateway hosts: httpbin.example.com); Istio ignores this binding"
    )


def test_wildcards_count_as_serving():
    objects = seed()
    find(objects, "httpbin-gateway")["spec"]["servers"][0]["hosts"] = ["*.example.com"]
    assert lint(objects) == []
    find(objects, "httpbin-gateway")["spec"]["servers"][0]["hosts"] = ["prod/*.example.com"]
    assert "virtualservice-gateway-host-mismatch" in [f["code"] for f in lint(objects)]


def test_mesh_virtual_service_for_an_unregistered_host():
    objects = [o for o in seed() if o["kind"] != "ServiceEntry"]
    findings = lint(objects)
    assert codes(findings) == [
        ("error", "destination-service-missing", "VirtualService default/direct-cnn-through-egress-gateway"),
        ("warning", "virtualservice-host-unregistered", "VirtualService default/direct-cnn-through-egress-gateway"),
    ]


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"host": "httpbinn"}, "destination-service-missing", "no Service or ServiceEntry for host httpbinn.default.svc.cluster.local"),
        ({"port": {"number": 8080}}, "destination-port-missing", "port 8080 is not exposed by Service default/httpbin (ports: 8000)"),
        ({"subset": "v1"}, "destination-subset-missing", "subset v1 is defined by no DestinationRule for httpbin.default.svc.cluster.local"),
    ],
)
def test_broken_destinations(change, code, message):
    objects = seed()
    find(objects, "httpbin")["spec"]["http"][0]["route"][0]["destination"].update(change)
    findings = lint(objects)
    assert codes(findings) == [("error", code, "VirtualService default/httpbin")]
    assert findings[0]["message"] == "VirtualService default/httpbin: http rule 0 route 0: " + message


def test_missing_subset_lists_the_defined_ones():
    objects = seed()
    find(objects, "direct-cnn-through-egress-gateway")["spec"]["http"][0]["route"][0]["destination"]["subset"] = "cnn2"
    (finding,) = lint(objects)
    assert finding["code"] == "destination-subset-missing"
    assert finding["message"].endswith("(subsets: cnn)")


def test_destination_in_a_namespace_without_services_is_a_warning():
    objects = seed()
    find(objects, "httpbin")["spec"]["http"][0]["route"][0]["destination"]["host"] = "httpbin.apps.svc.cluster.local"
    assert codes(lint(objects)) == [("warning", "destination-service-missing", "VirtualService default/httpbin")]


def test_port_is_required_for_a_multi_port_service():
    objects = seed()
    find(objects, "httpbin")["spec"]["http"][0]["route"][0]["destination"] = {"host": "istio-egressgateway.istio-system.svc.cluster.local"}
    (finding,) = lint(objects)
    assert finding["code"] == "destination-port-missing"
    assert "exposes 2 ports (80, 443)" in finding["message"]


def test_weights_must_add_up_to_100():
    objects = seed()
    route = find(objects, "httpbin")["spec"]["http"][0]["route"]
    route[0]["weight"] = 90
    route.append({"destination": {"host": "httpbin", "port": {"number": 8000}}, "weight": 20})
    assert codes(lint(objects)) == [("error", "route-weights", "VirtualService default/httpbin")]
    route[1]["weight"] = 10
    assert lint(objects) == []


def shadow_case(first, second):
    objects = seed()
    find(objects, "httpbin")["spec"]["http"] = [
        {"match": first, "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]},
        {"match": second, "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]},
    ]
    return [f for f in lint(objects) if f["code"] == "rule-shadowed"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (None, [{"uri": {"prefix": "/status"}}]),
        ([{"uri": {"prefix": "/"}}], [{"uri": {"prefix": "/api"}}]),
        ([{"uri": {"prefix": "/status"}}], [{"uri": {"exact": "/status/200"}}, {"uri": {"prefix": "/status/4"}}]),
        ([{"uri": {"exact": "/a"}}], [{"uri": {"exact": "/a"}, "headers": {"x": {"exact": "1"}}}]),
        ([{"uri": {"regex": "/v[0-9]+"}}], [{"uri": {"exact": "/v2"}}]),
        ([{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}], [{"uri": {"prefix": "/b/c"}}, {"uri": {"prefix": "/a/x"}}]),
        ([{"headers": {"x": {}}}], [{"headers": {"x": {"exact": "1"}}}]),
        ([{"method": {"exact": "GET"}}], [{"method": {"exact": "GET"}, "uri": {"prefix": "/x"}}]),
        ([{"gateways": ["httpbin-gateway", "mesh"]}], [{"gateways": ["default/httpbin-gateway"]}]),
        ([{"uri": {"prefix": "/a"}, "ignoreUriCase": True}], [{"uri": {"prefix": "/A/b"}}]),
        ([{"port": 80}], [{"port": 80, "uri": {"prefix": "/a"}}]),
    ],
)
def test_shadowed_rules(first, second):
    (finding,) = shadow_case(first, second)
    assert finding["severity"] == "warning"
    assert finding["message"].startswith("VirtualService default/httpbin: http rule 1 (")
    assert "can never match: rule 0" in finding["message"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([{"uri": {"prefix": "/api"}}], [{"uri": {"prefix": "/"}}]),
        ([{"uri": {"prefix": "/status"}}], [{"uri": {"prefix": "/status"}}, {"uri": {"prefix": "/delay"}}]),
        ([{"uri": {"prefix": "/a"}, "headers": {"x": {"exact": "1"}}}], [{"uri": {"prefix": "/a"}}]),
        ([{"uri": {"prefix": "/a"}, "method": {"exact": "GET"}}], [{"uri": {"prefix": "/a/x"}}]),
        ([{"gateways": ["mesh"]}], [{"gateways": ["httpbin-gateway"]}]),
        ([{"port": 80}], [{"port": 8080}]),
        ([{"uri": {"regex": "/v[0-9]+"}}], [{"uri": {"prefix": "/v2"}}]),
        ([{"uri": {"exact": "/a"}}], [{"uri": {"exact": "/a"}, "ignoreUriCase": True}]),
        ([{"withoutHeaders": {"x": {}}}], [{"uri": {"prefix": "/"}}]),
        ([{"uri": {"prefix": "/"}}], None),
    ],
)
def test_rules_that_are_not_shadowed(first, second):
    assert shadow_case(first, second) == []


def test_unmodelled_features_are_info_findings():
    objects = seed()
    objects.append({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "s", "namespace": "default"}, "spec": {}})
    objects.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "tcp", "namespace": "default"},
            "spec": {"hosts": ["httpbin"], "tcp": [{"route": [{"destination": {"host": "httpbin"}}]}]},
        }
    )
    findings = lint(objects)
    # a Sidecar is not modelled; tcp rules are (their destination is a Service with one port)
    assert codes(findings) == [("info", "unsupported", "Sidecar default/s")]
    assert not has_errors(findings)


def test_objects_without_names_and_errors_first():
    objects = seed()
    objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {}})
    find(objects, "httpbin-gateway")["spec"]["servers"][0]["hosts"].append("extra.example.com")
    findings = lint(objects)
    assert [f["severity"] for f in findings] == ["error", "warning"]
    assert findings[0]["code"] == "invalid-object"


def test_kind_list_is_flattened_and_other_kinds_ignored():
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
    assert lint([{"apiVersion": "v1", "kind": "List", "items": [*SEED, configmap]}]) == []


# -- tls and tcp rules ------------------------------------------------------------------------------
def egress_with(**changes):
    route = copy.deepcopy(scenario.egress_routes()[0])
    route.update(changes)
    return tm.render([], [route], scenario.settings()) + [o for o in scenario.mesh_objects() if o["kind"] == "Service"]


def test_passthrough_and_tcp_rules_rendered_by_the_model_are_clean():
    ports = [*scenario.egress_routes()[0]["ports"], {"number": 9000, "name": "tcp-a", "protocol": "TCP"}]
    tcp = [{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000}]}]
    findings = lint(egress_with(egress_gateway={"passthrough_port": 443}, ports=ports, tcp=tcp))
    # the gateway's PASSTHROUGH server is reported as not checked, nothing else
    assert codes(findings) == [("info", "unsupported", "Gateway httpbin/istio-egressgateway")], findings


def test_tls_passed_through_to_a_port_where_tls_is_also_originated():
    objects = egress_with(egress_gateway={"passthrough_port": 443})
    objects.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "originate", "namespace": "httpbin"},
            "spec": {"host": "edition.cnn.com", "trafficPolicy": {"portLevelSettings": [{"port": {"number": 443}, "tls": {"mode": "SIMPLE"}}]}},
        }
    )
    findings = [f for f in lint(objects) if f["code"] == "tls-encrypted-twice"]
    assert len(findings) == 1, findings
    assert findings[0]["severity"] == "error"
    assert "tls rule 1 passes TLS on to edition.cnn.com:443, where a DestinationRule also originates TLS" in findings[0]["message"]


def test_l4_rules_on_ports_of_another_protocol_are_dead():
    objects = egress_with(egress_gateway={"passthrough_port": 443})
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    vs["spec"]["tcp"] = [{"match": [{"port": 80}], "route": [{"destination": {"host": "edition.cnn.com", "port": {"number": 80}}}]}]
    vs["spec"]["tls"][0]["match"][0]["port"] = 80
    found = [(f["severity"], f["message"]) for f in lint(objects) if f["code"] == "l4-rule-port-protocol"]
    assert len(found) == 2, found
    assert all(severity == "warning" and "matches port 80, which is HTTP for edition.cnn.com" in message for severity, message in found), found


def test_tcp_rule_destinations_are_checked():
    objects = egress_with(
        egress_gateway=False,
        ports=[{"number": 9000, "name": "tcp-a", "protocol": "TCP"}],
        tcp=[{"port": 9000, "route": [{"host": "db.example.com", "port": 9000, "weight": 100}]}],
    )
    found = [(f["code"], f["message"]) for f in lint(objects)]
    assert ("destination-service-missing", "VirtualService httpbin/cnn: tcp rule 0 route 0: no Service or ServiceEntry for host db.example.com") in found, found
