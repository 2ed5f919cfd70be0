"""Static explanation: Istio's documented HTTP routing semantics, positive and negative cases."""

import copy
import pathlib

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import MeshIndex, hosts_intersection, resolve_host
from ansible_collections.meshops.istio.plugins.module_utils.istio.routing import ExplainError, agreement, describe_alternative, explain, gateway_labels_for_host
from tests.fixtures import scenario

REPO = pathlib.Path(__file__).resolve().parents[4]
SEED = scenario.mesh_objects("default")


def gw(name, hosts, ns="istio-system", selector=None, port=80, protocol="HTTP", tls=None, servers=None):
    if servers is None:
        server = {"port": {"number": port, "name": protocol.lower(), "protocol": protocol}, "hosts": hosts}
        if tls is not None:
            server["tls"] = tls
        servers = [server]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector or {"istio": "ingressgateway"}, "servers": servers},
    }


def vs(name, hosts, http, ns="default", gateways=None, created=None, **spec):
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": dict(hosts=hosts, http=http, **spec),
    }
    if gateways is not None:
        obj["spec"]["gateways"] = gateways
    if created:
        obj["metadata"]["creationTimestamp"] = created
    return obj


def svc(name, ns="default", ports=(8000,)):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": f"http-{p}", "port": p} for p in ports]},
    }


def dr(name, host, subsets, ns="default"):
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"host": host, "subsets": [{"name": s} for s in subsets]},
    }


def to(host, port=None, subset=None, weight=None):
    dest = {"host": host}
    if port:
        dest["port"] = {"number": port}
    if subset:
        dest["subset"] = subset
    route = {"destination": dest}
    if weight is not None:
        route["weight"] = weight
    return route


def ingress(*objects):
    """An ingress gateway for *.example.com in istio-system plus objects."""
    return [gw("public", ["*.example.com"]), svc("a"), svc("b"), *objects]


def at(objects, host="www.example.com", path="/", via="istio-system/public", **request):
    return explain(objects, dict(via=via, host=host, path=path, **request))


# -- SEED.md ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "match"), [("/status/200", 0), ("/status", 0), ("/statusx", 0), ("/delay/1", 1)])
def test_seed_ingress_routes_status_and_delay(path, match):
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": path})
    assert result["outcome"] == "route"
    assert (result["virtual_service"], result["rule"], result["match"]) == ("default/httpbin", 0, match)
    ((dest,),) = [result["destinations"]]
    assert (dest["host"], dest["port"], dest["kind"], dest["object"], dest["problems"]) == (
        "httpbin.default.svc.cluster.local",
        8000,
        "Service",
        "Service default/httpbin",
        [],
    )
    assert result["expected"] == {"status": None, "error": None, "upstream": True}


@pytest.mark.parametrize("path", ["/headers", "/", "/Status/200", "/anything/status"])
def test_seed_ingress_other_paths_get_404(path):
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": path})
    assert result["outcome"] == "no_route"
    assert result["expected"]["status"] == 404
    assert result["text"] == "no route: VirtualService default/httpbin matches only /status and /delay"


@pytest.mark.parametrize("host", ["other.example.com", "example.com", "httpbin.example.org"])
def test_seed_ingress_other_hosts_get_404(host):
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": host, "path": "/status/200"})
    assert result["outcome"] == "no_virtual_host"
    assert result["expected"]["status"] == 404


@pytest.mark.parametrize("host", ["httpbin.example.com:80", "HTTPBIN.Example.com", "httpbin.example.com:31380"])
def test_host_port_and_case_do_not_matter(host):
    assert explain(SEED, {"via": "default/httpbin-gateway", "host": host, "path": "/status/200"})["outcome"] == "route"


def test_seed_ingress_via_the_service_selector_labels():
    result = explain(SEED, {"gateway_labels": {"istio": "ingressgateway", "app": "istio-ingressgateway"}, "host": "httpbin.example.com", "path": "/delay/2"})
    assert result["outcome"] == "route"
    assert result["gateway"] == "default/httpbin-gateway"


def test_seed_ingress_nothing_on_port_443():
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "port": 443, "scheme": "https"})
    assert result["outcome"] == "no_server"
    assert result["expected"]["error"] == ["refused", "reset", "timeout"]
    assert explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "scheme": "https"})["outcome"] == "no_server"


def test_tls_to_a_plain_http_port():
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "port": 80, "scheme": "https"})
    assert result["outcome"] == "protocol_mismatch"
    assert result["expected"]["error"] == ["tls"]


