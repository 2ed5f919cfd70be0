"""The traffic data model rendered as Kubernetes Gateway API objects (traffic_api: gateway_api):
the reference scenario, each routing feature as the Gateway API writes it, and every field the
Gateway API's standard channel cannot express refused with the field named."""

import copy
import pathlib
import re

import pytest
import yaml

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import gateway_api as gw
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario

SETTINGS = dict(scenario.settings(), api="gateway_api")
SEED_ROUTE = scenario.ingress_routes()[0]
HTTPBIN = [{"host": "httpbin", "port": 8000}]
WHERE = "traffic_ingress_routes[0] (httpbin): "
ADMIT_HTTPBIN = {
    "namespaces": {"from": "Selector", "selector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["httpbin"]}]}}
}


def with_rules(*rules, **gateway):
    route = copy.deepcopy(SEED_ROUTE)
    route["http"] = [copy.deepcopy(r) for r in rules]
    route["gateway"].update(gateway)
    return [route]


def by_id(objects):
    return {vocab.object_id(o): o for o in objects}


def rendered_rules(*rules):
    objects = tm.render(with_rules(*rules), [], SETTINGS)
    return next(o for o in objects if o["kind"] == "HTTPRoute")["spec"]["rules"]


def test_the_reference_scenario_as_gateway_api_objects():
    objects = tm.render(scenario.ingress_routes(), scenario.egress_routes(), SETTINGS)
    assert [vocab.object_id(o) for o in objects] == [
        "ReferenceGrant istio-system/meshops-from-httpbin",
        "Gateway.gateway.networking.k8s.io istio-system/httpbin-gateway",
        "Gateway.gateway.networking.k8s.io istio-system/istio-egressgateway",
        "ServiceEntry httpbin/cnn",
        "HTTPRoute httpbin/httpbin",
        "HTTPRoute httpbin/direct-cnn-to-egress-gateway",
        "HTTPRoute httpbin/forward-cnn-from-egress-gateway",
    ]
    found = by_id(objects)
    ingress = found["Gateway.gateway.networking.k8s.io istio-system/httpbin-gateway"]
    # bound to the gateways role's ingress gateway (its pods, its Service, the kind port
    # mapping), beside that Service; the listener admits the route's namespace by name
    assert ingress["spec"] == {
        "gatewayClassName": "istio",
        "addresses": [{"type": "Hostname", "value": "istio-ingressgateway.istio-system.svc.cluster.local"}],
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": ADMIT_HTTPBIN}],
    }
    assert found["HTTPRoute httpbin/httpbin"]["spec"] == {
        "parentRefs": [{"name": "httpbin-gateway", "sectionName": "http", "namespace": "istio-system"}],
        "hostnames": ["httpbin.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/status"}}, {"path": {"type": "PathPrefix", "value": "/delay"}}],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            }
        ],
    }
    # Istio's egress gateway task: mesh -> egress gateway (attached to the ServiceEntry), then
    # egress gateway -> the external host (attached to the Gateway)
    assert found["HTTPRoute httpbin/direct-cnn-to-egress-gateway"]["spec"] == {
        "parentRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": "cnn", "port": 80}],
        "rules": [{"backendRefs": [{"name": "istio-egressgateway", "port": 80, "namespace": "istio-system"}]}],
    }
    assert found["HTTPRoute httpbin/forward-cnn-from-egress-gateway"]["spec"] == {
        "parentRefs": [{"name": "istio-egressgateway", "sectionName": "http", "namespace": "istio-system"}],
        "hostnames": ["edition.cnn.com"],
        "rules": [{"backendRefs": [{"group": "networking.istio.io", "kind": "Hostname", "name": "edition.cnn.com", "port": 80}]}],
    }
    # the egress gateway's Service lives in istio-system: the routes of httpbin may refer to it
    assert found["ReferenceGrant istio-system/meshops-from-httpbin"]["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "httpbin"}],
        "to": [{"group": "", "kind": "Service", "name": "istio-egressgateway"}],
    }
    for obj in objects:
        assert obj["metadata"]["labels"][vocab.LABEL_INSTANCE] == "default"


