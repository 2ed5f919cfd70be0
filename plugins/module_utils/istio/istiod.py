# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether an istiod revision serves: its Deployment available, its validation webhook answering
(an invalid Gateway rejected, a valid one accepted) and its injector adding the sidecar.

Every check is a read or a server-side dry run: nothing is created. The checks run in order and
each is retried until one deadline; the first that has not passed by then is reported with the
cluster's last answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.k8s.client import DynamicApiError, ResourceNotFoundError, api_message, api_status

PROBE_NAME = "meshops-webhook-probe"
# the validation webhook fails open until istiod has patched its CA bundle, so an invalid object
# being rejected is the proof that it answers (istio/istio#29785, #22319)
DENIED = "denied the request"
CHECKS = (
    ("established", "the CRDs are Established"),
    ("available", "its Deployment is Available"),
    ("rejects_invalid", "the validation webhook rejects an invalid Gateway"),
    ("accepts_valid", "the validation webhook accepts a valid Gateway"),
    ("injects", "the injector adds the istio-proxy container to a Pod"),
)


class IstiodNotReady(Exception):
    """A check did not pass before the deadline, or failed in a way no retry repairs."""

    def __init__(self, message, check, last):
        super(IstiodNotReady, self).__init__(message)
        self.check = check
        self.last = last


def probe_gateway(namespace, rev_label, valid):
    return {
        "apiVersion": vocab.API_VERSION,
        "kind": "Gateway",
        "metadata": {
            "name": PROBE_NAME if valid else PROBE_NAME + "-invalid",
            "namespace": namespace,
            "labels": {"istio.io/rev": rev_label},
        },
        "spec": {
            "selector": {"istio": PROBE_NAME},
            "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["probe.meshops.invalid" if valid else "bad host name!"]}],
        },
    }


def probe_pod(namespace, rev_label):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "meshops-injection-probe",
            "namespace": namespace,
            "labels": {"sidecar.istio.io/inject": "true", "istio.io/rev": rev_label},
        },
        "spec": {"containers": [{"name": "probe", "image": "meshops.invalid/never-pulled:probe"}]},
    }


def _available(deployment):
    if deployment is None:
        return False, "the Deployment does not exist"
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Available":
            if cond.get("status") == "True":
                return True, "Available"
            return False, "Available=%s: %s" % (cond.get("status"), cond.get("message") or cond.get("reason") or "")
    return False, "no Available condition yet"


class IstiodProbe(object):
    """The four checks of one revision, against the dynamic client ``api``."""

    def __init__(self, api, namespace, deployment, revision, crds=(), clock=time.monotonic, sleep=time.sleep):
        self.api = api
        self.crds = list(crds)
        self.namespace = namespace
        self.deployment = deployment
        self.rev_label = revision
        self.clock = clock
        self.sleep = sleep

    def _resource(self, api_version, kind):
        try:
            return self.api.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as exc:
            raise IstiodNotReady(
                "the cluster does not serve %s (%s): are the Istio CRDs installed?" % (kind, api_version),
                "api",
                "no API resource for %s %s" % (api_version, kind),
            ) from exc

    def _create_dry_run(self, definition):
        resource = self._resource(definition["apiVersion"], definition["kind"])
        return resource.create(body=definition, namespace=self.namespace, dry_run="All").to_dict()

    def check(self, name):
        """(passed, what the cluster answered, final): ``final`` when no retry can change a failure."""
        return getattr(self, "_check_" + name)()

    def _check_established(self):
        resource = self._resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        waiting = []
        for crd in self.crds:
            live = self._read(resource, crd, None)
            if live is None:
                waiting.append("%s does not exist" % crd)
            elif not any(c.get("type") == "Established" and c.get("status") == "True" for c in (live.get("status") or {}).get("conditions") or []):
                waiting.append("%s is not Established yet" % crd)
        return not waiting, "; ".join(waiting) or "established", False

    def _check_available(self):
        passed, why = _available(self._read(self._resource("apps/v1", "Deployment"), self.deployment, self.namespace))
        return passed, why, False

    def _check_rejects_invalid(self):
        try:
            self._create_dry_run(probe_gateway(self.namespace, self.rev_label, valid=False))
        except DynamicApiError as exc:
            return DENIED in api_message(exc), api_message(exc), False
        return False, "accepted (a webhook that does not answer yet fails open)", False

    def _check_accepts_valid(self):
        try:
            self._create_dry_run(probe_gateway(self.namespace, self.rev_label, valid=True))
        except DynamicApiError as exc:
            # a webhook that denies a valid Gateway will deny it again: no retry helps
            return False, api_message(exc), DENIED in api_message(exc)
        return True, "accepted", False

    def _check_injects(self):
        try:
            pod = self._create_dry_run(probe_pod(self.namespace, self.rev_label))
        except DynamicApiError as exc:
            return False, api_message(exc), False
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
        return "istio-proxy" in names, "containers: %s" % ", ".join(n for n in names if n), False

    @staticmethod
    def _read(resource, name, namespace):
        try:
            return resource.get(name=name, namespace=namespace).to_dict()
        except DynamicApiError as exc:
            if api_status(exc) != 404:
                raise
            return None

    def run(self, timeout, delay):
        """Run the checks in order, each retried until the one deadline; the per-check results."""
        start = self.clock()
        deadline = start + timeout
        results = []
        for name, description in CHECKS:
            attempts = 0
            while True:
                attempts += 1
                passed, last, final = self.check(name)
                if passed:
                    results.append({"check": name, "description": description, "attempts": attempts, "passed_after": round(self.clock() - start, 3)})
                    break
                if final or self.clock() >= deadline:
                    raise IstiodNotReady(
                        "istiod revision %r (Deployment %s/%s): %s did not hold %s: the cluster's last answer: %s"
                        % (
                            self.rev_label,
                            self.namespace,
                            self.deployment,
                            description,
                            "(a retry cannot change that)" if final else "within %ss (%d attempts)" % (timeout, attempts),
                            last,
                        ),
                        name,
                        last,
                    )
                self.sleep(delay)
        return results
