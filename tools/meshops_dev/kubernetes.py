"""Kubernetes binaries from ``tools/go/k8s`` (k8s.io/kubernetes, every staging module replaced)
and etcd from ``tools/go/etcd``, at the versions the node image and the tests use.

Every Kubernetes binary is built by ONE ``go build`` invocation (``build()``): the module graph
is loaded once and the packages they share (client-go, apimachinery, api, ...) are compiled once,
with both cores busy until the last link. ``tools/dev build host-tools`` asks for all of them in
the air-gapped mode (the node image needs them anyway), for kubectl alone with official images.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import cache, gobuild

K8S_VERSION = gobuild.pinned("k8s", "k8s.io/kubernetes")
ETCD_VERSION = gobuild.pinned("etcd", "go.etcd.io/etcd/server/v3")
ETCD_IMAGE_TAG = ETCD_VERSION.removeprefix("v") + "-0"  # kubeadm's tag of that etcd
# What `go version -m` would call the build date of the release (stamped into `version`).
K8S_BUILD_DATE = "2026-04-15T18:01:22Z"

NODE_BINARIES = ("kubeadm", "kubelet", "kubectl")
IMAGE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
ALL_BINARIES = NODE_BINARIES + IMAGE_BINARIES
CMD = "k8s.io/kubernetes/cmd"  # the main package of each binary is CMD/<name>


def version_ldflags(version: str = K8S_VERSION, build_date: str = K8S_BUILD_DATE) -> str:
    """``-X`` flags that stamp a Kubernetes version (component-base and client-go)."""
    m = re.match(r"^v(\d+)\.(\d+)\.", version)
    if not m:
        raise ValueError(f"not a Kubernetes version: {version}")
    major, minor = m.group(1), m.group(2)
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={build_date}",
        ]
    return "-s -w " + " ".join(flags)


def host_binaries() -> tuple[str, ...]:
    """What ``build host-tools`` builds: every binary when the node image is built here too."""
    return ("kubectl",) if cache.official_images() else ALL_BINARIES


def build(names: tuple[str, ...] | list[str] = ALL_BINARIES) -> dict[str, Path]:
    """Build (or reuse) ``names`` in one ``go build`` into ``$MESHOPS_CACHE/bin/k8s/<version>/``."""
    unknown = sorted(set(names) - set(ALL_BINARIES))
    if unknown:
        raise ValueError(f"not a Kubernetes binary of this build: {', '.join(unknown)}")
    return gobuild.build(
        "k8s",
        [f"{CMD}/{n}" for n in names],
        f"k8s/{K8S_VERSION}",
        ldflags=version_ldflags(),
        desc=f"build kubernetes {K8S_VERSION} ({', '.join(names)})",
    )


ETCD_PKG = "go.etcd.io/etcd/server/v3"


def build_etcd() -> dict[str, Path]:
    return gobuild.build("etcd", [f"etcd={ETCD_PKG}"], f"etcd/{ETCD_VERSION}", desc=f"build etcd {ETCD_VERSION}")


def apiserver_binaries(kubectl: bool = True) -> dict[str, Path]:
    """etcd, kube-apiserver (and kubectl): a real API server on loopback (the lab and the tests)."""
    return build(("kube-apiserver", "kubectl") if kubectl else ("kube-apiserver",)) | build_etcd()
