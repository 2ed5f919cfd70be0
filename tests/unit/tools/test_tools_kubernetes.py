"""Kubernetes binaries: version stamps and the one go build for all of them."""

import pytest

from meshops_dev import gobuild, kubernetes


def test_version_ldflags_stamp_both_version_packages():
    flags = kubernetes.version_ldflags("v1.35.4", "2026-04-15T18:01:22Z")
    assert flags.startswith("-s -w ")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.35.4" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=35" in flags
        assert f"-X {pkg}.gitTreeState=clean" in flags
        assert f"-X {pkg}.buildDate=2026-04-15T18:01:22Z" in flags


@pytest.mark.parametrize("version", ["1.35.4", "v1", "latest", ""])
def test_version_ldflags_refuse_a_non_version(version):
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        kubernetes.version_ldflags(version)


@pytest.mark.parametrize(("images", "expected"), [("source", kubernetes.ALL_BINARIES), ("official", ("kubectl",))])
def test_host_tools_build_every_binary_when_the_node_is_built_here(monkeypatch, images, expected):
    monkeypatch.setenv("MESHOPS_IMAGES", images)
    assert kubernetes.host_binaries() == expected


def test_all_binaries_are_built_in_one_invocation(monkeypatch):
    calls = []
    monkeypatch.setattr(gobuild, "build", lambda *args, **kwargs: calls.append((args, kwargs)) or {})
    kubernetes.build()
    (module, packages, out), kwargs = calls[0]
    assert len(calls) == 1
    assert module == "k8s"
    assert packages == [f"k8s.io/kubernetes/cmd/{n}" for n in kubernetes.ALL_BINARIES]
    assert out == f"k8s/{kubernetes.K8S_VERSION}"
    assert kwargs["ldflags"] == kubernetes.version_ldflags()
    assert "kubectl" in kwargs["desc"]


def test_an_unknown_binary_is_refused_before_building():
    with pytest.raises(ValueError, match="kube-dns"):
        kubernetes.build(("kubectl", "kube-dns"))


def test_one_build_for_host_kubectl_and_the_node():
    assert "kubectl" in kubernetes.NODE_BINARIES
    assert set(kubernetes.ALL_BINARIES) == set(kubernetes.NODE_BINARIES) | set(kubernetes.IMAGE_BINARIES)
