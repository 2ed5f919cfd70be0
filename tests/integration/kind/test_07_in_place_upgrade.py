"""In-place upgrades on one cluster of the fleet, the first (the fleet's other clusters are gone
after the fleet tests, so this one has the two cores to itself): helm upgrade of istio-base,
istiod and the gateways, every injected workload and gateway restarted onto the new version; and
Istio's skew rules refusing an upgrade before anything changes."""

import pytest

from meshops_dev import upgrade_scenario
from tests.support.fleet import MEMBERS, NEW_VARS, OLD_VARS, Fleet, failure

pytestmark = pytest.mark.kind

MEMBER = MEMBERS[0]
IN_PLACE = upgrade_scenario.IN_PLACE
TAGS = {"1.30": "1.30-9739e10eb9d7", "1.31": "1.31-eed52ebb66ad"}


def proxy_versions(fleet):
    pods = fleet.json(MEMBER, "get", "pods", "-A")["items"]
    versions = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for container in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
            if container["name"] == "istio-proxy":
                tag = container["image"].rsplit(":", 1)[1]
                versions[tag] = versions.get(tag, 0) + 1
    return versions


@pytest.fixture(name="in_place", scope="module")
def fixture_in_place(kind_env, first_member):
    assert first_member == MEMBER
    fleet = Fleet(kind_env)
    rc, output, _stderr = fleet.run("playbooks/uninstall.yml", limit=MEMBER.context)
    assert rc == 0, failure(output, MEMBER.context)
    rc, output, _stderr = fleet.run("site.yml", dict(OLD_VARS, **IN_PLACE), limit=MEMBER.context)
    assert rc == 0, failure(output, MEMBER.context)
    return fleet


def test_in_place_upgrade_restarts_every_proxy_onto_the_new_version(in_place):
    fleet = in_place
    assert set(proxy_versions(fleet)) == {TAGS["1.30"]}
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, **IN_PLACE), limit=MEMBER.context)
    assert rc == 0, failure(output, MEMBER.context)
    state = fleet.snapshot(MEMBER)
    assert state["revisions"] == ["default"] and state["tags"] == {}, state
    # the gateways (image: auto, not restarted by the chart upgrade) and httpbin run the new proxy
    versions = proxy_versions(fleet)
    assert versions == {TAGS["1.31"]: versions.get(TAGS["1.31"], 0)} and versions[TAGS["1.31"]] >= 5, versions
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, **IN_PLACE), limit=MEMBER.context)
    assert rc == 0 and output["stats"][MEMBER.context]["changed"] == 0, output["stats"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # back to 1.30 while every proxy runs 1.31
        (dict(OLD_VARS, **IN_PLACE), "newer than the wanted control plane 1.30: the data plane may never be ahead of the control plane"),
        # two minor versions in one in-place step
        (dict(NEW_VARS, control_plane_version="1.33.0", **IN_PLACE), "an in-place upgrade goes one minor version at a time: istiod runs 1.31, 1.33 is wanted"),
    ],
    ids=["data-plane-newer", "two-minor-versions"],
)
def test_the_skew_rules_refuse_before_anything_changes(in_place, extra, message):
    fleet = in_place
    before = fleet.snapshot(MEMBER)
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", extra, limit=MEMBER.context)
    assert rc != 0
    name, result = failure(output, MEMBER.context)
    assert name == "meshops.istio.control_plane : Stop when the change breaks Istio's version skew rules (nothing was changed)", name
    assert message in result["msg"], result["msg"]
    assert output["stats"][MEMBER.context]["changed"] == 0
    assert fleet.snapshot(MEMBER) == before
