"""The everyday routing features of the data model (issue 11): each one rendered as Istio writes
it, refused with the field named where Istio (or Envoy) would refuse it, explained and linted."""

import base64
import copy

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import lint, routing
from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as tm
from tests.fixtures import scenario

SETTINGS = scenario.settings()
SEED_ROUTE = scenario.ingress_routes()[0]
HTTPBIN = [{"host": "httpbin", "port": 8000}]
WHERE = "traffic_ingress_routes[0] (httpbin): "


def with_rules(*rules):
    route = copy.deepcopy(SEED_ROUTE)
    route["http"] = [copy.deepcopy(r) for r in rules]
    return [route]


def rendered_rules(*rules):
    objects = tm.render(with_rules(*rules), [], SETTINGS)
    return next(o for o in objects if o["kind"] == "VirtualService")["spec"]["http"]


def problems(*rules):
    return tm.validate(with_rules(*rules), [], SETTINGS)


@pytest.mark.parametrize(
    ("rule", "istio"),
    [
        (
            {"match": [{"prefix": "/old", "ignore_uri_case": True, "query_params": {"v": {"exact": "1"}}}], "redirect": {"uri": "/new"}},
            {
                "match": [{"uri": {"prefix": "/old"}, "ignoreUriCase": True, "queryParams": {"v": {"exact": "1"}}}],
                "redirect": {"uri": "/new", "redirectCode": 301},
            },
        ),
        (
            {"redirect": {"authority": "b.example.com", "scheme": "https", "port": 8443, "code": 308}},
            {"redirect": {"authority": "b.example.com", "scheme": "https", "port": 8443, "redirectCode": 308}},
        ),
        ({"direct_response": {"status": 418, "body": "tea"}}, {"directResponse": {"status": 418, "body": {"string": "tea"}}}),
        ({"direct_response": {"status": 204}}, {"directResponse": {"status": 204}}),
        (
            {"fault": {"delay": {"fixed": "1s"}, "abort": {"status": 503, "percentage": 10}}, "route": HTTPBIN},
            {
                "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 100}}, "abort": {"httpStatus": 503, "percentage": {"value": 10}}},
                "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}],
            },
        ),
        (
            {
                "match": [{"prefix": "/a", "authority": {"exact": "x.example.com"}, "without_headers": {"x-b": {"prefix": "1"}}}],
                "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-c"]}, "response": {"add": {"x-d": "%HOSTNAME%"}}},
                "route": [{"host": "httpbin", "headers": {"response": {"set": {"x-e": "100%%"}}}}],
            },
            {
                "match": [{"uri": {"prefix": "/a"}, "authority": {"exact": "x.example.com"}, "withoutHeaders": {"x-b": {"prefix": "1"}}}],
                "route": [{"destination": {"host": "httpbin"}, "headers": {"response": {"set": {"x-e": "100%%"}}}}],
                "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-c"]}, "response": {"add": {"x-d": "%HOSTNAME%"}}},
            },
        ),
        (
            {
                "route": HTTPBIN,
                "mirror": {"host": "httpbin-v2", "port": 8000, "subset": "v2"},
                "mirror_percentage": 12.5,
                "cors_policy": {"allow_origins": [{"exact": "https://a.example.com"}], "allow_methods": ["GET"], "max_age": "24h", "allow_credentials": False},
            },
            {
                "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}],
                "mirror": {"host": "httpbin-v2", "subset": "v2", "port": {"number": 8000}},
                "mirrorPercentage": {"value": 12.5},
                "corsPolicy": {"allowOrigins": [{"exact": "https://a.example.com"}], "allowMethods": ["GET"], "maxAge": "24h", "allowCredentials": False},
            },
        ),
    ],
    ids=["redirect-uri", "redirect-authority-scheme-port", "direct-response", "direct-response-no-body", "fault", "headers-and-matches", "mirror-cors"],
)
def test_each_feature_renders_as_istio_writes_it(rule, istio):
    assert rendered_rules(rule) == [istio]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"match": [{"prefix": "/x"}]}, "http[0].route: needs at least one destination"),
        ({"redirect": {"uri": "/b"}, "route": HTTPBIN}, "http[0]: give only one of route, redirect or direct_response (found route, redirect)"),
        ({"redirect": {"uri": "/b"}, "direct_response": {"status": 200}}, "(found redirect, direct_response)"),
        ({"redirect": {"code": 301}}, "http[0].redirect: must set uri, authority, scheme or port"),
        ({"redirect": {"uri": "/b", "code": 200}}, "http[0].redirect.code: 200 must be a redirect status from 300 to 399"),
        ({"redirect": {"uri": "b"}}, "http[0].redirect.uri: 'b' must start with '/'"),
        ({"redirect": {"scheme": "ftp"}}, "http[0].redirect.scheme: 'ftp' is not one of http, https"),
        ({"redirect": {"uri": "/b"}, "fault": {"abort": {"status": 503}}}, "http[0].fault: does not apply to a rule that answers with a redirect"),
        ({"direct_response": {"status": 200}, "rewrite": {"uri": "/"}}, "http[0].rewrite: does not apply to a rule that answers with a direct_response"),
        ({"direct_response": {"status": 200}, "mirror": {"host": "httpbin"}}, "http[0].mirror: copies requests that are routed"),
        ({"direct_response": {"status": 600}}, "http[0].direct_response.status: 600 must be an HTTP status from 200 to 599"),
        ({"direct_response": {"status": 200, "body": "x" * (1024 * 1024 + 1)}}, "Istio refuses direct responses of 1 MiB or more"),
        ({"direct_response": {"body": "x"}}, "http[0].direct_response.status: is required"),
        ({"route": HTTPBIN, "fault": {}}, "http[0].fault: must set delay and/or abort"),
        ({"route": HTTPBIN, "fault": {"delay": {"fixed": "1 second"}}}, "http[0].fault.delay.fixed:"),
        ({"route": HTTPBIN, "fault": {"abort": {"status": 503, "percentage": 101}}}, "http[0].fault.abort.percentage: 101 must be 0 or from 0.0001 to 100"),
        ({"route": HTTPBIN, "fault": {"abort": {"status": 503, "percentage": 0.00001}}}, "1e-05 must be 0 or from 0.0001 to 100"),
        ({"route": HTTPBIN, "fault": {"abort": {"percentage": 5}}}, "http[0].fault.abort.status: is required"),
        ({"route": HTTPBIN, "headers": {}}, "http[0].headers: must set, add or remove at least one request or response header"),
        ({"route": HTTPBIN, "headers": {"request": {"set": {"X-Up": "1"}}}}, "http[0].headers.request.set.X-Up: 'X-Up': header names must be lower case"),
        ({"route": HTTPBIN, "headers": {"request": {"set": {":path": "/"}}}}, "(no ':' pseudo-headers)"),
        ({"route": HTTPBIN, "headers": {"request": {"set": {"host": "b"}}}}, "the Host header cannot be changed here: use rewrite.authority"),
        ({"route": HTTPBIN, "headers": {"response": {"remove": ["host"]}}}, "http[0].headers.response.remove: the Host header cannot be changed here"),
        ({"route": HTTPBIN, "headers": {"response": {"set": {"x-a": "50%"}}}}, "'50%': a literal % is written %%"),
        (
            {"route": HTTPBIN, "headers": {"response": {"set": {"x-a": 5}}}},
            "http[0].headers.response.set.x-a: must be a string, got an integer 5 (quote numbers",
        ),
        ({"route": HTTPBIN, "headers": {"response": {"set": {"x-a": "a\nb"}}}}, "contains a control character"),
        ({"route": [{"host": "httpbin", "headers": {"request": {"add": {"x-a": "%"}}}}]}, "http[0].route[0].headers.request.add.x-a: '%'"),
        ({"route": HTTPBIN, "mirror_percentage": 10}, "http[0].mirror_percentage: needs a mirror"),
        ({"route": HTTPBIN, "mirror": {"host": "b"}, "mirror_percentage": 150}, "http[0].mirror_percentage: 150 must be 0 or from 0.0001 to 100"),
        ({"route": HTTPBIN, "mirror": {"port": 80}}, "http[0].mirror.host: is required"),
        ({"route": HTTPBIN, "mirror": {"host": "b", "subset": "V1"}}, "http[0].mirror.subset:"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": []}}, "http[0].cors_policy.allow_origins: needs at least one origin"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"glob": "*"}]}}, "http[0].cors_policy.allow_origins[0]: must be exactly one of"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"exact": ""}]}}, "the origin to match must not be empty"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"regex": "(?=a)"}]}}, "http[0].cors_policy.allow_origins[0].regex:"),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"exact": "a"}], "allow_methods": ["FETCH"]}}, "allow_methods[0]: 'FETCH' is not one of"),
        (
            {"route": HTTPBIN, "cors_policy": {"allow_origins": [{"exact": "a"}], "allow_headers": ["a b"]}},
            "allow_headers[0]: 'a b' is not an HTTP header name",
        ),
        ({"route": HTTPBIN, "cors_policy": {"allow_origins": [{"exact": "a"}], "max_age": "500ms"}}, "Istio takes whole seconds only"),
        ({"route": HTTPBIN, "cors_policy": {"allow_methods": ["GET"]}}, "http[0].cors_policy.allow_origins: is required"),
        ({"match": [{"query_params": {"q": {"prefix": "a"}}}], "route": HTTPBIN}, "query_params.q: must be exactly one of {exact: v} or {regex: v}"),
        ({"match": [{"query_params": {}}], "route": HTTPBIN}, "http[0].match[0].query_params: must map names to {exact|regex: value}"),
        ({"match": [{"without_headers": {"X-A": {"exact": "1"}}}], "route": HTTPBIN}, "without_headers.X-A: header names must be lower case"),
        ({"match": [{"authority": "a.example.com"}], "route": HTTPBIN}, "http[0].match[0].authority: must be a mapping"),
        ({"match": [{"ignore_uri_case": True}], "route": HTTPBIN}, "http[0].match[0].ignore_uri_case: applies to a URI match"),
        ({"route": HTTPBIN, "redirecct": {"uri": "/"}}, "http[0].redirecct: unknown option"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(rule, message):
    found = problems(rule)
    assert any(message in p for p in found), found
    assert all(p.startswith(WHERE) for p in found), found


def test_the_reference_defaults_still_render_six_objects():
    assert len(tm.render(scenario.ingress_routes(), scenario.egress_routes(), SETTINGS)) == 6


def explain(rules, request, extra_objects=()):
    objects = tm.render(with_rules(*rules), [], SETTINGS)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "httpbin"}, "spec": {"ports": [{"port": 8000}]}}
    base = {"via": "httpbin/httpbin-gateway", "host": "httpbin.example.com"}
    return routing.explain(routing.MeshIndex([*objects, service, *extra_objects]), dict(base, **request))


