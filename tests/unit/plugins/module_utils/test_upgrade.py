"""Istio's skew rules, revision names and what keeps a revision in use."""

import pytest

from ansible_collections.meshops.istio.plugins.module_utils.models import upgrade


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1.31.0", (1, 31, 0)), ("1.31.0-eed52ebb66ad", (1, 31, 0)), ("1.30-9739e10eb9d7", (1, 30, None)), ("v1.29.2", (1, 29, 2)), ("latest", None)],
)
def test_versions(text, parsed):
    assert upgrade.parse_version(text) == parsed


def test_revision_names():
    assert upgrade.revision_name("1.31.0-eed52ebb66ad") == "1-31-0"
    assert upgrade.revision_name("1.30.4") == "1-30-4"
    assert upgrade.revision_name("1.30-9739e10eb9d7") == "1-30-0"


@pytest.mark.parametrize(
    ("strategy", "control_plane", "target", "proxies", "problem"),
    [
        ("InPlace", "1.29.3", "1.31.0", {}, "an in-place upgrade goes one minor version at a time: istiod runs 1.29, 1.31 is wanted; upgrade to 1.30 first"),
        ("RevisionBased", "1.28.0", "1.31.0", {}, "a revision-based upgrade may skip one minor version at most: istiod runs 1.28, 1.31 is wanted"),
        ("InPlace", "1.30.4", "1.31.0", {"1.32-abc": 2}, "2 proxies run 1.32-abc, newer than the wanted control plane 1.31"),
        ("InPlace", "1.30.4", "1.31.0", {"1.29.1": 1}, "1 proxy run 1.29.1, more than one minor version behind 1.31: restart them onto 1.30 first"),
        ("InPlace", "1.31.0", "1.29.0", {}, "a downgrade goes one minor version at a time: istiod runs 1.31, 1.29 is wanted"),
    ],
)
def test_skew_rules_refuse(strategy, control_plane, target, proxies, problem):
    found = upgrade.skew_problems(strategy, control_plane, target, proxies)
    assert any(p.startswith(problem) for p in found), found


@pytest.mark.parametrize(
    ("strategy", "control_plane", "target", "proxies"),
    [
        ("InPlace", "1.30.4", "1.31.0", {"1.30-9739e10eb9d7": 4}),
        ("RevisionBased", "1.29.0", "1.31.0", {"1.29.0": 3}),  # a canary may skip one minor; proxies move with their tag
        ("InPlace", None, "1.31.0", {}),  # a fresh cluster
    ],
)
def test_skew_rules_allow(strategy, control_plane, target, proxies):
    assert upgrade.skew_problems(strategy, control_plane, target, proxies) == []


def test_what_keeps_a_revision_in_use():
    tags = {"prod-stable": "1-30-4", "prod-canary": "1-31-0"}
    namespaces = [("shop", {"istio.io/rev": "prod-stable"}), ("legacy", {"istio-injection": "enabled"}), ("free", {})]
    pods = [
        ("shop/web-1", "Running", {"istio.io/rev": "1-30-4"}, {}),
        ("free/job-1", "Succeeded", {"istio.io/rev": "1-29-0"}, {}),
        ("free/web-2", "Running", {}, {"istio.io/rev": "1-29-0"}),
    ]
    assert upgrade.revision_in_use("1-30-4", tags, "1-30-4", namespaces, pods) == [
        "revision tag prod-stable points at it",
        "it is the default revision (istiod-default-validator)",
        "namespace shop selects prod-stable",
        "pod shop/web-1 runs a proxy of it",
    ]
    assert upgrade.revision_in_use("", tags, "1-30-4", namespaces, pods) == ["namespace legacy selects default"]
    assert upgrade.revision_in_use("1-29-0", tags, "1-30-4", namespaces, pods) == ["pod free/web-2 runs a proxy of it"]
    assert upgrade.revision_in_use("1-28-0", tags, "1-30-4", namespaces, pods, [("istio-ingressgateway", "1-28-0")]) == [
        "gateway release istio-ingressgateway selects 1-28-0"
    ]
