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


@pytest.mark.parametrize("minor", sorted(istio.VERSIONS))
def test_each_istio_version_is_named_after_its_minor_and_commit(minor):
    v = istio.VERSIONS[minor]
    assert v.minor == minor
    assert re.fullmatch(r"v0\.0\.0-[0-9]{14}-[0-9a-f]{12}", v.module_version)
    assert v.tag == f"{minor}-{v.commit}"
    assert re.fullmatch(rf"{re.escape(minor)}\.[0-9]+-{v.commit}", v.chart_version)
    assert v.pilot_image == f"{istio.HUB}/pilot:{v.tag}"
    assert v.proxy_image == f"{istio.HUB}/proxyv2:{v.tag}"
    assert v.bin_dir().name == v.charts_dir().parent.name == v.tag
    assert re.fullmatch(rf"{re.escape(minor)}\.[0-9]+", v.official)
    assert v.official_images() == [f"docker.io/istio/pilot:{v.official}", f"docker.io/istio/proxyv2:{v.official}"]


def test_the_two_istio_builds():
    """Today's release-1.31 build is the default and keeps its names; release-1.30 is the older
    minor (tools/go/istio-1.30), its chart stamped as a pre-release of 1.30.4."""
    new, old = istio.VERSIONS["1.31"], istio.VERSIONS["1.30"]
    assert istio.DEFAULT is new
    assert (new.module_version, new.tag, new.chart_version) == ("v0.0.0-20260827124520-eed52ebb66ad", "1.31-eed52ebb66ad", "1.31.0-eed52ebb66ad")
    assert (new.tag, new.chart_version, new.pilot_image) == (istio.ISTIO_TAG, istio.CHART_VERSION, istio.PILOT_IMAGE)
    assert (old.module_version, old.tag, old.chart_version) == ("v0.0.0-20260826214018-9739e10eb9d7", "1.30-9739e10eb9d7", "1.30.4-9739e10eb9d7")
    assert (new.wrapper, old.wrapper) == ("istio", "istio-1.30")
    assert [v.minor for v in istio.VERSIONS.values()] == ["1.30", "1.31"]  # oldest first


def test_every_istio_version_has_its_own_images_binaries_and_charts():
    versions = list(istio.VERSIONS.values())
    for attr in ("tag", "pilot_image", "proxy_image", "wrapper"):
        assert len({getattr(v, attr) for v in versions}) == len(versions), attr
    assert len({v.bin_dir() for v in versions}) == len({v.charts_dir() for v in versions}) == len(versions)
    assert istio.image_refs() == [ref for v in versions for ref in (v.pilot_image, v.proxy_image)]
    assert istio.image_refs(["1.30"]) == [istio.VERSIONS["1.30"].pilot_image, istio.VERSIONS["1.30"].proxy_image]


def test_the_ldflags_stamp_the_version_built():
    for v in istio.VERSIONS.values():
        flags = istio.version_ldflags(v)
        assert f"istio.io/istio/pkg/version.buildVersion={v.tag}" in flags
        assert f"istio.io/istio/pkg/version.buildGitRevision={v.commit}" in flags


def test_an_istio_version_that_is_not_built_is_refused():
    with pytest.raises(errors.DevError, match=r"Istio 1\.29 is not built here: choose one of 1\.30, 1\.31"):
        istio.version("1.29")
    with pytest.raises(errors.DevError, match=r"Istio 1\.29"):
        istio.selected(["1.31", "1.29"])
    assert istio.version() is istio.DEFAULT


def test_the_kind_inventory_uses_the_images_the_tools_build():
    group_vars = cache.REPO_ROOT / "inventories" / "kind" / "group_vars"
    all_vars = yaml.safe_load((group_vars / "all.yml").read_text())
    air_gapped = yaml.safe_load((group_vars / "air_gapped.yml").read_text())
    assert air_gapped["meshops_istio_builds"] == {m: {"tag": v.tag, "version": v.chart_version} for m, v in istio.VERSIONS.items()}
    assert all_vars["meshops_istio_official_releases"] == {m: v.official for m, v in istio.VERSIONS.items()}
    assert all_vars["meshops_istio_minor"] == istio.DEFAULT_MINOR
    assert air_gapped["control_plane_registry"] == istio.HUB
    assert air_gapped["httpbin_image"] == apps.GO_HTTPBIN_IMAGE
    assert air_gapped["verify_client"]["image"] == apps.CURL_IMAGE


def test_the_node_image_is_named_after_its_kubernetes_version():
    assert nodeimage.NODE_IMAGE.endswith(":" + kubernetes.K8S_VERSION)
    assert kubernetes.ETCD_IMAGE_TAG.startswith(kubernetes.ETCD_VERSION.lstrip("v") + "-")
