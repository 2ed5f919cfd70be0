"""The same routes as Kubernetes Gateway API objects (traffic_api: gateway_api, issue 13), for real:
the control_plane role installs the Gateway API CRDs of the standard channel (from the
sigs.k8s.io/gateway-api module Istio is built with), the traffic role replaces the Istio objects
by a Gateway of class istio bound to the gateways role's ingress gateway and an HTTPRoute, and the
egress route by the HTTPRoutes of Istio's egress gateway task; istiod programs the gateways from
them. The reference check of SEED.md passes unchanged through 127.0.0.1, the egress request is in
the egress gateway's access log (REGISTRY_ONLY too), a second run changes nothing, a missing
backend is reported from istiod's status conditions, route_explain's predictions agree with the
gateway on generated HTTPRoutes, and both switches between the APIs (there and back, with
prune) run under a bounded load on the reference route without a failed request."""

import copy
import json
import random
import time

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import routing as istio_routing
from meshops_dev.load import Load
from tests.helpers import failed_task, task_results
from tests.integration.kind import probes
from tests.support.kind import INGRESS, recap

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

HOST = probes.HOST
HTTPBIN = copy.deepcopy(probes.SEED_ROUTE["http"][0]["route"])
GATEWAY_API = {"control_plane_gateway_api_crds": True, "traffic_api": "gateway_api"}
TAGS = ("control_plane", "traffic", "verify")
SWITCHES = {}  # the load's summary of each switch between the APIs
SWITCHED_BACK = []  # the last test's proof that the cluster is back on the Istio API

# the reference route plus features the Gateway API writes as filters
ROUTE = dict(
    copy.deepcopy(probes.SEED_ROUTE),
    http=[
        {"name": "moved", "match": [{"prefix": "/old"}], "redirect": {"uri": "/status/200", "code": 302}},
        {"name": "renamed", "match": [{"exact": "/renamed"}], "rewrite": {"uri": "/status/418"}, "route": HTTPBIN},
        {
            "name": "decorated",
            "match": [{"prefix": "/anything", "headers": {"x-variant": {"exact": "b"}}}],
            "headers": {"request": {"set": {"x-meshops": "set-by-the-gateway"}}, "response": {"add": {"x-served-by": "meshops"}}},
            "route": HTTPBIN,
            "timeout": "5s",
        },
        *copy.deepcopy(probes.SEED_ROUTE["http"]),
    ],
)
UPSTREAM = "x-envoy-upstream-service-time"
FEATURE_PROBES = [
    {
        "name": "redirect",
        "host": HOST,
        "path": "/old/x",
        "expect": {"status": 302, "headers": {"location": f"http://{HOST}/status/200"}, "headers_absent": [UPSTREAM]},
    },
    {"name": "rewrite of the whole path", "host": HOST, "path": "/renamed", "expect": {"status": 418, "headers_present": [UPSTREAM]}},
    {
        "name": "header match and header changes",
        "host": HOST,
        "path": "/anything/x",
        "headers": {"x-variant": "b"},
        "expect": {"status": 200, "headers": {"x-served-by": "meshops"}, "json": [{"query": 'headers."X-Meshops"[0]', "equals": "set-by-the-gateway"}]},
    },
    {"name": "header match, other value", "host": HOST, "path": "/anything/x", "headers": {"x-variant": "a"}, "expect": {"status": 404}},
]


def objects_of(cluster, kinds, namespace="httpbin"):
    return json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json"))["items"]


def condition(obj, kind, parent=None):
    """The status of condition ``kind`` of a Gateway, or of an HTTPRoute for one parent."""
    if parent is None:
        conditions = (obj.get("status") or {}).get("conditions") or []
    else:
        parents = [p for p in (obj.get("status") or {}).get("parents") or [] if p["parentRef"]["name"] == parent]
        conditions = parents[0].get("conditions") or [] if parents else []
    return next((c["status"] for c in conditions if c["type"] == kind), None)


