"""The kind cluster config tools/dev writes, and the node image's manifests."""

import json

import pytest
import yaml

from meshops_dev import addresses, cluster, nodeimage


@pytest.fixture(name="config")
def fixture_config(monkeypatch):
    monkeypatch.delenv("MESHOPS_IMAGES", raising=False)
    monkeypatch.setenv("MESHOPS_INGRESS_HTTP_PORT", "8080")
    monkeypatch.setenv("MESHOPS_INGRESS_HTTPS_PORT", "8443")
    return yaml.safe_load(cluster.kind_config())


def test_one_control_plane_node_on_the_local_node_image(config):
    assert config["kind"] == "Cluster"
    assert config["name"] == cluster.CLUSTER
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    assert node["image"] == nodeimage.NODE_IMAGE


def test_everything_is_published_on_loopback_only(config):
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {(m["containerPort"], m["hostPort"], m["listenAddress"]) for m in mappings} == {(30080, 8080, "127.0.0.1"), (30443, 8443, "127.0.0.1")}


def test_subnets_are_the_address_plan(config):
    assert config["networking"]["podSubnet"] == addresses.POD_SUBNET
    assert config["networking"]["serviceSubnet"] == addresses.SERVICE_SUBNET


def test_kubelet_accepts_cgroup_v1(config):
    (patch,) = config["kubeadmConfigPatches"]
    assert yaml.safe_load(patch) == {"kind": "KubeletConfiguration", "failCgroupV1": False}


def test_official_images_use_kinds_node_image(monkeypatch):
    monkeypatch.setenv("MESHOPS_IMAGES", "official")
    assert yaml.safe_load(cluster.kind_config())["nodes"][0]["image"] == cluster.OFFICIAL_NODE_IMAGE


def test_the_cluster_waits_for_no_storage_provisioner():
    assert [w for w in cluster.SYSTEM_WORKLOADS if "local-path" in " ".join(w)] == []


@pytest.mark.parametrize("manifest", [nodeimage.cni_manifest, nodeimage.storage_manifest])
def test_kind_manifests_hold_one_kube_system_config_map(manifest):
    text = manifest()
    assert text.startswith(nodeimage.MANIFEST_MARKER + "\n")
    (doc,) = list(yaml.safe_load_all(text))
    assert doc["kind"] == "ConfigMap"
    assert doc["metadata"]["namespace"] == "kube-system"
    assert "{{" not in text  # kind renders default-cni.yaml as a Go template


def test_the_cni_manifest_records_the_nodes_conflist():
    data = yaml.safe_load(nodeimage.cni_manifest())["data"]
    assert data["podCIDR"] == addresses.NODE_POD_CIDR
    assert json.loads(data["10-meshops-ptp.conflist"]) == json.loads(nodeimage.cni_conflist())
    ranges = json.loads(nodeimage.cni_conflist())["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": addresses.NODE_POD_CIDR}]]


def test_no_storage_provisioner_image_is_named():
    assert yaml.safe_load(nodeimage.storage_manifest())["data"] == {"provisioner": "none"}
    assert not hasattr(nodeimage, "local_path_image")