def test_seed_egress_from_the_mesh_goes_to_the_egress_gateway():
    result = explain(SEED, {"via": "mesh", "host": "edition.cnn.com", "path": "/politics", "source_namespace": "default"})
    assert result["outcome"] == "route"
    assert (result["virtual_service"], result["rule"]) == ("default/direct-cnn-through-egress-gateway", 0)
    (dest,) = result["destinations"]
    assert (dest["host"], dest["subset"], dest["port"], dest["weight"], dest["problems"]) == (
        "istio-egressgateway.istio-system.svc.cluster.local",
        "cnn",
        80,
        100,
        [],
    )


def test_seed_egress_gateway_sends_it_out():
    result = explain(SEED, {"via": "default/istio-egressgateway", "host": "edition.cnn.com", "path": "/politics"})
    assert result["outcome"] == "route"
    assert result["rule"] == 1
    (dest,) = result["destinations"]
    assert (dest["host"], dest["port"], dest["kind"], dest["object"]) == ("edition.cnn.com", 80, "ServiceEntry", "ServiceEntry default/cnn")


def test_seed_egress_on_another_port_is_not_routed():
    result = explain(SEED, {"via": "mesh", "host": "edition.cnn.com", "port": 8080})
    assert result["outcome"] == "passthrough"
    result = explain(SEED, {"via": "mesh", "host": "edition.cnn.com", "port": 8080, "outbound_traffic_policy": "REGISTRY_ONLY"})
    assert result["outcome"] == "blocked"
    assert result["expected"]["status"] == 502


@pytest.mark.parametrize(("policy", "outcome", "status"), [("ALLOW_ANY", "passthrough", None), ("REGISTRY_ONLY", "blocked", 502)])
def test_unregistered_host_from_the_mesh(policy, outcome, status):
    result = explain(SEED, {"host": "example.org", "outbound_traffic_policy": policy})
    assert (result["outcome"], result["expected"]["status"]) == (outcome, status)


def test_registered_host_still_works_with_registry_only():
    result = explain(SEED, {"host": "edition.cnn.com", "outbound_traffic_policy": "REGISTRY_ONLY"})
    assert result["outcome"] == "route"


def test_https_from_the_mesh_without_tls_routes_takes_the_default_route():
    # the reference VirtualService has http rules only: TLS on 443 goes to the ServiceEntry's host
    result = explain(SEED, {"host": "edition.cnn.com", "scheme": "https"})
    assert result["outcome"] == "default_route"
    assert result["opaque"] is True
    assert result["destinations"][0]["object"] == "ServiceEntry default/cnn"


def test_https_to_an_unregistered_host_with_registry_only_is_closed():
    result = explain(SEED, {"host": "unregistered.example.com", "scheme": "https", "outbound_traffic_policy": "REGISTRY_ONLY"})
    assert result["outcome"] == "blocked"
    assert result["expected"]["error"] == ["reset", "tls"]


def test_tls_rules_with_unmodelled_matches_are_unsupported():
    objects = copy.deepcopy(SEED)
    egress_vs = next(o for o in objects if o["kind"] == "VirtualService" and o["metadata"]["name"] == "direct-cnn-through-egress-gateway")
    egress_vs["spec"]["tls"] = [{"match": [{"sniHosts": ["edition.cnn.com"], "destinationSubnets": ["10.0.0.0/8"]}], "route": [to("edition.cnn.com", 443)]}]
    result = explain(objects, {"host": "edition.cnn.com", "scheme": "https"})
    assert result["outcome"] == "unsupported"
    assert "destinationSubnets" in result["unsupported"][0]


# -- mesh: names and the default route ---------------------------------------------------------------
@pytest.mark.parametrize("host", ["httpbin", "httpbin.default", "httpbin.default.svc.cluster.local"])
def test_mesh_short_names_resolve_in_the_client_namespace(host):
    result = explain(SEED, {"host": host, "port": 8000, "source_namespace": "default"})
    assert result["outcome"] == "default_route"
    assert result["destinations"][0]["object"] == "Service default/httpbin"


def test_mesh_short_name_from_another_namespace():
    result = explain(SEED, {"host": "httpbin", "port": 8000, "source_namespace": "istio-system"})
    assert result["outcome"] == "passthrough"  # httpbin.istio-system is not a Service there
    result = explain(SEED, {"host": "httpbin", "port": 8000, "source_namespace": "elsewhere"})
    assert result["outcome"] == "unsupported"  # nothing is known about that namespace


def test_mesh_virtual_service_with_short_host_and_default_gateways():
    objects = [svc("reviews", ports=(9080,)), dr("reviews", "reviews", ["v1", "v2"]), vs("reviews", ["reviews"], [{"route": [to("reviews", subset="v2")]}])]
    result = explain(objects, {"host": "reviews", "port": 9080})
    assert result["outcome"] == "route"
    assert result["destinations"][0]["subset"] == "v2"
    assert result["destinations"][0]["port"] == 9080  # the only port of the Service
    # gateways omitted means mesh only: a gateway does not get it
    objects.append(gw("public", ["*"]))
    assert at(objects, host="reviews.default.svc.cluster.local")["outcome"] == "no_route"