def switch_summary(what, switch):
    return f"switch {what}: {switch['failed']} failed of {switch['sent']} requests in {switch['seconds']} s {switch['reasons']}"


def under_load(run):
    """``run()`` while a bounded load (20 requests/s, loopback) asks for the reference route;
    returns its result and the load's summary."""
    _address, port = INGRESS.split(":")
    with Load(port, HOST, path="/status/200", max_seconds=900) as load:
        result = run()
    return result, load.summary()


@pytest.fixture(name="gateway_api", scope="module")
def fixture_gateway_api(cluster):
    # the switch from the Istio API (the converged scenario) to the Gateway API, under load
    (rc, output), switch = under_load(lambda: cluster.site(dict(GATEWAY_API, verify_egress=True), tags=TAGS))
    print("\n" + switch_summary("from the Istio API to the Gateway API", switch))
    SWITCHES["to the Gateway API"] = switch
    yield rc, output
    # back to the Istio API (the CRDs stay: control_plane_gateway_api_crds only adds them), unless
    # the module's last test did it and proved it
    if not SWITCHED_BACK:
        cluster.site({"verify_egress": False}, tags=("traffic", "verify"))


def test_site_yml_installs_the_crds_and_applies_the_routes_as_gateway_api_objects(cluster, gateway_api):
    rc, output = gateway_api
    assert rc == 0, recap(output)
    # the reference route answered throughout the switch (the new objects are applied before
    # the old ones are pruned)
    switch = SWITCHES["to the Gateway API"]
    assert switch["sent"] > 0 and switch["failed"] == 0, switch
    crds = json.loads(cluster.kubectl("get", "crd", "-o", "json"))["items"]
    bundles = {
        c["metadata"]["name"]: c["metadata"]["annotations"].get("gateway.networking.k8s.io/bundle-version")
        for c in crds
        if c["spec"]["group"] == "gateway.networking.k8s.io"
    }
    assert {"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io"} <= set(bundles)
    assert set(bundles.values()) == {"v1.6.0"}, bundles
    # the Istio objects of the routes were replaced (the ServiceEntry belongs to both APIs)
    assert objects_of(cluster, "virtualservices.networking.istio.io,gateways.networking.istio.io,destinationrules.networking.istio.io") == []
    routes = {o["metadata"]["name"] for o in objects_of(cluster, "httproutes.gateway.networking.k8s.io")}
    assert routes == {"httpbin", "direct-cnn-to-egress-gateway", "forward-cnn-from-egress-gateway"}


def test_istiod_accepts_the_gateways_and_routes(cluster, gateway_api):
    # beside the gateway Services they are bound to
    gateways = {g["metadata"]["name"]: g for g in objects_of(cluster, "gateways.gateway.networking.k8s.io", namespace="istio-system")}
    assert set(gateways) == {"httpbin-gateway", "istio-egressgateway"}
    for name, gateway in gateways.items():
        assert gateway["spec"]["gatewayClassName"] == "istio"
        assert condition(gateway, "Accepted") == "True", (name, gateway.get("status"))
        assert condition(gateway, "Programmed") == "True", (name, gateway.get("status"))
    routes = {r["metadata"]["name"]: r for r in objects_of(cluster, "httproutes.gateway.networking.k8s.io")}
    for name, parent in (("httpbin", "httpbin-gateway"), ("forward-cnn-from-egress-gateway", "istio-egressgateway"), ("direct-cnn-to-egress-gateway", "cnn")):
        assert condition(routes[name], "Accepted", parent) == "True", (name, routes[name].get("status"))
        # the backend in istio-system is allowed by the ReferenceGrant
        assert condition(routes[name], "ResolvedRefs", parent) == "True", (name, routes[name].get("status"))


def test_the_reference_check_passes_unchanged(cluster, gateway_api):
    rc, result = cluster.probe(probes.SEED, retries=10, delay=1)
    assert rc == 0, result.get("msg")
    assert {p["name"]: p["status"] for p in result["probes"]} == {p["name"]: p["expect"]["status"] for p in probes.SEED}


