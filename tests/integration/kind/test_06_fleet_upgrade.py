"""Revision-based upgrades of a fleet of three kind clusters, from the older Istio build to the
newer one (tests/support/fleet.py), after the fleet was installed by an AWX job template sliced in
two (two ansible-runner jobs at once in the execution environment): a rollout that stops at the cluster whose gate fails, with
that cluster rolled back and the next one untouched; the check-mode plan; rollbacks from each
step; the fleet's upgrade killed mid-run, the rerun that completes the fleet and a rerun that
changes nothing.

The stages share the fleet and run in file order.
"""

import functools
import pathlib

import pytest

from meshops_dev import awx, cache, ee
from meshops_dev.load import Load
from tests.helpers import REPO, task_results
from tests.support.fleet import HOSTS, INVENTORY, MEMBERS, NEW_VARS, OLD_VARS, SETTINGS, Fleet, failure, failures, kill_when, stop

pytestmark = pytest.mark.kind

C1, C2, C3 = MEMBERS
OLD_REV, NEW_REV = "1-30-4", "1-31-0"
TAGS_ON = {OLD_REV: {"prod-stable": OLD_REV, "prod-canary": OLD_REV}, NEW_REV: {"prod-stable": NEW_REV, "prod-canary": NEW_REV}}


@pytest.fixture(name="fleet", scope="module")
def fixture_fleet(kind_env, fleet_up, tmp_path_factory):
    fleet = Fleet(kind_env)
    # test_05 left the first cluster without Istio; every cluster gets the older version, the way
    # an AWX job template with job_slice_count 2 runs site.yml on the fleet: two jobs at once, in
    # the execution environment, with a fleet kubeconfig credential (one ServiceAccount token per
    # cluster, docs/awx/credential_types.yml)
    kubeconfig = awx.fleet_kubeconfig([(m.context, m.node, functools.partial(fleet.kubectl, m)) for m in MEMBERS])
    environment = awx.ExecutionEnvironment(image=ee.build(), exposed=(str(cache.cache_dir() / "istio"),))
    jobs = awx.AwxJobs(tmp_path_factory.mktemp("slices"), kind_env, {"kubeconfig": kubeconfig}, environment, inventory=pathlib.Path(INVENTORY).parent)
    fleet.slices = jobs.run_sliced("site.yml", dict(SETTINGS, **OLD_VARS), slice_count=2)
    for job in fleet.slices:
        assert job["status"] == "successful", (job["hosts"], job["pipeline"], job["stdout"][-3000:])
    yield fleet
    for member in MEMBERS:
        fleet.kubectl(member, "delete", "-f", str(REPO / "docs" / "awx" / "rbac.yml"), "--ignore-not-found", check=False)


def test_two_job_slices_installed_the_fleet_at_once(fleet):
    first, second = fleet.slices
    # AWX's split: every second cluster from the first, and from the second
    assert first["hosts"] == [C1.context, C3.context] and second["hosts"] == [C2.context], (first["hosts"], second["hosts"])
    for job in fleet.slices:
        assert job["rc"] == 0
        # each slice's stats cover its clusters only, without failures
        assert set(job["stats"]["processed"]) == set(job["hosts"]), job["stats"]
        assert not job["stats"].get("failures") and not job["stats"].get("dark"), job["stats"]
    assert set(first["stats"]["processed"]) | set(second["stats"]["processed"]) == set(HOSTS)
    # in parallel: each started before the other ended
    assert first["started"] < second["ended"] and second["started"] < first["ended"]


def why(output, member):
    """The first failed task of a cluster and its message, short enough for an assertion."""
    name, result = failure(output, member.context)
    return name, str(result.get("msg", ""))[:1500]


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
    # (and fail fast: a few attempts there, the default patience on the first cluster, whose
    # gate waits for its proxies' new configuration on a machine shared by three clusters)
    fleet.kubectl(C2, "delete", "virtualservice", "httpbin", "-n", "httpbin")
    fast_on_c2 = "{{ 5 if inventory_hostname == '" + C2.context + "' else 60 }}"
    try:
        with Load(C1.http_port, "httpbin.example.com", rate=20, max_seconds=1200) as load:
            rc, output, _stderr = fleet.run("playbooks/upgrade.yml", dict(NEW_VARS, verify_retries=fast_on_c2))
    finally:
        # the cause removed whatever the outcome (the later stages need the route): site.yml's
        # traffic role puts it back and the verify role proves it; only those two, so that the
        # checks below see what the rollback left, not what a whole site.yml would repair
        restored, restore_output, _stderr = fleet.run("site.yml", OLD_VARS, limit=C2.context, tags=("traffic", "verify"))
    assert rc != 0
    stats = output["stats"]
    assert stats[C1.context]["failures"] == 0 and stats[C2.context]["failures"] == 1, (stats, why(output, C1), why(output, C2))
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
    # site.yml's traffic and verify roles put the route back on the second cluster, on its
    # previous revision
    assert restored == 0, failure(restore_output, C2.context)


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
    # the reruns take the fleet in one batch (the batches themselves are the failing gate's test):
    # the second cluster continues from its pending release while the third is upgraded
    one_batch = dict(NEW_VARS, meshops_serial=len(HOSTS))
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", one_batch)
    assert rc == 0, [why(output, m) for m in MEMBERS]
    for member in MEMBERS:
        assert_on(fleet, member, NEW_REV)
    rc, output, _stderr = fleet.run("playbooks/upgrade.yml", one_batch)
    assert rc == 0
    assert all(output["stats"][h]["changed"] == 0 for h in HOSTS), output["stats"]
