#!/usr/bin/env python3
"""The same site.yml as AWX runs it and as ansible-playbook runs it (issue 9), on the kind cluster.

    ~/.cache/meshops-istio/venv/bin/python tools/bench/awx_job.py [--runs 3]

An idempotent rerun (changed=0) of site.yml with the reference inventory, measured as:
1. ``ansible-playbook site.yml`` with the kind inventory's kubeconfig (the README's job);
2. an ``ansible-runner transmit | worker | process`` job (meshops_dev.awx, as the AWX job test):
   a private data directory with the project, the collection built from it, the inventory without
   kubeconfig, the ServiceAccount token of docs/awx/rbac.yml injected as K8S_AUTH_*.
Median wall time of each and the ratio, printed; nothing asserted. Without an execution
environment image the worker runs on this machine's venv, so the ratio is the runner's own cost
(streaming the private data directory, events, artifacts), not a container's start.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from meshops_dev import awx, cache, jobs


def kubectl(*args: str) -> str:
    cmd = [str(cache.bin_dir() / "kubectl"), "--kubeconfig", str(cache.kubeconfig("meshops")), "--context", "kind-meshops", *args]
    return subprocess.run(cmd, env=jobs.job_env(), capture_output=True, text=True, check=True, timeout=300).stdout


def direct() -> float:
    start = time.monotonic()
    cmd = ["ansible-playbook", "-i", str(cache.kind_inventory()), "site.yml"]
    proc = subprocess.run(cmd, env=jobs.job_env(), cwd=cache.REPO_ROOT, capture_output=True, check=False, timeout=1800)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"ansible-playbook site.yml failed (exit {proc.returncode})")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    direct()  # converged before anything is measured
    credential = awx.credential_of(kubectl)
    try:
        with tempfile.TemporaryDirectory(prefix="meshops-awx-bench-") as tmp:
            runner = awx.AwxJobs(Path(tmp), jobs.job_env(), credential)
            plain = sorted(direct() for _run in range(args.runs))
            through_runner = []
            for _run in range(args.runs):
                start = time.monotonic()
                job = runner.run("site.yml", {})
                through_runner.append(time.monotonic() - start)
                changed = (job["stats"].get("changed") or {}).get("kind-meshops", 0)
                if job["status"] != "successful" or changed:
                    raise SystemExit(f"the runner job was {job['status']} with changed={changed}")
            through_runner.sort()
    finally:
        kubectl("delete", "-f", str(cache.REPO_ROOT / "docs" / "awx" / "rbac.yml"), "--ignore-not-found")
    middle = args.runs // 2
    print(f"== idempotent rerun of site.yml, median of {args.runs}")
    print(f"ansible-playbook site.yml (kubeconfig)            {plain[middle]:6.1f} s")
    print(f"ansible-runner transmit|worker|process (token)    {through_runner[middle]:6.1f} s   ratio {through_runner[middle] / plain[middle]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
