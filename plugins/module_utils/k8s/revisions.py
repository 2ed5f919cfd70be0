# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The control plane revisions of a cluster, as the Kubernetes API shows them.

``read(objects)`` returns what runs: each istiod revision (its Deployment, version and
readiness), the revision tags (MutatingWebhookConfigurations labelled ``istio.io/tag``), the
default revision (the ``istiod-default-validator`` webhook's label), the namespaces that select
a revision or a tag, and every proxy (pods with an Istio proxy: their injected revision and
version). ``problems(state)`` finds what breaks a mesh during and after upgrades: a webhook
pointing at an istiod Service that no longer exists (every Istio write or every injection
fails: istio/istio#28880, #60596), and injectors that overlap (IST0139, istio/istio#43932).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.k8s import pods as k8s_pods
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import rollout_state
from ansible_collections.meshops.istio.plugins.module_utils.models import upgrade

ADMISSION = "admissionregistration.k8s.io/v1"
DEFAULT_VALIDATOR = "istiod-default-validator"
REVLESS_INJECTOR = "istio-sidecar-injector"


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def read(objects, namespace):
    """The revision state of the cluster (control plane in ``namespace``)."""
    revisions = {}
    for deployment in objects.list("apps/v1", "Deployment", "app=istiod", namespace=namespace):
        revision = _labels(deployment).get(vocab.LABEL_REV) or vocab.DEFAULT_REVISION
        containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        image = next((c.get("image") for c in containers if c.get("name") == "discovery"), None) or (containers[0].get("image") if containers else None)
        done, why = rollout_state(deployment)
        revisions[revision] = {
            "revision": revision,
            "deployment": vocab.name_of(deployment),
            "image": image,
            "version": k8s_pods.image_tag(image),
            "ready": done,
            "state": why,
        }
    mutating = objects.list(ADMISSION, "MutatingWebhookConfiguration", None)
    validating = objects.list(ADMISSION, "ValidatingWebhookConfiguration", None)
    tags = {}
    tag_objects = []
    for config in mutating:
        tag = _labels(config).get(vocab.LABEL_TAG)
        if tag:
            tags[tag] = _labels(config).get(vocab.LABEL_REV) or vocab.DEFAULT_REVISION
            tag_objects.append({"apiVersion": ADMISSION, "kind": "MutatingWebhookConfiguration", "metadata": {"name": vocab.name_of(config)}})
    for service in objects.list("v1", "Service", vocab.LABEL_TAG, namespace=namespace):
        tag_objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": vocab.name_of(service), "namespace": namespace}})
    default_validator = next((c for c in validating if vocab.name_of(c) == DEFAULT_VALIDATOR), None)
    namespaces = []
    all_namespaces = objects.list("v1", "Namespace", None)
    for item in all_namespaces:
        labels = _labels(item)
        if vocab.LABEL_REV in labels or vocab.LABEL_INJECTION in labels:
            namespaces.append({"name": vocab.name_of(item), "labels": labels})
    proxies = []
    for pod in k8s_pods.live_pods(objects.list("v1", "Pod", None)):
        info = k8s_pods.describe(pod)
        if info["sidecar"]:
            info["annotations"] = (pod.get("metadata") or {}).get("annotations") or {}
            info["labels"] = _labels(pod)
            info["phase"] = (pod.get("status") or {}).get("phase")
            proxies.append(info)
    services = set()
    for config in mutating + validating:
        for hook in config.get("webhooks") or []:
            service = (hook.get("clientConfig") or {}).get("service")
            if service:
                services.add((service.get("namespace"), service.get("name")))
    existing = set()
    for ns, name in services:
        if objects.read(objects.resource("v1", "Service"), name, ns) is not None:
            existing.add((ns, name))
    return {
        "namespace": namespace,
        "revisions": revisions,
        "tags": tags,
        "tag_objects": tag_objects,
        "default_revision": _labels(default_validator).get(vocab.LABEL_REV) if default_validator else None,
        "namespaces": namespaces,
        "namespace_names": sorted(vocab.name_of(item) for item in all_namespaces),
        "proxies": proxies,
        "webhooks": _webhooks(mutating, validating, existing),
    }


def _webhooks(mutating, validating, existing):
    out = []
    for kind, configs in (("MutatingWebhookConfiguration", mutating), ("ValidatingWebhookConfiguration", validating)):
        for config in configs:
            name = vocab.name_of(config)
            labels = _labels(config)
            if not (name == DEFAULT_VALIDATOR or labels.get("app") in ("sidecar-injector", "istiod") or vocab.LABEL_REV in labels):
                continue
            for hook in config.get("webhooks") or []:
                service = (hook.get("clientConfig") or {}).get("service") or {}
                out.append(
                    {
                        "kind": kind,
                        "name": name,
                        "webhook": hook.get("name"),
                        "revision": labels.get(vocab.LABEL_REV),
                        "tag": labels.get(vocab.LABEL_TAG),
                        "service": "%s/%s" % (service.get("namespace"), service.get("name")) if service else None,
                        "service_exists": (service.get("namespace"), service.get("name")) in existing if service else True,
                    }
                )
    return out


def proxy_versions(state, namespaces=None):
    """``{version: count}`` of the proxies (of some namespaces)."""
    counts = {}
    for proxy in state["proxies"]:
        if namespaces is None or proxy["namespace"] in namespaces:
            counts[proxy["version"] or "?"] = counts.get(proxy["version"] or "?", 0) + 1
    return counts


def control_plane_version(state, revision=None):
    """The version istiod runs (of one revision, else the default revision's, else any)."""
    revisions = state["revisions"]
    chosen = revisions.get(revision) if revision else revisions.get(state["default_revision"] or vocab.DEFAULT_REVISION)
    if chosen is None and revisions:
        chosen = sorted(revisions.values(), key=lambda r: upgrade.parse_version(r["version"]) or (0, 0, 0))[-1]
    return chosen["version"] if chosen else None


def problems(state):
    """What is broken now: webhooks without their Service, overlapping injectors."""
    found = []
    for hook in state["webhooks"]:
        if not hook["service_exists"]:
            effect = "every Istio object write fails" if hook["kind"].startswith("Validating") else "pods it selects get no sidecar, or fail to start"
            found.append(
                "%s %s (%s) calls Service %s, which does not exist: %s; point it at an installed revision "
                "(control_plane_default_revision / a revision tag) or delete it" % (hook["kind"], hook["name"], hook["webhook"], hook["service"], effect)
            )
    revisionless = any(h["name"] == REVLESS_INJECTOR for h in state["webhooks"])
    if revisionless and "default" in state["tags"]:
        found.append(
            "IST0139: the revision-less injector %s and the revision tag 'default' both inject namespaces labelled istio-injection=enabled "
            "(pods would be injected twice); remove the tag or the default revision's injector" % REVLESS_INJECTOR
        )
    for tag in state["tags"]:
        if tag in state["revisions"]:
            found.append("IST0139: revision tag %s has the name of a revision: both select namespaces labelled istio.io/rev=%s" % (tag, tag))
    return found


def references(state, revision, gateway_revisions=()):
    """What still references a revision (see models.upgrade.revision_in_use)."""
    namespaces = [(n["name"], n["labels"]) for n in state["namespaces"]]
    pods = [("%s/%s" % (p["namespace"], p["name"]), p["phase"], p["annotations"], p["labels"]) for p in state["proxies"]]
    return upgrade.revision_in_use(revision, state["tags"], state["default_revision"], namespaces, pods, gateway_revisions)


def summary_options(namespace_default=None):
    """The argument spec of what summary() reads (revision_status's options; release_state's
    ``revisions`` option): the control plane namespace, the upgrade to check, the gateway releases."""
    namespace = dict(type="str", default=namespace_default) if namespace_default else dict(type="str", required=True)
    return dict(
        namespace=namespace,
        target=dict(
            type="dict",
            options=dict(version=dict(type="str", required=True), strategy=dict(type="str", choices=list(upgrade.STRATEGIES), default="InPlace")),
        ),
        gateway_releases=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(name=dict(type="str", required=True), revision=dict(type="str", default="")),
        ),
    )


def summary(objects, namespace, target=None, gateway_releases=()):
    """What the revision_status module returns: the state, what is broken, the skew check."""
    state = read(objects, namespace)
    gateways = [(g["name"], g.get("revision") or vocab.DEFAULT_REVISION) for g in gateway_releases]
    revisions = {}
    for name, found in state["revisions"].items():
        revisions[name] = dict(found, references=references(state, "" if name == vocab.DEFAULT_REVISION else name, gateways))
    result = {
        "revisions": revisions,
        "tags": state["tags"],
        "tag_objects": state["tag_objects"],
        "default_revision": state["default_revision"],
        "namespaces": state["namespaces"],
        "namespace_names": state["namespace_names"],
        "proxy_versions": proxy_versions(state),
        "control_plane_version": control_plane_version(state),
        "problems": problems(state),
        "skew_problems": [],
        "unused_revisions": sorted(name for name, info in revisions.items() if not info["references"]),
        "stale_proxies": stale_proxies(state),
        "proxies_not_ready": sorted("%s/%s" % (p["namespace"], p["name"]) for p in state["proxies"] if not p["ready"]),
    }
    if target:
        result["skew_problems"] = upgrade.skew_problems(target["strategy"], result["control_plane_version"], target["version"], result["proxy_versions"])
    return result


def tag_objects(documents):
    """The revision tag objects of the istiod chart (templates/revision-tags-*.yaml), as the
    collection applies them: labelled as its own, without the CA bundle that istiod patches in
    (applying an empty one would take the field from istiod and break injection until it
    patches again)."""
    out = []
    for doc in documents:
        if doc.get("kind") not in ("MutatingWebhookConfiguration", "Service"):
            continue
        obj = dict(doc)
        meta = dict(obj.get("metadata") or {})
        labels = dict(meta.get("labels") or {})
        labels[vocab.LABEL_MANAGED_BY] = vocab.MANAGED_BY
        meta["labels"] = labels
        obj["metadata"] = meta
        if obj["kind"] == "MutatingWebhookConfiguration":
            hooks = []
            for given in obj.get("webhooks") or []:
                hook = dict(given)
                config = dict(hook.get("clientConfig") or {})
                config.pop("caBundle", None)
                hook["clientConfig"] = config
                hooks.append(hook)
            obj["webhooks"] = hooks
        out.append(obj)
    return out


def selections(state, tags=None, namespaces=None):
    """How the injectors choose: ``{namespace: selected}`` from the namespace labels
    (``istio-injection=enabled`` wins over ``istio.io/rev``, as in Istio's webhooks), and the
    tag table; ``tags`` / ``namespaces`` (``{namespace: revision or tag}``) override what the
    cluster holds, for a plan."""
    selected = {}
    for item in state["namespaces"]:
        labels = item["labels"]
        if labels.get(vocab.LABEL_INJECTION) == "enabled":
            selected[item["name"]] = vocab.DEFAULT_REVISION
        elif labels.get(vocab.LABEL_REV):
            selected[item["name"]] = labels[vocab.LABEL_REV]
    selected.update(namespaces or {})
    table = dict(state["tags"])
    table.update(tags or {})
    return selected, table


def resolve(state, selected, tags):
    """The revision a namespace or pod selection (a revision, a tag or ``default``) injects with."""
    if selected in tags:
        return tags[selected]
    if selected == vocab.DEFAULT_REVISION and selected not in state["revisions"]:
        return state["default_revision"] or selected
    return selected


def wanted_proxy(state, proxy, selected, tags):
    """``(revision, version)`` a proxy should run, or None when nothing selects an injector for it."""
    choice = selected.get(proxy["namespace"])
    if choice is None:
        labels = proxy.get("labels") or {}
        if labels.get(vocab.LABEL_REV):
            choice = labels[vocab.LABEL_REV]
        elif labels.get("sidecar.istio.io/inject") == "true":
            choice = vocab.DEFAULT_REVISION
    if choice is None:
        return None
    revision = resolve(state, choice, tags)
    running = state["revisions"].get(revision)
    return revision, (running or {}).get("version")


def stale_proxies(state, namespaces=None, tags=None, labels=None):
    """The proxies not injected by the revision their namespace or pod label selects, or not at
    that revision's version: ``[{namespace, name, revision, version, wanted_revision,
    wanted_version, why}]``. ``namespaces`` limits the check; ``tags`` and ``labels`` are the
    planned tag table and namespace selections (what a step is about to set)."""
    selected, table = selections(state, tags, labels)
    out = []
    for proxy in state["proxies"]:
        if namespaces is not None and proxy["namespace"] not in namespaces:
            continue
        wanted = wanted_proxy(state, proxy, selected, table)
        if wanted is None:
            continue
        revision, version = wanted
        why = []
        if proxy["revision"] != revision:
            why.append("injected by revision %s, %s selects %s" % (proxy["revision"], selected.get(proxy["namespace"]) or "its pod label", revision))
        elif version and proxy["version"] != version:
            why.append("proxy version %s, revision %s runs %s" % (proxy["version"], revision, version))
        if revision not in state["revisions"]:
            why.append("revision %s is not installed" % revision)
        if why:
            out.append(
                {
                    "namespace": proxy["namespace"],
                    "name": proxy["name"],
                    "revision": proxy["revision"],
                    "version": proxy["version"],
                    "wanted_revision": revision,
                    "wanted_version": version,
                    "why": "; ".join(why),
                }
            )
    return out
