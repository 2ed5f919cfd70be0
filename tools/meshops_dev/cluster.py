"""The kind clusters on the local node image: ``meshops`` and the other members of a fleet.

``tools/dev cluster up|down|status|load IMAGE...`` (the cluster ``meshops``),
``tools/dev fleet up|down|status`` (``meshops``, ``meshops-2``, ...: fleet.py names them and
chooses their ports). Every function takes the member it works on (default: ``meshops``).

- The docker network ``kind`` is created beforehand with the explicit private subnet
  ``KIND_SUBNET`` (10.213.16.0/24: inside the 10.213.0.0/16 block the project's dockerd uses,
  away from Docker's 172.17-31 defaults, kind's pod/service ranges 10.244.0.0/16 and
  10.96.0.0/16, and common 192.168 LANs). An existing ``kind`` network is reused as it is.
- The kind config is generated into ``$MESHOPS_STATE/kind-<name>.yaml``: one control-plane
  node, the API server and the ingress ports on 127.0.0.1 only (for ``meshops``
  ``${MESHOPS_INGRESS_HTTP_PORT:-80}`` -> node port 30080, ``${MESHOPS_INGRESS_HTTPS_PORT:-443}``
  -> 30443; the other members' ports in fleet.py), and a KubeletConfiguration patch
  ``failCgroupV1: false`` (Kubernetes 1.35 refuses cgroup v1 hosts otherwise).
- Kubeconfig: ``$MESHOPS_STATE/kubeconfig-<name>`` (context ``kind-<name>``).
- ``up`` reuses a healthy cluster, restarts a stopped node, recreates a broken one, and waits
  (bounded) for the node and the system pods; on failure it prints diagnostics.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from . import cache, engine, errors, hosttools, images, nodeimage, progress
from .addresses import KIND_GATEWAY, KIND_NETWORK, KIND_SUBNET, POD_SUBNET, SERVICE_SUBNET
from .fleet import FIRST, Member

CLUSTER = FIRST.name
CONTEXT = FIRST.context
NODE = FIRST.node
READY_TIMEOUT = 420  # seconds for the node and system pods after kind create
KIND_CREATE_TIMEOUT = 900

# Workloads that must run before the cluster counts as up: (namespace, label selector, what).
SYSTEM_WORKLOADS = (
    ("kube-system", "k8s-app=kube-dns", "CoreDNS"),
    ("kube-system", "k8s-app=kube-proxy", "kube-proxy"),
    ("kube-system", "component=etcd", "etcd"),
    ("kube-system", "component=kube-apiserver", "kube-apiserver"),
    ("kube-system", "component=kube-controller-manager", "kube-controller-manager"),
    ("kube-system", "component=kube-scheduler", "kube-scheduler"),
)


# kind v0.33.0's own default node image (sigs.k8s.io/kind pkg/apis/config/defaults/image.go),
# used when MESHOPS_IMAGES=official: the host pulls it, with kindnetd as the CNI.
OFFICIAL_NODE_IMAGE = "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"


def node_image() -> str:
    return OFFICIAL_NODE_IMAGE if cache.official_images() else nodeimage.NODE_IMAGE


def kind_config(m: Member = FIRST) -> str:
    """The kind cluster config (YAML) this tool creates the cluster with."""
    return f"""# written by tools/dev cluster up (meshops.istio); regenerated on every create
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: {m.name}
networking:
  ipFamily: ipv4
  apiServerAddress: 127.0.0.1
  podSubnet: {POD_SUBNET}
  serviceSubnet: {SERVICE_SUBNET}