def test_the_egress_request_went_through_the_egress_gateway(gateway_api):
    _rc, output = gateway_api
    results = [r for name, r in task_results(output, "kind-meshops") if name.startswith("meshops.istio.verify : Send mesh traffic")]
    assert results and not results[0].get("failed"), results
    # the request to the external host passed when the egress gateway's access log showed it,
    # routed to the host's cluster
    request = results[0]["requests"][0]
    assert request["passed"] and request["url"] == "http://edition.cnn.com/", request
    assert request["seen_in"].startswith("istio-system/istio-egressgateway-"), request
    assert "outbound|80||edition.cnn.com" in request["log_line"], request


def test_registry_only_lets_the_routed_host_out_and_refuses_the_others(cluster, gateway_api):
    extra = dict(GATEWAY_API, control_plane_outbound_traffic_policy="REGISTRY_ONLY", verify_blocked_hosts=[probes.UNREGISTERED], verify_egress=True)
    try:
        # verify proves the egress request in the egress gateway's log and the unregistered host refused
        rc, output = cluster.site(extra, tags=("control_plane", "verify"))
        assert rc == 0, recap(output)
        assert probes.client_curl(cluster, f"http://{probes.UNREGISTERED}/status/200") != "200"
        assert probes.client_curl(cluster, "http://edition.cnn.com/status/200") == "200"
    finally:
        rc, output = cluster.site(dict(GATEWAY_API, verify_egress=False), tags=("control_plane",))
        assert rc == 0, recap(output)


def test_a_second_run_changes_nothing(cluster, gateway_api):
    rc, output = cluster.site(dict(GATEWAY_API, verify_egress=False), tags=TAGS)
    assert rc == 0 and recap(output)["changed"] == 0, recap(output)


def test_a_route_to_a_missing_backend_is_reported_from_its_status_conditions(cluster, gateway_api):
    broken = dict(copy.deepcopy(probes.SEED_ROUTE), http=[{"match": [{"prefix": "/status"}], "route": [{"host": "nothere", "port": 8000}]}])
    # the lint would refuse it before anything is applied (httproute-backend-invalid); without
    # the lint, istiod's status conditions catch it
    rc, output = cluster.site(dict(GATEWAY_API, traffic_ingress_routes=[broken], traffic_lint=False, verify_egress=False), tags=("traffic",))
    assert rc != 0
    name, result = failed_task(output, "kind-meshops")
    assert name == "meshops.istio.traffic : Stop when istiod refused a Gateway or an HTTPRoute", (name, result.get("msg"))
    assert "HTTPRoute httpbin/httpbin: parent Gateway istio-system/httpbin-gateway: ResolvedRefs is False (BackendNotFound" in result["msg"], result["msg"]


def test_filters_answer_through_the_gateway(cluster, gateway_api):
    rc, output = cluster.site(
        dict(GATEWAY_API, traffic_ingress_routes=[ROUTE], verify_ingress_probes=[*probes.SEED, *FEATURE_PROBES], verify_egress=False),
        tags=("traffic", "verify"),
    )
    assert rc == 0, recap(output)
    rc, result = cluster.probe(FEATURE_PROBES, retries=10, delay=1)
    assert rc == 0, result.get("msg")


# -- a Gateway that istiod deploys itself ---------------------------------------------------------
EDGE = "meshops-edge"
EDGE_HOST = "edge.meshops.test"


def istio_proxy(pod):
    """The istio-proxy container of a pod (a native sidecar is an init container)."""
    spec = pod["spec"]
    return next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == "istio-proxy")