def test_the_istio_api_stays_the_default():
    kinds = [o["kind"] for o in tm.render(scenario.ingress_routes(), scenario.egress_routes(), scenario.settings())]
    assert kinds == ["Gateway", "Gateway", "ServiceEntry", "DestinationRule", "VirtualService", "VirtualService"]
    assert {o["apiVersion"] for o in tm.render(scenario.ingress_routes(), scenario.egress_routes(), scenario.settings())} == {vocab.API_VERSION}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"match": [{"exact": "/x", "method": "POST", "headers": {"a": {"exact": "1"}, "b": {"regex": "2.*"}}}], "route": HTTPBIN},
            {
                "matches": [
                    {
                        "path": {"type": "Exact", "value": "/x"},
                        "method": "POST",
                        "headers": [{"name": "a", "type": "Exact", "value": "1"}, {"name": "b", "type": "RegularExpression", "value": "2.*"}],
                    }
                ],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
        (
            {"match": [{"regex": "/r[0-9]+", "query_params": {"v": {"exact": "1"}}}], "route": HTTPBIN},
            {
                "matches": [{"path": {"type": "RegularExpression", "value": "/r[0-9]+"}, "queryParams": [{"name": "v", "type": "Exact", "value": "1"}]}],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
        (
            {"match": [{"prefix": "/old"}], "redirect": {"uri": "/new", "authority": "b.example.com", "scheme": "https", "port": 8443, "code": 308}},
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                "filters": [
                    {
                        "type": "RequestRedirect",
                        "requestRedirect": {
                            "statusCode": 308,
                            "scheme": "https",
                            "hostname": "b.example.com",
                            "port": 8443,
                            "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"},
                        },
                    }
                ],
            },
        ),
        (
            # Istio's default redirect code is 301; the Gateway API's is 302: the model's wins
            {"redirect": {"uri": "/new"}},
            {"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301, "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}]},
        ),
        (
            {"match": [{"prefix": "/api"}], "rewrite": {"uri": "/v2", "authority": "api.internal"}, "route": HTTPBIN},
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                "filters": [
                    {"type": "URLRewrite", "urlRewrite": {"hostname": "api.internal", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}
                ],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
        (
            {"match": [{"exact": "/one"}], "rewrite": {"uri": "/status/200"}, "route": HTTPBIN},
            {
                "matches": [{"path": {"type": "Exact", "value": "/one"}}],
                "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/status/200"}}}],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
        (
            {
                "headers": {"request": {"set": {"x-b": "2", "x-a": "1"}, "remove": ["x-c"]}, "response": {"add": {"x-d": "4"}}},
                "route": [
                    {"host": "httpbin", "port": 8000, "weight": 75, "headers": {"request": {"set": {"x-v": "1"}}}},
                    {"host": "httpbin-v2.httpbin.svc.cluster.local", "port": 8000, "weight": 25},
                ],
            },
            {
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}], "remove": ["x-c"]},
                    },
                    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x-d", "value": "4"}]}},
                ],
                "backendRefs": [
                    {
                        "name": "httpbin",
                        "port": 8000,
                        "weight": 75,
                        "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-v", "value": "1"}]}}],
                    },
                    {"name": "httpbin-v2", "port": 8000, "weight": 25},
                ],
            },
        ),
        (
            {"route": HTTPBIN, "mirror": {"host": "shadow", "port": 8000}, "mirror_percentage": 20, "timeout": "1.5s"},
            {
                "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "port": 8000}, "percent": 20}}],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
                "timeouts": {"request": "1500ms"},
            },
        ),
        (
            {"route": HTTPBIN, "mirror": {"host": "shadow", "port": 8000}, "mirror_percentage": 0.5},
            {
                "filters": [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {"backendRef": {"name": "shadow", "port": 8000}, "fraction": {"numerator": 5000, "denominator": 1000000}},
                    }
                ],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
        (
            {
                "name": "cors",
                "route": HTTPBIN,
                "cors_policy": {
                    "allow_origins": [{"exact": "https://app.example.com"}],
                    "allow_methods": ["GET"],
                    "max_age": "1h30m",
                    "allow_credentials": False,
                },
            },
            {
                "name": "cors",
                "filters": [
                    {"type": "CORS", "cors": {"allowOrigins": ["https://app.example.com"], "allowMethods": ["GET"], "maxAge": 5400, "allowCredentials": False}}
                ],
                "backendRefs": [{"name": "httpbin", "port": 8000}],
            },
        ),
    ],
    ids=[
        "exact-method-headers",
        "regex-query",
        "redirect",
        "redirect-default-code",
        "rewrite-prefix",
        "rewrite-exact",
        "headers-weights",
        "mirror-timeout",
        "mirror-fraction",
        "cors",
    ],
)
def test_each_feature_as_the_gateway_api_writes_it(rule, expected):
    assert tm.validate(with_rules(rule), [], SETTINGS) == []
    assert rendered_rules(rule) == [expected]