nodes:
  - role: control-plane
    image: {node_image()}
    extraPortMappings:
      - containerPort: 30080
        hostPort: {m.http_port}
        listenAddress: 127.0.0.1
        protocol: TCP
      - containerPort: 30443
        hostPort: {m.https_port}
        listenAddress: 127.0.0.1
        protocol: TCP
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
"""


def tool_env(m: Member = FIRST) -> dict[str, str]:
    env = dict(engine.docker_env())
    env["PATH"] = f"{cache.bin_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["KIND_EXPERIMENTAL_PROVIDER"] = "docker"
    env["KUBECONFIG"] = str(m.kubeconfig())
    return env


def _kind(*args: str, desc: str, m: Member = FIRST, capture: bool = False, timeout: float | None = None) -> str:
    res = progress.run([hosttools.tool("kind"), *args], desc=desc, env=tool_env(m), capture=capture, timeout=timeout)
    return res.stdout.strip() if capture else ""


def kubectl(*args: str, desc: str = "kubectl", timeout: float = 60, m: Member = FIRST) -> str:
    cmd = [hosttools.tool("kubectl"), "--kubeconfig", str(m.kubeconfig()), "--context", m.context, *args]
    return progress.output(cmd, desc=desc, env=tool_env(m), timeout=timeout)


def _kubectl_quiet(*args: str, m: Member, timeout: float = 30):
    cmd = [hosttools.tool("kubectl"), "--kubeconfig", str(m.kubeconfig()), "--context", m.context, *args]
    return progress.quiet(cmd, env=tool_env(m), timeout=timeout)


def kind_clusters() -> list[str]:
    """Names of the kind clusters on the engine."""
    res = progress.quiet([hosttools.tool("kind"), "get", "clusters"], env=tool_env(), timeout=60)
    return res.stdout.split()


def cluster_exists(m: Member = FIRST) -> bool:
    return m.name in kind_clusters()


def node_state(m: Member = FIRST) -> str | None:
    res = images.docker_quiet("inspect", "--format", "{{.State.Status}}", m.node)
    return res.stdout.strip() if res.returncode == 0 else None


def _network_bridge() -> str | None:
    """Name of the Linux bridge behind the docker network ``kind`` (``br-<id>``), if it exists."""
    res = images.docker_quiet("network", "inspect", "--format", "{{.Id}}", KIND_NETWORK)
    return f"br-{res.stdout.strip()[:12]}" if res.returncode == 0 and res.stdout.strip() else None


def remove_stale_bridges() -> None:
    """Delete bridges left with the kind subnet by a dockerd that no longer runs.

    A dockerd keeps its networks when it stops, and their bridges stay in the kernel. When another
    dockerd (another data-root, MESHOPS_CACHE changed) creates the kind network again, two routes
    to 10.213.16.0/24 exist and published ports reach the stale, empty bridge. Only bridges that
    carry the project's own gateway address and have no carrier (nothing attached) are removed.
    """
    current = _network_bridge()
    res = progress.quiet(["ip", "-o", "-4", "addr", "show"], timeout=30)
    for line in res.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != f"{KIND_GATEWAY}/24" or fields[1] == current:
            continue
        name = fields[1]
        link = progress.quiet(["ip", "-o", "link", "show", name], timeout=30).stdout
        if not name.startswith("br-") or "NO-CARRIER" not in link:
            continue
        progress.note(f"removing the stale bridge {name} ({KIND_SUBNET}) left by a dockerd that no longer runs")
        progress.quiet(["ip", "link", "delete", name], timeout=30)
        rule = ["-t", "nat", "-D", "POSTROUTING", "-s", KIND_SUBNET, "!", "-o", name, "-j", "MASQUERADE"]
        progress.quiet(["iptables", *rule], timeout=30)


def ensure_network() -> None:
    res = images.docker_quiet("network", "inspect", KIND_NETWORK)
    if res.returncode == 0:
        try:
            configs = json.loads(res.stdout)[0]["IPAM"]["Config"] or []
        except (ValueError, LookupError, TypeError):
            configs = []
        subnets = [c.get("Subnet") for c in configs]
        if KIND_SUBNET not in subnets:
            progress.note(f"reusing the existing docker network {KIND_NETWORK!r} (subnets {subnets})")
        remove_stale_bridges()
        return
    env = engine.require()
    progress.run(
        [
            "docker",
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            KIND_SUBNET,
            "--gateway",
            KIND_GATEWAY,
            "-o",
            "com.docker.network.bridge.enable_ip_masquerade=true",
            "-o",
            "com.docker.network.driver.mtu=1500",
            KIND_NETWORK,
        ],
        desc=f"creating the docker network {KIND_NETWORK} ({KIND_SUBNET})",
        env=env,
    )
    remove_stale_bridges()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _check_ports(m: Member) -> None:
    for port, var in zip((m.http_port, m.https_port), m.port_variables, strict=True):
        if not _port_free(port):
            raise errors.DevError(f"127.0.0.1:{port} is in use; free it or choose another port with {var}=... (then re-run)")


def _pods(m: Member, namespace: str, selector: str) -> list[dict]:
    res = _kubectl_quiet("get", "pods", "-n", namespace, "-l", selector, "-o", "json", m=m)
    if res.returncode != 0:
        return []
    try:
        return json.loads(res.stdout).get("items", [])
    except ValueError:
        return []


def _pod_ready(pod: dict) -> bool:
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return False
    return all(c.get("ready") for c in status.get("containerStatuses", []) or [{}])


def _node_ready(m: Member) -> bool:
    res = _kubectl_quiet("get", "nodes", "-o", "json", m=m)
    if res.returncode != 0:
        return False
    try:
        items = json.loads(res.stdout).get("items", [])
    except ValueError:
        return False
    if not items:
        return False
    for node in items:
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        if conds.get("Ready") != "True":
            return False
    return True


def health(m: Member = FIRST) -> tuple[bool, list[str]]:
    """(healthy, what is not ready yet)."""
    pending = []
    if not _node_ready(m):
        return False, ["node Ready"]
    for ns, selector, what in SYSTEM_WORKLOADS:
        pods = _pods(m, ns, selector)
        if not pods or not all(_pod_ready(p) for p in pods):
            pending.append(what)
    return not pending, pending


def wait_ready(timeout: float = READY_TIMEOUT, m: Member = FIRST) -> None:
    start = time.monotonic()
    last_note = 0.0
    pending: list[str] = []
    for _ in range(int(timeout / 2) + 1):
        ok, pending = health(m)
        if ok:
            progress.note(f"node Ready and system pods Running after {progress.fmt_duration(time.monotonic() - start)}")
            return
        now = time.monotonic()
        if now - start > timeout:
            break
        if now - last_note >= 30:
            last_note = now
            progress.note(f"waiting for: {', '.join(pending)} ({progress.fmt_duration(now - start)})")
        time.sleep(2)
    raise errors.DevError(f"cluster {m.name} not ready after {progress.fmt_duration(timeout)}: {', '.join(pending)} not ready\n" + diagnostics(m))


def diagnostics(m: Member = FIRST) -> str:
    """Kubelet journal, containers in the node, pods and events (for failure messages)."""
    env = engine.docker_env()
    parts = []

    def add(title: str, cmd: list[str]) -> None:
        res = progress.quiet(cmd, env=env, timeout=60)
        text = (res.stdout + res.stderr).strip()
        lines = text.splitlines()[-60:]
        parts.append(f"--- {title} ---\n" + "\n".join(lines))

    add("kubelet journal (last lines)", ["docker", "exec", m.node, "journalctl", "-u", "kubelet", "--no-pager", "-n", "60"])
    add("containerd journal", ["docker", "exec", m.node, "journalctl", "-u", "containerd", "--no-pager", "-n", "25"])
    add("crictl ps -a", ["docker", "exec", m.node, "crictl", "ps", "-a"])
    # The node's admin.conf works before kind has written the host kubeconfig.
    kc = ["docker", "exec", m.node, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
    add("pods", [*kc, "get", "pods", "-A", "-o", "wide"])
    add("events", [*kc, "get", "events", "-A", "--sort-by=.lastTimestamp"])
    return "\n".join(parts)


def _export_kubeconfig(m: Member) -> None:
    m.kubeconfig().parent.mkdir(parents=True, exist_ok=True)
    _kind("export", "kubeconfig", "--name", m.name, "--kubeconfig", str(m.kubeconfig()), desc="exporting kubeconfig", m=m)


def _create(m: Member) -> None:
    _check_ports(m)
    ensure_network()
    progress.write_text_atomic(m.config_path(), kind_config(m))
    m.kubeconfig().parent.mkdir(parents=True, exist_ok=True)
    try:
        _kind(
            "create",
            "cluster",
            "--name",
            m.name,
            "--image",
            node_image(),
            "--config",
            str(m.config_path()),
            "--kubeconfig",
            str(m.kubeconfig()),
            "--retain",
            "--wait",
            "0s",
            desc=f"creating kind cluster {m.name}",
            m=m,
            timeout=KIND_CREATE_TIMEOUT,
        )
    except errors.CommandError as exc:
        diag = diagnostics(m) if node_state(m) else "(no node container)"
        if os.environ.get("MESHOPS_KEEP_FAILED") != "1":
            progress.quiet([hosttools.tool("kind"), "delete", "cluster", "--name", m.name], env=tool_env(m), timeout=120)
            hint = "the failed cluster was deleted; set MESHOPS_KEEP_FAILED=1 to keep it for inspection"
        else:
            down = "'tools/dev cluster down'" if m == FIRST else "'tools/dev fleet down'"
            hint = f"the failed node {m.node} was kept (MESHOPS_KEEP_FAILED=1); {down} removes it"
        raise errors.DevError(f"{exc}\n{diag}\n{hint}") from exc


def up(m: Member = FIRST) -> None:
    """Create the cluster, or reuse it when healthy; wait for the node and the system pods."""
    with progress.step(f"cluster up ({m.name})") as st:
        engine.require()
        if not cache.official_images() and not images.image_present(nodeimage.NODE_IMAGE):
            raise errors.DevError(f"node image {nodeimage.NODE_IMAGE} not found: run 'tools/dev build node-image'")
        if cluster_exists(m):
            state = node_state(m)
            if state in ("exited", "created", "paused"):
                progress.note(f"node container {m.node} is {state}: starting it")
                cmd = ["docker", "unpause" if state == "paused" else "start", m.node]
                progress.run(cmd, desc=f"starting {m.node}", env=engine.docker_env())
            _export_kubeconfig(m)
            try:
                with progress.step("waiting for the existing cluster"):
                    wait_ready(timeout=180 if state == "running" else READY_TIMEOUT, m=m)
                progress.note(f"reusing the running cluster {m.name}")
                node_img = images.docker_quiet("inspect", "--format", "{{.Image}}", m.node).stdout.strip()
                cur_img = images.docker_quiet("image", "inspect", "--format", "{{.Id}}", node_image()).stdout.strip()
                if node_img and cur_img and node_img != cur_img:
                    progress.note(f"the node runs another image than {node_image()}; {_recreate_hint(m)} recreates it on the current one")
                _check_reused_ports(m)
                st.cached = True
                _summary(m)
                return
            except errors.DevError as exc:
                progress.warn(f"existing cluster is not healthy, recreating it: {str(exc).splitlines()[0]}")
                _kind("delete", "cluster", "--name", m.name, desc=f"deleting broken cluster {m.name}", m=m)
        with progress.step(f"kind create cluster {m.name}"):
            _create(m)
        with progress.step("waiting for node Ready and system pods"):
            wait_ready(m=m)
        _summary(m)


def _recreate_hint(m: Member) -> str:
    if m == FIRST:
        return "'tools/dev cluster down && tools/dev cluster up'"
    return f"'kind delete cluster --name {m.name}' and 'tools/dev fleet up'"


def _check_reused_ports(m: Member) -> None:
    """Warn when the running node publishes other ingress ports than the ones asked for now."""
    ports = published_ports(m)
    for container_port, want in (("30080/tcp", m.http_port), ("30443/tcp", m.https_port)):
        have = ports.get(container_port, [])
        if have and str(want) not in have:
            progress.warn(
                f"the running cluster {m.name} publishes node port {container_port} on 127.0.0.1:{','.join(have)}, "
                f"not {want}; {_recreate_hint(m)} applies the new port"
            )


def published_ports(m: Member = FIRST) -> dict[str, list[str]]:
    """Host ports of the node's 30080/30443 bindings, e.g. {"30080/tcp": ["80"]}."""
    res = images.docker_quiet("inspect", "--format", "{{json .HostConfig.PortBindings}}", m.node)
    try:
        bindings = json.loads(res.stdout or "{}") or {}
    except ValueError:
        return {}
    return {k: [b.get("HostPort") for b in v or []] for k, v in bindings.items() if k in ("30080/tcp", "30443/tcp")}


