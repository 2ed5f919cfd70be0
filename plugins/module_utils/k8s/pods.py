# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pods and their Istio proxies as the Kubernetes API shows them; exec and logs.

``proxy_of(pod)`` reads what the sidecar injector wrote into a pod: whether it has an Istio
proxy (a sidecar, a native sidecar init container, or a gateway's ``istio-proxy`` container),
the revision that injected it (the ``revision`` of the ``sidecar.istio.io/status``
annotation, else the ``istio.io/rev`` annotation or label) and the proxy image, whose tag is
the proxy's version. ``exec_in`` runs a command in a container and ``logs`` reads a
container's log, both through the API server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab

PROXY_CONTAINER = "istio-proxy"
STATUS_ANNOTATION = "sidecar.istio.io/status"


def image_tag(image):
    """The tag of an image reference (``registry:5000/istio/proxyv2:1.31.0`` -> ``1.31.0``)."""
    if not image:
        return None
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def proxy_of(pod):
    """``{sidecar, revision, image, version}`` of a pod's Istio proxy (sidecar False when none)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    proxy = next((c for c in containers if c.get("name") == PROXY_CONTAINER), None)
    annotations = meta.get("annotations") or {}
    revision = None
    status = annotations.get(STATUS_ANNOTATION)
    if status:
        try:
            revision = (json.loads(status) or {}).get("revision")
        except ValueError:
            revision = None
    if not revision:
        revision = annotations.get(vocab.LABEL_REV) or (meta.get("labels") or {}).get(vocab.LABEL_REV)
    image = proxy.get("image") if proxy else None
    return {"sidecar": proxy is not None, "revision": revision if proxy else None, "image": image, "version": image_tag(image)}


def pod_ready(pod):
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def live_pods(pods):
    """Pods that count: not finished, not being deleted."""
    return [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not (p.get("metadata") or {}).get("deletionTimestamp")]


def describe(pod):
    meta = pod.get("metadata") or {}
    proxy = proxy_of(pod)
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "ready": pod_ready(pod),
        "sidecar": proxy["sidecar"],
        "revision": proxy["revision"],
        "image": proxy["image"],
        "version": proxy["version"],
    }


def mismatches(pod_info, expect):
    """Why one pod does not meet ``expect`` ({sidecar, revision, version, ready}); empty when it does."""
    why = []
    if expect.get("ready", True) and not pod_info["ready"]:
        why.append("not ready")
    sidecar = expect.get("sidecar")
    if sidecar is True and not pod_info["sidecar"]:
        why.append("no Istio proxy (was the namespace labelled for a revision that injects?)")
    elif sidecar is False and pod_info["sidecar"]:
        why.append("has an Istio proxy")
    if expect.get("revision") is not None and pod_info["sidecar"] and pod_info["revision"] != expect["revision"]:
        why.append("proxy injected by revision %s, not %s" % (pod_info["revision"], expect["revision"]))
    if expect.get("version") is not None and pod_info["sidecar"] and pod_info["version"] != expect["version"]:
        why.append("proxy version %s, not %s" % (pod_info["version"], expect["version"]))
    return why


def core_api(k8s_client):
    """kubernetes.client.CoreV1Api on the same connection as a kubernetes.core K8SClient."""
    from kubernetes import client as kube  # noqa: PLC0415 - imported where the client is

    return kube.CoreV1Api(api_client=k8s_client.client.client)


def exec_in(k8s_client, namespace, pod, container, command, timeout=30):
    """Run ``command`` (a list) in a container; return its output (stdout and stderr)."""
    from kubernetes.stream import stream  # noqa: PLC0415

    api = core_api(k8s_client)
    return stream(
        api.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _request_timeout=timeout,
    )


def logs(k8s_client, namespace, pod, container, since_seconds=None, tail_lines=None, timestamps=False):
    """A container's log; with ``timestamps`` each line starts with the kubelet's RFC 3339 time."""
    api = core_api(k8s_client)
    kwargs = {"container": container}
    if timestamps:
        kwargs["timestamps"] = True
    if since_seconds:
        kwargs["since_seconds"] = int(since_seconds)
    if tail_lines:
        kwargs["tail_lines"] = int(tail_lines)
    return api.read_namespaced_pod_log(pod, namespace, **kwargs)
