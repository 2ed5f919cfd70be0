"""``tools/dev``: the command line of the air-gapped tooling.

Every command is a row of ``COMMANDS``: its words (``"cluster up"``), the help line, its
arguments and the function it runs. ``build_parser()`` turns the table into argparse parsers;
nothing is discovered at run time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

from . import apps, cache, cluster, ee, engine, errors, fleet, gatewayapi, gobuild, hosttools, istio, jobs, nodeimage, stack

# (flags, argparse keyword arguments) of one argument
Arg = tuple[tuple[str, ...], dict]


def arg(*flags: str, **kwargs) -> Arg:
    return flags, kwargs


@dataclasses.dataclass(frozen=True)
class Command:
    words: str
    help: str
    run: Callable[[argparse.Namespace], object]  # an int is the exit code; anything else means 0
    args: tuple[Arg, ...] = ()


# Help of the words that group commands (``tools/dev cluster --help``).
GROUPS = {
    "engine": "container engine: use a running Docker engine or the project's own dockerd",
    "build": "build host tools and images from source (cached by version)",
    "cluster": "the kind cluster 'meshops'",
    "fleet": "kind clusters side by side: meshops, meshops-2, ... (inventories/kind-fleet)",
    "istio": "the collection's roles on the kind cluster: install, smoke, uninstall",
    "apps": "app helpers: the external host of the egress scenario",
}

REST = "(after --)"


def _rest(args: list[str]) -> list[str]:
    return args[1:] if args[:1] == ["--"] else args


def _build_istio(args: argparse.Namespace) -> None:
    for tarball in istio.build_images(args.minor):
        print(tarball)
    for v in istio.selected(args.minor):
        print(v.charts_dir())
    if args.load:
        cluster.load(istio.image_refs(args.minor))


def _go_align(args: argparse.Namespace) -> int:
    rc = 0
    unknown = sorted(set(args.wrapper) - set(gobuild.ALIGNED))
    if unknown:
        raise errors.DevError(f"not an aligned wrapper module: {', '.join(unknown)} (aligned: {', '.join(sorted(gobuild.ALIGNED))})")
    for wrapper in args.wrapper or sorted(gobuild.ALIGNED):
        reference = gobuild.ALIGNED[wrapper][0]
        diff = gobuild.align(wrapper, check=args.check)
        for module, (mine, ref) in diff.items():
            print(f"tools/go/{wrapper}: {module} {mine} -> {ref} (tools/go/{reference})")
        if args.check and diff:
            rc = 1
    return rc


def _build_apps(args: argparse.Namespace) -> None:
    for tarball in apps.build_images():
        print(tarball)
    if args.load:
        cluster.load(apps.image_refs())


def _external_host(args: argparse.Namespace) -> None:
    if args.down:
        apps.external_host_down(args.name)
    else:
        apps.external_host_up(args.name, tuple(args.alias or apps.EXTERNAL_ALIASES))


def _istio_smoke(args: argparse.Namespace) -> int:
    if not args.no_apply:
        apps.external_host_up()
    roles = ["verify"] if args.no_apply else ["httpbin", "traffic", "verify"]
    return jobs.run_roles(roles, *_rest(args.ansible_args), desc=f"roles {', '.join(roles)} on the kind cluster")


def _repo_playbook(name: str) -> Path:
    path = (cache.REPO_ROOT / name).resolve()
    if not path.is_file() or cache.REPO_ROOT.resolve() not in path.parents:
        raise errors.DevError(f"{name}: not a playbook of the repository (for example site.yml or playbooks/upgrade.yml)")
    return path


def _istio_uninstall(args: argparse.Namespace) -> int:
    extra = ["--extra-vars", '{"control_plane_uninstall_crds": true}'] if args.crds else []
    playbook = cache.REPO_ROOT / "playbooks" / "uninstall.yml"
    return jobs.playbook(playbook, *extra, *_rest(args.ansible_args), desc="playbooks/uninstall.yml on the kind cluster")


ANSIBLE_ARGS = arg("ansible_args", nargs=argparse.REMAINDER, help=f"extra ansible-playbook arguments {REST}")

COMMANDS: tuple[Command, ...] = (
    Command("engine up", "use a running Docker engine or start the project's own dockerd", lambda a: engine.up()),
    Command("engine down", "stop the project's dockerd (only if started by 'up')", lambda a: engine.down()),
    Command("engine status", "show which engine is used and whether it answers", lambda a: engine.status()),
    Command("engine env", "print 'export DOCKER_HOST=...' for shells", lambda a: engine.print_env()),
    Command("build host-tools", "build kind, helm (+helm-diff) and kubectl into $MESHOPS_CACHE/bin", lambda a: hosttools.build_all()),
    Command("build node-image", f"build the kind node image {nodeimage.NODE_IMAGE}", lambda a: nodeimage.build()),
    Command("build node-binaries", "build only the binaries of the node image", lambda a: nodeimage.build_binaries()),
    Command(
        "build istio",
        f"pilot and proxyv2 images and the Helm charts of Istio {', '.join(v.tag for v in istio.VERSIONS.values())} (cached)",
        _build_istio,
        (
            arg("--minor", action="append", choices=tuple(istio.VERSIONS), help="only this Istio version (repeatable; default: every one)"),
            arg("--load", action="store_true", help="also load the images into the kind cluster"),
        ),
    ),
    Command(
        "build go-align",
        "make wrapper modules select their reference's versions of the modules they share (one compile in the Go build cache)",
        _go_align,
        (
            arg("wrapper", nargs="*", help=f"wrapper modules under tools/go: {', '.join(sorted(gobuild.ALIGNED))} (default: all)"),
            arg("--check", action="store_true", help="only list the differences; exit 1 when there are some"),
        ),
    ),
    Command(
        "build apps",
        f"images {apps.GO_HTTPBIN_IMAGE} and {apps.CURL_IMAGE} (cached tarballs)",
        _build_apps,
        (arg("--load", action="store_true", help="also load them into the kind cluster"),),
    ),
    Command(
        "build gateway-api",
        f"the Gateway API CRDs {gatewayapi.VERSION} (standard channel) from the sigs.k8s.io/gateway-api module Istio requires",
        lambda a: print(gatewayapi.build()),
    ),
    Command(
        "build later",
        "what tools/dev test leaves to a background build while the tests run: the Istio images of every version and the execution environment",
        lambda a: stack.build_later(),
    ),
    Command(
        "build ee",
        "the execution environment image of docs/awx/execution-environment.yml (ansible-builder; base, packages and helm from this machine)",
        lambda a: ee.build(),
    ),
    Command("cluster up", "create (or reuse) the kind cluster and wait until it is ready", lambda a: cluster.up()),
    Command("cluster down", "delete the kind cluster", lambda a: cluster.down()),
    Command("cluster status", "show the cluster, its health, memory and pods", lambda a: cluster.status()),
    Command(
        "cluster load",
        "load docker images (names) or image archives (files) into the cluster",
        lambda a: cluster.load(a.images),
        (arg("images", nargs="+", metavar="IMAGE"),),
    ),
    Command("cluster config", "print the kind config used to create the cluster", lambda a: print(cluster.kind_config(), end="")),
    Command(
        "fleet up",
        "tools/dev up with COUNT clusters side by side (meshops, meshops-2, ...; ingress ports in 'fleet status')",
        lambda a: stack.up(fleet.count_from_env(fleet.INVENTORY_SIZE) if a.count is None else a.count),
        (
            arg(
                "--count",
                type=int,
                default=None,
                help=f"how many clusters (default: $MESHOPS_FLEET, else {fleet.INVENTORY_SIZE}, the size of inventories/kind-fleet)",
            ),
        ),
    ),
    Command(
        "fleet playbook",
        "a playbook of the repository (site.yml, playbooks/upgrade.yml, ...) against the fleet's clusters (inventories/kind-fleet)",
        lambda a: jobs.playbook(
            _repo_playbook(a.playbook), *_rest(a.ansible_args), inventory=cache.fleet_inventory(), desc=f"{a.playbook} against the kind fleet"
        ),
        (arg("playbook", help="path relative to the repository, e.g. playbooks/upgrade.yml"), ANSIBLE_ARGS),
    ),
    Command("fleet down", "delete the fleet's clusters after meshops (tools/dev down deletes every one)", lambda a: stack.fleet_down()),
    Command("fleet status", "each fleet cluster: context, kubeconfig, ingress ports, health", lambda a: stack.fleet_status()),
    Command("up", "engine up + build host-tools + node-image + cluster up ($MESHOPS_FLEET clusters) + Istio/app images + external host", lambda a: stack.up()),
    Command(
        "down",
        "cluster down (+ engine down when this project started it)",
        lambda a: stack.down(keep_engine=a.keep_engine),
        (arg("--keep-engine", action="store_true", help="leave the engine running"),),
    ),
    Command(
        "site",
        "the main job: build what is missing, create the kind cluster, run site.yml",
        lambda a: jobs.site(a.inventory, _rest(a.ansible_args)),
        (
            arg("--inventory", type=Path, help="inventory (default: the local kind cluster, inventories/kind/hosts.yml or official.yml)"),
            ANSIBLE_ARGS,
        ),
    ),
    Command(
        "test",
        "the test command: unit, rendering, module, lint and sanity tests and the kind scenario",
        lambda a: jobs.test(a.no_cluster, _rest(a.pytest_args)),
        (
            arg("--no-cluster", action="store_true", help="skip the tests that need the kind cluster"),
            arg("pytest_args", nargs=argparse.REMAINDER, help=f"extra pytest arguments {REST}"),
        ),
    ),
    Command(
        "istio install",
        "the roles control_plane and gateways on the kind cluster (charts and images of the inventory)",
        lambda a: jobs.run_roles(["control_plane", "gateways"], *_rest(a.ansible_args), desc="roles control_plane, gateways on the kind cluster"),
        (ANSIBLE_ARGS,),
    ),
    Command(
        "istio smoke",
        "the roles httpbin, traffic and verify (the reference scenario and its live checks)",
        _istio_smoke,
        (arg("--no-apply", action="store_true", help="only the verify role (the checks)"), ANSIBLE_ARGS),
    ),
    Command(
        "istio uninstall",
        "the collection's playbooks/uninstall.yml (scenario, gateways, control plane)",
        _istio_uninstall,
        (arg("--crds", action="store_true", help="also delete Istio's CRDs (control_plane_uninstall_crds)"), ANSIBLE_ARGS),
    ),
    Command(
        "apps external-host",
        "start (or --down: remove) the go-httpbin container standing in for the external host",
        _external_host,
        (
            arg("--name", default=apps.EXTERNAL_CONTAINER, help="container name"),
            arg("--alias", action="append", help=f"DNS names on the kind network (default: {', '.join(apps.EXTERNAL_ALIASES)})"),
            arg("--down", action="store_true", help="remove the container"),
        ),
    ),
)


def build_parser(commands: tuple[Command, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tools/dev",
        description="Air-gapped tooling of meshops.istio: container engine, kind and its node image built from source, the kind cluster 'meshops'.",
    )
    top = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in commands:
        words = command.words.split()
        if len(words) == 1:
            sub = top.add_parser(words[0], help=command.help)
        else:
            group, name = words
            if group not in groups:
                groups[group] = top.add_parser(group, help=GROUPS[group]).add_subparsers(dest=f"{group}_cmd", required=True, metavar="WHAT")
            sub = groups[group].add_parser(name, help=command.help)
        for flags, kwargs in command.args:
            sub.add_argument(*flags, **kwargs)
        sub.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None, commands: tuple[Command, ...] = COMMANDS) -> int:
    args = build_parser(commands).parse_args(argv)
    try:
        rc = args.func(args)
    except errors.DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc if isinstance(rc, int) else 0
