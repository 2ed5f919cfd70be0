"""The traffic data model: SEED.md rendering, variations, validation messages, prune helpers."""

import copy

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario

# The reference scenario as the roles define it (their defaults), and its specification (SEED.md).
SEED_INGRESS = scenario.ingress_routes()
SEED_EGRESS = scenario.egress_routes()
SETTINGS = scenario.settings()
EGRESS_SVC = SETTINGS["egress_gateway"]["service"]


def without_labels(objects):
    out = copy.deepcopy(objects)
    for obj in out:
        obj["metadata"].pop("labels", None)
    return out


def spec_of(objects, kind, name):
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(name="seed")
def fixture_seed():
    return tm.render(SEED_INGRESS, SEED_EGRESS, SETTINGS)


def test_seed_renders_exactly_six_objects(seed):
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in seed] == [
        ("Gateway", "httpbin", "httpbin-gateway"),
        ("Gateway", "httpbin", "istio-egressgateway"),
        ("ServiceEntry", "httpbin", "cnn"),
        ("DestinationRule", "httpbin", "egressgateway-for-cnn"),
        ("VirtualService", "httpbin", "httpbin"),
        ("VirtualService", "httpbin", "direct-cnn-through-egress-gateway"),
    ]
    assert {o["apiVersion"] for o in seed} == {vocab.API_VERSION}


@pytest.mark.parametrize("index", range(6), ids=[f"{o['kind']} {o['metadata']['name']}" for o in scenario.seed_objects()])
def test_seed_objects_are_the_specification_field_by_field(seed, index):
    """Each rendered object is the SEED.md object (tests/fixtures/seed_objects.yml), field by field."""
    expected = scenario.seed_objects()[index]
    rendered = spec_of(without_labels(seed), expected["kind"], expected["metadata"]["name"])
    assert rendered == expected


def test_every_object_carries_the_owner_labels(seed):
    for obj in seed:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "meshops.istio"
        assert labels["meshops.istio/instance"] == "default"
    assert spec_of(seed, "VirtualService", "httpbin")["metadata"]["labels"]["meshops.istio/route"] == "httpbin"
    assert spec_of(seed, "ServiceEntry", "cnn")["metadata"]["labels"]["meshops.istio/route"] == "cnn"


def test_render_does_not_modify_its_input():
    ingress, egress = copy.deepcopy(SEED_INGRESS), copy.deepcopy(SEED_EGRESS)
    tm.render(ingress, egress, SETTINGS)
    assert ingress == SEED_INGRESS
    assert egress == SEED_EGRESS


def test_external_host_is_a_variable():
    egress = copy.deepcopy(SEED_EGRESS)
    egress[0]["host"] = "external.meshops.test"
    objects = tm.render([], egress, SETTINGS)
    assert spec_of(objects, "ServiceEntry", "cnn")["spec"]["hosts"] == ["external.meshops.test"]
    vs = spec_of(objects, "VirtualService", "direct-cnn-through-egress-gateway")["spec"]
    assert vs["hosts"] == ["external.meshops.test"]
    assert vs["http"][1]["route"][0]["destination"]["host"] == "external.meshops.test"


# --- non-default inventories -------------------------------------------------------------


def test_https_route_with_tls_and_redirect_route_share_one_gateway():
    ingress = [
        {
            "name": "secure",
            "hosts": ["shop.example.com"],
            "gateway": {"name": "shop", "protocol": "HTTPS", "tls": {"credential_name": "shop-cert"}},
            "http": [{"route": [{"host": "shop", "port": 443}]}],
        },
        {
            "name": "plain",
            "hosts": ["shop.example.com"],
            "gateway": {"name": "shop", "protocol": "HTTP", "https_redirect": True},
            "http": [{"route": [{"host": "shop", "port": 80}]}],
        },
    ]
    objects = tm.render(ingress, [], dict(SETTINGS, namespace="shop"))
    gateway = spec_of(objects, "Gateway", "shop")
    assert gateway["spec"]["servers"] == [
        {
            "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
            "hosts": ["shop.example.com"],
            "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"},
        },
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["shop.example.com"], "tls": {"httpsRedirect": True}},
    ]
    # shared by two routes: no single-route label
    assert "meshops.istio/route" not in gateway["metadata"]["labels"]