def test_mesh_source_labels_and_namespace():
    rules = [
        {"match": [{"sourceLabels": {"app": "canary"}}], "route": [to("reviews", subset="v2")]},
        {"match": [{"sourceNamespace": "test"}], "route": [to("reviews", subset="v3")]},
        {"route": [to("reviews", subset="v1")]},
    ]
    objects = [svc("reviews", ports=(9080,)), dr("reviews", "reviews", ["v1", "v2", "v3"]), vs("reviews", ["reviews"], rules)]
    base = {"host": "reviews.default.svc.cluster.local", "port": 9080}
    assert explain(objects, dict(base, source_labels={"app": "canary", "version": "x"}))["destinations"][0]["subset"] == "v2"
    assert explain(objects, dict(base, source_labels={"app": "web"}, source_namespace="test"))["destinations"][0]["subset"] == "v3"
    assert explain(objects, dict(base, source_labels={"app": "web"}))["destinations"][0]["subset"] == "v1"
    unknown = explain(objects, base)
    assert unknown["outcome"] == "unsupported"
    assert "source_labels" in unknown["unsupported"][0]


def test_mesh_export_to_hides_a_virtual_service():
    objects = [svc("reviews", ports=(9080,)), vs("reviews", ["reviews"], [{"route": [to("reviews", port=9999)]}], exportTo=["."])]
    inside = explain(objects, {"host": "reviews.default.svc.cluster.local", "port": 9080, "source_namespace": "default"})
    assert inside["outcome"] == "no_upstream"
    objects.append(svc("web", ns="web"))
    outside = explain(objects, {"host": "reviews.default.svc.cluster.local", "port": 9080, "source_namespace": "web"})
    assert outside["outcome"] == "default_route"


# -- hosts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("*.example.com", "www.example.com", "www.example.com"),
        ("www.example.com", "*.example.com", "www.example.com"),
        ("*", "*.example.com", "*.example.com"),
        ("*.example.com", "*.a.example.com", "*.a.example.com"),
        ("*.example.com", "example.com", None),
        ("a.example.com", "b.example.com", None),
        ("*.example.com", "*.example.org", None),
    ],
)
def test_hosts_intersection(a, b, expected):
    assert hosts_intersection(a, b) == expected


@pytest.mark.parametrize(
    ("host", "ns", "expected"),
    [
        ("reviews", "bookinfo", "reviews.bookinfo.svc.cluster.local"),
        ("reviews.bookinfo", "x", "reviews.bookinfo"),
        ("*", "x", "*"),
        ("Edition.CNN.com", "x", "edition.cnn.com"),
    ],
)
def test_short_name_resolution(host, ns, expected):
    assert resolve_host(host, ns) == expected


def test_wildcard_virtual_service_on_wildcard_server():
    objects = ingress(vs("wild", ["*.example.com"], [{"route": [to("a.default.svc.cluster.local")]}], gateways=["istio-system/public"]))
    assert at(objects, host="deep.sub.example.com")["outcome"] == "route"
    assert at(objects, host="example.com")["outcome"] == "no_virtual_host"


def test_exact_host_wins_over_wildcard():
    objects = ingress(
        vs("wild", ["*.example.com"], [{"route": [to("a.default.svc.cluster.local")]}], gateways=["istio-system/public"]),
        vs("api", ["api.example.com"], [{"route": [to("b.default.svc.cluster.local")]}], gateways=["istio-system/public"]),
    )
    assert at(objects, host="api.example.com")["virtual_service"] == "default/api"
    assert at(objects, host="www.example.com")["virtual_service"] == "default/wild"


def test_longest_wildcard_wins():
    objects = [
        gw("public", ["*"]),
        svc("a"),
        svc("b"),
        vs("short", ["*.example.com"], [{"route": [to("a")]}], gateways=["istio-system/public"]),
        vs("long", ["*.api.example.com"], [{"route": [to("b")]}], gateways=["istio-system/public"]),
    ]
    assert at(objects, host="v1.api.example.com")["virtual_service"] == "default/long"
    assert at(objects, host="www.example.com")["virtual_service"] == "default/short"
    # the server takes any host, but no VirtualService serves this one
    assert at(objects, host="www.example.org")["outcome"] == "no_route"


def test_catch_all_virtual_service_host_takes_the_server_host():
    objects = [gw("public", ["bar.example.com"]), svc("a"), vs("all", ["*"], [{"route": [to("a")]}], gateways=["istio-system/public"])]
    result = at(objects, host="bar.example.com")
    assert (result["outcome"], result["virtual_host"]) == ("route", "bar.example.com")
    assert at(objects, host="foo.example.com")["outcome"] == "no_virtual_host"


