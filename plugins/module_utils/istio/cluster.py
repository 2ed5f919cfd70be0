# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Cluster reads for the route modules: gateway address discovery and mesh objects.

The API client comes from kubernetes.core (same auth options as its modules); the pure
part, ``pick_address``, decides from a Service and its Nodes which address reaches the
gateway: a LoadBalancer ingress IP/hostname, or a NodePort on a node address.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import GATEWAY_API_OWNED, OWNED_KINDS, READ_API_VERSIONS


class DiscoveryError(Exception):
    """The gateway address cannot be derived from the cluster."""


def _port_matches(port, wanted):
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return port.get("port") == int(wanted)
    return port.get("name") == wanted


def select_port(service, wanted, scheme):
    """The Service port for ``wanted`` (number or name) or, if None, the one for ``scheme``."""
    ports = (service.get("spec") or {}).get("ports") or []
    if wanted is not None:
        for port in ports:
            if _port_matches(port, wanted):
                return port
        return None
    default_number = 443 if scheme == "https" else 80
    for port in ports:
        if port.get("port") == default_number:
            return port
    for port in ports:
        name = (port.get("name") or "").lower()
        if (scheme == "https" and name.startswith("https")) or (scheme == "http" and name.startswith("http") and not name.startswith("https")):
            return port
    return None


def node_address(nodes):
    """ExternalIP of the first node that has one, else its InternalIP."""
    for wanted in ("ExternalIP", "InternalIP"):
        for node in nodes:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == wanted and address.get("address"):
                    return address["address"]
    return None


def _join(host, port):
    return "[{0}]:{1}".format(host, port) if ":" in host else "{0}:{1}".format(host, port)


def pick_address(service, nodes, wanted_port=None, scheme="http", prefer="auto", override_node_address=None):
    """Return ``{address, source, service_port, node_port}`` for one scheme, or raise DiscoveryError."""
    meta = service.get("metadata") or {}
    sid = "Service {0}/{1}".format(meta.get("namespace"), meta.get("name"))
    spec = service.get("spec") or {}
    port = select_port(service, wanted_port, scheme)
    if port is None:
        names = ", ".join("{0}/{1}".format(p.get("name"), p.get("port")) for p in spec.get("ports") or []) or "none"
        raise DiscoveryError(
            "{sid} has no {scheme} port{wanted} (ports: {names}); set gateway_service.{scheme}_port".format(
                sid=sid, scheme=scheme, wanted=" {0}".format(wanted_port) if wanted_port is not None else "", names=names
            )
        )
    svc_type = spec.get("type") or "ClusterIP"
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if prefer in ("auto", "loadbalancer") and svc_type == "LoadBalancer" and ingress:
        host = ingress[0].get("ip") or ingress[0].get("hostname")
        if host:
            return {"address": _join(host, port["port"]), "source": "loadbalancer", "service_port": port["port"], "node_port": port.get("nodePort")}
    if prefer == "loadbalancer":
        raise DiscoveryError("{0} has no LoadBalancer ingress address yet (type {1}); wait for it or use prefer: nodeport".format(sid, svc_type))
    if svc_type in ("NodePort", "LoadBalancer") and port.get("nodePort"):
        host = override_node_address or node_address(nodes)
        if not host:
            raise DiscoveryError("{0}: no node address found; set gateway_service.node_address".format(sid))
        return {"address": _join(host, port["nodePort"]), "source": "nodeport", "service_port": port["port"], "node_port": port["nodePort"]}
    raise DiscoveryError(
        "{0} is of type {1} with no LoadBalancer address nor node port; set address explicitly (for example a kind port mapping)".format(sid, svc_type)
    )


def discover(client, name, namespace, http_port=None, https_port=None, prefer="auto", override_node_address=None):
    """Read the gateway Service (and nodes when needed); addresses per scheme + selector."""
    service = client.resource("Service", "v1").get(name=name, namespace=namespace).to_dict()
    nodes = []
    if not override_node_address and (service.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer"):
        nodes = client.resource("Node", "v1").get().to_dict().get("items") or []
    found = {}
    errors = []
    for scheme, wanted in (("http", http_port), ("https", https_port)):
        try:
            found[scheme] = pick_address(service, nodes, wanted, scheme, prefer, override_node_address)
        except DiscoveryError as exc:
            if wanted is not None:
                raise
            errors.append(str(exc))
    if not found:
        raise DiscoveryError("; ".join(errors))
    return {
        "service": "{0}/{1}".format(namespace, name),
        "selector": (service.get("spec") or {}).get("selector") or {},
        "addresses": dict((k, v["address"]) for k, v in found.items()),
        "details": found,
    }


def missing_namespaces(client, namespaces):
    """The namespaces of the list that do not exist."""
    resource = client.resource("Namespace", "v1")
    missing = []
    for name in namespaces:
        if name == "*":
            continue
        try:
            resource.get(name=name)
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, "status", None) == 404:
                missing.append(name)
            else:
                raise
    return missing


def read_objects(client, namespaces):
    """Gateways, VirtualServices, ServiceEntries, DestinationRules, the Gateway API's Gateways,
    HTTPRoutes and ReferenceGrants (where their CRDs exist) and Services of namespaces.

    ``namespaces`` may contain ``*`` for all namespaces.
    """
    scopes = [None] if "*" in namespaces else list(namespaces)
    objects = []
    for kind in OWNED_KINDS:
        resource = None
        for api_version in READ_API_VERSIONS:
            try:
                resource = client.resource(kind, api_version)
                break
            except Exception:  # pylint: disable=broad-except
                continue
        if resource is None:
            continue
        for ns in scopes:
            objects.extend(_items(client, resource, ns, kind))
    for api_version, kind in GATEWAY_API_OWNED:  # when the Gateway API CRDs are installed
        try:
            resource = client.resource(kind, api_version)
        except Exception:  # pylint: disable=broad-except
            continue
        for ns in scopes:
            try:
                objects.extend(_items(client, resource, ns, kind))
            except Exception as exc:  # pylint: disable=broad-except
                if getattr(exc, "status", None) != 403:
                    raise
                # a token without the Gateway API's read rights (traffic_api istio): those objects
                # are left out of the explanation, as on a cluster without the CRDs
    service = client.resource("Service", "v1")
    for ns in scopes:
        objects.extend(_items(client, service, ns, "Service"))
    return objects


def _items(client, resource, namespace, kind):
    data = resource.get(namespace=namespace).to_dict() if namespace else resource.get().to_dict()
    items = data.get("items") or []
    for item in items:
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", data.get("apiVersion") or "v1")
    return items
