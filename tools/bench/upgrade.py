#!/usr/bin/env python3
"""Figures of Istio upgrades on the kind fleet (issue 8), measured in one go.

    Needs the fleet and both Istio builds (``tools/dev fleet up --count 3``); run with the venv's
    python: ~/.cache/meshops-istio/venv/bin/python tools/bench/upgrade.py [--skip-in-place]

Every cluster first gets the reference scenario on the older build (site.yml, RevisionBased, two
ingress gateway and two httpbin replicas: what zero downtime needs). Then, each under a bounded
load of 20 requests/s to /status/200 through the ingress gateway of the cluster that changes
(127.0.0.1, a new connection per request; meshops_dev.load):

1. Rollback: the first cluster upgraded up to the promotion, then playbooks/rollback.yml; the
   figure is the rollback's failed/sent.
2. Serial: playbooks/upgrade.yml on the three clusters with batches of one (meshops_serial=1);
   one cluster's time is the first batch's play time, the load runs on the first cluster.
3. Parallel: back on the older build (uninstall + site.yml on the three), then playbooks/upgrade.yml
   with one batch of three (meshops_serial=3, forks >= 3). Goal: at most 2x one cluster's time.
4. InPlace (unless --skip-in-place): the third cluster reinstalled in place on the older build,
   then upgraded in place; failed/sent of the upgrade (the workloads restart onto the new proxy).

Figures are printed with their ratios; nothing is asserted. Every loop is bounded. The fleet is
left on the newer build (the third cluster installed in place unless --skip-in-place).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime

from meshops_dev import cache, fleet, jobs, upgrade_scenario
from meshops_dev.load import Load

REPO = cache.REPO_ROOT
HOST = "httpbin.example.com"
MEMBERS = fleet.plan(fleet.INVENTORY_SIZE)
SETTINGS = upgrade_scenario.SETTINGS
IN_PLACE = upgrade_scenario.IN_PLACE
BATCH_PLAY = "Upgrade Istio, one batch of clusters at a time"
OLD, NEW = upgrade_scenario.minor_vars(upgrade_scenario.OLD), upgrade_scenario.minor_vars(upgrade_scenario.NEW)


def playbook(name: str, extra: dict | None = None, limit: str | None = None, desc: str = "") -> tuple[float, dict]:
    """Run a playbook on the fleet with the JSON callback: (wall seconds, output); exits on failure."""
    variables = dict(SETTINGS, **(extra or {}))
    cmd = ["ansible-playbook", "-i", str(cache.fleet_inventory()), "--forks", "5", str(REPO / name), "--extra-vars", json.dumps(variables)]
    if limit:
        cmd += ["--limit", limit]
    env = jobs.job_env()
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    print(f"  .. {desc or name}{f' on {limit}' if limit else ''}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True, check=False, timeout=3600)
    wall = time.monotonic() - start
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        sys.exit(f"{name}: no JSON output (exit {proc.returncode}): {proc.stderr[-2000:]}")
    if proc.returncode != 0:
        sys.exit(f"{name} failed (exit {proc.returncode}): {json.dumps(output.get('stats'))}")
    changed = sum(s["changed"] for s in output["stats"].values())
    print(f"     {wall:.0f} s, changed={changed}", flush=True)
    return wall, output


def batch_times(output: dict) -> list[float]:
    """The wall time of each batch of upgrade.yml (one play per batch), in order."""
    times = []
    for play in output["plays"]:
        if play["play"]["name"] != BATCH_PLAY:
            continue
        duration = play["play"]["duration"]
        start, end = (datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
        times.append((end - start).total_seconds())
    return times


def under_load(member: fleet.Member, name: str, extra: dict, limit: str | None, desc: str) -> tuple[float, dict, dict]:
    with Load(member.http_port, HOST, rate=20, max_seconds=1800) as load:
        wall, output = playbook(name, extra, limit, desc)
    summary = load.summary()
    print(f"     load on {member.name}: {summary['failed']} failed of {summary['sent']} sent {dict(summary.get('reasons', {}))}", flush=True)
    return wall, output, summary


def share(summary: dict) -> str:
    return f"{summary['failed']}/{summary['sent']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--skip-in-place", action="store_true", help="leave out the InPlace figures (saves about 8 minutes)")
    args = parser.parse_args()
    os.chdir(REPO)
    c1, _c2, c3 = MEMBERS
    all_hosts = ",".join(m.context for m in MEMBERS)
    print(f"fleet: {all_hosts}; old {OLD['meshops_istio_minor']}, new {NEW['meshops_istio_minor']}", flush=True)

    print("setup: the reference scenario on the older build, every cluster", flush=True)
    playbook("playbooks/uninstall.yml", desc="uninstall")
    setup, _ = playbook("site.yml", OLD, desc="site.yml (older build)")

    print("1. rollback after the promotion (first cluster)", flush=True)
    playbook("playbooks/upgrade.yml", dict(NEW, meshops_upgrade_until="promote"), c1.context, "upgrade up to the promotion")
    rollback, _, rollback_load = under_load(c1, "playbooks/rollback.yml", NEW, c1.context, "rollback")

    print("2. three clusters, batches of one", flush=True)
    serial, output, serial_load = under_load(c1, "playbooks/upgrade.yml", dict(NEW, meshops_serial=1), None, "upgrade (serial)")
    batches = batch_times(output)
    one = batches[0] if batches else serial / 3

    print("3. three clusters in one batch", flush=True)
    playbook("playbooks/uninstall.yml", desc="uninstall")
    playbook("site.yml", OLD, desc="site.yml (older build)")
    parallel, _, parallel_load = under_load(c1, "playbooks/upgrade.yml", dict(NEW, meshops_serial=3), None, "upgrade (parallel)")

    in_place = in_place_load = None
    if not args.skip_in_place:
        print("4. InPlace (third cluster)", flush=True)
        playbook("playbooks/uninstall.yml", limit=c3.context, desc="uninstall")
        playbook("site.yml", dict(OLD, **IN_PLACE), c3.context, "site.yml InPlace (older build)")
        in_place, _, in_place_load = under_load(c3, "playbooks/upgrade.yml", dict(NEW, **IN_PLACE), c3.context, "upgrade (InPlace)")

    print("\nfigures (2 ingress gateway and 2 httpbin replicas; load 20 requests/s through the ingress gateway)")
    print(f"  site.yml, older build, three clusters at once:      {setup:6.0f} s")
    print(f"  one cluster's RevisionBased upgrade (first batch): {one:6.0f} s; batches: {', '.join(f'{b:.0f} s' for b in batches)}")
    print(f"  three clusters, batches of one:                    {serial:6.0f} s  ({serial / one:.2f}x one cluster)")
    print(f"  three clusters, one batch (forks):                 {parallel:6.0f} s  ({parallel / one:.2f}x one cluster; goal <= 2x)")
    print(f"  failed/sent, RevisionBased upgrade (serial run):   {share(serial_load)}")
    print(f"  failed/sent, RevisionBased upgrade (parallel run): {share(parallel_load)}")
    print(f"  failed/sent, rollback after the promotion:         {share(rollback_load)}  ({rollback:.0f} s)")
    if in_place is not None:
        print(f"  failed/sent, InPlace upgrade:                      {share(in_place_load)}  ({in_place:.0f} s)")
    else:
        print("  InPlace: not measured (--skip-in-place)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