def test_server_host_namespace_restriction():
    objects = [
        gw("public", ["prod/*.example.com"]),
        svc("a", ns="dev"),
        vs("dev", ["www.example.com"], [{"route": [to("a")]}], ns="dev", gateways=["istio-system/public"]),
    ]
    result = at(objects)
    assert result["outcome"] == "no_route"
    assert "no VirtualService bound" in result["text"]
    objects[2]["metadata"]["namespace"] = "prod"
    objects[1]["metadata"]["namespace"] = "prod"
    assert at(objects)["outcome"] == "route"


def test_dot_namespace_means_the_gateway_namespace():
    objects = [
        gw("public", ["./*.example.com"], ns="edge"),
        svc("a", ns="edge"),
        vs("v", ["www.example.com"], [{"route": [to("a")]}], ns="edge", gateways=["public"]),
    ]
    assert at(objects, via="edge/public")["outcome"] == "route"
    objects[2]["metadata"]["namespace"] = "other"
    objects[2]["spec"]["gateways"] = ["edge/public"]
    assert at(objects, via="edge/public")["outcome"] == "no_route"


# -- gateway references ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "bound"),
    [
        ("istio-system/public", True),
        ("public.istio-system.svc.cluster.local", True),
        ("public", False),  # a short name is relative to the VirtualService namespace (default)
        ("default/public", False),
        ("mesh", False),
    ],
)
def test_gateway_reference_forms(ref, bound):
    objects = ingress(vs("v", ["www.example.com"], [{"route": [to("a")]}], gateways=[ref]))
    assert (at(objects)["outcome"] == "route") is bound


def test_unknown_gateway():
    result = explain(SEED, {"via": "default/nope", "host": "httpbin.example.com"})
    assert result["outcome"] == "unknown_gateway"
    assert "default/httpbin-gateway" in result["text"]


def test_gateways_selecting_the_same_workload_share_the_port():
    objects = [
        gw("one", ["one.example.com"], ns="a"),
        gw("two", ["two.example.com"], ns="b"),
        gw("egress", ["two.example.com"], ns="b", selector={"istio": "egressgateway"}),
        svc("a", ns="a"),
        svc("b", ns="b"),
        vs("one", ["one.example.com"], [{"route": [to("a")]}], ns="a", gateways=["one"]),
        vs("two", ["two.example.com"], [{"route": [to("b")]}], ns="b", gateways=["two"]),
    ]
    assert at(objects, host="two.example.com", via="a/one")["virtual_service"] == "b/two"
    assert at(objects, host="one.example.com", via="b/egress")["outcome"] == "no_virtual_host"


# -- matching --------------------------------------------------------------------------------------
def routed(rules, **request):
    objects = ingress(vs("v", ["www.example.com"], rules, gateways=["istio-system/public"]))
    return at(objects, **request)


def rule_of(rules, **request):
    result = routed(rules, **request)
    return result["rule"] if result["outcome"] == "route" else result["outcome"]


@pytest.mark.parametrize(
    ("match", "request_", "hit"),
    [
        ({"uri": {"exact": "/a"}}, {"path": "/a"}, True),
        ({"uri": {"exact": "/a"}}, {"path": "/a/"}, False),
        ({"uri": {"exact": "/a"}}, {"path": "/a?x=1"}, True),
        ({"uri": {"prefix": "/a"}}, {"path": "/ab"}, True),
        ({"uri": {"prefix": "/a/"}}, {"path": "/a"}, False),
        ({"uri": {"regex": "/api/v[0-9]+"}}, {"path": "/api/v2"}, True),
        ({"uri": {"regex": "/api/v[0-9]+"}}, {"path": "/api/v2/users"}, False),
        ({"uri": {"regex": "/api/.*"}}, {"path": "/api/v2/users?q=1"}, True),
        ({"uri": {"exact": "/Login"}, "ignoreUriCase": True}, {"path": "/LOGIN"}, True),
        ({"uri": {"exact": "/Login"}}, {"path": "/LOGIN"}, False),
        ({"method": {"exact": "POST"}}, {"method": "post"}, True),
        ({"method": {"exact": "POST"}}, {"method": "GET"}, False),
        ({"scheme": {"exact": "http"}}, {}, True),
        ({"authority": {"prefix": "www."}}, {}, True),
        ({"authority": {"exact": "api.example.com"}}, {}, False),
        ({"headers": {"end-user": {"exact": "jason"}}}, {"headers": {"End-User": "jason"}}, True),
        ({"headers": {"end-user": {"exact": "jason"}}}, {"headers": {"end-user": "Jason"}}, False),
        ({"headers": {"end-user": {"exact": "jason"}}}, {}, False),
        ({"headers": {"x-canary": {}}}, {"headers": {"x-canary": ""}}, True),
        ({"headers": {"x-canary": {}}}, {}, False),
        ({"headers": {"cookie": {"regex": "^(.*?;)?(user=jason)(;.*)?$"}}}, {"headers": {"cookie": "a=1; user=jason"}}, False),
        ({"headers": {"cookie": {"regex": "^(.*;)?(user=jason)(;.*)?$"}}}, {"headers": {"cookie": "a=1;user=jason"}}, True),
        ({"headers": {"x-v": {"prefix": "v1"}}}, {"headers": {"x-v": "v1.2"}}, True),
        ({"withoutHeaders": {"x-debug": {}}}, {}, True),
        ({"withoutHeaders": {"x-debug": {}}}, {"headers": {"x-debug": "1"}}, False),
        ({"queryParams": {"v": {"exact": "2"}}}, {"path": "/?v=2"}, True),
        ({"queryParams": {"v": {"exact": "2"}}}, {"path": "/?v=20"}, False),
        ({"queryParams": {"v": {"regex": "[0-9]+"}}}, {"path": "/p?v=20"}, True),
        ({"port": 80}, {}, True),
        ({"port": 8080}, {}, False),
        ({"gateways": ["istio-system/public"]}, {}, True),
        ({"gateways": ["mesh"]}, {}, False),
        ({"uri": {"prefix": "/a"}, "method": {"exact": "GET"}}, {"path": "/a", "method": "POST"}, False),
    ],
)
def test_match_fields(match, request_, hit):
    assert rule_of([{"match": [match], "route": [to("a")]}], **request_) == (0 if hit else "no_route")