def _summary(m: Member) -> None:
    ports = published_ports(m)
    http = ",".join(ports.get("30080/tcp", [])) or str(m.http_port)
    https = ",".join(ports.get("30443/tcp", [])) or str(m.https_port)
    progress.note(f"kubeconfig: {m.kubeconfig()} (context {m.context})")
    progress.note(f"ingress: http://127.0.0.1:{http} -> node port 30080, https 127.0.0.1:{https} -> 30443")


def down(m: Member = FIRST) -> None:
    with progress.step(f"cluster down ({m.name})") as st:
        if not cluster_exists(m):
            progress.note(f"no kind cluster {m.name}")
            st.cached = True
        else:
            _kind("delete", "cluster", "--name", m.name, "--kubeconfig", str(m.kubeconfig()), desc=f"deleting cluster {m.name}", m=m)
        m.kubeconfig().unlink(missing_ok=True)


def load(images: list[str], m: Member = FIRST) -> None:
    """``kind load docker-image`` (image names) or ``kind load image-archive`` (tar files)."""
    with progress.step(f"load {len(images)} image(s) into {m.name}"):
        if not cluster_exists(m):
            hint = "'tools/dev cluster up'" if m == FIRST else "'tools/dev fleet up'"
            raise errors.DevError(f"no kind cluster {m.name}: run {hint} first")
        archives = [i for i in images if os.path.isfile(i)]
        names = [i for i in images if i not in archives]
        if names:
            _kind("load", "docker-image", "--name", m.name, *names, desc=f"loading {', '.join(names)}", m=m, timeout=1200)
        for archive in archives:
            _kind("load", "image-archive", "--name", m.name, archive, desc=f"loading {archive}", m=m, timeout=1200)


