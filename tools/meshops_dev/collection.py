"""The collection as the tools and tests see it: the repository linked where Ansible looks for
meshops.istio, and the collection's own definitions that the tools read instead of copying.

- ``link()``: ``.ansible/collections/ansible_collections/meshops/istio`` -> the repository (where
  ansible.cfg and ansible-lint look); ``importable()`` also makes ``ansible_collections.*``
  importable in this Python (tests, benchmarks).
- ``proxy_profile()``: a proxy settings profile of the control_plane role (istiod chart values),
  read from the role's single definition.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from . import cache, errors

COLLECTIONS = cache.REPO_ROOT / ".ansible" / "collections"
# The ONE place that knows where the control_plane role defines its proxy profiles.
PROFILES_FILE = cache.REPO_ROOT / "roles" / "control_plane" / "vars" / "main.yml"
PROFILES_KEY = "__control_plane_profiles"


def link() -> Path:
    """Link the repository as meshops.istio under ``COLLECTIONS``; returns ``COLLECTIONS``."""
    target = COLLECTIONS / "ansible_collections" / "meshops" / "istio"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_symlink():
        if target.exists():
            raise errors.DevError(f"{target} exists and is not a symlink to the repository; remove it")
        target.symlink_to(os.path.relpath(cache.REPO_ROOT, target.parent))
    return COLLECTIONS


def collections_path() -> str:
    """``ANSIBLE_COLLECTIONS_PATH`` with the link first, then what the environment had."""
    rest = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p and p != str(COLLECTIONS)]
    return os.pathsep.join([str(link()), *rest])


def importable() -> Path:
    """``link()``, and ``ansible_collections.meshops.istio`` importable here and in children."""
    root = link()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # what ansible-test does for a collection under test
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = collections_path()
    return root


@functools.cache
def _profiles() -> dict:
    import yaml  # noqa: PLC0415 - the venv has PyYAML; the bootstrap launcher never gets here

    data = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8")) or {}
    profiles = data.get(PROFILES_KEY)
    if not isinstance(profiles, dict):
        raise errors.DevError(f"{PROFILES_FILE}: no mapping {PROFILES_KEY}")
    return profiles


def proxy_profile(name: str = "upstream_envoy") -> dict:
    """The istiod chart values of a proxy profile, as the control_plane role defines them."""
    profiles = _profiles()
    if name not in profiles:
        raise errors.DevError(f"{PROFILES_FILE}: {PROFILES_KEY} has no profile {name!r} (has: {', '.join(profiles)})")
    return profiles[name]
