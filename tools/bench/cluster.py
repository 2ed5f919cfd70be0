#!/usr/bin/env python3
"""Figures of the air-gapped kind cluster: build time per component, cluster creation, memory.

    PY=~/.cache/meshops-istio/venv/bin/python   # the venv has the tools package (tools/dev test)
    $PY tools/bench/cluster.py              # figures from $MESHOPS_CACHE/timings.jsonl + memory
    $PY tools/bench/cluster.py --recreate   # also: cluster down + a fresh warm cluster up, timed
    $PY tools/bench/cluster.py --json       # the same as one JSON object

Cold = the first successful, uncached run of a step recorded in timings.jsonl (the build that
did the work); warm = the latest run of the step that was served from the cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from meshops_dev import cache, cluster, errors, progress, stack

# Step-name prefixes that are components of the air-gapped build, in display order.
COMPONENT_PREFIXES = (
    "engine up",
    "build kind",
    "build helm",
    "build kubernetes",
    "build kubeadm",
    "build kubectl",
    "build containerd",
    "build runc",
    "build crictl",
    "build CNI",
    "build etcd",
    "build coredns",
    "build local-path",  # earlier runs (no longer built)
    "build pause",
    "debootstrap",
    "image ",
    "node ",
    "import images",
    "commit ",
    "save meshops.local/kind-node",
    "build node-image",
    "build host-tools",
    "kind create cluster",
    "waiting for node Ready",
    "cluster up",
)


def read_timings(path: Path) -> list[dict]:
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return entries
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def summarize(entries: list[dict]) -> list[dict]:
    rows: dict[str, dict] = {}
    for e in entries:
        name = e.get("name", "")
        if not name.startswith(COMPONENT_PREFIXES) or not e.get("ok", True):
            continue
        row = rows.setdefault(name, {"name": name, "cold_s": None, "warm_s": None, "runs": 0})
        row["runs"] += 1
        if e.get("cached"):
            row["warm_s"] = e["seconds"]
        elif row["cold_s"] is None:
            row["cold_s"] = e["seconds"]
        else:
            row["last_uncached_s"] = e["seconds"]
    order = {p: i for i, p in enumerate(COMPONENT_PREFIXES)}

    def key(row: dict) -> tuple[int, str]:
        for prefix, i in order.items():
            if row["name"].startswith(prefix):
                return i, row["name"]
        return len(order), row["name"]

    return sorted(rows.values(), key=key)


def fmt(value: float | None) -> str:
    return "-" if value is None else progress.fmt_duration(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recreate", action="store_true", help="delete and re-create the cluster (warm), timed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timings", type=Path, default=None, help="timings file (default: $MESHOPS_CACHE/timings.jsonl)")
    args = parser.parse_args()

    result: dict = {}
    if args.recreate:
        t0 = time.monotonic()
        cluster.down()
        t1 = time.monotonic()
        cluster.up()
        t2 = time.monotonic()
        stack.prepare_clusters()  # images and the external host, as tools/dev up leaves the cluster
        result["cluster_down_s"] = round(t1 - t0, 1)
        result["cluster_up_warm_s"] = round(t2 - t1, 1)
    timings = args.timings or cache.timings_file()
    result["timings_file"] = str(timings)
    result["components"] = summarize(read_timings(timings))
    try:
        result["memory_mib"] = {k: round(v, 1) for k, v in cluster.memory().items()}
    except errors.DevError as exc:
        result["memory_mib"] = {"error": str(exc)}

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"timings from {timings}")
    print(f"{'step':<78} {'cold':>9} {'warm':>9}")
    for row in result["components"]:
        print(f"{row['name'][:78]:<78} {fmt(row['cold_s']):>9} {fmt(row['warm_s']):>9}")
    if "cluster_up_warm_s" in result:
        print(f"\ncluster down: {fmt(result['cluster_down_s'])}; warm cluster up (create + ready): {fmt(result['cluster_up_warm_s'])}")
    mem = result["memory_mib"]
    if mem:
        print("\nmemory of the node container (MiB): " + ", ".join(f"{k}={v}" for k, v in mem.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
