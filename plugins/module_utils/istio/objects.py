# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An index of Istio networking objects and Kubernetes Services, with Istio's host rules.

Objects are plain dicts (rendered manifests or what the API server returns). The index
answers the questions routing and lint ask: which Gateways apply to a gateway workload,
how a gateway reference or a host name resolves, which Service or ServiceEntry serves a
host and port, which subsets DestinationRules define.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import (
    CLUSTER_DOMAIN,
    GATEWAY_API_GROUP,
    ISTIO_GROUP,
    UNMODELLED_ISTIO_KINDS,
    name_of,
    namespace_of,
    object_id,
    service_fqdn,
    split_service_fqdn,
)

MODELLED_KINDS = ("Gateway", "VirtualService", "ServiceEntry", "DestinationRule", "Service")


class ObjectError(ValueError):
    """An object is not a usable manifest."""


def api_group(obj):
    api_version = obj.get("apiVersion") or ""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def flatten(objects):
    """Yield manifests from a list that may hold ``kind: List`` objects and None entries."""
    for obj in objects or []:
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ObjectError("object {0!r} is not a mapping".format(obj))
        if obj.get("kind", "").endswith("List") and isinstance(obj.get("items"), list):
            yield from flatten(obj["items"])
        else:
            yield obj


def resolve_host(host, namespace, domain=CLUSTER_DOMAIN):
    """Istio's short-name rule: a name without dots is ``name.<namespace>.svc.<domain>``."""
    host = (host or "").strip().lower()
    if not host or host == "*" or "." in host:
        return host
    return service_fqdn(host, namespace, domain)


def host_matches(pattern, host):
    """Whether concrete ``host`` is matched by ``pattern`` (``*``, ``*.suffix`` or exact)."""
    pattern = pattern.lower()
    host = host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def hosts_intersection(a, b):
    """The more specific of two host patterns when one includes the other, else None."""
    a = a.lower()
    b = b.lower()
    if a == b:
        return a
    if a.startswith("*") and (host_matches(a, b) or (b.startswith("*.") and b.endswith(a[1:]))):
        return b
    if b.startswith("*") and (host_matches(b, a) or (a.startswith("*.") and a.endswith(b[1:]))):
        return a
    return None


def split_server_host(value, gateway_namespace):
    """Gateway server host ``[namespace/]host`` -> (namespace or None for any, host)."""
    if "/" in value:
        ns, host = value.split("/", 1)
        if ns == ".":
            ns = gateway_namespace
        elif ns == "*":
            ns = None
        return ns, host.lower()
    return None, value.lower()


def labels_subset(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def exported_to(obj, namespace, default_namespace="default"):
    """Whether a config object with spec.exportTo is visible from ``namespace``."""
    export = (obj.get("spec") or {}).get("exportTo")
    if not export:
        return True
    own = namespace_of(obj, default_namespace)
    return any(item == "*" or (item == "." and namespace == own) or item == namespace for item in export)


def _sort_key(obj):
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), meta.get("name") or "", meta.get("namespace") or "")


# (API group, kind) -> the MeshIndex attribute holding the objects of that kind: looked up by
# (namespace, name), or listed in Istio's configuration order
_BY_NAME = {("", "Service"): "services", (ISTIO_GROUP, "Gateway"): "gateways", (GATEWAY_API_GROUP, "Gateway"): "k8s_gateways"}
_ORDERED = {
    (ISTIO_GROUP, "VirtualService"): "virtual_services",
    (ISTIO_GROUP, "ServiceEntry"): "service_entries",
    (ISTIO_GROUP, "DestinationRule"): "destination_rules",
    (GATEWAY_API_GROUP, "HTTPRoute"): "http_routes",
    (GATEWAY_API_GROUP, "ReferenceGrant"): "reference_grants",
}


