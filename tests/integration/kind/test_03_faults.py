"""Faults on the kind cluster: the data plane keeps serving, verification names what fails, and
re-running site.yml converges (issue 5)."""

import os
import signal
import subprocess
import time

import pytest

from tests.helpers import REPO, run_playbook
from tests.integration.kind import probes
from tests.support.kind import INVENTORY, recap

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("converged")]

FAST = {"verify_egress": False}


def pods(cluster, namespace, selector):
    out = cluster.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}", check=False)
    return out.split()


def istiod_leftovers(cluster):
    """The istiod ReplicaSets and pods still there, with their owners and phases (for a timeout)."""
    return cluster.kubectl(
        "-n",
        "istio-system",
        "get",
        "replicasets,pods",
        "-l",
        "app=istiod",
        "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name,OWNER:.metadata.ownerReferences[*].name,DELETING:.metadata.deletionTimestamp,PHASE:.status.phase",
        check=False,
    )


def test_gateways_keep_serving_without_istiod_and_site_restores_it(cluster):
    # scaled to zero first, so the pods go without the garbage collector (it removes the
    # Deployment's ReplicaSet later; in one CI run the pods were still there after 180 s when the
    # Deployment was deleted at once)
    cluster.kubectl("-n", "istio-system", "scale", "deployment", "istiod", "--replicas=0")
    probes.wait_for(lambda: not pods(cluster, "istio-system", "app=istiod"), "the istiod pods to be gone", diagnose=lambda: istiod_leftovers(cluster))
    cluster.kubectl("-n", "istio-system", "delete", "deployment", "istiod", "--wait=true")
    # the gateway keeps the last configuration istiod pushed: three passes in a row, 2 s apart
    rc, result = cluster.probe(probes.SEED, retries=0, delay=2, consecutive_successes=3)
    assert rc == 0, result.get("msg")
    rc, output = cluster.site(FAST)
    assert rc == 0, recap(output)
    assert recap(output)["changed"] >= 1  # the deleted Deployment was restored
    assert pods(cluster, "istio-system", "app=istiod")
    # istiod is back and pushes again: a route change reaches the gateway
    rc, output = cluster.site(
        dict(FAST, traffic_ingress_routes=[probes.route_with("/status", "/delay", "/headers")], verify_ingress_probes=[probes.HEADERS_200]),
        tags=("traffic", "verify"),
    )
    assert rc == 0, recap(output)
    rc, output = cluster.site(FAST, tags=("traffic", "verify"))
    assert rc == 0, recap(output)


def test_verification_names_the_probes_failing_while_the_gateway_is_down(cluster):
    cluster.kubectl("-n", "istio-system", "scale", "deployment", "istio-ingressgateway", "--replicas=0")
    probes.wait_for(lambda: not pods(cluster, "istio-system", "istio=ingressgateway"), "the ingress gateway pods to be gone")
    rc, result = cluster.probe(probes.SEED, retries=0)
    assert rc != 0
    for probe in probes.SEED:
        assert probe["name"] in result["msg"], result["msg"]
    failed = [p for p in result["probes"] if not p["passed"]]
    assert len(failed) == len(probes.SEED)
    assert all(p["error"] and p["error"]["kind"] in ("refused", "reset", "timeout") for p in failed), failed
    # site.yml restores the gateway (its replicas drifted from the chart) and verification passes
    rc, output = cluster.site(FAST)
    assert rc == 0, recap(output)
    rc, result = cluster.probe(probes.SEED, retries=30, delay=2)
    assert rc == 0, result.get("msg")


def test_a_deleted_gateway_pod_comes_back_and_verification_passes(cluster):
    (pod,) = pods(cluster, "istio-system", "istio=ingressgateway")
    cluster.kubectl("-n", "istio-system", "delete", "pod", pod, "--wait=false")
    rc, result = cluster.probe(probes.SEED, retries=60, delay=1, consecutive_successes=2)
    assert rc == 0, result.get("msg")
    probes.wait_for(lambda: pod not in pods(cluster, "istio-system", "istio=ingressgateway"), f"the deleted pod {pod} to be gone")
    assert len(pods(cluster, "istio-system", "istio=ingressgateway")) == 1


def start_site(cluster):
    """site.yml in the background with the default callback, so its progress can be watched."""
    env = dict(cluster.env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_FORCE_COLOR="0")
    return subprocess.Popen(
        ["ansible-playbook", "-i", INVENTORY, str(REPO / "site.yml"), "-e", "verify_egress=false"],
        cwd=str(REPO),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_task(proc, marker, timeout=900):
    """Read the play's output until a line contains `marker`; return the lines read."""
    lines = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    proc.kill()
    raise AssertionError(f"site.yml never reached {marker!r}:\n{''.join(lines[-40:])}")


def remove_scenario(cluster):
    rc, _output, stderr = run_playbook(REPO / "playbooks" / "remove_scenario.yml", env=cluster.env, inventory=INVENTORY, timeout=900)
    assert rc == 0, stderr[-3000:]


def test_site_interrupted_mid_run_converges_when_run_again(cluster):
    remove_scenario(cluster)
    proc = start_site(cluster)
    wait_for_task(proc, "TASK [meshops.istio.httpbin : Apply the httpbin namespace, ServiceAccount, Service and Deployment")
    os.killpg(proc.pid, signal.SIGKILL)  # as a lost controller or a cancelled AWX job would
    proc.wait(timeout=60)
    rc, output = cluster.site(FAST)
    assert rc == 0, recap(output)
    rc, result = cluster.probe(probes.SEED, retries=30, delay=2)
    assert rc == 0, result.get("msg")
    rc, output = cluster.site(FAST)
    assert rc == 0 and recap(output)["changed"] == 0, recap(output)


def restart_apiserver(cluster):
    node = "meshops-control-plane"
    script = "crictl stop $(crictl ps -q --name kube-apiserver)"
    subprocess.run(["docker", "exec", node, "sh", "-c", script], env=cluster.env, check=True, capture_output=True, timeout=120)


def apiserver_ready(cluster):
    return cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=20).strip() == "ok"


def test_apiserver_restarted_mid_apply_then_site_converges(cluster):
    remove_scenario(cluster)
    proc = start_site(cluster)
    wait_for_task(proc, "TASK [meshops.istio.traffic : Apply the Istio objects")
    restart_apiserver(cluster)
    try:
        proc.wait(timeout=900)
    finally:
        rest = proc.stdout.read()
    probes.wait_for(lambda: apiserver_ready(cluster), "the API server to be ready again", timeout=300)
    rc, output = cluster.site(FAST)
    assert rc == 0, (recap(output), rest[-2000:])
    rc, result = cluster.probe(probes.SEED, retries=30, delay=2)
    assert rc == 0, result.get("msg")
