"""The kind cluster built by tools/dev, as the kind tests drive it: site.yml, route_verify probes,
kubectl, with the environment of the tools' jobs."""

import os
import subprocess

from meshops_dev import cache, jobs
from tests.helpers import REPO, run_playbook, task_results

# inventories/kind/hosts.yml (images built here) or official.yml (MESHOPS_IMAGES=official)
INVENTORY = str(cache.kind_inventory())
KUBECONFIG = cache.kubeconfig("meshops")
INGRESS = "127.0.0.1:" + os.environ.get("MESHOPS_INGRESS_HTTP_PORT", "80")
INGRESS_HTTPS = "127.0.0.1:" + os.environ.get("MESHOPS_INGRESS_HTTPS_PORT", "443")


def kind_env():
    """Environment with the venv, helm, the engine and the collection link."""
    return jobs.job_env()


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
        cmd = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(KUBECONFIG), "--context", "kind-meshops", *args]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False, input=input_text)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout


def recap(output, host="kind-meshops"):
    """The PLAY RECAP counters of one host."""
    return output["stats"][host]
