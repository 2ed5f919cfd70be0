"""Generated inputs (Hypothesis): valid Istio routing is never refused, and every one of the
mutations that make it invalid is refused with the route and the field named.

Valid input here is what istiod's validation and the pinned CRD schemas accept: wildcard hosts,
RE2 regular expressions, 50/50 and other weights adding up to 100, FQDN destinations, HTTPS with
a credential, NONE resolution for wildcard egress hosts, retry conditions, durations.
"""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import inputs
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario
from tests.rendering.crd_schema import schema_errors

SETTINGS = scenario.settings()
LABELS = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z")
DOMAINS = st.sampled_from(["example.com", "example.org", "shop.test"])
HOSTS = st.one_of(st.builds("{}.{}".format, LABELS, DOMAINS), st.builds("*.{}".format, DOMAINS))
REGEXES = st.sampled_from(["/v[0-9]+/.*", "^/api/(users|orders)$", "/[a-z]{2,8}", ".*\\.png", "(?i)/login"])
DURATIONS = st.sampled_from(["5s", "1.5s", "250ms", "1m", "1h2m3.5s", "2s"])
RETRY_ON = st.lists(st.sampled_from([*vocab.RETRY_ON, "503", "429"]), min_size=1, max_size=4, unique=True).map(",".join)
DESTINATION_HOSTS = st.one_of(LABELS, st.builds("{}.{}.svc.cluster.local".format, LABELS, LABELS))


@st.composite
def matches(draw):
    match = {}
    kind = draw(st.sampled_from(["prefix", "exact", "regex", None]))
    if kind == "regex":
        match["regex"] = draw(REGEXES)
    elif kind:
        match[kind] = "/" + draw(LABELS)
    if draw(st.booleans()):
        match["method"] = draw(st.sampled_from(vocab.HTTP_METHODS))
    if draw(st.booleans()):
        match["headers"] = {draw(LABELS): {draw(st.sampled_from(["exact", "prefix", "regex"])): draw(st.sampled_from(["a", "v1", "^b.*$"]))}}
    return match


@st.composite
def destinations(draw):
    count = draw(st.integers(1, 3))
    weights = [None] if count == 1 else draw(st.sampled_from({2: [[50, 50], [90, 10], [100, 0]], 3: [[34, 33, 33], [80, 10, 10]]}[count]))
    out = []
    for weight in weights:
        dest = {"host": draw(DESTINATION_HOSTS), "port": draw(st.integers(1, 65535))}
        if weight is not None:
            dest["weight"] = weight
        if draw(st.booleans()):
            dest["subset"] = draw(LABELS)
        out.append(dest)
    return out


@st.composite
def rules(draw):
    rule = {"route": draw(destinations())}
    if draw(st.booleans()):
        rule["match"] = draw(st.lists(matches(), min_size=1, max_size=3))
    if draw(st.booleans()):
        rule["timeout"] = draw(DURATIONS)
    if draw(st.booleans()):
        rule["retries"] = {"attempts": draw(st.integers(0, 5)), "per_try_timeout": draw(DURATIONS), "retry_on": draw(RETRY_ON)}
    if draw(st.booleans()):
        rule["rewrite"] = {"uri": "/" + draw(LABELS)}
    return rule


@st.composite
def ingress_routes(draw):
    names = draw(st.lists(LABELS, min_size=1, max_size=3, unique=True))
    routes = []
    for name in names:
        https = draw(st.booleans())
        gateway = {"name": name + "-gw"}
        if https:
            gateway.update(protocol="HTTPS", tls={"mode": draw(st.sampled_from(["SIMPLE", "MUTUAL"])), "credential_name": name + "-cert"})
        routes.append(
            {
                "name": name,
                "hosts": draw(st.lists(HOSTS, min_size=1, max_size=3, unique=True)),
                "gateway": gateway,
                "http": draw(st.lists(rules(), min_size=1, max_size=3)),
            }
        )
    return routes


@st.composite
def egress_routes(draw):
    names = draw(st.lists(LABELS, min_size=0, max_size=2, unique=True))
    routes = []
    for name in names:
        wildcard = draw(st.booleans())
        route = {
            "name": name,
            "host": ("*." if wildcard else name + ".") + draw(DOMAINS),
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}, {"number": 443, "name": "tls", "protocol": "TLS"}],
            "resolution": "NONE" if wildcard else draw(st.sampled_from(["DNS", "DNS_ROUND_ROBIN"])),
        }
        if wildcard:
            route["egress_gateway"] = False
        routes.append(route)
    return routes


def problems(ingress, egress):
    values = {"traffic_ingress_routes": ingress, "traffic_egress_routes": egress}
    return inputs.problems("traffic", values, {"traffic_settings": SETTINGS})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ingress_routes(), egress_routes())
def test_valid_istio_routing_is_never_refused(ingress, egress):
    assert problems(ingress, egress) == []
    for obj in tm.render(ingress, egress, SETTINGS):
        assert schema_errors(obj) == [], (vocab.object_id(obj), obj)


def _first_rule(routes):
    return routes[0]["http"][0]


MUTATIONS = {
    "regex RE2 lacks": (lambda r: _first_rule(r).__setitem__("match", [{"regex": "/(?=x)"}]), "http[0].match[0].regex"),
    "retry condition": (lambda r: _first_rule(r).__setitem__("retries", {"attempts": 1, "retry_on": "sometimes"}), "http[0].retries.retry_on"),
    "sub-ms duration": (lambda r: _first_rule(r).__setitem__("timeout", "100us"), "http[0].timeout"),
    "port": (lambda r: _first_rule(r)["route"][0].__setitem__("port", 70000), "http[0].route[0].port"),
    "weights": (lambda r: _first_rule(r).__setitem__("route", [{"host": "a", "weight": 60}, {"host": "b", "weight": 30}]), "http[0].route"),
    "unknown key": (lambda r: _first_rule(r).__setitem__("mtach", []), "http[0].mtach"),
    "url as host": (lambda r: r[0].__setitem__("hosts", ["https://a.example.com"]), "hosts[0]"),
    "string hosts": (lambda r: r[0].__setitem__("hosts", "a.example.com"), "hosts"),
    "upper-case name": (lambda r: r[0].__setitem__("name", "Upper"), "name"),
    "header name": (lambda r: _first_rule(r).__setitem__("match", [{"headers": {"X-Up": {"exact": "a"}}}]), "http[0].match[0].headers.X-Up"),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ingress_routes(), egress_routes(), st.sampled_from(sorted(MUTATIONS)))
def test_each_mutation_is_refused_naming_the_route_and_field(ingress, egress, mutation):
    mutate, field = MUTATIONS[mutation]
    bad = copy.deepcopy(ingress)
    mutate(bad)
    found = problems(bad, egress)
    where = f"traffic: traffic_ingress_routes[0] ({bad[0]['name']}): {field}:"
    assert found, mutation
    assert any(p.startswith(where) for p in found), (mutation, found)