CORS = {"allow_origins": [{"prefix": "https://app."}], "allow_methods": ["GET"]}
PREFLIGHT = {"method": "OPTIONS", "path": "/status/200", "headers": {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}}


def test_a_preflight_from_an_allowed_origin_is_answered_by_the_proxy():
    found = explain([{"match": [{"prefix": "/status"}], "route": HTTPBIN, "cors_policy": CORS}], PREFLIGHT)
    assert found["outcome"] == "cors_preflight"
    assert found["expected"] == {"status": 200, "error": None, "upstream": False}
    assert found["cors"] == {"preflight": True, "origin": "https://app.example.com"}


@pytest.mark.parametrize(
    "request_change",
    [
        {"headers": {"Origin": "https://other.example.com", "Access-Control-Request-Method": "GET"}},
        {"headers": {"Origin": "https://app.example.com"}},  # no Access-Control-Request-Method: not a preflight
        {"method": "GET"},
    ],
    ids=["other-origin", "not-a-preflight", "not-options"],
)
def test_other_requests_reach_the_service(request_change):
    found = explain([{"match": [{"prefix": "/status"}], "route": HTTPBIN, "cors_policy": CORS}], dict(PREFLIGHT, **request_change))
    assert found["outcome"] == "route"
    assert found["expected"]["upstream"] is True


