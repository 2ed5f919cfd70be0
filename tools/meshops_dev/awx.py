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
import dataclasses
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml  # the venv's: the tests and the benchmarks import this module, not tools/dev

from . import cache, fleet

REPO = cache.REPO_ROOT

# the ingress gateway's HTTP node port (inventories/kind/group_vars/clusters.yml), which kind maps to 127.0.0.1
INGRESS_NODE_PORT = 30080

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


@dataclasses.dataclass(frozen=True)
class ExecutionEnvironment:
    """Process isolation as AWX's execution nodes run it: the job's ``ansible-playbook`` in a
    container of ``image`` (docs/awx/execution-environment.yml, ``tools/dev build ee``) started by
    the worker with the project's engine. The container joins the kind network, where the
    cluster's API server and the ingress gateway's node port have the node's name; the air-gapped
    Istio charts of the cache are exposed read-only at their path (AWX: "Paths to expose to
    isolated jobs")."""

    image: str
    network: str = "kind"
    node: str = fleet.FIRST.node
    exposed: tuple[str, ...] = ()

    def settings(self) -> dict:
        """env/settings of the job: the process isolation keyword arguments AWX passes to runner."""
        return {
            "process_isolation": True,
            "process_isolation_executable": "docker",
            "container_image": self.image,
            "container_options": [f"--network={self.network}"],
            "container_volume_mounts": [f"{path}:{path}:ro" for path in self.exposed],
        }


