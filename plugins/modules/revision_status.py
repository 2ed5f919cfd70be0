#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: revision_status
short_description: Read the Istio control plane revisions of a cluster and check an upgrade against Istio's rules
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Reads, through the Kubernetes API, every istiod revision (its Deployment, version and
    readiness), the revision tags (MutatingWebhookConfigurations labelled C(istio.io/tag)), the
    default revision (the C(istiod-default-validator) webhook), the namespaces that select a
    revision or a tag, and every Istio proxy with the revision that injected it and its version.
  - Reports what is broken now (RV(problems)) - a webhook calling an istiod Service that no
    longer exists (every Istio write fails, istio/istio#28880), overlapping injectors (IST0139).
  - With O(target), checks the upgrade against Istio's skew rules (RV(skew_problems)) - an
    in-place upgrade goes one minor version at a time, a revision-based one may skip one, the
    control plane may be one minor version ahead of the data plane and never behind.
  - Tells for each revision what still references it (tags, the default revision, namespace
    labels, running pods' injected revision, gateway releases - the Sail Operator's rules), so
    an old revision is removed only when nothing does (RV(revisions)).
  - Never changes anything.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
seealso:
  - module: meshops.istio.proxy_status
  - module: meshops.istio.release_state
options:
  namespace:
    description: Namespace of the control plane.
    type: str
    default: istio-system
  target:
    description: The upgrade to check.
    type: dict
    suboptions:
      version:
        description: The version to run.
        type: str
        required: true
      strategy:
        description: How it replaces the running one.
        type: str
        choices: [InPlace, RevisionBased]
        default: InPlace
  gateway_releases:
    description:
      - The gateway releases and the revision or tag each selects (their chart's C(revision)
        value), so that a revision a gateway still selects counts as in use.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      revision:
        description: Revision or tag the gateway selects.
        type: str
        default: ""
"""

EXAMPLES = r"""
- name: Read the revisions and check an in-place upgrade to 1.31.0
  meshops.istio.revision_status:
    target:
      version: 1.31.0
      strategy: InPlace
  register: revisions

- name: Refuse the upgrade before changing anything
  ansible.builtin.assert:
    that: revisions.skew_problems | length == 0
    fail_msg: "{{ revisions.skew_problems | join('; ') }}"
"""

RETURN = r"""
revisions:
  description: The istiod revisions, by name (C(default) for the revision-less one).
  returned: always
  type: dict
  sample:
    1-30-4: {"deployment": "istiod-1-30-4", "version": "1.30.4", "ready": true, "references": ["revision tag prod-stable points at it"]}
tags:
  description: Revision tags and the revision each points at.
  returned: always
  type: dict
  sample: {"prod-stable": "1-30-4", "prod-canary": "1-31-0"}
tag_objects:
  description: The objects of the revision tags (their webhooks, and their Services in O(namespace)), as references.
  returned: always
  type: list
  elements: dict
  sample: [{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-revision-tag-prod-stable"}}]
default_revision:
  description: The revision serving default validation (null when there is none).
  returned: always
  type: str
  sample: 1-30-4
namespaces:
  description: Namespaces that select a revision or tag, with their labels.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "httpbin", "labels": {"istio.io/rev": "prod-stable"}}]
namespace_names:
  description: Every namespace of the cluster.
  returned: always
  type: list
  elements: str
  sample: ["default", "httpbin", "istio-system"]
proxy_versions:
  description: Proxies per version.
  returned: always
  type: dict
  sample: {"1.30.4": 5}
control_plane_version:
  description: The version of the default revision's istiod (else the newest).
  returned: always
  type: str
  sample: 1.30.4
problems:
  description: What is broken now.
  returned: always
  type: list
  elements: str
  sample: ["ValidatingWebhookConfiguration istiod-default-validator (validation.istio.io) calls Service istio-system/istiod-1-29-0, which does not exist ..."]
skew_problems:
  description: Why the O(target) upgrade breaks Istio's rules (empty without O(target), or when it is allowed).
  returned: always
  type: list
  elements: str
  sample: ["an in-place upgrade goes one minor version at a time: istiod runs 1.29, 1.31 is wanted; upgrade to 1.30 first ..."]
unused_revisions:
  description: Revisions nothing references any more.
  returned: always
  type: list
  elements: str
  sample: ["1-29-0"]
stale_proxies:
  description:
    - Proxies not injected by the revision their namespace label (or, in a namespace without
      one, their pod label) selects through the tags, or not at that revision's version - the
      pods a restart would move. Empty once every workload runs what it selects.
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "httpbin", "name": "httpbin-6d9c-x2x7q", "revision": "1-30-4", "version": "1.30.4",
            "wanted_revision": "1-31-0", "wanted_version": "1.31.0", "why": "injected by revision 1-30-4, prod-canary selects 1-31-0"}]
proxies_not_ready:
  description: Pods with an Istio proxy that are not ready (namespace/name).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s import revisions as k8s_revisions
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import ObjectSet


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(k8s_revisions.summary_options(namespace_default="istio-system"))
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    api = k8s_client.module_client(module)
    try:
        result = k8s_revisions.summary(ObjectSet(api, check_mode=True), module.params["namespace"], module.params["target"], module.params["gateway_releases"])
    except k8s_client.DynamicApiError as exc:
        module.fail_json(msg="cannot read the control plane revisions: %s" % k8s_client.api_message(exc))
    result["changed"] = False
    module.exit_json(**result)


if __name__ == "__main__":
    main()
