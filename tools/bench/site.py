#!/usr/bin/env python3
"""Figures of the main job on the kind cluster, measured in one go (issues 4, 5 and 12).

    Run with the venv's python (it has the tools package and the collection's requirements):
    ~/.cache/meshops-istio/venv/bin/python tools/bench/site.py [--fresh] [--fleet INVENTORY] [--probes N]

1. Idempotent rerun: site.yml (with its verification) against the equivalent raw sequence with
   an equivalent check (helm upgrade --install of the four releases, kubectl apply of the same
   objects, kubectl rollout status, a curl loop of the four reference probes and one egress curl
   from the mesh client pod): wall time, the ratio, and the controller CPU (user + system of
   ansible-playbook and every process it started) of site.yml.
2. With --fleet: the controller CPU of one idempotent rerun against every cluster of a fleet
   inventory, per cluster.
3. A route change through site.yml with only the roles it concerns (--tags traffic,verify): the
   time from the start of the run to the verified new behaviour, and from an applied
   VirtualService to the gateway answering differently.
4. With --fresh: first run on a freshly created cluster, site.yml against the raw sequence (the
   cluster is recreated for each), and the time to the first successful reference probe.
5. Probe throughput through the real ingress gateway: route_verify's engine vs a curl loop, and
   the memory of the node container.

Every request goes to 127.0.0.1 (the kind port mapping) or from the mesh client pod to the
project's external host container; every loop is bounded. The cluster is left converged with
the default inventory. Figures are printed, with their ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from meshops_dev import cache, cluster, collection, engine, jobs, stack

REPO = cache.REPO_ROOT

HOST = "httpbin.example.com"
EGRESS_HOST = "edition.cnn.com"
INGRESS_PORT = int(os.environ.get("MESHOPS_INGRESS_HTTP_PORT", "80"))
INVENTORY = cache.kind_inventory()
REFERENCE_PROBES = (
    ("HEAD", "/status/200", HOST, 200),
    ("GET", "/delay/1", HOST, 200),
    ("GET", "/headers", HOST, 404),
    ("GET", "/status/200", "unknown.example.com", 404),
)


def env() -> dict[str, str]:
    return jobs.job_env()


def kubectl(*args: str, input_text: str | None = None, check: bool = True) -> str:
    cmd = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--context", "kind-meshops", *args]
    proc = subprocess.run(cmd, env=env(), input=input_text, capture_output=True, text=True, check=False, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def get(path: str, host: str = HOST, timeout: float = 2.0, method: str = "GET") -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", INGRESS_PORT, timeout=timeout)
        conn.request(method, path, headers={"Host": host})
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


class FirstSuccess:
    """Polls a path every 0.2 s from start() until it answers `status`; records the time."""

    def __init__(self, path: str, status: int = 200, limit: float = 1800) -> None:
        self.path, self.status, self.limit = path, status, limit
        self.seconds: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FirstSuccess:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() - self._start < self.limit:
            if get(self.path, timeout=1.0) == self.status:
                self.seconds = time.monotonic() - self._start
                return
            time.sleep(0.2)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.seconds


def timed(cmd: list[str], **kwargs) -> tuple[float, float]:
    """Run a command; (wall seconds, CPU seconds of it and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env(), cwd=REPO, capture_output=True, text=True, check=False, **kwargs)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def site(extra: dict | None = None, inventory: Path = INVENTORY, tags: tuple[str, ...] = ()) -> tuple[float, float]:
    cmd = ["ansible-playbook", "-i", str(inventory), "site.yml"]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    if tags:
        cmd += ["--tags", ",".join(tags)]
    return timed(cmd, timeout=3600)


def fresh_cluster() -> None:
    cluster.down()
    cluster.up()
    stack.prepare_clusters()


