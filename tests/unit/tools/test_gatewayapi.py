"""The Gateway API CRDs of the air-gapped mode (tools/meshops_dev/gatewayapi.py): the release the
pinned Istio build requires, the one the control_plane role asks for, the standard channel's
files of that module checked before they are written."""

import pathlib

import pytest
import yaml

from meshops_dev import errors, gatewayapi
from tests.helpers import REPO


def role_default(name):
    return yaml.safe_load((REPO / "roles" / "control_plane" / "defaults" / "main.yml").read_text())[name]


def test_the_role_asks_for_the_release_istio_is_built_with():
    assert role_default("control_plane_gateway_api_version") == gatewayapi.VERSION
    # the role's argument spec documents the same default
    spec = yaml.safe_load((REPO / "roles" / "control_plane" / "meta" / "argument_specs.yml").read_text())
    assert spec["argument_specs"]["main"]["options"]["control_plane_gateway_api_version"]["default"] == gatewayapi.VERSION


def test_the_kind_inventory_names_the_file_the_tools_write():
    air_gapped = yaml.safe_load((REPO / "inventories" / "kind" / "group_vars" / "air_gapped.yml").read_text())
    assert air_gapped["control_plane_gateway_api_crds_file"].endswith("/gateway-api/{{ control_plane_gateway_api_version }}/standard-install.yaml")
    assert gatewayapi.manifest_path().relative_to(gatewayapi.cache.cache_dir()) == pathlib.Path("gateway-api", gatewayapi.VERSION, "standard-install.yaml")


def test_the_standard_channel_of_the_pinned_module():
    docs = [d for d in yaml.safe_load_all(gatewayapi.manifest_text(gatewayapi.module_dir())) if d]
    crds = {d["spec"]["names"]["kind"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant"} <= crds
    assert all(d["metadata"]["annotations"][gatewayapi.BUNDLE_VERSION] == gatewayapi.VERSION for d in docs if d["kind"] == "CustomResourceDefinition")


def write_crd(directory, name, bundle, channel="standard"):
    directory.mkdir(parents=True, exist_ok=True)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "annotations": {gatewayapi.BUNDLE_VERSION: bundle, gatewayapi.CHANNEL_ANNOTATION: channel}},
    }
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(crd))


def test_a_module_of_another_release_is_refused(tmp_path):
    standard = tmp_path / "config" / "crd" / "standard"
    write_crd(standard, "gateways.gateway.networking.k8s.io", gatewayapi.VERSION)
    write_crd(standard, "httproutes.gateway.networking.k8s.io", "v0.0.1")
    with pytest.raises(errors.DevError, match=r"httproutes.gateway.networking.k8s.io is bundle v0.0.1 channel standard"):
        gatewayapi.manifest_text(tmp_path)


def test_a_directory_without_the_channel_is_refused(tmp_path):
    with pytest.raises(errors.DevError, match="has no config/crd/standard"):
        gatewayapi.manifest_text(tmp_path)


def test_the_files_are_joined_as_one_manifest(tmp_path):
    standard = tmp_path / "config" / "crd" / "standard"
    write_crd(standard, "a.gateway.networking.k8s.io", gatewayapi.VERSION)
    write_crd(standard, "b.gateway.networking.k8s.io", gatewayapi.VERSION)
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(gatewayapi.manifest_text(tmp_path)) if d]
    assert names == ["a.gateway.networking.k8s.io", "b.gateway.networking.k8s.io"]
