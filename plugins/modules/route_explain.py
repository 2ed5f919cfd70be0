#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: route_explain
short_description: Explain statically where Istio sends a request, and lint routing objects
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Reads Gateways, VirtualServices, ServiceEntries, DestinationRules, Services and the
    Kubernetes Gateway API's Gateways, HTTPRoutes and ReferenceGrants, given as manifests
    (rendered, not yet applied) and/or read from the cluster.
  - With O(requests), predicts for each request (through a gateway or from the mesh) which
    VirtualService rule matches and which destination, subset and port it reaches, or why
    it gets 404, a redirect, an abort, a 502 or a refused connection. The model follows
    Istio's documented semantics; what it does not model is reported as unsupported, never
    guessed.
  - With O(lint=true), reports findings such as a Gateway host no VirtualService serves, a
    VirtualService bound to a missing Gateway or to one that does not serve its hosts, a
    destination Service, port or subset that does not exist, or a rule shadowed by an
    earlier one. The task fails when a finding of severity C(error) exists and
    O(fail_on_findings=true).
  - The same lint is available to Python code as
    C(ansible_collections.meshops.istio.plugins.module_utils.istio.lint.lint(objects)).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0 (only for O(namespaces))
notes:
  - Modelled, host and wildcard matching, server host C(namespace/) restrictions,
    C(exportTo), gateway references (C(name), C(namespace/name), C(mesh), gateways
    omitted = mesh), match alternatives (OR) and their fields (AND) C(uri) exact, prefix
    and regex (RE2 full match), C(ignoreUriCase), C(scheme), C(method), C(authority),
    C(headers), C(withoutHeaders), C(queryParams), C(port), C(gateways),
    C(sourceNamespace), C(sourceLabels); first match wins; on gateways the VirtualServices
    of a host are merged in creation order with catch-all routes last, as Istio builds the
    route table; C(tls.httpsRedirect); C(redirect), C(directResponse), C(fault.abort),
    C(corsPolicy) preflights from allowed origins (answered by the proxy), weighted routes;
    header changes (C(headers) of rules and destinations) and C(mirror) as notes; Services, ServiceEntries and DestinationRule subsets;
    C(outboundTrafficPolicy) for mesh traffic to unregistered hosts, and mesh
    VirtualServices for hosts outside the registry applied on port 80 only.
  - Modelled for the Kubernetes Gateway API (C(gateway.networking.k8s.io/v1)), as istiod
    translates it, a Gateway of class C(istio) configures the pods of the Service of its
    C(spec.addresses) (or of the Service istiod deploys for it); listeners take the HTTPRoutes
    whose C(parentRefs) name them (C(sectionName), C(port)) and whose namespace
    C(allowedRoutes) admits (Same, All, a selector on C(kubernetes.io/metadata.name)), under
    the route hostnames that intersect the listener's; the routes of one listener and
    hostname are ordered by the Gateway API's precedence (Exact, then the longest
    PathPrefix, then RegularExpression; a method; more headers; more query parameters; the
    oldest route), not first match; PathPrefix matches whole path segments;
    C(RequestRedirect) (302 by default), C(CORS) preflights, header modifiers, mirrors,
    rewrites and timeouts as notes; backends that answer 500 (missing Service or port, no
    ReferenceGrant, weights adding up to 0); HTTPRoutes attached to a Service or ServiceEntry
    for mesh traffic (GAMMA), the client's namespace's before the host's.
  - Not modelled (reported as unsupported), delegate VirtualServices, TLS passthrough
    and TCP servers and routes, TLSRoute, TCPRoute, GRPCRoute, C(ExtensionRef) filters,
    a port configured by both an Istio Gateway and a Gateway API Gateway, Sidecar and
    EnvoyFilter resources, regex constructs RE2 lacks.
seealso:
  - module: meshops.istio.route_verify
