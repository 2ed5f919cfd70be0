"""Which proxies a tag move, a relabel or an in-place upgrade leaves behind (k8s/revisions.py)."""

from ansible_collections.meshops.istio.plugins.module_utils.k8s import revisions
from ansible_collections.meshops.istio.plugins.module_utils.models import gateways, upgrade


def proxy(namespace, name, revision, version, labels=None, ready=True):
    return {"namespace": namespace, "name": name, "revision": revision, "version": version, "labels": labels or {}, "ready": ready}


def state(**overrides):
    base = {
        "revisions": {"1-30-4": {"revision": "1-30-4", "version": "1.30.4"}, "1-31-0": {"revision": "1-31-0", "version": "1.31.0"}},
        "tags": {"prod-stable": "1-30-4", "prod-canary": "1-31-0"},
        "default_revision": "1-30-4",
        "namespaces": [
            {"name": "shop", "labels": {"istio.io/rev": "prod-stable"}},
            {"name": "canary", "labels": {"istio.io/rev": "prod-canary"}},
            {"name": "legacy", "labels": {"istio-injection": "enabled", "istio.io/rev": "prod-canary"}},
        ],
        "proxies": [],
    }
    base.update(overrides)
    return base


def names(found):
    return sorted(f"{p['namespace']}/{p['name']}" for p in found)


def test_a_proxy_on_the_revision_its_tag_points_at_is_not_stale():
    found = revisions.stale_proxies(state(proxies=[proxy("shop", "a", "1-30-4", "1.30.4"), proxy("canary", "b", "1-31-0", "1.31.0")]))
    assert found == []


def test_moving_a_tag_makes_the_proxies_that_select_it_stale():
    current = state(proxies=[proxy("shop", "a", "1-30-4", "1.30.4"), proxy("canary", "b", "1-31-0", "1.31.0")])
    found = revisions.stale_proxies(current, tags={"prod-stable": "1-31-0"})
    assert names(found) == ["shop/a"]
    assert found[0]["wanted_revision"] == "1-31-0" and found[0]["wanted_version"] == "1.31.0"
    assert "injected by revision 1-30-4, prod-stable selects 1-31-0" in found[0]["why"]


def test_istio_injection_wins_over_istio_io_rev_on_a_namespace():
    # legacy carries both labels: Istio's webhooks inject it with the default revision's injector
    found = revisions.stale_proxies(state(proxies=[proxy("legacy", "c", "1-31-0", "1.31.0")]))
    assert names(found) == ["legacy/c"] and found[0]["wanted_revision"] == "1-30-4"


def test_a_pod_label_selects_in_a_namespace_without_one():
    gateway = proxy("istio-system", "istio-ingressgateway-1", "1-30-4", "1.30.4", labels={"istio.io/rev": "prod-canary"})
    found = revisions.stale_proxies(state(proxies=[gateway]))
    assert names(found) == ["istio-system/istio-ingressgateway-1"] and found[0]["wanted_revision"] == "1-31-0"


def test_an_in_place_upgrade_leaves_old_versions_behind():
    current = state(
        revisions={"default": {"revision": "default", "version": "1.31.0"}},
        tags={},
        default_revision="default",
        namespaces=[{"name": "shop", "labels": {"istio-injection": "enabled"}}],
        proxies=[proxy("shop", "a", "default", "1.30.4"), proxy("shop", "b", "default", "1.31.0")],
    )
    found = revisions.stale_proxies(current)
    assert names(found) == ["shop/a"] and "proxy version 1.30.4, revision default runs 1.31.0" in found[0]["why"]


def test_a_selection_of_a_revision_that_is_not_installed_is_reported():
    found = revisions.stale_proxies(state(proxies=[proxy("shop", "a", "1-30-4", "1.30.4")]), tags={"prod-stable": "1-32-0"})
    assert "revision 1-32-0 is not installed" in found[0]["why"]


def test_planned_namespace_labels_count_as_set():
    found = revisions.stale_proxies(state(proxies=[proxy("shop", "a", "1-30-4", "1.30.4")]), labels={"shop": "prod-canary"})
    assert names(found) == ["shop/a"]


def test_pods_that_select_nothing_are_left_alone():
    assert revisions.stale_proxies(state(proxies=[proxy("other", "x", "1-29-0", "1.29.0")])) == []


def test_only_the_namespaces_asked_for():
    current = state(proxies=[proxy("shop", "a", "1-30-4", "1.30.4")])
    assert revisions.stale_proxies(current, namespaces=["canary"], tags={"prod-stable": "1-31-0"}) == []


def test_namespaces_to_relabel():
    labelled = [
        {"name": "shop", "labels": {"istio.io/rev": "prod-canary"}},
        {"name": "legacy", "labels": {"istio-injection": "enabled", "istio.io/rev": "prod-canary"}},
        {"name": "other", "labels": {"istio.io/rev": "prod-stable"}},
    ]
    assert upgrade.namespaces_to_relabel(labelled, ["shop", "legacy", "other", "fresh"], "prod-canary") == ["legacy", "other", "fresh"]


def test_tag_objects_are_owned_by_the_collection_without_a_ca_bundle():
    rendered = [
        {
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "istio-revision-tag-prod-stable", "labels": {"istio.io/tag": "prod-stable"}},
            "webhooks": [{"name": "a", "clientConfig": {"caBundle": "", "service": {"name": "istiod-1-31-0"}}}],
        },
        {"kind": "Service", "metadata": {"name": "istiod-revision-tag-prod-stable"}},
        {"kind": "ConfigMap", "metadata": {"name": "ignored"}},
    ]
    objects = revisions.tag_objects(rendered)
    assert [o["kind"] for o in objects] == ["MutatingWebhookConfiguration", "Service"]
    assert objects[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshops.istio"
    assert "caBundle" not in objects[0]["webhooks"][0]["clientConfig"]
    assert rendered[0]["webhooks"][0]["clientConfig"]["caBundle"] == ""  # the input is not changed


def test_gateway_revisions_follow_the_canary_list():
    listed = [{"name": "istio-ingressgateway"}, {"name": "istio-egressgateway"}, {"name": "edge", "revision": "edge-rev"}]
    canary = {"names": ["istio-egressgateway"], "revision": "prod-canary"}
    releases = gateways.releases(listed, "istio-system", "prod-stable", canary=canary)
    assert [r["values"]["revision"] for r in releases] == ["prod-stable", "prod-canary", "edge-rev"]
