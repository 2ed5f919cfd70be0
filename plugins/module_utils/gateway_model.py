# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gateways of meshops.istio.gateways: validation and the values of the official gateway chart."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_GATEWAY_KEYS = ("name", "namespace", "istio_label", "labels", "service", "replicas", "resources", "values")
_SERVICE_KEYS = ("type", "ports", "annotations", "load_balancer_ip", "external_traffic_policy")
_PORT_KEYS = ("name", "port", "target_port", "node_port", "protocol")
NODE_PORT_RANGE = (30000, 32767)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _where(index, gateway):
    name = gateway.get("name") if isinstance(gateway, dict) else None
    return "gateways_list[%d] (%s)" % (index, name) if name else "gateways_list[%d]" % index


def validate(gateways, namespace="istio-system"):
    """Every problem of the gateway list, each naming the gateway and the field."""
    errors = []
    if not isinstance(gateways, list):
        return ["gateways_list: must be a list of gateways"]
    seen = {}
    node_ports = {}
    for index, gateway in enumerate(gateways):
        where = _where(index, gateway)
        if not isinstance(gateway, dict):
            errors.append("%s: must be a mapping" % where)
            continue
        for key in sorted(set(gateway) - set(_GATEWAY_KEYS)):
            errors.append("%s: %s: unknown option (allowed: %s)" % (where, key, ", ".join(_GATEWAY_KEYS)))
        name = gateway.get("name")
        if not isinstance(name, str) or len(name) > 63 or not _DNS1123_LABEL.match(name):
            errors.append("%s: name: %r is not a valid DNS label (it names the Helm release, Deployment and Service)" % (where, name))
        gw_namespace = gateway.get("namespace") or namespace
        if not isinstance(gw_namespace, str) or not _DNS1123_LABEL.match(gw_namespace):
            errors.append("%s: namespace: %r is not a valid namespace name" % (where, gw_namespace))
        key = (gw_namespace, name)
        if key in seen:
            errors.append("%s: name: gateway %s/%s is already defined by %s" % (where, gw_namespace, name, seen[key]))
        else:
            seen[key] = where
        label = gateway.get("istio_label")
        if label is not None and (not isinstance(label, str) or not label or not _LABEL_VALUE.match(label)):
            errors.append("%s: istio_label: %r is not a valid label value" % (where, label))
        labels = gateway.get("labels") or {}
        if not isinstance(labels, dict):
            errors.append("%s: labels: must be a mapping" % where)
        elif "istio" in labels:
            errors.append("%s: labels.istio: set istio_label instead (it is also the Gateway selector)" % where)
        replicas = gateway.get("replicas", 1)
        if not _is_int(replicas) or replicas < 0:
            errors.append("%s: replicas: %r must be a non-negative integer" % (where, replicas))
        service = gateway.get("service") or {}
        if not isinstance(service, dict):
            errors.append("%s: service: must be a mapping" % where)
            continue
        for skey in sorted(set(service) - set(_SERVICE_KEYS)):
            errors.append("%s: service.%s: unknown option (allowed: %s)" % (where, skey, ", ".join(_SERVICE_KEYS)))
        stype = service.get("type", "LoadBalancer")
        if stype not in SERVICE_TYPES:
            errors.append("%s: service.type: %r is not one of %s" % (where, stype, ", ".join(SERVICE_TYPES)))
        ports = service.get("ports")
        if ports is None:
            continue
        if not isinstance(ports, list) or not ports:
            errors.append("%s: service.ports: must be a non-empty list (omit it for the chart's ports)" % where)
            continue
        names, numbers = set(), set()
        for pindex, port in enumerate(ports):
            field = "service.ports[%d]" % pindex
            if not isinstance(port, dict):
                errors.append("%s: %s: must be a mapping with name, port, target_port, node_port" % (where, field))
                continue
            for pkey in sorted(set(port) - set(_PORT_KEYS)):
                errors.append("%s: %s.%s: unknown option (allowed: %s)" % (where, field, pkey, ", ".join(_PORT_KEYS)))
            pname = port.get("name")
            if not isinstance(pname, str) or not _DNS1123_LABEL.match(pname):
                errors.append("%s: %s.name: %r is not a valid port name" % (where, field, pname))
            elif pname in names:
                errors.append("%s: %s.name: %s is used twice" % (where, field, pname))
            else:
                names.add(pname)
            number = port.get("port")
            if not _is_int(number) or not 1 <= number <= 65535:
                errors.append("%s: %s.port: %r is not a port number (1-65535)" % (where, field, number))
            elif number in numbers:
                errors.append("%s: %s.port: %d is used twice" % (where, field, number))
            else:
                numbers.add(number)
            target = port.get("target_port")
            if target is not None and (not _is_int(target) or not 1 <= target <= 65535):
                errors.append("%s: %s.target_port: %r is not a port number (1-65535)" % (where, field, target))
            if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                errors.append("%s: %s.protocol: %r is not TCP, UDP or SCTP" % (where, field, port.get("protocol")))
            node_port = port.get("node_port")
            if node_port is not None:
                if stype == "ClusterIP":
                    errors.append("%s: %s.node_port: needs service.type NodePort or LoadBalancer (it is ClusterIP)" % (where, field))
                elif not _is_int(node_port) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                    errors.append("%s: %s.node_port: %r is outside the node port range %d-%d" % ((where, field, node_port, *NODE_PORT_RANGE)))
                elif node_port in node_ports:
                    errors.append("%s: %s.node_port: %d is also used by %s" % (where, field, node_port, node_ports[node_port]))
                else:
                    node_ports[node_port] = where
    return errors


def istio_label(gateway):
    """The value of the `istio` label, which Gateway resources select (chart default: name minus istio-)."""
    label = gateway.get("istio_label")
    if label:
        return label
    name = gateway["name"]
    return name[len("istio-") :] if name.startswith("istio-") else name


def chart_values(gateway, revision=""):
    """Values of the official gateway chart for one validated gateway."""
    labels = {"istio": istio_label(gateway)}
    labels.update(gateway.get("labels") or {})
    service = gateway.get("service") or {}
    values = {
        "name": gateway["name"],
        "labels": labels,
        "replicaCount": gateway.get("replicas", 1),
        "autoscaling": {"enabled": False},
        "service": {"type": service.get("type", "LoadBalancer")},
    }
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
                "protocol": port.get("protocol", "TCP"),
                "targetPort": port.get("target_port", port["port"]),
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
    return _merge(values, gateway.get("values") or {})


def _merge(base, extra):
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
