"""Differential test: the static explanation (route_explain) against the real ingress gateway.

Generated Gateways and VirtualServices (seeded, so every run sends the same corpus) are applied
to the cluster one configuration at a time; each request of the corpus goes through the real
Envoy gateway and its answer is compared with the prediction of istio_routing.explain. Every
rule answers with a status of its own (directResponse, or a fault abort on a route), redirects
or routes to httpbin, so the status and Envoy's upstream header tell which rule matched. Matches
use URIs (case-insensitive too), methods, headers present and absent, query parameters and the
authority; routes carry CORS policies, which CORS preflights from allowed and other origins
exercise, and header changes.
"""

import json
import random
import time

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import routing as istio_routing
from tests.integration.kind import probes

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

NAMESPACE = "meshops-agreement"
SEED = 20261125
CONFIGS = 8
REQUESTS_PER_CONFIG = 40
NET = "networking.istio.io/v1"
SELECTOR = {"istio": "ingressgateway"}
HOSTS = ["a.agree.meshops.test", "b.agree.meshops.test", "*.wild.agree.meshops.test"]
REQUEST_HOSTS = ["a.agree.meshops.test", "b.agree.meshops.test", "x.wild.agree.meshops.test", "c.agree.meshops.test"]
PATHS = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/b", "/c", "/r12", "/rx", "/moved"]
STATUSES = [s for s in range(230, 300) if s not in (204, 205)]
HTTPBIN = "httpbin.httpbin.svc.cluster.local"
ORIGIN = "https://app.agree.meshops.test"


def random_match(rng):
    match = {}
    kind = rng.choice(["prefix", "prefix", "exact", "regex", None])
    if kind == "prefix":
        match["uri"] = {"prefix": rng.choice(["/", "/a", "/a/b", "/b"])}
    elif kind == "exact":
        match["uri"] = {"exact": rng.choice(["/a", "/c", "/ab"])}
    elif kind == "regex":
        match["uri"] = {"regex": rng.choice(["/r[0-9]+", "/a.*", "/(b|c)"])}
    if "uri" in match and rng.random() < 0.25:
        match["ignoreUriCase"] = True
    if rng.random() < 0.3:
        match["method"] = {"exact": rng.choice(["GET", "POST", "OPTIONS"])}
    if rng.random() < 0.3:
        match["headers"] = {"x-agree": rng.choice([{"exact": "1"}, {"prefix": "v"}])}
    if rng.random() < 0.15:
        match["withoutHeaders"] = {"x-agree": {"exact": "1"}}
    if rng.random() < 0.2:
        match["queryParams"] = {"q": rng.choice([{"exact": "1"}, {"regex": "[0-9]+"}])}
    if rng.random() < 0.1:
        match["authority"] = {"prefix": rng.choice(["a.", "b."])}
    return match


def random_rule(rng, statuses):
    rule = {}
    alternatives = rng.choice([0, 1, 1, 2])
    if alternatives:
        rule["match"] = [random_match(rng) for _attempt in range(alternatives)]
    action = rng.random()
    if action < 0.7:
        rule["directResponse"] = {"status": statuses.pop()}
    elif action < 0.85:
        rule["redirect"] = {"uri": "/moved", "redirectCode": 301}
    else:
        rule["route"] = [{"destination": {"host": HTTPBIN, "port": {"number": 8000}}}]
        if rng.random() < 0.3:
            rule["fault"] = {"abort": {"httpStatus": statuses.pop(), "percentage": {"value": 100}}}
        if rng.random() < 0.5:
            rule["corsPolicy"] = {"allowOrigins": [{"exact": ORIGIN}], "allowMethods": ["GET", "POST"]}
        if rng.random() < 0.3:
            rule["headers"] = {"response": {"set": {"x-agree-rule": "1"}}}
    return rule


