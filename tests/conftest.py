"""Shared pytest setup: make the repository importable as ansible_collections.meshops.istio."""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".ansible" / "collections"


def _link_collection():
    """Link the repository as .ansible/collections/ansible_collections/meshops/istio (ansible-lint's place)."""
    link = COLLECTIONS / "ansible_collections" / "meshops" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        if link.exists():
            raise RuntimeError(f"{link} exists and is not a symlink to the repository; remove it")
        link.symlink_to(os.path.relpath(REPO, link.parent))
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(
        [str(COLLECTIONS)] + [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    )


_link_collection()
