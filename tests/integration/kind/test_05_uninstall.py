"""The scenario and Istio come off the cluster cleanly (the last stage before destroy)."""

import json

import pytest

from tests.helpers import REPO, failed_task, run_playbook
from tests.support.kind import INVENTORY

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]


def uninstall(cluster, extra=None):
    rc, output, stderr = run_playbook(REPO / "playbooks" / "uninstall.yml", extra, env=cluster.env, inventory=INVENTORY, timeout=1200)
    assert rc == 0, (failed_task(output, "kind-meshops"), stderr[-3000:])
    return output


def istio_crds(cluster):
    names = json.loads(cluster.kubectl("get", "crd", "-o", "json"))["items"]
    return [c["metadata"]["name"] for c in names if c["metadata"]["name"].endswith(".istio.io")]


def test_uninstall_removes_the_scenario_and_istio_and_keeps_the_crds(cluster):
    uninstall(cluster)
    assert cluster.kubectl("get", "namespace", "httpbin", "istio-system", "--ignore-not-found", "-o", "name").strip() == ""
    assert cluster.kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name").strip() == ""
    assert "virtualservices.networking.istio.io" in istio_crds(cluster)
    # a second run finds nothing left to do
    output = uninstall(cluster)
    assert output["stats"]["kind-meshops"]["changed"] == 0, output["stats"]


def test_uninstall_with_crds_removes_them(cluster):
    uninstall(cluster, {"control_plane_uninstall_crds": True})
    assert istio_crds(cluster) == []


def test_traffic_without_istio_stops_before_applying_anything(cluster):
    playbook = REPO / "tests" / "integration" / "kind" / "playbooks" / "traffic.yml"
    rc, output, stderr = run_playbook(playbook, env=cluster.env, inventory=INVENTORY, timeout=600)
    assert rc != 0, stderr[-3000:]
    name, result = failed_task(output, "kind-meshops")
    assert name == "meshops.istio.traffic : Check the objects against the cluster (namespaces, CRDs, a dry run of every changed object)"
    message = result["msg"]
    assert message.startswith("nothing was applied: "), message
    assert "the CRDs of Gateway, ServiceEntry, DestinationRule, VirtualService (networking.istio.io/v1) are not installed" in message
    assert "namespace(s) httpbin do not exist" in message
    assert cluster.kubectl("get", "namespace", "httpbin", "--ignore-not-found", "-o", "name").strip() == ""
