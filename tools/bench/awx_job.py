#!/usr/bin/env python3
"""The same site.yml as AWX runs it and as ansible-playbook runs it (issue 9), on the kind cluster.

    ~/.cache/meshops-istio/venv/bin/python tools/bench/awx_job.py [--runs 3]

An idempotent rerun (changed=0) of site.yml with the reference inventory, measured as:
1. ``ansible-playbook site.yml`` with the kind inventory's kubeconfig (the README's job);
2. an ``ansible-runner transmit | worker | process`` job (meshops_dev.awx, as the AWX job test):
   a private data directory with the project, the collection built from it, the inventory without
   kubeconfig, the ServiceAccount token of docs/awx/rbac.yml injected as K8S_AUTH_*, the worker
   on this machine's venv (the runner's own cost: streaming the directory, events, artifacts);
3. the same job with process isolation in the execution environment image (the AWX job tests'
   way: ``docker run`` of the image on the kind network).
Median wall time of each and the ratios, printed; nothing asserted. ``--rebuild-ee`` first
removes the EE image (and its saved tarball and the layers only it used) and times
``tools/dev build ee`` from there; the image's size is printed either way.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from meshops_dev import awx, cache, ee, images, jobs


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


def build_ee(rebuild: bool) -> tuple[str, float | None, int]:
    """(image, build seconds or None when it was there, size in bytes)."""
    ref = ee.image_ref()
    seconds = None
    if rebuild:
        name, _, tag = ref.rpartition(":")
        for tarball in cache.images_dir().glob(cache.image_tarball(name, f"{tag}-*").name):
            tarball.unlink()
        images.docker_quiet("rmi", ref)
        images.docker_quiet("image", "prune", "-f")
        start = time.monotonic()
        ee.build()
        seconds = time.monotonic() - start
    else:
        ee.build()
    size = images.docker("image", "inspect", "--format", "{{.Size}}", ref, desc="image size", capture=True)
    return ref, seconds, int(size)


def timed_jobs(runner: awx.AwxJobs, runs: int) -> list[float]:
    times = []
    for _run in range(runs):
        start = time.monotonic()
        job = runner.run("site.yml", {})
        times.append(time.monotonic() - start)
        changed = (job["stats"].get("changed") or {}).get("kind-meshops", 0)
        if job["status"] != "successful" or changed:
            raise SystemExit(f"the runner job was {job['status']} with changed={changed}: {job['stdout'][-2000:]}")
    return sorted(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild-ee", action="store_true", help="remove the EE image first and time its build")
    args = parser.parse_args()
    image, build_seconds, size = build_ee(args.rebuild_ee)
    direct()  # converged before anything is measured
    credential = awx.credential_of(kubectl)
    environment = awx.ExecutionEnvironment(image=image, exposed=(str(cache.cache_dir() / "istio"),))
    try:
        with tempfile.TemporaryDirectory(prefix="meshops-awx-bench-") as tmp:
            plain = sorted(direct() for _run in range(args.runs))
            through_runner = timed_jobs(awx.AwxJobs(Path(tmp) / "venv", jobs.job_env(), credential), args.runs)
            in_ee = timed_jobs(awx.AwxJobs(Path(tmp) / "ee", jobs.job_env(), credential, environment), args.runs)
    finally:
        kubectl("delete", "-f", str(cache.REPO_ROOT / "docs" / "awx" / "rbac.yml"), "--ignore-not-found")
    middle = args.runs // 2
    built = f"built in {build_seconds:.0f} s" if build_seconds is not None else "already built (--rebuild-ee times the build)"
    print(f"== execution environment {image}: {size / 1e6:.0f} MB, {built}")
    print(f"== idempotent rerun of site.yml, median of {args.runs}")
    print(f"ansible-playbook site.yml (kubeconfig)                 {plain[middle]:6.1f} s")
    print(f"ansible-runner transmit|worker|process (token)         {through_runner[middle]:6.1f} s   ratio {through_runner[middle] / plain[middle]:.2f}")
    print(f"the same job in the execution environment (docker)     {in_ee[middle]:6.1f} s   ratio {in_ee[middle] / plain[middle]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
