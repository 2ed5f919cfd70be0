#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: route_verify
short_description: Prove that routes work through an Istio gateway with live HTTP(S) probes
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Sends HTTP or HTTPS requests through a gateway address and checks each answer against
    expectations (status, headers, body, JSON, latency), or checks that the connection fails
    the expected way (negative probes for blocked egress or closed ports).
  - The connection goes to the gateway address while the request carries its own Host
    header and, for HTTPS, its own SNI and certificate name, as C(curl --resolve) does.
  - Configuration takes time to reach the proxies, so each probe is retried until it
    collects O(consecutive_successes) passing answers in a row, within
    O(consecutive_successes) + O(retries) attempts and the overall O(timeout).
  - Probes run concurrently with at most O(workers) at a time. Each probe reports its
    attempts and its time to first success.
  - The gateway address is either given (O(address), for example a kind port mapping on
    127.0.0.1) or discovered from the gateway Service (O(gateway_service)) with the
    kubernetes.core authentication options.
  - When a probe fails and Istio objects are available (O(explain)), the failure message
    carries the static explanation of where Istio sends that request, for example
    C(no route - VirtualService default/httpbin matches only /status and /delay).
  - All input is validated before any request is sent. The module never changes anything
    and always returns C(changed=false).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.INFO_MODULE
  - meshops.istio.attributes.PLATFORM_ANY
attributes:
  check_mode:
    details:
      - In check mode only probes with the safe methods C(GET), C(HEAD) and C(OPTIONS) are
        sent; the others are reported as skipped.
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0 (only for O(gateway_service) and O(explain.namespaces))
  - jmespath (only for O(probes[].expect.json))
notes:
  - Only HTTP/1.1 is spoken. Every attempt opens a new connection, like a curl loop.
  - Errors are classified as C(refused), C(reset), C(timeout), C(tls), C(dns),
    C(protocol) or C(error). A server that requires a client certificate may reject a
    TLS 1.3 client without one after the handshake; expect O(probes[].expect.error=[tls, reset]) then.
seealso:
  - module: meshops.istio.route_explain