def test_hosts_of_routes_on_the_same_gateway_port_are_merged():
    ingress = [
        {"name": "a", "hosts": ["a.example.com"], "gateway": {"name": "shared"}, "http": [{"route": [{"host": "a", "port": 80}]}]},
        {"name": "b", "hosts": ["b.example.com", "a.example.com"], "gateway": {"name": "shared"}, "http": [{"route": [{"host": "b", "port": 80}]}]},
    ]
    objects = tm.render(ingress, [], SETTINGS)
    assert spec_of(objects, "Gateway", "shared")["spec"]["servers"][0]["hosts"] == ["a.example.com", "b.example.com"]
    assert [o["kind"] for o in objects] == ["Gateway", "VirtualService", "VirtualService"]


def test_canary_weights_timeouts_retries_headers_and_rewrite():
    ingress = [
        {
            "name": "reviews",
            "namespace": "bookinfo",
            "hosts": ["reviews.example.com"],
            "gateway": {"name": "gw", "namespace": "istio-system", "selector": {"app": "edge"}, "port": 8080, "port_name": "http-alt"},
            "http": [
                {
                    "name": "canary",
                    "match": [{"prefix": "/api", "method": "GET", "headers": {"x-canary": {"exact": "yes"}}, "port": 8080}],
                    "rewrite": {"uri": "/v2/api"},
                    "route": [
                        {"host": "reviews", "port": 9080, "subset": "v1", "weight": 90},
                        {"host": "reviews", "port": 9080, "subset": "v2", "weight": 10},
                    ],
                    "timeout": "5s",
                    "retries": {"attempts": 3, "per_try_timeout": "2s", "retry_on": "5xx,connect-failure"},
                },
                {"match": [{"exact": "/health"}, {"regex": "^/v[0-9]+/.*$"}], "route": [{"host": "reviews.bookinfo.svc.cluster.local"}]},
            ],
        }
    ]
    objects = tm.render(ingress, [], dict(SETTINGS, namespace="default"))
    gateway = spec_of(objects, "Gateway", "gw")
    assert gateway["metadata"]["namespace"] == "istio-system"
    assert gateway["spec"] == {
        "selector": {"app": "edge"},
        "servers": [{"port": {"number": 8080, "name": "http-alt", "protocol": "HTTP"}, "hosts": ["reviews.example.com"]}],
    }
    vs = spec_of(objects, "VirtualService", "reviews")
    assert vs["metadata"]["namespace"] == "bookinfo"
    assert vs["spec"]["gateways"] == ["istio-system/gw"]
    assert vs["spec"]["http"] == [
        {
            "name": "canary",
            "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}, "headers": {"x-canary": {"exact": "yes"}}, "port": 8080}],
            "rewrite": {"uri": "/v2/api"},
            "route": [
                {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 90},
                {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 10},
            ],
            "timeout": "5s",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"},
        },
        {
            "match": [{"uri": {"exact": "/health"}}, {"uri": {"regex": "^/v[0-9]+/.*$"}}],
            "route": [{"destination": {"host": "reviews.bookinfo.svc.cluster.local"}}],
        },
    ]


