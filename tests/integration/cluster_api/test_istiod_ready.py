"""meshops.istio.istiod_ready against a real API server without istiod: every check that cannot
pass is reported by name with the cluster's answer, within the timeout, and nothing is created.
(The checks passing against a real istiod are exercised by every site.yml run on kind.)"""

import time
import uuid

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from ansible_collections.meshops.istio.plugins.modules import istiod_ready
from tests.helpers import run_module
from tests.support.apiserver import ApiServer

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

GATEWAY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gateways.networking.istio.io"},
    "spec": {
        "group": "networking.istio.io",
        "names": {"kind": "Gateway", "plural": "gateways", "singular": "gateway", "listKind": "GatewayList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    """A server of its own: the Gateway CRD these tests install must not exist for the other tests."""
    server = ApiServer(tmp_path_factory.mktemp("istiod-ready"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def module(capsys, apiserver):
    def run(**args):
        return run_module(istiod_ready.main, capsys, dict(apiserver.auth(), **args))

    return run


@pytest.fixture
def namespace(apiserver):
    name = "ir-" + uuid.uuid4().hex[:8]
    k8s.CoreV1Api(apiserver.client()).create_namespace({"metadata": {"name": name}})
    return name


def available_deployment(apiserver, namespace, name="istiod"):
    """A Deployment whose status says Available (no controller runs here, so the test sets it)."""
    apps = k8s.AppsV1Api(apiserver.client())
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "discovery", "image": "meshops.invalid/pilot:x"}]}},
            },
        },
    )
    status = {"status": {"conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "test"}]}}
    apps.patch_namespaced_deployment_status(name, namespace, status)


def gateway_crd(apiserver):
    ext = k8s.ApiextensionsV1Api(apiserver.client())
    try:
        ext.create_custom_resource_definition(GATEWAY_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(GATEWAY_CRD["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return
        time.sleep(0.2)
    raise AssertionError("the Gateway CRD was not established within 30 s")


def test_a_missing_deployment_is_named_after_the_timeout(module, namespace):
    start = time.monotonic()
    rc, result = module(namespace=namespace, deployment="istiod-1-31-0", revision="1-31-0", timeout=2, delay=0.5)
    elapsed = time.monotonic() - start

    assert rc == 1
    assert result["failed_check"] == "available"
    assert result["last_answer"] == "the Deployment does not exist"
    assert f"istiod revision '1-31-0' (Deployment {namespace}/istiod-1-31-0): its Deployment is Available did not hold within 2s" in result["msg"]
    assert 2 <= elapsed < 15


def test_an_unavailable_deployment_is_waited_for(module, namespace, apiserver):
    apps = k8s.AppsV1Api(apiserver.client())
    available_deployment(apiserver, namespace)
    apps.patch_namespaced_deployment_status(
        "istiod", namespace, {"status": {"conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "0 of 1"}]}}
    )

    rc, result = module(namespace=namespace, timeout=1, delay=0.3)

    assert rc == 1
    assert result["failed_check"] == "available"
    assert result["last_answer"] == "Available=False: 0 of 1"


def test_a_webhook_that_does_not_answer_is_not_taken_for_one_that_accepts(module, namespace, apiserver):
    available_deployment(apiserver, namespace)
    gateway_crd(apiserver)

    rc, result = module(namespace=namespace, timeout=2, delay=0.5)

    # no webhook here: the invalid Gateway is accepted, which is what a fail-open webhook does too
    assert rc == 1
    assert result["failed_check"] == "rejects_invalid"
    assert result["last_answer"] == "accepted (a webhook that does not answer yet fails open)"
    assert "the validation webhook rejects an invalid Gateway did not hold within 2s" in result["msg"]
    # dry runs only: no probe object was created
    custom = k8s.CustomObjectsApi(apiserver.client())
    assert custom.list_namespaced_custom_object("networking.istio.io", "v1", namespace, "gateways")["items"] == []


def test_negative_settings_are_refused(module, namespace):
    rc, result = module(namespace=namespace, timeout=-1)

    assert rc == 1
    assert result["msg"] == "timeout and delay must not be negative (timeout=-1, delay=1.0)"
