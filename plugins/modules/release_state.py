#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: release_state
short_description: Tell whether Helm releases already are what the play asks for, from the cluster alone
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Reads the newest revision of each Helm release from the Secret Helm 3 keeps it in
    (C(helm.sh/release.v1)), and compares it with the wanted chart version and values.
  - Then reads every object of the release's manifest; a missing object, or a workload,
    Service, ConfigMap, webhook configuration or PodDisruptionBudget whose fields differ from
    the chart (for example a Deployment scaled by hand), makes the release out of date.
  - A release is up to date when it is C(deployed), at the wanted chart version, with the
    wanted values, and all its objects are as the chart made them. Roles run
    M(kubernetes.core.helm) (and helm-diff) only for releases that are not, so a rerun with
    nothing to do costs one process and a few reads instead of a Helm diff per release.
  - Also reports the rollout state of each Deployment, StatefulSet and DaemonSet of a release,
    and a release left C(pending-install), C(pending-upgrade) or C(pending-rollback) by an
    interrupted run (RV(releases[].pending)).
  - Needs no helm binary; it never changes anything.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
  - PyYAML
seealso:
  - module: kubernetes.core.helm
  - module: kubernetes.core.helm_info
options:
  releases:
    description:
      - The releases to look at.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Release namespace.
        type: str
        required: true
      chart_version:
        description:
          - Wanted chart version. Mutually exclusive with O(releases[].chart_path).
        type: str
      chart_path:
        description:
          - Local chart directory; the wanted version is the C(version) of its C(Chart.yaml).
        type: path
      values:
        description:
          - Wanted values (what M(kubernetes.core.helm) gets as C(release_values)); not
            compared when omitted.
        type: dict
  check_objects:
    description:
      - Read the objects of each release's manifest and report drift.
    type: bool
    default: true
  revisions:
    description:
      - Also read the control plane revisions of the cluster in the same run, as
        M(meshops.istio.revision_status) does (RV(revision_status)), so a role reads its
        releases and the mesh's revisions in one process.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the control plane.
        type: str
        required: true
      target:
        description: The upgrade to check against Istio's skew rules.
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
        description: Gateway releases and the revision or tag each selects.
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
- name: Which gateway releases need a Helm upgrade
  meshops.istio.release_state:
    releases:
      - name: istio-ingressgateway
        namespace: istio-system
        chart_version: 1.31.0
        values: "{{ ingress_values }}"
  register: gateways_state

- name: Upgrade only what is out of date
  kubernetes.core.helm:
    release_name: istio-ingressgateway
    release_namespace: istio-system
    chart_ref: gateway
    chart_repo_url: https://istio-release.storage.googleapis.com/charts
    chart_version: 1.31.0
    release_values: "{{ ingress_values }}"
  when: not gateways_state.releases[0].up_to_date
"""

RETURN = r"""
revision_status:
  description: With O(revisions), what M(meshops.istio.revision_status) returns.
  returned: when O(revisions) is set
  type: dict
  sample: {"tags": {"prod-stable": "1-30-4"}, "default_revision": "1-30-4", "problems": [], "skew_problems": []}
up_to_date:
  description: Whether every release is up to date.
  returned: always
  type: bool
  sample: true
releases:
  description: One entry per release, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Release name.
      type: str
      sample: istiod
    namespace:
      description: Release namespace.
      type: str
      sample: istio-system
    installed:
      description: Whether the release exists.
      type: bool
      sample: true
    status:
      description: Helm status of the newest revision (C(deployed), C(failed), C(pending-upgrade), ...).
      type: str
      sample: deployed
    revision:
      description: Newest revision.
      type: int
      sample: 3
    chart:
      description: Chart name.
      type: str
      sample: istiod
    chart_version:
      description: Installed chart version.
      type: str
      sample: 1.31.0
    app_version:
      description: Installed chart's appVersion.
      type: str
      sample: 1.31.0
    values_digest:
      description: Digest of the installed values.
      type: str
      sample: 3f0c2d9a8b7e6f10
    wanted_values_digest:
      description: Digest of the wanted values (null when none were given).
      type: str
      sample: 3f0c2d9a8b7e6f10
    pending:
      description: Whether an interrupted run left the release pending.
      type: bool
      sample: false
    up_to_date:
      description: Whether the release needs nothing.
      type: bool
      sample: true
    record_up_to_date:
      description:
        - Whether the release record (status, chart version, values) is as wanted, whatever its
          objects. When it is not, C(helm upgrade) must run even if the live objects already
          match the new chart (an interrupted upgrade applied them), so helm-diff's three-way
          merge, which compares with the live objects, must not decide.
      type: bool
      sample: true
    reasons:
      description: Why it is not up to date.
      type: list
      elements: str
      sample: ["Deployment istio-system/istiod: its spec differs from the chart"]
    ready:
      description: Whether the release has workloads and all of them are rolled out (false when O(check_objects=false)).
      type: bool
      sample: true
    workloads:
      description: Rollout state of the release's workloads.
      type: list
      elements: dict
      sample: [{"kind": "Deployment", "name": "istiod", "ready": true, "state": "1 of 1 replicas available"}]
    secret:
      description: The Secret holding the newest revision.
      type: str
      sample: sh.helm.release.v1.istiod.v3
    record:
      description: That Secret as an object reference (for M(meshops.istio.object_set) with O(meshops.istio.object_set#module:state=absent)).
      type: dict
      sample: {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sh.helm.release.v1.istiod.v3", "namespace": "istio-system"}}
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s import helm
from ansible_collections.meshops.istio.plugins.module_utils.k8s import revisions as k8s_revisions
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import ObjectSet


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        releases=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
                chart_version=dict(type="str"),
                chart_path=dict(type="path"),
                values=dict(type="dict"),
            ),
            mutually_exclusive=[("chart_version", "chart_path")],
        ),
        check_objects=dict(type="bool", default=True),
        revisions=dict(type="dict", options=k8s_revisions.summary_options()),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not helm.HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    api = k8s_client.module_client(module)
    objects = ObjectSet(api, check_mode=True)
    results = []
    for release in module.params["releases"]:
        version = release.get("chart_version")
        if release.get("chart_path"):
            try:
                version = helm.chart_version_of(release["chart_path"])
            except (IOError, OSError) as exc:
                module.fail_json(msg="release %s/%s: cannot read %s/Chart.yaml: %s" % (release["namespace"], release["name"], release["chart_path"], exc))
        try:
            results.append(helm.state(objects, release["name"], release["namespace"], version, release.get("values"), module.params["check_objects"]))
        except k8s_client.DynamicApiError as exc:
            module.fail_json(msg="release %s/%s: cannot read it: %s" % (release["namespace"], release["name"], k8s_client.api_message(exc)))
        except (ValueError, TypeError) as exc:
            module.fail_json(msg="release %s/%s: its Helm record cannot be decoded: %s" % (release["namespace"], release["name"], exc))
    output = {"changed": False, "releases": results, "up_to_date": all(r["up_to_date"] for r in results)}
    wanted = module.params["revisions"]
    if wanted:
        try:
            output["revision_status"] = k8s_revisions.summary(objects, wanted["namespace"], wanted.get("target"), wanted["gateway_releases"])
        except k8s_client.DynamicApiError as exc:
            module.fail_json(msg="cannot read the control plane revisions: %s" % k8s_client.api_message(exc))
    module.exit_json(**output)


if __name__ == "__main__":
    main()