def test_a_fault_abort_answers_before_the_cors_filter():
    """Istio puts the fault filter before the CORS filter in the HTTP filter chain."""
    rule = {"match": [{"prefix": "/status"}], "route": HTTPBIN, "cors_policy": CORS, "fault": {"abort": {"status": 503}}}
    assert explain([rule], PREFLIGHT)["outcome"] == "abort"


def test_header_changes_and_mirrors_are_reported():
    rule = {
        "route": [{"host": "httpbin", "port": 8000, "headers": {"request": {"remove": ["x-b"]}}}],
        "headers": {"response": {"set": {"x-a": "1"}}},
        "mirror": {"host": "httpbin", "port": 8000},
        "mirror_percentage": 5,
    }
    found = explain([rule], {"path": "/anything"})
    assert found["header_actions"] == ["set response x-a: 1", "remove request x-b (to httpbin)"]
    assert found["mirror"] == {"host": "httpbin", "percentage": 5}
    assert any("mirrors 5% of its requests to httpbin" in note for note in found["notes"])


def test_query_parameters_and_case_insensitive_uris_are_matched_as_envoy_does():
    rule = {"match": [{"prefix": "/old", "ignore_uri_case": True, "query_params": {"v": {"exact": "1"}}}], "redirect": {"uri": "/new", "code": 302}}
    # Envoy keeps the request's query in the new location (unless the new path has its own)
    assert explain([rule], {"path": "/OLD/x?v=1"})["redirect"] == {"status": 302, "location": "http://httpbin.example.com/new?v=1"}
    rule["redirect"]["uri"] = "/new?from=old"
    assert explain([rule], {"path": "/old?v=1"})["redirect"]["location"] == "http://httpbin.example.com/new?from=old"
    assert explain([rule], {"path": "/old?v=2"})["outcome"] == "no_route"
    assert explain([rule], {"path": "/old?V=1"})["outcome"] == "no_route"  # parameter names are case-sensitive


