# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gateways of meshops.istio.gateways: validation, the values of the official gateway chart,
and the ONE source of a gateway's identity.

The gateways role's list (``gateways_list``) and namespace (``gateways_namespace``) say which
gateways exist: their name (release, Deployment and Service), namespace, pod labels and
direction (ingress or egress). ``identity`` derives from them what other roles need: the
selector of Istio Gateway objects, the Service name and its FQDN. The traffic and verify roles
take their defaults from it, so a gateway is named in one place only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import common
from ansible_collections.meshops.istio.plugins.module_utils.models.common import show

SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")
DIRECTIONS = ("ingress", "egress")
NODE_PORT_RANGE = (30000, 32767)

PORT_OPTIONS = dict(
    name=dict(type="str", required=True),
    port=dict(type="int", required=True),
    target_port=dict(type="int"),
    node_port=dict(type="int"),
    protocol=dict(type="str", choices=["TCP", "UDP", "SCTP"], default="TCP"),
)
SERVICE_OPTIONS = dict(
    type=dict(type="str", choices=list(SERVICE_TYPES), default="LoadBalancer"),
    ports=dict(type="list", elements="dict", options=PORT_OPTIONS),
    annotations=dict(type="dict"),
    load_balancer_ip=dict(type="str"),
    external_traffic_policy=dict(type="str", choices=["Cluster", "Local"]),
)
GATEWAY_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    direction=dict(type="str", choices=list(DIRECTIONS), default="ingress"),
    istio_label=dict(type="str"),
    labels=dict(type="dict"),
    revision=dict(type="str"),
    replicas=dict(type="int", default=1),
    resources=dict(type="dict"),
    service=dict(type="dict", options=SERVICE_OPTIONS),
    values=dict(type="dict"),
)


def validate(gateways, namespace="istio-system"):
    """Every problem of the gateway list, each naming the gateway and the field."""
    problems = common.Problems()
    if not isinstance(gateways, list):
        problems.add("gateways_list", None, "must be a list of gateways, got %s %s" % (common.kind_of(gateways), show(gateways)))
        return problems.messages
    if not isinstance(namespace, str) or not vocab.DNS1123_LABEL.match(namespace):
        problems.add("gateways_namespace", None, "%s is not a valid namespace name" % show(namespace))
    seen = {}
    node_ports = {}
    labels_seen = {}
    for index, gateway in enumerate(gateways):
        where = common.where("gateways_list", index, gateway)
        if not common.check_options(problems, where, None, gateway, GATEWAY_OPTIONS):
            continue
        name = gateway.get("name")
        if isinstance(name, str):
            common.check_name(problems, where, "name", name, label=True)
        gw_namespace = gateway.get("namespace") or namespace
        if isinstance(gateway.get("namespace"), str):
            common.check_namespace(problems, where, "namespace", gateway["namespace"])
        key = (gw_namespace, name)
        if key in seen:
            problems.add(where, "name", "gateway %s/%s is already defined by %s" % (gw_namespace, name, seen[key]))
        else:
            seen[key] = where
        label = gateway.get("istio_label")
        if label is not None and isinstance(label, str) and (not label or len(label) > 63 or not vocab.LABEL_VALUE.match(label)):
            problems.add(where, "istio_label", "%s is not a valid label value" % show(label))
        if isinstance(name, str) and (label is None or isinstance(label, str)):
            selector_key = (gw_namespace, istio_label(gateway))
            if selector_key in labels_seen:
                problems.add(
                    where,
                    "istio_label",
                    "istio=%s is also the label of %s: Gateway objects could not tell the two apart" % (selector_key[1], labels_seen[selector_key]),
                )
            else:
                labels_seen[selector_key] = where
        labels = gateway.get("labels")
        if isinstance(labels, dict) and labels:
            common.check_selector(problems, where, "labels", labels)
            if vocab.LABEL_ISTIO in labels:
                problems.add(where, "labels.istio", "set istio_label instead (it is also the Gateway selector)")
        if isinstance(gateway.get("revision"), str) and gateway["revision"]:
            common.check_revision(problems, where, "revision", gateway["revision"])
        replicas = gateway.get("replicas")
        if common.is_int(replicas) and replicas < 0:
            problems.add(where, "replicas", "%s must be a non-negative integer" % show(replicas))
        service = gateway.get("service")
        if isinstance(service, dict):
            _validate_service(problems, where, service, node_ports)
    return problems.messages


def _validate_service(problems, where, service, node_ports):
    stype = service.get("type") or "LoadBalancer"
    ports = service.get("ports")
    if ports is None:
        return
    if ports == []:
        problems.add(where, "service.ports", "must be a non-empty list (omit it for the chart's ports)")
        return
    if not isinstance(ports, list):
        return
    names, numbers = set(), set()
    for pindex, port in enumerate(ports):
        field = "service.ports[%d]" % pindex
        if not isinstance(port, dict):
            continue
        pname = port.get("name")
        if isinstance(pname, str):
            if not vocab.DNS1123_LABEL.match(pname):
                problems.add(where, "%s.name" % field, "%s is not a valid port name" % show(pname))
            elif pname in names:
                problems.add(where, "%s.name" % field, "%s is used twice" % pname)
            else:
                names.add(pname)
        number = port.get("port")
        if common.is_int(number) and common.check_port(problems, where, "%s.port" % field, number):
            if number in numbers:
                problems.add(where, "%s.port" % field, "%d is used twice" % number)
            numbers.add(number)
        target = port.get("target_port")
        if common.is_int(target):
            common.check_port(problems, where, "%s.target_port" % field, target)
        node_port = port.get("node_port")
        if common.is_int(node_port):
            if stype == "ClusterIP":
                problems.add(where, "%s.node_port" % field, "needs service.type NodePort or LoadBalancer (it is ClusterIP)")
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                problems.add(
                    where, "%s.node_port" % field, "%s is outside the node port range %d-%d" % (show(node_port), NODE_PORT_RANGE[0], NODE_PORT_RANGE[1])
                )
            elif node_port in node_ports:
                problems.add(where, "%s.node_port" % field, "%d is also used by %s" % (node_port, node_ports[node_port]))
            else:
                node_ports[node_port] = where