def test_a_gateway_istiod_deploys_runs_with_the_same_proxy_settings(cluster, gateway_api):
    # no spec.addresses: istiod deploys <name>-istio (Deployment and Service); ClusterIP, as kind
    # has no load balancer
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": EDGE, "namespace": "httpbin", "annotations": {"networking.istio.io/service-type": "ClusterIP"}},
        "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": EDGE_HOST}]},
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": EDGE, "namespace": "httpbin"},
        "spec": {
            "parentRefs": [{"name": EDGE}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/status"}}], "backendRefs": [{"name": "httpbin", "port": 8000}]}],
        },
    }
    try:
        cluster.kubectl("apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": [gateway, route]}))
        probes.wait_for(
            lambda: cluster.kubectl("-n", "httpbin", "get", "deployment", f"{EDGE}-istio", "--ignore-not-found", "-o", "name").strip(),
            "istiod to deploy the gateway",
            timeout=120,
            interval=1,
        )
        cluster.kubectl("-n", "httpbin", "rollout", "status", f"deployment/{EDGE}-istio", "--timeout=180s", timeout=200)
        probes.wait_for(
            lambda: (
                condition(json.loads(cluster.kubectl("-n", "httpbin", "get", "gateways.gateway.networking.k8s.io", EDGE, "-o", "json")), "Programmed") == "True"
            ),
            "the Gateway to be Programmed",
            timeout=120,
            interval=1,
        )
        # the same proxy image, pull policy and proxy settings as the sidecars (istiod's values:
        # the upstream Envoy profile of the air-gapped build), and Envoy accepted its configuration
        edge = json.loads(cluster.kubectl("-n", "httpbin", "get", "pods", "-l", f"gateway.networking.k8s.io/gateway-name={EDGE}", "-o", "json"))["items"]
        sidecar = json.loads(cluster.kubectl("-n", "httpbin", "get", "pods", "-l", "app=httpbin", "-o", "json"))["items"]
        assert edge and sidecar
        assert istio_proxy(edge[0])["image"] == istio_proxy(sidecar[0])["image"], (istio_proxy(edge[0])["image"], istio_proxy(sidecar[0])["image"])
        assert istio_proxy(edge[0]).get("imagePullPolicy") == istio_proxy(sidecar[0]).get("imagePullPolicy")
        assert all(s["ready"] for s in edge[0]["status"]["containerStatuses"]), edge[0]["status"]
        # through it, from the mesh
        url = f"http://{EDGE}-istio.httpbin.svc.cluster.local/status/200"
        probes.wait_for(
            lambda: probes.client_curl(cluster, url, host=EDGE_HOST) == "200", "the istiod-deployed gateway to route the request", timeout=60, interval=1
        )
        assert probes.client_curl(cluster, url.replace("/status/200", "/headers"), host=EDGE_HOST) == "404"
        # the static explanation knows the Gateway and its pods
        live = json.loads(
            cluster.kubectl("get", "gateways.gateway.networking.k8s.io,httproutes.gateway.networking.k8s.io,services", "-n", "httpbin", "-o", "json")
        )["items"]
        explained = istio_routing.explain(live, {"via": f"httpbin/{EDGE}", "host": EDGE_HOST, "path": "/status/200"})
        assert explained["outcome"] == "route" and explained["http_route"] == f"httpbin/{EDGE}", explained["text"]
    finally:
        cluster.kubectl(
            "-n", "httpbin", "delete", "httproutes.gateway.networking.k8s.io,gateways.gateway.networking.k8s.io", EDGE, "--ignore-not-found", check=False
        )


# -- the static explanation against the gateway (the Gateway API's rules) -------------------------
AGREE_SEED = 20261202
AGREE_CONFIGS = 6
AGREE_REQUESTS = 40
AGREE_HOSTS = ["a.agree.meshops.test", "b.agree.meshops.test", "*.wild.agree.meshops.test"]
AGREE_REQUEST_HOSTS = ["a.agree.meshops.test", "b.agree.meshops.test", "x.wild.agree.meshops.test", "c.agree.meshops.test"]
AGREE_PATHS = ["/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/b", "/c", "/r12", "/rx", "/A"]
ORIGIN = "https://app.agree.meshops.test"
RULE_HEADER = "x-agree-rule"
LIVE_KINDS = ",".join(
    (
        "httproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "referencegrants.gateway.networking.k8s.io",
        "serviceentries.networking.istio.io",
    )
)
PARENT = {"name": "httpbin-gateway", "namespace": "istio-system", "sectionName": "http"}


