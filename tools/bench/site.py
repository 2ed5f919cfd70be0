#!/usr/bin/env python3
"""Figures of the main job on the kind cluster (issues 4 and 5), measured in one go.

    Run with the venv's python (it has the tools package and the collection's requirements):
    ~/.cache/meshops-istio/venv/bin/python tools/bench/site.py [--skip-raw] [--probes N]

1. site.yml vs the equivalent raw sequence (helm upgrade --install of the same charts and values,
   kubectl apply of the same objects, waits), each on a freshly created cluster: first run and an
   idempotent rerun, with the time from the start to the first successful reference probe.
2. Time from a route change (server-side apply of a VirtualService) to the changed behaviour at
   the gateway, and through site.yml.
3. Probe throughput through the real ingress gateway: route_verify's engine vs a curl loop.
4. Memory of the node container with the data plane running.

Every request goes to 127.0.0.1 (the kind port mapping); every loop is bounded. The cluster is
left converged with the default inventory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from meshops_dev import cache, cluster, collection, engine, jobs, stack

REPO = cache.REPO_ROOT

HOST = "httpbin.example.com"
INGRESS_PORT = int(os.environ.get("MESHOPS_INGRESS_HTTP_PORT", "80"))
INVENTORY = cache.kind_inventory()


def env() -> dict[str, str]:
    return jobs.job_env()


def kubectl(*args: str, input_text: str | None = None, check: bool = True) -> str:
    cmd = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--context", "kind-meshops", *args]
    proc = subprocess.run(cmd, env=env(), input=input_text, capture_output=True, text=True, check=False, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def get(path: str, host: str = HOST, timeout: float = 2.0) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", INGRESS_PORT, timeout=timeout)
        conn.request("GET", path, headers={"Host": host})
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


def timed(cmd: list[str], **kwargs) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env(), cwd=REPO, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return time.monotonic() - start


def site(extra: dict | None = None) -> float:
    cmd = ["ansible-playbook", "-i", str(INVENTORY), "site.yml"]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    return timed(cmd, timeout=3600)


def fresh_cluster() -> None:
    cluster.down()
    cluster.up()
    stack.prepare_clusters()


def rendered_values() -> dict:
    """The Helm values and manifests site.yml uses, as the roles render them (debug dump)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "values.json"
        playbook = Path(tmp) / "dump.yml"
        playbook.write_text(
            "- hosts: clusters\n  gather_facts: false\n  tasks:\n"
            "    - ansible.builtin.include_role: {name: meshops.istio.control_plane, tasks_from: validate, public: true}\n"
            "    - ansible.builtin.include_role: {name: meshops.istio.gateways, tasks_from: validate, public: true}\n"
            "    - ansible.builtin.include_role: {name: meshops.istio.traffic, tasks_from: render, public: true}\n"
            "    - ansible.builtin.include_role: {name: meshops.istio.httpbin, tasks_from: validate, public: true}\n"
            "    - ansible.builtin.copy:\n"
            "        dest: " + str(out) + "\n"
            "        mode: '0600'\n"
            "        content: \"{{ {'base': __control_plane_base_values_final, 'istiod': __control_plane_istiod_values_final,"
            " 'gateways': gateways_list | map('meshops.istio.gateway_values') | list,"
            " 'pull': gateways_image_pull_policy, 'charts': control_plane_chart_dir,"
            " 'httpbin': __httpbin_manifests, 'traffic': __traffic_manifests} | to_json }}\"\n"
        )
        timed(["ansible-playbook", "-i", str(INVENTORY), str(playbook)])
        return json.loads(out.read_text())