def test_alternatives_are_ored_and_the_first_matching_rule_wins():
    rules = [
        {"match": [{"uri": {"prefix": "/a"}, "headers": {"x": {"exact": "1"}}}, {"uri": {"prefix": "/b"}}], "route": [to("a")]},
        {"match": [{"uri": {"prefix": "/"}}], "route": [to("b")]},
        {"match": [{"uri": {"prefix": "/a"}}], "route": [to("a")]},
    ]
    assert rule_of(rules, path="/a", headers={"x": "1"}) == 0
    assert rule_of(rules, path="/b/c") == 0
    assert rule_of(rules, path="/a") == 1  # rule 2 can never match
    result = routed(rules, path="/b")
    assert result["match"] == 1


def test_a_rule_without_match_matches_everything():
    result = routed([{"match": [{"uri": {"exact": "/x"}}], "route": [to("a")]}, {"route": [to("b")]}], path="/anything")
    assert (result["rule"], result["match"]) == (1, None)


def test_path_is_normalized_before_matching():
    result = explain(SEED, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/../headers"})
    assert result["outcome"] == "no_route"
    assert "path normalized to /headers" in result["notes"]


@pytest.mark.parametrize(
    ("match", "reason"),
    [
        ({"uri": {"regex": "/(?=a)"}}, "RE2"),
        ({"uri": {"regex": "(a)\\1"}}, "RE2"),
        ({"uri": {"suffix": "/a"}}, "not modelled"),
        ({"uri": {"prefix": "/a"}, "newField": 1}, "newField"),
        ({"queryParams": {"v": {"prefix": "1"}}}, "prefix"),
        ({"sourceNamespace": "x"}, "proxy_namespace"),
    ],
)
def test_unmodelled_match_makes_the_prediction_unsupported(match, reason):
    result = routed([{"match": [match], "route": [to("a")]}, {"route": [to("b")]}], path="/a")
    assert result["outcome"] == "unsupported"
    assert reason in result["unsupported"][0]
    assert result["expected"] == {"status": None, "error": None, "upstream": False}


def test_unmodelled_match_after_the_matching_rule_does_not_matter():
    assert rule_of([{"route": [to("a")]}, {"match": [{"uri": {"regex": "(?=x)"}}], "route": [to("b")]}]) == 0


# -- actions ---------------------------------------------------------------------------------------
def test_redirect():
    result = routed([{"redirect": {"uri": "/v2", "authority": "new.example.com"}}], path="/v1")
    assert (result["outcome"], result["expected"]["status"]) == ("redirect", 301)
    assert result["redirect"]["location"] == "http://new.example.com/v2"
    result = routed([{"redirect": {"scheme": "https", "redirectCode": 308}}], path="/x")
    assert result["expected"]["status"] == 308
    assert result["redirect"]["location"] == "https://www.example.com/x"


def test_direct_response():
    result = routed([{"directResponse": {"status": 503, "body": {"string": "down"}}}])
    assert (result["outcome"], result["expected"]["status"]) == ("direct_response", 503)


def test_fault_abort():
    always = routed([{"fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}}, "route": [to("a")]}])
    assert (always["outcome"], always["expected"]["status"]) == ("abort", 418)
    sometimes = routed([{"fault": {"abort": {"httpStatus": 500, "percentage": {"value": 10.5}}}, "route": [to("a")]}])
    assert sometimes["outcome"] == "route"
    assert "aborts 10.5% of requests with 500" in sometimes["notes"][0]
    unspecified = routed([{"fault": {"abort": {"httpStatus": 500}}, "route": [to("a")]}])
    assert unspecified["outcome"] == "unsupported"
    grpc = routed([{"fault": {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 100}}}, "route": [to("a")]}])
    assert grpc["outcome"] == "unsupported"


def test_weights():
    result = routed([{"route": [to("a", weight=90), to("b", weight=10)]}])
    assert result["outcome"] == "route"
    assert [(d["host"], d["weight"]) for d in result["destinations"]] == [("a.default.svc.cluster.local", 90), ("b.default.svc.cluster.local", 10)]
    assert "(90%)" in result["text"]


def test_delegate_is_unsupported():
    result = routed([{"match": [{"uri": {"prefix": "/"}}], "delegate": {"name": "child", "namespace": "default"}}])
    assert result["outcome"] == "unsupported"
    assert "delegat" in result["unsupported"][0]


def test_passive_fields_do_not_change_the_route():
    rule = {
        "route": [to("a")],
        "rewrite": {"uri": "/"},
        "timeout": "5s",
        "retries": {"attempts": 3},
        "headers": {"request": {"set": {"x": "y"}}},
        "mirror": {"host": "b"},
        "name": "main",
    }
    result = routed([rule])
    assert result["outcome"] == "route"
    assert result["rule_name"] == "main"


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ({"host": "a", "port": {"number": 8080}}, "port 8080 is not exposed by Service default/a (ports: 8000)"),
        ({"host": "a", "subset": "v9"}, "subset v9 is defined by no DestinationRule for a.default.svc.cluster.local"),
        ({"host": "nope"}, "no Service or ServiceEntry for host nope.default.svc.cluster.local"),
    ],
)
def test_broken_destinations_answer_503(destination, problem):
    result = routed([{"route": [{"destination": destination}]}])
    assert (result["outcome"], result["expected"]["status"]) == ("no_upstream", 503)
    assert problem in result["text"]


