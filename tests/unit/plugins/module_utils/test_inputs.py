"""The inputs of every role: each class of bad input is refused with the role, the item, the
field and the value named, all problems at once; valid Istio input is never refused."""

import copy

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.models import inputs
from tests.fixtures import scenario
from tests.fixtures.bad_inputs import CLASSES, egress, route

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


@pytest.mark.parametrize("role", inputs.ROLES)
def test_the_defaults_are_valid(role):
    assert problems(role) == []


@pytest.mark.parametrize(("role", "changes", "message"), CLASSES, ids=[c[2][:90] for c in CLASSES])
def test_each_class_of_bad_input_is_named(role, changes, message):
    found = problems(role, **changes)
    assert any(message in p for p in found), found
    assert not any("Ansible" in p or "class '" in p or "Tagged" in p for p in found), found


def test_an_unknown_key_names_the_route_and_the_rule_and_hides_nothing():
    bad = route(http=[{"mtach": [{"prefix": "/status"}], "route": [{"host": "httpbin", "port": 0}]}])
    found = problems("traffic", traffic_ingress_routes=[bad], traffic_egress_routes=[egress(resolution="STATIC")])
    allowed = "cors_policy, direct_response, fault, headers, match, mirror, mirror_percentage, name, redirect, retries, rewrite, route, timeout"
    assert f"traffic: traffic_ingress_routes[0] (httpbin): http[0].mtach: unknown option (allowed: {allowed})" in found
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


def test_extra_vars_given_as_strings_are_accepted_like_ansible_does():
    """-e verify_egress=false or -e httpbin_replicas=2 give strings."""
    assert problems("verify", verify_egress="false", verify_retries="5") == []
    assert problems("httpbin", httpbin_replicas="2") == []
    assert problems("verify", verify_egress="perhaps") == ["verify: verify_egress: must be true or false, got a string 'perhaps'"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"meshops_serial": "0"}, "playbook: meshops_serial: '0' must be a number of clusters (1 or more) or a percentage (1% to 100%)"),
        ({"meshops_serial": "150%"}, "playbook: meshops_serial: '150%' must be a number of clusters"),
        ({"meshops_serial": "two"}, "playbook: meshops_serial: 'two' must be a number of clusters"),
        ({"meshops_upgrade_until": "promte"}, "playbook: meshops_upgrade_until: 'promte' is not one of canary, promote, cleanup"),
        ({"meshops_max_fail_percentage": 150}, "playbook: meshops_max_fail_percentage: 150 must be from 0 to 100"),
        ({"meshops_full_checks": "maybe"}, "playbook: meshops_full_checks: must be true or false, got a string 'maybe'"),
    ],
)
def test_the_playbooks_own_variables_are_checked(values, message):
    found = inputs.problems("playbook", values)
    assert any(p.startswith(message) for p in found), found


@pytest.mark.parametrize(
    "values",
    [
        {"meshops_serial": 2, "meshops_upgrade_until": "canary"},
        {"meshops_serial": "25%", "meshops_max_fail_percentage": "10", "meshops_full_checks": "true", "meshops_upgrade_rollback": False},
        {"meshops_kubeconfig": "/k", "meshops_serial": None},
    ],
)
def test_good_playbook_variables_pass(values):
    assert inputs.problems("playbook", values) == []