def random_http_match(rng):
    match = {}
    kind = rng.choice(["PathPrefix", "PathPrefix", "Exact", "RegularExpression", None])
    if kind == "PathPrefix":
        match["path"] = {"type": kind, "value": rng.choice(["/", "/a", "/a/", "/a/b", "/b"])}
    elif kind == "Exact":
        match["path"] = {"type": kind, "value": rng.choice(["/a", "/c", "/ab", "/a/b"])}
    elif kind == "RegularExpression":
        match["path"] = {"type": kind, "value": rng.choice(["/r[0-9]+", "/a.*", "/(b|c)"])}
    if rng.random() < 0.3:
        match["method"] = rng.choice(["GET", "POST", "OPTIONS"])
    if rng.random() < 0.3:
        match["headers"] = [rng.choice([{"name": "x-agree", "value": "1"}, {"name": "x-agree", "type": "RegularExpression", "value": "v[0-9]"}])]
    if rng.random() < 0.2:
        match["queryParams"] = [rng.choice([{"name": "q", "value": "1"}, {"name": "q", "type": "RegularExpression", "value": "[0-9]+"}])]
    return match


def random_http_rule(rng, route, index):
    rule = {}
    alternatives = rng.choice([0, 1, 1, 2])
    if alternatives:
        rule["matches"] = [random_http_match(rng) for _attempt in range(alternatives)]
    action = rng.random()
    if action < 0.35:  # a redirect whose Location names the rule
        rule["filters"] = [
            {
                "type": "RequestRedirect",
                "requestRedirect": {"statusCode": rng.choice([301, 302]), "path": {"type": "ReplaceFullPath", "replaceFullPath": f"/to/{route}/{index}"}},
            }
        ]
    elif action < 0.85:  # to httpbin, the answer names the rule
        rule["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": RULE_HEADER, "value": f"{route}.{index}"}]}}]
        if rng.random() < 0.4:
            rule["filters"].append({"type": "CORS", "cors": {"allowOrigins": [ORIGIN], "allowMethods": ["GET", "POST"]}})
        rule["backendRefs"] = [{"name": "httpbin", "port": 8000}]
    else:  # what Istio answers 500 for
        rule["backendRefs"] = rng.choice([[{"name": "nothere", "port": 8000}], [{"name": "httpbin", "port": 8000, "weight": 0}], []])
    return rule


