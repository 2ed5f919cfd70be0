"""meshops.istio.route_verify as a module (main() with module args), against Envoy and httpbin."""

import functools
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.meshops.istio.plugins.modules import route_verify
from tests.fixtures import scenario
from tests.helpers import run_module

pytestmark = pytest.mark.envoy

SEED_OBJECTS = scenario.mesh_objects("default")


@pytest.fixture
def module(capsys):
    """Run the module like Ansible does: args in, one JSON document out, exit code."""
    return functools.partial(run_module, route_verify.main, capsys)


def reference_probes():
    return [
        {
            "name": "httpbin status",
            "host": "httpbin.example.com",
            "path": "/status/200",
            "method": "HEAD",
            "expect": {"status": 200, "headers": {"server": "istio-envoy"}, "headers_present": ["x-envoy-upstream-service-time"]},
        },
        {"name": "delay", "host": "httpbin.example.com", "path": "/delay/1", "expect": {"status": 200}},
        {"name": "unrouted path", "host": "httpbin.example.com", "path": "/headers", "expect": {"status": 404}},
        {"name": "other host", "host": "other.example.com", "path": "/status/200", "expect": {"status": 404}},
    ]


def test_reference_scenario_passes(module, gateway, tmp_path):
    rc, result = module({"address": gateway.address("http"), "probes": reference_probes(), "report": {"path": str(tmp_path / "r.xml")}})
    assert rc == 0, result
    assert result["changed"] is False
    assert result["summary"]["passed"] == 4
    assert [p["passed"] for p in result["probes"]] == [True] * 4
    assert result["report"] == str(tmp_path / "r.xml")
    assert ET.parse(result["report"]).getroot().find("testsuite").get("tests") == "4"


def test_failure_carries_the_static_explanation(module, gateway):
    probes = [
        {"name": "headers echo", "host": "httpbin.example.com", "path": "/headers", "expect": {"status": 200}},
        {"name": "other host", "host": "other.example.com", "path": "/status/200"},
        {"name": "fine", "host": "httpbin.example.com", "path": "/status/200"},
    ]
    rc, result = module({"address": gateway.address("http"), "probes": probes, "explain": {"objects": SEED_OBJECTS, "via": "default/httpbin-gateway"}})
    assert rc == 1
    assert result["failed"] is True
    assert result["changed"] is False
    lines = result["msg"].splitlines()
    assert lines[0] == "2 of 3 probes failed:"
    assert lines[1].startswith("- headers echo (via 127.0.0.1:")
    assert lines[1].endswith("status 404, expected 200 -- no route: VirtualService default/httpbin matches only /status and /delay")
    assert lines[2].endswith("-- no virtual host: port 80 of Gateway default/httpbin-gateway serves httpbin.example.com, not other.example.com")
    headers_echo, other, fine = result["probes"]
    assert headers_echo["explanation"]["outcome"] == "no_route"
    assert headers_echo["explanation"]["agrees"] is True
    assert headers_echo["explanation"]["expected"]["status"] == 404
    assert other["explanation"]["outcome"] == "no_virtual_host"
    assert "explanation" not in fine


def test_gateway_inferred_from_the_host_when_not_named(module, gateway):
    probes = [{"name": "headers echo", "host": "httpbin.example.com", "path": "/headers"}]
    rc, result = module({"address": gateway.address("http"), "probes": probes, "explain": {"objects": SEED_OBJECTS}})
    assert rc == 1
    assert result["msg"].endswith("-- no route: VirtualService default/httpbin matches only /status and /delay")
    assert "gateway workload istio=ingressgateway assumed" in result["probes"][0]["explanation"]["notes"][-1]


def test_no_explanation_when_the_gateway_is_ambiguous(module, gateway):
    probes = [{"name": "nowhere", "host": "unknown.example.org", "path": "/"}]
    rc, result = module({"address": gateway.address("http"), "probes": probes, "explain": {"objects": SEED_OBJECTS}})
    assert rc == 1
    assert "explanation" not in result["probes"][0]
    assert " -- " not in result["msg"]


def test_explanation_per_probe_via(module, gateway):
    probe = {"host": "edition.cnn.com", "path": "/politics", "via": "default/istio-egressgateway", "expect": {"status": 200}}
    rc, result = module({"address": gateway.address("http"), "probes": [probe], "explain": {"objects": SEED_OBJECTS}})
    assert rc == 1
    explanation = result["probes"][0]["explanation"]
    assert explanation["outcome"] == "route"
    assert explanation["virtual_service"] == "default/direct-cnn-through-egress-gateway"
    assert explanation["rule"] == 1
    assert [d["host"] for d in explanation["destinations"]] == ["edition.cnn.com"]
    # the test Envoy has no such route: the objects and the gateway disagree, and the message says so
    assert explanation["agrees"] is False
    assert "the gateway answered otherwise" in result["msg"]


def test_check_mode_skips_unsafe_methods(module, gateway):
    probes = [
        {"host": "echo.example.com", "path": "/anything", "method": "POST", "json_body": {"a": 1}},
        {"host": "httpbin.example.com", "path": "/status/200"},
    ]
    rc, result = module({"address": gateway.address("http"), "probes": probes}, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is False
    assert [p["skipped"] for p in result["probes"]] == [True, False]
    assert result["summary"] == dict(result["summary"], passed=1, skipped=1, failed=0)
    rc, result = module({"address": gateway.address("http"), "probes": probes})
    assert rc == 0, result
    assert result["summary"]["passed"] == 2


def test_https_probes_with_module_tls(module, gateway, pki):
    rc, result = module(
        {
            "address": "https://" + gateway.address("mtls"),
            "tls": {"ca_path": str(pki.ca_path), "client_cert": str(pki.client_cert), "client_key": str(pki.client_key)},
            "probes": [
                {"host": "mtls.example.com", "path": "/headers", "expect": {"json": [{"query": "headers.Host[0]", "equals": "mtls.example.com"}]}},
                {
                    "host": "mtls.example.com",
                    "path": "/status/200",
                    "tls": {"client_cert": str(pki.rogue_cert), "client_key": str(pki.rogue_key)},
                    "expect": {"error": ["tls", "reset"]},
                },
            ],
        }
    )
    assert rc == 0, result
    assert result["summary"]["passed"] == 2


def test_convergence_options(module, gateway, trigger, late_backend):
    baseline = gateway.counter("cluster.late.upstream_cx_connect_fail")
    started = trigger(lambda: gateway.counter("cluster.late.upstream_cx_connect_fail") > baseline, late_backend)
    rc, result = module(
        {
            "address": gateway.address("late"),
            "retries": 300,
            "delay": 0.1,
            "timeout": 60,
            "consecutive_successes": 2,
            "probes": [{"host": "late.example.com", "path": "/status/200", "expect": {"status": 200}}],
        }
    )
    assert started.result()
    assert rc == 0, result
    probe = result["probes"][0]
    assert probe["attempts"] >= 3
    assert probe["consecutive_successes"] == 2
    assert probe["time_to_first_success"] is not None