def job_inventory(target: Path, ee: ExecutionEnvironment | None = None, source: Path = REPO / "inventories" / "kind", hosts: list[str] | None = None) -> Path:
    """``source`` (inventories/kind or inventories/kind-fleet) as the job's inventory: no kubeconfig
    file (the credential brings the cluster); with a single cluster's bearer token no context either.
    In an execution environment each cluster's ingress gateway is at its node's name on the kind
    network. ``hosts``: only these (a job slice's share; AWX gives a slice an inventory of its hosts)."""
    shutil.copytree(source, target)  # the fleet's group_vars link is copied as files
    inventory = yaml.safe_load((target / "hosts.yml").read_text())
    fleet_inventory = (target / "host_vars").is_dir()
    for group in inventory["all"]["children"].values():
        for name in list(group["hosts"]):
            if hosts is not None and name not in hosts:
                del group["hosts"][name]
                (target / "host_vars" / f"{name}.yml").unlink(missing_ok=True)
                continue
            host_file = target / "host_vars" / f"{name}.yml"
            host = yaml.safe_load(host_file.read_text()) if host_file.is_file() else group["hosts"][name]
            if host is None:
                continue
            host.pop("meshops_kubeconfig", None)
            if not fleet_inventory:
                host.pop("meshops_context", None)
            if ee is not None:
                host["verify_ingress_address"] = f"{fleet.by_context(name).node}:{INGRESS_NODE_PORT}"
            if host_file.is_file():
                host_file.write_text(yaml.safe_dump(host))
    (target / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (target / "official.yml").unlink()
    return target


def slices(hosts: list[str], count: int) -> list[list[str]]:
    """The hosts of each slice of a job template with ``job_slice_count: count``, as AWX splits
    an inventory: slice k (from 1) gets every count-th host from the k-th."""
    return [hosts[k::count] for k in range(count) if hosts[k::count]]


class AwxJobs:
    """Private data directories under ``root`` and the three ansible-runner steps between them.

    ``credential``: an "OpenShift or Kubernetes API Bearer Token" credential (``host``, ``token``,
    ``ca_cert``: ``credential_of``) for inventories/kind, or a fleet kubeconfig credential
    (``kubeconfig``: ``fleet_kubeconfig``, the credential type of docs/awx/credential_types.yml)
    for ``inventory`` inventories/kind-fleet.
    """

    def __init__(self, root: Path, env: dict, credential: dict, ee: ExecutionEnvironment | None = None, inventory: Path = REPO / "inventories" / "kind"):
        self.root = root
        self.ee = ee
        self.inventory = inventory
        self.count = 0
        self._lock = threading.Lock()
        # the execution node's environment: the tools on PATH, no kubeconfig, no project config
        self.env = {k: v for k, v in env.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_")) and k != "KUBECONFIG"}
        self.env["HOME"] = str(root / "home")
        (root / "home").mkdir(parents=True, exist_ok=True)
        self.collections = build_collection(root / "build", env)
        self.credential = credential

    @property
    def api_host(self) -> str:
        """The credential's API URL as the job reaches it: from an EE on the kind network, the node's name."""
        return f"https://{self.ee.node}:6443" if self.ee else self.credential["host"]

    def run(
        self,
        playbook: str,
        extravars: dict,
        job_type: str = "run",
        limit: str | None = None,
        report: bool = False,
        timeout: int = 1800,
        hosts: list[str] | None = None,
    ) -> dict:
        """One job; returns {ident, rc, status, stdout, events, artifacts (path), stats, started, ended}.

        ``report``: the verify role writes its JUnit report into the job's artifacts directory,
        which the worker streams back with the job (``verify-junit.xml``). ``hosts``: the
        inventory holds only these (a slice of a sliced job).
        """
        with self._lock:
            self.count += 1
            ident = f"job-{self.count}"
        started = time.monotonic()
        pdd = self.root / ident
        worker_dir = self.root / f"{ident}-worker"
        # where the job sees its private data directory: the worker's directory, mounted at /runner in an EE
        seen = Path("/runner") if self.ee else worker_dir
        if report:
            extravars = dict(extravars, verify_report_path=str(seen / "artifacts" / ident / "verify-junit.xml"))
        shutil.copytree(REPO, pdd / "project", ignore=IGNORED)
        shutil.copytree(self.collections, pdd / "requirements_collections")
        job_inventory(pdd / "inventory", self.ee, self.inventory, hosts)
        env_dir = pdd / "env"
        env_dir.mkdir()
        # the project's collections first, then the EE's (AWX's order)
        collections = [str(seen / "requirements_collections")] + (["/usr/share/ansible/collections"] if self.ee else [])
        envvars = {
            "ANSIBLE_COLLECTIONS_PATH": ":".join(collections),
            "ANSIBLE_FORCE_COLOR": "0",
            "MESHOPS_CACHE": self.env.get("MESHOPS_CACHE", ""),
        }
        if "kubeconfig" in self.credential:
            # the fleet credential type's injectors: AWX writes the file into the job's directory
            # and sets the variables that name it
            (env_dir / "kubeconfig").write_text(self.credential["kubeconfig"])
            for name, template in fleet_credential_type()["injectors"]["env"].items():
                if template != "{{ tower.filename.kubeconfig }}":
                    raise ValueError(f"docs/awx/credential_types.yml: the AWX jobs here inject only the kubeconfig file, not {name}: {template}")
                envvars[name] = str(seen / "env" / "kubeconfig")
        else:
            # AWX writes the credential's CA to a file of the job and points K8S_AUTH_SSL_CA_CERT at it
            (env_dir / "k8s_ca.crt").write_text(self.credential["ca_cert"])
            envvars.update(
                {
                    "K8S_AUTH_HOST": self.api_host,
                    "K8S_AUTH_API_KEY": self.credential["token"],
                    "K8S_AUTH_VERIFY_SSL": "True",
                    "K8S_AUTH_SSL_CA_CERT": str(seen / "env" / "k8s_ca.crt"),
                }
            )
        (env_dir / "envvars").write_text(yaml.safe_dump(envvars))
        if self.ee:
            (env_dir / "settings").write_text(yaml.safe_dump(self.ee.settings()))
        (env_dir / "extravars").write_text(yaml.safe_dump(extravars))
        cmdline = ["--check"] if job_type == "check" else []
        if limit:
            cmdline += ["--limit", limit]
        if cmdline:
            (env_dir / "cmdline").write_text(" ".join(cmdline))
        transmit = subprocess.Popen(["ansible-runner", "transmit", str(pdd), "-p", playbook, "--ident", ident], env=self.env, stdout=subprocess.PIPE)
        # ansible-runner records the job's environment, the credential's included, in
        # artifacts/<ident>/command and (process isolation) env.list: owner-only with umask 077
        worker = subprocess.Popen(
            ["ansible-runner", "worker", "--private-data-dir", str(worker_dir)], env=self.env, stdin=transmit.stdout, stdout=subprocess.PIPE, umask=0o077
        )
        transmit.stdout.close()
        process = subprocess.run(
            ["ansible-runner", "process", str(pdd), "--ident", ident],
            env=self.env,
            stdin=worker.stdout,
            umask=0o077,
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
            "started": started,
            "ended": time.monotonic(),
            "artifacts": artifacts,
            "worker_dir": worker_dir,
            "pipeline": {"transmit": transmit.returncode, "worker": worker.returncode, "process": process.returncode, "stderr": process.stderr[-3000:]},
        }

    def run_sliced(self, playbook: str, extravars: dict, slice_count: int, timeout: int = 1800) -> list[dict]:
        """A job template with ``job_slice_count``: one job per slice of the inventory's clusters,
        all started at once (AWX's workflow of slices), each with an inventory of its hosts."""
        inventory = yaml.safe_load((self.inventory / "hosts.yml").read_text())
        hosts = list(inventory["all"]["children"]["clusters"]["hosts"])
        shares = slices(hosts, slice_count)
        results: list[dict | BaseException] = [RuntimeError("not run")] * len(shares)

        def one(index: int, share: list[str]) -> None:
            try:
                results[index] = dict(self.run(playbook, extravars, timeout=timeout, hosts=share), hosts=share)
            except BaseException as exc:  # handed to the caller below
                results[index] = exc

        threads = [threading.Thread(target=one, args=(i, share)) for i, share in enumerate(shares)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 120)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    def files_containing(self, secret: str) -> list[str]:
        """Every file of every job (private data directories, workers' directories) holding ``secret``,
        except the credential's own places (env/envvars, env/kubeconfig)."""
        found = []
        for path in self.root.rglob("*"):
            if not path.is_file() or path.name in ("envvars", "kubeconfig") or "build" in path.relative_to(self.root).parts[:1]:
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


def fleet_credential_type() -> dict:
    """The fleet credential type of docs/awx/credential_types.yml."""
    return yaml.safe_load((REPO / "docs" / "awx" / "credential_types.yml").read_text())["awx_credential_types"][0]


def fleet_kubeconfig(clusters: list[tuple[str, str, Callable[..., str]]]) -> str:
    """The kubeconfig of a fleet credential (docs/awx/credential_types.yml): for each
    (context, node, kubectl) the ServiceAccount of docs/awx/rbac.yml and a token for it, the API
    server at the node's name on the kind network (where the execution environment runs), and a
    context named as the inventory's ``meshops_context``."""
    config: dict = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [], "preferences": {}}
    for context, node, kubectl in clusters:
        credential = credential_of(kubectl)
        ca_data = base64.b64encode(credential["ca_cert"].encode()).decode()
        config["clusters"].append({"name": context, "cluster": {"server": f"https://{node}:6443", "certificate-authority-data": ca_data}})
        config["users"].append({"name": context, "user": {"token": credential["token"]}})
        config["contexts"].append({"name": context, "context": {"cluster": context, "user": context}})
    config["current-context"] = clusters[0][0]
    return yaml.safe_dump(config)
