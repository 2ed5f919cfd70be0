"""Application images of the air-gapped mode (``tools/dev build apps``) and the external host.

- ``meshops.local/go-httpbin:v2.15.0``: go-httpbin, the httpbin that Istio's samples/httpbin runs
  (port 8080 by default; the sample's Service maps 8000 -> 8080), a static binary built from
  ``tools/go/apps``, ``FROM scratch`` (tools/images/go-httpbin/Dockerfile). ``build_go_httpbin()``
  is also the binary the tests and benchmarks run on loopback: one build for all.
- ``meshops.local/curl:7.88.1``: mesh client with curl and a shell for egress checks, on the
  Debian workload base (tools/images/curl/Dockerfile); the tag is the upstream version of
  bookworm's curl package.
- The external host of the egress scenario: go-httpbin in a container on the kind network.

Tarballs are cached under ``$MESHOPS_CACHE/images/``; nothing is rebuilt while they are there.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from . import cache, engine, errors, gobuild, images, progress
from .addresses import KIND_NETWORK

GO_HTTPBIN_VERSION = gobuild.pinned("apps", "github.com/mccutchen/go-httpbin/v2")
GO_HTTPBIN_PKG = "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin"
GO_HTTPBIN_IMAGE = f"meshops.local/go-httpbin:{GO_HTTPBIN_VERSION}"
# Upstream version of Debian bookworm's curl package (7.88.1-10+deb12uN); checked at build time.
CURL_VERSION = "7.88.1"
CURL_IMAGE = f"meshops.local/curl:{CURL_VERSION}"
# MESHOPS_IMAGES=official: the image of Istio's samples/httpbin, which docker pulls
OFFICIAL_GO_HTTPBIN_IMAGE = f"docker.io/mccutchen/go-httpbin:{GO_HTTPBIN_VERSION}"


def build_go_httpbin() -> Path:
    """go-httpbin of the pinned module (tools/go/apps), cached by fingerprint."""
    out = gobuild.build(
        "apps",
        [f"go-httpbin={GO_HTTPBIN_PKG}"],
        f"apps/go-httpbin-{GO_HTTPBIN_VERSION}",
        desc=f"build go-httpbin {GO_HTTPBIN_VERSION}",
    )
    return out["go-httpbin"]


def build_go_httpbin_image() -> Path:
    binary = build_go_httpbin()
    dockerfile = images.DOCKERFILES / "go-httpbin" / "Dockerfile"
    ca = images.workload_ca_bundle()
    key = images.image_key(GO_HTTPBIN_VERSION, images.file_key(binary, dockerfile, ca))

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="meshops-httpbin-") as tmp:
            root = Path(tmp)
            images.base_files(root, ca)
            files: dict[str, Path | str] = {f"rootfs/{p.relative_to(root)}": p for p in root.rglob("*") if p.is_file()}
            files["rootfs/bin/go-httpbin"] = binary
            images.docker_build(GO_HTTPBIN_IMAGE, dockerfile, files, key)
        images.check_image(GO_HTTPBIN_IMAGE, ["-h"], "-port")

    return images.ensure_image(GO_HTTPBIN_IMAGE, key, build)


def build_curl_image() -> Path:
    base_ref, base_key = images.workload_base()
    dockerfile = images.DOCKERFILES / "curl" / "Dockerfile"
    key = images.image_key(base_key, dockerfile.read_bytes())

    def build() -> None:
        images.import_workload_base()
        images.docker_build(CURL_IMAGE, dockerfile, {}, key, {"BASE": base_ref})
        images.check_image(CURL_IMAGE, ["--version"], f"curl {CURL_VERSION}", entrypoint="curl")

    return images.ensure_image(CURL_IMAGE, key, build)


def build_images() -> list[Path]:
    with progress.step("app images"):
        return [build_go_httpbin_image(), build_curl_image()]


def image_refs() -> list[str]:
    return [GO_HTTPBIN_IMAGE, CURL_IMAGE]


# ---------------------------------------------------------------------------------------------
# the external host of the egress scenario

EXTERNAL_CONTAINER = "meshops-edition-cnn"
EXTERNAL_ALIASES = ("edition.cnn.com", "unregistered.meshops.test")


def external_host_up(name: str = EXTERNAL_CONTAINER, aliases: tuple[str, ...] = EXTERNAL_ALIASES) -> None:
    """go-httpbin on port 80 on the kind docker network, resolvable by ``aliases`` (docker DNS).

    It stands in for edition.cnn.com; the second alias is a host without a ServiceEntry, for the
    REGISTRY_ONLY check. No port is published.
    """
    with progress.step(f"external host {', '.join(aliases)} ({name})") as st:
        if cache.official_images():
            image = OFFICIAL_GO_HTTPBIN_IMAGE
        else:
            image = GO_HTTPBIN_IMAGE
            build_go_httpbin_image()
        running = images.docker_quiet("inspect", "--format", "{{.State.Running}} {{.Config.Image}}", name)
        if running.returncode == 0 and running.stdout.strip() == f"true {image}":
            st.cached = True
            return
        images.docker_quiet("rm", "-f", name)
        args = [
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            "unless-stopped",
            "--network",
            KIND_NETWORK,
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=0",
            "--label",
            "meshops.role=external-host",
        ]
        for alias in aliases:
            args += ["--network-alias", alias]
        images.docker(*args, image, "-port", "80", desc=f"starting {name}")


def external_host_down(name: str = EXTERNAL_CONTAINER) -> None:
    progress.quiet(["docker", "rm", "-f", name], env=engine.docker_env())


# more listeners of the external host: go-httpbin containers in the first one's network namespace
EXTERNAL_TLS_CONTAINER = "meshops-edition-cnn-tls"


def external_listener_up(name: str, port: int, cert_dir: Path | None = None, prefix: str = "", host: str = EXTERNAL_CONTAINER) -> None:
    """go-httpbin on ``port`` in the network namespace of the external host's container: the same
    address and DNS aliases, so edition.cnn.com answers on one more port. With ``cert_dir``
    (tls.crt and tls.key, made by a test with a CA of its own) it serves HTTPS; with ``prefix``
    (``/a``) its paths start with it, which tells two listeners apart (the other answers 404).
    Replaces a container of that name."""
    image = OFFICIAL_GO_HTTPBIN_IMAGE if cache.official_images() else GO_HTTPBIN_IMAGE
    args = ["-port", str(port)]
    if prefix:
        args += ["-prefix", prefix]
    if cert_dir is not None:
        args += ["-https-cert-file", "/certs/tls.crt", "-https-key-file", "/certs/tls.key"]
    with progress.step(f"external host {'TLS' if cert_dir else 'listener'} on port {port} ({name})"):
        images.docker_quiet("rm", "-f", name)
        images.docker(
            "create", "--name", name, "--network", f"container:{host}", "--label", "meshops.role=external-host", image, *args, desc=f"creating {name}"
        )
        if cert_dir is not None:
            # copied in, not mounted, and readable by the image's unprivileged user (a test's
            # temporary directory is private to root)
            with tempfile.TemporaryDirectory(prefix="meshops-tls-") as tmp:
                staged = Path(tmp)
                staged.chmod(0o755)
                for file in ("tls.crt", "tls.key"):
                    (staged / file).write_bytes((cert_dir / file).read_bytes())
                    (staged / file).chmod(0o644)
                images.docker("cp", f"{staged}/.", f"{name}:/certs", desc="copying the certificate")
        images.docker("start", name, desc=f"starting {name}")
        time.sleep(0.5)
        state = images.docker_quiet("inspect", "--format", "{{.State.Running}}", name)
        if state.stdout.strip() != "true":
            logs = images.docker_quiet("logs", name)
            raise errors.DevError(f"{name} stopped right after it started: {(logs.stdout + logs.stderr).strip()[-500:]}")


def external_listeners_down(host: str = EXTERNAL_CONTAINER) -> None:
    """Every listener a test left in the external host's network namespace (an interrupted run)."""
    listed = images.docker_quiet("ps", "-a", "--filter", "label=meshops.role=external-host", "--format", "{{.Names}}")
    for name in listed.stdout.split():
        if name != host:
            external_host_down(name)


def external_tls_up(cert_dir: Path, port: int = 443, name: str = EXTERNAL_TLS_CONTAINER) -> None:
    """The external host's TLS side: HTTPS on ``port`` with ``cert_dir``/tls.crt and tls.key."""
    external_listener_up(name, port, cert_dir)
