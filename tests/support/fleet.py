"""The fleet of kind clusters built by ``tools/dev fleet up`` (inventories/kind-fleet), as the
upgrade tests drive it: playbooks on all or some clusters, kubectl per cluster, and a snapshot
of what an upgrade may change (releases, revisions, tags, namespace labels)."""

import json
import os
import signal
import subprocess
import time

from meshops_dev import cache, fleet, upgrade_scenario
from tests.helpers import REPO, run_playbook, task_results

# inventories/kind-fleet/hosts.yml, or official.yml with MESHOPS_IMAGES=official
INVENTORY = str(cache.fleet_inventory())
MEMBERS = fleet.plan(fleet.INVENTORY_SIZE)
HOSTS = [member.context for member in MEMBERS]

# What every upgrade test installs (tools/meshops_dev/upgrade_scenario.py, shared with the benchmark)
SETTINGS = upgrade_scenario.SETTINGS
OLD_VARS = upgrade_scenario.minor_vars(upgrade_scenario.OLD)
NEW_VARS = upgrade_scenario.minor_vars(upgrade_scenario.NEW)


def playbook_path(name):
    """site.yml, playbooks/upgrade.yml, ... of the repository."""
    return REPO / name


class Fleet:
    """Playbooks on the fleet, kubectl on one cluster, snapshots."""

    def __init__(self, env):
        self.env = env

    def run(self, playbook, extra_vars=None, limit=None, check=False, timeout=3600, tags=()):
        """(rc, JSON callback output, stderr) of a playbook on the fleet (or ``limit``; only the
        roles of ``tags`` when given)."""
        extra = dict(SETTINGS)
        extra.update(extra_vars or {})
        return run_playbook(playbook_path(playbook), extra, env=self.env, check=check, timeout=timeout, inventory=INVENTORY, limit=limit, tags=tags)

    def start(self, playbook, extra_vars=None, limit=None):
        """Start a playbook in its own process group (to kill it); returns the Popen."""
        extra = dict(SETTINGS)
        extra.update(extra_vars or {})
        cmd = ["ansible-playbook", "-i", INVENTORY, str(playbook_path(playbook)), "--extra-vars", json.dumps(extra)]
        if limit:
            cmd += ["--limit", limit]
        env = dict(os.environ)
        env.update(self.env)
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
        return subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def kubectl(self, member, *args, check=True, timeout=300):
        cmd = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(member.kubeconfig()), "--context", member.context, *args]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} on {member.name} failed: {proc.stderr}")
        return proc.stdout

    def json(self, member, *args):
        return json.loads(self.kubectl(member, *args, "-o", "json"))

    def releases(self, member):
        """{release: (status, revision, chart)} of the Helm releases in istio-system, from their records."""
        out = {}
        for secret in self.json(member, "get", "secrets", "-n", "istio-system", "-l", "owner=helm")["items"]:
            labels = secret["metadata"]["labels"]
            name, version, status = labels["name"], int(labels["version"]), labels["status"]
            if name not in out or out[name][1] < version:
                out[name] = (status, version)
        return out

    def snapshot(self, member):
        """What an upgrade may change on a cluster: releases, istiod revisions, tags, the default
        revision, namespace labels and the revision every proxy was injected by."""
        hooks = self.json(member, "get", "mutatingwebhookconfigurations")["items"]
        validators = self.json(member, "get", "validatingwebhookconfigurations")["items"]
        namespaces = self.json(member, "get", "namespaces")["items"]
        deployments = self.json(member, "get", "deployments", "-n", "istio-system", "-l", "app=istiod")["items"]
        pods = self.json(member, "get", "pods", "-A")["items"]
        return {
            "releases": self.releases(member),
            "revisions": sorted(d["metadata"]["labels"].get("istio.io/rev", "default") for d in deployments),
            "tags": {
                h["metadata"]["labels"]["istio.io/tag"]: h["metadata"]["labels"].get("istio.io/rev")
                for h in hooks
                if "istio.io/tag" in (h["metadata"].get("labels") or {})
            },
            "default_revision": next(
                (v["metadata"]["labels"].get("istio.io/rev") for v in validators if v["metadata"]["name"] == "istiod-default-validator"), None
            ),
            "namespace_labels": {
                n["metadata"]["name"]: {k: v for k, v in (n["metadata"].get("labels") or {}).items() if k in ("istio.io/rev", "istio-injection")}
                for n in namespaces
            },
            "proxies": sorted(
                f"{p['metadata']['namespace']}/{p['metadata']['name']}={json.loads(p['metadata']['annotations']['sidecar.istio.io/status'])['revision']}"
                for p in pods
                if "sidecar.istio.io/status" in (p["metadata"].get("annotations") or {}) and not p["metadata"].get("deletionTimestamp")
            ),
        }

    def proxy_revisions(self, member):
        """{revision: number of proxies} of the cluster."""
        counts = {}
        for line in self.snapshot(member)["proxies"]:
            revision = line.rsplit("=", 1)[1]
            counts[revision] = counts.get(revision, 0) + 1
        return counts


def kill_when(proc, ready, timeout=900):
    """SIGKILL the process group of ``proc`` once ``ready()`` is true; False when the playbook ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return True
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"the condition to kill the playbook never came within {timeout}s")


def recap(output):
    return {host: output["stats"][host] for host in output["stats"]}


def failures(output, host):
    """[(task name, result)] of the host's failed tasks, in order (a rescued failure first, then
    the task that ended the play)."""
    return [(name, result) for name, result in task_results(output, host) if result.get("failed") and result.get("failed_when_result") is not False]


def failure(output, host):
    """(task name, result) of the host's first failed task (what went wrong), or (None, {})."""
    found = failures(output, host)
    return found[0] if found else (None, {})


def stop(output, host):
    """(task name, result) of the host's last failed task (what ended its play), or (None, {})."""
    found = failures(output, host)
    return found[-1] if found else (None, {})
