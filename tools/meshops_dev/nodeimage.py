"""The kind node image ``meshops.local/kind-node:v1.35.4``, assembled from source.

``kind build node-image`` cannot work without a registry (it fetches every image it does not
build with ``ctr content fetch`` inside its build container), so this module does what kind's
node-image builder (``pkg/build/nodeimage``) and its base image (``images/base``) do, in its
own steps:

1. Binaries from the Go module proxy (wrapper modules under ``tools/go``): Kubernetes
   (kubeadm, kubelet, kubectl and the control-plane components), etcd, containerd (+ ctr and
   the runc v2 shim), runc (cgo, libseccomp), crictl, CNI plugins, CoreDNS; pause is compiled
   with gcc from the kubernetes sources. kind's local-path-provisioner is not built: nothing of
   the scenario needs volumes (``storage_manifest``).
2. Images of those programs (``image_specs``), each saved as a tarball under
   ``$MESHOPS_CACHE/images/`` keyed by version. Images built from the exact upstream source
   version carry the upstream name (``registry.k8s.io/...``); the others are
   ``meshops.local/...`` and the manifests name them so.
3. A root file system from Debian bookworm (debootstrap with the packages kind's base image
   installs), kind's own base files copied out of the kind module at build time
   (``images/base/files``), the Dockerfile's post-install steps.
4. ``/kind/version``, ``/kind/manifests/default-{cni,storage}.yaml``; the images imported into
   containerd (namespace k8s.io) inside a build container; ``docker commit`` with kind's
   entrypoint. The result is saved as a tarball too, keyed by a hash of all inputs.

The CNI: kind's kindnetd (module ``sigs.k8s.io/kind/images/kindnetd``) is not served by the
module proxy here, so the node carries a static CNI configuration for the upstream ``ptp``,
``host-local`` and ``portmap`` plugins (what kindnetd writes for a node; pod traffic is routed
through the node, so kube-proxy sees it), and ``default-cni.yaml`` holds only a ConfigMap that
records it. That limits clusters to one node (the pod range is fixed to ``NODE_POD_CIDR``).
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from . import cache, engine, errors, gobuild, hosttools, images, kubernetes, progress
from .addresses import NODE_POD_CIDR

K8S_VERSION = kubernetes.K8S_VERSION
KIND_VERSION = hosttools.KIND_VERSION
NODE_IMAGE = f"meshops.local/kind-node:{K8S_VERSION}"

CONTAINERD_VERSION = gobuild.pinned("node/runtime", "github.com/containerd/containerd/v2")
RUNC_VERSION = gobuild.pinned("node/runtime", "github.com/opencontainers/runc")
CRICTL_VERSION = gobuild.pinned("node/runtime", "sigs.k8s.io/cri-tools")
CNI_PLUGINS_VERSION = gobuild.pinned("node/runtime", "github.com/containernetworking/plugins")
COREDNS_VERSION = gobuild.pinned("node/coredns", "github.com/coredns/coredns")
PAUSE_VERSION = "3.10.1"
_CONTAINERD_CMD = "github.com/containerd/containerd/v2/cmd"
CONTAINERD_PACKAGES = (f"{_CONTAINERD_CMD}/containerd", f"{_CONTAINERD_CMD}/ctr", f"{_CONTAINERD_CMD}/containerd-shim-runc-v2")
CONTAINERD_TAGS = ("no_btrfs", "no_devmapper", "no_zfs")
CRICTL_PKG = "sigs.k8s.io/cri-tools/cmd/crictl"
COREDNS_PKG = "meshops.local/tools/node/coredns"  # tools/go/node/coredns/main.go
# Debian packages the builds below need: runc is cgo with libseccomp, pause is C.
BUILD_PACKAGES = ("gcc", "libc6-dev", "libseccomp-dev", "pkg-config", "binutils")

# Packages of kind's base image (images/base/Dockerfile) that a single-node cluster uses; the
# storage e2e packages (nfs-common, open-iscsi) and rootless fuse-overlayfs are left out.
NODE_PACKAGES = (
    "systemd",
    "dbus",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "e2fsprogs",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
)


def _ldflags_x(pairs: dict[str, str]) -> str:
    return "-s -w " + " ".join(f"-X {k}={v}" for k, v in pairs.items())


def build_runtime() -> dict[str, Path]:
    """containerd, ctr, shim, runc, crictl and CNI plugins (tools/go/node/runtime)."""
    module = "node/runtime"
    out = f"node/runtime/containerd-{CONTAINERD_VERSION}_runc-{RUNC_VERSION}_crictl-{CRICTL_VERSION}"
    pkg = "github.com/containerd/containerd/v2"
    bins = gobuild.build(
        module,
        list(CONTAINERD_PACKAGES),
        out,
        tags=CONTAINERD_TAGS,
        ldflags=_ldflags_x(
            {
                f"{pkg}/version.Version": CONTAINERD_VERSION,
                f"{pkg}/version.Package": "github.com/containerd/containerd/v2",
            }
        ),
        desc=f"build containerd {CONTAINERD_VERSION}",
    )
    engine.ensure_apt_packages(BUILD_PACKAGES, "building runc with seccomp")
    bins |= gobuild.build(
        module,
        ["github.com/opencontainers/runc"],
        out,
        tags=("seccomp", "urfave_cli_no_docs"),
        cgo=True,
        ldflags="-s -w",
        desc=f"build runc {RUNC_VERSION} (cgo, libseccomp)",
    )
    bins |= gobuild.build(
        module,
        [CRICTL_PKG],
        out,
        ldflags=_ldflags_x({"sigs.k8s.io/cri-tools/pkg/version.Version": CRICTL_VERSION}),
        desc=f"build crictl {CRICTL_VERSION}",
    )
    cni = "github.com/containernetworking/plugins"
    bins |= gobuild.build(
        module,
        [
            f"{cni}/plugins/ipam/host-local",
            f"{cni}/plugins/main/loopback",
            f"{cni}/plugins/main/ptp",
            f"{cni}/plugins/main/bridge",
            f"{cni}/plugins/meta/portmap",
        ],
        f"{out}/cni-{CNI_PLUGINS_VERSION}",
        ldflags=_ldflags_x({f"{cni}/pkg/utils/buildversion.BuildVersion": CNI_PLUGINS_VERSION}),
        desc=f"build CNI plugins {CNI_PLUGINS_VERSION}",
    )
    return bins


def build_coredns() -> dict[str, Path]:
    """CoreDNS with the plugins a kind cluster's Corefile uses (tools/go/node/coredns/main.go):
    the cloud SDKs, the tracer and the database clients of the other plugins are not compiled."""
    return gobuild.build(
        "node/coredns",
        [f"coredns={COREDNS_PKG}"],
        f"coredns/{COREDNS_VERSION}",
        ldflags=_ldflags_x({"github.com/coredns/coredns/coremain.GitCommit": "1db4568d"}),
        desc=f"build coredns {COREDNS_VERSION}",
    )


def build_pause() -> Path:
    """pause from build/pause/linux/pause.c of k8s.io/kubernetes, static, as upstream builds it."""
    out = cache.bin_dir() / "pause" / PAUSE_VERSION / "pause"
    with progress.step(f"build pause {PAUSE_VERSION}") as st:
        if out.is_file():
            st.cached = True
            return out
        src = gobuild.mod_dir("k8s", "k8s.io/kubernetes") / "build" / "pause" / "linux" / "pause.c"
        if not src.is_file():
            raise errors.DevError(f"pause.c not found at {src}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(".pause.tmp")
        engine.ensure_apt_packages(BUILD_PACKAGES, "compiling pause")
        progress.run(
            ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_VERSION}-{K8S_VERSION}", "-o", tmp, src],
            desc="compiling pause.c",
        )
        progress.run(["strip", tmp], desc="stripping pause")
        tmp.replace(out)
        return out


def build_binaries() -> dict[str, Path]:
    with progress.step("build node binaries"):
        bins: dict[str, Path] = {}
        bins |= kubernetes.build()
        bins |= build_runtime()
        bins |= kubernetes.build_etcd()
        bins |= build_coredns()
        bins["pause"] = build_pause()
        return bins


# Bump when the way images or the node are assembled changes (part of every cache key).
RECIPE = "3"

MANIFEST_MARKER = "# meshops.istio: written by tools/dev build node-image"


def _resolve_stage(root: Path, dest: Path, path: str, depth: int = 0) -> None:
    """Copy ``path`` of ``root`` into ``dest``, recreating every symlink on the way."""
    if depth > 40:
        raise errors.DevError(f"too many symlinks staging {path} from {root}")
    parts = PurePosixPath(posixpath.normpath(path)).parts[1:]
    cur = PurePosixPath("/")
    for i, part in enumerate(parts):
        cur = cur / part
        src = root / str(cur)[1:]
        if src.is_symlink():
            target = os.readlink(src)
            link = dest / str(cur)[1:]
            if not link.is_symlink() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
            base = PurePosixPath(target) if target.startswith("/") else cur.parent / target
            rest = PurePosixPath(base, *parts[i + 1 :])
            _resolve_stage(root, dest, posixpath.normpath(str(rest)), depth + 1)
            return
    src = root / path.lstrip("/")
    out = dest / path.lstrip("/")
    if src.is_dir():
        shutil.copytree(src, out, symlinks=True, dirs_exist_ok=True)
    elif src.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
    else:
        raise errors.DevError(f"{path} does not exist in {root}")


def _ldd(root: Path, path: str) -> list[str]:
    res = progress.quiet(["chroot", str(root), "/usr/bin/ldd", path])
    libs = []
    for line in res.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def stage_from_rootfs(root: Path, dest: Path, paths: list[str]) -> None:
    """Copy programs (with their shared libraries) and files of the Debian rootfs into ``dest``."""
    todo = list(paths)
    done: set[str] = set()
    while todo:
        p = todo.pop()
        if p in done:
            continue
        done.add(p)
        _resolve_stage(root, dest, p)
        real = root / p.lstrip("/")
        if real.is_file() and real.resolve().is_file():
            with real.resolve().open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    todo.extend(lib for lib in _ldd(root, p) if lib not in done)
        elif real.is_dir():
            for so in real.resolve().glob("*.so"):
                todo.extend(lib for lib in _ldd(root, str(PurePosixPath(p) / so.name)) if lib not in done)


# ---------------------------------------------------------------------------------------------
# root file system and component images


def build_rootfs() -> Path:
    """debootstrap bookworm with the packages of kind's base image (cached by package list)."""
    return images.debootstrap("node", NODE_PACKAGES)


PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"

IPTABLES_WRAPPER = """#!/bin/sh
# meshops.istio: pick the iptables backend the node uses (the one holding more rules), point
# iptables/ip6tables(-save,-restore) at it, then run the command. Written by tools/dev.
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-' )
nft=$( (iptables-nft-save; ip6tables-nft-save) 2>/dev/null | grep -c '^-' )
mode=nft
if [ "${legacy:-0}" -gt "${nft:-0}" ]; then mode=legacy; fi
for t in iptables ip6tables; do
  for s in "" -save -restore; do
    ln -sf "xtables-${mode}-multi" "/usr/sbin/${t}${s}"
  done
done
exec "$0" "$@"
"""


def _base_files(root: Path, rootfs: Path) -> None:
    images.base_files(root, rootfs / "etc/ssl/certs/ca-certificates.crt", PASSWD, GROUP)


class ImageSpec:
    """One image: its reference, its version key and how its root file system is filled."""

    def __init__(self, ref: str, fill, changes: list[str], version: str, inputs: tuple[Path, ...], base: str) -> None:
        self.ref = ref
        self.fill = fill
        self.changes = changes
        self.version = version
        self.inputs = inputs  # the files it is made of (binaries)
        self.base = base  # the root file system its other files come from

    @functools.cached_property
    def tarball(self) -> Path:
        """``<image>_<version>-<key>.tar``: the key hashes the recipe, the base and the binaries."""
        name, _, _tag = self.ref.rpartition(":")
        key = images.image_key(RECIPE, self.base, self.changes, images.file_key(*self.inputs))
        return cache.image_tarball(name, f"{self.version}-{key}")