def test_egress_without_gateway_renders_only_the_serviceentry():
    egress = [{"name": "api", "host": "api.example.com", "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}], "egress_gateway": {"enabled": False}}]
    objects = tm.render([], egress, {})
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("ServiceEntry", "api")]


def test_egress_routes_share_the_egress_gateway_and_custom_gateway_settings():
    egress = [
        {"name": "one", "host": "one.example.com", "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]},
        {"name": "two", "host": "two.example.com", "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}], "location": "MESH_EXTERNAL"},
    ]
    settings = dict(
        SETTINGS,
        namespace="egress",
        instance="team-a",
        egress_gateway=dict(SETTINGS["egress_gateway"], service="egw.mesh.svc.cluster.local", port=8080, name="egw"),
    )
    objects = tm.render([], egress, settings)
    gateway = spec_of(objects, "Gateway", "egw")
    assert gateway["spec"]["servers"] == [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["one.example.com", "two.example.com"]}]
    assert spec_of(objects, "ServiceEntry", "two")["spec"]["location"] == "MESH_EXTERNAL"
    vs = spec_of(objects, "VirtualService", "direct-two-through-egress-gateway")["spec"]
    assert vs["http"][0] == {
        "match": [{"gateways": ["mesh"], "port": 8080}],
        "route": [{"destination": {"host": "egw.mesh.svc.cluster.local", "subset": "two", "port": {"number": 8080}}, "weight": 100}],
    }
    assert vs["http"][1]["match"] == [{"gateways": ["egw"], "port": 8080}]
    assert all(o["metadata"]["labels"]["meshops.istio/instance"] == "team-a" for o in objects)
    assert tm.owned_selector(settings) == "app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=team-a"


def test_stale_objects_are_those_the_rendering_no_longer_contains(seed):
    without_egress = tm.render(SEED_INGRESS, [], SETTINGS)
    stale = tm.stale_objects(seed, without_egress)
    assert sorted(vocab.object_id(o) for o in stale) == [
        "DestinationRule httpbin/egressgateway-for-cnn",
        "Gateway httpbin/istio-egressgateway",
        "ServiceEntry httpbin/cnn",
        "VirtualService httpbin/direct-cnn-through-egress-gateway",
    ]
    assert tm.stale_objects(seed, seed) == []


# --- validation --------------------------------------------------------------------------


def ingress_with(**changes):
    route = copy.deepcopy(SEED_INGRESS[0])
    route.update(changes)
    return [route]


def egress_with(**changes):
    route = copy.deepcopy(SEED_EGRESS[0])
    route.update(changes)
    return [route]


BAD_INPUTS = [
    (ingress_with(name="Bad_Name"), [], "traffic_ingress_routes[0] (Bad_Name): name: 'Bad_Name' is not a valid Kubernetes name"),
    (ingress_with(hosts=[]), [], "traffic_ingress_routes[0] (httpbin): hosts: needs at least one host"),
    (ingress_with(hosts=["Not A Host"]), [], "traffic_ingress_routes[0] (httpbin): hosts[0]: 'Not A Host' is not a valid host name"),
    (ingress_with(hosts=["a.example.com", "a.example.com"]), [], "hosts: lists a host twice"),
    (ingress_with(gateway=None), [], "traffic_ingress_routes[0] (httpbin): gateway: is required"),
    (ingress_with(gateway={"name": "gw", "port": 70000}), [], "gateway.port: 70000 is not a port number (1-65535)"),
    (ingress_with(gateway={"name": "gw", "protocol": "TCP"}), [], "gateway.protocol: 'TCP' is not one of HTTP, HTTPS, HTTP2"),
    (ingress_with(gateway={"name": "gw", "protocol": "HTTPS"}), [], "gateway.tls: is required with protocol HTTPS"),
    (ingress_with(gateway={"name": "gw", "tls": {"credential_name": "c"}}), [], "gateway.tls: is only valid with protocol HTTPS (protocol is HTTP)"),
    (ingress_with(gateway={"name": "gw", "selector": {}}), [], "gateway.selector: must be a non-empty mapping"),
    (ingress_with(gateway={"name": "gw", "selector": {"istio": 1}}), [], "gateway.selector.istio: 1 is not a valid label value"),
    (ingress_with(gateway={"name": "gw", "prot": "HTTP"}), [], "gateway.prot: unknown option"),
    (ingress_with(http=[]), [], "http: needs at least one rule with a route"),
    (ingress_with(http=[{"match": [{"prefix": "/a"}]}]), [], "http[0].route: needs at least one destination"),
    (ingress_with(http=[{"match": [{"prefix": "status"}], "route": [{"host": "h", "port": 1}]}]), [], "http[0].match[0].prefix: 'status' must start with '/'"),
    (
        ingress_with(http=[{"match": [{"prefix": "/a", "exact": "/a"}], "route": [{"host": "h"}]}]),
        [],
        "http[0].match[0]: use only one of prefix, exact or regex",
    ),
    (ingress_with(http=[{"match": [{"regex": "(["}], "route": [{"host": "h"}]}]), [], "http[0].match[0].regex: '([' is not a valid regular expression"),
    (ingress_with(http=[{"match": [{"method": "FETCH"}], "route": [{"host": "h"}]}]), [], "http[0].match[0].method: 'FETCH' is not one of GET, HEAD"),
    (
        ingress_with(http=[{"match": [{"headers": {"X-Up": {"exact": "a"}}}], "route": [{"host": "h"}]}]),
        [],
        "http[0].match[0].headers.X-Up: header names must be lower case",
    ),
    (ingress_with(http=[{"match": [{"headers": {"x": {"equals": "a"}}}], "route": [{"host": "h"}]}]), [], "headers.x: must be exactly one of {exact: v}"),
    (ingress_with(http=[{"match": [{"uri": "/a"}], "route": [{"host": "h"}]}]), [], "http[0].match[0].uri: unknown option"),
    (ingress_with(http=[{"route": [{"host": "h", "port": 0}]}]), [], "http[0].route[0].port: 0 is not a port number (1-65535)"),
    (ingress_with(http=[{"route": [{"host": "h", "weight": 50}, {"host": "h"}]}]), [], "http[0].route: give a weight to every destination or to none"),
    (
        ingress_with(http=[{"route": [{"host": "h", "weight": 50}, {"host": "i", "weight": 40}]}]),
        [],
        "http[0].route: weights add up to 90, they must add up to 100",
    ),
    (ingress_with(http=[{"route": [{"host": "h", "weight": 101}]}]), [], "http[0].route[0].weight: 101 must be an integer from 0 to 100"),
    (ingress_with(http=[{"route": [{"host": "h"}], "timeout": "5 seconds"}]), [], "http[0].timeout: '5 seconds' is not a duration"),
    (ingress_with(http=[{"route": [{"host": "h"}], "retries": {"attempts": -1}}]), [], "http[0].retries.attempts: -1 must be a non-negative integer"),
    (ingress_with(http=[{"route": [{"host": "h"}], "rewrite": {"uri": "x"}}]), [], "http[0].rewrite.uri: 'x' must start with '/'"),
    (ingress_with(extra=True), [], "traffic_ingress_routes[0] (httpbin): extra: unknown option"),
    ("not a list", [], "traffic_ingress_routes: must be a list of routes"),
    ([], egress_with(host="*.cnn.com"), "traffic_egress_routes[0] (cnn): host: '*.cnn.com': wildcards are not allowed here"),
    ([], egress_with(ports=[]), "traffic_egress_routes[0] (cnn): ports: needs at least one port"),
    (
        [],
        egress_with(ports=[{"number": 80, "name": "a", "protocol": "HTTP"}, {"number": 80, "name": "b", "protocol": "HTTP"}]),
        "ports[1].number: port 80 is listed twice",
    ),
    (
        [],
        egress_with(ports=[{"number": 80, "name": "a", "protocol": "HTTP"}, {"number": 81, "name": "a", "protocol": "HTTP"}]),
        "ports[1].name: port name 'a' is used twice",
    ),
    ([], egress_with(ports=[{"number": 80, "name": "a", "protocol": "QUIC"}]), "ports[0].protocol: 'QUIC' is not one of"),
    ([], egress_with(resolution="MAGIC"), "resolution: 'MAGIC' is not one of NONE, STATIC, DNS, DNS_ROUND_ROBIN"),
    ([], egress_with(ports=[{"number": 443, "name": "tls", "protocol": "TLS"}]), "ports: routing through the egress gateway needs an HTTP port"),
    ([], egress_with(egress_gateway={"route_port": 8080}), "egress_gateway.route_port: 8080 is not one of the route's ports (80, 443)"),
    ([], egress_with(egress_gateway={"service": "Not Valid"}), "egress_gateway.service: 'Not Valid' is not a valid host name"),
    ([], egress_with(egress_gateway="yes"), "egress_gateway: must be a mapping"),
    ([], egress_with(name="cnn.com"), "traffic_egress_routes[0] (cnn.com): name: 'cnn.com' is not a valid Kubernetes name"),
]


@pytest.mark.parametrize(("ingress", "egress", "message"), BAD_INPUTS, ids=[case[2] for case in BAD_INPUTS])
def test_each_documented_error_is_reported_and_rendering_refuses(ingress, egress, message):
    errors = tm.validate(ingress, egress, SETTINGS)
    assert any(message in e for e in errors), errors
    with pytest.raises(tm.TrafficModelError) as raised:
        tm.render(ingress, egress, SETTINGS)
    assert raised.value.errors == errors


def test_conflicts_between_routes_are_reported_on_the_later_route():
    ingress = [
        {"name": "a", "hosts": ["a.example.com"], "gateway": {"name": "gw", "selector": {"istio": "one"}}, "http": [{"route": [{"host": "a"}]}]},
        {"name": "b", "hosts": ["b.example.com"], "gateway": {"name": "gw", "selector": {"istio": "two"}}, "http": [{"route": [{"host": "b"}]}]},
        {
            "name": "a",
            "hosts": ["c.example.com"],
            "gateway": {"name": "gw", "selector": {"istio": "one"}, "protocol": "HTTP2"},
            "http": [{"route": [{"host": "c"}]}],
        },
    ]
    errors = tm.validate(ingress, [], SETTINGS)
    assert "traffic_ingress_routes[1] (b): gateway.selector: Gateway httpbin/gw is also used by route a with selector {'istio': 'one'}" in errors
    assert "traffic_ingress_routes[2] (a): name: VirtualService httpbin/a is already defined by traffic_ingress_routes[0] (a)" in errors
    assert any(e.startswith("traffic_ingress_routes[2] (a): gateway: Gateway httpbin/gw port 80 is also used by route a") for e in errors)


def test_an_egress_gateway_name_that_is_an_ingress_gateway_is_refused():
    egress = egress_with(egress_gateway={"name": "httpbin-gateway"})
    errors = tm.validate(SEED_INGRESS, egress, SETTINGS)
    assert "traffic_egress_routes[0] (cnn): egress_gateway.name: Gateway httpbin/httpbin-gateway is also an ingress route's gateway; use another name" in errors


def test_every_problem_is_reported_at_once():
    ingress = ingress_with(hosts=[], http=[])
    egress = egress_with(ports=[], resolution="X")
    errors = tm.validate(ingress, egress, SETTINGS)
    assert len(errors) >= 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"namespace": "Bad"}, "traffic_namespace: 'Bad' is not a valid namespace name"),
        ({"instance": "a b"}, "traffic_instance: 'a b' must be a valid label value"),
    ],
)
def test_settings_are_validated(settings, message):
    assert any(message in e for e in tm.validate(SEED_INGRESS, SEED_EGRESS, settings))


def test_valid_inputs_have_no_errors():
    assert tm.validate(SEED_INGRESS, SEED_EGRESS, SETTINGS) == []
    assert tm.validate([], [], None) == []
    assert tm.render(None, None) == []
