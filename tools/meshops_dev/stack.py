"""``tools/dev up`` and ``down``: the whole air-gapped stack, in order, each step cached by version.

up: engine -> host tools (kind, helm, every Kubernetes binary in one go build) -> node image ->
kind cluster(s) -> the Istio images of every version in ``istio.VERSIONS`` and the app images
loaded into each node (one ``kind load`` per cluster) -> the external host of the egress
scenario (one for all clusters: they share the docker network ``kind``). ``MESHOPS_FLEET=N`` or
``tools/dev fleet up --count N`` brings up N clusters side by side (fleet.py); ``down`` removes
every one of them, ``fleet down`` only the clusters after ``meshops``. While the host tools compile, the work that waits on the network
or the disk runs beside them (``prefetch``): the two Debian root file systems and the Go modules
of the later builds. With ``MESHOPS_IMAGES=official`` only kind, helm and kubectl are built; the
node pulls kind's image and the official ones.

``tools/dev test`` sets ``MESHOPS_BUILD_LATER=background``: ``up`` of one cluster then builds only
the Istio version of the kind inventory (what the first kind tests install), and the other
versions and the execution environment build in the background at the lowest CPU priority
(``build_later_in_background``) while the tests run; the tests that need them (the fleet, the AWX
jobs) build them themselves, which waits for the background build (``stamps.exclusive``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from . import apps, cache, cluster, ee, engine, errors, fleet, gatewayapi, gobuild, hosttools, images, istio, nodeimage, progress

# Wrapper modules built after the host tools, whose modules ``prefetch`` downloads meanwhile.
LATER_MODULES = ("node/runtime", "etcd", "node/coredns", *(v.wrapper for v in istio.VERSIONS.values()), "apps")

BUILD_LATER_ENV = "MESHOPS_BUILD_LATER"


def deferred_minors(count: int) -> list[str] | None:
    """The Istio minors ``up`` builds for ``count`` clusters: the kind inventory's only when one
    cluster comes up while a background build does the rest (``MESHOPS_BUILD_LATER``), else all."""
    if os.environ.get(BUILD_LATER_ENV) == "background" and count == 1:
        return [istio.DEFAULT_MINOR]
    return None


def build_later() -> None:
    """What ``up`` left for later: the Istio images of every version and the execution environment."""
    istio.build_images()
    ee.build()


def build_later_in_background() -> None:
    """Start ``tools/dev build later`` at the lowest CPU priority (it takes the CPU the tests leave
    idle); its output goes to a log file of the state directory."""
    log = cache.state_dir() / "build-later.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["nice", "-n", "19", sys.executable, str(cache.REPO_ROOT / "tools" / "dev"), "build", "later"]
    with log.open("wb") as out:
        subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    others = ", ".join(v.minor for v in istio.VERSIONS.values() if v.minor != istio.DEFAULT_MINOR)
    progress.note(f"building Istio {others} and the execution environment in the background, at nice 19, while the tests run (log: {log})")


def prefetch() -> list[progress.Background]:
    """Start the air-gapped build's network- and disk-bound work in the background."""
    engine.ensure_apt_packages(images.BUILD_PACKAGES + nodeimage.BUILD_PACKAGES, "the air-gapped build")  # before any thread runs apt
    return [
        progress.background("node root file system", nodeimage.build_rootfs),
        progress.background("workload root file system", images.workload_rootfs),
        progress.background(
            "Go modules of the later builds", lambda: [gobuild.download(m, desc=f"downloading the modules of tools/go/{m}") for m in LATER_MODULES]
        ),
    ]


def up(count: int | None = None) -> None:
    """Everything built and ``count`` clusters up (default ``MESHOPS_FLEET``, else one)."""
    cache.image_source()  # refuse an unknown MESHOPS_IMAGES before anything starts
    members = fleet.plan(fleet.count_from_env() if count is None else count)
    with progress.step("up" if len(members) == 1 else f"up ({len(members)} clusters)"):
        engine.up()
        official = cache.official_images()
        waiting = [] if official else prefetch()
        hosttools.build_all()
        if official:
            progress.note(f"MESHOPS_IMAGES=official: the node pulls {cluster.node_image()} and the official images; nothing else is built")
        else:
            nodeimage.build()
        for work in waiting:
            work.settle()
        minors = deferred_minors(len(members))
        # every image before the first cluster starts: an idle cluster takes CPU from the builds
        build_images(minors)
        for m in members:
            cluster.up(m)
        prepare_clusters(members, minors)


def build_images(minors: list[str] | None = None) -> None:
    """The Istio images of every version (or ``minors``), the app images and the Gateway API
    CRDs file (air-gapped mode only; cached)."""
    if not cache.official_images():
        istio.build_images(minors)
        apps.build_images()
        gatewayapi.build()  # control_plane_gateway_api_crds_file of the kind inventories


def prepare_clusters(members: list[fleet.Member] | None = None, minors: list[str] | None = None) -> None:
    """What the scenario needs on (new) clusters: the Istio images of every version (or
    ``minors``) and the app images loaded into each node (one ``kind load`` per cluster;
    air-gapped mode only) and the external host of the egress scenario, which every cluster
    reaches on the kind network."""
    build_images(minors)
    if not cache.official_images():
        for m in members or [fleet.FIRST]:
            cluster.load(istio.image_refs(minors) + apps.image_refs(), m)
    apps.external_host_up()


def fleet_down() -> None:
    """Delete the fleet's clusters after ``meshops`` (``meshops-2``, ...); ``meshops`` stays."""
    with progress.step("fleet down") as st:
        extra = [m for m in fleet.members_among(cluster.kind_clusters()) if m != fleet.FIRST]
        if not extra:
            progress.note("no fleet cluster besides meshops")
            st.cached = True
        for m in extra:
            cluster.down(m)


def fleet_status() -> int:
    """Each fleet cluster: name, context, kubeconfig, ingress ports and health."""
    members = fleet.members_among(cluster.kind_clusters())
    if not members:
        print("no fleet cluster (tools/dev fleet up --count N)")
        return 1
    rc = 0
    for m in members:
        ok, pending = cluster.health(m)
        ports = cluster.published_ports(m)
        http = ",".join(ports.get("30080/tcp", [])) or "-"
        https = ",".join(ports.get("30443/tcp", [])) or "-"
        print(f"{m.name}: context {m.context}, kubeconfig {m.kubeconfig()}, ingress http 127.0.0.1:{http} https 127.0.0.1:{https}, ", end="")
        print("ready" if ok else "not ready: " + ", ".join(pending))
        rc = rc or (0 if ok else 1)
    return rc


def down(keep_engine: bool = False) -> None:
    with progress.step("down"):
        if engine.server_version(engine.docker_env()["DOCKER_HOST"]):
            try:
                fleet_down()
                cluster.down()
            except errors.DevError as exc:  # e.g. kind was never built: nothing to delete
                progress.warn(f"cluster down skipped: {exc}")
            # the external host leaves the kind network, so the network can go too (its TLS side,
            # left by an interrupted test, first: it lives in the host's network namespace)
            apps.external_listeners_down()
            apps.external_host_down()
        if not keep_engine:
            engine.down()