def test_destination_in_a_namespace_not_given_is_unsupported():
    result = routed([{"route": [to("svc.elsewhere.svc.cluster.local")]}])
    assert result["outcome"] == "unsupported"


def test_destination_port_needed_for_multi_port_services():
    objects = ingress(svc("multi", ports=(80, 9090)), vs("v", ["www.example.com"], [{"route": [to("multi")]}], gateways=["istio-system/public"]))
    result = at(objects)
    assert result["outcome"] == "no_upstream"
    assert "Istio needs destination.port" in result["text"]


# -- gateway servers -------------------------------------------------------------------------------
def test_https_redirect_on_the_http_server():
    objects = ingress(vs("v", ["www.example.com"], [{"route": [to("a")]}], gateways=["istio-system/public"]))
    objects[0]["spec"]["servers"][0]["tls"] = {"httpsRedirect": True}
    result = at(objects)
    assert (result["outcome"], result["expected"]["status"]) == ("https_redirect", 301)


def secure_gateway(mode="SIMPLE", hosts=("secure.example.com",)):
    return [
        gw("secure", list(hosts), port=443, protocol="HTTPS", tls={"mode": mode, "credentialName": "c"}),
        svc("a"),
        vs("v", ["*.example.com"], [{"route": [to("a")]}], gateways=["istio-system/secure"]),
    ]


def test_https_server_is_chosen_by_sni():
    objects = secure_gateway()
    ok = at(objects, host="secure.example.com", via="istio-system/secure", scheme="https")
    assert (ok["outcome"], ok["virtual_host"]) == ("route", "secure.example.com")
    wrong = at(objects, host="secure.example.com", via="istio-system/secure", scheme="https", sni="other.example.com")
    assert (wrong["outcome"], wrong["expected"]["error"]) == ("tls_no_server", ["tls", "reset"])
    plain = at(objects, host="secure.example.com", via="istio-system/secure", port=443)
    assert plain["outcome"] == "protocol_mismatch"


def test_https_server_with_star_host_takes_any_sni():
    result = at(secure_gateway(hosts=("*",)), host="x.example.com", via="istio-system/secure", scheme="https")
    assert result["outcome"] == "route"


def test_tls_passthrough_is_unsupported_and_mutual_is_noted():
    assert at(secure_gateway("PASSTHROUGH"), host="secure.example.com", via="istio-system/secure", scheme="https")["outcome"] == "unsupported"
    mutual = at(secure_gateway("MUTUAL"), host="secure.example.com", via="istio-system/secure", scheme="https")
    assert mutual["outcome"] == "route"
    assert "requires a client certificate" in mutual["notes"][0]


