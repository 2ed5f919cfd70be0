"""The inputs of every role: each class of bad input is refused with the role, the item, the
field and the value named, all problems at once; valid Istio input is never refused."""

import copy

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.models import inputs
from tests.fixtures import scenario

ROLE_VARIABLES = {role: {name: scenario.variable(name) for name in inputs.ROLE_OPTIONS[role] if name in scenario.raw_variables()} for role in inputs.ROLES}


def context(role, overrides=None):
    if role == "traffic":
        return {"traffic_settings": scenario.settings(overrides)}
    if role == "httpbin":
        return {"control_plane_namespace": "istio-system"}
    return {}


def problems(role, **changes):
    values = dict(copy.deepcopy(ROLE_VARIABLES[role]), **changes)
    return inputs.problems(role, values, context(role))


def route(**changes):
    base = copy.deepcopy(scenario.ingress_routes()[0])
    base.update(changes)
    return base


def egress(**changes):
    base = copy.deepcopy(scenario.egress_routes()[0])
    base.update(changes)
    return base


@pytest.mark.parametrize("role", inputs.ROLES)
def test_the_defaults_are_valid(role):
    assert problems(role) == []


CLASSES = [
    # regular expressions are RE2's: a lookahead istiod would refuse is refused here
    (
        "traffic",
        {"traffic_ingress_routes": [route(http=[{"match": [{"regex": "^/(?!admin).*"}], "route": [{"host": "httpbin", "port": 8000}]}])]},
        "traffic: traffic_ingress_routes[0] (httpbin): http[0].match[0].regex: '^/(?!admin).*' is not a valid regular expression for Istio: RE2 rejects it",
    ),
    (
        "traffic",
        {"traffic_ingress_routes": [route(http=[{"match": [{"headers": {"x-a": {"regex": "(a)\\1"}}}], "route": [{"host": "httpbin"}]}])]},
        "http[0].match[0].headers.x-a.regex: '(a)\\1' is not a valid regular expression for Istio",
    ),
    # retry conditions are Envoy's
    (
        "traffic",
        {"traffic_ingress_routes": [route(http=[{"route": [{"host": "httpbin"}], "retries": {"attempts": 2, "retry_on": "5xx,on-failure"}}])]},
        "http[0].retries.retry_on: 'on-failure' is not a retry condition Envoy knows",
    ),
    (
        "traffic",
        {"traffic_ingress_routes": [route(http=[{"route": [{"host": "httpbin"}], "retries": {"attempts": 2, "retry_on": "5xx,599"}}])]},
        "http[0].retries.retry_on: '599' is not an HTTP status code istiod knows",
    ),
    # one port of one gateway workload under two protocols in two Gateway objects
    (
        "traffic",
        {
            "traffic_ingress_routes": [
                route(),
                route(name="other", hosts=["other.example.com"], gateway={"name": "other-gateway", "port": 80, "protocol": "HTTP2"}),
            ]
        },
        "traffic_ingress_routes[1] (other): gateway.protocol: port 80 of the gateway pods {'istio': 'ingressgateway'} is HTTP2 here but HTTP in "
        "Gateway httpbin/httpbin-gateway (route httpbin)",
    ),
    # STATIC resolution without endpoints can never resolve
    ("traffic", {"traffic_egress_routes": [egress(resolution="STATIC")]}, "traffic_egress_routes[0] (cnn): resolution: STATIC needs the endpoints"),
    # the egress gateway Service must be the FQDN of a Kubernetes Service
    (
        "traffic",
        {"traffic_egress_routes": [egress(egress_gateway={"service": "istio-egressgateway"})]},
        "egress_gateway.service: 'istio-egressgateway' is not the FQDN of a Kubernetes Service (<name>.<namespace>.svc.cluster.local",
    ),
    # control plane: a URL as registry, negative replicas, a bad namespace, values as a string
    ("control_plane", {"control_plane_registry": "https://docker.io/istio"}, "control_plane: control_plane_registry: 'https://docker.io/istio' is a URL"),
    ("control_plane", {"control_plane_istiod_replicas": -1}, "control_plane: control_plane_istiod_replicas: -1 must be at least 1"),
    ("control_plane", {"control_plane_namespace": "Istio_System"}, "control_plane: control_plane_namespace: 'Istio_System' is not a valid Kubernetes name"),
    (
        "control_plane",
        {"control_plane_istiod_values": "pilot.replicaCount=2"},
        "control_plane: control_plane_istiod_values: must be a mapping, got a string 'pilot.replicaCount=2'",
    ),
    # revisions and versions that would reach the cluster and inject nothing
    ("gateways", {"gateways_revision": "Canary"}, "gateways: gateways_revision: 'Canary' is not a revision name"),
    ("gateways", {"gateways_version": "latest"}, "gateways: gateways_version: 'latest' is not a release version such as 1.31.0"),
    ("httpbin", {"httpbin_revision": "1.31.0"}, "httpbin: httpbin_revision: '1.31.0' is not a revision name"),
    ("control_plane", {"control_plane_version": "latest"}, "control_plane: control_plane_version: 'latest' is not a release version"),
    # messages that misled
    (
        "traffic",
        {"traffic_ingress_routes": [route(hosts="httpbin.example.com")]},
        "traffic_ingress_routes[0] (httpbin): hosts: must be a list, got a string 'httpbin.example.com' (write it as a list: [httpbin.example.com])",
    ),
    (
        "traffic",
        {"traffic_ingress_routes": [route(hosts=["https://httpbin.example.com"])]},
        "hosts[0]: 'https://httpbin.example.com' is a URL; give the host name only (httpbin.example.com)",
    ),
    (
        "traffic",
        {"traffic_egress_routes": [egress(host="*.cnn.com")]},
        "host: '*.cnn.com': wildcards are not allowed here with resolution DNS (a wildcard host needs resolution: NONE)",
    ),
    (
        "traffic",
        {"traffic_ingress_routes": [route(gateway={"name": "httpbin-gateway", "port": "80"})]},
        "gateway.port: must be an integer, got a string '80' (write the number without quotes)",
    ),
    (
        "control_plane",
        {"control_plane_verison": "1.31.0"},
        "control_plane: control_plane_verison: unknown variable of the control_plane role (did you mean control_plane_version?)",
    ),
]


