"""Revision-based upgrades of a fleet of three kind clusters, from the older Istio build to the
newer one (tests/support/fleet.py): a rollout that stops at the cluster whose gate fails, with
that cluster rolled back and the next one untouched; the check-mode plan; rollbacks from each
step; the fleet's upgrade killed mid-run, the rerun that completes the fleet and a rerun that
changes nothing.

The stages share the fleet and run in file order.
"""

import pytest

from meshops_dev.load import Load
from tests.helpers import task_results
from tests.support.fleet import HOSTS, MEMBERS, NEW_VARS, OLD_VARS, Fleet, failure, failures, kill_when, stop

pytestmark = pytest.mark.kind

C1, C2, C3 = MEMBERS
OLD_REV, NEW_REV = "1-30-4", "1-31-0"
TAGS_ON = {OLD_REV: {"prod-stable": OLD_REV, "prod-canary": OLD_REV}, NEW_REV: {"prod-stable": NEW_REV, "prod-canary": NEW_REV}}


@pytest.fixture(name="fleet", scope="module")
def fixture_fleet(kind_env, fleet_up):
    fleet = Fleet(kind_env)
    # test_05 left the first cluster without Istio; every cluster gets the older version
    rc, output, stderr = fleet.run("site.yml", OLD_VARS)
    assert rc == 0, (output.get("stats"), [failure(output, h) for h in HOSTS], stderr[-2000:])
    return fleet


def assert_on(fleet, member, revision):
    state = fleet.snapshot(member)
    assert state["revisions"] == [revision], (member.name, state)
    assert state["tags"] == TAGS_ON[revision], (member.name, state)
    assert state["default_revision"] == revision, (member.name, state)
    assert set(fleet.proxy_revisions(member)) == {revision}, (member.name, state["proxies"])
    assert all(status == "deployed" for status, _version in state["releases"].values()), (member.name, state["releases"])
    return state


def test_every_cluster_starts_on_the_older_revision(fleet):
    for member in MEMBERS:
        state = assert_on(fleet, member, OLD_REV)
        assert state["namespace_labels"]["httpbin"] == {"istio.io/rev": "prod-canary"}


def test_a_failing_gate_stops_the_rollout_and_rolls_that_cluster_back(fleet):
    untouched = fleet.snapshot(C3)
    # the cause: on the second cluster the reference route is gone, so the gate's probes fail there
    fleet.kubectl(C2, "delete", "virtualservice", "httpbin", "-n", "httpbin")
    with Load(C1.http_port, "httpbin.example.com", rate=20, max_seconds=1200) as load:
        rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, verify_retries=5))
    assert rc != 0
    stats = output["stats"]
    assert stats[C1.context]["failures"] == 0 and stats[C2.context]["failures"] == 1, stats
    assert stats[C3.context]["changed"] == 0, stats  # it ran the input checks only
    assert failure(output, C2.context)[0] == "meshops.istio.verify : Probe the ingress routes", failures(output, C2.context)
    name, result = stop(output, C2.context)
    assert name == "Stop the rollout at this cluster", name
    assert "reference check" in result["msg"] and "It was rolled back to its previous revision" in result["msg"], result["msg"]
    # the first cluster is upgraded, the old revision removed; no request failed through it
    assert_on(fleet, C1, NEW_REV)
    summary = load.summary()
    assert summary["sent"] > 100 and summary["failed"] == 0, summary
    # the second is back on its previous revision, nothing left pending
    assert_on(fleet, C2, OLD_REV)
    # the third was not touched
    assert fleet.snapshot(C3) == untouched
    # the cause removed: the traffic role puts the route back
    rc, output, _stderr = fleet.run("site.yml", OLD_VARS, limit=C2.context)
    assert rc == 0, failure(output, C2.context)


def test_check_mode_prints_the_plan_and_changes_nothing(fleet):
    before = fleet.snapshot(C3)
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", NEW_VARS, limit=C3.context, check=True)
    assert rc == 0, failure(output, C3.context)
    reports = [r["msg"] for name, r in task_results(output, C3.context) if name == "meshops.istio.control_plane : Report what moved"]
    # the canary step moves httpbin; the promotion moves the gateways and httpbin's neighbours
    assert reports and reports[0].startswith("would restart Deployment httpbin/httpbin"), reports
    assert any("Deployment istio-system/istio-ingressgateway" in r for r in reports[1:]), reports
    assert fleet.snapshot(C3) == before


def test_rollback_from_the_canary_step_and_after_the_promotion(fleet):
    before = assert_on(fleet, C3, OLD_REV)
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, meshops_upgrade_until="canary"), limit=C3.context)
    assert rc == 0, failure(output, C3.context)
    canary = fleet.snapshot(C3)
    assert canary["revisions"] == [OLD_REV, NEW_REV] and canary["tags"] == {"prod-stable": OLD_REV, "prod-canary": NEW_REV}, canary
    # httpbin (a canary namespace) moved; the gateways select the stable tag and stayed
    moved = {(line.split("/", 1)[0], line.rsplit("=", 1)[1]) for line in canary["proxies"]}
    assert moved == {("httpbin", NEW_REV), ("istio-system", OLD_REV)}, canary["proxies"]
    rc, output, _stderr = fleet.run("playbooks/rollback.yml", NEW_VARS, limit=C3.context)
    assert rc == 0, failure(output, C3.context)
    after = assert_on(fleet, C3, OLD_REV)
    assert after["namespace_labels"] == before["namespace_labels"]

    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, meshops_upgrade_until="promote"), limit=C3.context)
    assert rc == 0, failure(output, C3.context)
    promoted = fleet.snapshot(C3)
    assert promoted["revisions"] == [OLD_REV, NEW_REV] and promoted["tags"] == TAGS_ON[NEW_REV] and promoted["default_revision"] == NEW_REV
    with Load(C3.http_port, "httpbin.example.com", rate=20, max_seconds=900) as load:
        rc, output, _stderr = fleet.run("playbooks/rollback.yml", NEW_VARS, limit=C3.context)
    assert rc == 0, failure(output, C3.context)
    assert_on(fleet, C3, OLD_REV)
    summary = load.summary()
    assert summary["sent"] > 100 and summary["failed"] == 0, summary
    # a second rollback has nothing to do
    rc, output, _stderr = fleet.run("playbooks/rollback.yml", NEW_VARS, limit=C3.context)
    assert rc == 0 and output["stats"][C3.context]["changed"] == 0, output["stats"]


def test_an_upgrade_killed_mid_run_and_the_rerun_completes_the_fleet(fleet):
    # the whole fleet again: the first cluster has nothing left to do, the second (rolled back
    # above, its route restored) is upgraded, and the run is killed while one of its Helm releases
    # is pending
    def installing():
        return any(status.startswith("pending") for status, _version in fleet.releases(C2).values())

    proc = fleet.start("playbooks/upgrade.yml", NEW_VARS)
    assert kill_when(proc, installing), "the upgrade ended before a Helm release of the second cluster was pending"
    assert any(status.startswith("pending") for status, _version in fleet.releases(C2).values())
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", NEW_VARS)
    assert rc == 0, [failure(output, h) for h in HOSTS]
    for member in MEMBERS:
        assert_on(fleet, member, NEW_REV)
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", NEW_VARS)
    assert rc == 0
    assert all(output["stats"][h]["changed"] == 0 for h in HOSTS), output["stats"]