def generate(rng, generation):
    """One configuration: a Gateway, VirtualServices and a sentinel that names the generation."""
    statuses = list(STATUSES)
    rng.shuffle(statuses)
    hosts = sorted(rng.sample(HOSTS, 2))
    sentinel_host = "gen.agree.meshops.test"
    gateway = {
        "apiVersion": NET,
        "kind": "Gateway",
        "metadata": {"name": "agree-gw", "namespace": NAMESPACE},
        "spec": {"selector": SELECTOR, "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [*hosts, sentinel_host]}]},
    }
    services = []
    for index, host in enumerate(hosts):
        vs_host = "x.wild.agree.meshops.test" if host.startswith("*") and rng.random() < 0.5 else host
        services.append(
            {
                "apiVersion": NET,
                "kind": "VirtualService",
                "metadata": {"name": f"agree-{index}", "namespace": NAMESPACE},
                "spec": {"hosts": [vs_host], "gateways": ["agree-gw"], "http": [random_rule(rng, statuses) for _attempt in range(rng.randint(1, 4))]},
            }
        )
    sentinel = {
        "apiVersion": NET,
        "kind": "VirtualService",
        "metadata": {"name": "agree-generation", "namespace": NAMESPACE},
        "spec": {"hosts": [sentinel_host], "gateways": ["agree-gw"], "http": [{"directResponse": {"status": 200, "body": {"string": f"gen-{generation}"}}}]},
    }
    return [gateway, *services], sentinel


def random_request(rng):
    headers = dict(rng.choice([{}, {}, {"x-agree": "1"}, {"x-agree": "v2"}]))
    method = rng.choice(["GET", "GET", "POST", "OPTIONS"])
    if method == "OPTIONS" and rng.random() < 0.8:  # a CORS preflight, from the allowed origin or another
        headers.update({"origin": rng.choice([ORIGIN, "https://other.agree.meshops.test"]), "access-control-request-method": "GET"})
    path = rng.choice(PATHS) + rng.choice(["", "", "?q=1", "?q=x"])
    if rng.random() < 0.15:
        path = path.upper()
    return {"host": rng.choice(REQUEST_HOSTS), "path": path, "method": method, "headers": headers}


def apply(cluster, objects):
    cluster.kubectl("apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def wait_for_generation(generation, deadline=90):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status, _headers, body = probes.ingress_request({"host": "gen.agree.meshops.test", "path": "/", "method": "GET", "headers": {}})
        if status == 200 and body == f"gen-{generation}".encode():
            return
        time.sleep(0.5)
    raise AssertionError(f"the gateway did not receive configuration {generation} within {deadline}s")


def test_static_explanation_agrees_with_the_gateway(cluster):
    rng = random.Random(SEED)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    services = json.loads(cluster.kubectl("get", "services", "-A", "-o", "json"))["items"]
    seed_objects = json.loads(cluster.kubectl("get", "gateways.networking.istio.io,virtualservices.networking.istio.io", "-A", "-o", "json"))["items"]
    seed_objects = [o for o in seed_objects if o["metadata"]["namespace"] != NAMESPACE]
    tally = probes.Tally()
    try:
        for generation in range(CONFIGS):
            objects, sentinel = generate(rng, generation)
            cluster.kubectl("delete", "virtualservices.networking.istio.io", "--all", "-n", NAMESPACE, "--wait=true")
            for obj in objects:  # one by one: Istio orders merged VirtualServices by creation time
                apply(cluster, [obj])
                time.sleep(1.1)
            apply(cluster, [sentinel])
            wait_for_generation(generation)
            index = istio_routing.MeshIndex([*seed_objects, *objects, sentinel, *services])
            for _attempt in range(REQUESTS_PER_CONFIG):
                request = random_request(rng)
                explanation = istio_routing.explain(index, dict(request, gateway_labels=SELECTOR, port=80))
                status, headers, _body = probes.ingress_request(request)
                verdict = istio_routing.agreement(explanation, status=status, headers=headers)
                tally.add(
                    verdict,
                    {
                        "config": generation,
                        "request": request,
                        "predicted": explanation.get("text"),
                        "status": status,
                        "objects": objects,
                    },
                )
    finally:
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    tally.check("agreement", CONFIGS)
