#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


DOCUMENTATION = r"""
module: mesh_probe
short_description: Send requests from a mesh workload and prove which gateway they went through
version_added: 1.0.0
author:
  - meshops.istio maintainers (@meshops)
description:
  - Runs C(curl) inside a container of a mesh client pod (a pod with an Istio sidecar, so the
    request takes the mesh's egress routes), through the Kubernetes API's exec, and checks the
    status of each answer; each request is retried until it passes (bounded in attempts and
    time), because configuration takes time to reach the sidecar.
  - A request with O(requests[].through) must also show up in the access log of the pods that
    O(requests[].through) selects (for example the egress gateway); every request carries a
    unique user agent, and the module reads those pods' logs until the marker appears. This
    proves that the traffic left the mesh through the egress gateway, not around it.
  - An C(https://) request is TLS from the client to the external host, which the egress
    gateway passes on by SNI without reading it (TLS passthrough), so it cannot show the user
    agent; the module then looks for a new access log line, written after the request was sent,
    with the URL's host as the requested server name (SNI) and an upstream cluster to that host
    (C(outbound|443||edition.cnn.com)).
  - A request with O(requests[].blocked=true) must be refused (no 2xx or 3xx answer), as with
    C(outboundTrafficPolicy=REGISTRY_ONLY) for a host without a ServiceEntry.
  - Sends requests, changes nothing on the cluster; in check mode nothing is sent.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshops.istio.attributes
  - meshops.istio.attributes.PLATFORM_ANY
attributes:
  check_mode:
    support: full
    details:
      - Nothing is sent; the result lists the requests as skipped.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
  - curl in the client container
seealso:
  - module: meshops.istio.route_verify
options:
  client:
    description:
      - The mesh client pod that sends the requests.
    type: dict
    required: true
    suboptions:
      namespace:
        description: Namespace of the pod.
        type: str
        required: true
      selector:
        description: Label selector of the pod; the newest running pod is used.
        type: str
        required: true
      container:
        description: Container that has curl.
        type: str
        required: true
  requests:
    description:
      - The requests to send.
    type: list
    elements: dict
    required: true
    suboptions:
      url:
        description: URL to request, for example C(http://edition.cnn.com/).
        type: str
        required: true
      status:
        description: Statuses that pass; ignored with O(requests[].blocked).
        type: list
        elements: int
        default: [200]
      blocked:
        description: The request must be refused (no 2xx or 3xx answer).
        type: bool
        default: false
      ca_cert:
        description:
          - PEM certificate(s) of the CA that must have signed the server certificate of an
            C(https://) URL (the text, not a path; it is written to a temporary file in the
            client container, which then needs a shell and C(mktemp)). Without it, curl
            verifies against the container's system CAs.
        type: str
      through:
        description: Pods whose access log must show the request (for example the egress gateway).
        type: dict
        suboptions:
          namespace:
            description: Namespace of the pods.
            type: str
            required: true
          selector:
            description: Label selector of the pods, for example C(istio=egressgateway).
            type: str
            required: true
          container:
            description: Container whose log is read.
            type: str
            default: istio-proxy
  retries:
    description: Attempts of a request beyond the first.
    type: int
    default: 30
  delay:
    description: Seconds between two attempts.
    type: float
    default: 1
  request_timeout:
    description: Seconds one curl may take.
    type: int
    default: 10
  log_timeout:
    description: Seconds to wait for a request to show up in an access log.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Mesh traffic to the external host leaves through the egress gateway
  meshops.istio.mesh_probe:
    client: {namespace: httpbin, selector: app=meshops-curl, container: curl}
    requests:
      - url: http://edition.cnn.com/
        status: [200, 301]
        through: {namespace: istio-system, selector: istio=egressgateway}
      - url: http://unregistered.example.com/
        blocked: true

- name: HTTPS to the external host passes through the egress gateway by SNI (TLS passthrough)
  meshops.istio.mesh_probe:
    client: {namespace: httpbin, selector: app=meshops-curl, container: curl}
    requests:
      - url: https://edition.cnn.com/get
        ca_cert: "{{ lookup('ansible.builtin.file', 'pki/ca.pem') }}"
        through: {namespace: istio-system, selector: istio=egressgateway}
"""

