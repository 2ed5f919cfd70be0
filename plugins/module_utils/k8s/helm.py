# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helm releases as the cluster stores them, and whether one is already what the play asks for.

Helm 3 keeps every revision of a release in a Secret of type ``helm.sh/release.v1`` (labels
``owner=helm``, ``name=<release>``, ``version=<revision>``, ``status``) whose ``release`` field is
base64 of gzip of the release JSON: chart metadata, the user-supplied values (``config``), the
rendered ``manifest`` and ``info.status``. ``state()`` reads the newest revision and compares it
with the wanted chart version and values, then checks that every object of its manifest still
exists (workloads with the replicas the chart gives them), so a rerun skips ``helm upgrade``
only when the release, its values and its objects are all as wanted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import hashlib
import json
import os
import re

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import WORKLOAD_KINDS, covers, rollout_state

try:
    import yaml

    HAS_YAML = True
    # libyaml's parser: a release manifest with Istio's CRDs is megabytes of YAML
    _LOADER = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False

RELEASE_SECRET_TYPE = "helm.sh/release.v1"
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
# Compared beyond existence: what a hand edit most often changes, and what a chart sets.
_COMPARED_KINDS = (*WORKLOAD_KINDS, "Service", "ConfigMap", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "PodDisruptionBudget")