def istio_label(gateway):
    """The value of the `istio` label, which Gateway resources select (chart default: name minus istio-)."""
    label = gateway.get("istio_label")
    if label:
        return label
    name = gateway["name"]
    return name[len("istio-") :] if name.startswith("istio-") else name


def direction(gateway):
    return gateway.get("direction") or GATEWAY_OPTIONS["direction"]["default"]


def identity(gateways, namespace, wanted_direction="ingress", name=""):
    """What other roles need to know of one gateway of the list.

    ``name`` picks a gateway by name; empty picks the first gateway of ``wanted_direction``.
    Returns ``{name, namespace, direction, selector, label_selector, service, fqdn}``
    (``service``: the Service name, ``fqdn``: its cluster-local FQDN, ``label_selector``: the
    selector as a string for the Kubernetes API), or None when the list has no such gateway.
    """
    for gateway in gateways or []:
        if not isinstance(gateway, dict) or not gateway.get("name"):
            continue
        if (name and gateway["name"] == name) or (not name and direction(gateway) == wanted_direction):
            gw_namespace = gateway.get("namespace") or namespace
            return {
                "name": gateway["name"],
                "namespace": gw_namespace,
                "direction": direction(gateway),
                "selector": {vocab.LABEL_ISTIO: istio_label(gateway)},
                "label_selector": "%s=%s" % (vocab.LABEL_ISTIO, istio_label(gateway)),
                "service": gateway["name"],
                "fqdn": vocab.service_fqdn(gateway["name"], gw_namespace),
            }
    return None


def chart_values(gateway, revision=""):
    """Values of the official gateway chart for one validated gateway."""
    labels = {vocab.LABEL_ISTIO: istio_label(gateway)}
    labels.update(gateway.get("labels") or {})
    service = gateway.get("service") or {}
    replicas = gateway.get("replicas", 1)
    values = {
        "name": gateway["name"],
        "labels": labels,
        "replicaCount": replicas,
        "autoscaling": {"enabled": False},
        "service": {"type": service.get("type") or "LoadBalancer"},
    }
    if replicas and replicas > 1:
        # keep one pod serving while the other is replaced (node drains, upgrades)
        values["podDisruptionBudget"] = {"minAvailable": 1}
    if revision:
        values["revision"] = revision
    if gateway.get("resources"):
        values["resources"] = gateway["resources"]
    if service.get("ports"):
        ports = []
        for port in service["ports"]:
            rendered = {
                "name": port["name"],
                "port": port["port"],
                "protocol": port.get("protocol") or "TCP",
                "targetPort": port.get("target_port") or port["port"],
            }
            if port.get("node_port") is not None:
                rendered["nodePort"] = port["node_port"]
            ports.append(rendered)
        values["service"]["ports"] = ports
    if service.get("annotations"):
        values["service"]["annotations"] = service["annotations"]
    if service.get("load_balancer_ip"):
        values["service"]["loadBalancerIP"] = service["load_balancer_ip"]
    if service.get("external_traffic_policy"):
        values["service"]["externalTrafficPolicy"] = service["external_traffic_policy"]
    return merge(values, gateway.get("values") or {})


def revision_of(gateway, revision="", canary=None):
    """The revision or tag that injects a gateway: its own ``revision``, else the canary
    revision for the gateways ``canary`` names (``{names, revision}``), else ``revision``."""
    if gateway.get("revision"):
        return gateway["revision"]
    canary = canary or {}
    if gateway.get("name") in (canary.get("names") or []) and canary.get("revision"):
        return canary["revision"]
    return revision


def releases(gateway_list, namespace, revision="", pull_policy="", pin=None, canary=None):
    """The Helm release of each gateway: ``{name, namespace, values}`` plus the chart pin.

    ``pin`` is ``{chart_version: ...}`` (repository) or ``{chart_path: ...}`` (local chart), as
    meshops.istio.release_state takes it; ``canary`` (``{names, revision}``) gives the gateways
    that select the canary revision tag during a revision-based upgrade.
    """
    out = []
    for gateway in gateway_list or []:
        values = chart_values(gateway, revision_of(gateway, revision, canary))
        if pull_policy:
            values["imagePullPolicy"] = pull_policy
        release = {"name": gateway["name"], "namespace": gateway.get("namespace") or namespace, "values": values}
        release.update(pin or {})
        out.append(release)
    return out


def merge(base, extra):
    """Recursive merge of two mappings (``extra`` wins)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
