"""The upgrade scenario the fleet tests and ``tools/bench/upgrade.py`` run on the kind fleet.

The reference scenario, revision-based, from the older Istio build to the newer one: httpbin a
canary namespace (so the gate's route probes go through the canary revision), two replicas of
the ingress gateway and of httpbin (what zero downtime needs), a short grace period before the
old revision is removed. ``minor_vars`` gives the extra variables of one build.
"""

from __future__ import annotations

import copy

import yaml

from . import cache

OLD, NEW = "1.30", "1.31"
SETTINGS = {
    "control_plane_update_strategy": "RevisionBased",
    "control_plane_canary_namespaces": ["httpbin"],
    "control_plane_inactive_revision_grace_period": 2,
    "control_plane_rollout_timeout": 240,
    "httpbin_replicas": 2,
    "verify_egress": False,
}
IN_PLACE = {"control_plane_update_strategy": "InPlace", "control_plane_canary_namespaces": []}
CLUSTERS_VARS = cache.REPO_ROOT / "inventories" / "kind" / "group_vars" / "clusters.yml"


def gateways_list(replicas: int = 2) -> list[dict]:
    """The kind inventory's gateways with ``replicas`` ingress gateway replicas."""
    listed = copy.deepcopy(yaml.safe_load(CLUSTERS_VARS.read_text(encoding="utf-8"))["gateways_list"])
    listed[0]["replicas"] = replicas
    return listed


def minor_vars(minor: str) -> dict:
    """Extra variables that install (or upgrade to) the Istio build of ``minor``."""
    return {"meshops_istio_minor": minor, "gateways_list": gateways_list()}
