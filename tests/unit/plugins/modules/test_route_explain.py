"""meshops.istio.route_explain: explanations and the lint gate the traffic role uses."""

import copy
import functools
import pathlib

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.istio import cluster as istio_cluster
from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.modules import route_explain
from tests.fixtures import scenario
from tests.helpers import run_module

REPO = pathlib.Path(__file__).resolve().parents[4]
SEED = scenario.mesh_objects("default")


@pytest.fixture
def module(capsys):
    """Run the module like Ansible does: args in, one JSON document out, exit code."""
    return functools.partial(run_module, route_explain.main, capsys)


def broken_seed():
    objects = copy.deepcopy(SEED)
    scenario.pick(objects, "VirtualService", "httpbin")["spec"]["gateways"] = ["httpbin-gatewy"]
    return objects


@pytest.mark.parametrize("check_mode", [False, True])
def test_explain_requests(module, check_mode):
    requests = [
        {"name": "status", "via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/status/200"},
        {"name": "headers", "via": "default/httpbin-gateway", "host": "httpbin.example.com", "path": "/headers"},
        {"name": "egress", "host": "edition.cnn.com"},
        {"name": "blocked", "host": "example.org", "outbound_traffic_policy": "REGISTRY_ONLY"},
    ]
    rc, result = module({"objects": SEED, "requests": requests}, check_mode=check_mode)
    assert rc == 0, result
    assert result["changed"] is False
    assert [(e["name"], e["outcome"]) for e in result["explanations"]] == [
        ("status", "route"),
        ("headers", "no_route"),
        ("egress", "route"),
        ("blocked", "blocked"),
    ]
    assert result["explanations"][1]["text"] == "no route: VirtualService default/httpbin matches only /status and /delay"
    assert "findings" not in result
    assert result["summary"]["objects"] == len(SEED)


def test_lint_clean(module):
    rc, result = module({"objects": SEED, "lint": True})
    assert rc == 0, result
    assert result["findings"] == []
    assert result["summary"] == {"objects": len(SEED), "error": 0, "warning": 0, "info": 0}


def test_lint_error_fails_with_the_findings(module):
    rc, result = module({"objects": broken_seed(), "lint": True})
    assert rc == 1
    assert result["changed"] is False
    lines = result["msg"].splitlines()
    assert lines[0] == "1 routing error(s) found, fix them before applying:"
    assert lines[1].startswith("- [virtualservice-gateway-missing] VirtualService default/httpbin: gateway default/httpbin-gatewy does not exist")
    assert result["summary"] == dict(result["summary"], error=1, warning=1)
    assert {f["code"] for f in result["findings"]} == {"virtualservice-gateway-missing", "gateway-host-unserved"}


def test_lint_findings_without_failing(module):
    rc, result = module({"objects": broken_seed(), "lint": True, "fail_on_findings": False})
    assert rc == 0, result
    assert result["summary"]["error"] == 1


def test_warnings_do_not_fail(module):
    objects = copy.deepcopy(SEED)
    scenario.pick(objects, "Gateway", "httpbin-gateway")["spec"]["servers"][0]["hosts"].append("extra.example.com")
    rc, result = module({"objects": objects, "lint": True})
    assert rc == 0, result
    assert [f["code"] for f in result["findings"]] == ["gateway-host-unserved"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"objects": SEED}, "nothing to do: give requests to explain and/or lint: true"),
        ({"objects": SEED, "requests": [{"host": "a", "via": "gw"}]}, "requests[0]: via must be 'mesh' or '<namespace>/<gateway name>'"),
        ({"objects": SEED, "requests": [{"path": "/"}]}, "missing required arguments: host found in requests"),
        ({"objects": SEED, "requests": [{"host": "a", "verb": "GET"}]}, "requests.verb. Supported parameters include"),
        ({"objects": [{"kind": "List", "items": ["not a mapping"]}], "lint": True}, "objects: object 'not a mapping' is not a mapping"),
    ],
)
def test_bad_input(module, args, message):
    rc, result = module(args)
    assert rc == 1
    assert message in result["msg"]


def test_reading_namespaces_needs_the_kubernetes_library(module, monkeypatch):
    monkeypatch.setattr(k8s_client, "HAS_KUBERNETES", False)
    rc, result = module({"namespaces": ["default"], "lint": True})
    assert rc == 1
    assert "Failed to import the required Python library (kubernetes)" in result["msg"]


def test_reading_namespaces_without_a_cluster_fails_clearly(module, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    rc, result = module({"kubeconfig": str(kubeconfig), "namespaces": ["default"], "lint": True})
    assert rc == 1
    assert result["msg"].startswith("cannot read objects from namespaces default: ")


def test_given_objects_replace_the_cluster_objects_of_the_same_name(module, monkeypatch):
    """The traffic role lints the objects it is about to apply with the rest of the cluster: the
    cluster's older version of one of them (here a broken one) must not be linted beside it."""
    stale = [o for o in broken_seed() if o["kind"] == "VirtualService"]
    monkeypatch.setattr(k8s_client, "api_client", lambda params: object())
    monkeypatch.setattr(istio_cluster, "read_objects", lambda client, namespaces: copy.deepcopy(stale))
    rc, result = module({"objects": SEED, "namespaces": ["default"], "lint": True})
    assert rc == 0, result
    assert result["findings"] == []
    assert result["summary"]["objects"] == len(SEED)
    # without the given version, the cluster's broken one is what the lint sees
    rc, result = module({"objects": [o for o in SEED if o["kind"] != "VirtualService"], "namespaces": ["default"], "lint": True})
    assert rc == 1
    assert any(f["code"] == "virtualservice-gateway-missing" for f in result["findings"]), result["findings"]