def lint_codes(rules, extra_objects=()):
    objects = tm.render(with_rules(*rules), [], SETTINGS)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "httpbin"}, "spec": {"ports": [{"port": 8000}]}}
    return [(f["severity"], f["code"]) for f in lint.lint([*objects, service, *extra_objects]) if f["object"] == "VirtualService httpbin/httpbin"]


def test_lint_reports_a_mirror_to_the_routed_destination():
    assert lint_codes([{"route": HTTPBIN, "mirror": {"host": "httpbin", "port": 8000}}]) == [("warning", "mirror-same-destination")]


def test_lint_reports_a_mirror_to_a_service_that_does_not_exist():
    assert lint_codes([{"route": HTTPBIN, "mirror": {"host": "httpbin-v2", "port": 8000}}]) == [("error", "mirror-destination-missing")]


def test_lint_reports_a_cors_policy_that_never_sees_a_preflight():
    rule = {"match": [{"prefix": "/api", "method": "GET"}, {"prefix": "/api", "method": "POST"}], "route": HTTPBIN, "cors_policy": CORS}
    assert lint_codes([rule]) == [("warning", "cors-never-preflighted")]
    rule["match"].append({"prefix": "/api", "method": "OPTIONS"})
    assert lint_codes([rule]) == []


def test_lint_reports_a_redirect_that_shadows_a_later_rule():
    codes = lint_codes([{"redirect": {"uri": "/elsewhere"}}, {"match": [{"prefix": "/status"}], "route": HTTPBIN}])
    assert ("warning", "rule-shadowed") in codes


