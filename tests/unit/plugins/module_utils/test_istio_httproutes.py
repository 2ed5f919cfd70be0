"""Static explanation under the Kubernetes Gateway API: the reference scenario rendered with
traffic_api gateway_api, and the Gateway API's own rules (attachment, precedence, path-segment
prefixes, redirects, broken backends) where they differ from the VirtualService's."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.istio.lint import lint
from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import MeshIndex
from ansible_collections.meshops.istio.plugins.module_utils.istio.routing import agreement, explain, gateway_labels_for_host
from tests.fixtures import scenario

GW_API = "gateway.networking.k8s.io/v1"
INGRESS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}


def _gateway_api_scenario():
    overrides = {"traffic_namespace": "httpbin", "httpbin_namespace": "httpbin", "traffic_api": "gateway_api"}
    httpbin_service = [o for o in scenario.variable("__httpbin_manifests", overrides) if o["kind"] == "Service"]
    gateways = [o for o in scenario.mesh_objects("httpbin") if o["kind"] == "Service" and o["metadata"]["namespace"] == "istio-system"]
    return scenario.objects(overrides) + httpbin_service + gateways


def gateway(name="gw", ns="istio-system", listeners=None, service="istio-ingressgateway"):
    spec = {"gatewayClassName": "istio", "listeners": listeners or [listener()]}
    if service:
        spec["addresses"] = [{"type": "Hostname", "value": f"{service}.{ns}.svc.cluster.local"}]
    return {"apiVersion": GW_API, "kind": "Gateway", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def listener(name="http", port=80, protocol="HTTP", hostname=None, allowed="All"):
    item = {"name": name, "port": port, "protocol": protocol, "allowedRoutes": {"namespaces": {"from": allowed}}}
    if hostname:
        item["hostname"] = hostname
    return item


def route(name, rules, ns="apps", hostnames=("a.example.com",), parent=None, created=None):
    obj = {
        "apiVersion": GW_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": [parent or {"name": "gw", "namespace": "istio-system"}], "rules": rules},
    }
    if hostnames:
        obj["spec"]["hostnames"] = list(hostnames)
    if created:
        obj["metadata"]["creationTimestamp"] = created
    return obj


def svc(name, ns="apps", ports=(8000,), selector=None):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector or {"app": name}, "ports": [{"name": f"http-{p}", "port": p} for p in ports]},
    }


BASE = [svc("istio-ingressgateway", "istio-system", ports=(80, 443), selector=INGRESS), svc("web"), svc("api")]


def to(name, port=8000, **extra):
    return dict(name=name, port=port, **extra)


def prefix(value):
    return {"path": {"type": "PathPrefix", "value": value}}


def exact(value):
    return {"path": {"type": "Exact", "value": value}}


def ask(objects, path="/", host="a.example.com", **request):
    request.setdefault("gateway_labels", INGRESS)
    return explain(objects, dict(host=host, path=path, **request))


# -- the reference scenario ---------------------------------------------------------------------
def test_the_reference_check_through_the_gateway_api_objects():
    objects = _gateway_api_scenario()
    kinds = sorted(set(o["kind"] for o in objects))
    assert "HTTPRoute" in kinds and "VirtualService" not in kinds
    ok = ask(objects, "/status/200", host="httpbin.example.com")
    assert ok["outcome"] == "route", ok["text"]
    assert ok["http_route"] == "httpbin/httpbin" and ok["gateway"] == "istio-system/httpbin-gateway"
    assert ok["destinations"][0]["host"] == "httpbin.httpbin.svc.cluster.local" and ok["expected"]["upstream"]
    for path, host in (("/headers", "httpbin.example.com"), ("/status/200", "other.example.com")):
        answer = ask(objects, path, host=host)
        assert answer["expected"]["status"] == 404, answer["text"]
    # a path segment prefix: /statusx is not under /status
    assert ask(objects, "/statusx", host="httpbin.example.com")["expected"]["status"] == 404
    # the probe names the Gateway API Gateway; its pods are found through its Service
    named = explain(objects, {"via": "istio-system/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/418"})
    assert named["outcome"] == "route" and named["gateway_workload"] == {"istio": "ingressgateway"}
    assert gateway_labels_for_host(MeshIndex(objects), "httpbin.example.com") == {"istio": "ingressgateway"}


def test_the_reference_egress_through_the_gateway_api_objects():
    objects = _gateway_api_scenario()
    mesh = explain(objects, {"host": "edition.cnn.com", "source_namespace": "httpbin"})
    assert mesh["outcome"] == "route", mesh["text"]
    assert mesh["http_route"] == "httpbin/direct-cnn-to-egress-gateway"
    assert mesh["destinations"][0]["host"] == "istio-egressgateway.istio-system.svc.cluster.local"
    hop = explain(objects, {"via": "istio-system/istio-egressgateway", "host": "edition.cnn.com"})
    assert hop["outcome"] == "route", hop["text"]
    assert hop["destinations"][0]["kind"] == "ServiceEntry" and hop["destinations"][0]["host"] == "edition.cnn.com"
    # another namespace's client: the route of namespace httpbin is the host's own (producer) route
    other = explain(objects, {"host": "edition.cnn.com", "source_namespace": "default"})
    assert other["http_route"] == "httpbin/direct-cnn-to-egress-gateway"


# -- precedence and matching ---------------------------------------------------------------------
def test_an_exact_path_beats_an_older_prefix_and_a_longer_prefix_beats_a_shorter():
    objects = [
        *BASE,
        gateway(),
        route("old", [{"matches": [prefix("/a")], "backendRefs": [to("web")]}], created="2026-01-01T00:00:00Z"),
        route("new", [{"matches": [exact("/a/b"), prefix("/a/b")], "backendRefs": [to("api")]}], created="2026-02-01T00:00:00Z"),
    ]
    assert ask(objects, "/a/b")["http_route"] == "apps/new"
    assert ask(objects, "/a/b/c")["http_route"] == "apps/new"  # /a/b is longer than /a
    assert ask(objects, "/a/c")["http_route"] == "apps/old"
    # what a VirtualService would do (first match in creation order) is not what happens here
    assert ask(objects, "/a/b")["match"] == 0


def test_method_then_headers_then_query_parameters_decide_between_equal_paths():
    rules = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/x"}, "queryParams": [{"name": "q", "value": "1"}]}], "backendRefs": [to("web")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/x"}, "headers": [{"name": "x-a", "value": "1"}]}], "backendRefs": [to("api")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/x"}, "method": "POST"}], "filters": [redirect_to("/posted")]},
    ]
    objects = [*BASE, gateway(), route("r", rules)]
    both = ask(objects, "/x?q=1", headers={"x-a": "1"}, method="POST")
    assert both["rule"] == 2 and both["redirect"]["location"] == "http://a.example.com/posted?q=1"
    assert ask(objects, "/x?q=1", headers={"x-a": "1"})["rule"] == 1
    assert ask(objects, "/x?q=1")["rule"] == 0
    assert ask(objects, "/x")["expected"]["status"] == 404


def redirect_to(path, **spec):
    return {"type": "RequestRedirect", "requestRedirect": dict(spec, path={"type": "ReplaceFullPath", "replaceFullPath": path})}


def test_a_catch_all_ends_the_list_before_a_regular_expression():
    rules = [{"backendRefs": [to("web")]}, {"matches": [{"path": {"type": "RegularExpression", "value": "/r[0-9]+"}}], "backendRefs": [to("api")]}]
    answer = ask([*BASE, gateway(), route("r", rules)], "/r12")
    assert answer["rule"] == 0, answer["text"]  # PathPrefix / ranks above any regex and ends the table


@pytest.mark.parametrize(
    "value, path, hit",
    [("/a", "/a", True), ("/a", "/a/", True), ("/a", "/a/b", True), ("/a", "/ab", False), ("/a/", "/a", True), ("/a", "/A", False), ("/", "/x", True)],
)
def test_path_prefix_matches_whole_segments(value, path, hit):
    objects = [*BASE, gateway(), route("r", [{"matches": [prefix(value)], "backendRefs": [to("web")]}])]
    assert (ask(objects, path)["outcome"] == "route") is hit


def test_redirects_answer_302_by_default_and_build_the_location_as_envoy():
    spec = {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "hostname": "b.example.com"}}
    objects = [*BASE, gateway(listeners=[listener(port=8080)]), route("r", [{"filters": [spec]}])]
    answer = ask(objects, "/p?x=1", port=8080)
    assert answer["redirect"] == {"status": 302, "location": "https://b.example.com/p?x=1"}
    # without a scheme, the listener's port stays in the Location (Envoy's port from the request)
    same = [*BASE, gateway(listeners=[listener(port=8080)]), route("r", [{"filters": [redirect_to("/q", statusCode=301)]}])]
    assert ask(same, "/p", port=8080)["redirect"] == {"status": 301, "location": "http://a.example.com:8080/q"}
    assert agreement(ask(same, "/p", port=8080), status=301, headers={"location": "http://a.example.com:8080/q"}) is True


# -- attachment ----------------------------------------------------------------------------------
def test_routes_attach_only_where_the_listener_admits_them():
    same = [*BASE, gateway(listeners=[listener(allowed="Same")]), route("r", [{"backendRefs": [to("web")]}])]
    refused = ask(same, "/")
    assert refused["expected"]["status"] == 404
    assert any("does not admit routes of namespace apps" in note for note in refused["notes"])
    selector = listener()
    selector["allowedRoutes"] = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}}
    assert ask([*BASE, gateway(listeners=[selector]), route("r", [{"backendRefs": [to("web")]}])])["outcome"] == "route"
    other_label = listener()
    other_label["allowedRoutes"] = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}}
    assert ask([*BASE, gateway(listeners=[other_label]), route("r", [{"backendRefs": [to("web")]}])])["outcome"] == "unsupported"
    section = route("r", [{"backendRefs": [to("web")]}], parent={"name": "gw", "namespace": "istio-system", "sectionName": "https"})
    assert ask([*BASE, gateway(), section])["expected"]["status"] == 404


def test_listener_and_route_hostnames_intersect_and_the_more_specific_listener_wins():
    listeners = [listener("wild", hostname="*.example.com"), listener("exact", hostname="a.example.com")]
    objects = [
        *BASE,
        gateway(listeners=listeners),
        route("wild", [{"backendRefs": [to("web")]}], hostnames=(), parent={"name": "gw", "namespace": "istio-system", "sectionName": "wild"}),
        route("exact", [{"backendRefs": [to("api")]}], hostnames=("a.example.com",)),
    ]
    assert ask(objects, host="a.example.com")["http_route"] == "apps/exact"
    assert ask(objects, host="b.example.com")["http_route"] == "apps/wild"
    assert ask(objects, host="b.other.com")["outcome"] == "no_virtual_host"


# -- broken backends -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ref, why",
    [
        (to("missing"), "no Service apps/missing"),
        (to("web", port=9999), "port 9999 is not exposed"),
        (to("web", namespace="other"), "no ReferenceGrant in namespace other"),
        (dict(to("web"), weight=0), "gives every backend weight 0"),
    ],
)
def test_broken_backends_answer_500_with_the_reason(ref, why):
    objects = [*BASE, svc("web", "other"), gateway(), route("r", [{"backendRefs": [ref]}])]
    answer = ask(objects)
    assert answer["expected"]["status"] == 500 and why in answer["text"], answer["text"]


def test_a_reference_grant_lets_a_route_use_a_service_of_another_namespace():
    grant = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "other"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "apps"}], "to": [{"group": "", "kind": "Service"}]},
    }
    objects = [*BASE, svc("web", "other"), grant, gateway(), route("r", [{"backendRefs": [to("web", namespace="other")]}])]
    assert ask(objects)["outcome"] == "route"


def test_what_the_model_does_not_cover_is_unsupported_never_guessed():
    extension = {"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}
    assert ask([*BASE, gateway(), route("r", [{"filters": [extension], "backendRefs": [to("web")]}])])["outcome"] == "unsupported"
    passthrough = listener("tls", port=443, protocol="HTTPS")
    passthrough["tls"] = {"mode": "Passthrough"}
    answer = ask([*BASE, gateway(listeners=[passthrough]), route("r", [{"backendRefs": [to("web")]}])], scheme="https")
    assert answer["outcome"] == "unsupported" and "Passthrough" in answer["text"]
    istio_gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "classic", "namespace": "istio-system"},
        "spec": {"selector": INGRESS, "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]},
    }
    mixed = ask([*BASE, gateway(), istio_gateway, route("r", [{"backendRefs": [to("web")]}])])
    assert mixed["outcome"] == "unsupported" and "their merge is not modelled" in mixed["text"]


def test_an_istiod_deployed_gateway_configures_the_pods_with_its_name_label():
    objects = [*BASE, gateway(name="edge", ns="apps", service=None), route("r", [{"backendRefs": [to("web")]}], parent={"name": "edge"})]
    labels = {vocab.LABEL_GATEWAY_NAME: "edge"}
    assert ask(objects, gateway_labels=labels)["outcome"] == "route"
    assert explain(objects, {"via": "apps/edge", "host": "a.example.com"})["outcome"] == "route"


# -- lint ----------------------------------------------------------------------------------------
def test_the_rendered_scenario_lints_clean():
    findings = lint(_gateway_api_scenario())
    assert [f for f in findings if f["severity"] != "info"] == []


def test_lint_names_the_route_that_would_not_attach_or_would_answer_500():
    objects = [
        *BASE,
        gateway(listeners=[listener(allowed="Same")]),
        gateway(name="open"),
        route("shut-out", [{"backendRefs": [to("web")]}]),
        route("orphan", [{"backendRefs": [to("web")]}], parent={"name": "nope", "namespace": "istio-system"}),
        route("broken", [{"backendRefs": [to("missing"), to("web", port=1)]}], parent={"name": "open", "namespace": "istio-system"}),
    ]
    errors = [(f["code"], f["object"], f["message"]) for f in lint(objects) if f["severity"] == "error"]
    assert sorted((c, o) for c, o, _m in errors) == [
        ("httproute-backend-invalid", "HTTPRoute apps/broken"),
        ("httproute-backend-invalid", "HTTPRoute apps/broken"),
        ("httproute-not-attached", "HTTPRoute apps/shut-out"),
        ("httproute-parent-missing", "HTTPRoute apps/orphan"),
    ], errors
    messages = "\n".join(m for _c, _o, m in errors)
    assert "http: the listener does not admit routes of namespace apps" in messages
    assert "Gateway istio-system/nope does not exist" in messages
    assert "rules[0].backendRefs[0]: no Service apps/missing" in messages and "rules[0].backendRefs[1]: port 1 is not exposed" in messages


@pytest.mark.parametrize(
    ("allowed", "origin", "allows"),
    [
        ("https://app.example.com", "https://app.example.com", True),
        ("https://app.example.com", "https://other.example.com", False),
        ("*", "https://any.example.com:8443", True),
        ("https://*", "https://x.example.com", True),
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://a.example.org", False),
    ],
)
def test_the_gateway_answers_every_cors_preflight_itself(allowed, origin, allows):
    cors = {"type": "CORS", "cors": {"allowOrigins": [allowed], "allowMethods": ["GET"]}}
    objects = [*BASE, gateway(), route("r", [{"filters": [cors], "backendRefs": [to("web")]}])]
    preflight = ask(objects, method="OPTIONS", headers={"origin": origin, "access-control-request-method": "GET"})
    # Istio writes unmatchedPreflights IGNORE for the Gateway API: no preflight reaches the backend
    assert preflight["outcome"] == "cors_preflight" and preflight["expected"] == {"status": 200, "error": None, "upstream": False}, preflight["text"]
    assert preflight["cors"]["allowed"] is allows
    # an OPTIONS request that is not a preflight goes to the backend
    assert ask(objects, method="OPTIONS", headers={"origin": origin})["outcome"] == "route"


def test_routes_that_write_the_host_differently_share_a_virtual_host_with_catch_alls_last():
    # on a listener for *.example.com, a route without hostnames and one for *.example.com end up
    # in the same Envoy virtual host; Istio concatenates them and moves catch-alls last
    wild = listener(hostname="*.example.com")
    parent = {"name": "gw", "namespace": "istio-system"}
    everything = route("everything", [{"backendRefs": [to("web")]}], hostnames=(), parent=parent)
    specific = route("specific", [{"matches": [prefix("/x")], "backendRefs": [to("api")]}], hostnames=("*.example.com",), parent=parent)
    objects = [*BASE, gateway(listeners=[wild]), everything, specific]
    assert ask(objects, "/x", host="a.example.com")["http_route"] == "apps/specific"
    assert ask(objects, "/y", host="a.example.com")["http_route"] == "apps/everything"
    # two matching routes of the two: their order is not modelled, the prediction says so
    also = route("everything", [{"matches": [prefix("/x")], "backendRefs": [to("web")]}], hostnames=(), parent=parent)
    answer = ask([*BASE, gateway(listeners=[wild]), also, specific], "/x", host="a.example.com")
    assert answer["outcome"] == "unsupported" and "write the host differently" in answer["text"], answer["text"]
