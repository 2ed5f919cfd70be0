"""``tools/dev up`` and ``down``: the whole air-gapped stack, in order, each step cached by version.

up: engine -> host tools (kind, helm, every Kubernetes binary in one go build) -> node image ->
kind cluster -> Istio and app images loaded into the node (one ``kind load``) -> the external
host of the egress scenario. With ``MESHOPS_IMAGES=official`` only kind, helm and kubectl are
built; the node pulls kind's image and the official ones.
"""

from __future__ import annotations

from . import apps, cache, cluster, engine, errors, hosttools, istio, nodeimage, progress


def up() -> None:
    cache.image_source()  # refuse an unknown MESHOPS_IMAGES before anything starts
    with progress.step("up"):
        engine.up()
        hosttools.build_all()
        official = cache.official_images()
        if official:
            progress.note(f"MESHOPS_IMAGES=official: the node pulls {cluster.node_image()} and the official images; nothing else is built")
        else:
            nodeimage.build()
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