options:
  objects:
    description:
      - Manifests of Gateways, VirtualServices, ServiceEntries, DestinationRules and
        Services. Objects of kind C(List) are flattened; other kinds are ignored, except
        routing kinds the model does not cover, which are reported.
    type: list
    elements: dict
    default: []
  namespaces:
    description:
      - Also read those objects from these namespaces of the cluster (V(*) for all), with
        the kubernetes.core authentication options.
      - An object of the cluster with the kind, namespace and name of one of O(objects) is
        replaced by it (O(objects) are the objects as they are about to be applied).
    type: list
    elements: str
    default: []
  require_namespaces:
    description:
      - With O(lint=true), a namespace of O(namespaces) that does not exist is an error
        finding (C(namespace-missing)), for example the namespace of a destination FQDN with a
        typo; otherwise its Services are simply absent and a missing Service there is only a
        warning.
    type: bool
    default: false
  requests:
    description:
      - Requests to explain.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name shown in the result.
        type: str
      via:
        description:
          - V(mesh) for a request from a sidecar, or C(namespace/name) of the Istio Gateway
            or Gateway API Gateway whose workload receives the request (all Gateways
            selecting the same workload apply).
          - Default V(mesh) unless O(requests[].gateway_labels) is set.
        type: str
      gateway_labels:
        description:
          - Labels of the gateway workload (for example the selector of its Service),
            instead of naming a Gateway in O(requests[].via).
        type: dict
      host:
        description:
          - Host header (authority) of the request.
        type: str
        required: true
      port:
        description:
          - Gateway server port (the Service port), or the destination port for mesh
            requests. Default for gateways the port of the server for the scheme, for the
            mesh 80 or 443.
        type: int
      scheme:
        description:
          - Scheme of the request.
        type: str
        choices: [http, https]
        default: http
      sni:
        description:
          - SNI of an HTTPS request. Defaults to the host.
        type: str
      path:
        description:
          - Path and query.
        type: str
        default: /
      method:
        description:
          - HTTP method.
        type: str
        default: GET
      headers:
        description:
          - Request headers.
        type: dict
      source_namespace:
        description:
          - Namespace of the client, for mesh requests.
        type: str
        default: default
      source_labels:
        description:
          - Labels of the client workload, for C(sourceLabels) matches.
        type: dict
      proxy_namespace:
        description:
          - Namespace of the gateway pods, for C(sourceNamespace) matches on gateways.
        type: str
      outbound_traffic_policy:
        description:
          - The mesh's C(outboundTrafficPolicy.mode), for mesh requests to hosts outside the
            registry.
        type: str
        choices: [ALLOW_ANY, REGISTRY_ONLY]
        default: ALLOW_ANY
  lint:
    description:
      - Return lint findings on the objects.
    type: bool
    default: false
  fail_on_findings:
    description:
      - Fail when O(lint=true) finds problems of severity C(error).
    type: bool
    default: true
"""

EXAMPLES = r"""
# In the traffic role: lint the rendered objects with the Services of the cluster before
# applying anything; the task fails with the findings when one is an error.
- name: Read the Services the routes point at
  kubernetes.core.k8s_info:
    kind: Service
    namespace: "{{ item }}"
  loop: [default, istio-system]
  register: __traffic_services

- name: Lint the routes before applying them
  meshops.istio.route_explain:
    objects: "{{ __traffic_manifests + (__traffic_services.results | map(attribute='resources') | flatten) }}"
    lint: true

- name: Why does /headers get 404 through the ingress gateway?
  meshops.istio.route_explain:
    namespaces: [default]
    requests:
      - via: default/httpbin-gateway
        host: httpbin.example.com
        path: /headers
  register: why
# why.explanations[0].text ==
#   "no route: VirtualService default/httpbin matches only /status and /delay"

- name: Where does mesh traffic for edition.cnn.com go?
  meshops.istio.route_explain:
    objects: "{{ egress_manifests }}"
    requests:
      - host: edition.cnn.com
        source_namespace: default
      - via: default/istio-egressgateway
        host: edition.cnn.com
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
  sample: false
explanations:
  description: One prediction per request, in order.
  returned: when O(requests) is given
  type: list
  elements: dict
  contains:
    outcome:
      description:
        - C(route), C(tls_route), C(tcp_route), C(default_route), C(passthrough), C(redirect), C(https_redirect),
          C(direct_response), C(abort), C(cors_preflight), C(no_route), C(no_virtual_host), C(no_server),
          C(tls_no_server), C(protocol_mismatch), C(no_upstream), C(blocked),
          C(unknown_gateway) or C(unsupported).
      type: str
      sample: route
    expected:
      description: What a client should see, C(status) (null when the upstream decides),
        C(error) (connection failure kinds) and C(upstream) (the request reaches a service).
      type: dict
      sample: {"status": null, "error": null, "upstream": true}
    text:
      description: One-line explanation.
      type: str
      sample: "route: VirtualService default/httpbin rule 0 match 0 (/status) -> httpbin.default.svc.cluster.local:8000"
    virtual_service:
      description: C(namespace/name) of the VirtualService that decided, if any.
      type: str
      sample: default/httpbin
    http_route:
      description: C(namespace/name) of the Gateway API HTTPRoute that decided, if any.
      type: str
      sample: httpbin/httpbin
    rule:
      description: Index of the matching http rule (of an HTTPRoute, its C(rules)).
      type: int
      sample: 0
    match:
      description: Index of the matching alternative in the rule's C(match), null for a rule without match.
      type: int
      sample: 0
    destinations:
      description: Destinations of the route with host, port, subset, weight, the object serving them and problems.
      type: list
      elements: dict
      sample: [{"host": "httpbin.default.svc.cluster.local", "port": 8000, "subset": null, "weight": 100,
                "kind": "Service", "object": "Service default/httpbin", "problems": []}]
    gateway:
      description: The Gateway(s) whose server accepted the request, or C(mesh).
      type: raw
      sample: default/httpbin-gateway
    virtual_host:
      description: The virtual host (domain) Envoy selects.
      type: str
      sample: httpbin.example.com
    unsupported:
      description: What the model does not cover and stopped the prediction.
      type: list
      elements: str
      sample: []
    header_actions:
      description: The header changes of the rule and its destinations, in words.
      type: list
      elements: str
      sample: ["set response x-served-by: meshops", "remove response server"]
    mirror:
      description: Where the rule mirrors requests to, and which share (null without a mirror).
      type: dict
      sample: {"host": "httpbin-v2", "percentage": 10}
    cors:
      description: Set when the proxy answers a CORS preflight itself (the allowed origin).
      type: dict
      sample: {"preflight": true, "origin": "https://app.example.com"}
    opaque:
      description:
        - The connection is passed on without being read (TLS the client speaks itself, or a TCP
          port; a C(tls) or C(tcp) rule, or the default route of such a port); the answer comes
          from the far end, without proxy headers.
      type: bool
      sample: false
    notes:
      description: Remarks that do not change the outcome (merged VirtualServices, assumed port, delays, header changes, mirrors).
      type: list
      elements: str
      sample: []
