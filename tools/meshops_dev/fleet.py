"""The plan of a fleet of kind clusters side by side (``tools/dev fleet up --count N``).

Member 1 is today's cluster ``meshops`` (context ``kind-meshops``, ingress on
``127.0.0.1:${MESHOPS_INGRESS_HTTP_PORT:-80}`` and ``${MESHOPS_INGRESS_HTTPS_PORT:-443}``);
member N > 1 is ``meshops-N`` (context ``kind-meshops-N``), its ingress on
``127.0.0.1:${MESHOPS_FLEET_HTTP_PORT:-8081} + N - 2`` and ``${MESHOPS_FLEET_HTTPS_PORT:-8444} + N - 2``
(8081/8444, 8082/8445, ...). Every member maps those host ports to the node ports 30080/30443
of its own node, where the ingress gateway listens (inventories/kind/group_vars/clusters.yml);
kubeconfig ``$MESHOPS_STATE/kubeconfig-<name>``. All members share the docker network ``kind``
and so reach the external host of the egress scenario. ``inventories/kind-fleet/`` names the
first ``INVENTORY_SIZE`` members (hosts ``kind-meshops``, ``kind-meshops-2``, ...).

Only names and numbers here (environment read at call time): cluster.py creates the members.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import cache, errors

BASE_NAME = "meshops"
INVENTORY_SIZE = 3  # members in inventories/kind-fleet
# A node with Istio and the reference scenario uses about 1 GB; the engine's machine has 24 GB.
MAX_MEMBERS = 8


def _port(var: str, default: int) -> int:
    value = os.environ.get(var, "").strip()
    try:
        port = int(value) if value else default
    except ValueError as exc:
        raise errors.DevError(f"{var}={value!r} is not a port number") from exc
    if not 0 < port < 65536:
        raise errors.DevError(f"{var}={port} is not a port number")
    return port


@dataclasses.dataclass(frozen=True)
class Member:
    """One kind cluster of the fleet, by its position (1 is the cluster ``meshops``)."""

    index: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= MAX_MEMBERS:
            raise errors.DevError(f"a fleet has 1 to {MAX_MEMBERS} clusters, not {self.index}")

    @property
    def name(self) -> str:
        return BASE_NAME if self.index == 1 else f"{BASE_NAME}-{self.index}"

    @property
    def context(self) -> str:
        """kind's context name, also the inventory host of the cluster."""
        return f"kind-{self.name}"

    @property
    def node(self) -> str:
        return f"{self.name}-control-plane"

    @property
    def http_port(self) -> int:
        if self.index == 1:
            return _port("MESHOPS_INGRESS_HTTP_PORT", 80)
        return _port("MESHOPS_FLEET_HTTP_PORT", 8081) + self.index - 2

    @property
    def https_port(self) -> int:
        if self.index == 1:
            return _port("MESHOPS_INGRESS_HTTPS_PORT", 443)
        return _port("MESHOPS_FLEET_HTTPS_PORT", 8444) + self.index - 2

    @property
    def port_variables(self) -> tuple[str, str]:
        """The environment variables that choose this member's (http, https) ports."""
        if self.index == 1:
            return "MESHOPS_INGRESS_HTTP_PORT", "MESHOPS_INGRESS_HTTPS_PORT"
        return "MESHOPS_FLEET_HTTP_PORT", "MESHOPS_FLEET_HTTPS_PORT"

    @property
    def ingress(self) -> str:
        """``127.0.0.1:<http port>``: the inventory's ``verify_ingress_address``."""
        return f"127.0.0.1:{self.http_port}"

    def kubeconfig(self) -> Path:
        return cache.kubeconfig(self.name)

    def config_path(self) -> Path:
        """The kind config the member is created with."""
        return cache.state_dir() / f"kind-{self.name}.yaml"


FIRST = Member(1)


def by_context(context: str) -> Member:
    """The member whose kind context (inventory host) is ``context``."""
    for index in range(1, MAX_MEMBERS + 1):
        if Member(index).context == context:
            return Member(index)
    raise errors.DevError(f"{context} is not the context of a fleet cluster ({FIRST.context}, {Member(2).context}, ...)")


def plan(count: int) -> list[Member]:
    """The members of a fleet of ``count`` clusters; refused when two would publish one port."""
    if not 1 <= count <= MAX_MEMBERS:
        raise errors.DevError(f"a fleet has 1 to {MAX_MEMBERS} clusters, not {count}")
    members = [Member(i) for i in range(1, count + 1)]
    seen: dict[int, str] = {}
    for m in members:
        for port in (m.http_port, m.https_port):
            if port in seen:
                raise errors.DevError(f"{m.name} and {seen[port]} would both publish 127.0.0.1:{port}: choose other ports with {', '.join(m.port_variables)}")
            seen[port] = m.name
    return members


def count_from_env(default: int = 1) -> int:
    """``MESHOPS_FLEET``: how many clusters ``tools/dev up`` brings up (default one)."""
    value = os.environ.get("MESHOPS_FLEET", "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise errors.DevError(f"MESHOPS_FLEET={value!r}: give the number of clusters (1 to {MAX_MEMBERS})")
    return int(value)


def member_named(name: str) -> Member | None:
    """The member a kind cluster name belongs to (``meshops-3`` -> member 3), None for other names."""
    if name == BASE_NAME:
        return FIRST
    suffix = name.removeprefix(f"{BASE_NAME}-")
    if suffix == name or not suffix.isdigit() or suffix.startswith("0"):
        return None
    index = int(suffix)
    return Member(index) if 2 <= index <= MAX_MEMBERS else None


def members_among(names: list[str]) -> list[Member]:
    """The fleet members among kind's cluster names, in order."""
    found = [m for m in (member_named(n) for n in names) if m is not None]
    return sorted(found, key=lambda m: m.index)
