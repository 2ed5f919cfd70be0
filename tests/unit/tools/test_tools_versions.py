"""The versions the tools name come from the go.mod files that pin them, and agree with the
inventories (a version that drifts would key a cache or tag an image wrongly)."""

import re

import pytest
import yaml

from meshops_dev import apps, cache, errors, gobuild, hosttools, istio, kubernetes, nodeimage


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("module x\n\nrequire (\n\tk8s.io/kubernetes v1.35.4 // indirect\n)\n", "v1.35.4"),
        ("module x\n\nrequire k8s.io/kubernetes v1.35.4 // indirect\n", "v1.35.4"),
        ("module x\n\nrequire (\n\tk8s.io/kubernetes-extra v9.9.9\n\tk8s.io/kubernetes v1.35.4\n)\n", "v1.35.4"),
    ],
)
def test_versions_are_read_from_the_wrapper_modules(monkeypatch, tmp_path, text, version):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "go.mod").write_text(text)
    monkeypatch.setattr(cache, "GO_DIR", tmp_path)
    assert gobuild.pinned("w", "k8s.io/kubernetes") == version


def test_a_module_the_wrapper_does_not_pin_is_an_error():
    with pytest.raises(errors.DevError, match=r"tools/go/k8s/go\.mod does not require example\.com/nothing"):
        gobuild.pinned("k8s", "example.com/nothing")


def test_the_pins_in_use():
    assert kubernetes.K8S_VERSION.startswith("v1.")
    assert kubernetes.ETCD_VERSION.removeprefix("v") + "-0" == kubernetes.ETCD_IMAGE_TAG
    assert re.fullmatch(r"v\d+\.\d+\.\d+", hosttools.KIND_VERSION)


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