@pytest.mark.parametrize(
    ("routes", "field"),
    [
        (with_rules({"direct_response": {"status": 418}}), "http[0].direct_response"),
        (with_rules({"fault": {"abort": {"status": 503}}, "route": HTTPBIN}), "http[0].fault"),
        (with_rules({"retries": {"attempts": 2}, "route": HTTPBIN}), "http[0].retries"),
        (with_rules({"route": [{"host": "httpbin", "port": 8000, "subset": "v1"}]}), "http[0].route[0].subset"),
        (with_rules({"match": [{"prefix": "/a", "ignore_uri_case": True}], "route": HTTPBIN}), "http[0].match[0].ignore_uri_case"),
        (with_rules({"match": [{"authority": {"exact": "a.example.com"}}], "route": HTTPBIN}), "http[0].match[0].authority"),
        (with_rules({"match": [{"without_headers": {"x": {"exact": "1"}}}], "route": HTTPBIN}), "http[0].match[0].without_headers"),
        (with_rules({"match": [{"port": 80}], "route": HTTPBIN}), "http[0].match[0].port"),
        (with_rules({"match": [{"headers": {"x": {"prefix": "a"}}}], "route": HTTPBIN}), "http[0].match[0].headers.x.prefix"),
        (with_rules({"match": [{"regex": "/a.*"}], "rewrite": {"uri": "/b"}, "route": HTTPBIN}), "http[0].rewrite.uri"),
        (with_rules({"match": [{"prefix": "/a"}, {"exact": "/b"}], "rewrite": {"uri": "/c"}, "route": HTTPBIN}), "http[0].rewrite.uri"),
        (with_rules({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"prefix": "https://a"}]}}), "http[0].cors_policy.allow_origins[0]"),
        (with_rules({"route": [{"host": "web.other.svc.cluster.local", "port": 80}]}), "http[0].route[0].host"),
        (with_rules({"route": HTTPBIN}, https_redirect=True), "gateway.https_redirect"),
        (with_rules({"route": HTTPBIN}, protocol="HTTP2"), "gateway.protocol"),
        (with_rules({"route": HTTPBIN}, selector={"istio": "other"}), "gateway.selector"),
        (with_rules({"route": HTTPBIN}, protocol="HTTPS", tls={"mode": "MUTUAL", "credential_name": "c"}), "gateway.tls.mode"),
        (with_rules({"route": HTTPBIN}, namespace="httpbin"), "gateway.namespace"),
    ],
)
def test_what_the_gateway_api_cannot_express_is_refused_with_the_field_named(routes, field):
    # valid for Istio's API ...
    assert tm.validate(routes, [], scenario.settings()) == []
    # ... refused for the Gateway API, naming the field and the API that supports it
    problems = tm.validate(routes, [], SETTINGS)
    assert len(problems) == 1, problems
    assert problems[0].startswith(WHERE + field + ": "), problems
    assert "traffic_api: istio" in problems[0]
    with pytest.raises(tm.TrafficModelError):
        tm.render(routes, [], SETTINGS)