def test_a_redirect_agrees_only_with_the_predicted_location():
    found = explain([{"redirect": {"uri": "/new", "code": 302}}], {"path": "/old?v=1"})
    assert routing.agreement(found, status=302, headers={"location": "http://httpbin.example.com/new?v=1"}) is True
    assert routing.agreement(found, status=302, headers={"location": "http://httpbin.example.com/new"}) is False
    assert routing.agreement(found, status=301, headers={"location": "http://httpbin.example.com/new?v=1"}) is False


# -- egress TLS: passthrough by SNI and origination at the egress gateway ------------------------
CNN = scenario.egress_routes()[0]
EGRESS_WHERE = "traffic_egress_routes[0] (cnn): "


def egress(**gateway):
    return [dict(copy.deepcopy(CNN), egress_gateway=gateway)]


def egress_objects(**gateway):
    return dict((o["kind"] + "/" + o["metadata"]["name"], o) for o in tm.render([], egress(**gateway), SETTINGS))


def test_passthrough_adds_a_tls_server_and_sni_routes_beside_the_reference_objects():
    objects = egress_objects(passthrough_port=443)
    gateway = objects["Gateway/istio-egressgateway"]["spec"]
    assert gateway["servers"][1] == {"port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["edition.cnn.com"], "tls": {"mode": "PASSTHROUGH"}}
    spec = objects["VirtualService/direct-cnn-through-egress-gateway"]["spec"]
    service = SETTINGS["egress_gateway"]["service"]
    assert spec["tls"] == [
        {
            "match": [{"gateways": ["mesh"], "port": 443, "sniHosts": ["edition.cnn.com"]}],
            "route": [{"destination": {"host": service, "subset": "cnn", "port": {"number": 443}}, "weight": 100}],
        },
        {
            "match": [{"gateways": ["istio-egressgateway"], "port": 443, "sniHosts": ["edition.cnn.com"]}],
            "route": [{"destination": {"host": "edition.cnn.com", "port": {"number": 443}}, "weight": 100}],
        },
    ]
    # the HTTP part stays the reference scenario's
    seed = dict((o["kind"] + "/" + o["metadata"]["name"], o) for o in tm.render([], [CNN], SETTINGS))
    assert spec["http"] == seed["VirtualService/direct-cnn-through-egress-gateway"]["spec"]["http"]
    assert gateway["servers"][0] == seed["Gateway/istio-egressgateway"]["spec"]["servers"][0]


def test_origination_sends_the_gateway_to_the_tls_port_with_a_rule_only_the_gateway_sees():
    objects = egress_objects(originate_tls={"port": 443, "credential_name": "cnn-ca"})
    http = objects["VirtualService/direct-cnn-through-egress-gateway"]["spec"]["http"]
    assert http[0]["route"][0]["destination"]["port"] == {"number": 80}  # the mesh still speaks HTTP on 80
    assert http[1]["route"][0]["destination"] == {"host": "edition.cnn.com", "port": {"number": 443}}
    rule = objects["DestinationRule/originate-tls-for-cnn"]
    assert rule["spec"] == {
        "host": "edition.cnn.com",
        "exportTo": ["istio-system"],
        "trafficPolicy": {"portLevelSettings": [{"port": {"number": 443}, "tls": {"mode": "SIMPLE", "sni": "edition.cnn.com", "credentialName": "cnn-ca"}}]},
    }
    assert rule["metadata"]["labels"]["meshops.istio/route"] == "cnn"


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        (
            {"passthrough_port": 80},
            "egress_gateway.passthrough_port: port 80 is HTTP in the route's ports; TLS passthrough (routed by SNI) needs a TLS or HTTPS port",
        ),
        ({"passthrough_port": 8443}, "egress_gateway.passthrough_port: 8443 is not one of the route's ports (80, 443)"),
        ({"passthrough_port": 70000}, "egress_gateway.passthrough_port: "),
        ({"originate_tls": {"port": 80}}, "egress_gateway.originate_tls.port: port 80 is HTTP in the route's ports; TLS origination needs a TLS or HTTPS port"),
        ({"originate_tls": {"credential_name": "x"}}, "egress_gateway.originate_tls.port: is required"),
        ({"passthrough_port": 443, "originate_tls": {"port": 443}}, "would be encrypted twice"),
        ({"originate_tls": {"port": 443, "mode": "MUTUAL"}}, "egress_gateway.originate_tls.credential_name: is required with mode MUTUAL"),
        ({"originate_tls": {"port": 443, "mode": "STRICT"}}, "egress_gateway.originate_tls.mode: 'STRICT' is not one of SIMPLE, MUTUAL"),
        (
            {"originate_tls": {"port": 443, "credential_name": "CNN_CA"}},
            "egress_gateway.originate_tls.credential_name: 'CNN_CA' is not a valid Kubernetes name",
        ),
        ({"originate_tls": {"port": 443, "sni": "*.cnn.com"}}, "egress_gateway.originate_tls.sni: '*.cnn.com': wildcards are not allowed here"),
        ({"originate_tls": {"port": 443, "sni_host": "a"}}, "egress_gateway.originate_tls.sni_host: unknown option"),
        ({"enabled": False, "passthrough_port": 443}, "egress_gateway.passthrough_port: needs the egress gateway, which this route disables"),
    ],
)
def test_egress_tls_mistakes_are_named(gateway, message):
    found = tm.validate([], egress(**gateway), SETTINGS)
    assert any(p.startswith(EGRESS_WHERE) and message in p for p in found), found