findings:
  description: Lint findings, errors first.
  returned: when O(lint=true)
  type: list
  elements: dict
  contains:
    severity:
      description: C(error), C(warning) or C(info).
      type: str
      sample: error
    code:
      description: Stable identifier of the check.
      type: str
      sample: destination-port-missing
    object:
      description: The object concerned, C(Kind namespace/name).
      type: str
      sample: VirtualService default/httpbin
    message:
      description: What is wrong and where.
      type: str
      sample: "VirtualService default/httpbin: http rule 0 route 0: port 8080 is not exposed by Service default/httpbin (ports: 8000)"
summary:
  description: Number of objects read and of findings per severity.
  returned: always
  type: dict
  sample: {"objects": 8, "error": 0, "warning": 1, "info": 0}
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.meshops.istio.plugins.module_utils.istio import cluster as istio_cluster
from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.istio.lint import has_errors, lint, missing_namespace_findings
from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import MeshIndex, ObjectError
from ansible_collections.meshops.istio.plugins.module_utils.istio.routing import REQUEST_OPTIONS, ExplainError, explain
from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        objects=dict(type="list", elements="dict", default=[]),
        namespaces=dict(type="list", elements="str", default=[]),
        requests=dict(type="list", elements="dict", options=copy.deepcopy(REQUEST_OPTIONS)),
        require_namespaces=dict(type="bool", default=False),
        lint=dict(type="bool", default=False),
        fail_on_findings=dict(type="bool", default=True),
    )
    return spec


class RouteExplain(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False}
        self.missing = []

    def objects(self):
        objects = list(self.params["objects"] or [])
        self.missing = []
        if self.params["namespaces"]:
            if not k8s_client.HAS_KUBERNETES:
                self.module.fail_json(msg=missing_required_lib("kubernetes"), exception=k8s_client.KUBERNETES_IMPORT_ERROR, **self.result)
            try:
                client = k8s_client.api_client(self.params)
                if self.params["require_namespaces"]:
                    self.missing = istio_cluster.missing_namespaces(client, self.params["namespaces"])
                given = set(vocab.object_id(o) for o in objects)
                read = istio_cluster.read_objects(client, [n for n in self.params["namespaces"] if n not in self.missing])
                objects.extend(o for o in read if vocab.object_id(o) not in given)
            except Exception as exc:  # pylint: disable=broad-except
                self.module.fail_json(msg="cannot read objects from namespaces {0}: {1}".format(", ".join(self.params["namespaces"]), exc), **self.result)
        return objects

    def run(self):
        if not self.params["requests"] and not self.params["lint"]:
            self.module.fail_json(msg="nothing to do: give requests to explain and/or lint: true", **self.result)
        objects = self.objects()
        try:
            index = MeshIndex(objects)
        except ObjectError as exc:
            self.module.fail_json(msg="objects: {0}".format(exc), **self.result)
        self.result["summary"] = {"objects": len(objects), "error": 0, "warning": 0, "info": 0}
        if self.params["requests"]:
            explanations = []
            for i, request in enumerate(self.params["requests"]):
                try:
                    explanation = explain(index, request, "requests[{0}]".format(i))
                except ExplainError as exc:
                    self.module.fail_json(msg=str(exc), **self.result)
                explanation["name"] = request.get("name")
                explanations.append(explanation)
            self.result["explanations"] = explanations
        if self.params["lint"]:
            findings = missing_namespace_findings(self.missing, index) + lint(index)
            self.result["findings"] = findings
            for finding in findings:
                self.result["summary"][finding["severity"]] += 1
            if self.params["fail_on_findings"] and has_errors(findings):
                errors = [f for f in findings if f["severity"] == "error"]
                msg = "{0} routing error(s) found, fix them before applying:\n".format(len(errors)) + "\n".join(
                    "- [{0}] {1}".format(f["code"], f["message"]) for f in errors
                )
                self.module.fail_json(msg=msg, **self.result)
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    RouteExplain(module).run()


if __name__ == "__main__":
    main()
