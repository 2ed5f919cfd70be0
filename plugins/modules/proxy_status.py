#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: proxy_status
short_description: Check which Istio revision and version every proxy of a set of workloads runs
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Lists the pods of each target (a namespace, optionally narrowed by a label selector) and
    reads, through the Kubernetes API only, what the sidecar injector wrote into each one -
    whether it has an Istio proxy, the revision that injected it (the C(revision) of the
    C(sidecar.istio.io/status) annotation, else C(istio.io/rev)), and the proxy image, whose
    tag is the proxy's version. Gateways deployed with C(image=auto) are read the same way.
  - With O(expect), every pod must be ready and match (a proxy, a revision, a version); with
    O(wait) the check is repeated until it passes or the time is up, and the failure names
    every pod that does not match and why. Pods that finished or are being deleted do not
    count.
  - This is the gate of a revision-based upgrade (every proxy of the canary namespaces runs
    the new revision) and the check that injection really happened (a namespace labelled for
    a revision nobody serves gets pods without proxies, silently).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
seealso:
  - module: meshops.istio.release_state
options:
  targets:
    description:
      - The workloads to look at.
    type: list
    elements: dict
    required: true
    suboptions:
      namespace:
        description: Namespace of the pods.
        type: str
        required: true
      selector:
        description: Label selector of the pods, for example C(istio=ingressgateway); all pods of the namespace when omitted.
        type: str
      min_pods:
        description: Pods the target must have at least.
        type: int
        default: 1
  expect:
    description:
      - What every pod must look like. Without it the module only reports.
    type: dict
    suboptions:
      ready:
        description: The pod must be ready.
        type: bool
        default: true
      sidecar:
        description: The pod must have (V(true)) or must not have (V(false)) an Istio proxy.
        type: bool
      revision:
        description: Revision that must have injected the proxy (C(default) for the default revision).
        type: str
      version:
        description: Tag of the proxy image, for example C(1.31.0).
        type: str
  wait:
    description:
      - Seconds to keep checking until every pod matches O(expect); V(0) checks once.
    type: int
    default: 0
  delay:
    description: Seconds between two checks.
    type: float
    default: 2
"""

EXAMPLES = r"""
- name: Every proxy of the canary namespaces and the ingress gateway runs revision 1-31-0
  meshops.istio.proxy_status:
    targets:
      - namespace: httpbin
      - namespace: istio-system
        selector: istio=ingressgateway
    expect:
      sidecar: true
      revision: 1-31-0
      version: 1.31.0
    wait: 300

- name: Report which revisions the proxies of a namespace run
  meshops.istio.proxy_status:
    targets:
      - namespace: shop
        min_pods: 0
  register: shop_proxies
"""

RETURN = r"""
passed:
  description: Whether every pod matched O(expect) (true without O(expect)).
  returned: always
  type: bool
  sample: true
pods:
  description: Every pod that counts, with what its proxy is.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace.
      type: str
      sample: httpbin
    name:
      description: Pod name.
      type: str
      sample: httpbin-7d9c8b6f5-x2x7q
    ready:
      description: Whether the pod is ready.
      type: bool
      sample: true
    sidecar:
      description: Whether it has an Istio proxy.
      type: bool
      sample: true
    revision:
      description: Revision that injected the proxy.
      type: str
      sample: default
    image:
      description: Image of the proxy.
      type: str
      sample: docker.io/istio/proxyv2:1.31.0
    version:
      description: Tag of the proxy image.
      type: str
      sample: 1.31.0
    problems:
      description: Why the pod does not match O(expect).
      type: list
      elements: str
      sample: []
  sample: []
summary:
  description: Pods per revision and per version, and the number of pods that do not match.
  returned: always
  type: dict
  sample: {"pods": 3, "mismatched": 0, "revisions": {"1-31-0": 3}, "versions": {"1.31.0": 3}}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s import pods as k8s_pods
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import ObjectSet


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        targets=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(namespace=dict(type="str", required=True), selector=dict(type="str"), min_pods=dict(type="int", default=1)),
        ),
        expect=dict(
            type="dict",
            options=dict(ready=dict(type="bool", default=True), sidecar=dict(type="bool"), revision=dict(type="str"), version=dict(type="str")),
        ),
        wait=dict(type="int", default=0),
        delay=dict(type="float", default=2),
    )
    return spec


def check(objects, targets, expect):
    """(pods, problems) for one look at the targets."""
    found, problems = [], []
    for target in targets:
        items = k8s_pods.live_pods(objects.list("v1", "Pod", target.get("selector"), namespace=target["namespace"]))
        where = "%s%s" % (target["namespace"], " (%s)" % target["selector"] if target.get("selector") else "")
        if len(items) < target["min_pods"]:
            problems.append("%s: %d pod(s), at least %d expected" % (where, len(items), target["min_pods"]))
        for pod in items:
            info = k8s_pods.describe(pod)
            info["problems"] = k8s_pods.mismatches(info, expect) if expect else []
            if info["problems"]:
                problems.append("pod %s/%s: %s" % (info["namespace"], info["name"], ", ".join(info["problems"])))
            found.append(info)
    return found, problems


def summary(found):
    revisions, versions = {}, {}
    for info in found:
        if info["sidecar"]:
            revisions[info["revision"] or "?"] = revisions.get(info["revision"] or "?", 0) + 1
            versions[info["version"] or "?"] = versions.get(info["version"] or "?", 0) + 1
    return {"pods": len(found), "mismatched": sum(1 for i in found if i["problems"]), "revisions": revisions, "versions": versions}


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    api = k8s_client.module_client(module)
    objects = ObjectSet(api, check_mode=True)
    expect = module.params["expect"]
    deadline = time.monotonic() + module.params["wait"]
    while True:
        try:
            found, problems = check(objects, module.params["targets"], expect)
        except k8s_client.DynamicApiError as exc:
            module.fail_json(msg="cannot list the pods: %s" % k8s_client.api_message(exc))
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(module.params["delay"])
    result = {"changed": False, "pods": found, "summary": summary(found), "passed": not problems}
    if problems:
        waited = " after %ss" % module.params["wait"] if module.params["wait"] else ""
        module.fail_json(msg="%d proxy check(s) failed%s: %s" % (len(problems), waited, "; ".join(problems)), problems=problems, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