def test_passthrough_on_the_gateway_http_port_is_refused():
    route = copy.deepcopy(CNN)
    route["ports"] = [{"number": 80, "name": "tls", "protocol": "TLS"}, {"number": 8080, "name": "http", "protocol": "HTTP"}]
    route["egress_gateway"] = {"passthrough_port": 80}
    found = tm.validate([], [route], SETTINGS)
    assert any("port 80 is also the gateway's HTTP server port" in p for p in found), found


def test_passthrough_port_clashing_with_another_gateway_on_the_same_pods_is_refused():
    other = {
        "name": "other",
        "host": "other.example.com",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}, {"number": 443, "name": "https", "protocol": "HTTPS"}],
        "egress_gateway": {"name": "other-egress"},
    }
    # the other Gateway object puts port 443 of the same egress pods under HTTP
    other["egress_gateway"]["port"] = 443
    found = tm.validate([], [other, *egress(passthrough_port=443)], SETTINGS)
    assert any("egress_gateway.passthrough_port: port 443 of the gateway pods" in p and "is TLS here but HTTP" in p for p in found), found


def test_tls_from_the_mesh_is_explained_by_sni():
    services = [o for o in scenario.mesh_objects() if o["kind"] == "Service"]
    objects = tm.render([], egress(passthrough_port=443), SETTINGS) + services
    result = routing.explain(objects, {"host": "edition.cnn.com", "scheme": "https", "source_namespace": "httpbin"})
    assert result["outcome"] == "tls_route"
    assert result["opaque"] is True
    assert result["destinations"][0]["host"] == SETTINGS["egress_gateway"]["service"]
    assert result["destinations"][0]["port"] == 443
    assert routing.agreement(result, status=200, headers={}) is True
    assert routing.agreement(result, error_kind="reset") is False
    # another SNI on the same port: the default route to the ServiceEntry
    other = routing.explain(objects, {"host": "edition.cnn.com", "sni": "www.cnn.com", "scheme": "https", "source_namespace": "httpbin"})
    assert other["outcome"] == "default_route"


# -- TLS credentials kept as Secrets --------------------------------------------------------------
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n"


