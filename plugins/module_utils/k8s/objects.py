# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A set of Kubernetes objects applied as one: read, dry-run all, then apply all.

``ObjectSet.present()`` reads every object, skips those the cluster already holds as given
(their ``meshops.istio/config-digest`` annotation matches the desired object and every field
the desired object sets has that value live), sends the others as server-side dry runs, and
applies them with server-side apply only when every dry run passed. What is unchanged costs
one GET; nothing is half-applied because of a rejected object. ``prune()`` deletes the objects
of a label selector that the set no longer contains; ``absent()`` deletes the set.

Changed means the cluster changed: an apply that leaves the resourceVersion as it was is not
a change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
import re
import time
from decimal import Decimal, InvalidOperation

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.k8s.client import (
    DynamicApiError,
    NotFoundError,
    ResourceNotFoundError,
    api_message,
    api_status,
)

ANNOTATION_DIGEST = "meshops.istio/config-digest"
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
# Fields other controllers own inside objects we give: never a reason to re-apply (istiod
# patches its webhooks' CA bundle, and their failurePolicy to Fail once it serves them).
_IGNORED_KEYS = ("caBundle", "failurePolicy")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# what wait_rollouts waits for: workloads rolled out, CRDs established
WAITED_KINDS = (*WORKLOAD_KINDS, "CustomResourceDefinition")
# Seconds between two reads while waiting for a rollout or a deletion (one GET per object).
POLL_INTERVAL = 0.5


class ObjectSetError(Exception):
    """The set cannot be applied; ``problems`` lists every reason, nothing was applied."""

    def __init__(self, message, problems=None, applied=None):
        self.problems = list(problems or [])
        self.applied = list(applied or [])
        super(ObjectSetError, self).__init__(message)