@pytest.mark.parametrize(
    ("rule", "field", "says"),
    [
        ({"route": [{"host": "httpbin"}]}, "http[0].route[0].port", "is required with traffic_api: gateway_api"),
        ({"route": HTTPBIN, "timeout": "100000h"}, "http[0].timeout", "has no Gateway API form"),
        ({"route": HTTPBIN, "name": "Not_A_Section"}, "http[0].name", "is not a valid Gateway API rule name"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"exact": "https://a"}], "max_age": "1500ms"}}, "http[0].cors_policy.max_age", "whole seconds"),
        ({"redirect": {"uri": "/x", "code": 305}}, "http[0].redirect.code", "is not a Gateway API redirect code"),
    ],
)
def test_fields_that_need_another_form_are_named(rule, field, says):
    problems = tm.validate(with_rules(rule), [], SETTINGS)
    assert any(p.startswith(WHERE + field + ": ") and says in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tcp": [{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000}]}]}, "tcp"),
        ({"egress_gateway": {"passthrough_port": 443}}, "egress_gateway.passthrough_port"),
    ],
)
def test_egress_features_not_rendered_for_the_gateway_api_are_refused(change, field):
    route = dict(copy.deepcopy(scenario.egress_routes()[0]), **change)
    if field == "tcp":
        route["ports"] = [*route["ports"], {"number": 9000, "name": "tcp-a", "protocol": "TCP"}]
    assert tm.validate([], [route], scenario.settings()) == []
    problems = tm.validate([], [route], SETTINGS)
    assert len(problems) == 1 and problems[0].startswith(f"traffic_egress_routes[0] (cnn): {field}: "), problems


def test_tls_origination_as_in_istios_task_with_the_gateway_api():
    route = dict(copy.deepcopy(scenario.egress_routes()[0]), egress_gateway={"originate_tls": {"port": 443, "credential_name": "cnn-ca"}})
    objects = by_id(tm.render([], [route], SETTINGS))
    # the mesh still speaks HTTP on 80 to the egress gateway, which forwards to the host's TLS port
    forward = objects["HTTPRoute httpbin/forward-cnn-from-egress-gateway"]["spec"]["rules"]
    assert forward == [{"backendRefs": [{"group": "networking.istio.io", "kind": "Hostname", "name": "edition.cnn.com", "port": 443}]}]
    direct = objects["HTTPRoute httpbin/direct-cnn-to-egress-gateway"]["spec"]
    assert direct["parentRefs"][0]["port"] == 80
    # where an Istio DestinationRule originates TLS, checked against the CA of the Secret, as with the Istio API
    rule = objects["DestinationRule httpbin/originate-tls-for-cnn"]
    assert rule == by_id(tm.render([], [route], scenario.settings()))["DestinationRule httpbin/originate-tls-for-cnn"]
    assert rule["spec"]["trafficPolicy"]["portLevelSettings"] == [
        {"port": {"number": 443}, "tls": {"mode": "SIMPLE", "sni": "edition.cnn.com", "credentialName": "cnn-ca"}}
    ]


def test_an_egress_host_reached_directly_is_only_its_serviceentry():
    route = dict(copy.deepcopy(scenario.egress_routes()[0]), egress_gateway={"enabled": False})
    assert [vocab.object_id(o) for o in tm.render([], [route], SETTINGS)] == ["ServiceEntry httpbin/cnn"]


