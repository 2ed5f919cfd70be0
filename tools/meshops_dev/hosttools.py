"""Host tools built from the Go module proxy: kind, helm with the helm-diff plugin, kubectl.

``tools/dev build host-tools`` installs into ``$MESHOPS_CACHE/bin/``:

- ``kind`` (sigs.k8s.io/kind ``KIND_VERSION``),
- ``helm`` (helm.sh/helm/v3 ``HELM_VERSION``), with the helm-diff plugin
  (github.com/databus23/helm-diff/v3 ``HELM_DIFF_VERSION``, the newest version the module proxy
  serves) under ``$MESHOPS_CACHE/helm/plugins/diff`` — run helm with
  ``HELM_PLUGINS=$MESHOPS_CACHE/helm/plugins`` (``helm_env()``) so ``helm diff`` works,
- ``kubectl`` (the Kubernetes build of tools/go/k8s, in the same ``go build`` as the node's
  Kubernetes binaries: ``kubernetes.build()``).

Versions come from ``tools/go/hosttools/go.mod``; the checksum database does not know
helm-diff v3.13.2, hence ``GONOSUMDB`` for it (go.sum pins its hash).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import cache, errors, gobuild, kubernetes, progress

KIND_VERSION = gobuild.pinned("hosttools", "sigs.k8s.io/kind")
HELM_VERSION = gobuild.pinned("hosttools", "helm.sh/helm/v3")
HELM_DIFF_VERSION = gobuild.pinned("hosttools", "github.com/databus23/helm-diff/v3")

MODULE = "hosttools"
GO_ENV = {"GONOSUMDB": "github.com/databus23/helm-diff"}
KIND_PKG = "sigs.k8s.io/kind"
HELM_PKG = "helm.sh/helm/v3/cmd/helm"
HELM_DIFF_PKG = "github.com/databus23/helm-diff/v3"


def versions_dir() -> str:
    return f"hosttools/kind-{KIND_VERSION}_helm-{HELM_VERSION}_diff-{HELM_DIFF_VERSION}"


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


def without_install_hooks(manifest: str) -> str:
    """helm-diff's plugin.yaml without its install hooks (they download release binaries): the
    plugin is installed by hand."""
    kept = []
    skip = False
    for line in manifest.splitlines():
        if line.startswith(("hooks:", "platformHooks:")):
            skip = True
            continue
        if skip and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        skip = False
        kept.append(line)
    return "\n".join(kept) + "\n"


def _install_helm_diff(binary: Path) -> Path:
    plugin = cache.helm_plugins_dir() / "diff"
    src = gobuild.mod_dir(MODULE, "github.com/databus23/helm-diff/v3")
    (plugin / "bin").mkdir(parents=True, exist_ok=True)
    progress.write_text_atomic(plugin / "plugin.yaml", without_install_hooks((src / "plugin.yaml").read_text(encoding="utf-8")))
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
            [KIND_PKG],
            out,
            ldflags="-buildid= -s -w",
            env=GO_ENV,
            desc=f"build kind {KIND_VERSION}",
        )["kind"]
        helm = gobuild.build(
            MODULE,
            [HELM_PKG],
            out,
            ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            env=GO_ENV,
            desc=f"build helm {HELM_VERSION}",
        )["helm"]
        diff = gobuild.build(
            MODULE,
            [f"diff={HELM_DIFF_PKG}"],
            out,
            ldflags=f"-s -w -X github.com/databus23/helm-diff/v3/cmd.Version={HELM_DIFF_VERSION.lstrip('v')}",
            env=GO_ENV,
            desc=f"build helm-diff {HELM_DIFF_VERSION}",
        )["diff"]
        kubectl = kubernetes.build(kubernetes.host_binaries())["kubectl"]
        installed = {
            "kind": _install(kind, "kind"),
            "helm": _install(helm, "helm"),
            "kubectl": _install(kubectl, "kubectl"),
        }
        installed["helm-diff"] = _install_helm_diff(diff)
        check = progress.output([installed["helm"], "plugin", "list"], desc="listing helm plugins", env=helm_env())
        if "diff" not in check:
            raise errors.DevError(f"helm does not list the diff plugin in {cache.helm_plugins_dir()}:\n{check}")
        progress.note(f"installed kind, helm, kubectl in {cache.bin_dir()}; helm plugins in {cache.helm_plugins_dir()}")
        return installed


def tool(name: str) -> str:
    """Path of an installed host tool; a clear error when it is missing."""
    path = cache.bin_dir() / name
    if not os.access(path, os.X_OK):
        raise errors.DevError(f"{name} is not installed in {cache.bin_dir()}: run 'tools/dev build host-tools'")
    return str(path)