def image_specs(bins: dict[str, Path], rootfs: Path) -> list[ImageSpec]:
    k8s = "registry.k8s.io"
    env = f"ENV {images.PATH_ENV}"
    specs = []
    for comp in kubernetes.IMAGE_BINARIES:
        if comp == "kube-proxy":
            continue

        def fill(root: Path, comp: str = comp) -> None:
            _base_files(root, rootfs)
            images.put(root, bins[comp], f"/usr/local/bin/{comp}")

        specs.append(ImageSpec(f"{k8s}/{comp}:{K8S_VERSION}", fill, [env, f'ENTRYPOINT ["/usr/local/bin/{comp}"]'], K8S_VERSION, (bins[comp],), rootfs.name))

    def fill_proxy(root: Path) -> None:
        stage_from_rootfs(
            rootfs,
            root,
            [
                "/bin/sh",
                "/usr/bin/grep",
                "/usr/bin/ln",
                "/usr/sbin/xtables-nft-multi",
                "/usr/sbin/xtables-legacy-multi",
                "/usr/sbin/iptables-nft",
                "/usr/sbin/iptables-nft-save",
                "/usr/sbin/iptables-nft-restore",
                "/usr/sbin/ip6tables-nft",
                "/usr/sbin/ip6tables-nft-save",
                "/usr/sbin/ip6tables-nft-restore",
                "/usr/sbin/iptables-legacy",
                "/usr/sbin/iptables-legacy-save",
                "/usr/sbin/iptables-legacy-restore",
                "/usr/sbin/ip6tables-legacy",
                "/usr/sbin/ip6tables-legacy-save",
                "/usr/sbin/ip6tables-legacy-restore",
                "/usr/lib/x86_64-linux-gnu/xtables",
                "/usr/sbin/conntrack",
                "/etc/protocols",
                "/etc/services",
                "/etc/ethertypes",
                "/etc/ld.so.cache",
            ],
        )
        _base_files(root, rootfs)
        wrapper = root / "usr" / "sbin" / "iptables-wrapper"
        wrapper.write_text(IPTABLES_WRAPPER)
        wrapper.chmod(0o755)
        for t in ("iptables", "ip6tables"):
            for s in ("", "-save", "-restore"):
                link = root / "usr" / "sbin" / f"{t}{s}"
                if link.exists() or link.is_symlink():
                    link.unlink()
                os.symlink("iptables-wrapper", link)
        images.put(root, bins["kube-proxy"], "/usr/local/bin/kube-proxy")

    specs.append(
        ImageSpec(
            f"{k8s}/kube-proxy:{K8S_VERSION}",
            fill_proxy,
            [env, 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'],
            f"{K8S_VERSION}-{images.DEBIAN_SUITE}",
            (bins["kube-proxy"],),
            rootfs.name,
        )
    )

    def fill_etcd(root: Path) -> None:
        _base_files(root, rootfs)
        images.put(root, bins["etcd"], "/usr/local/bin/etcd")
        (root / "var" / "lib" / "etcd").mkdir(parents=True, exist_ok=True)

    specs.append(
        ImageSpec(
            f"{k8s}/etcd:{kubernetes.ETCD_IMAGE_TAG}",
            fill_etcd,
            [env, 'ENTRYPOINT ["/usr/local/bin/etcd"]'],
            kubernetes.ETCD_VERSION,
            (bins["etcd"],),
            rootfs.name,
        )
    )

    def fill_coredns(root: Path) -> None:
        _base_files(root, rootfs)
        images.put(root, bins["coredns"], "/coredns")

    specs.append(
        ImageSpec(f"{k8s}/coredns/coredns:{COREDNS_VERSION}", fill_coredns, [env, 'ENTRYPOINT ["/coredns"]'], COREDNS_VERSION, (bins["coredns"],), rootfs.name)
    )

    def fill_pause(root: Path) -> None:
        images.put(root, bins["pause"], "/pause")

    specs.append(ImageSpec(f"{k8s}/pause:{PAUSE_VERSION}", fill_pause, ['ENTRYPOINT ["/pause"]', "USER 65535:65535"], PAUSE_VERSION, (bins["pause"],), ""))

    return specs


def build_image(spec: ImageSpec) -> Path:
    with progress.step(f"image {spec.ref}") as st:
        if spec.tarball.is_file():
            st.cached = True
            return spec.tarball
        with tempfile.TemporaryDirectory(prefix="meshops-img-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            spec.fill(root)
            images.import_dir(spec.ref, root, [*spec.changes, f"LABEL meshops.recipe={RECIPE}"])
        images.save_image(spec.ref, spec.tarball)
        return spec.tarball


# ---------------------------------------------------------------------------------------------
# node image


def kind_module_dir() -> Path:
    return gobuild.mod_dir("hosttools", "sigs.k8s.io/kind")


def storage_manifest() -> str:
    """default-storage.yaml: nothing of the scenario needs volumes, so the node has no provisioner.

    kind's create action ``installstorage`` applies this file with kubectl (and falls back to a
    legacy host-path StorageClass when it is missing, so it must exist and hold an object).
    """
    return _record_manifest(
        "meshops-storage",
        "kind's local-path-provisioner is not built: no volume provisioner and no default StorageClass.\n"
        "This ConfigMap keeps kind's storage step (kubectl apply of this file) satisfied.",
        {"provisioner": "none"},
    )


def cni_conflist() -> str:
    conf = {
        "cniVersion": "1.0.0",
        "name": "meshops-ptp",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": True,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "dataDir": "/run/cni-ipam-state",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": NODE_POD_CIDR}]],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(conf, indent=2) + "\n"


