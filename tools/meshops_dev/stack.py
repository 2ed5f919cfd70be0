"""``tools/dev up`` and ``down``: the whole air-gapped stack, in order, each step cached by version.

up: engine -> host tools (kind, helm, every Kubernetes binary in one go build) -> node image ->
kind cluster -> Istio and app images loaded into the node (one ``kind load``) -> the external
host of the egress scenario. While the host tools compile, the work that waits on the network
or the disk runs beside them (``prefetch``): the two Debian root file systems and the Go modules
of the later builds. With ``MESHOPS_IMAGES=official`` only kind, helm and kubectl are built; the
node pulls kind's image and the official ones.
"""

from __future__ import annotations

from . import apps, cache, cluster, engine, errors, gobuild, hosttools, images, istio, nodeimage, progress

# Wrapper modules built after the host tools, whose modules ``prefetch`` downloads meanwhile.
LATER_MODULES = ("node/runtime", "etcd", "node/coredns", "istio", "apps")


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


def up() -> None:
    cache.image_source()  # refuse an unknown MESHOPS_IMAGES before anything starts
    with progress.step("up"):
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
        cluster.up()
        prepare_cluster()


def prepare_cluster() -> None:
    """What the scenario needs on a (new) cluster: the Istio and app images loaded into the node
    (one ``kind load``; air-gapped mode only) and the external host of the egress scenario."""
    if not cache.official_images():
        istio.build_images()
        apps.build_images()
        cluster.load(istio.image_refs() + apps.image_refs())
    apps.external_host_up()


def down(keep_engine: bool = False) -> None:
    with progress.step("down"):
        if engine.server_version(engine.docker_env()["DOCKER_HOST"]):
            try:
                cluster.down()
            except errors.DevError as exc:  # e.g. kind was never built: nothing to delete
                progress.warn(f"cluster down skipped: {exc}")
            # the external host leaves the kind network, so the network can go too
            apps.external_host_down()
        if not keep_engine:
            engine.down()
