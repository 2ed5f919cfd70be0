#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: object_set
short_description: Apply a set of Kubernetes objects as one, dry run first, in one API session
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Applies a list of objects with server-side apply, as one unit. Every object is read first;
    the objects the cluster already holds as given are left alone; every other object is sent
    as a server-side dry run (the API schema, admission webhooks such as istiod's validation);
    only when all of them pass are they applied, in the order given. A rejected object
    therefore leaves the cluster as it was, and the failure names every rejected object with
    the API server's own message.
  - An object counts as held as given when its C(meshops.istio/config-digest) annotation (set
    by this module) matches the desired object and every field the desired object sets has
    that value on the cluster; so a rerun costs one read per object, while a hand edit of a
    field the set owns, or a field removed from the set, is applied again.
  - Missing CustomResourceDefinitions and missing namespaces are reported for all objects at
    once, before anything is sent. Namespaces created by the same set are applied first.
  - O(prune) deletes the objects of a label selector that the set no longer contains;
    O(state=absent) deletes the objects of the set (and of O(prune.selector)).
  - O(wait) waits until the Deployments, StatefulSets and DaemonSets of the set are rolled out
    and its CustomResourceDefinitions are C(Established).
  - Changed means the cluster changed; an apply that leaves an object's resourceVersion as it
    was is not a change.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.PLATFORM_ANY
attributes:
  check_mode:
    support: full
    details:
      - Reads every object and sends the changed ones as server-side dry runs; objects whose
        namespace the set would create are reported as to be created without a dry run.
  diff_mode:
    support: full
    details:
      - The diff shows, per changed object, the live object and the object after the apply
        (the dry run's result in check mode), without the fields the server maintains.
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
seealso:
  - module: kubernetes.core.k8s
options:
  definitions:
    description:
      - The objects, as manifests. Each needs C(apiVersion), C(kind), C(metadata.name) and,
        for namespaced kinds, C(metadata.namespace).
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) applies the set, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Delete the objects that match O(prune.selector), of the kinds O(prune.kinds), and are
        not in the set (with O(state=absent), all of them).
    type: dict
    suboptions:
      selector:
        description:
          - Label selector of the objects this set owns, for example
            C(app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=default).
        type: str
        required: true
      kinds:
        description:
          - Kinds to look at.
        type: list
        elements: dict
        required: true
        suboptions:
          api_version:
            description: API version of the kind.
            type: str
            required: true
          kind:
            description: Kind.
            type: str
            required: true
  force:
    description:
      - Dry-run and apply every object even when the cluster already holds it as given.
    type: bool
    default: false
  apply:
    description:
      - V(false) makes a plan - every object is read and checked, the changed ones are
        dry-run, missing namespaces and CRDs and rejected objects fail the task as in a real
        run, but nothing is applied or deleted. RV(pending) tells whether a run would change
        anything (the task reports a change then too; register the plan with C(changed_when=false)).
    type: bool
    default: true
  field_manager:
    description:
      - Field manager of the server-side applies.
    type: str
    default: meshops.istio
  wait:
    description:
      - Seconds to wait until the workloads of the set are rolled out (observed generation,
        updated and available replicas) and its CustomResourceDefinitions are C(Established);
        V(0) does not wait. With O(state=absent), seconds to
        wait until each deleted object is gone.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Apply the Istio objects of the traffic role (dry run first, nothing applied on a rejection)
  meshops.istio.object_set:
    definitions: "{{ my_objects }}"
    prune:
      selector: app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=default
      kinds:
        - {api_version: networking.istio.io/v1, kind: VirtualService}
        - {api_version: networking.istio.io/v1, kind: Gateway}

- name: Deploy an application and wait until it is rolled out
  meshops.istio.object_set:
    kubeconfig: ~/.kube/config
    context: kind-meshops
    definitions:
      - apiVersion: v1
        kind: Namespace
        metadata: {name: demo, labels: {istio-injection: enabled}}
      - apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: demo}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: web, image: "docker.io/mccutchen/go-httpbin:v2.15.0"}]}
    wait: 300

- name: Delete what one instance owns
  meshops.istio.object_set:
    state: absent
    prune:
      selector: app.kubernetes.io/managed-by=meshops.istio,meshops.istio/instance=team-a
      kinds:
        - {api_version: networking.istio.io/v1, kind: VirtualService}
"""

RETURN = r"""
pending:
  description: Whether a run would change something (with O(apply=false) or in check mode); whether something changed otherwise.
  returned: always
  type: bool
  sample: false
objects:
  description: What happened to each object of the set, in order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: C(Kind namespace/name).
      type: str
      sample: VirtualService httpbin/httpbin
    action:
      description:
        - V(unchanged), V(created), V(updated); in check mode and with O(apply=false)
          V(create) or V(update); with O(state=absent) V(deleted) or V(absent) (V(delete) when
          nothing is deleted).
      type: str
      sample: unchanged
    rollout:
      description: Rollout state of a workload that exists (after the wait, with O(wait)).
      type: str
      returned: for Deployments, StatefulSets and DaemonSets
      sample: 2 of 2 replicas available
    replica_failure:
      description:
        - Why the cluster refuses to create the pods of a workload (its C(ReplicaFailure)
          condition), for example a webhook that failed; the controller retries with a growing
          back-off, so a role restarts such a workload once the cause is gone.
      type: str
      returned: for workloads whose pods could not be created
      sample: 'Internal error occurred: failed calling webhook "rev.namespace.sidecar-injector.istio.io": ...'
  sample: [{"id": "VirtualService httpbin/httpbin", "action": "unchanged"}]