RETURN = r"""
pod:
  description: The client pod used.
  returned: unless in check mode
  type: str
  sample: httpbin/meshops-curl-5b6d7c9f8-abcde
requests:
  description: One entry per request, in order.
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: The URL.
      type: str
      sample: http://edition.cnn.com/
    status:
      description: Status of the last answer, V(0) when curl got none.
      type: int
      sample: 200
    passed:
      description: Whether the request met its expectation.
      type: bool
      sample: true
    attempts:
      description: Attempts made.
      type: int
      sample: 1
    marker:
      description: The user agent the request carried.
      type: str
      sample: meshops-probe/1701360000123456789/0
    seen_in:
      description: Pod whose access log showed the request, with O(requests[].through).
      type: str
      sample: istio-system/istio-egressgateway-6b7c8d9f-12345
    log_line:
      description: The access log line.
      type: str
      sample: '[2026-11-30T10:00:00.000Z] "GET / HTTP/1.1" 200 - ... "edition.cnn.com" "outbound|80||edition.cnn.com"'
    error:
      description: What curl said when the request failed.
      type: str
      sample: ""
  sample: []
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshops.istio.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.meshops.istio.plugins.module_utils.k8s import pods as k8s_pods
from ansible_collections.meshops.istio.plugins.module_utils.k8s.objects import ObjectSet

_STATUS = re.compile(r"MESHOPS_STATUS=(\d{3})")


def argument_spec():
    spec = k8s_client.auth_argument_spec()
    spec.update(
        client=dict(
            type="dict",
            required=True,
            options=dict(namespace=dict(type="str", required=True), selector=dict(type="str", required=True), container=dict(type="str", required=True)),
        ),
        requests=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                url=dict(type="str", required=True),
                status=dict(type="list", elements="int", default=[200]),
                blocked=dict(type="bool", default=False),
                ca_cert=dict(type="str"),
                through=dict(
                    type="dict",
                    options=dict(
                        namespace=dict(type="str", required=True),
                        selector=dict(type="str", required=True),
                        container=dict(type="str", default="istio-proxy"),
                    ),
                ),
            ),
        ),
        retries=dict(type="int", default=30),
        delay=dict(type="float", default=1),
        request_timeout=dict(type="int", default=10),
        log_timeout=dict(type="int", default=30),
    )
    return spec


def _tls_host(url):
    """The host of an https:// URL (the SNI curl sends), else None."""
    match = re.match(r"(?i)https://([^/:?#]+)", url)
    return match.group(1).lower() if match else None


def _tls_log_line(line, host):
    """An access log line of a TLS connection passed on by SNI to ``host``: the requested server
    name and an upstream cluster of that host (``outbound|443||edition.cnn.com``)."""
    fields = line.split()
    return host in fields and any(re.match(r"outbound\|\d+\|[^|]*\|%s$" % re.escape(host), f) for f in fields)


def _stamped(line):
    """(sortable kubelet time, line) of a log line read with timestamps: RFC 3339 with its fraction
    padded to nanoseconds, so that two times compare as strings."""
    stamp, _sep, text = line.partition(" ")
    head, dot, frac = stamp.rstrip("Z").partition(".")
    return "%s.%s" % (head, (frac if dot else "").ljust(9, "0")), text


def passes(request, status):
    if request["blocked"]:
        return not 200 <= status < 400
    return status in request["status"]