def _record_manifest(name: str, comment: str, data: dict[str, str]) -> str:
    """A kube-system ConfigMap that records what the node image carries instead of kind's addon."""
    lines = [MANIFEST_MARKER, *(f"# {line}" for line in comment.splitlines())]
    lines += ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}", "  namespace: kube-system", "data:"]
    for key, value in data.items():
        if "\n" in value:
            lines.append(f"  {key}: |")
            lines += [f"    {line}" for line in value.splitlines()]
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"


def cni_manifest() -> str:
    """default-cni.yaml: kindnetd is not buildable here; the node's static ptp config is the CNI."""
    return _record_manifest(
        "meshops-cni",
        "kind's kindnetd is not served by the Go module proxy; the node image carries the static\n"
        "CNI configuration below in /etc/cni/net.d (upstream ptp + host-local + portmap plugins).\n"
        "This ConfigMap records it; it configures nothing by itself. One node per cluster.",
        {"podCIDR": NODE_POD_CIDR, "10-meshops-ptp.conflist": cni_conflist()},
    )


def _copy_tree_mode(src: Path, dst: Path, file_mode: int, dir_mode: int = 0o755) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    dst.chmod(dir_mode)
    for item in sorted(src.iterdir()):
        out = dst / item.name
        if item.is_dir():
            _copy_tree_mode(item, out, file_mode, dir_mode)
        else:
            shutil.copyfile(item, out)
            out.chmod(file_mode)


