"""meshops.istio.route_verify and route_explain run by ansible-playbook, as users run them."""

import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.fixtures import scenario
from tests.helpers import run_playbook, task_results

pytestmark = pytest.mark.envoy

SEED_OBJECTS = scenario.mesh_objects("default")


def playbook(tmp_path, tasks):
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    return path


def verify_task(address, probes, **options):
    return {"name": "verify", "meshops.istio.route_verify": dict(address=address, probes=probes, **options), "register": "verified"}


def test_reference_check_in_a_playbook(tmp_path, gateway):
    report = tmp_path / "route-verify.xml"
    probes = [
        {
            "host": "httpbin.example.com",
            "path": "/status/200",
            "method": "HEAD",
            "expect": {"status": 200, "headers": {"server": "istio-envoy"}, "headers_present": ["x-envoy-upstream-service-time"]},
        },
        {"host": "httpbin.example.com", "path": "/headers", "expect": {"status": 404}},
        {"host": "other.example.com", "path": "/status/200", "expect": {"status": 404}},
    ]
    tasks = [verify_task(gateway.address("http"), probes, report={"path": str(report)}, retries=5, delay=0.2)]
    rc, output, stderr = run_playbook(playbook(tmp_path, tasks))
    assert rc == 0, (output, stderr)
    ((name, result),) = task_results(output)
    assert name == "verify"
    assert result["changed"] is False
    assert result["summary"]["passed"] == 3
    assert ET.parse(report).getroot().find("testsuite").get("failures") == "0"


def test_failing_probe_fails_the_task_with_the_explanation(tmp_path, gateway):
    probes = [{"name": "echo through httpbin host", "host": "httpbin.example.com", "path": "/headers"}]
    tasks = [verify_task(gateway.address("http"), probes, explain={"objects": SEED_OBJECTS, "via": "default/httpbin-gateway"})]
    rc, output, _stderr = run_playbook(playbook(tmp_path, tasks))
    assert rc == 2
    ((_name, result),) = task_results(output)
    assert result["failed"] is True
    assert "1 of 1 probes failed" in result["msg"]
    assert "no route: VirtualService default/httpbin matches only /status and /delay" in result["msg"]


def test_check_mode_in_a_playbook(tmp_path, gateway):
    probes = [{"host": "echo.example.com", "path": "/anything", "method": "DELETE"}, {"host": "httpbin.example.com", "path": "/status/200"}]
    rc, output, stderr = run_playbook(playbook(tmp_path, [verify_task(gateway.address("http"), probes)]), check=True)
    assert rc == 0, (output, stderr)
    ((_name, result),) = task_results(output)
    assert [p["skipped"] for p in result["probes"]] == [True, False]


def test_bad_input_is_rejected_by_the_argument_spec(tmp_path, gateway):
    probes = [{"host": "httpbin.example.com", "expect": {"status": 200, "header": {"server": "istio-envoy"}}}]
    rc, output, _stderr = run_playbook(playbook(tmp_path, [verify_task(gateway.address("http"), probes)]))
    assert rc == 2
    ((_name, result),) = task_results(output)
    assert "Unsupported parameters" in result["msg"]
    assert "probes.expect.header" in result["msg"]


def test_route_explain_lint_in_a_playbook(tmp_path):
    broken = yaml.safe_load(yaml.safe_dump(SEED_OBJECTS))
    vs = scenario.pick(broken, "VirtualService", "httpbin")
    vs["spec"]["http"][0]["route"][0]["destination"]["port"]["number"] = 8080
    tasks = [
        {"name": "lint seed", "meshops.istio.route_explain": {"objects": SEED_OBJECTS, "lint": True}},
        {"name": "lint broken", "meshops.istio.route_explain": {"objects": broken, "lint": True}},
    ]
    rc, output, _stderr = run_playbook(playbook(tmp_path, tasks))
    assert rc == 2
    (_n1, seed), (_n2, result) = task_results(output)
    assert seed["findings"] == []
    assert result["failed"] is True
    assert (
        "[destination-port-missing] VirtualService default/httpbin: http rule 0 route 0: port 8080 is not exposed by Service default/httpbin (ports: 8000)"
        in result["msg"]
    )
