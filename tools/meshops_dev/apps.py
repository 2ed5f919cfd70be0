"""Application images of the air-gapped mode (``tools/dev build apps``).

- ``meshops.local/go-httpbin:v2.15.0``: go-httpbin, the httpbin that Istio's samples/httpbin runs
  (port 8080 by default; the sample's Service maps 8000 -> 8080), a static binary built from
  ``tools/go/apps``, ``FROM scratch`` (tools/images/go-httpbin/Dockerfile).
- ``meshops.local/curl:7.88.1``: mesh client with curl and a shell for egress checks, Debian
  bookworm minbase + curl (tools/images/curl/Dockerfile); the tag is the upstream version of
  bookworm's curl package.

Tarballs are cached under ``$MESHOPS_CACHE/images/``; nothing is rebuilt while they are there.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from . import cache, engine, gobuild, istio, progress

GO_HTTPBIN_VERSION = "v2.15.0"
GO_HTTPBIN_PKG = "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin"
GO_HTTPBIN_IMAGE = f"meshops.local/go-httpbin:{GO_HTTPBIN_VERSION}"
# Upstream version of Debian bookworm's curl package (7.88.1-10+deb12uN); checked at build time.
CURL_VERSION = "7.88.1"
CURL_IMAGE = f"meshops.local/curl:{CURL_VERSION}"
# MESHOPS_IMAGES=official: the image of Istio's samples/httpbin, which docker pulls
OFFICIAL_GO_HTTPBIN_IMAGE = f"docker.io/mccutchen/go-httpbin:{GO_HTTPBIN_VERSION}"
CURL_PACKAGES = ("ca-certificates", "curl")


def build_go_httpbin() -> Path:
    out = gobuild.build(
        "apps",
        [f"go-httpbin={GO_HTTPBIN_PKG}"],
        f"apps/go-httpbin-{GO_HTTPBIN_VERSION}",
        desc=f"build go-httpbin {GO_HTTPBIN_VERSION}",
    )
    return out["go-httpbin"]


def build_go_httpbin_image() -> Path:
    binary = build_go_httpbin()
    dockerfile = istio.IMAGES_DIR / "go-httpbin" / "Dockerfile"
    ca = istio.debian_ca_bundle()
    key = istio.short_hash(istio.IMAGE_RECIPE, GO_HTTPBIN_VERSION, istio.file_key(binary, dockerfile, ca))

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="meshops-httpbin-") as tmp:
            root = Path(tmp)
            istio.base_files(root, ca)
            files: dict[str, Path | str] = {f"rootfs/{p.relative_to(root)}": p for p in root.rglob("*") if p.is_file()}
            files["rootfs/bin/go-httpbin"] = binary
            istio.docker_build(GO_HTTPBIN_IMAGE, dockerfile, files, key)
        istio.smoke_check(GO_HTTPBIN_IMAGE, ["-h"], "-port")

    return istio.ensure_image(GO_HTTPBIN_IMAGE, key, build)


def _curl_post(root: Path) -> None:
    # Istio's samples/curl runs curlimages/curl as curl_user (uid 100, gid 101).
    istio.chroot(root, "groupadd", "--gid", "101", "curl_user", desc="adding group curl_user")
    istio.chroot(
        root,
        "useradd",
        "--uid",
        "100",
        "--gid",
        "101",
        "--no-create-home",
        "--home-dir",
        "/tmp",
        "--shell",
        "/bin/sh",
        "curl_user",
        desc="adding user curl_user",
    )
    version = istio.chroot(root, "dpkg-query", "-W", "-f", "${Version}", "curl", desc="curl package version")
    if not version.startswith(CURL_VERSION + "-"):
        raise progress.DevError(f"{istio.DEBIAN_SUITE} ships curl {version}, apps.CURL_VERSION says {CURL_VERSION}: update it")
    (root / "etc/meshops-curl-version").write_text(version + "\n")


def build_curl_image() -> Path:
    rootfs = istio.debootstrap_rootfs("curl", CURL_PACKAGES, _curl_post, "curl_user 100:101")
    dockerfile = istio.IMAGES_DIR / "curl" / "Dockerfile"
    base_key = istio.short_hash(rootfs.name)
    base_ref = f"meshops.local/curl-base:{istio.DEBIAN_SUITE}-{base_key}"
    key = istio.short_hash(istio.IMAGE_RECIPE, base_key, dockerfile.read_bytes())

    def build() -> None:
        istio.import_rootfs(base_ref, rootfs, base_key)
        istio.docker_build(CURL_IMAGE, dockerfile, {}, key, {"BASE": base_ref})
        istio.smoke_check(CURL_IMAGE, ["--version"], f"curl {CURL_VERSION}", entrypoint="curl")

    return istio.ensure_image(CURL_IMAGE, key, build)


def build_images() -> list[Path]:
    with progress.step("app images"):
        return [build_go_httpbin_image(), build_curl_image()]


def images() -> list[str]:
    return [GO_HTTPBIN_IMAGE, CURL_IMAGE]


def register_build(build_sub: argparse._SubParsersAction) -> None:
    p = build_sub.add_parser("apps", help=f"images {GO_HTTPBIN_IMAGE} and {CURL_IMAGE} (cached tarballs)")
    p.add_argument("--load", action="store_true", help="also load them into the kind cluster")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    tarballs = build_images()
    if args.load:
        istio.load_into_cluster(images())
    for t in tarballs:
        print(t)
    return 0


# ---------------------------------------------------------------------------------------------
# the external host of the egress scenario


def _network() -> str:
    from . import cluster  # noqa: PLC0415

    return cluster.NETWORK


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
        running = progress.quiet(["docker", "inspect", "--format", "{{.State.Running}} {{.Config.Image}}", name], env=engine.docker_env())
        if running.returncode == 0 and running.stdout.strip() == f"true {image}":
            st.cached = True
            return
        progress.quiet(["docker", "rm", "-f", name], env=engine.docker_env())
        args = [
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            "unless-stopped",
            "--network",
            _network(),
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=0",
            "--label",
            "meshops.role=external-host",
        ]
        for alias in aliases:
            args += ["--network-alias", alias]
        istio.docker(*args, image, "-port", "80", desc=f"starting {name}")


def external_host_down(name: str = EXTERNAL_CONTAINER) -> None:
    progress.quiet(["docker", "rm", "-f", name], env=engine.docker_env())


def down_hook() -> None:
    """``tools/dev down``: the external host leaves the kind network, so the network can go too."""
    external_host_down()


def up_hook() -> None:
    """``tools/dev up``: build (cached) and load the app images; start the external host."""
    from . import cluster  # noqa: PLC0415

    if cache.official_images():
        if cluster.cluster_exists():
            external_host_up()  # the roles' default images are pulled by the node
        return
    build_images()
    if cluster.cluster_exists():
        istio.load_into_cluster(images())
        external_host_up()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("apps", help="app helpers: the external host of the egress scenario")
    sub = p.add_subparsers(dest="apps_cmd", required=True)
    up = sub.add_parser("external-host", help="start (or --down: remove) the go-httpbin container standing in for the external host")
    up.add_argument("--name", default=EXTERNAL_CONTAINER, help="container name")
    up.add_argument("--alias", action="append", help=f"DNS names on the kind network (default: {', '.join(EXTERNAL_ALIASES)})")
    up.add_argument("--down", action="store_true", help="remove the container")
    up.set_defaults(func=cmd_external_host)


def cmd_external_host(args: argparse.Namespace) -> int:
    if args.down:
        external_host_down(args.name)
    else:
        external_host_up(args.name, tuple(args.alias or EXTERNAL_ALIASES))
    return 0
