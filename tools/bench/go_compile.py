#!/usr/bin/env python3
"""Compile volume of a cold air-gapped build: what the Go build cache cannot reuse.

    PY=~/.cache/meshops-istio/venv/bin/python   # the venv has the tools package (tools/dev test)
    $PY tools/bench/go_compile.py               # as gobuild builds today (no -trimpath)
    $PY tools/bench/go_compile.py --trimpath    # as it would with -trimpath
    $PY tools/bench/go_compile.py --go-dir /other/checkout/tools/go   # another set of wrappers

For each Go build of ``tools/dev up`` in its order (host tools, the Kubernetes binaries, the node
binaries, Istio 1.31, then the background Istio 1.30 build), ``go list -deps`` gives its packages;
a package is counted as compiled unless an earlier build compiled the same one: same import path,
same source (the module directory; with ``-trimpath``, the version the wrapper requires, which is
what the compiler records for a ``replace``), same dependencies, same build tags. The figure is
Go source bytes and packages, not seconds: wall-clock A/B runs of cold builds on this machine
kind varied by 40 % between two identical runs, this count does not vary. Nothing is compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from meshops_dev import cache, gobuild, hosttools, istio, kubernetes, nodeimage

# (name, wrapper module, build tags, main packages): the order in which tools/dev up builds them
BUILDS = (
    ("kind", hosttools.MODULE, (), (hosttools.KIND_PKG,)),
    ("helm", hosttools.MODULE, (), (hosttools.HELM_PKG,)),
    ("helm-diff", hosttools.MODULE, (), (hosttools.HELM_DIFF_PKG,)),
    ("kubernetes", "k8s", (), tuple(f"{kubernetes.CMD}/{n}" for n in kubernetes.ALL_BINARIES)),
    ("containerd", "node/runtime", nodeimage.CONTAINERD_TAGS, nodeimage.CONTAINERD_PACKAGES),
    ("crictl", "node/runtime", (), (nodeimage.CRICTL_PKG,)),
    ("etcd", "etcd", (), (kubernetes.ETCD_PKG,)),
    ("coredns", "node/coredns", (), (nodeimage.COREDNS_PKG,)),
    *(
        build
        for v in sorted(istio.VERSIONS.values(), key=lambda v: v.minor != istio.DEFAULT_MINOR)
        for build in (
            (f"pilot-discovery {v.minor}", v.wrapper, (), (istio.DISCOVERY_PKG,)),
            (f"pilot-agent {v.minor}", v.wrapper, istio.AGENT_TAGS, (istio.AGENT_PKG,)),
        )
    ),
)


def packages(go_dir: Path, wrapper: str, tags: tuple[str, ...], mains: tuple[str, ...]) -> list[dict]:
    cmd = ["go", "list", "-deps", "-json=ImportPath,Module,Deps,GoFiles,Dir,Standard"]
    if tags:
        cmd += ["-tags", ",".join(tags)]
    env = dict(os.environ, **gobuild.go_env(extra=hosttools.GO_ENV))
    proc = subprocess.run([*cmd, *mains], cwd=go_dir / wrapper, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        sys.exit(f"go list in {go_dir / wrapper} failed: {proc.stderr[-2000:]}")
    decoder, text, pos, out = json.JSONDecoder(), proc.stdout, 0, []
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        item, pos = decoder.raw_decode(text, pos)
        out.append(item)
    return out


def source(pkg: dict, trimpath: bool) -> str:
    """What the compiler's cache key sees of where a package comes from."""
    if pkg.get("Standard"):
        return "std"
    module = pkg.get("Module") or {}
    if trimpath:  # the path is rewritten to module@required-version, replaced or not
        return f"{module.get('Path')}@{module.get('Version', '')}"
    return pkg["Dir"]


def volume(go_dir: Path, trimpath: bool) -> list[tuple[str, int, int, int, int]]:
    seen: set[tuple] = set()
    rows = []
    for name, wrapper, tags, mains in BUILDS:
        items = packages(go_dir, wrapper, tags, mains)
        where = {p["ImportPath"]: source(p, trimpath) for p in items}
        new_n = new_b = all_b = 0
        for p in items:
            deps = tuple(sorted((d, where.get(d, "?")) for d in p.get("Deps", [])))
            key = (p["ImportPath"], where[p["ImportPath"]], deps, () if p.get("Standard") else tags)
            size = sum((Path(p["Dir"]) / f).stat().st_size for f in p.get("GoFiles", []))
            all_b += size
            if key not in seen:
                seen.add(key)
                new_n += 1
                new_b += size
        rows.append((name, len(items), all_b, new_n, new_b))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--go-dir", type=Path, default=cache.GO_DIR, help="the tools/go directory of the wrappers (default: this checkout's)")
    parser.add_argument("--trimpath", action="store_true", help="count as go build -trimpath would compile")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = volume(args.go_dir.resolve(), args.trimpath)
    if args.json:
        print(json.dumps([dict(zip(("build", "packages", "bytes", "compiled_packages", "compiled_bytes"), r, strict=True)) for r in rows]))
        return 0
    print(f"{'build':22} {'packages':>8} {'Go MB':>7} {'compiled':>8} {'MB':>7}")
    for name, count, all_b, new_n, new_b in rows:
        print(f"{name:22} {count:8} {all_b / 1e6:7.1f} {new_n:8} {new_b / 1e6:7.1f}")
    print(f"{'total compiled':22} {'':8} {'':7} {sum(r[3] for r in rows):8} {sum(r[4] for r in rows) / 1e6:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
