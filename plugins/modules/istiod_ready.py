#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: istiod_ready
short_description: Wait until an istiod revision serves its webhooks
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Waits, in one process and against one deadline, until an istiod revision is ready for the
    objects a play applies next. The checks run in this order, each retried until it passes.
  - First, the CRDs of O(crds) are C(Established) (objects of a kind whose CRD is not yet
    established are refused with "no matches for kind").
  - Then istiod's Deployment has the condition C(Available=True).
  - Then its validation webhook rejects an invalid Gateway (a server-side dry run). Istio's
    validation webhook fails open until istiod has patched its CA bundle, so a rejection is the
    proof that it answers (istio/istio#29785).
  - Then it accepts a valid Gateway (a dry run).
  - Last, its injector adds the C(istio-proxy) container to a Pod that selects the revision (a
    dry run of a Pod whose image is never pulled).
  - Creates nothing - every request is a read or a server-side dry run - so it runs the same in
    check mode.
  - Fails with the check that did not pass, the revision, the Deployment and the cluster's last
    answer; a valid Gateway that the webhook denies fails at once, since no retry changes that.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
seealso:
  - module: meshops.istio.revision_status
  - module: meshops.istio.release_state
  - name: Istio webhook troubleshooting
    description: Why the validation webhook fails open while istiod starts.
    link: https://istio.io/latest/docs/ops/common-problems/validation/
options:
  namespace:
    description: Namespace of istiod; the probe objects are dry-run there.
    type: str
    default: istio-system
  deployment:
    description: Name of istiod's Deployment (C(istiod), or C(istiod-<revision>)).
    type: str
    default: istiod
  revision:
    description:
      - The C(istio.io/rev) label of the probe objects - the revision, or a revision tag - which
        selects the webhooks that must answer. V(default) is the revision-less installation.
    type: str
    default: default
  crds:
    description: Names of CustomResourceDefinitions that must be C(Established) first.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds every check together may take.
    type: int
    default: 300
  delay:
    description: Seconds between two attempts of a check.
    type: float
    default: 1
"""

EXAMPLES = r"""
- name: Wait until istiod answers after its installation
  meshops.istio.istiod_ready:
    crds: [gateways.networking.istio.io, virtualservices.networking.istio.io]
    timeout: 300

- name: Wait until the canary revision serves its webhooks
  meshops.istio.istiod_ready:
    deployment: istiod-1-31-0
    revision: 1-31-0
  register: canary_ready

- name: Show how long istiod took
  ansible.builtin.debug:
    msg: "{{ canary_ready.checks | map(attribute='passed_after') | list }}"
"""

RETURN = r"""
checks:
  description: The checks, in the order they ran, with the seconds from the start until each passed.
  returned: success
  type: list
  elements: dict
  contains:
    check:
      description: C(established), C(available), C(rejects_invalid), C(accepts_valid) or C(injects).
      type: str
    description:
      description: What the check proves.
      type: str
    attempts:
      description: Requests made until it passed.
      type: int
    passed_after:
      description: Seconds from the start of the module.
      type: float
  sample:
    - {"check": "established", "description": "the CRDs are Established", "attempts": 1, "passed_after": 0.05}
    - {"check": "available", "description": "its Deployment is Available", "attempts": 3, "passed_after": 2.1}
    - {"check": "rejects_invalid", "description": "the validation webhook rejects an invalid Gateway", "attempts": 1, "passed_after": 2.2}
failed_check:
  description: The check that did not pass (on failure).
  returned: failure
  type: str
  sample: rejects_invalid
last_answer:
  description: What the cluster answered to the check that did not pass (on failure).
  returned: failure
  type: str
  sample: accepted (a webhook that does not answer yet fails open)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.istio import istiod
from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        namespace=dict(type="str", default="istio-system"),
        deployment=dict(type="str", default="istiod"),
        revision=dict(type="str", default="default"),
        crds=dict(type="list", elements="str", default=[]),
        timeout=dict(type="int", default=300),
        delay=dict(type="float", default=1),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["timeout"] < 0 or params["delay"] < 0:
        module.fail_json(msg="timeout and delay must not be negative (timeout=%s, delay=%s)" % (params["timeout"], params["delay"]))
    api = k8s_client.module_client(module)
    probe = istiod.IstiodProbe(api, params["namespace"], params["deployment"], params["revision"], params["crds"])
    try:
        checks = probe.run(params["timeout"], params["delay"])
    except istiod.IstiodNotReady as exc:
        module.fail_json(msg=str(exc), failed_check=exc.check, last_answer=exc.last)
    except k8s_client.DynamicApiError as exc:
        module.fail_json(msg="istiod revision %r: the API server refused a request: %s" % (params["revision"], k8s_client.api_message(exc)))
    module.exit_json(changed=False, checks=checks)


if __name__ == "__main__":
    main()