def digest(obj):
    """Digest of a desired object (without its own digest annotation)."""
    clean = copy.deepcopy(obj)
    annotations = (clean.get("metadata") or {}).get("annotations") or {}
    annotations.pop(ANNOTATION_DIGEST, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")).hexdigest()[:20]


def with_digest(obj):
    """The desired object carrying its digest annotation."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[ANNOTATION_DIGEST] = digest(obj)
    meta["annotations"] = annotations
    return out


_QUANTITY_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def quantity(value):
    """A Kubernetes quantity (``100m``, ``1Gi``, ``2``) as a Decimal, or None."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2) or ""]
    except InvalidOperation:
        return None


def _same_scalar(live, desired):
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if desired == live:
        return True
    # the API server stores quantities canonically (2000m -> 2, 1024Mi -> 1Gi)
    if isinstance(desired, (str, int, float)) and isinstance(live, (str, int, float)):
        a, b = quantity(desired), quantity(live)
        return a is not None and a == b
    return False


def _covers_key(live, key, value):
    if key not in live:
        # the API server omits empty values (env value "", a null list, an empty map)
        return value is None or value in ("", [], {})
    return covers(live[key], value)


def covers(live, desired):
    """Whether every field ``desired`` sets has the same value in ``live``."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(key in _IGNORED_KEYS or _covers_key(live, key, value) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(covers(live[i], item) for i, item in enumerate(desired))
    return _same_scalar(live, desired)


def in_sync(live, desired):
    """Whether the live object is the desired one as this collection applied it."""
    if live is None:
        return False
    meta = live.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    if (meta.get("annotations") or {}).get(ANNOTATION_DIGEST) != digest(desired):
        return False
    want = desired.get("metadata") or {}
    if not covers(meta.get("labels") or {}, want.get("labels") or {}):
        return False
    if not covers(meta.get("annotations") or {}, dict((k, v) for k, v in (want.get("annotations") or {}).items() if k != ANNOTATION_DIGEST)):
        return False
    return all(covers(live.get(key), value) for key, value in desired.items() if key not in ("apiVersion", "kind", "metadata", "status"))


def sanitize(obj):
    """An object without the fields the server maintains, for diffs and results."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in _VOLATILE_METADATA:
        meta.pop(key, None)
    out.pop("status", None)
    return out


def rollout_state(obj):
    """(done, why) for a Deployment/StatefulSet/DaemonSet as the API server reports it; for a
    CustomResourceDefinition, whether it is Established (its kind is served)."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind == "CustomResourceDefinition":
        established = [c for c in status.get("conditions") or [] if c.get("type") == "Established"]
        if established and established[0].get("status") == "True":
            return True, "established"
        return False, (established[0].get("message") if established else None) or "not established yet"
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not seen generation %s yet" % meta.get("generation")
    if kind == "DaemonSet":
        wanted = status.get("desiredNumberScheduled", 0)
        for key in ("updatedNumberScheduled", "numberAvailable"):
            if status.get(key, 0) < wanted:
                return False, "%s of %s pods %s" % (status.get(key, 0), wanted, "updated" if key.startswith("updated") else "available")
        return True, "%s pods available" % wanted
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0) if kind == "Deployment" else status.get("readyReplicas", 0)
    total = status.get("replicas", 0)
    if updated < wanted:
        return False, "%s of %s replicas updated" % (updated, wanted)
    if total > updated:
        return False, "%s old replica(s) still terminating" % (total - updated)
    if available < wanted:
        return False, "%s of %s replicas available" % (available, wanted)
    return True, "%s of %s replicas available" % (available, wanted)


class ObjectSet(object):
    """Apply, prune or delete a list of objects through one API client."""

    def __init__(self, client, field_manager=vocab.FIELD_MANAGER, check_mode=False, force=False, sleep=time.sleep, clock=time.monotonic, apply=True):
        self.client = client
        self.field_manager = field_manager
        self.check_mode = check_mode
        # apply=False: read, check and dry-run like a real run (missing namespaces and CRDs are
        # errors), but apply nothing: a plan, whose actions say what a run would do
        self.apply = apply
        self.force = force
        self.sleep = sleep
        self.clock = clock
        self._resources = {}
        self._namespaces = {}
        self.notes = []

    # -- reading -------------------------------------------------------------------------
    def resource(self, api_version, kind):
        key = (api_version, kind)
        if key not in self._resources:
            try:
                self._resources[key] = self.client.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                self._resources[key] = None
        return self._resources[key]

    def served(self, api_version, kind):
        """The resource of a kind, or None when no API serves it now.

        API discovery is cached between runs, so a CRD deleted since still resolves: for a
        custom kind, one list request (limit 1) proves it is served.
        """
        resource = self.resource(api_version, kind)
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        if resource is None or "." not in group or (group.endswith(".k8s.io") and group not in vocab.CRD_GROUPS):
            return resource  # built-in kinds are always served
        key = ("served", api_version, kind)
        if key not in self._resources:
            try:
                resource.get(limit=1)
                self._resources[key] = True
            except NotFoundError:
                self._resources[key] = False
        return resource if self._resources[key] else None

    def read(self, resource, name, namespace):
        try:
            return resource.get(name=name, namespace=namespace if resource.namespaced else None).to_dict()
        except NotFoundError:
            return None

    def namespace_exists(self, name):
        if name not in self._namespaces:
            resource = self.resource("v1", "Namespace")
            self._namespaces[name] = self.read(resource, name, None) is not None
        return self._namespaces[name]

    def list(self, api_version, kind, selector, namespace=None):
        resource = self.resource(api_version, kind)
        if resource is None:
            return []
        try:
            result = resource.get(namespace=namespace, label_selector=selector).to_dict()
        except NotFoundError:
            return []  # a CRD deleted since API discovery was cached: nothing of the kind is left
        items = result.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    # -- present -----------------------------------------------------------------------------
    def _plan(self, definitions):
        """Read everything; return (entries, problems) without changing anything."""
        entries, problems = [], []
        missing_kinds, missing_namespaces = {}, []
        created_namespaces = [vocab.name_of(d) for d in definitions if d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"]
        for definition in definitions:
            api_version, kind = definition.get("apiVersion"), definition.get("kind")
            name = vocab.name_of(definition)
            if not api_version or not kind or not name:
                problems.append("object without apiVersion, kind or metadata.name: %s" % json.dumps(definition, default=str)[:160])
                continue
            resource = self.served(api_version, kind)
            if resource is None:
                missing_kinds.setdefault(api_version, []).append(kind)
                # a custom kind is namespaced as a rule: its namespace must exist too
                given = (definition.get("metadata") or {}).get("namespace")
                if given and given not in created_namespaces and given not in missing_namespaces and not self.namespace_exists(given):
                    missing_namespaces.append(given)
                continue
            namespace = (definition.get("metadata") or {}).get("namespace") if resource.namespaced else None
            if resource.namespaced and not namespace:
                problems.append("%s %s: metadata.namespace is required for a namespaced kind" % (kind, name))
                continue
            entry = {"definition": definition, "resource": resource, "namespace": namespace, "id": self.oid(kind, namespace, name)}
            if namespace and not self.namespace_exists(namespace):
                if namespace in created_namespaces:
                    entry["live"] = None
                    entry["pending_namespace"] = True
                    entries.append(entry)
                elif namespace not in missing_namespaces:
                    missing_namespaces.append(namespace)
                continue
            entry["live"] = self.read(resource, name, namespace)
            entries.append(entry)
        messages = []
        for api_version, kinds in missing_kinds.items():
            hint = ""
            if api_version.split("/", 1)[0] == vocab.GATEWAY_API_GROUP:
                hint = " (the control_plane role installs the Gateway API CRDs with control_plane_gateway_api_crds: true)"
            messages.append(
                "the CRDs of %s (%s) are not installed: no API resource serves them%s" % (", ".join(sorted(set(kinds), key=kinds.index)), api_version, hint)
            )
        if missing_namespaces:
            messages.append("namespace(s) %s do not exist" % ", ".join(missing_namespaces))
        if self.check_mode and messages:
            # check mode after roles that would have created them: report, do not fail
            self.notes.extend("check mode: %s; the objects that need them would be created" % m for m in messages)
            for definition in definitions:
                api_version, kind = definition.get("apiVersion"), definition.get("kind")
                namespace = (definition.get("metadata") or {}).get("namespace")
                if kind in missing_kinds.get(api_version, ()) or namespace in missing_namespaces:
                    entries.append(
                        {
                            "definition": definition,
                            "resource": None,
                            "namespace": namespace,
                            "live": None,
                            "pending_namespace": True,
                            "id": self.oid(kind, namespace, vocab.name_of(definition)),
                        }
                    )
        else:
            problems.extend(messages)
        return entries, problems

    @staticmethod
    def oid(kind, namespace, name):
        return "%s %s" % (kind, "%s/%s" % (namespace, name) if namespace else name)

    def _apply(self, entry, dry_run):
        desired = with_digest(entry["definition"])
        kwargs = {"body": desired, "name": vocab.name_of(desired), "field_manager": self.field_manager, "force_conflicts": True}
        if entry["namespace"]:
            kwargs["namespace"] = entry["namespace"]
        if dry_run:
            kwargs["dry_run"] = "All"
        return entry["resource"].server_side_apply(**kwargs).to_dict()

    def present(self, definitions):
        """Apply the set; return the per-object results. Raises ObjectSetError, nothing applied."""
        entries, problems = self._plan(definitions)
        if problems:
            raise ObjectSetError("nothing was applied: " + "; ".join(problems), problems)
        todo = [e for e in entries if self.force or not in_sync(e["live"], e["definition"])]
        for entry in entries:
            entry["action"] = "unchanged"
        # every object that can be dry-run is, before anything is applied
        rejected = []
        for entry in todo:
            if entry.get("pending_namespace"):
                continue
            try:
                entry["dry_run"] = self._apply(entry, dry_run=True)
            except DynamicApiError as exc:
                rejected.append("%s: %s" % (entry["id"], api_message(exc)))
        if rejected:
            raise ObjectSetError("the cluster rejected %d object(s), nothing was applied: %s" % (len(rejected), "; ".join(rejected)), rejected)
        applied = []
        for entry in todo:
            before_version = ((entry["live"] or {}).get("metadata") or {}).get("resourceVersion")
            if self.check_mode or not self.apply:
                entry["after"] = entry.get("dry_run") or with_digest(entry["definition"])
                entry["action"] = "create" if entry["live"] is None else ("update" if not in_sync(entry["live"], entry["definition"]) else "unchanged")
                continue
            try:
                after = self._apply(entry, dry_run=False)
            except DynamicApiError as exc:
                raise ObjectSetError(
                    "%s: %s (applied before it: %s)" % (entry["id"], api_message(exc), ", ".join(applied) or "nothing"), [api_message(exc)], applied
                ) from exc
            entry["after"] = after
            if entry["live"] is None:
                entry["action"] = "created"
            elif (after.get("metadata") or {}).get("resourceVersion") != before_version:
                entry["action"] = "updated"
            applied.append(entry["id"])
        return entries

    # -- waiting -------------------------------------------------------------------------
    def wait_rollouts(self, entries, timeout):
        """Wait until every workload of the set is rolled out and every CRD established; raise
        ObjectSetError naming the laggards."""
        workloads = [e for e in entries if e["definition"].get("kind") in WAITED_KINDS]
        deadline = self.clock() + timeout
        while True:
            pending = []
            for entry in workloads:
                live = self.read(entry["resource"], vocab.name_of(entry["definition"]), entry["namespace"])
                if live is None:
                    pending.append("%s: not found" % entry["id"])
                    continue
                done, why = rollout_state(live)
                entry["rollout"] = why
                if not done:
                    pending.append("%s: %s" % (entry["id"], why))
            if not pending:
                return
            if self.clock() >= deadline:
                raise ObjectSetError("not rolled out after %ss: %s" % (timeout, "; ".join(pending)), pending)
            self.sleep(POLL_INTERVAL)

    # -- prune and absent ----------------------------------------------------------------
    def prune(self, definitions, selector, kinds):
        """Delete the objects of ``selector`` (of these kinds) the set does not contain."""
        wanted = set(vocab.object_id(d, "") for d in definitions)
        stale = []
        for kind in kinds:
            for item in self.list(kind["api_version"], kind["kind"], selector):
                if vocab.object_id(item, "") not in wanted:
                    stale.append(item)
        return self.delete(stale)

    def delete(self, objects, wait_timeout=0):
        results = []
        for obj in objects:
            resource = self.resource(obj.get("apiVersion"), obj.get("kind"))
            name = vocab.name_of(obj)
            namespace = (obj.get("metadata") or {}).get("namespace") if resource is not None and resource.namespaced else None
            result = {"id": self.oid(obj.get("kind"), namespace, name), "action": "absent"}
            results.append(result)
            if resource is None or self.read(resource, name, namespace) is None:
                continue
            result["action"] = "deleted"
            if self.check_mode or not self.apply:
                result["action"] = "delete"
                continue
            try:
                resource.delete(name=name, namespace=namespace)
            except DynamicApiError as exc:  # NotFoundError included
                if api_status(exc) == 404:
                    result["action"] = "absent"
                    continue
                raise ObjectSetError("%s: cannot delete it: %s" % (result["id"], api_message(exc)), [api_message(exc)]) from exc
            if wait_timeout:
                deadline = self.clock() + wait_timeout
                while self.read(resource, name, namespace) is not None:
                    if self.clock() >= deadline:
                        raise ObjectSetError("%s: still present %ss after its deletion" % (result["id"], wait_timeout))
                    self.sleep(POLL_INTERVAL)
        return results