def node_overlay(bins: dict[str, Path], overlay: Path) -> None:
    """Files added to the rootfs: kind's base files (from the kind module), binaries, configs."""
    files = kind_module_dir() / "images" / "base" / "files"
    if not files.is_dir():
        raise errors.DevError(f"kind's base image files not found at {files}")
    # Modes as kind's Dockerfile sets them: scripts 0755, everything else 0644.
    _copy_tree_mode(files / "usr" / "local" / "bin", overlay / "usr" / "local" / "bin", 0o755)
    _copy_tree_mode(files / "kind", overlay / "kind", 0o644)
    _copy_tree_mode(files / "kind" / "bin", overlay / "kind" / "bin", 0o755)
    _copy_tree_mode(files / "LICENSES", overlay / "LICENSES", 0o644)
    _copy_tree_mode(files / "etc", overlay / "etc", 0o644)
    # containerd: the sandbox image is the pause built here (kubeadm's 3.10.1, not kind's 3.10).
    config = overlay / "etc" / "containerd" / "config.toml"
    text = config.read_text()
    text, n = re.subn(r'sandbox_image = "[^"]+"', f'sandbox_image = "registry.k8s.io/pause:{PAUSE_VERSION}"', text)
    if n != 1:
        raise errors.DevError("kind's containerd config.toml has no sandbox_image line to set")
    config.write_text(text)
    # Where the node lacks CAP_SYS_RESOURCE (this host's bounding set drops it), runc cannot lower
    # a container's oom_score_adj below containerd's ("failed to update /proc/self/oom_score_adj:
    # Permission denied" for every pod sandbox): let containerd clamp it, as kind does for
    # rootless nodes. Decided when containerd starts, so the image stays right elsewhere.
    dropin = overlay / "etc" / "systemd" / "system" / "containerd.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "10-meshops-oom-score.conf").write_text(CONTAINERD_OOM_DROPIN)
    script = overlay / "usr" / "local" / "bin" / "meshops-containerd-oom"
    script.write_text(CONTAINERD_OOM_SCRIPT)
    script.chmod(0o755)
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "crictl"):
        images.put(overlay, bins[name], f"/usr/local/bin/{name}")
    images.put(overlay, bins["runc"], "/usr/local/sbin/runc")
    for name in ("host-local", "loopback", "ptp", "portmap", "bridge"):
        images.put(overlay, bins[name], f"/opt/cni/bin/{name}")
    for name in kubernetes.NODE_BINARIES:
        images.put(overlay, bins[name], f"/usr/bin/{name}")
    net = overlay / "etc" / "cni" / "net.d"
    net.mkdir(parents=True, exist_ok=True)
    (net / "10-meshops-ptp.conflist").write_text(cni_conflist())
    (overlay / "kind" / "version").write_text(K8S_VERSION)
    (overlay / "kind" / "version").chmod(0o644)
    manifests = overlay / "kind" / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "default-cni.yaml").write_text(cni_manifest())
    (manifests / "default-storage.yaml").write_text(storage_manifest())
    # cri-base.json as kind's Dockerfile makes it: `ctr oci spec` + the product-files hook,
    # without rlimits.
    spec = json.loads(progress.output([bins["ctr"], "oci", "spec"], desc="generating the default OCI spec (ctr oci spec)"))
    hooks = spec.setdefault("hooks", {})
    hooks.setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    (overlay / "etc" / "containerd" / "cri-base.json").write_text(json.dumps(spec, indent=4) + "\n")
    (overlay / "etc" / "kubernetes" / "manifests").mkdir(parents=True, exist_ok=True)