def test_https_terminates_with_the_secret_of_the_gateways_namespace():
    routes = with_rules({"route": HTTPBIN}, protocol="HTTPS", port=443, tls={"credential_name": "httpbin-cert"})
    objects = tm.render(routes, [], SETTINGS)
    listener = by_id(objects)["Gateway.gateway.networking.k8s.io istio-system/httpbin-gateway"]["spec"]["listeners"]
    assert listener == [
        {
            "name": "https",
            "port": 443,
            "protocol": "HTTPS",
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": "httpbin-cert"}]},
            "allowedRoutes": ADMIT_HTTPBIN,
        }
    ]
    # the Gateway and the Secret share the gateways' namespace: nothing to grant
    assert [o["kind"] for o in objects] == ["Gateway", "HTTPRoute"]


def test_routes_sharing_a_gateway_share_its_listener_and_no_route_label():
    second = dict(copy.deepcopy(SEED_ROUTE), name="other", hosts=["other.example.com"])
    objects = tm.render([SEED_ROUTE, second], [], SETTINGS)
    gateways = [o for o in objects if o["kind"] == "Gateway"]
    assert len(gateways) == 1 and len(gateways[0]["spec"]["listeners"]) == 1
    assert vocab.LABEL_ROUTE not in gateways[0]["metadata"]["labels"]
    assert [o["spec"]["parentRefs"] for o in objects if o["kind"] == "HTTPRoute"] == [
        [{"name": "httpbin-gateway", "sectionName": "http", "namespace": "istio-system"}]
    ] * 2


def test_a_listener_admits_every_namespace_of_its_routes_by_name():
    second = dict(copy.deepcopy(SEED_ROUTE), name="other", namespace="shop", hosts=["shop.example.com"])
    gateway = tm.render([SEED_ROUTE, second], [], SETTINGS)[0]
    assert gateway["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"] == ["httpbin", "shop"]


def test_an_unknown_api_is_named():
    assert tm.validate(scenario.ingress_routes(), [], dict(SETTINGS, api="gatewayapi")) == ["traffic_api: 'gatewayapi' is not one of istio, gateway_api"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5s", "5s"),
        ("1.5s", "1500ms"),
        ("250ms", "250ms"),
        ("1h30m", "1h30m"),
        ("90s", "90s"),
        ("0.25s", "250ms"),
        ("200000.5s", "55h33m20s500ms"),
        ("1us", None),
        ("100000h", None),
        ("soon", None),
    ],
)
def test_durations_in_the_gateway_api_form(value, expected):
    assert gw.gateway_duration(value) == expected


def crd(name, bundle, channel="standard", group="gateway.networking.k8s.io"):
    return {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "annotations": {gw.BUNDLE_VERSION: bundle, gw.CHANNEL: channel}},
        "spec": {"group": group},
    }


def test_crds_of_another_release_or_channel_are_named():
    objects = [
        crd("gateways.gateway.networking.k8s.io", "v1.6.0"),
        crd("httproutes.gateway.networking.k8s.io", "v1.5.1"),
        {"kind": "ValidatingAdmissionPolicy"},
    ]
    assert gw.crd_mismatches(objects, "v1.6.0") == ["httproutes.gateway.networking.k8s.io is v1.5.1 (standard)"]
    assert gw.crd_mismatches([crd("virtualservices.networking.istio.io", "x", group="networking.istio.io")], "v1.6.0") == []


def test_only_experimental_or_newer_crds_block_the_install():
    cluster = [
        crd("gateways.gateway.networking.k8s.io", "v1.5.1"),  # older: upgraded
        crd("httproutes.gateway.networking.k8s.io", "v1.7.0"),  # newer: would lose fields
        crd("tcproutes.gateway.networking.k8s.io", "v1.6.0", channel="experimental"),
    ]
    assert gw.crd_mismatches(cluster, "v1.6.0", newer_only=True) == [
        "httproutes.gateway.networking.k8s.io is v1.7.0 (standard)",
        "tcproutes.gateway.networking.k8s.io is v1.6.0 (experimental)",
    ]