@pytest.mark.parametrize(("role", "changes", "message"), CLASSES, ids=[c[2][:90] for c in CLASSES])
def test_each_class_of_bad_input_is_named(role, changes, message):
    found = problems(role, **changes)
    assert any(message in p for p in found), found
    assert not any("Ansible" in p or "class '" in p or "Tagged" in p for p in found), found


def test_an_unknown_key_names_the_route_and_the_rule_and_hides_nothing():
    bad = route(http=[{"mtach": [{"prefix": "/status"}], "route": [{"host": "httpbin", "port": 0}]}])
    found = problems("traffic", traffic_ingress_routes=[bad], traffic_egress_routes=[egress(resolution="STATIC")])
    assert "traffic: traffic_ingress_routes[0] (httpbin): http[0].mtach: unknown option (allowed: match, name, retries, rewrite, route, timeout)" in found
    assert "traffic: traffic_ingress_routes[0] (httpbin): http[0].route[0].port: 0 is not a port number (1-65535)" in found
    assert any(p.startswith("traffic: traffic_egress_routes[0] (cnn): resolution: STATIC") for p in found)


def test_a_probe_url_without_scheme_is_one_problem():
    found = problems("verify", verify_ingress_probes=[{"name": "p", "url": "httpbin.example.com/status/200"}])
    assert len(found) == 1, found
    assert "probe 'p'" in found[0]


def test_valid_istio_input_is_not_refused():
    """Wildcards, regex, 50/50 weights, FQDN destinations, HTTPS with a credential, NONE resolution."""
    routes = [
        route(
            name="wild",
            hosts=["*.example.com", "api.example.org"],
            gateway={"name": "edge", "protocol": "HTTPS", "tls": {"mode": "MUTUAL", "credential_name": "edge-cert"}},
            http=[
                {
                    "match": [{"regex": "/v[0-9]+/.*"}, {"prefix": "/", "headers": {"x-canary": {"regex": "^(yes|true)$"}}}],
                    "route": [
                        {"host": "web.shop.svc.cluster.local", "port": 80, "weight": 50},
                        {"host": "web-next.shop.svc.cluster.local", "port": 80, "weight": 50},
                    ],
                    "retries": {"attempts": 3, "retry_on": "gateway-error,connect-failure,refused-stream,503,unavailable"},
                    "timeout": "1.5s",
                }
            ],
        )
    ]
    egress_routes = [egress(name="any-api", host="*.googleapis.com", resolution="NONE", egress_gateway=False)]
    assert problems("traffic", traffic_ingress_routes=routes, traffic_egress_routes=egress_routes) == []


@pytest.mark.parametrize(
    ("duration", "problem"),
    [("1500us", "is not a whole number of milliseconds"), ("0.5ms", "is shorter than 1ms"), ("5 seconds", "is not a duration")],
)
def test_durations_are_those_istiod_accepts(duration, problem):
    found = problems("traffic", traffic_ingress_routes=[route(http=[{"route": [{"host": "httpbin"}], "timeout": duration}])])
    assert any(f"http[0].timeout: '{duration}' {problem}" in p for p in found), found
    assert problems("traffic", traffic_ingress_routes=[route(http=[{"route": [{"host": "httpbin"}], "timeout": "1h2m3.5s"}])]) == []