class MeshProbe(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.api = None
        self.objects = None

    def fail(self, msg, **result):
        self.module.fail_json(msg=msg, **result)

    def client_pod(self):
        client = self.params["client"]
        pods = [p for p in k8s_pods.live_pods(self.objects.list("v1", "Pod", client["selector"], namespace=client["namespace"])) if k8s_pods.pod_ready(p)]
        if not pods:
            self.fail("no ready pod %s in namespace %s to send the requests from" % (client["selector"], client["namespace"]))
        return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")[-1]["metadata"]["name"]

    def curl(self, pod, url, marker, ca_cert=None):
        client = self.params["client"]
        command = [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-A",
            marker,
            "--max-time",
            str(self.params["request_timeout"]),
            "-w",
            "MESHOPS_STATUS=%{http_code}\\n",
            url,
        ]
        if ca_cert:
            # the CA as a file in the client container: curl takes --cacert from a file only
            script = 'f=$(mktemp) && printf "%s" "$1" > "$f" && shift && curl --cacert "$f" "$@"; rc=$?; rm -f "$f"; exit $rc'
            command = ["sh", "-c", script, "sh", ca_cert, *command[1:]]
        output = k8s_pods.exec_in(self.api, client["namespace"], pod, client["container"], command, timeout=self.params["request_timeout"] + 20)
        match = _STATUS.search(output or "")
        status = int(match.group(1)) if match else 0
        return status, _STATUS.sub("", output or "").strip()

    def log_lines(self, through):
        """(pod name, [(kubelet time, line)]) of the recent access log of each pod of ``through``."""
        since = max(60, self.params["log_timeout"] * 4)
        for pod in k8s_pods.live_pods(self.objects.list("v1", "Pod", through["selector"], namespace=through["namespace"])):
            name = pod["metadata"]["name"]
            text = k8s_pods.logs(self.api, through["namespace"], name, through["container"], since_seconds=since, timestamps=True)
            yield name, [_stamped(line) for line in (text or "").splitlines()]

    def log_marks(self, through):
        """The time of each pod's newest log line before a request: lines after it are new."""
        return dict((name, max([stamp for stamp, _line in lines] or [""])) for name, lines in self.log_lines(through))

    def seen(self, through, found, marks=None):
        """(pod, line) of the first access log line ``found`` accepts (newer than ``marks``), waiting up to log_timeout."""
        deadline = time.monotonic() + self.params["log_timeout"]
        while True:
            for name, lines in self.log_lines(through):
                for stamp, line in lines:
                    if (marks is None or stamp > marks.get(name, "")) and found(line):
                        return "%s/%s" % (through["namespace"], name), line
            if time.monotonic() >= deadline:
                return None, None
            time.sleep(0.5)  # Envoy flushes its access log every second

    def run(self):
        requests = self.params["requests"]
        if self.module.check_mode:
            self.module.exit_json(changed=False, requests=[{"url": r["url"], "skipped": True} for r in requests])
        self.api = k8s_client.module_client(self.module)
        self.objects = ObjectSet(self.api, check_mode=True)
        pod = self.client_pod()
        results, failures = [], []
        stamp = time.time_ns()
        for index, request in enumerate(requests):
            marker = "meshops-probe/%d/%d" % (stamp, index)
            result = {"url": request["url"], "marker": marker, "attempts": 0, "status": 0, "passed": False, "error": ""}
            sni_host = _tls_host(request["url"])
            marks = self.log_marks(request["through"]) if sni_host and request.get("through") else None
            for attempt in range(self.params["retries"] + 1):
                result["attempts"] = attempt + 1
                try:
                    result["status"], result["error"] = self.curl(pod, request["url"], marker, request.get("ca_cert"))
                except Exception as exc:  # pylint: disable=broad-except
                    result["status"], result["error"] = 0, "exec failed: %s" % exc
                if passes(request, result["status"]):
                    result["passed"] = True
                    break
                if attempt < self.params["retries"]:
                    time.sleep(self.params["delay"])
            if result["passed"] and request.get("through"):
                if sni_host:
                    where, line = self.seen(request["through"], lambda text, host=sni_host: _tls_log_line(text, host), marks)
                else:
                    where, line = self.seen(request["through"], lambda text, mark=marker: mark in text)
                result["seen_in"], result["log_line"] = where, line
                if where is None:
                    result["passed"] = False
                    failures.append(
                        "%s answered %s but no pod %s in %s logged it within %ss: it did not go through them"
                        % (request["url"], result["status"], request["through"]["selector"], request["through"]["namespace"], self.params["log_timeout"])
                    )
            elif not result["passed"]:
                expected = "a refusal" if request["blocked"] else "one of %s" % ", ".join(str(s) for s in request["status"])
                failures.append(
                    "%s from pod %s/%s answered %s after %d attempt(s), expected %s%s"
                    % (
                        request["url"],
                        self.params["client"]["namespace"],
                        pod,
                        result["status"] or "nothing",
                        result["attempts"],
                        expected,
                        "; curl said: %s" % result["error"] if result["error"] else "",
                    )
                )
            results.append(result)
        output = {"changed": False, "pod": "%s/%s" % (self.params["client"]["namespace"], pod), "requests": results}
        if failures:
            self.fail("; ".join(failures), **output)
        self.module.exit_json(**output)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    MeshProbe(module).run()


if __name__ == "__main__":
    main()