options:
  probes:
    description:
      - The requests to send and what their answers must look like.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the probe in results, messages and the report.
          - Defaults to C(METHOD scheme://host/path).
        type: str
      url:
        description:
          - The URL the client asks for, C(http://host[:port]/path) or C(https://...); sets the Host header,
            the path and the scheme at once.
          - Mutually exclusive with O(probes[].host), O(probes[].path) and O(probes[].scheme).
          - Without O(probes[].address) or the module O(address), the URL's host is also
            where the connection goes.
        type: str
      address:
        description:
          - Gateway address for this probe, C(host:port), C(host) or C(http://host:port) or C(https://host:port).
          - Overrides the module's O(address) and the discovered address.
        type: str
      scheme:
        description:
          - C(http) or C(https). Defaults to the scheme of the address, else C(http).
        type: str
        choices: [http, https]
      host:
        description:
          - Host header (authority), and for HTTPS the SNI and the name the certificate must
            carry (unless O(probes[].tls.sni) is set).
          - Defaults to the host of the address.
        type: str
      path:
        description:
          - Path and query of the request. Defaults to C(/).
        type: str
      method:
        description:
          - HTTP method.
        type: str
        default: GET
      headers:
        description:
          - Request headers. Set the Host header with O(probes[].host).
        type: dict
      body:
        description:
          - Request body, sent as UTF-8.
          - Mutually exclusive with O(probes[].json_body).
        type: str
      json_body:
        description:
          - Data sent as a JSON body, with the header C(Content-Type) set to C(application/json) unless
            O(probes[].headers) sets it.
        type: raw
      tls:
        description:
          - TLS settings of this probe; they override the module's O(tls).
        type: dict
        suboptions:
          validate_certs:
            description:
              - Verify the gateway certificate and its name. Defaults to true.
            type: bool
          ca_path:
            description:
              - CA bundle (PEM) to verify the gateway certificate with, instead of the
                system's.
            type: path
          client_cert:
            description:
              - Client certificate (PEM) for mutual TLS.
            type: path
          client_key:
            description:
              - Key of O(probes[].tls.client_cert), if not in the same file.
            type: path
          sni:
            description:
              - Server name sent in the TLS handshake and checked in the certificate.
              - Defaults to the Host without port.
            type: str
      timeout:
        description:
          - Timeout of one attempt of this probe, in seconds. Defaults to O(request_timeout).
        type: float
      via:
        description:
          - For the explanation of a failure, the Istio Gateway the probe passes through,
            C(namespace/name). Defaults to O(explain.via).
        type: str
      share:
        description:
          - Check a share of the answers instead of each one, for what applies to a percentage
            of requests (a fault, a weighted split) - an attempt sends O(probes[].share.samples)
            requests one after the other and passes when the fraction of answers that meet
            O(probes[].expect) lies from O(probes[].share.min) to O(probes[].share.max).
          - Retries and O(consecutive_successes) count such attempts.
        type: dict
        suboptions:
          samples:
            description: Requests of one attempt (1 to 1000).
            type: int
            required: true
          min:
            description: Lowest fraction (0 to 1) of answers that must meet the expectations.
            type: float
            default: 0.0
          max:
            description: Highest fraction (0 to 1) of answers that may meet the expectations.
            type: float
            default: 1.0
      expect:
        description:
          - What makes an attempt pass. Without it, any 2xx status passes.
        type: dict
        suboptions:
          status:
            description:
              - Accepted status, as an int (V(200)), a range (V(200-299), V(2xx)) or a list of
                those. Default V(2xx).
            type: raw
          headers:
            description:
              - Headers that must have exactly these values (names case-insensitive), for
                example V(server=istio-envoy).
            type: dict
          headers_present:
            description:
              - Headers that must be present, for example C(x-envoy-upstream-service-time).
            type: list
            elements: str
          headers_absent:
            description:
              - Headers that must be absent.
            type: list
            elements: str
          headers_regex:
            description:
              - Headers whose value must match a regular expression (Python C(re.search)).
            type: dict
          body_contains:
            description:
              - Strings the body must contain.
            type: list
            elements: str
          body_not_contains:
            description:
              - Strings the body must not contain.
            type: list
            elements: str
          body_regex:
            description:
              - Regular expressions the body must match (Python C(re.search)).
            type: list
            elements: str
          json:
            description:
              - Assertions on the JSON body, each on the result of a JMESPath query.
            type: list
            elements: dict
            suboptions:
              query:
                description:
                  - JMESPath expression, for example C(headers.Host[0]) on httpbin's
                    C(/headers) echo.
                type: str
                required: true
              equals:
                description:
                  - The query result must equal this value.
                type: raw
              contains:
                description:
                  - The query result (a string, list or object) must contain this value.
                type: raw
              regex:
                description:
                  - The query result must be a string matching this regular expression.
                type: str
              present:
                description:
                  - Whether the query must find something (V(true)) or nothing (V(false)).
                type: bool
          max_latency:
            description:
              - Maximum seconds from connect to the end of the body.
            type: float
          min_latency:
            description:
              - Minimum seconds from connect to the end of the body, for example to prove
                that C(/delay/1) or an injected delay took effect.
            type: float
          error:
            description:
              - Make this a negative probe that passes only if the request fails this way,
                for example V(refused) for a closed port or V(reset) for blocked egress.
              - V(any) accepts any connection failure.
              - Cannot be combined with the other expectations.
            type: list
            elements: str
            choices: [refused, reset, timeout, tls, dns, protocol, error, any]
  address:
    description:
      - Gateway address of probes that set none, C(host:port), C(host) or
        C(http://host:port) or C(https://host:port); for example C(127.0.0.1:80) on a kind cluster with port
        mappings.
      - Mutually exclusive with O(gateway_service).
    type: str
  gateway_service:
    description:
      - Discover the gateway address from a Kubernetes Service, its LoadBalancer ingress IP
        or hostname, else a node port on a node address.
      - Uses the kubernetes.core authentication options.
      - Mutually exclusive with O(address).
    type: dict
    suboptions:
      name:
        description:
          - Name of the gateway Service, for example C(istio-ingressgateway) (the
            M(meshops.istio.verify) role derives it from the gateways role's list).
        type: str
        required: true
      namespace:
        description:
          - Namespace of the gateway Service, for example C(istio-system).
        type: str
        required: true
      http_port:
        description:
          - Service port (number or name) for C(http) probes. Default port 80, else the
            first port whose name starts with C(http).
        type: str
      https_port:
        description:
          - Service port (number or name) for C(https) probes. Default port 443, else the
            first port whose name starts with C(https).
        type: str
      prefer:
        description:
          - Which address to use. V(auto) takes the LoadBalancer address when there is one,
            else the node port.
        type: str
        choices: [auto, loadbalancer, nodeport]
        default: auto
      node_address:
        description:
          - Address of a node to use with the node port, instead of the first node's
            ExternalIP or InternalIP.
        type: str
  tls:
    description:
      - TLS settings for every HTTPS probe; a probe's own O(probes[].tls) overrides them.
    type: dict
    suboptions:
      validate_certs:
        description:
          - Verify the gateway certificate and its name. Turn off only for self-signed test
            gateways.
        type: bool
        default: true
      ca_path:
        description:
          - CA bundle (PEM) to verify gateway certificates with.
        type: path
      client_cert:
        description:
          - Client certificate (PEM) for mutual TLS.
        type: path
      client_key:
        description:
          - Key of O(tls.client_cert), if not in the same file.
        type: path
  retries:
    description:
      - Failed attempts allowed per probe beyond the O(consecutive_successes) needed.
    type: int
    default: 0
  delay:
    description:
      - Seconds between two attempts of a probe.
    type: float
    default: 1.0
  timeout:
    description:
      - Overall time limit in seconds, for all probes together; a probe makes no new attempt
        after it.
    type: float
    default: 300.0
  consecutive_successes:
    description:
      - Passing attempts in a row a probe needs, so that a half-converged fleet of proxies
        does not pass by luck.
    type: int
    default: 1
  workers:
    description:
      - Probes run at the same time, at most.
    type: int
    default: 8
  request_timeout:
    description:
      - Timeout of one attempt (connect, send, receive), in seconds.
    type: float
    default: 10.0
  report:
    description:
      - Write a machine-readable report of all probes.
    type: dict
    suboptions:
      path:
        description:
          - File to write (replaced atomically).
        type: path
        required: true
      format:
        description:
          - V(junit) (JUnit XML for CI dashboards and AWX) or V(json).
        type: str
        choices: [junit, json]
        default: junit
  explain:
    description:
      - Istio objects used to explain failing probes statically (see M(meshops.istio.route_explain)).
    type: dict
    suboptions:
      objects:
        description:
          - Gateways, VirtualServices, ServiceEntries, DestinationRules and Services, as
            manifests.
        type: list
        elements: dict
        default: []
      namespaces:
        description:
          - Also read those objects from these namespaces of the cluster (V(*) for all).
        type: list
        elements: str
        default: []
      via:
        description:
          - The Istio Gateway the probes pass through, C(namespace/name).
          - Without it, the gateway workload is the one selected by the discovered
            O(gateway_service), else the one the Gateways serving the probe's host select
            (when they all select the same); otherwise failures are not explained.
        type: str
"""

EXAMPLES = r"""
- name: The reference check of the ingress scenario (kind with a port mapping on 127.0.0.1)
  meshops.istio.route_verify:
    address: 127.0.0.1:80
    retries: 30
    delay: 2
    consecutive_successes: 3
    probes:
      - name: httpbin status
        host: httpbin.example.com
        path: /status/200
        method: HEAD
        expect:
          status: 200
          headers:
            server: istio-envoy
          headers_present:
            - x-envoy-upstream-service-time
      - name: unrouted path
        host: httpbin.example.com
        path: /headers
        expect:
          status: 404
      - name: unknown host
        host: other.example.com
        path: /status/200
        expect:
          status: 404

- name: Discover the ingress gateway, check the echo and latency, write a JUnit report
  meshops.istio.route_verify:
    kubeconfig: "{{ cluster_kubeconfig }}"
    context: "{{ cluster_context }}"
    gateway_service:
      name: istio-ingressgateway
      namespace: istio-system
    retries: 20
    report:
      path: "{{ playbook_dir }}/route-verify.xml"
    explain:
      namespaces: [default, istio-system]
      via: default/httpbin-gateway
    probes:
      - host: httpbin.example.com
        path: /delay/1
        expect:
          status: 200
          max_latency: 5
      - url: http://httpbin.example.com/anything?x=1
        method: POST
        json_body: {hello: mesh}
        expect:
          status: [200, 201]
          json:
            - query: json.hello
              equals: mesh
            - query: headers.Host[0]
              equals: httpbin.example.com

- name: HTTPS with SNI, a private CA and a client certificate
  meshops.istio.route_verify:
    address: https://127.0.0.1:443
    tls:
      ca_path: /etc/meshops/ca.pem
      client_cert: /etc/meshops/client.pem
      client_key: /etc/meshops/client-key.pem
    probes:
      - host: httpbin.example.com
        path: /status/200
        expect:
          status: 200
          headers_regex:
            server: ^istio-envoy$

- name: Negative probe, blocked egress gets refused
  meshops.istio.route_verify:
    probes:
      - address: 127.0.0.1:15001
        host: blocked.example.org
        expect:
          error: [refused, reset]

- name: A fault that aborts half of the requests, within 40 to 60 percent of 200
  meshops.istio.route_verify:
    address: 127.0.0.1:80
    probes:
      - host: httpbin.example.com
        path: /anything/flaky
        share: {samples: 200, min: 0.4, max: 0.6}
        expect:
          status: 503
"""

RETURN = r"""
changed:
  description: Always false, probing changes nothing.
  returned: always
  type: bool
  sample: false
probes:
  description: One result per probe, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the probe.
      type: str
      sample: httpbin status
    url:
      description: What was asked for, C(scheme://host/path).
      type: str
      sample: http://httpbin.example.com/status/200
    address:
      description: Where the connection went.
      type: str
      sample: 127.0.0.1:80
    method:
      description: HTTP method.
      type: str
      sample: GET
    passed:
      description: Whether the probe met its expectations O(consecutive_successes) times in a row.
      type: bool
      sample: true
    skipped:
      description: Whether the probe was not sent (check mode and an unsafe method).
      type: bool
      sample: false
    skip_reason:
      description: Why the probe was skipped.
      type: str
      returned: when skipped
      sample: "check mode: POST is not a safe method"
    attempts:
      description: Attempts made.
      type: int
      sample: 3
    consecutive_successes:
      description: Passing attempts in a row at the end.
      type: int
      sample: 1
    time_to_first_success:
      description: Seconds from the probe's start to its first passing attempt; null if none.
      type: float
      sample: 2.013
    duration:
      description: Seconds the probe took, attempts and delays included.
      type: float
      sample: 2.02
    timed_out:
      description: Whether the overall O(timeout) stopped the probe.
      type: bool
      sample: false
    status:
      description: Status of the last attempt; null when the connection failed.
      type: int
      sample: 200
    reason:
      description: Reason phrase of the last attempt.
      type: str
      sample: OK
    headers:
      description: Response headers of the last attempt, names in lower case.
      type: dict
      sample: {"server": "istio-envoy", "x-envoy-upstream-service-time": "2"}
    latency:
      description: Seconds from connect to the end of the body, last attempt.
      type: float
      sample: 0.0042
    error:
      description: Connection failure of the last attempt (kind, message, phase), or null.
      type: dict
      sample: {"kind": "refused", "message": "ConnectionRefusedError: [Errno 111] Connection refused", "phase": "connect"}
    body_excerpt:
      description: First 512 characters of the body of the last attempt.
      type: str
      sample: '{"headers": {"Host": ["httpbin.example.com"]}}'
    failed_expectations:
      description: Expectations the last attempt failed, with the expected and actual values.
      type: list
      elements: dict
      sample: [{"expectation": "status", "expected": "404", "actual": 200, "message": "status 200, expected 404"}]
    expect:
      description: The expectations as given.
      type: dict
      sample: {"status": 200}
    share:
      description: With O(probes[].share), the last attempt's batch - requests sent, answers that met the expectations, their fraction.
      type: dict
      returned: for probes with O(probes[].share)
      sample: {"samples": 200, "matched": 97, "fraction": 0.485}
    explanation:
      description:
        - Static explanation of the failing request (see M(meshops.istio.route_explain)), with
          C(agrees), whether the prediction matches the answer (null when not comparable).
      type: dict
      returned: when the probe failed and O(explain) objects are available
      sample: {"outcome": "no_route", "expected": {"status": 404, "error": null, "upstream": false}, "agrees": true}
    explanation_text:
      description:
        - One-line form of RV(probes[].explanation). When the prediction does not match what
          the gateway answered (C(agrees) is false in RV(probes[].explanation)), it says so.
      type: str
      returned: when the probe failed and O(explain) objects are available
      sample: "no route: VirtualService default/httpbin matches only /status and /delay"
summary:
  description: Counts and durations over all probes.
  returned: always
  type: dict
  sample: {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "attempts": 7, "duration": 4.2, "max_time_to_first_success": 2.01}
gateway:
  description: The discovered gateway (Service, selector and address per scheme).
  returned: when O(gateway_service) is used
  type: dict
  sample: {"service": "istio-system/istio-ingressgateway", "selector": {"istio": "ingressgateway"}, "addresses": {"http": "172.18.0.2:30080"}}
report:
  description: Path of the report written.
  returned: when O(report) is set
  type: str
  sample: /tmp/route-verify.xml
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.meshops.istio.plugins.module_utils.istio import cluster as istio_cluster
from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import MeshIndex, ObjectError
from ansible_collections.meshops.istio.plugins.module_utils.istio.routing import ExplainError, agreement, explain, gateway_labels_for_host
from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.probe import report as probe_report
from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner
from ansible_collections.meshops.istio.plugins.module_utils.probe import spec as probe_spec
from ansible_collections.meshops.istio.plugins.module_utils.probe.expect import HAS_JMESPATH, JMESPATH_IMPORT_ERROR


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        probes=dict(type="list", elements="dict", required=True, options=probe_spec.options(probe_spec.PROBE_OPTIONS)),
        address=dict(type="str"),
        gateway_service=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
                http_port=dict(type="str"),
                https_port=dict(type="str"),
                prefer=dict(type="str", choices=["auto", "loadbalancer", "nodeport"], default="auto"),
                node_address=dict(type="str"),
            ),
        ),
        tls=dict(type="dict", options=dict(probe_spec.options(probe_spec.TLS_OPTIONS), validate_certs=dict(type="bool", default=True))),
        report=dict(
            type="dict",
            options=dict(path=dict(type="path", required=True), format=dict(type="str", choices=["junit", "json"], default="junit")),
        ),
        explain=dict(
            type="dict",
            options=dict(
                objects=dict(type="list", elements="dict", default=[]),
                namespaces=dict(type="list", elements="str", default=[]),
                via=dict(type="str"),
            ),
        ),
    )
    spec.update(probe_spec.options(probe_spec.SETTINGS_OPTIONS))
    return spec


class RouteVerify(object):
    """Validate, discover, probe, explain, report: in that order."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = None
        self.result = {"changed": False}

    def settings(self):
        return dict((k, self.params[k]) for k in probe_spec.SETTINGS_OPTIONS)

    def defaults(self, addresses=None):
        tls = dict((k, v) for k, v in (self.params.get("tls") or {}).items() if v is not None)
        defaults = {"tls": tls, "via": (self.params.get("explain") or {}).get("via")}
        if self.params.get("address"):
            defaults["address"] = self.params["address"]
        if addresses:
            defaults["addresses"] = addresses
        return defaults

    def prepare(self, addresses=None):
        probes = [dict(p) for p in self.params["probes"]]
        try:
            return probe_runner.prepare(probes, self.defaults(addresses), self.settings())
        except probe_runner.ProbeSpecError as exc:
            self.module.fail_json(msg="invalid probes, nothing was sent: " + "; ".join(exc.errors), errors=exc.errors, **self.result)

    def api(self):
        if self.client is None:
            if not k8s_client.HAS_KUBERNETES:
                self.module.fail_json(msg=missing_required_lib("kubernetes"), exception=k8s_client.KUBERNETES_IMPORT_ERROR, **self.result)
            try:
                self.client = k8s_client.api_client(self.params)
            except Exception as exc:  # pylint: disable=broad-except
                self.module.fail_json(msg="cannot create the Kubernetes API client: {0}".format(exc), **self.result)
        return self.client

    def discover(self):
        gs = self.params.get("gateway_service")
        if not gs:
            return None
        try:
            found = istio_cluster.discover(
                self.api(), gs["name"], gs["namespace"], gs.get("http_port"), gs.get("https_port"), gs["prefer"], gs.get("node_address")
            )
        except istio_cluster.DiscoveryError as exc:
            self.module.fail_json(msg="gateway address discovery: {0}".format(exc), **self.result)
        except Exception as exc:  # pylint: disable=broad-except
            self.module.fail_json(msg="gateway address discovery: cannot read Service {0}/{1}: {2}".format(gs["namespace"], gs["name"], exc), **self.result)
        self.result["gateway"] = found
        return found

    def mesh_index(self):
        spec = self.params.get("explain") or {}
        objects = list(spec.get("objects") or [])
        if spec.get("namespaces"):
            try:
                objects.extend(istio_cluster.read_objects(self.api(), spec["namespaces"]))
            except Exception as exc:  # pylint: disable=broad-except
                self.module.warn("cannot read Istio objects for explanations: {0}".format(exc))
        if not objects:
            return None
        try:
            return MeshIndex(objects)
        except ObjectError as exc:
            self.module.fail_json(msg="explain.objects: {0}".format(exc), **self.result)

    def explain_failures(self, prepared, results, index, gateway):
        for i, result in enumerate(results):
            probe = prepared[i]
            if result["passed"] or result["skipped"]:
                continue
            req = probe["request"]
            request = {
                "host": req["host"],
                "scheme": req["scheme"],
                "sni": req["sni"],
                "path": req["path"] if req["path"].startswith("/") else "/",
                "method": req["method"],
                "headers": req["headers"],
            }
            guessed = None
            if probe.get("via"):
                request["via"] = probe["via"]
            elif gateway:
                request["gateway_labels"] = gateway["selector"]
            else:
                guessed = gateway_labels_for_host(index, req["host"])
                if guessed is None:
                    continue
                request["gateway_labels"] = guessed
            detail = (gateway or {}).get("details", {}).get(req["scheme"])
            if detail and not probe["request"].get("explicit_address"):
                request["port"] = detail["service_port"]
            try:
                explanation = explain(index, request)
            except ExplainError as exc:
                self.module.warn("{0}: no explanation: {1}".format(result["name"], exc))
                continue
            if guessed is not None:
                explanation["notes"].append(
                    "gateway workload {0} assumed: the Gateways serving this host select it (set explain.via to name one)".format(
                        ", ".join("{0}={1}".format(k, v) for k, v in sorted(guessed.items()))
                    )
                )
            error_kind = (result.get("error") or {}).get("kind")
            explanation["agrees"] = agreement(explanation, result.get("status"), error_kind, result.get("headers"))
            text = explanation["text"]
            if explanation["agrees"] is False:
                text += " (the gateway answered otherwise: its configuration may not have converged, or differs from the objects)"
            result["explanation"] = explanation
            result["explanation_text"] = text

    def run(self):
        placeholder = {"http": "discovery.invalid:80", "https": "discovery.invalid:443"} if self.params.get("gateway_service") else None
        prepared, settings = self.prepare(placeholder)
        if any(p["expect"].get("json") for p in prepared) and not HAS_JMESPATH:
            self.module.fail_json(msg=missing_required_lib("jmespath"), exception=JMESPATH_IMPORT_ERROR, **self.result)
        gateway = self.discover()
        if gateway:
            prepared, settings = self.prepare(gateway["addresses"])
        index = self.mesh_index()
        results, summary = probe_runner.run(prepared, settings, check_mode=self.module.check_mode)
        if index is not None:
            self.explain_failures(prepared, results, index, gateway)
        self.result["probes"] = results
        self.result["summary"] = summary
        report = self.params.get("report")
        if report:
            try:
                self.result["report"] = probe_report.write_report(report["path"], report["format"], results, summary)
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot write report {0}: {1}".format(report["path"], exc), **self.result)
        if summary["failed"]:
            self.module.fail_json(msg=probe_runner.failure_message(results, summary), **self.result)
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=[("address", "gateway_service")])
    RouteVerify(module).run()


if __name__ == "__main__":
    main()