def decode_release(data):
    """The release JSON out of the Secret's ``release`` field (base64 as read from the API)."""
    raw = base64.b64decode(data)
    raw = base64.b64decode(raw)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def values_digest(values):
    return hashlib.sha256(json.dumps(values or {}, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")).hexdigest()[:16]


def chart_version_of(path):
    """``version`` of a local chart directory's Chart.yaml."""
    with open(os.path.join(path, "Chart.yaml")) as handle:
        return str((yaml.safe_load(handle) or {}).get("version"))


_DOCUMENT = re.compile(r"^---[^\n]*$", re.M)
_CRD_KIND = re.compile(r"^kind:\s*CustomResourceDefinition\s*$", re.M)
_METADATA_NAME = re.compile(r"^metadata:[ \t]*\n(?:[ \t]+.*\n)*?  name:[ \t]*['\"]?([^'\"\s]+)", re.M)


def manifest_objects(manifest, namespace):
    """The objects of a release manifest (namespace filled in for namespaced ones).

    CustomResourceDefinitions (megabytes of schema in Istio's base chart) are not parsed: only
    their name is read, which is all the drift check needs.
    """
    objects = []
    for text in _DOCUMENT.split(manifest or ""):
        if _CRD_KIND.search(text):
            match = _METADATA_NAME.search(text)
            if match:
                objects.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": match.group(1)}})
                continue
        doc = yaml.load(text, Loader=_LOADER)
        if isinstance(doc, dict) and doc.get("kind"):
            objects.append(doc)
    for obj in objects:
        obj.setdefault("metadata", {})
        obj["metadata"].setdefault("_release_namespace", namespace)
    return objects


def latest_release(objects_api, name, namespace):
    """(release JSON, secret name) of the newest revision of a release, or (None, None)."""
    secrets = objects_api.list("v1", "Secret", "owner=helm,name=%s" % name, namespace=namespace)
    secrets = [s for s in secrets if s.get("type") == RELEASE_SECRET_TYPE]
    if not secrets:
        return None, None
    newest = max(secrets, key=lambda s: int(((s.get("metadata") or {}).get("labels") or {}).get("version") or 0))
    return decode_release((newest.get("data") or {}).get("release")), newest["metadata"]["name"]


def _normalize(value):
    """Values as Helm stores them (JSON round trip: tuples become lists, keys strings)."""
    return json.loads(json.dumps(value or {}, default=str))


def _crd_names(objects_api):
    """Names of the cluster's CRDs, read once per module run (one LIST, JSON)."""
    if not hasattr(objects_api, "_meshops_crd_names"):
        objects_api._meshops_crd_names = set(vocab.name_of(c) for c in objects_api.list("apiextensions.k8s.io/v1", "CustomResourceDefinition", None))
    return objects_api._meshops_crd_names


def object_drift(objects_api, obj):
    """What is wrong with one object of a release manifest on the cluster ('' when fine)."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "CustomResourceDefinition":
        return ("" if meta.get("name") in _crd_names(objects_api) else "CustomResourceDefinition %s is missing" % meta.get("name")), None
    resource = objects_api.resource(obj.get("apiVersion"), obj.get("kind"))
    if resource is None:
        return "%s %s: its kind is not served" % (obj.get("kind"), meta.get("name")), None
    namespace = meta.get("namespace") or meta.get("_release_namespace") if resource.namespaced else None
    oid = objects_api.oid(obj.get("kind"), namespace, meta.get("name"))
    live = objects_api.read(resource, meta.get("name"), namespace)
    if live is None:
        return "%s is missing" % oid, None
    if obj.get("kind") in _COMPARED_KINDS:
        for key, value in obj.items():
            if key in ("apiVersion", "kind", "metadata", "status"):
                continue
            if not covers(live.get(key), value):
                return "%s: its %s differs from the chart" % (oid, key), live
    return "", live


def state(objects_api, name, namespace, chart_version=None, values=None, check_objects=True):
    """Where a release stands compared with what the play asks for."""
    release, secret = latest_release(objects_api, name, namespace)
    result = {
        "name": name,
        "namespace": namespace,
        "installed": release is not None,
        "status": None,
        "revision": None,
        "chart": None,
        "chart_version": None,
        "app_version": None,
        "values_digest": None,
        "wanted_values_digest": values_digest(_normalize(values)) if values is not None else None,
        "pending": False,
        "reasons": [],
        "workloads": [],
        "ready": False,
        "secret": secret,
        # the newest revision's record, as an object (to drop it when an interrupted run left it pending)
        "record": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": namespace}} if secret else None,
    }
    if release is None:
        result["reasons"].append("release %s/%s is not installed" % (namespace, name))
        result["up_to_date"] = False
        result["record_up_to_date"] = False
        return result
    info = release.get("info") or {}
    metadata = (release.get("chart") or {}).get("metadata") or {}
    config = _normalize(release.get("config"))
    result.update(
        status=info.get("status"),
        revision=release.get("version"),
        chart=metadata.get("name"),
        chart_version=metadata.get("version"),
        app_version=metadata.get("appVersion"),
        values_digest=values_digest(config),
    )
    if result["status"] in PENDING:
        result["pending"] = True
    if result["status"] != "deployed":
        result["reasons"].append("release %s/%s is %s (revision %s)" % (namespace, name, result["status"], result["revision"]))
    if chart_version is not None and str(chart_version) != str(result["chart_version"]):
        result["reasons"].append("chart %s %s is installed, %s is wanted" % (result["chart"], result["chart_version"], chart_version))
    if values is not None and config != _normalize(values):
        changed = sorted(set(_diff_keys(config, _normalize(values))))
        result["reasons"].append("values differ (%s)" % ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else ""))
    result["record_up_to_date"] = not result["reasons"]
    if check_objects:
        for obj in manifest_objects(release.get("manifest"), namespace):
            problem, live = object_drift(objects_api, obj)
            if problem:
                result["reasons"].append(problem)
            if live is not None and obj.get("kind") in WORKLOAD_KINDS:
                done, why = rollout_state(live)
                result["workloads"].append({"kind": obj["kind"], "name": obj["metadata"]["name"], "ready": done, "state": why})
    result["up_to_date"] = not result["reasons"]
    result["ready"] = bool(result["workloads"]) and all(w["ready"] for w in result["workloads"])
    return result


def _diff_keys(a, b, prefix=""):
    """Dotted keys whose values differ between two mappings."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return [prefix or "."] if a != b else []
    keys = []
    for key in set(a) | set(b):
        path = "%s.%s" % (prefix, key) if prefix else str(key)
        if key not in a or key not in b:
            keys.append(path)
        else:
            keys.extend(_diff_keys(a[key], b[key], path))
    return keys