def rendered_values() -> dict:
    """The Helm releases and manifests site.yml uses, as the roles render them (debug dump)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "values.json"
        playbook = Path(tmp) / "dump.yml"
        playbook.write_text(
            "- hosts: clusters\n  gather_facts: false\n  tasks:\n"
            + "".join(
                f"    - ansible.builtin.include_role: {{name: meshops.istio.{role}, tasks_from: validate, public: true}}\n"
                for role in ("control_plane", "gateways", "httpbin", "traffic", "verify")
            )
            + "    - ansible.builtin.include_role: {name: meshops.istio.traffic, tasks_from: render, public: true}\n"
            "    - ansible.builtin.copy:\n"
            "        dest: " + str(out) + "\n"
            "        mode: '0600'\n"
            "        content: \"{{ {'base': __control_plane_base_values_final, 'istiod': __control_plane_istiod_values_final,"
            " 'gateways': __gateways_releases, 'charts': control_plane_chart_dir,"
            " 'httpbin': __httpbin_manifests, 'traffic': __traffic_manifests, 'client': __verify_client_deployment,"
            " 'routes': traffic_ingress_routes} | to_json }}\"\n"
        )
        timed(["ansible-playbook", "-i", str(INVENTORY), str(playbook)])
        return json.loads(out.read_text())


def raw_sequence(values: dict, check: bool = True) -> tuple[float, float]:
    """helm upgrade --install + kubectl apply of the same charts, values and objects, with waits,
    then the reference probes (a curl loop) and one egress curl from the mesh client pod."""
    helm = [str(cache.bin_dir() / "helm"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--kube-context", "kind-meshops"]
    charts = Path(values["charts"])
    wall = cpu = 0.0

    def run(cmd: list[str], **kwargs) -> None:
        nonlocal wall, cpu
        w, c = timed(cmd, **kwargs)
        wall += w
        cpu += c

    with tempfile.TemporaryDirectory() as tmp:

        def install(release: str, chart: str, vals: dict, namespace: str = "istio-system") -> None:
            path = Path(tmp) / f"{release}.json"
            path.write_text(json.dumps(vals))
            run(
                [
                    *helm,
                    "upgrade",
                    "--install",
                    release,
                    str(charts / chart),
                    "-n",
                    namespace,
                    "--create-namespace",
                    "-f",
                    str(path),
                    "--wait",
                    "--timeout",
                    "10m",
                ]
            )

        kube = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--context", "kind-meshops"]
        install("istio-base", "base", values["base"])
        install("istiod", "istiod", values["istiod"])
        for gateway in values["gateways"]:
            install(gateway["name"], "gateway", gateway["values"], gateway["namespace"])
        items = {"apiVersion": "v1", "kind": "List", "items": [*values["httpbin"], values["client"]]}
        run([*kube, "apply", "--server-side", "--force-conflicts", "-f", "-"], input=json.dumps(items))
        run([*kube, "-n", "httpbin", "rollout", "status", "deployment/httpbin", "--timeout=600s"])
        run(
            [*kube, "apply", "--server-side", "--force-conflicts", "-f", "-"],
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": values["traffic"]}),
        )
        if check:
            curls = [
                f'curl -s -o /dev/null -w "%{{http_code}}" {"-I " if method == "HEAD" else ""}-H "Host: {host}" http://127.0.0.1:{INGRESS_PORT}{path}'
                for method, path, host, _status in REFERENCE_PROBES
            ]
            probes = " && ".join(f'[ "$({curl})" = {status} ]' for curl, (_m, _p, _h, status) in zip(curls, REFERENCE_PROBES, strict=True))
            run(["bash", "-c", probes], timeout=120)
            pod = subprocess.run(
                [*kube, "-n", "httpbin", "get", "pods", "-l", "app=meshops-curl", "-o", "jsonpath={.items[0].metadata.name}"],
                env=env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            run([*kube, "-n", "httpbin", "exec", pod, "-c", "curl", "--", "curl", "-sS", "-o", "/dev/null", "--max-time", "10", f"http://{EGRESS_HOST}/"])
    return wall, cpu


def route_change(values: dict) -> tuple[float, float]:
    """(seconds from an applied VirtualService change to the changed answer, the same through site.yml --tags traffic,verify)."""
    vs = json.loads(kubectl("-n", "httpbin", "get", "virtualservice", "httpbin", "-o", "json"))
    spec = vs["spec"]
    spec["http"][0]["match"].append({"uri": {"prefix": "/headers"}})
    change = {"apiVersion": vs["apiVersion"], "kind": "VirtualService", "metadata": {"name": "httpbin", "namespace": "httpbin"}, "spec": spec}
    start = time.monotonic()
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "bench", "-f", "-", input_text=json.dumps(change))
    while get("/headers") != 200 and time.monotonic() - start < 120:
        time.sleep(0.05)
    direct = time.monotonic() - start
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "bench", "-f", "-", input_text=json.dumps(vs | {"metadata": change["metadata"]}))
    site({"verify_egress": False}, tags=("traffic", "verify"))  # back to the inventory's routes
    route = json.loads(json.dumps(values["routes"][0]))  # the reference route, from the roles' defaults
    route["http"][0]["match"].append({"prefix": "/headers"})
    probe = {"name": "routed /headers", "host": HOST, "path": "/headers", "expect": {"status": 200}}
    wall, _cpu = site({"traffic_ingress_routes": [route], "verify_ingress_probes": [probe], "verify_egress": False}, tags=("traffic", "verify"))
    if get("/headers") != 200:
        raise SystemExit("the route change through site.yml did not change the answer")
    site({"verify_egress": False}, tags=("traffic", "verify"))
    return direct, wall


def throughput(probes: int) -> tuple[float, float]:
    """(route_verify engine seconds, sequential curl loop seconds) for `probes` reference probes."""
    collection.importable()
    from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner  # noqa: PLC0415 (importable only after that)

    spec = [{"name": f"p{i}", "host": HOST, "path": "/status/200", "expect": {"status": 200, "headers": {"server": "istio-envoy"}}} for i in range(probes)]
    prepared, settings = probe_runner.prepare(spec, {"address": f"127.0.0.1:{INGRESS_PORT}"}, {"workers": 8, "retries": 0, "timeout": 600})
    start = time.monotonic()
    results, _summary = probe_runner.run(prepared, settings)
    engine_s = time.monotonic() - start
    if not all(r["passed"] for r in results):
        raise SystemExit("some engine probes failed")
    script = (
        f'for i in $(seq 1 {probes}); do s=$(curl -s -o /dev/null -w "%{{http_code}}" -H "Host: {HOST}" '
        f'http://127.0.0.1:{INGRESS_PORT}/status/200); [ "$s" = 200 ] || exit 1; done'
    )
    curl_s, _cpu = timed(["bash", "-c", script], timeout=1800)
    return engine_s, curl_s


def node_memory() -> str:
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", "meshops-control-plane"],
        env=engine.docker_env() | dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def hosts_of(inventory: Path) -> int:
    proc = subprocess.run(["ansible-inventory", "-i", str(inventory), "--list"], env=env(), capture_output=True, text=True, check=True)
    return len(json.loads(proc.stdout).get("clusters", {}).get("hosts", []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="also measure first runs on freshly created clusters (recreates the cluster twice)")
    parser.add_argument("--fleet", type=Path, help="a fleet inventory (e.g. inventories/kind-fleet/hosts.yml): CPU per cluster of a rerun on all")
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--reruns", type=int, default=3, help="idempotent reruns measured (the median is reported)")
    args = parser.parse_args()
    figures: dict[str, float | str | None] = {}

    def record(name: str, value: float | str | None) -> None:
        figures[name] = value
        print(f"-- {name}: {value}", flush=True)

    values = rendered_values()
    if args.fresh:
        fresh_cluster()
        wall, _cpu = raw_sequence(values, check=False)
        record("raw_first_s", wall)
        fresh_cluster()
        watcher = FirstSuccess("/status/200").start()
        wall, cpu = site()
        record("site_first_s", wall)
        record("site_first_cpu_s", cpu)
        record("site_start_to_first_probe_s", watcher.stop())
    else:
        site()  # converged before the reruns are measured
    reruns = sorted(site() for _run in range(args.reruns))
    record("site_rerun_s", reruns[len(reruns) // 2][0])
    record("site_rerun_cpu_s", sorted(c for _w, c in reruns)[len(reruns) // 2])
    raw = sorted(raw_sequence(values) for _run in range(args.reruns))
    record("raw_rerun_s", raw[len(raw) // 2][0])
    if args.fleet:
        clusters = hosts_of(args.fleet)
        site(inventory=args.fleet)
        fleet = sorted(site(inventory=args.fleet) for _run in range(max(1, args.reruns - 1)))
        record("fleet_clusters", clusters)
        record("fleet_rerun_s", fleet[len(fleet) // 2][0])
        record("fleet_rerun_cpu_per_cluster_s", sorted(c for _w, c in fleet)[len(fleet) // 2] / clusters)
    direct, through_site = route_change(values)
    record("route_change_applied_to_gateway_s", direct)
    record("route_change_through_site_tags_s", through_site)
    figures["probes"] = args.probes
    engine_s, curl_s = throughput(args.probes)
    record("engine_probes_s", engine_s)
    record("curl_loop_probes_s", curl_s)
    record("node_memory", node_memory())

    print("\n== idempotent rerun (changed=0), median of", args.reruns)
    print(f"site.yml rerun         {figures['site_rerun_s']:8.1f} s   controller CPU {figures['site_rerun_cpu_s']:.1f} s")
    print(f"raw sequence + check   {figures['raw_rerun_s']:8.1f} s   ratio site/raw {figures['site_rerun_s'] / figures['raw_rerun_s']:.2f}")
    if args.fleet:
        print(
            f"fleet of {figures['fleet_clusters']}: rerun {figures['fleet_rerun_s']:.1f} s, "
            f"controller CPU per cluster {figures['fleet_rerun_cpu_per_cluster_s']:.1f} s"
        )
    if args.fresh:
        first_probe = figures["site_start_to_first_probe_s"] or float("nan")
        print("== first run on a fresh cluster")
        print(f"site.yml first run     {figures['site_first_s']:8.1f} s   (first successful reference probe after {first_probe:.1f} s)")
        print(f"raw sequence first run {figures['raw_first_s']:8.1f} s   ratio site/raw {figures['site_first_s'] / figures['raw_first_s']:.2f}")
    print("== route change")
    print(f"VirtualService applied -> gateway answers differently: {figures['route_change_applied_to_gateway_s']:.2f} s")
    print(f"site.yml --tags traffic,verify with the changed route -> verified: {figures['route_change_through_site_tags_s']:.1f} s")
    print(f"== {args.probes} probes through the real ingress gateway")
    ratio = figures["curl_loop_probes_s"] / figures["engine_probes_s"]
    print(f"route_verify engine {figures['engine_probes_s']:.2f} s, curl loop {figures['curl_loop_probes_s']:.2f} s, ratio {ratio:.1f}x")
    print(f"== memory of the node container with the data plane: {figures['node_memory']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