def test_credentials_become_tls_or_ca_secrets_in_the_gateways_namespace():
    secrets = tm.render_credentials(
        [{"name": "secure-cert", "cert": CERT, "key": KEY, "ca_cert": CERT}, {"name": "cnn-ca", "namespace": "egress", "ca_cert": CERT}],
        SETTINGS,
        "istio-system",
    )
    tls, ca = secrets
    assert (tls["type"], tls["metadata"]["namespace"], sorted(tls["data"])) == ("kubernetes.io/tls", "istio-system", ["ca.crt", "tls.crt", "tls.key"])
    assert base64.b64decode(tls["data"]["tls.key"]).decode() == KEY
    assert (ca["type"], ca["metadata"]["namespace"], sorted(ca["data"])) == ("Opaque", "egress", ["ca.crt"])
    assert ca["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshops.istio", "meshops.istio/instance": "default"}


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({"name": "a", "cert": CERT}, "traffic_tls_credentials[0] (a): key: is required with cert"),
        ({"name": "a", "key": KEY}, "traffic_tls_credentials[0] (a): cert: is required with key"),
        ({"name": "a"}, "traffic_tls_credentials[0] (a): cert: give cert and key"),
        ({"name": "a", "cert": "not pem", "key": KEY}, "traffic_tls_credentials[0] (a): cert: is not a PEM certificate"),
        ({"name": "a", "cert": CERT, "key": "secret-key-material"}, "traffic_tls_credentials[0] (a): key: is not a PEM private key"),
        ({"name": "a", "ca_cert": CERT, "key": ["secret-key-material"], "cert": CERT}, "(a): key: must be a string (PEM text), got a list"),
        ({"name": "A_b", "ca_cert": CERT}, "traffic_tls_credentials[0] (A_b): name: 'A_b' is not a valid Kubernetes name"),
        ({"name": "a", "namespace": "Istio", "ca_cert": CERT}, "traffic_tls_credentials[0] (a): namespace: 'Istio' is not a valid Kubernetes name"),
        ({"name": "a", "ca_cert": CERT, "crt": CERT}, "traffic_tls_credentials[0] (a): crt: unknown option"),
    ],
)
def test_credential_mistakes_are_named_without_their_values(credential, message):
    found = tm.validate_credentials([credential], "istio-system")
    assert any(message in p for p in found), found
    assert not any("secret-key-material" in p for p in found), found


def test_a_credential_given_twice_is_refused():
    found = tm.validate_credentials([{"name": "a", "ca_cert": CERT}, {"name": "a", "namespace": "istio-system", "ca_cert": CERT}], "istio-system")
    assert found == ["traffic_tls_credentials[1] (a): name: Secret istio-system/a is already defined by traffic_tls_credentials[0] (a)"]


# -- tcp rules of egress routes ---------------------------------------------------------------
TCP_PORTS = [{"number": 9000, "name": "tcp-a", "protocol": "TCP"}, {"number": 9001, "name": "tcp-b", "protocol": "TCP"}]
SPLIT = [{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000, "weight": 80}, {"host": "edition.cnn.com", "port": 9001, "weight": 20}]}]


def tcp_route(tcp, **changes):
    route = copy.deepcopy(CNN)
    route["ports"] = route["ports"] + copy.deepcopy(TCP_PORTS)
    route["tcp"] = tcp
    route.update(changes)
    return route


def test_tcp_rules_split_a_port_beside_the_reference_routes():
    objects = dict((o["kind"] + "/" + o["metadata"]["name"], o) for o in tm.render([], [tcp_route(SPLIT)], SETTINGS))
    spec = objects["VirtualService/direct-cnn-through-egress-gateway"]["spec"]
    assert spec["tcp"] == [
        {
            "match": [{"gateways": ["mesh"], "port": 9000}],
            "route": [
                {"destination": {"host": "edition.cnn.com", "port": {"number": 9000}}, "weight": 80},
                {"destination": {"host": "edition.cnn.com", "port": {"number": 9001}}, "weight": 20},
            ],
        }
    ]
    assert [p["protocol"] for p in objects["ServiceEntry/cnn"]["spec"]["ports"]] == ["HTTP", "HTTPS", "TCP", "TCP"]