def raw_sequence(values: dict) -> float:
    """helm upgrade --install + kubectl apply of the same charts, values and objects, with waits."""
    helm = [str(cache.bin_dir() / "helm"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--kube-context", "kind-meshops"]
    charts = Path(values["charts"])
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:

        def install(release: str, chart: str, vals: dict, namespace: str = "istio-system") -> None:
            path = Path(tmp) / f"{release}.json"
            path.write_text(json.dumps(vals))
            timed(
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

        install("istio-base", "base", values["base"])
        install("istiod", "istiod", values["istiod"])
        for gateway in values["gateways"]:
            if values["pull"]:
                gateway["imagePullPolicy"] = values["pull"]
            install(gateway["name"], "gateway", gateway)
        kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": values["httpbin"]}))
        kubectl("-n", "httpbin", "rollout", "status", "deployment/httpbin", "--timeout=600s")
        kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": values["traffic"]}))
        end = time.monotonic() + 300
        while get("/status/200") != 200 and time.monotonic() < end:
            time.sleep(0.2)
    return time.monotonic() - start


def route_change() -> tuple[float, float]:
    """(seconds from an applied VirtualService change to the changed answer, the same through site.yml)."""
    vs = json.loads(kubectl("-n", "httpbin", "get", "virtualservice", "httpbin", "-o", "json"))
    spec = vs["spec"]
    spec["http"][0]["match"].append({"uri": {"prefix": "/headers"}})
    change = {"apiVersion": vs["apiVersion"], "kind": "VirtualService", "metadata": {"name": "httpbin", "namespace": "httpbin"}, "spec": spec}
    start = time.monotonic()
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "meshops.istio", "-f", "-", input_text=json.dumps(change))
    while get("/headers") != 200 and time.monotonic() - start < 120:
        time.sleep(0.05)
    direct = time.monotonic() - start
    site({"verify_egress": False})  # back to the inventory's routes
    watcher = FirstSuccess("/headers").start()
    route = {
        "name": "httpbin",
        "hosts": [HOST],
        "gateway": {"name": "httpbin-gateway", "port": 80, "protocol": "HTTP"},
        "http": [{"match": [{"prefix": p} for p in ("/status", "/delay", "/headers")], "route": [{"host": "httpbin", "port": 8000}]}],
    }
    site({"verify_egress": False, "traffic_ingress_routes": [route], "verify_ingress_probes": []})
    through_site = watcher.stop()
    site({"verify_egress": False})
    return direct, through_site or float("nan")


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
    curl_s = timed(["bash", "-c", script], timeout=1800)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-raw", action="store_true", help="do not measure the raw helm/kubectl sequence (saves two cluster creations)")
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--only-traffic", action="store_true", help="only the route-change, throughput and memory figures (on the running cluster)")
    args = parser.parse_args()
    figures: dict[str, float | str | None] = {}

    def record(name: str, value: float | str | None) -> None:
        figures[name] = value
        print(f"-- {name}: {value}", flush=True)

    if args.only_traffic:
        args.skip_raw = True
    values = None if args.only_traffic else rendered_values()
    if not args.skip_raw:
        fresh_cluster()
        record("raw_first_s", raw_sequence(values))
        record("raw_rerun_s", raw_sequence(values))
    if not args.only_traffic:
        fresh_cluster()
        watcher = FirstSuccess("/status/200").start()
        record("site_first_s", site())
        record("site_start_to_first_probe_s", watcher.stop())
        record("site_rerun_s", site())
    direct, through_site = route_change()
    record("route_change_applied_to_gateway_s", direct)
    record("route_change_through_site_s", through_site)
    figures["probes"] = args.probes
    engine_s, curl_s = throughput(args.probes)
    record("engine_probes_s", engine_s)
    record("curl_loop_probes_s", curl_s)
    record("node_memory", node_memory())

    if not args.only_traffic:
        print("\n== site.yml vs raw helm/kubectl (fresh cluster each; rerun = idempotent second run)")
        first_probe = figures["site_start_to_first_probe_s"] or float("nan")
        print(f"site.yml first run     {figures['site_first_s']:8.1f} s   (first successful reference probe after {first_probe:.1f} s)")
        print(f"site.yml rerun         {figures['site_rerun_s']:8.1f} s")
    if not args.skip_raw:
        print(f"raw sequence first run {figures['raw_first_s']:8.1f} s   ratio site/raw {figures['site_first_s'] / figures['raw_first_s']:.2f}")
        print(f"raw sequence rerun     {figures['raw_rerun_s']:8.1f} s   ratio site/raw {figures['site_rerun_s'] / figures['raw_rerun_s']:.2f}")
    print("== route change")
    print(f"VirtualService applied -> gateway answers differently: {figures['route_change_applied_to_gateway_s']:.2f} s")
    print(f"site.yml started with the changed route -> changed answer: {figures['route_change_through_site_s']:.1f} s")
    print(f"== {args.probes} probes through the real ingress gateway")
    ratio = figures["curl_loop_probes_s"] / figures["engine_probes_s"]
    print(f"route_verify engine {figures['engine_probes_s']:.2f} s, curl loop {figures['curl_loop_probes_s']:.2f} s, ratio {ratio:.1f}x")
    print(f"== memory of the node container with the data plane: {figures['node_memory']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
