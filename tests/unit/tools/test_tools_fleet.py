"""The fleet plan: names, contexts, kubeconfigs and ingress ports of the kind clusters side by
side, and the kind config each one is created with."""

import pathlib

import pytest
import yaml

from meshops_dev import cache, cli, cluster, errors, fleet, istio, upgrade_scenario
from tests.support import fleet as support

PORT_VARIABLES = ("MESHOPS_INGRESS_HTTP_PORT", "MESHOPS_INGRESS_HTTPS_PORT", "MESHOPS_FLEET_HTTP_PORT", "MESHOPS_FLEET_HTTPS_PORT", "MESHOPS_FLEET")


@pytest.fixture(autouse=True)
def _no_port_settings(monkeypatch, tmp_path):
    for var in PORT_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MESHOPS_STATE", str(tmp_path / "state"))


def test_three_clusters_with_their_own_names_contexts_and_ports():
    plan = fleet.plan(3)
    assert [(m.name, m.context, m.node) for m in plan] == [
        ("meshops", "kind-meshops", "meshops-control-plane"),
        ("meshops-2", "kind-meshops-2", "meshops-2-control-plane"),
        ("meshops-3", "kind-meshops-3", "meshops-3-control-plane"),
    ]
    assert [(m.http_port, m.https_port) for m in plan] == [(80, 443), (8081, 8444), (8082, 8445)]
    assert [m.ingress for m in plan] == ["127.0.0.1:80", "127.0.0.1:8081", "127.0.0.1:8082"]


def test_each_cluster_has_its_kubeconfig_and_kind_config_in_the_state_dir(tmp_path):
    for m in fleet.plan(3):
        assert m.kubeconfig() == tmp_path / "state" / f"kubeconfig-{m.name}"
        assert m.config_path() == tmp_path / "state" / f"kind-{m.name}.yaml"
    assert fleet.FIRST.kubeconfig() == cache.kubeconfig("meshops")


def test_the_first_cluster_is_todays_cluster():
    assert fleet.Member(1) == fleet.FIRST
    assert (cluster.CLUSTER, cluster.CONTEXT, cluster.NODE) == ("meshops", "kind-meshops", "meshops-control-plane")


def test_ports_follow_the_environment(monkeypatch):
    monkeypatch.setenv("MESHOPS_INGRESS_HTTP_PORT", "8080")
    monkeypatch.setenv("MESHOPS_INGRESS_HTTPS_PORT", "8443")
    monkeypatch.setenv("MESHOPS_FLEET_HTTP_PORT", "9081")
    monkeypatch.setenv("MESHOPS_FLEET_HTTPS_PORT", "9444")
    assert [(m.http_port, m.https_port) for m in fleet.plan(3)] == [(8080, 8443), (9081, 9444), (9082, 9445)]


@pytest.mark.parametrize(("var", "value", "port"), [("MESHOPS_FLEET_HTTP_PORT", "8443", 8444), ("MESHOPS_INGRESS_HTTP_PORT", "8082", 8082)])
def test_two_clusters_on_one_port_are_refused(monkeypatch, var, value, port):
    monkeypatch.setenv(var, value)
    with pytest.raises(errors.DevError, match=rf"would both publish 127\.0\.0\.1:{port}: choose other ports with MESHOPS_"):
        fleet.plan(3)


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_port_that_is_no_port_is_refused(monkeypatch, value):
    monkeypatch.setenv("MESHOPS_FLEET_HTTP_PORT", value)
    with pytest.raises(errors.DevError, match="MESHOPS_FLEET_HTTP_PORT"):
        fleet.plan(2)


@pytest.mark.parametrize("count", [0, fleet.MAX_MEMBERS + 1])
def test_the_fleet_size_is_bounded(count):
    with pytest.raises(errors.DevError, match=f"1 to {fleet.MAX_MEMBERS} clusters"):
        fleet.plan(count)


@pytest.mark.parametrize(("value", "count"), [(None, 1), ("", 1), ("3", 3)])
def test_meshops_fleet_sets_the_count(monkeypatch, value, count):
    if value is not None:
        monkeypatch.setenv("MESHOPS_FLEET", value)
    assert fleet.count_from_env() == count


def test_a_meshops_fleet_that_is_no_number_is_refused(monkeypatch):
    monkeypatch.setenv("MESHOPS_FLEET", "three")
    with pytest.raises(errors.DevError, match="MESHOPS_FLEET='three'"):
        fleet.count_from_env()


@pytest.mark.parametrize(
    ("name", "index"),
    [("meshops", 1), ("meshops-2", 2), ("meshops-8", 8), ("meshops-1", None), ("meshops-02", None), ("meshops-9", None), ("meshops-x", None), ("other", None)],
)
def test_kind_cluster_names_map_to_members(name, index):
    found = fleet.member_named(name)
    assert (found.index if found else None) == index


def test_members_among_kinds_clusters_are_ordered():
    assert [m.name for m in fleet.members_among(["meshops-3", "lab", "meshops", "meshops-2"])] == ["meshops", "meshops-2", "meshops-3"]


@pytest.mark.parametrize("member", fleet.plan(3), ids=lambda m: m.name)
def test_each_member_is_created_with_its_name_and_ports(member):
    config = yaml.safe_load(cluster.kind_config(member))
    assert config["name"] == member.name
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {(p["containerPort"], p["hostPort"], p["listenAddress"]) for p in mappings} == {
        (30080, member.http_port, "127.0.0.1"),
        (30443, member.https_port, "127.0.0.1"),
    }
    assert config["networking"] == yaml.safe_load(cluster.kind_config())["networking"]


def test_fleet_up_defaults_to_the_fleet_inventorys_size(monkeypatch):
    counts = []
    monkeypatch.setattr(cli.stack, "up", counts.append)
    for argv in (["fleet", "up"], ["fleet", "up", "--count", "2"]):
        args = cli.build_parser().parse_args(argv)
        args.func(args)
    monkeypatch.setenv("MESHOPS_FLEET", "4")
    args = cli.build_parser().parse_args(["fleet", "up"])
    args.func(args)
    assert counts == [fleet.INVENTORY_SIZE, 2, 4]


def test_tests_address_the_fleet_through_the_support_module():
    assert [(m.name, m.context, m.ingress) for m in support.MEMBERS] == [(m.name, m.context, m.ingress) for m in fleet.plan(fleet.INVENTORY_SIZE)]
    assert support.MEMBERS[1].kubeconfig() == cache.kubeconfig("meshops-2")
    assert support.INVENTORY.endswith(("inventories/kind-fleet/hosts.yml", "inventories/kind-fleet/official.yml"))
    inventory = yaml.safe_load(pathlib.Path(support.INVENTORY).read_text(encoding="utf-8"))
    assert list(inventory["all"]["children"]["clusters"]["hosts"]) == support.HOSTS


def test_the_upgrade_scenario_is_the_kind_inventory_with_two_ingress_replicas():
    listed = yaml.safe_load(upgrade_scenario.CLUSTERS_VARS.read_text(encoding="utf-8"))["gateways_list"]
    scaled = upgrade_scenario.gateways_list()
    assert [g["name"] for g in scaled] == [g["name"] for g in listed]
    assert scaled[0]["istio_label"] == "ingressgateway" and scaled[0]["replicas"] == 2
    assert scaled[1:] == listed[1:]
    assert upgrade_scenario.minor_vars("1.30") == {"meshops_istio_minor": "1.30", "gateways_list": scaled}
    assert {upgrade_scenario.OLD, upgrade_scenario.NEW} <= set(istio.VERSIONS)