CONTAINERD_OOM_SCRIPT = """#!/bin/sh
# meshops.istio (tools/dev): containerd must clamp oom_score_adj when this node's capability
# bounding set lacks CAP_SYS_RESOURCE (bit 24); runc cannot lower it otherwise.
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
if [ -n "$bnd" ] && [ $(( 0x$bnd >> 24 & 1 )) -eq 0 ]; then
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
fi
"""

CONTAINERD_OOM_DROPIN = """# meshops.istio (tools/dev)
[Service]
ExecStartPre=/usr/local/bin/meshops-containerd-oom
"""


POST_INSTALL = """set -eu
chmod 755 /kind /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/*
rm -f /etc/systemd/system/*.wants/*
rm -f /lib/systemd/system/local-fs.target.wants/*
rm -f /lib/systemd/system/sockets.target.wants/*udev*
rm -f /lib/systemd/system/sockets.target.wants/*initctl*
rm -f /lib/systemd/system/basic.target.wants/*
echo ReadKMsg=no >> /etc/systemd/journald.conf
[ -e /sbin/init ] || ln -s /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service
systemctl enable containerd.service
systemctl enable undo-mount-hacks.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests
containerd --version
runc --version
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*
"""


def node_key(bins: dict[str, Path], specs: list[ImageSpec]) -> str:
    parts = [RECIPE, K8S_VERSION, KIND_VERSION, CONTAINERD_VERSION, RUNC_VERSION, CRICTL_VERSION]
    parts += [CNI_PLUGINS_VERSION, build_rootfs().name] + [s.tarball.name for s in specs]
    # The binaries put into the node itself (kubelet, kubeadm, containerd, runc, CNI plugins, ...).
    parts.append(images.file_key(*(bins[name] for name in sorted(bins))))
    # The assembly code itself (files, manifests, post-install steps) is part of the key.
    parts.append(images.file_key(Path(__file__), Path(images.__file__)))
    return images.short_hash(*parts)


