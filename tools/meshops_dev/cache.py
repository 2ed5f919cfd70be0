"""Cache and state locations (docs/development.md, "Local state") and version stamps.

- ``MESHOPS_CACHE`` (default ``~/.cache/meshops-istio``): everything keyed by version that
  survives between runs: ``venv/``, ``bin/``, ``images/``, ``rootfs/``, ``istio/<tag>/``,
  ``docker/`` (the project's own dockerd), ``stamps/`` and ``timings.jsonl``.
- ``MESHOPS_STATE`` (default ``$MESHOPS_CACHE/state``): kubeconfigs and ``engine.env``.
- ``MESHOPS_IMAGES`` (default ``source``): ``source`` builds the node, Istio and app images here
  (air-gapped mode); ``official`` is for hosts that can pull: kind's own node image and the
  official Istio and app images, nothing built but kind, helm and kubectl.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from . import progress

T = TypeVar("T")

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
        raise progress.DevError(f"MESHOPS_IMAGES={value!r}: use one of {', '.join(IMAGE_SOURCES)}")
    return value


def official_images() -> bool:
    return image_source() == "official"


def kind_inventory() -> Path:
    """The inventory of the local kind cluster for the image source in use."""
    name = "official.yml" if official_images() else "hosts.yml"
    return REPO_ROOT / "inventories" / "kind" / name


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


def _stamp_path(key: str) -> Path:
    safe = key.replace("/", "__").replace(":", "_").replace(" ", "_")
    return stamps_dir() / f"{safe}.json"


def is_stamped(key: str) -> bool:
    return _stamp_path(key).is_file()


def read_stamp(key: str) -> dict | None:
    path = _stamp_path(key)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_stamp(key: str, **info: object) -> None:
    path = _stamp_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"key": key, "done": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    data.update(info)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def clear_stamp(key: str) -> None:
    _stamp_path(key).unlink(missing_ok=True)


def cached(
    key: str,
    producer: Callable[[], T],
    *,
    desc: str | None = None,
    check: Callable[[], bool] | None = None,
) -> T | None:
    """Run ``producer`` unless the stamp ``key`` exists (and ``check()``, if given, is true).

    ``key`` must contain every version the result depends on (for example
    ``"image/kube-apiserver/v1.35.4"``). The work runs inside a progress step named ``desc``
    (default: the key) that records ``cached: true`` when skipped. Returns the producer's result,
    or None when skipped. The stamp is written only when the producer returns without error.
    """
    with progress.step(desc or key) as st:
        if is_stamped(key) and (check is None or check()):
            st.cached = True
            return None
        result = producer()
        write_stamp(key)
        return result
