"""The inventories the AWX jobs of the kind tests get (tools/meshops_dev/awx.py): no kubeconfig
file anywhere (the credential brings the clusters), a slice's inventory holds only its clusters,
and from an execution environment each ingress gateway is reached at its node's name."""

import pytest
import yaml

from meshops_dev import awx
from tests.helpers import REPO

FLEET = REPO / "inventories" / "kind-fleet"


def hosts_of(inventory):
    data = yaml.safe_load((inventory / "hosts.yml").read_text())
    return {group: list(spec["hosts"]) for group, spec in data["all"]["children"].items()}


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, [["a", "b", "c"]]), (2, [["a", "c"], ["b"]]), (3, [["a"], ["b"], ["c"]]), (5, [["a"], ["b"], ["c"]])],
)
def test_slices_split_the_hosts_as_awx_does(count, expected):
    assert awx.slices(["a", "b", "c"], count) == expected


def test_a_slice_of_the_fleet_holds_only_its_clusters_without_kubeconfig(tmp_path):
    ee = awx.ExecutionEnvironment(image="meshops.local/meshops-istio-ee:1.0.0")
    inventory = awx.job_inventory(tmp_path / "inventory", ee, FLEET, hosts=["kind-meshops", "kind-meshops-3"])
    assert hosts_of(inventory) == {"clusters": ["kind-meshops", "kind-meshops-3"], "air_gapped": ["kind-meshops", "kind-meshops-3"]}
    assert sorted(p.name for p in (inventory / "host_vars").iterdir()) == ["kind-meshops-3.yml", "kind-meshops.yml"]
    third = yaml.safe_load((inventory / "host_vars" / "kind-meshops-3.yml").read_text())
    assert third == {"meshops_context": "kind-meshops-3", "verify_ingress_address": "meshops-3-control-plane:30080"}
    assert not any("meshops_kubeconfig" in p.read_text() for p in inventory.rglob("*.yml") if p.is_file())
    # the fleet's group_vars link became the files themselves
    assert (inventory / "group_vars" / "clusters.yml").is_file() and not (inventory / "group_vars").is_symlink()


def test_the_single_cluster_inventory_has_neither_kubeconfig_nor_context(tmp_path):
    inventory = awx.job_inventory(tmp_path / "inventory")
    host = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["clusters"]["hosts"]["kind-meshops"]
    # its only host variables were the kubeconfig and the context
    assert host in (None, {}), host
    assert not (inventory / "official.yml").exists()
