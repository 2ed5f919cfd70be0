#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: proxy_rollout
short_description: Restart the workloads whose Istio proxies do not run the revision they select
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Reads the control plane's revisions and tags, the namespaces' injection labels and every pod
    with an Istio proxy (as M(meshops.istio.revision_status) does), and finds the proxies that
    were injected by another revision than the one their namespace label selects (in a
    namespace without one, their pod label, as the gateway chart sets it), resolved through the
    revision tags, or that run another version than that revision's istiod - what moving a tag,
    relabelling a namespace or an in-place upgrade leaves behind until the pods are recreated
    (the gateway chart's C(image=auto) pods are not restarted by a chart upgrade,
    istio/istio#42550).
  - Restarts their Deployments, StatefulSets and DaemonSets the way C(kubectl rollout restart)
    does (a C(kubectl.kubernetes.io/restartedAt) pod template annotation), one workload at a
    time, and waits until each is rolled out before the next, so a workload with two replicas
    and a PodDisruptionBudget keeps serving.
  - Then reads again; the task fails naming the pods that still do not match.
  - A rerun with every proxy already as selected restarts nothing (C(changed=false)).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.PLATFORM_ANY
attributes:
  check_mode:
    support: full
    details:
      - Reports the workloads that would be restarted, computed against O(planned_tags) and
        O(planned_namespaces) (what the steps before it would have set); restarts nothing.
  diff_mode:
    support: none
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
seealso:
  - module: meshops.istio.revision_status
  - module: meshops.istio.proxy_status
options:
  control_plane_namespace:
    description: Namespace of the istiod revisions and their tags.
    type: str
    default: istio-system
  namespaces:
    description: Restart only pods of these namespaces; all namespaces when omitted.
    type: list
    elements: str
  planned_tags:
    description:
      - "Tag table to compute against instead of the cluster's (C({tag: revision})); for a plan
        in check mode, where the tags were not moved."
    type: dict
    default: {}
  planned_namespaces:
    description:
      - "Namespace selections to compute against instead of the cluster's
        (C({namespace: revision or tag})); for a plan in check mode."
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each restarted workload to roll out.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: After moving the prod-canary tag to revision 1-31-0, restart what selects it
  meshops.istio.proxy_rollout:
    control_plane_namespace: istio-system

- name: What an in-place upgrade would restart in namespace shop
  meshops.istio.proxy_rollout:
    namespaces: [shop]
  check_mode: true
"""

RETURN = r"""
restarted:
  description: The workloads restarted (or, in check mode, to restart), with the pods that made them stale.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "Deployment httpbin/httpbin", "pods": ["httpbin-5d9c-x2x7q: injected by revision 1-30-4, prod-stable selects 1-31-0"]}]
unowned:
  description: Pods that do not match but belong to no workload this module restarts (delete them by hand).
  returned: always
  type: list
  elements: str
  sample: []
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s import revisions as k8s_revisions
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import ObjectSet, ObjectSetError


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        control_plane_namespace=dict(type="str", default="istio-system"),
        namespaces=dict(type="list", elements="str"),
        planned_tags=dict(type="dict", default={}),
        planned_namespaces=dict(type="dict", default={}),
        timeout=dict(type="int", default=600),
    )
    return spec


def owner_workload(objects, pod):
    """(api_version, kind, namespace, name) of the workload that owns a pod, or None."""
    namespace = pod["metadata"]["namespace"]
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet":
            rs = objects.read(objects.resource("apps/v1", "ReplicaSet"), ref["name"], namespace)
            for rs_ref in ((rs or {}).get("metadata") or {}).get("ownerReferences") or []:
                if rs_ref.get("kind") == "Deployment":
                    return ("apps/v1", "Deployment", namespace, rs_ref["name"])
        elif ref.get("kind") in ("StatefulSet", "DaemonSet"):
            return ("apps/v1", ref["kind"], namespace, ref["name"])
    return None


def stale(objects, params):
    """({workload: [why]}, [unowned pods], [pods whose wanted revision is not installed])."""
    state = k8s_revisions.read(objects, params["control_plane_namespace"])
    found, unowned, blocked = {}, [], []
    for proxy in k8s_revisions.stale_proxies(state, params["namespaces"], params["planned_tags"], params["planned_namespaces"]):
        line = "%s: %s" % (proxy["name"], proxy["why"])
        if proxy["wanted_revision"] not in state["revisions"] and not objects.check_mode:
            blocked.append("%s/%s" % (proxy["namespace"], line))
            continue
        pod = objects.read(objects.resource("v1", "Pod"), proxy["name"], proxy["namespace"])
        workload = owner_workload(objects, pod) if pod else None
        if workload is None:
            unowned.append("%s/%s" % (proxy["namespace"], line))
        else:
            found.setdefault(workload, []).append(line)
    return found, unowned, blocked


def restart(objects, workload, timeout):
    api_version, kind, namespace, name = workload
    resource = objects.resource(api_version, kind)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    resource.patch(body=patch, name=name, namespace=namespace, content_type="application/strategic-merge-patch+json")
    entry = {"definition": {"kind": kind, "metadata": {"name": name}}, "resource": resource, "namespace": namespace, "id": "%s %s/%s" % (kind, namespace, name)}
    objects.wait_rollouts([entry], timeout)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    api = k8s_client.module_client(module)
    objects = ObjectSet(api, check_mode=module.check_mode)
    restarted = []
    try:
        found, unowned, blocked = stale(objects, module.params)
        if blocked:
            module.fail_json(
                msg="these proxies select a revision that is not installed, a restart would not help: %s; "
                "install the revision or point the tag or namespace label at an installed one" % "; ".join(blocked),
                restarted=[],
                unowned=unowned,
            )
        restarted = [{"id": "%s %s/%s" % (w[1], w[2], w[3]), "pods": why} for w, why in sorted(found.items())]
        if not module.check_mode:
            for workload in sorted(found):
                restart(objects, workload, module.params["timeout"])
            left, unowned, blocked = stale(objects, module.params)
            if left or blocked:
                module.fail_json(
                    msg="after the restarts, proxies still do not run the revision they select: %s"
                    % "; ".join([line for lines in left.values() for line in lines] + blocked),
                    changed=bool(restarted),
                    restarted=restarted,
                    unowned=unowned,
                )
    except ObjectSetError as exc:
        module.fail_json(msg="%s; the rollout of the workload stopped there (see its pods' events)" % exc, changed=True, restarted=restarted)
    except k8s_client.DynamicApiError as exc:
        module.fail_json(msg="the API server refused a request: %s" % k8s_client.api_message(exc), changed=bool(restarted), restarted=restarted)
    module.exit_json(changed=bool(restarted), restarted=restarted, unowned=unowned)


if __name__ == "__main__":
    main()
