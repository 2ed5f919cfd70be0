"""The kind scenario: a real cluster built from source by tools/dev, driven through Molecule.

Stages run in file order and share the cluster; molecule's output streams to the terminal so
long steps show their progress. The cluster is destroyed after the last test of the session.
"""

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, run_playbook, task_results

sys.path.insert(0, str(REPO / "tools"))
from meshops_dev import jobs


@pytest.fixture(name="kind_env", scope="session")
def fixture_kind_env():
    """Environment with the venv, helm, the engine and the collection link."""
    return jobs.job_env()


@pytest.fixture(name="molecule", scope="session")
def fixture_molecule(kind_env, pytestconfig):
    """Run `molecule <action> -s kind`, streaming its output; return the exit code."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")

    def run(action, *extra, timeout=3600):
        cmd = [os.path.join(os.path.dirname(sys.executable), "molecule"), action, "-s", "kind", *extra]
        with capman.global_and_fixture_disabled():
            print(f"\n==> molecule {action} -s kind", flush=True)
            proc = subprocess.run(cmd, cwd=str(REPO), env=kind_env, timeout=timeout, check=False)
            print(f"<== molecule {action}: exit {proc.returncode}", flush=True)
        return proc.returncode

    yield run
    if os.environ.get("MESHOPS_KEEP_CLUSTER", "") in ("", "0", "false"):
        run("destroy")


# inventories/kind/hosts.yml (images built here) or official.yml (MESHOPS_IMAGES=official)
INVENTORY = str(jobs.cache.kind_inventory())
KUBECONFIG = jobs.cache.kubeconfig("meshops")
INGRESS = "127.0.0.1:" + os.environ.get("MESHOPS_INGRESS_HTTP_PORT", "80")


class Cluster:
    """The kind cluster as the tests drive it: site.yml, route_verify probes, kubectl."""

    def __init__(self, env):
        self.env = env

    def site(self, extra_vars=None, tags=(), timeout=1800):
        """Run site.yml (only the roles of ``tags`` when given); return (rc, JSON callback output)."""
        rc, output, _stderr = run_playbook(REPO / "site.yml", extra_vars, env=self.env, inventory=INVENTORY, timeout=timeout, tags=tags)
        return rc, output

    def task(self, playbook, task, extra_vars, timeout=900):
        """Run one of the playbooks of tests/integration/kind/playbooks; (rc, result of its task)."""
        rc, output, stderr = run_playbook(
            REPO / "tests" / "integration" / "kind" / "playbooks" / playbook, extra_vars, env=self.env, inventory=INVENTORY, timeout=timeout
        )
        results = [r for name, r in task_results(output, "kind-meshops") if name == task]
        assert results, (rc, stderr[-3000:])
        return rc, results[0]

    def probe(self, probes, **settings):
        """Run meshops.istio.route_verify through the ingress gateway; return (rc, module result)."""
        return self.task("probe.yml", "Probe the routes", dict(settings, probes=probes))

    def object_set(self, definitions):
        """Apply objects with meshops.istio.object_set; return (rc, module result)."""
        return self.task("object_set.yml", "Apply the objects", {"definitions": definitions}, timeout=300)

    def kubectl(self, *args, check=True, timeout=300, input_text=None):
        cmd = [str(jobs.cache.bin_dir() / "kubectl"), "--kubeconfig", str(KUBECONFIG), "--context", "kind-meshops", *args]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False, input=input_text)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout


@pytest.fixture(name="cluster", scope="session")
def fixture_cluster(kind_env):
    return Cluster(kind_env)


@pytest.fixture(name="converged", scope="module")
def fixture_converged(cluster):
    """The reference scenario converged before the tests of a module (a rerun costs seconds)."""
    rc, output = cluster.site({"verify_egress": False})
    assert rc == 0, recap(output)
    return cluster


def recap(output, host="kind-meshops"):
    """The PLAY RECAP counters of one host."""
    return output["stats"][host]