not_ready:
  description:
    - The workloads of the set (Deployments, StatefulSets, DaemonSets) that exist and are not
      rolled out, as read before anything was applied - with O(apply=false), what a role waits
      for even when nothing differs (pods that could not be created, a rollout in progress).
  returned: always
  type: list
  elements: str
  sample: ["Deployment httpbin/httpbin: 0 of 2 replicas available"]
pruned:
  description: Objects deleted (or, in check mode, to delete) because the set no longer contains them.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "ServiceEntry httpbin/old", "action": "deleted"}]
notes:
  description: In check mode, the namespaces and CRDs that are missing now but that roles running before would create.
  returned: when there are such notes
  type: list
  elements: str
  sample: ["check mode: namespace(s) httpbin do not exist; the objects that need them would be created"]
problems:
  description: Every reason the set was not applied (missing CRDs or namespaces, rejected objects).
  returned: on failure
  type: list
  elements: str
  sample: ["VirtualService httpbin/x: admission webhook \"validation.istio.io\" denied the request"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import WORKLOAD_KINDS, ObjectSet, ObjectSetError, rollout_state, sanitize


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        definitions=dict(type="list", elements="dict", default=[]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        prune=dict(
            type="dict",
            options=dict(
                selector=dict(type="str", required=True),
                kinds=dict(
                    type="list",
                    elements="dict",
                    required=True,
                    options=dict(api_version=dict(type="str", required=True), kind=dict(type="str", required=True)),
                ),
            ),
        ),
        force=dict(type="bool", default=False),
        apply=dict(type="bool", default=True),
        field_manager=dict(type="str", default="meshops.istio"),
        wait=dict(type="int", default=0),
    )
    return spec


def replica_failure(live):
    """The message of a workload's ReplicaFailure condition, or None."""
    for condition in (live.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return condition.get("message") or condition.get("reason") or "pods cannot be created"
    return None


class ObjectSetModule(object):
    """Read, dry-run, apply (or delete), prune, wait: in that order."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "pending": False, "objects": [], "pruned": [], "not_ready": []}

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.module.fail_json(msg=msg, **self.result)

    def run(self):
        api = k8s_client.module_client(self.module)
        objects = ObjectSet(api, self.params["field_manager"], check_mode=self.module.check_mode, force=self.params["force"], apply=self.params["apply"])
        definitions = self.params["definitions"]
        prune = self.params["prune"]
        try:
            if self.params["state"] == "absent":
                self.absent(objects, definitions, prune)
            else:
                self.present(objects, definitions, prune)
        except ObjectSetError as exc:
            self.fail(str(exc), problems=exc.problems)
        except k8s_client.DynamicApiError as exc:
            self.fail("the API server refused a request: %s" % k8s_client.api_message(exc))
        self.module.exit_json(**self.result)

    def present(self, objects, definitions, prune):
        entries = objects.present(definitions)
        diffs = []
        for entry in entries:
            item = {"id": entry["id"], "action": entry["action"]}
            if entry["definition"].get("kind") in WORKLOAD_KINDS and entry.get("live"):
                done, why = rollout_state(entry["live"])
                item["rollout"] = why
                if not done:
                    self.result["not_ready"].append("%s: %s" % (entry["id"], why))
                failure = replica_failure(entry["live"])
                if failure:
                    item["replica_failure"] = failure
            self.result["objects"].append(item)
            if entry["action"] != "unchanged":
                self.result["changed"] = True
                diffs.append({"before": sanitize(entry["live"]) or {}, "after": sanitize(entry.get("after")) or {}, "before_header": entry["id"]})
        if prune:
            self.result["pruned"] = objects.prune(definitions, prune["selector"], prune["kinds"])
            if any(p["action"] in ("deleted", "delete") for p in self.result["pruned"]):
                self.result["changed"] = True
        self.result["pending"] = self.result["changed"]
        if self.params["wait"] and not self.module.check_mode and self.params["apply"]:
            objects.wait_rollouts(entries, self.params["wait"])
            for index, entry in enumerate(entries):
                if entry.get("rollout"):
                    self.result["objects"][index]["rollout"] = entry["rollout"]
        if self.module._diff and diffs:
            self.result["diff"] = diffs
        if objects.notes:
            self.result["notes"] = objects.notes
        for note in objects.notes:
            self.module.warn(note)

    def absent(self, objects, definitions, prune):
        self.result["objects"] = objects.delete(list(reversed(definitions)), wait_timeout=self.params["wait"])
        if prune:
            self.result["pruned"] = objects.prune([], prune["selector"], prune["kinds"])
        self.result["changed"] = any(o["action"] in ("deleted", "delete") for o in self.result["objects"] + self.result["pruned"])
        self.result["pending"] = self.result["changed"]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    ObjectSetModule(module).run()


if __name__ == "__main__":
    main()