def test_tcp_rules_of_a_route_without_the_egress_gateway_get_their_own_virtual_service():
    route = tcp_route([{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9001}]}], ports=copy.deepcopy(TCP_PORTS), egress_gateway=False)
    objects = tm.render([], [route], SETTINGS)
    assert [o["kind"] for o in objects] == ["ServiceEntry", "VirtualService"]
    assert objects[1]["metadata"]["name"] == "cnn"
    assert objects[1]["spec"] == {
        "hosts": ["edition.cnn.com"],
        "tcp": [{"match": [{"port": 9000}], "route": [{"destination": {"host": "edition.cnn.com", "port": {"number": 9001}}, "weight": 100}]}],
    }


@pytest.mark.parametrize(
    ("tcp", "message"),
    [
        (
            [{"port": 80, "route": [{"host": "edition.cnn.com", "port": 80}]}],
            "tcp[0].port: port 80 is HTTP in the route's ports; tcp rules route TCP or MONGO ports",
        ),
        ([{"port": 9999, "route": [{"host": "edition.cnn.com", "port": 9999}]}], "tcp[0].port: 9999 is not one of the route's ports"),
        ([{"port": 9000, "route": [{"host": "edition.cnn.com"}]}], "tcp[0].route[0].port: is required: a TCP destination names its port"),
        ([{"port": 9000, "route": [{"host": "*.cnn.com", "port": 9000}]}], "tcp[0].route[0].host: a TCP destination must be one host, not a wildcard"),
        (
            [{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000, "weight": 60}, {"host": "edition.cnn.com", "port": 9001, "weight": 50}]}],
            "tcp[0].route: weights add up to 110",
        ),
        (
            [{"port": 9000, "route": [{"host": "edition.cnn.com", "port": 9000, "headers": {"request": {"set": {"a": "b"}}}}]}],
            "tcp[0].route[0].headers: unknown option",
        ),
        ([{"port": 9000, "route": []}], "tcp[0].route: needs at least one destination"),
        (SPLIT + SPLIT, "tcp[1].port: port 9000 already has a tcp rule"),
        ([{"route": [{"host": "edition.cnn.com", "port": 9000}]}], "tcp[0].port: is required"),
    ],
)
def test_tcp_rule_mistakes_are_named(tcp, message):
    found = tm.validate([], [tcp_route(tcp)], SETTINGS)
    assert any(p.startswith(EGRESS_WHERE) and message in p for p in found), found


def test_a_tcp_only_route_through_the_egress_gateway_is_told_what_to_do():
    found = tm.validate([], [tcp_route(SPLIT, ports=copy.deepcopy(TCP_PORTS))], SETTINGS)
    assert any("a route of TCP ports sets egress_gateway: false and routes them with tcp rules" in p for p in found), found


def test_tcp_from_the_mesh_is_explained_by_port():
    services = [o for o in scenario.mesh_objects() if o["kind"] == "Service"]
    objects = tm.render([], [tcp_route(SPLIT)], SETTINGS) + services
    result = routing.explain(objects, {"host": "edition.cnn.com", "port": 9000, "source_namespace": "httpbin"})
    assert result["outcome"] == "tcp_route"
    assert result["opaque"] is True
    assert [(d["port"], d["weight"]) for d in result["destinations"]] == [(9000, 80), (9001, 20)]
    assert routing.agreement(result, status=200, headers={}) is True
    # the other TCP port has no rule: the default route
    other = routing.explain(objects, {"host": "edition.cnn.com", "port": 9001, "source_namespace": "httpbin"})
    assert (other["outcome"], other["destinations"][0]["port"]) == ("default_route", 9001)
