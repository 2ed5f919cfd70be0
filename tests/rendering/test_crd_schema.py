"""Every object the traffic model renders conforms to the CRD schemas of the pinned Istio release."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario
from tests.rendering.crd_schema import crd_validators, schema_errors

SETTINGS = scenario.settings()

INVENTORIES = {
    "seed": (scenario.ingress_routes(), scenario.egress_routes(), SETTINGS),
    "canary": (
        [
            {
                "name": "reviews",
                "hosts": ["reviews.example.com"],
                "gateway": {"name": "gw", "protocol": "HTTPS", "tls": {"mode": "MUTUAL", "credential_name": "reviews-cert"}},
                "http": [
                    {
                        "name": "canary",
                        "match": [{"prefix": "/api", "method": "GET", "headers": {"x-canary": {"regex": "y.*"}}}],
                        "rewrite": {"uri": "/v2/api", "authority": "reviews.internal"},
                        "route": [
                            {"host": "reviews", "port": 9080, "subset": "v1", "weight": 80},
                            {"host": "reviews", "port": 9080, "subset": "v2", "weight": 20},
                        ],
                        "timeout": "1.5s",
                        "retries": {"attempts": 2, "per_try_timeout": "500ms", "retry_on": "gateway-error"},
                    }
                ],
            }
        ],
        [],
        dict(SETTINGS, namespace="bookinfo"),
    ),
    "egress-tls": (
        [],
        [
            dict(
                scenario.egress_routes()[0],
                ports=[*scenario.egress_routes()[0]["ports"], {"number": 9000, "name": "tcp-a", "protocol": "TCP"}],
                egress_gateway={"passthrough_port": 443},
                tcp=[
                    {"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000, "weight": 90}, {"host": "backup.cnn.com", "port": 9000, "weight": 10}]}
                ],
            ),
            {
                "name": "db",
                "host": "db.partner.example",
                "ports": [{"number": 5432, "name": "tcp-pg", "protocol": "TCP"}],
                "egress_gateway": False,
                "tcp": [{"port": 5432, "route": [{"host": "db.partner.example", "port": 5432}]}],
            },
            {
                "name": "api",
                "host": "api.partner.example",
                "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}, {"number": 8443, "name": "tls", "protocol": "TLS"}],
                "egress_gateway": {"originate_tls": {"port": 8443, "mode": "MUTUAL", "credential_name": "partner-client", "sni": "api.partner.example"}},
            },
        ],
        SETTINGS,
    ),
    "egress-direct-and-redirect": (
        [{"name": "plain", "hosts": ["*.example.com"], "gateway": {"name": "gw", "https_redirect": True}, "http": [{"route": [{"host": "web"}]}]}],
        [
            {
                "name": "tls-api",
                "host": "api.example.com",
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                "egress_gateway": {"enabled": False},
                "location": "MESH_EXTERNAL",
            },
            {"name": "static", "host": "static.example.com", "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}], "resolution": "DNS_ROUND_ROBIN"},
        ],
        dict(SETTINGS, namespace="apps", instance="team-b"),
    ),
    "everyday-features": (
        [
            {
                "name": "features",
                "hosts": ["features.example.com"],
                "gateway": {"name": "gw"},
                "http": [
                    {
                        "name": "moved",
                        "match": [{"prefix": "/old", "ignore_uri_case": True, "query_params": {"v": {"exact": "1"}, "w": {"regex": "[0-9]+"}}}],
                        "redirect": {"uri": "/new", "authority": "new.example.com", "scheme": "https", "port": 8443, "code": 308},
                    },
                    {"match": [{"exact": "/teapot", "authority": {"prefix": "features"}}], "direct_response": {"status": 418, "body": "short"}},
                    {"match": [{"prefix": "/empty"}], "direct_response": {"status": 204}},
                    {
                        "match": [{"prefix": "/api", "without_headers": {"x-debug": {"exact": "1"}}}],
                        "fault": {"delay": {"fixed": "2s", "percentage": 12.5}, "abort": {"status": 503, "percentage": 0.5}},
                        "headers": {
                            "request": {"set": {"x-a": "1"}, "add": {"x-b": "%HOSTNAME%"}, "remove": ["x-c"]},
                            "response": {"set": {"x-d": "100%%"}, "remove": ["x-e"]},
                        },
                        "route": [
                            {"host": "api", "port": 8080, "weight": 90, "headers": {"request": {"set": {"x-v": "1"}}}},
                            {"host": "api-v2", "port": 8080, "weight": 10},
                        ],
                        "mirror": {"host": "api-shadow", "port": 8080, "subset": "v1"},
                        "mirror_percentage": 5,
                        "cors_policy": {
                            "allow_origins": [{"exact": "https://a.example.com"}, {"regex": "https://.*[.]b[.]example[.]com"}],
                            "allow_methods": ["GET", "POST"],
                            "allow_headers": ["content-type"],
                            "expose_headers": ["x-request-id"],
                            "max_age": "24h",
                            "allow_credentials": True,
                        },
                    },
                ],
            }
        ],
        [],
        dict(SETTINGS, namespace="apps"),
    ),
}


# The same data model rendered as Gateway API objects (traffic_api: gateway_api).
GATEWAY_API = dict(SETTINGS, api="gateway_api")
INVENTORIES["seed-gateway-api"] = (scenario.ingress_routes(), scenario.egress_routes(), GATEWAY_API)
INVENTORIES["gateway-api-features"] = (
    [
        {
            "name": "features",
            "hosts": ["features.example.com", "*.features.example.com"],
            "gateway": {"name": "gw"},
            "http": [
                {
                    "name": "moved",
                    "match": [{"prefix": "/old", "query_params": {"v": {"exact": "1"}, "w": {"regex": "[0-9]+"}}}],
                    "redirect": {"uri": "/new", "authority": "new.example.com", "scheme": "https", "port": 8443, "code": 308},
                },
                {
                    "match": [{"prefix": "/api", "method": "POST", "headers": {"x-canary": {"exact": "1"}, "x-user": {"regex": "a.*"}}}],
                    "rewrite": {"uri": "/v2/api", "authority": "api.internal"},
                    "headers": {"request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]}, "response": {"remove": ["x-e"]}},
                    "route": [
                        {"host": "api", "port": 8080, "weight": 90, "headers": {"response": {"set": {"x-v": "1"}}}},
                        {"host": "api-v2.features.svc.cluster.local", "port": 8080, "weight": 10},
                    ],
                    "mirror": {"host": "api-shadow", "port": 8080},
                    "mirror_percentage": 12.5,
                    "cors_policy": {
                        "allow_origins": [{"exact": "https://a.example.com"}],
                        "allow_methods": ["GET", "POST"],
                        "allow_headers": ["content-type"],
                        "expose_headers": ["x-request-id"],
                        "max_age": "24h",
                        "allow_credentials": True,
                    },
                    "timeout": "1.5s",
                },
                {"match": [{"exact": "/exactly"}], "rewrite": {"uri": "/status/200"}, "route": [{"host": "httpbin", "port": 8000}]},
            ],
        },
        {
            "name": "secure",
            "hosts": ["secure.example.com"],
            "gateway": {"name": "gw", "protocol": "HTTPS", "tls": {"credential_name": "secure-cert"}},
            "http": [{"route": [{"host": "web.partner.example", "port": 443}]}],
        },
    ],
    scenario.egress_routes(),
    dict(GATEWAY_API, namespace="features"),
)


def test_the_pinned_release_provides_the_four_kinds():
    kinds = {key[1] for key in crd_validators()}
    assert {"Gateway", "VirtualService", "ServiceEntry", "DestinationRule"} <= kinds
    assert ("networking.istio.io/v1", "VirtualService") in crd_validators()


def test_the_gateway_api_release_is_the_one_istio_is_built_with():
    assert {("gateway.networking.k8s.io/v1", kind) for kind in ("Gateway", "HTTPRoute")} <= set(crd_validators())
    assert ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant") in crd_validators()


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_rendered_objects_conform_to_the_crds(name):
    ingress, egress, settings = INVENTORIES[name]
    objects = tm.render(ingress, egress, settings)
    assert objects
    api_groups = {o["apiVersion"].split("/")[0] for o in objects}
    assert ("gateway.networking.k8s.io" in api_groups) == (settings.get("api") == "gateway_api"), api_groups
    for obj in objects:
        assert schema_errors(obj) == [], vocab.object_id(obj)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o["spec"]["servers"][0]["port"].update(protocl="HTTP"), "Additional properties are not allowed ('protocl' was unexpected)"),
        (lambda o: o["spec"]["servers"][0]["port"].update(number="eighty"), "'eighty' is not of type 'integer'"),
        (lambda o: o["spec"].update(servers="none"), "'none' is not of type 'array'"),
    ],
    ids=["unknown-field", "wrong-type", "not-a-list"],
)
def test_the_schema_check_can_fail(mutate, expected):
    gateway = tm.render(scenario.ingress_routes(), [], SETTINGS)[0]
    mutate(gateway)
    assert any(expected in e for e in schema_errors(gateway)), schema_errors(gateway)


def test_an_unknown_kind_is_reported():
    assert schema_errors({"apiVersion": "networking.istio.io/v9", "kind": "Gateway"}) == [
        "no CRD of the pinned Istio and Gateway API releases serves networking.istio.io/v9 Gateway"
    ]