def test_a_gateway_api_gateway_is_named_apart_from_istios():
    istio_gateway = {"apiVersion": vocab.API_VERSION, "kind": "Gateway", "metadata": {"name": "g", "namespace": "n"}}
    k8s_gateway = dict(istio_gateway, apiVersion="gateway.networking.k8s.io/v1")
    assert vocab.object_id(istio_gateway) == "Gateway n/g"
    assert vocab.object_id(k8s_gateway) == "Gateway.gateway.networking.k8s.io n/g"
    # so a switch of traffic_api prunes the other API's Gateway of the same name
    assert tm.stale_objects([istio_gateway], [k8s_gateway]) == [istio_gateway]


def cond(kind, status="True", generation=2, reason="Ok", message=""):
    return {"type": kind, "status": status, "observedGeneration": generation, "reason": reason, "message": message}


def route_with_status(parents, generation=2):
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "httpbin", "namespace": "httpbin", "generation": generation},
        "spec": {"parentRefs": [{"name": "httpbin-gateway", "namespace": "istio-system", "sectionName": "http"}]},
        "status": {"parents": parents},
    }


def reported(*conditions):
    return {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "httpbin-gateway", "namespace": "istio-system"},
        "conditions": list(conditions),
    }


def test_accepted_routes_and_programmed_gateways_have_nothing_to_say():
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "httpbin-gateway", "namespace": "istio-system", "generation": 1},
        "status": {"conditions": [cond("Accepted", generation=1), cond("Programmed", generation=1)]},
    }
    objects = [gateway, route_with_status([reported(cond("Accepted"), cond("ResolvedRefs"))]), {"kind": "ServiceEntry"}]
    assert gw.status_problems(objects) == {"pending": [], "problems": []}


def test_a_route_with_a_missing_backend_is_named_with_the_reason():
    route = route_with_status(
        [reported(cond("Accepted"), cond("ResolvedRefs", "False", reason="BackendNotFound", message="backend(nothere.httpbin) not found"))]
    )
    assert gw.status_problems([route]) == {
        "pending": [],
        "problems": [
            "HTTPRoute httpbin/httpbin: parent Gateway istio-system/httpbin-gateway: "
            "ResolvedRefs is False (BackendNotFound: backend(nothere.httpbin) not found)"
        ],
    }


def test_conditions_of_an_older_generation_or_none_are_pending():
    stale = route_with_status([reported(cond("Accepted", generation=1), cond("ResolvedRefs", "False", generation=1))])
    assert gw.status_problems([stale])["problems"] == []
    assert len(gw.status_problems([stale])["pending"]) == 2
    assert gw.status_problems([route_with_status([])])["pending"] == [
        "HTTPRoute httpbin/httpbin: parent Gateway istio-system/httpbin-gateway: Accepted not reported for generation 2 yet",
        "HTTPRoute httpbin/httpbin: parent Gateway istio-system/httpbin-gateway: ResolvedRefs not reported for generation 2 yet",
    ]


def test_the_readme_shows_what_each_api_renders_for_the_reference_route():
    readme = (pathlib.Path(__file__).resolve().parents[4] / "README.md").read_text()
    table = readme[readme.index("<table><tr><td>") : readme.index("</td></tr></table>")]
    shown = [list(yaml.safe_load_all(block)) for block in re.findall(r"```yaml\n(.*?)```", table, re.S)]
    assert len(shown) == 2
    for api, objects in zip(("istio", "gateway_api"), shown, strict=True):
        rendered = [
            dict(o, metadata={k: o["metadata"][k] for k in ("name", "namespace")})
            for o in scenario.objects({"traffic_api": api})
            if o["kind"] in ("Gateway", "VirtualService", "HTTPRoute") and o["metadata"]["name"] in ("httpbin", "httpbin-gateway")
        ]
        assert objects == rendered, api