def _wait_containerd(cid: str) -> None:
    env = engine.docker_env()
    deadline = time.monotonic() + 60
    for _ in range(120):
        res = progress.quiet(["docker", "exec", cid, "ctr", "version"], env=env, timeout=15)
        if res.returncode == 0:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    log = progress.quiet(["docker", "exec", cid, "tail", "-n", "30", "/var/log/containerd-build.log"], env=env)
    raise errors.DevError(f"containerd did not start in the node build container within 60s:\n{log.stdout}")


def required_images(cid: str) -> list[str]:
    out = images.docker(
        "exec",
        cid,
        "kubeadm",
        "config",
        "images",
        "list",
        "--kubernetes-version",
        K8S_VERSION,
        desc="listing kubeadm's images",
        capture=True,
    )
    return [line.strip() for line in out.splitlines() if line.strip().startswith("registry.k8s.io/")]


def build() -> str:
    """Build (or reuse) the node image; returns its reference."""
    with progress.step(f"build node-image {NODE_IMAGE}") as st:
        bins = build_binaries()
        rootfs = build_rootfs()
        specs = image_specs(bins, rootfs)
        with progress.step("component images"):
            tarballs = [build_image(spec) for spec in specs]
        key = node_key(bins, specs)
        tarball = cache.image_tarball("meshops.local/kind-node", f"{K8S_VERSION}-{key}")
        if images.image_present(NODE_IMAGE) and images.image_label(NODE_IMAGE, "meshops.node-key") == key:
            progress.note(f"{NODE_IMAGE} is current (key {key})")
            if not tarball.is_file():
                _save_node(tarball)
            st.cached = True
            return NODE_IMAGE
        if tarball.is_file():
            images.load_image(tarball)
            if images.image_label(NODE_IMAGE, "meshops.node-key") == key:
                st.cached = True
                return NODE_IMAGE
        _assemble(bins, rootfs, tarballs, key)
        _save_node(tarball)
        return NODE_IMAGE


def _save_node(tarball: Path) -> None:
    """Save the node image as the only node tarball of the cache (older keys are removed)."""
    with progress.step(f"save {NODE_IMAGE}"):
        for old in cache.images_dir().glob("meshops.local_kind-node_*.tar"):
            if old != tarball:
                old.unlink()
        images.save_image(NODE_IMAGE, tarball)


