"""Cache and state locations (docs/development.md, "Local state").

- ``MESHOPS_CACHE`` (default ``~/.cache/meshops-istio``): everything keyed by version that
  survives between runs: ``venv/``, ``bin/``, ``images/``, ``rootfs/``, ``istio/<tag>/``,
  ``docker/`` (the project's own dockerd), ``stamps/`` and ``timings.jsonl``.
- ``MESHOPS_STATE`` (default ``$MESHOPS_CACHE/state``): kubeconfigs and ``engine.env``.
- ``MESHOPS_IMAGES`` (default ``source``): ``source`` builds the node, Istio and app images here
  (air-gapped mode); ``official`` is for hosts that can pull: kind's own node image and the
  official Istio and app images, nothing built but kind, helm and kubectl.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DevError

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"
GO_DIR = TOOLS_DIR / "go"


def cache_dir() -> Path:
    value = os.environ.get("MESHOPS_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "meshops-istio"


IMAGE_SOURCES = ("source", "official")


def image_source() -> str:
    """``MESHOPS_IMAGES``: where the node, Istio and app images come from."""
    value = os.environ.get("MESHOPS_IMAGES", "source").strip() or "source"
    if value not in IMAGE_SOURCES:
        raise DevError(f"MESHOPS_IMAGES={value!r}: use one of {', '.join(IMAGE_SOURCES)}")
    return value


def official_images() -> bool:
    return image_source() == "official"


def kind_inventory() -> Path:
    """The inventory of the local kind cluster for the image source in use."""
    name = "official.yml" if official_images() else "hosts.yml"
    return REPO_ROOT / "inventories" / "kind" / name


def fleet_inventory() -> Path:
    """The inventory of the kind fleet (``tools/dev fleet up``) for the image source in use."""
    return REPO_ROOT / "inventories" / "kind-fleet" / kind_inventory().name


def state_dir() -> Path:
    value = os.environ.get("MESHOPS_STATE")
    return Path(value).expanduser() if value else cache_dir() / "state"


def bin_dir() -> Path:
    """Host tools (kind, helm, kubectl, ...) installed for direct use."""
    return cache_dir() / "bin"


def images_dir() -> Path:
    """Saved image tarballs, named after image and version."""
    return cache_dir() / "images"


def rootfs_dir() -> Path:
    return cache_dir() / "rootfs"


def docker_dir() -> Path:
    """State of the project's own dockerd (data-root, exec-root, socket, pidfile, log)."""
    return cache_dir() / "docker"


def istio_dir(tag: str) -> Path:
    return cache_dir() / "istio" / tag


def venv_dir() -> Path:
    return cache_dir() / "venv"


def stamps_dir() -> Path:
    return cache_dir() / "stamps"


def timings_file() -> Path:
    return cache_dir() / "timings.jsonl"


def kubeconfig(cluster: str = "meshops") -> Path:
    return state_dir() / f"kubeconfig-{cluster}"


def engine_env_file() -> Path:
    return state_dir() / "engine.env"


def helm_plugins_dir() -> Path:
    """HELM_PLUGINS directory holding helm-diff (set it when running helm)."""
    return cache_dir() / "helm" / "plugins"


def tool_path(name: str) -> Path:
    return bin_dir() / name


def image_tarball(name: str, version: str) -> Path:
    """Path of a cached image tarball, e.g. ``images/kube-apiserver_v1.35.4.tar``."""
    safe = name.replace("/", "_").replace(":", "_")
    return images_dir() / f"{safe}_{version}.tar"
