"""``tools/dev``: command line of the air-gapped tooling.

Subcommands: ``engine``, ``build host-tools|node-image``, ``cluster``, ``up``, ``down``.

Optional modules of this package (``istio``, ``apps``) plug in when they exist:

- ``register(subparsers)`` adds their own top-level subcommands;
- ``register_build(build_subparsers)`` (optional) adds ``tools/dev build <name>`` entries;
- ``up_hook()`` (optional; ``build_images()`` is accepted too) is called by ``tools/dev up``
  after the cluster is up, to build (and load) their images. A missing module or hook is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from . import cache, cluster, engine, hosttools, nodeimage, progress

OPTIONAL_MODULES = ("istio", "apps", "jobs")


def optional_modules() -> list[ModuleType]:
    mods = []
    for name in OPTIONAL_MODULES:
        try:
            mods.append(importlib.import_module(f"{__package__}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
    return mods


def _hook(mod: ModuleType):
    for attr in ("up_hook", "build_images"):
        fn = getattr(mod, attr, None)
        if callable(fn):
            return fn
    return None


def cmd_up(args: argparse.Namespace) -> int:
    cache.image_source()  # refuse an unknown MESHOPS_IMAGES before anything starts
    with progress.step("up"):
        engine.up()
        hosttools.build_all()
        if cache.official_images():
            progress.note(f"MESHOPS_IMAGES=official: the node pulls {cluster.node_image()} and the official images; nothing else is built")
        else:
            nodeimage.build()
        cluster.up()
        for mod in optional_modules():
            fn = _hook(mod)
            if fn is not None:
                fn()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    with progress.step("down"):
        if engine.server_version(engine.docker_env()["DOCKER_HOST"]):
            try:
                cluster.down()
            except progress.DevError as exc:  # e.g. kind was never built: nothing to delete
                progress.warn(f"cluster down skipped: {exc}")
            for mod in optional_modules():
                fn = getattr(mod, "down_hook", None)
                if callable(fn):
                    fn()
        if not args.keep_engine:
            engine.down()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tools/dev",
        description="Air-gapped tooling of meshops.istio: container engine, kind and its node image built from source, the kind cluster 'meshops'.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    engine.register(sub)
    build = sub.add_parser("build", help="build host tools and images from source")
    build_sub = build.add_subparsers(dest="build_cmd", required=True, metavar="WHAT")
    hosttools.register_build(build_sub)
    nodeimage.register_build(build_sub)
    cluster.register(sub)
    p = sub.add_parser("up", help="engine up + build host-tools + node-image + cluster up (+ istio/apps images)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="cluster down (+ engine down when this project started it)")
    p.add_argument("--keep-engine", action="store_true", help="leave the engine running")
    p.set_defaults(func=cmd_down)
    for mod in optional_modules():
        reg = getattr(mod, "register", None)
        if callable(reg):
            reg(sub)
        reg_build = getattr(mod, "register_build", None)
        if callable(reg_build):
            reg_build(build_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except progress.DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(rc or 0)