def generate_http_routes(rng, generation):
    routes = []
    for index, host in enumerate(sorted(rng.sample(AGREE_HOSTS, 2))):
        hostname = "x.wild.agree.meshops.test" if host.startswith("*") and rng.random() < 0.5 else host
        name = f"agree-{index}"
        rules = [random_http_rule(rng, name, i) for i in range(rng.randint(2, 5))]
        routes.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": "httpbin"},
                "spec": {"parentRefs": [PARENT], "hostnames": [hostname], "rules": rules},
            }
        )
    sentinel = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "agree-generation", "namespace": "httpbin"},
        "spec": {
            "parentRefs": [PARENT],
            "hostnames": ["gen.agree.meshops.test"],
            "rules": [
                {"filters": [{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": f"/gen-{generation}"}}}]}
            ],
        },
    }
    return routes, sentinel


def random_http_request(rng, routes):
    """Mostly for a host of the configuration's routes, sometimes for another."""
    hosts = [h.replace("*", "x") for r in routes for h in r["spec"]["hostnames"]]
    host = rng.choice(hosts) if rng.random() < 0.85 else rng.choice(AGREE_REQUEST_HOSTS)
    headers = dict(rng.choice([{}, {}, {"x-agree": "1"}, {"x-agree": "v2"}]))
    method = rng.choice(["GET", "GET", "POST", "OPTIONS"])
    if method == "OPTIONS" and rng.random() < 0.8:
        headers.update({"origin": rng.choice([ORIGIN, "https://other.agree.meshops.test"]), "access-control-request-method": "GET"})
    path = rng.choice(AGREE_PATHS) + rng.choice(["", "", "?q=1", "?q=x"])
    return {"host": host, "path": path, "method": method, "headers": headers}


def test_static_explanation_agrees_with_the_gateway_api_gateway(cluster, gateway_api):
    rng = random.Random(AGREE_SEED)
    services = json.loads(cluster.kubectl("get", "services", "-A", "-o", "json"))["items"]
    tally = probes.Tally()
    try:
        for generation in range(AGREE_CONFIGS):
            routes, sentinel = generate_http_routes(rng, generation)
            cluster.kubectl("delete", "httproutes.gateway.networking.k8s.io", "-n", "httpbin", "-l", "meshops-agreement", "--wait=true")
            for route in routes:  # one by one: equal precedence goes to the oldest route
                route["metadata"]["labels"] = {"meshops-agreement": "true"}
                cluster.kubectl("apply", "-f", "-", input_text=json.dumps(route))
                time.sleep(1.1)
            sentinel["metadata"]["labels"] = {"meshops-agreement": "true"}
            cluster.kubectl("apply", "-f", "-", input_text=json.dumps(sentinel))
            probes.wait_for(
                lambda g=generation: (
                    probes.ingress_request({"host": "gen.agree.meshops.test", "path": "/", "method": "GET", "headers": {}})[1]
                    .get("location", "")
                    .endswith(f"/gen-{g}")
                ),
                "the gateway to receive the new routes",
                timeout=120,
                interval=1,
            )
            # the objects as the cluster holds them (creation times, defaults)
            live = json.loads(cluster.kubectl("get", LIVE_KINDS, "-A", "-o", "json"))["items"]
            index = istio_routing.MeshIndex([*live, *services])
            for _attempt in range(AGREE_REQUESTS):
                request = random_http_request(rng, routes)
                explanation = istio_routing.explain(index, dict(request, via="istio-system/httpbin-gateway", port=80))
                status, headers, _body = probes.ingress_request(request)
                verdict = istio_routing.agreement(explanation, status=status, headers=headers)
                if verdict and explanation["outcome"] == "route":
                    # which rule answered: the header it sets
                    verdict = headers.get(RULE_HEADER) == f"{explanation['http_route'].split('/')[1]}.{explanation['rule']}"
                tally.add(
                    verdict,
                    {
                        "config": generation,
                        "request": request,
                        "predicted": explanation["text"],
                        "status": status,
                        "rule": headers.get(RULE_HEADER),
                        "location": headers.get("location"),
                        "routes": routes,
                    },
                )
    finally:
        cluster.kubectl("delete", "httproutes.gateway.networking.k8s.io", "-n", "httpbin", "-l", "meshops-agreement", "--wait=false", check=False)
    tally.check("Gateway API agreement", AGREE_CONFIGS)


def test_switching_back_to_the_istio_api_replaces_the_gateway_api_objects(cluster, gateway_api):
    # from the routes of the filters' test (the reference route among them), under load
    (rc, output), switch = under_load(lambda: cluster.site({"verify_egress": False}, tags=("traffic", "verify")))
    print("\n" + switch_summary("from the Gateway API back to the Istio API", switch))
    assert rc == 0, recap(output)
    assert switch["sent"] > 0 and switch["failed"] == 0, switch
    assert objects_of(cluster, "httproutes.gateway.networking.k8s.io") == []
    assert objects_of(cluster, "referencegrants.gateway.networking.k8s.io,gateways.gateway.networking.k8s.io", namespace="istio-system") == []
    assert {o["metadata"]["name"] for o in objects_of(cluster, "virtualservices.networking.istio.io")} == {"httpbin", "direct-cnn-through-egress-gateway"}
    SWITCHED_BACK.append(True)
