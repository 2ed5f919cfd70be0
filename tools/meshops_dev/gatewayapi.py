"""The Kubernetes Gateway API CRDs of the air-gapped mode (``tools/dev build gateway-api``).

The version is the one the pinned Istio build requires (``sigs.k8s.io/gateway-api`` in
tools/go/istio/go.mod), so istiod and the CRDs always agree. The standard channel's manifests
come from that module (``config/crd/standard/*.yaml``, fetched through the Go module proxy, the
files the release's ``standard-install.yaml`` is made of) and are written, in file order, to
``$MESHOPS_CACHE/gateway-api/<version>/standard-install.yaml``, which the kind inventories give
the control_plane role as ``control_plane_gateway_api_crds_file``. Online, the role downloads the
release's ``standard-install.yaml`` instead.
"""

from __future__ import annotations

from pathlib import Path

from . import cache, errors, gobuild, progress

MODULE = "sigs.k8s.io/gateway-api"
VERSION = gobuild.pinned("istio", MODULE)
CHANNEL = "standard"
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
CHANNEL_ANNOTATION = "gateway.networking.k8s.io/channel"


def manifest_path(version: str = VERSION) -> Path:
    return cache.cache_dir() / "gateway-api" / version / f"{CHANNEL}-install.yaml"


def module_dir() -> Path:
    """The pinned gateway-api module in the Go module cache (downloaded when missing)."""
    return gobuild.mod_dir("istio", MODULE)


def manifest_text(source: Path, version: str = VERSION) -> str:
    """The standard channel's manifests of the module at ``source``, checked: every CRD carries
    the bundle version and channel it claims to be."""
    import yaml  # noqa: PLC0415 (the venv's; tools/dev itself starts without it)

    files = sorted((source / "config" / "crd" / CHANNEL).glob("*.yaml"))
    if not files:
        raise errors.DevError(f"{source} has no config/crd/{CHANNEL}/*.yaml: is it the {MODULE} module?")
    crds = 0
    parts = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            crds += 1
            annotations = doc["metadata"].get("annotations") or {}
            if (annotations.get(BUNDLE_VERSION), annotations.get(CHANNEL_ANNOTATION)) != (version, CHANNEL):
                raise errors.DevError(
                    f"{path.name}: CRD {doc['metadata']['name']} is bundle {annotations.get(BUNDLE_VERSION)} "
                    f"channel {annotations.get(CHANNEL_ANNOTATION)}, expected {version} {CHANNEL}"
                )
        parts.append(text if text.startswith("---") else "---\n" + text)
    if not crds:
        raise errors.DevError(f"{source}/config/crd/{CHANNEL} holds no CustomResourceDefinition")
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts)


def build() -> Path:
    """``standard-install.yaml`` of the pinned version in the cache (written once)."""
    out = manifest_path()
    with progress.step(f"Gateway API CRDs {VERSION} ({CHANNEL} channel)") as st:
        if out.is_file():
            st.cached = True
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        progress.write_text_atomic(out, manifest_text(module_dir()))
        progress.note(f"wrote {out}")
    return out