def _assemble(bins: dict[str, Path], rootfs: Path, tarballs: list[Path], key: str) -> None:
    """kind's buildImage, by hand: build container, files, post-install, image import, commit."""
    raw_ref = f"meshops.local/kind-node-rootfs:{K8S_VERSION}-{key}"
    base_ref = f"meshops.local/kind-node-base:{K8S_VERSION}-{key}"
    name = f"meshops-node-build-{os.getpid()}"
    images.docker_quiet("rm", "-f", "-v", name)
    try:
        with progress.step("node base image (rootfs import)"):
            images.import_dir(raw_ref, rootfs, [f"ENV {images.PATH_ENV}"])
            # STOPSIGNAL cannot be set by import/commit; a metadata-only build sets it.
            dockerfile = f'FROM {raw_ref}\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n'
            images.docker("build", "-q", "-t", base_ref, "-", desc="setting the node image metadata", input=dockerfile)
        with tempfile.TemporaryDirectory(prefix="meshops-overlay-") as tmp:
            overlay = Path(tmp)
            with progress.step("node files (kind base files, binaries, manifests)"):
                node_overlay(bins, overlay)
            with progress.step("node build container"):
                mounts: list[str] = []
                for tb in tarballs:
                    mounts += ["-v", f"{tb}:/kind-images/{tb.name}:ro"]
                images.docker(
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--entrypoint",
                    "sleep",
                    "--security-opt",
                    "seccomp=unconfined",
                    "--network",
                    "none",
                    *mounts,
                    base_ref,
                    "infinity",
                    desc="starting the node build container",
                )
                images.docker("cp", f"{overlay}/.", f"{name}:/", desc="copying the node files into the build container")
        with progress.step("node post-install steps"):
            images.docker("exec", name, "sh", "-c", POST_INSTALL, desc="running the post-install steps")
        with progress.step("import images into the node's containerd (k8s.io)"):
            images.docker(
                "exec",
                "-d",
                name,
                "sh",
                "-c",
                "containerd > /var/log/containerd-build.log 2>&1",
                desc="starting containerd in the build container",
            )
            _wait_containerd(name)
            for tb in tarballs:
                images.docker(
                    "exec",
                    name,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    "--label=io.cri-containerd.pinned=pinned",
                    "--all-platforms",
                    "--no-unpack",
                    "--digests",
                    f"/kind-images/{tb.name}",
                    desc=f"importing {tb.name}",
                )
            listed = images.docker("exec", name, "ctr", "--namespace=k8s.io", "images", "list", "-q", desc="listing images", capture=True).split()
            missing = [img for img in required_images(name) if img not in listed]
            if missing:
                raise errors.DevError("images kubeadm/kind need are missing from the node: " + ", ".join(missing) + "\nimported: " + ", ".join(sorted(listed)))
            progress.note(f"{len(listed)} image references in the node's containerd")
            images.docker("exec", name, "sh", "-c", "kill $(pidof containerd)", desc="stopping containerd")
            for _ in range(60):
                if progress.quiet(["docker", "exec", name, "pidof", "containerd"], env=engine.docker_env()).returncode:
                    break
                time.sleep(0.5)
            else:
                raise errors.DevError("containerd in the node build container did not stop within 30s")
            images.docker("exec", name, "rm", "-f", "/var/log/containerd-build.log", desc="cleaning up")
        with progress.step(f"commit {NODE_IMAGE}"):
            images.docker(
                "commit",
                "--change",
                'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]',
                "--change",
                f"LABEL meshops.node-key={key}",
                name,
                NODE_IMAGE,
                desc=f"committing {NODE_IMAGE}",
            )
    finally:
        images.docker_quiet("rm", "-f", "-v", name)
        images.docker_quiet("rmi", base_ref)
        images.docker_quiet("rmi", raw_ref)