def memory(m: Member = FIRST) -> dict[str, float]:
    """Memory of the node container: docker stats usage and the cgroup's own figure (MiB)."""
    out: dict[str, float] = {}
    res = images.docker_quiet("stats", "--no-stream", "--format", "{{json .}}", m.node)
    if res.returncode == 0 and res.stdout.strip():
        data = json.loads(res.stdout.strip().splitlines()[0])
        usage = data.get("MemUsage", "").split("/")[0].strip()
        out["docker_stats_mib"] = _to_mib(usage)
    cid = images.docker_quiet("inspect", "--format", "{{.Id}}", m.node).stdout.strip()
    for base in (f"/sys/fs/cgroup/memory/docker/{cid}", f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"):
        usage_file = Path(base) / "memory.usage_in_bytes"
        stat_file = Path(base) / "memory.stat"
        if usage_file.is_file():
            out["cgroup_usage_mib"] = int(usage_file.read_text()) / 2**20
            stats = dict(line.split() for line in stat_file.read_text().splitlines() if len(line.split()) == 2)
            out["cgroup_rss_mib"] = int(stats.get("total_rss", 0)) / 2**20
            out["cgroup_cache_mib"] = int(stats.get("total_cache", 0)) / 2**20
            break
    return out


def _to_mib(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1024, "MB": 1, "GB": 1024}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return 0.0
    return 0.0


def status(m: Member = FIRST) -> int:
    env_ok = engine.server_version(engine.docker_env()["DOCKER_HOST"])
    if not env_ok:
        print("engine: not answering (tools/dev engine up)")
        return 1
    if not cluster_exists(m):
        print(f"cluster {m.name}: absent")
        return 1
    print(f"cluster {m.name}: node container {node_state(m)}")
    print(f"kubeconfig: {m.kubeconfig()} (context {m.context})")
    ok, pending = health(m)
    print(f"health: {'ready' if ok else 'not ready: ' + ', '.join(pending)}")
    mem = memory(m)
    if mem:
        print("memory: " + ", ".join(f"{k}={v:.0f}" for k, v in mem.items()))
    res = _kubectl_quiet("get", "pods", "-A", "-o", "wide", m=m)
    print(res.stdout.rstrip())
    return 0 if ok else 1
