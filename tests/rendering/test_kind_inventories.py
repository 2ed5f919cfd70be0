"""The two inventories of the local kind cluster: images built here, or the official ones."""

import json
import os
import subprocess
import sys

import pytest

from meshops_dev import cache, progress
from tests.helpers import REPO

KIND = REPO / "inventories" / "kind"


def host_vars(inventory):
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(KIND / inventory), "--host", "kind-meshops"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_air_gapped_inventory_uses_only_images_built_here():
    hv = host_vars("hosts.yml")
    assert hv["control_plane_chart_source"] == "local"
    assert hv["control_plane_registry"] == "meshops.local/istio"
    assert hv["control_plane_image_tag"] == "{{ meshops_istio_source_tag }}"
    assert hv["control_plane_proxy_profile"] == "upstream_envoy"
    assert hv["control_plane_image_pull_policy"] == "IfNotPresent"
    assert hv["httpbin_image"].startswith("meshops.local/")
    assert hv["verify_client"]["image"].startswith("meshops.local/")


def test_official_inventory_leaves_images_to_the_role_defaults():
    hv = host_vars("official.yml")
    overridden = {k for k in hv if k.startswith(("control_plane_", "httpbin_", "verify_client"))}
    assert overridden == set()
    assert "meshops.local" not in json.dumps(hv)


def test_both_inventories_map_the_ingress_gateway_to_the_kind_port_mappings():
    for inventory in ("hosts.yml", "official.yml"):
        hv = host_vars(inventory)
        ingress = next(g for g in hv["gateways_list"] if g["istio_label"] == "ingressgateway")
        node_ports = {p["name"]: p.get("node_port") for p in ingress["service"]["ports"]}
        assert node_ports == {"status-port": None, "http2": 30080, "https": 30443}, inventory
        assert hv["verify_ingress_address"] == "127.0.0.1:{{ meshops_ingress_http_port }}"


@pytest.mark.parametrize(("value", "inventory"), [(None, "hosts.yml"), ("source", "hosts.yml"), ("official", "official.yml")])
def test_image_source_selects_the_inventory(monkeypatch, value, inventory):
    if value is None:
        monkeypatch.delenv("MESHOPS_IMAGES", raising=False)
    else:
        monkeypatch.setenv("MESHOPS_IMAGES", value)
    assert cache.kind_inventory() == KIND / inventory


def test_unknown_image_source_is_refused(monkeypatch):
    monkeypatch.setenv("MESHOPS_IMAGES", "quay")
    with pytest.raises(progress.DevError, match=r"MESHOPS_IMAGES='quay': use one of source, official"):
        cache.image_source()
