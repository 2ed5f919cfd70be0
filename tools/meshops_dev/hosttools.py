"""Host tools built from the Go module proxy: kind, helm with the helm-diff plugin, kubectl.

``tools/dev build host-tools`` installs into ``$MESHOPS_CACHE/bin/``:

- ``kind`` (sigs.k8s.io/kind ``KIND_VERSION``),
- ``helm`` (helm.sh/helm/v3 ``HELM_VERSION``), with the helm-diff plugin
  (github.com/databus23/helm-diff/v3 ``HELM_DIFF_VERSION``, the newest version the module proxy
  serves) under ``$MESHOPS_CACHE/helm/plugins/diff`` — run helm with
  ``HELM_PLUGINS=$MESHOPS_CACHE/helm/plugins`` (``helm_env()``) so ``helm diff`` works,
- ``kubectl`` (the Kubernetes build of tools/go/k8s, shared with the node image).

Versions come from ``tools/go/hosttools/go.mod``; the checksum database does not know
helm-diff v3.13.2, hence ``GONOSUMDB`` for it (go.sum pins its hash).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from . import cache, gobuild, progress

KIND_VERSION = "v0.33.0"
HELM_VERSION = "v3.21.4"
HELM_DIFF_VERSION = "v3.13.2"
K8S_VERSION = "v1.35.4"

MODULE = "hosttools"
GO_ENV = {"GONOSUMDB": "github.com/databus23/helm-diff"}


def versions_dir() -> str:
    return f"hosttools/kind-{KIND_VERSION}_helm-{HELM_VERSION}_diff-{HELM_DIFF_VERSION}"


def k8s_binaries(names: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """Build (or reuse) Kubernetes binaries of tools/go/k8s at ``K8S_VERSION``."""
    return gobuild.build(
        "k8s",
        [f"k8s.io/kubernetes/cmd/{n}" for n in names],
        f"k8s/{K8S_VERSION}",
        ldflags=gobuild.k8s_version_ldflags(K8S_VERSION),
        desc=f"build {', '.join(names)} {K8S_VERSION}",
    )


def helm_env() -> dict[str, str]:
    """Environment for running helm with the project's plugins (helm-diff)."""
    return {"HELM_PLUGINS": str(cache.helm_plugins_dir())}


def _install(src: Path, name: str) -> Path:
    dst = cache.bin_dir() / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{name}.tmp")
    shutil.copy2(src, tmp)
    tmp.chmod(0o755)
    tmp.replace(dst)
    return dst


def _install_helm_diff(binary: Path) -> Path:
    plugin = cache.helm_plugins_dir() / "diff"
    src = gobuild.mod_dir(MODULE, "github.com/databus23/helm-diff/v3")
    manifest = (src / "plugin.yaml").read_text(encoding="utf-8")
    # The plugin is installed by hand (no install hooks: they download release binaries).
    kept = []
    skip = False
    for line in manifest.splitlines():
        if line.startswith(("hooks:", "platformHooks:")):
            skip = True
            continue
        if skip and (line.startswith(" ") or line.startswith("\t") or not line.strip()):
            continue
        skip = False
        kept.append(line)
    (plugin / "bin").mkdir(parents=True, exist_ok=True)
    progress.write_text_atomic(plugin / "plugin.yaml", "\n".join(kept) + "\n")
    tmp = plugin / "bin" / ".diff.tmp"
    shutil.copy2(binary, tmp)
    tmp.chmod(0o755)
    tmp.replace(plugin / "bin" / "diff")
    return plugin


def build_all() -> dict[str, Path]:
    """Build and install kind, helm (+ helm-diff) and kubectl into ``$MESHOPS_CACHE/bin``."""
    with progress.step("build host-tools"):
        out = versions_dir()
        kind = gobuild.build(
            MODULE,
            ["sigs.k8s.io/kind"],
            out,
            ldflags="-buildid= -s -w",
            env=GO_ENV,
            desc=f"build kind {KIND_VERSION}",
        )["kind"]
        helm = gobuild.build(
            MODULE,
            ["helm.sh/helm/v3/cmd/helm"],
            out,
            ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            env=GO_ENV,
            desc=f"build helm {HELM_VERSION}",
        )["helm"]
        diff = gobuild.build(
            MODULE,
            ["diff=github.com/databus23/helm-diff/v3"],
            out,
            ldflags=f"-s -w -X github.com/databus23/helm-diff/v3/cmd.Version={HELM_DIFF_VERSION.lstrip('v')}",
            env=GO_ENV,
            desc=f"build helm-diff {HELM_DIFF_VERSION}",
        )["diff"]
        kubectl = k8s_binaries(["kubectl"])["kubectl"]
        installed = {
            "kind": _install(kind, "kind"),
            "helm": _install(helm, "helm"),
            "kubectl": _install(kubectl, "kubectl"),
        }
        installed["helm-diff"] = _install_helm_diff(diff)
        check = progress.output([installed["helm"], "plugin", "list"], desc="listing helm plugins", env=helm_env())
        if "diff" not in check:
            raise progress.DevError(f"helm does not list the diff plugin in {cache.helm_plugins_dir()}:\n{check}")
        progress.note(f"installed kind, helm, kubectl in {cache.bin_dir()}; helm plugins in {cache.helm_plugins_dir()}")
        return installed


def tool(name: str) -> str:
    """Path of an installed host tool; a clear error when it is missing."""
    path = cache.bin_dir() / name
    if not os.access(path, os.X_OK):
        raise progress.DevError(f"{name} is not installed in {cache.bin_dir()}: run 'tools/dev build host-tools'")
    return str(path)


def register_build(build_sub: argparse._SubParsersAction) -> None:
    p = build_sub.add_parser("host-tools", help="build kind, helm (+helm-diff) and kubectl into $MESHOPS_CACHE/bin")
    p.set_defaults(func=lambda a: (build_all(), 0)[1])
