"""meshops.istio.object_set against a real API server: dry run first, nothing half-applied,
reruns that change nothing, drift repaired, prune and removal."""

import copy
import uuid

import pytest
from kubernetes import client as k8s

from ansible_collections.meshops.istio.plugins.modules import object_set
from tests.helpers import run_module

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def module(capsys, apiserver):
    def run(args, check_mode=False, diff=False):
        args = dict(apiserver.auth(), **args)
        if diff:
            args["_ansible_diff"] = True
        return run_module(object_set.main, capsys, args, check_mode=check_mode)

    return run


@pytest.fixture
def core(apiserver):
    return k8s.CoreV1Api(apiserver.client())


@pytest.fixture
def namespace():
    return "os-" + uuid.uuid4().hex[:8]


def objects_for(namespace, data=None, port=8000):
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": "meshops.istio"}}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace, "labels": {"meshops.istio/instance": namespace}},
            "data": data if data is not None else {"a": "1", "b": "2"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace, "labels": {"meshops.istio/instance": namespace}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": port, "targetPort": 8080, "protocol": "TCP"}]},
        },
    ]


def versions(core, namespace):
    return (
        core.read_namespaced_config_map("settings", namespace).metadata.resource_version,
        core.read_namespaced_service("web", namespace).metadata.resource_version,
    )


def test_apply_then_rerun_changes_nothing(module, core, namespace):
    rc, result = module({"definitions": objects_for(namespace)})
    assert rc == 0, result
    assert result["changed"] is True
    assert [o["action"] for o in result["objects"]] == ["created", "created", "created"]
    before = versions(core, namespace)
    rc, result = module({"definitions": objects_for(namespace)})
    assert rc == 0, result
    assert result["changed"] is False
    assert {o["action"] for o in result["objects"]} == {"unchanged"}
    assert versions(core, namespace) == before
    # the check mode of an unchanged set is unchanged too
    rc, result = module({"definitions": objects_for(namespace)}, check_mode=True)
    assert (rc, result["changed"]) == (0, False)


def test_check_mode_and_diff_change_nothing(module, core, namespace):
    module({"definitions": objects_for(namespace)})
    before = versions(core, namespace)
    rc, result = module({"definitions": objects_for(namespace, data={"a": "changed"})}, check_mode=True, diff=True)
    assert rc == 0, result
    assert result["changed"] is True
    assert [o["action"] for o in result["objects"]] == ["unchanged", "update", "unchanged"]
    (diff,) = result["diff"]
    assert diff["before"]["data"] == {"a": "1", "b": "2"}
    assert diff["after"]["data"] == {"a": "changed"}
    assert versions(core, namespace) == before


def test_a_hand_edit_and_a_removed_field_are_applied_again(module, core, namespace):
    module({"definitions": objects_for(namespace)})
    core.patch_namespaced_config_map("settings", namespace, {"data": {"a": "by hand"}})
    rc, result = module({"definitions": objects_for(namespace)})
    assert rc == 0 and result["changed"] is True, result
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "1", "b": "2"}
    # a key the set no longer gives is removed (server-side apply drops the fields it owned)
    rc, result = module({"definitions": objects_for(namespace, data={"a": "1"})})
    assert rc == 0 and result["changed"] is True, result
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "1"}


def test_a_rejected_object_leaves_the_cluster_as_it_was(module, core, namespace):
    module({"definitions": objects_for(namespace)})
    before = versions(core, namespace)
    bad = objects_for(namespace, data={"a": "new"}, port=0)  # the ConfigMap change is valid, the Service is not
    bad.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": namespace}, "data": {"x": "y"}})
    rc, result = module({"definitions": bad})
    assert rc == 1
    assert result["msg"].startswith("the cluster rejected 1 object(s), nothing was applied: Service " + namespace + "/web:")
    assert "spec.ports[0].port" in result["msg"]
    assert versions(core, namespace) == before
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "1", "b": "2"}
    with pytest.raises(k8s.exceptions.ApiException):
        core.read_namespaced_config_map("extra", namespace)


def test_missing_namespaces_and_kinds_are_named_before_anything_is_sent(module, core, namespace):
    objects = objects_for(namespace)[1:]
    objects.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g", "namespace": namespace}, "spec": {}})
    rc, result = module({"definitions": objects})
    assert rc == 1
    assert result["msg"] == (
        "nothing was applied: the CRDs of Gateway (networking.istio.io/v1) are not installed: no API resource serves them; "
        f"namespace(s) {namespace} do not exist"
    )
    # check mode after roles that would create them: reported, not a failure
    rc, result = module({"definitions": objects}, check_mode=True)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["notes"] == [
        "check mode: the CRDs of Gateway (networking.istio.io/v1) are not installed: no API resource serves them; the objects that need them would be created",
        f"check mode: namespace(s) {namespace} do not exist; the objects that need them would be created",
    ]


def test_prune_and_absent(module, core, namespace):
    kinds = [{"api_version": "v1", "kind": "ConfigMap"}, {"api_version": "v1", "kind": "Service"}]
    module({"definitions": objects_for(namespace)})
    keep = objects_for(namespace)[:2]  # the Service left the set
    rc, result = module({"definitions": keep, "prune": {"selector": f"meshops.istio/instance={namespace}", "kinds": kinds}})
    assert rc == 0 and result["changed"] is True, result
    assert [p["id"] for p in result["pruned"] if p["action"] == "deleted"] == [f"Service {namespace}/web"]
    with pytest.raises(k8s.exceptions.ApiException):
        core.read_namespaced_service("web", namespace)
    rc, result = module({"state": "absent", "definitions": keep[1:], "wait": 30})
    assert rc == 0 and result["changed"] is True, result
    rc, result = module({"state": "absent", "definitions": keep[1:]})
    assert (rc, result["changed"]) == (0, False)
    assert [o["action"] for o in result["objects"]] == ["absent"]


def test_a_rollout_that_never_happens_fails_naming_the_workload(module, namespace):
    """No controller runs beside this API server: the Deployment is never rolled out."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
        },
    }
    rc, result = module({"definitions": [*objects_for(namespace)[:1], deployment], "wait": 3})
    assert rc == 1
    assert result["msg"].startswith("not rolled out after 3s: Deployment " + namespace + "/web:")


def test_every_object_needs_a_name(module):
    rc, result = module({"definitions": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]})
    assert rc == 1
    assert result["msg"].startswith("nothing was applied: object without apiVersion, kind or metadata.name")


def test_unchanged_objects_are_not_even_dry_run(module, core, namespace, monkeypatch):
    """A rerun costs one read per object: no dry run, no apply."""
    module({"definitions": objects_for(namespace)})
    calls = []
    original = object_set.ObjectSet._apply

    def counting(self, entry, dry_run):
        calls.append((entry["id"], dry_run))
        return original(self, entry, dry_run)

    monkeypatch.setattr(object_set.ObjectSet, "_apply", counting)
    rc, result = module({"definitions": objects_for(namespace)})
    assert (rc, result["changed"], calls) == (0, False, [])
    module({"definitions": objects_for(namespace, data={"a": "9"})})
    assert calls == [(f"ConfigMap {namespace}/settings", True), (f"ConfigMap {namespace}/settings", False)]
    rc, result = module({"definitions": copy.deepcopy(objects_for(namespace, data={"a": "9"})), "force": True})
    assert rc == 0 and result["changed"] is False, result  # forced applies that change nothing are no change
