"""The inventories of the local kind clusters: images built here, or the official ones; one
cluster (inventories/kind) or the fleet (inventories/kind-fleet); the Istio version selection."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from meshops_dev import cache, fleet, istio, progress
from tests.helpers import REPO, run_playbook, task_results

KIND = REPO / "inventories" / "kind"
FLEET = REPO / "inventories" / "kind-fleet"
# What the roles receive from the inventory, rendered.
SELECTION = ("control_plane_version", "control_plane_image_tag", "control_plane_chart_dir", "control_plane_registry")
CONNECTION = ("meshops_kubeconfig", "meshops_context", "verify_ingress_address")


def all_host_vars(inventory):
    """{host: variables as the inventory defines them (unrendered)}: one ansible-inventory run."""
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(inventory), "--list"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout)["_meta"]["hostvars"]


def host_vars(inventory, host="kind-meshops"):
    return all_host_vars(inventory)[host]


def rendered(tmp_path, inventory, names, minors=(None,)):
    """{host: {minor: {name: rendered value}}} of every host of ``inventory``, with
    ``meshops_istio_minor`` set to each of ``minors`` (None: the inventory's own); undefined
    names are left out. One ansible-playbook run, one task per minor."""
    show = "{{ dict(names | zip(names | map('extract', vars) | map('default', omit))) }}"
    tasks = [{"name": f"Show {minor}", "ansible.builtin.debug": {"msg": show}, "vars": {"meshops_istio_minor": minor} if minor else {}} for minor in minors]
    playbook = tmp_path / "show.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "vars": {"names": list(names)}, "tasks": tasks}]))
    rc, output, stderr = run_playbook(playbook, inventory=str(inventory), timeout=120)
    assert rc == 0, stderr[-3000:]
    out = {}
    for host in output["stats"]:
        results = dict(task_results(output, host))
        out[host] = {minor: {k: v for k, v in results[f"Show {minor}"]["msg"].items() if not str(v).startswith("__omit_place_holder__")} for minor in minors}
    return out


@pytest.fixture(name="cache_env")
def fixture_cache_env(monkeypatch, tmp_path):
    """A known cache and port environment, so rendered paths and ports are predictable."""
    monkeypatch.setenv("MESHOPS_CACHE", str(tmp_path / "cache"))
    for var in ("MESHOPS_STATE", "MESHOPS_INGRESS_HTTP_PORT", "MESHOPS_FLEET_HTTP_PORT", "MESHOPS_INGRESS_HTTPS_PORT", "MESHOPS_FLEET_HTTPS_PORT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"


def test_air_gapped_inventory_uses_only_images_built_here():
    hv = host_vars(KIND / "hosts.yml")
    assert hv["control_plane_chart_source"] == "local"
    assert hv["control_plane_registry"] == "meshops.local/istio"
    assert hv["control_plane_image_tag"] == "{{ meshops_istio_builds[meshops_istio_minor].tag }}"
    assert hv["control_plane_proxy_profile"] == "upstream_envoy"
    assert hv["control_plane_image_pull_policy"] == "IfNotPresent"
    assert hv["httpbin_image"].startswith("meshops.local/")
    assert hv["verify_client"]["image"].startswith("meshops.local/")


def test_official_inventory_leaves_images_to_the_role_defaults():
    hv = host_vars(KIND / "official.yml")
    overridden = {k for k in hv if k.startswith(("control_plane_", "httpbin_", "verify_client"))}
    assert overridden == {"control_plane_version"}  # the official release of meshops_istio_minor
    assert "meshops.local" not in json.dumps(hv)


def test_both_inventories_map_the_ingress_gateway_to_the_kind_port_mappings():
    for inventory in ("hosts.yml", "official.yml"):
        hv = host_vars(KIND / inventory)
        ingress = next(g for g in hv["gateways_list"] if g["istio_label"] == "ingressgateway")
        node_ports = {p["name"]: p.get("node_port") for p in ingress["service"]["ports"]}
        assert node_ports == {"status-port": None, "http2": 30080, "https": 30443}, inventory
        assert hv["verify_ingress_address"] == "127.0.0.1:{{ meshops_ingress_http_port }}"


def only_host(by_host):
    """The rendering of the inventory's one host."""
    assert len(by_host) == 1, by_host
    return next(iter(by_host.values()))


def test_the_default_selection_is_todays_build(tmp_path, cache_env):
    """Without a selector the air-gapped cluster gets today's 1.31 build: the image tag and the
    chart directory it always had; control_plane_version is that build's chart version. Each
    minor selects its build."""
    by_minor = only_host(rendered(tmp_path, KIND / "hosts.yml", SELECTION, (None, *istio.VERSIONS)))
    assert by_minor[None] == {
        "control_plane_version": "1.31.0-eed52ebb66ad",
        "control_plane_image_tag": "1.31-eed52ebb66ad",
        "control_plane_chart_dir": f"{cache_env}/istio/1.31-eed52ebb66ad/charts",
        "control_plane_registry": "meshops.local/istio",
    }
    assert by_minor[None] == by_minor[istio.DEFAULT_MINOR]
    for minor, v in istio.VERSIONS.items():
        assert by_minor[minor]["control_plane_version"] == v.chart_version
        assert by_minor[minor]["control_plane_image_tag"] == v.tag
        assert by_minor[minor]["control_plane_chart_dir"] == str(v.charts_dir())


def test_meshops_istio_minor_selects_an_official_release(tmp_path, cache_env):
    by_minor = only_host(rendered(tmp_path, KIND / "official.yml", SELECTION, (None, *istio.VERSIONS)))
    assert by_minor[None] == {"control_plane_version": "1.31.0"}  # the role's default
    for minor, v in istio.VERSIONS.items():
        assert by_minor[minor] == {"control_plane_version": v.official}


@pytest.mark.parametrize("inventory", ["hosts.yml", "official.yml"])
def test_the_fleet_inventory_addresses_each_cluster_of_the_fleet_plan(tmp_path, cache_env, inventory):
    hosts = {host: by_minor[None] for host, by_minor in rendered(tmp_path, FLEET / inventory, CONNECTION + SELECTION).items()}
    plan = fleet.plan(fleet.INVENTORY_SIZE)
    assert sorted(hosts) == sorted(m.context for m in plan)
    for m in plan:
        assert {k: hosts[m.context][k] for k in CONNECTION} == {
            "meshops_kubeconfig": str(m.kubeconfig()),
            "meshops_context": m.context,
            "verify_ingress_address": m.ingress,
        }
    single = host_vars(KIND / inventory)
    for host, defined in all_host_vars(FLEET / inventory).items():
        assert {k: defined.get(k) for k in SELECTION} == {k: single.get(k) for k in SELECTION}, host


def test_fleet_ports_follow_the_environment(tmp_path, cache_env, monkeypatch):
    monkeypatch.setenv("MESHOPS_INGRESS_HTTP_PORT", "8080")
    monkeypatch.setenv("MESHOPS_FLEET_HTTP_PORT", "9081")
    hosts = rendered(tmp_path, FLEET / "hosts.yml", ("verify_ingress_address",))
    assert {h: v[None]["verify_ingress_address"] for h, v in hosts.items()} == {m.context: m.ingress for m in fleet.plan(fleet.INVENTORY_SIZE)}
    assert hosts["kind-meshops-3"][None]["verify_ingress_address"] == "127.0.0.1:9082"


def test_the_fleet_shares_the_kind_inventorys_group_vars():
    link = FLEET / "group_vars"
    assert link.is_symlink()
    assert link.resolve() == (KIND / "group_vars").resolve()


@pytest.mark.parametrize(("value", "inventory"), [(None, "hosts.yml"), ("source", "hosts.yml"), ("official", "official.yml")])
def test_image_source_selects_the_inventory(monkeypatch, value, inventory):
    if value is None:
        monkeypatch.delenv("MESHOPS_IMAGES", raising=False)
    else:
        monkeypatch.setenv("MESHOPS_IMAGES", value)
    assert cache.kind_inventory() == KIND / inventory
    assert cache.fleet_inventory() == FLEET / inventory


def test_unknown_image_source_is_refused(monkeypatch):
    monkeypatch.setenv("MESHOPS_IMAGES", "quay")
    with pytest.raises(progress.DevError, match=r"MESHOPS_IMAGES='quay': use one of source, official"):
        cache.image_source()
