"""Jobs run the way AWX runs them on an execution node (for the AWX kind test and
tools/bench/awx_job.py): a private data directory laid out as AWX lays it, streamed through
``ansible-runner transmit | ansible-runner worker | ansible-runner process`` (the receptor path),
with the credential of an "OpenShift or Kubernetes API Bearer Token" injected as AWX injects it
(``K8S_AUTH_*`` in the job's environment, the CA as a file of the job) and no kubeconfig anywhere.

- ``project/``: the repository without .git (what a project sync checks out);
- ``requirements_collections/``: meshops.istio built and installed from the project, as the
  project sync installs ``collections/requirements.yml`` (kubernetes.core comes with ansible);
- ``inventory/``: the kind cluster as a host (inventories/kind without kubeconfig or context);
- ``env/extravars`` (the survey's answers), ``env/envvars`` (the credential), ``env/cmdline``.
"""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import yaml  # the venv's: the tests and the benchmarks import this module, not tools/dev

from . import cache

REPO = cache.REPO_ROOT

IGNORED = shutil.ignore_patterns(".git", ".ansible", ".cache", ".pytest_cache", ".ruff_cache", "__pycache__", "*.tar.gz")


def build_collection(out: Path, env: dict) -> Path:
    """meshops.istio built from the repository and installed under ``out`` (ansible_collections/...)."""
    dist = out / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", str(dist), str(REPO)], env=env, check=True, capture_output=True)
    tarball = next(dist.glob("meshops-istio-*.tar.gz"))
    installed = out / "collections"
    subprocess.run(
        ["ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", str(installed), str(tarball)], env=env, check=True, capture_output=True
    )
    return installed


def job_inventory(target: Path) -> Path:
    """inventories/kind, with the cluster reached through the credential (no kubeconfig, no context)."""
    shutil.copytree(REPO / "inventories" / "kind", target)
    hosts = yaml.safe_load((target / "hosts.yml").read_text())
    for host in hosts["all"]["children"]["clusters"]["hosts"].values():
        host.pop("meshops_kubeconfig", None)
        host.pop("meshops_context", None)
    (target / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (target / "official.yml").unlink()
    return target


class AwxJobs:
    """Private data directories under ``root`` and the three ansible-runner steps between them."""

    def __init__(self, root: Path, env: dict, credential: dict):
        self.root = root
        self.count = 0
        # the execution node's environment: the tools on PATH, no kubeconfig, no project config
        self.env = {k: v for k, v in env.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_")) and k != "KUBECONFIG"}
        self.env["HOME"] = str(root / "home")
        (root / "home").mkdir(parents=True, exist_ok=True)
        self.collections = build_collection(root / "build", env)
        self.credential = credential

    def run(self, playbook: str, extravars: dict, job_type: str = "run", limit: str | None = None, report: bool = False, timeout: int = 1800) -> dict:
        """One job; returns {ident, rc, status, stdout, events, artifacts (path), stats}.

        ``report``: the verify role writes its JUnit report into the job's artifacts directory,
        which the worker streams back with the job (``verify-junit.xml``).
        """
        self.count += 1
        ident = f"job-{self.count}"
        pdd = self.root / ident
        worker_dir = self.root / f"{ident}-worker"
        if report:
            extravars = dict(extravars, verify_report_path=str(worker_dir / "artifacts" / ident / "verify-junit.xml"))
        shutil.copytree(REPO, pdd / "project", ignore=IGNORED)
        shutil.copytree(self.collections, pdd / "requirements_collections")
        job_inventory(pdd / "inventory")
        env_dir = pdd / "env"
        env_dir.mkdir()
        # AWX writes the credential's CA to a file of the job and points K8S_AUTH_SSL_CA_CERT at it
        (env_dir / "k8s_ca.crt").write_text(self.credential["ca_cert"])
        envvars = {
            "K8S_AUTH_HOST": self.credential["host"],
            "K8S_AUTH_API_KEY": self.credential["token"],
            "K8S_AUTH_VERIFY_SSL": "True",
            "K8S_AUTH_SSL_CA_CERT": str(worker_dir / "env" / "k8s_ca.crt"),
            "ANSIBLE_COLLECTIONS_PATH": str(worker_dir / "requirements_collections"),
            "ANSIBLE_FORCE_COLOR": "0",
            "MESHOPS_CACHE": self.env.get("MESHOPS_CACHE", ""),
        }
        (env_dir / "envvars").write_text(yaml.safe_dump(envvars))
        (env_dir / "extravars").write_text(yaml.safe_dump(extravars))
        cmdline = ["--check"] if job_type == "check" else []
        if limit:
            cmdline += ["--limit", limit]
        if cmdline:
            (env_dir / "cmdline").write_text(" ".join(cmdline))
        transmit = subprocess.Popen(["ansible-runner", "transmit", str(pdd), "-p", playbook, "--ident", ident], env=self.env, stdout=subprocess.PIPE)
        worker = subprocess.Popen(
            ["ansible-runner", "worker", "--private-data-dir", str(worker_dir)], env=self.env, stdin=transmit.stdout, stdout=subprocess.PIPE
        )
        transmit.stdout.close()
        process = subprocess.run(
            ["ansible-runner", "process", str(pdd), "--ident", ident],
            env=self.env,
            stdin=worker.stdout,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        worker.stdout.close()
        worker.wait(timeout=60)
        transmit.wait(timeout=60)
        artifacts = pdd / "artifacts" / ident
        events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))]
        stats = next((e["event_data"] for e in events if e.get("event") == "playbook_on_stats"), {})
        return {
            "ident": ident,
            "rc": int((artifacts / "rc").read_text()) if (artifacts / "rc").is_file() else None,
            "status": (artifacts / "status").read_text() if (artifacts / "status").is_file() else None,
            "stdout": (artifacts / "stdout").read_text() if (artifacts / "stdout").is_file() else process.stdout,
            "events": events,
            "stats": stats,
            "artifacts": artifacts,
            "worker_dir": worker_dir,
            "pipeline": {"transmit": transmit.returncode, "worker": worker.returncode, "process": process.returncode, "stderr": process.stderr[-3000:]},
        }

    def files_containing(self, secret: str) -> list[str]:
        """Every file of every job (private data directories, workers' directories) holding ``secret``,
        except the credential's own place (env/envvars)."""
        found = []
        for path in self.root.rglob("*"):
            if not path.is_file() or path.name == "envvars" or "build" in path.relative_to(self.root).parts[:1]:
                continue
            try:
                if secret in path.read_text(errors="ignore"):
                    found.append(str(path))
            except OSError:
                continue
        return found


def credential_of(kubectl) -> dict:
    """The ServiceAccount of docs/awx/rbac.yml, applied, and a token for it: the credential's fields."""
    kubectl("apply", "-f", str(REPO / "docs" / "awx" / "rbac.yml"))
    token = kubectl("-n", "meshops-automation", "create", "token", "meshops-istio", "--duration=1h").strip()
    config = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = config["clusters"][0]["cluster"]
    return {"host": cluster["server"], "token": token, "ca_cert": base64.b64decode(cluster["certificate-authority-data"]).decode()}
