"""Every version the tools name agrees with the go.mod that pins it and with the inventories
(a version that drifts would key a cache by the wrong version)."""

import re

import pytest
import yaml

from meshops_dev import apps, cache, hosttools, istio, kubernetes, nodeimage


def pinned(wrapper, module):
    text = (cache.GO_DIR / wrapper / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", text, re.M)
    assert match, f"tools/go/{wrapper}/go.mod does not require {module}"
    return match.group(1)


@pytest.mark.parametrize(
    ("wrapper", "module", "version"),
    [
        ("k8s", "k8s.io/kubernetes", kubernetes.K8S_VERSION),
        ("etcd", "go.etcd.io/etcd/server/v3", kubernetes.ETCD_VERSION),
        ("hosttools", "sigs.k8s.io/kind", hosttools.KIND_VERSION),
        ("hosttools", "helm.sh/helm/v3", hosttools.HELM_VERSION),
        ("hosttools", "github.com/databus23/helm-diff/v3", hosttools.HELM_DIFF_VERSION),
        ("istio", "istio.io/istio", istio.ISTIO_MODULE_VERSION),
        ("apps", "github.com/mccutchen/go-httpbin/v2", apps.GO_HTTPBIN_VERSION),
        ("node/runtime", "github.com/containerd/containerd/v2", nodeimage.CONTAINERD_VERSION),
        ("node/runtime", "github.com/opencontainers/runc", nodeimage.RUNC_VERSION),
        ("node/runtime", "sigs.k8s.io/cri-tools", nodeimage.CRICTL_VERSION),
        ("node/runtime", "github.com/containernetworking/plugins", nodeimage.CNI_PLUGINS_VERSION),
        ("node/coredns", "github.com/coredns/coredns", nodeimage.COREDNS_VERSION),
    ],
)
def test_versions_match_the_wrapper_modules(wrapper, module, version):
    assert pinned(wrapper, module) == version


def test_istio_tag_names_the_pinned_commit():
    assert istio.ISTIO_MODULE_VERSION.endswith("-" + istio.ISTIO_COMMIT)
    assert istio.ISTIO_TAG.endswith("-" + istio.ISTIO_COMMIT)


def test_the_kind_inventory_uses_the_images_the_tools_build():
    group_vars = cache.REPO_ROOT / "inventories" / "kind" / "group_vars"
    all_vars = yaml.safe_load((group_vars / "all.yml").read_text())
    air_gapped = yaml.safe_load((group_vars / "air_gapped.yml").read_text())
    assert all_vars["meshops_istio_source_tag"] == istio.ISTIO_TAG
    assert air_gapped["control_plane_registry"] == istio.HUB
    assert air_gapped["httpbin_image"] == apps.GO_HTTPBIN_IMAGE
    assert air_gapped["verify_client"]["image"] == apps.CURL_IMAGE


def test_the_node_image_is_named_after_its_kubernetes_version():
    assert nodeimage.NODE_IMAGE.endswith(":" + kubernetes.K8S_VERSION)
    assert kubernetes.ETCD_IMAGE_TAG.startswith(kubernetes.ETCD_VERSION.lstrip("v") + "-")