def test_tcp_server_is_unsupported():
    objects = [gw("tcp", ["*"], port=31400, protocol="TCP")]
    assert at(objects, host="x", via="istio-system/tcp", port=31400)["outcome"] == "unsupported"


def test_virtual_services_for_the_same_host_are_merged_in_creation_order():
    older = vs(
        "older",
        ["www.example.com"],
        [{"match": [{"uri": {"prefix": "/old"}}], "route": [to("a")]}],
        gateways=["istio-system/public"],
        created="2026-01-01T00:00:00Z",
    )
    newer = vs("newer", ["www.example.com"], [{"route": [to("b")]}], gateways=["istio-system/public"], created="2026-02-01T00:00:00Z")
    objects = ingress(newer, older)
    assert at(objects, path="/old/x")["virtual_service"] == "default/older"
    result = at(objects, path="/new")
    assert result["virtual_service"] == "default/newer"
    assert "merged" in result["notes"][0]


def test_sidecar_objects_are_reported_as_not_modelled():
    sidecar = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "default"}, "spec": {}}
    result = explain([*SEED, sidecar], {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/200"})
    assert result["outcome"] == "route"
    assert "Sidecar default/default" in result["notes"][0]


def test_no_gateway_selects_the_workload():
    result = explain(SEED, {"gateway_labels": {"istio": "nothing"}, "host": "x"})
    assert result["outcome"] == "no_server"


# -- describing and input validation ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("match", "text"),
    [
        (None, "every request"),
        ({"uri": {"prefix": "/status"}}, "/status"),
        ({"uri": {"exact": "/x"}}, "exactly /x"),
        ({"uri": {"regex": "/v[0-9]"}}, "regex /v[0-9]"),
        ({"uri": {"prefix": "/a"}, "headers": {"x": {"exact": "1"}}, "port": 80}, "/a with header x = 1 and port 80"),
        ({"method": {"exact": "GET"}}, "any path with method GET"),
    ],
)
def test_describe_alternative(match, text):
    assert describe_alternative(match) == text


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"path": "/"}, "host is required"),
        ({"host": "a", "via": "gw"}, "via must be"),
        ({"host": "a", "via": "a/b/c"}, "via must be"),
        ({"host": "a", "port": 70000}, "out of range"),
        ({"host": "a", "port": "eighty"}, "port must be an integer"),
        ({"host": "a", "scheme": "ftp"}, "scheme"),
        ({"host": "a", "path": "status"}, "path must start with /"),
        ({"host": "a", "colour": "red"}, "unknown key(s) colour"),
        ({"host": "a", "outbound_traffic_policy": "DENY"}, "outbound_traffic_policy"),
        ({"host": "a", "via": "mesh", "gateway_labels": {"a": "b"}}, "gateway_labels"),
    ],
)
def test_bad_requests(request_, message):
    with pytest.raises(ExplainError, match=".*" + message.replace("(", r"\(").replace(")", r"\)")):
        explain(SEED, request_)


