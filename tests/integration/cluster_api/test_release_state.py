"""meshops.istio.release_state against a real API server and releases installed by the real helm."""

import base64
import gzip
import json
import os
import shutil
import subprocess
import uuid

import pytest
from kubernetes import client as k8s

from ansible_collections.meshops.istio.plugins.module_utils.k8s import helm as helm_state
from ansible_collections.meshops.istio.plugins.modules import release_state
from tests.helpers import run_module

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: '1.0'\n",
    "values.yaml": "replicas: 1\ngreeting: hello\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n"
        "  selector: {matchLabels: {app: demo}}\n  template:\n    metadata: {labels: {app: demo}}\n"
        "    spec: {containers: [{name: demo, image: 'demo:1', resources: {limits: {cpu: 2000m, memory: 1024Mi}}}]}\n"
    ),
}


def helm_binary():
    path = os.path.join(os.environ.get("MESHOPS_CACHE", os.path.expanduser("~/.cache/meshops-istio")), "bin", "helm")
    return path if os.access(path, os.X_OK) else shutil.which("helm")


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    root = tmp_path_factory.mktemp("chart") / "demo"
    for name, text in CHART.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def helm(apiserver, tmp_path_factory):
    binary = helm_binary()
    if binary is None:
        raise RuntimeError("helm is not installed: run tools/dev build host-tools")
    kubeconfig = apiserver.kubeconfig(tmp_path_factory.mktemp("helm") / "kubeconfig")

    def run(*args):
        proc = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


@pytest.fixture
def release(helm, chart):
    name, namespace = "demo", "rs-" + uuid.uuid4().hex[:8]
    helm("install", name, str(chart), "-n", namespace, "--create-namespace", "--set", "greeting=hi")
    return name, namespace


@pytest.fixture
def module(capsys, apiserver):
    return lambda args: run_module(release_state.main, capsys, dict(apiserver.auth(), **args))


def state(module, name, namespace, **wanted):
    rc, result = module({"releases": [dict(name=name, namespace=namespace, **wanted)]})
    assert rc == 0, result
    return result["releases"][0], result


def test_a_release_as_wanted_is_up_to_date(module, release, chart):
    name, namespace = release
    found, result = state(module, name, namespace, chart_path=str(chart), values={"greeting": "hi"})
    assert result["up_to_date"] is True
    assert (found["status"], found["revision"], found["chart"], found["chart_version"]) == ("deployed", 1, "demo", "0.1.0")
    assert found["reasons"] == []
    # the chart's 2000m/1024Mi are stored as 2/1Gi: quantities are compared by value
    assert found["workloads"] == [{"kind": "Deployment", "name": "demo", "ready": False, "state": found["workloads"][0]["state"]}]
    assert found["ready"] is False  # no controller runs beside this API server


@pytest.mark.parametrize(
    ("wanted", "reason"),
    [
        ({"values": {"greeting": "hello"}}, "values differ (greeting)"),
        ({"chart_version": "0.2.0"}, "chart demo 0.1.0 is installed, 0.2.0 is wanted"),
    ],
)
def test_other_values_or_chart_version_are_out_of_date(module, release, wanted, reason):
    found, result = state(module, *release, **wanted)
    assert result["up_to_date"] is False
    assert found["reasons"] == [reason]


def test_deleted_and_scaled_objects_are_drift(module, release, apiserver):
    name, namespace = release
    api = apiserver.client()
    k8s.CoreV1Api(api).delete_namespaced_config_map(f"{name}-settings", namespace)
    k8s.AppsV1Api(api).patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 0}})
    found, _result = state(module, name, namespace, values={"greeting": "hi"})
    assert found["up_to_date"] is False
    assert f"ConfigMap {namespace}/{name}-settings is missing" in found["reasons"]
    assert f"Deployment {namespace}/{name}: its spec differs from the chart" in found["reasons"]


def test_a_missing_release_and_a_pending_one(module, release, apiserver):
    found, _result = state(module, "nope", release[1])
    assert (found["installed"], found["up_to_date"], found["reasons"]) == (False, False, [f"release {release[1]}/nope is not installed"])
    # an interrupted upgrade leaves the newest revision pending-upgrade
    name, namespace = release
    core = k8s.CoreV1Api(apiserver.client())
    secret = core.read_namespaced_secret(f"sh.helm.release.v1.{name}.v1", namespace)
    record = helm_state.decode_release(secret.data["release"])
    record["info"]["status"] = "pending-upgrade"
    record["version"] = 2
    encoded = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(record).encode()))).decode()
    labels = dict(secret.metadata.labels, version="2", status="pending-upgrade")
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": f"sh.helm.release.v1.{name}.v2", "labels": labels}, "type": "helm.sh/release.v1", "data": {"release": encoded}},
    )
    found, _result = state(module, name, namespace, values={"greeting": "hi"})
    assert (found["pending"], found["revision"], found["up_to_date"]) == (True, 2, False)
    assert f"release {namespace}/{name} is pending-upgrade (revision 2)" in found["reasons"]
