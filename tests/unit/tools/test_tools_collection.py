"""The tools read the collection's own definitions instead of copying them."""

import importlib.util

import pytest
import yaml

from meshops_dev import cache, collection, errors, hosttools, local

TOOLS = cache.TOOLS_DIR


def load_lab():
    spec = importlib.util.spec_from_file_location("envoy_lab", TOOLS / "lab" / "envoy_lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_profile_is_the_control_plane_roles():
    role_vars = yaml.safe_load((cache.REPO_ROOT / "roles" / "control_plane" / "vars" / "main.yml").read_text())
    assert collection.proxy_profile("upstream_envoy") == role_vars["__control_plane_profiles"]["upstream_envoy"]
    assert collection.proxy_profile("standard") == {}


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(errors.DevError, match=r"no profile 'istio_proxy' \(has: standard, upstream_envoy"):
        collection.proxy_profile("istio_proxy")


def test_no_copy_of_the_profile_in_the_tools():
    # the lab's variants turn single settings back on ("true"); the profile's values live in the role
    settings = ('"PILOT_ENABLE_ALPN_FILTER": "false"', '"PILOT_ENABLE_METADATA_EXCHANGE": "false"', '"tracer": "none"')
    copies = [p for p in TOOLS.rglob("*.py") if any(s in p.read_text() for s in settings)]
    assert copies == []


def test_no_copy_of_the_reference_objects_in_the_tools():
    copies = [p for p in TOOLS.rglob("*.py") if "direct-cnn-through-egress-gateway" in p.read_text() or "egressgateway-for-cnn" in p.read_text()]
    assert copies == []


def test_the_lab_maps_the_upstream_profile():
    lab = load_lab()
    env, mesh = lab.profile_settings("upstream")
    profile = collection.proxy_profile("upstream_envoy")
    assert env == {k: str(v) for k, v in profile["pilot"]["env"].items()}
    assert "defaultProviders" not in lab.mesh_config(mesh, {})  # telemetry.enabled: false
    env, mesh = lab.profile_settings("chart-default")
    assert env == {}
    assert lab.mesh_config(mesh, {})["defaultProviders"] == {"metrics": ["prometheus"]}


def test_the_lab_refuses_a_profile_setting_it_cannot_map(monkeypatch):
    lab = load_lab()
    monkeypatch.setattr(collection, "proxy_profile", lambda name: {"pilot": {"env": {}}, "meshConfig": {"x": 1}})
    with pytest.raises(lab.LabError, match="meshConfig"):
        lab.profile_settings("upstream")


def test_the_collection_link_points_at_the_repository():
    root = collection.link()
    assert (root / "ansible_collections" / "meshops" / "istio").resolve() == cache.REPO_ROOT
    assert collection.collections_path().split(":")[0] == str(root)


def test_helm_diff_is_installed_without_its_download_hooks():
    manifest = (
        "name: diff\nversion: 3.13.2\nhooks:\n  install: curl ...\n  update: curl ...\n"
        "platformHooks:\n  install:\n    - os: linux\ncommand: $HELM_PLUGIN_DIR/bin/diff\n"
    )
    assert hosttools.without_install_hooks(manifest) == "name: diff\nversion: 3.13.2\ncommand: $HELM_PLUGIN_DIR/bin/diff\n"


def test_wait_for_returns_the_first_true_value():
    answers = iter([None, ConnectionRefusedError("not yet"), "", "ready"])

    def probe():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert local.wait_for(probe, "the server", timeout=5, interval=0) == "ready"


def test_wait_for_is_bounded_and_names_the_last_error():
    def refused():
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(errors.WaitTimeout, match=r"waiting for etcd \(last error: connection refused\)"):
        local.wait_for(refused, "etcd", timeout=0.2, interval=0.05)


def test_free_ports_are_distinct():
    ports = local.free_ports(5)
    assert len(set(ports)) == 5