def test_index_is_reusable_and_input_is_not_modified():
    objects = copy.deepcopy(SEED)
    index = MeshIndex(objects)
    first = explain(index, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/1"})
    second = explain(index, {"via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/1"})
    assert first == second
    assert objects == SEED


def test_gateway_labels_for_host():
    index = MeshIndex(SEED)
    assert gateway_labels_for_host(index, "httpbin.example.com:80") == {"istio": "ingressgateway"}
    assert gateway_labels_for_host(index, "edition.cnn.com") == {"istio": "egressgateway"}
    assert gateway_labels_for_host(index, "unknown.example.org") is None  # two workloads, none serves it
    ingress_only = [scenario.pick(SEED, "Gateway", "httpbin-gateway"), scenario.pick(SEED, "VirtualService", "httpbin")]
    assert gateway_labels_for_host(MeshIndex(ingress_only), "unknown.example.org") == {"istio": "ingressgateway"}


@pytest.mark.parametrize(
    ("request_", "observed", "agrees"),
    [
        ({"path": "/headers"}, {"status": 404}, True),
        ({"path": "/headers"}, {"status": 200, "headers": {"x-envoy-upstream-service-time": "1"}}, False),
        ({"path": "/status/418"}, {"status": 418, "headers": {"x-envoy-upstream-service-time": "1"}}, True),
        ({"path": "/status/200"}, {"status": 503}, False),
        ({"path": "/status/200"}, {"error_kind": "refused"}, False),
        ({"path": "/status/200", "port": 8080}, {"error_kind": "refused"}, True),
        ({"path": "/status/200", "port": 8080}, {"status": 404}, False),
    ],
)
def test_agreement_with_an_observed_answer(request_, observed, agrees):
    explanation = explain(SEED, dict(request_, via="default/httpbin-gateway", host="httpbin.example.com"))
    assert agreement(explanation, **observed) is agrees


def test_agreement_is_unknown_for_unsupported_predictions():
    objects = copy.deepcopy(SEED)
    entry = next(o for o in objects if o["kind"] == "ServiceEntry")
    entry["spec"]["ports"][1]["protocol"] = "TCP"  # TLS from a client on a TCP port is not modelled
    explanation = explain(objects, {"host": "edition.cnn.com", "scheme": "https"})
    assert explanation["outcome"] == "unsupported"
    assert agreement(explanation, status=200) is None


# -- how Istio builds a gateway's route table --------------------------------------------------
def test_server_host_without_virtual_service_creates_no_virtual_host():
    objects = [
        gw("one", ["a.example.com"]),
        gw("two", ["*.example.com"]),
        svc("a"),
        vs("wild", ["*.example.com"], [{"route": [to("a")]}], gateways=["istio-system/two"]),
    ]
    result = at(objects, host="a.example.com", via="istio-system/one")
    assert (result["outcome"], result["virtual_host"]) == ("route", "*.example.com")


def test_no_virtual_service_at_all_gives_404():
    result = at([gw("public", ["*.example.com"])])
    assert (result["outcome"], result["expected"]["status"]) == ("no_route", 404)


def test_catch_all_routes_move_behind_other_virtual_services_on_a_gateway_host():
    older = vs("older", ["www.example.com"], [{"route": [to("a")]}], gateways=["istio-system/public"], created="2026-01-01T00:00:00Z")
    newer = vs(
        "newer",
        ["www.example.com"],
        [{"match": [{"uri": {"prefix": "/api"}}], "route": [to("b")]}, {"match": [{"uri": {"prefix": "/"}, "method": {"exact": "POST"}}], "route": [to("b")]}],
        gateways=["istio-system/public"],
        created="2026-02-01T00:00:00Z",
    )
    objects = ingress(older, newer)
    assert at(objects, path="/api/v1")["virtual_service"] == "default/newer"
    assert at(objects, path="/x", method="POST")["virtual_service"] == "default/newer"  # a method condition is not catch-all
    assert at(objects, path="/x")["virtual_service"] == "default/older"


def test_within_one_virtual_service_a_catch_all_ends_the_routes():
    rules = [{"match": [{"uri": {"prefix": "/"}}], "route": [to("a")]}, {"match": [{"uri": {"prefix": "/api"}}], "route": [to("b")]}]
    result = routed(rules, path="/api")
    assert result["rule"] == 0
    no = routed(
        [{"match": [{"uri": {"exact": "/x"}}], "route": [to("a")]}, {"route": [to("b")]}, {"match": [{"uri": {"prefix": "/y"}}], "route": [to("a")]}], path="/y"
    )
    assert no["rule"] == 1


def test_https_redirect_without_a_virtual_service():
    objects = [gw("public", ["www.example.com"], tls={"httpsRedirect": True})]
    assert at(objects)["outcome"] == "https_redirect"


def test_export_to_is_judged_from_the_gateway_pods_namespace():
    objects = ingress(vs("v", ["www.example.com"], [{"route": [to("a")]}], gateways=["istio-system/public"], exportTo=["."]))
    assert at(objects)["outcome"] == "unsupported"
    assert at(objects, proxy_namespace="istio-system")["outcome"] == "no_route"
    assert at(objects, proxy_namespace="default")["outcome"] == "route"


def test_without_headers_treats_a_missing_header_as_empty():
    rules = [{"match": [{"withoutHeaders": {"x-env": {"exact": ""}}}], "route": [to("a")]}]
    assert routed(rules)["outcome"] == "no_route"
    assert routed(rules, headers={"x-env": "prod"})["outcome"] == "route"


def test_jwt_claim_matches_are_unsupported():
    rules = [{"match": [{"headers": {"@request.auth.claims.group": {"exact": "admin"}}}], "route": [to("a")]}]
    assert routed(rules)["outcome"] == "unsupported"


def test_mesh_virtual_service_for_an_unregistered_host_applies_on_port_80_only():
    objects = [o for o in SEED if o["kind"] != "ServiceEntry"]
    result = explain(objects, {"host": "edition.cnn.com"})
    assert (result["outcome"], result["rule"]) == ("route", 0)
    assert "outside the registry" in result["notes"][0]
    assert explain(objects, {"host": "edition.cnn.com", "port": 8080})["outcome"] == "passthrough"
    # without any HTTP port 80 in the registry the sidecars have no route table for port 80
    no_port_80 = [o for o in objects if o["kind"] != "Service"]
    no_port_80.append(svc("other", ports=(8000,)))
    no_port_80.append(svc("gw", ns="istio-system", ports=(8080,)))
    assert explain(no_port_80, {"host": "edition.cnn.com"})["outcome"] == "unsupported"