class MeshIndex(object):
    """Index of the objects that decide where a request goes."""

    def __init__(self, objects, default_namespace="default", domain=CLUSTER_DOMAIN):
        self.default_namespace = default_namespace
        self.domain = domain
        # services, gateways (Istio) and k8s_gateways (the Gateway API, see httproutes) by
        # (namespace, name); the other kinds of the two tables below in lists
        for attribute in _BY_NAME.values():
            setattr(self, attribute, {})
        for attribute in _ORDERED.values():
            setattr(self, attribute, [])
        self.unmodelled = []
        self.errors = []
        for obj in flatten(objects):
            kind = obj.get("kind")
            name = name_of(obj)
            if not kind or not name:
                self.errors.append("object without kind or metadata.name: {0}".format(str(obj)[:120]))
                continue
            group = api_group(obj)
            if (group, kind) in _BY_NAME:
                getattr(self, _BY_NAME[(group, kind)])[(self.ns(obj), name)] = obj
            elif (group, kind) in _ORDERED:
                getattr(self, _ORDERED[(group, kind)]).append(obj)
            elif group in (ISTIO_GROUP, GATEWAY_API_GROUP) or kind in UNMODELLED_ISTIO_KINDS:
                self.unmodelled.append(obj)
        # Istio orders configuration by creation time, then name, then namespace.
        for attribute in _ORDERED.values():
            getattr(self, attribute).sort(key=_sort_key)
        self.service_namespaces = set(ns for ns, _name in self.services)

    # -- naming ---------------------------------------------------------------------------
    def ns(self, obj):
        return namespace_of(obj, self.default_namespace)

    def oid(self, obj):
        return object_id(obj, self.default_namespace)

    def resolve(self, host, namespace):
        return resolve_host(host, namespace, self.domain)

    # -- gateways -------------------------------------------------------------------------
    def gateway_ref(self, ref, vs_namespace):
        """Resolve a VirtualService gateway reference to ``(namespace, name)`` or ``"mesh"``."""
        ref = (ref or "").strip()
        if ref == "mesh":
            return "mesh"
        if "/" in ref:
            ns, name = ref.split("/", 1)
            return (ns, name)
        if "." in ref:
            # legacy form <name>.<namespace>.svc.<domain>
            parts = ref.split(".")
            return (parts[1], parts[0])
        return (vs_namespace, ref)

    def vs_gateways(self, vs):
        """Resolved gateway refs of a VirtualService (default: mesh only)."""
        refs = (vs.get("spec") or {}).get("gateways") or ["mesh"]
        return [self.gateway_ref(r, self.ns(vs)) for r in refs]

    def gateways_for_workload(self, labels):
        """Gateways whose selector selects a workload with these labels (sorted by id)."""
        return [(key, gw) for key, gw in sorted(self.gateways.items()) if labels_subset((gw.get("spec") or {}).get("selector") or {}, labels)]

    # -- registry -------------------------------------------------------------------------
    def service_fqdn(self, namespace, name):
        return service_fqdn(name, namespace, self.domain)

    def find_registry(self, fqdn):
        """Return a dict describing the Service or ServiceEntry for ``fqdn``, or None.

        ``{"kind", "object", "ports": [{"number", "name", "protocol"}], "resolution"}``.
        Services win over ServiceEntries; an exact ServiceEntry host wins over a wildcard.
        """
        fqdn = fqdn.lower()
        parts = split_service_fqdn(fqdn, self.domain)
        svc = self.services.get((parts[1], parts[0])) if parts is not None else None
        if svc is not None:
            ports = []
            for port in (svc.get("spec") or {}).get("ports") or []:
                ports.append(
                    {
                        "number": port.get("port"),
                        "name": port.get("name"),
                        "protocol": _service_port_protocol(port),
                        "target_port": port.get("targetPort"),
                        "node_port": port.get("nodePort"),
                    }
                )
            return {"kind": "Service", "object": svc, "ports": ports, "host": fqdn}
        best = None
        for se in self.service_entries:
            spec = se.get("spec") or {}
            for host in spec.get("hosts") or []:
                resolved = self.resolve(host, self.ns(se))
                if host_matches(resolved, fqdn):
                    exact = not resolved.startswith("*")
                    if best is None or (exact and not best[0]):
                        ports = [
                            {"number": p.get("number"), "name": p.get("name"), "protocol": (p.get("protocol") or "TCP").upper()}
                            for p in spec.get("ports") or []
                        ]
                        best = (exact, {"kind": "ServiceEntry", "object": se, "ports": ports, "host": resolved})
        return best[1] if best else None

    def namespace_known(self, fqdn):
        """Whether Services of the namespace of a cluster-local fqdn were given at all."""
        if not fqdn.endswith(".svc." + self.domain):
            return True
        parts = split_service_fqdn(fqdn, self.domain)
        return parts is not None and parts[1] in self.service_namespaces

    def destination_rules_for(self, fqdn, client_namespace=None):
        """DestinationRules whose host matches ``fqdn`` and that the client can see."""
        rules = []
        for dr in self.destination_rules:
            host = self.resolve((dr.get("spec") or {}).get("host"), self.ns(dr))
            if host and host_matches(host, fqdn) and (client_namespace is None or exported_to(dr, client_namespace, self.default_namespace)):
                rules.append(dr)
        return rules

    def subsets_for(self, fqdn, client_namespace=None):
        names = []
        for dr in self.destination_rules_for(fqdn, client_namespace):
            for subset in (dr.get("spec") or {}).get("subsets") or []:
                if subset.get("name") and subset["name"] not in names:
                    names.append(subset["name"])
        return names


def _service_port_protocol(port):
    """Istio protocol selection for a Service port: appProtocol, then the name prefix."""
    app = (port.get("appProtocol") or "").lower()
    name = (port.get("name") or "").lower()
    for candidate in (app, name.split("-", 1)[0]):
        if candidate in ("http", "http2", "grpc", "grpc-web", "https", "tls", "tcp", "mongo", "redis", "mysql"):
            return candidate.upper()
    return "UNKNOWN"
