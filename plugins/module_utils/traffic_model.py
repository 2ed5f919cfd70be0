# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The compact traffic data model of meshops.istio.traffic.

Two lists describe the traffic: ingress routes (a Gateway and a VirtualService exposing a
service in the mesh) and egress routes (a ServiceEntry and, through the egress gateway, a
Gateway, a DestinationRule and a VirtualService). ``validate`` returns every problem of every
route, each naming the route and the field; ``render`` turns valid routes into Istio objects.
The role validates everything before it applies anything.

Pure Python, no Ansible import: used by the filter plugin, the tests and the benchmark.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

API_VERSION = "networking.istio.io/v1"
MANAGED_BY = "meshops.istio"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "meshops.istio/instance"
LABEL_ROUTE = "meshops.istio/route"
OWNED_KINDS = ("Gateway", "VirtualService", "ServiceEntry", "DestinationRule")

INGRESS_PROTOCOLS = ("HTTP", "HTTPS", "HTTP2")
SERVICE_ENTRY_PROTOCOLS = ("HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO")
RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN")
LOCATIONS = ("MESH_EXTERNAL", "MESH_INTERNAL")
TLS_MODES = ("SIMPLE", "MUTUAL")
URI_MATCH_KINDS = ("prefix", "exact", "regex")
STRING_MATCH_KINDS = ("exact", "prefix", "regex")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")

DEFAULT_SETTINGS = {
    "namespace": "httpbin",
    "instance": "default",
    "ingress_gateway_selector": {"istio": "ingressgateway"},
    "egress_gateway": {
        "name": "istio-egressgateway",
        "selector": {"istio": "egressgateway"},
        "service": "istio-egressgateway.istio-system.svc.cluster.local",
        "port": 80,
    },
}

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOSTNAME = re.compile(r"^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

_INGRESS_KEYS = ("name", "namespace", "hosts", "gateway", "http")
_GATEWAY_KEYS = ("name", "namespace", "selector", "port", "port_name", "protocol", "tls", "https_redirect")
_TLS_KEYS = ("mode", "credential_name")
_RULE_KEYS = ("name", "match", "route", "timeout", "retries", "rewrite")
_MATCH_KEYS = ("prefix", "exact", "regex", "method", "headers", "port")
_DEST_KEYS = ("host", "port", "subset", "weight")
_RETRY_KEYS = ("attempts", "per_try_timeout", "retry_on")
_REWRITE_KEYS = ("uri", "authority")
_EGRESS_KEYS = ("name", "namespace", "host", "ports", "resolution", "location", "egress_gateway")
_EGRESS_PORT_KEYS = ("number", "name", "protocol")
_EGRESS_GW_KEYS = ("enabled", "name", "selector", "service", "port", "route_port")


class TrafficModelError(ValueError):
    """Raised by render() when the routes are not valid; carries every error."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(TrafficModelError, self).__init__("\n".join(self.errors))


def merge_settings(settings=None):
    """Return DEFAULT_SETTINGS updated with the given settings (egress_gateway merged key by key)."""
    merged = copy.deepcopy(DEFAULT_SETTINGS)
    for key, value in (settings or {}).items():
        if value is None:
            continue
        if key == "egress_gateway" and isinstance(value, dict):
            merged["egress_gateway"].update({k: v for k, v in value.items() if v is not None})
        else:
            merged[key] = value
    return merged


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_port(value):
    return _is_int(value) and 1 <= value <= 65535


class _Errors:
    """Collects messages of the form '<where>: <field>: <problem>'."""

    def __init__(self):
        self.messages = []

    def add(self, where, field, problem):
        self.messages.append("%s: %s: %s" % (where, field, problem) if field else "%s: %s" % (where, problem))


def _where(kind, index, item):
    name = item.get("name") if isinstance(item, dict) else None
    if name:
        return "%s[%d] (%s)" % (kind, index, name)
    return "%s[%d]" % (kind, index)


def _unknown_keys(errors, where, field, value, allowed):
    for key in sorted(set(value) - set(allowed)):
        errors.add(where, "%s.%s" % (field, key) if field else key, "unknown option (allowed: %s)" % ", ".join(allowed))


def _check_name(errors, where, field, value, pattern=_DNS1123_SUBDOMAIN, maxlen=253):
    if not isinstance(value, str) or not value:
        errors.add(where, field, "is required and must be a non-empty string")
        return False
    if len(value) > maxlen or not pattern.match(value):
        errors.add(where, field, "%r is not a valid Kubernetes name (lower case letters, digits and '-', at most %d characters)" % (value, maxlen))
        return False
    return True


def _check_selector(errors, where, field, value):
    if not isinstance(value, dict) or not value:
        errors.add(where, field, "must be a non-empty mapping of pod labels, for example {istio: ingressgateway}")
        return
    for key, val in value.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key) or len(key) > 317:
            errors.add(where, field, "%r is not a valid label key" % (key,))
        if not isinstance(val, str) or len(val) > 63 or not _LABEL_VALUE.match(val):
            errors.add(where, "%s.%s" % (field, key), "%r is not a valid label value (quote numbers)" % (val,))


def _check_host(errors, where, field, value, allow_wildcard=True):
    if not isinstance(value, str) or not value:
        errors.add(where, field, "must be a non-empty host name")
        return
    if "/" in value:
        errors.add(where, field, "%r must be a plain host name; namespace/host forms are not part of this model" % value)
        return
    if not _HOSTNAME.match(value) or len(value) > 253:
        errors.add(where, field, "%r is not a valid host name (lower case DNS name, optionally '*.' prefixed)" % value)
        return
    if not allow_wildcard and "*" in value:
        errors.add(where, field, "%r: wildcards are not allowed here" % value)


def _check_duration(errors, where, field, value):
    if not isinstance(value, str) or not _DURATION.match(value):
        errors.add(where, field, "%r is not a duration such as 500ms, 5s or 1m" % (value,))


def _validate_match(errors, where, field, match):
    if not isinstance(match, dict):
        errors.add(where, field, "must be a mapping with prefix, exact, regex, method, headers or port")
        return
    _unknown_keys(errors, where, field, match, _MATCH_KEYS)
    uri_kinds = [k for k in URI_MATCH_KINDS if match.get(k) is not None]
    if len(uri_kinds) > 1:
        errors.add(where, field, "use only one of prefix, exact or regex (found %s)" % ", ".join(uri_kinds))
    for kind in uri_kinds:
        value = match[kind]
        if not isinstance(value, str) or not value:
            errors.add(where, "%s.%s" % (field, kind), "must be a non-empty string")
        elif kind in ("prefix", "exact") and not value.startswith("/"):
            errors.add(where, "%s.%s" % (field, kind), "%r must start with '/'" % value)
        elif kind == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                errors.add(where, "%s.regex" % field, "%r is not a valid regular expression (%s)" % (value, exc))
    method = match.get("method")
    if method is not None and method not in HTTP_METHODS:
        errors.add(where, "%s.method" % field, "%r is not an HTTP method (one of %s)" % (method, ", ".join(HTTP_METHODS)))
    port = match.get("port")
    if port is not None and not _valid_port(port):
        errors.add(where, "%s.port" % field, "%r is not a port number (1-65535)" % (port,))
    headers = match.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not headers:
            errors.add(where, "%s.headers" % field, "must map header names to {exact|prefix|regex: value}")
        else:
            for name, cond in headers.items():
                hfield = "%s.headers.%s" % (field, name)
                if not isinstance(name, str) or name != name.lower() or not re.match(r"^[a-z0-9!#$%&'*+.^_`|~-]+$", name):
                    errors.add(where, hfield, "header names must be lower case HTTP tokens")
                if not isinstance(cond, dict) or len(cond) != 1 or next(iter(cond)) not in STRING_MATCH_KINDS:
                    errors.add(where, hfield, "must be exactly one of {exact: v}, {prefix: v} or {regex: v}")


def _validate_destination(errors, where, field, dest):
    if not isinstance(dest, dict):
        errors.add(where, field, "must be a mapping with host, port, subset and weight")
        return
    _unknown_keys(errors, where, field, dest, _DEST_KEYS)
    _check_host(errors, where, "%s.host" % field, dest.get("host"))
    if dest.get("port") is not None and not _valid_port(dest.get("port")):
        errors.add(where, "%s.port" % field, "%r is not a port number (1-65535)" % (dest.get("port"),))
    if dest.get("subset") is not None:
        _check_name(errors, where, "%s.subset" % field, dest.get("subset"), _DNS1123_LABEL, 63)
    weight = dest.get("weight")
    if weight is not None and (not _is_int(weight) or not 0 <= weight <= 100):
        errors.add(where, "%s.weight" % field, "%r must be an integer from 0 to 100" % (weight,))


def _validate_rule(errors, where, field, rule):
    if not isinstance(rule, dict):
        errors.add(where, field, "must be a mapping with match and route")
        return
    _unknown_keys(errors, where, field, rule, _RULE_KEYS)
    if rule.get("name") is not None and not isinstance(rule.get("name"), str):
        errors.add(where, "%s.name" % field, "must be a string")
    matches = rule.get("match")
    if matches is not None:
        if not isinstance(matches, list):
            errors.add(where, "%s.match" % field, "must be a list of alternatives (a request matching any of them is routed)")
        else:
            for mindex, match in enumerate(matches):
                _validate_match(errors, where, "%s.match[%d]" % (field, mindex), match)
    route = rule.get("route")
    if not isinstance(route, list) or not route:
        errors.add(where, "%s.route" % field, "needs at least one destination")
    else:
        for dindex, dest in enumerate(route):
            _validate_destination(errors, where, "%s.route[%d]" % (field, dindex), dest)
        weights = [d.get("weight") for d in route if isinstance(d, dict)]
        given = [w for w in weights if w is not None]
        if given and len(given) != len(weights):
            errors.add(where, "%s.route" % field, "give a weight to every destination or to none")
        elif len(given) > 1 and all(_is_int(w) for w in given) and sum(given) != 100:
            errors.add(where, "%s.route" % field, "weights add up to %d, they must add up to 100" % sum(given))
    if rule.get("timeout") is not None:
        _check_duration(errors, where, "%s.timeout" % field, rule.get("timeout"))
    retries = rule.get("retries")
    if retries is not None:
        if not isinstance(retries, dict):
            errors.add(where, "%s.retries" % field, "must be a mapping with attempts, per_try_timeout and retry_on")
        else:
            _unknown_keys(errors, where, "%s.retries" % field, retries, _RETRY_KEYS)
            attempts = retries.get("attempts")
            if not _is_int(attempts) or attempts < 0:
                errors.add(where, "%s.retries.attempts" % field, "%r must be a non-negative integer" % (attempts,))
            if retries.get("per_try_timeout") is not None:
                _check_duration(errors, where, "%s.retries.per_try_timeout" % field, retries.get("per_try_timeout"))
            if retries.get("retry_on") is not None and not isinstance(retries.get("retry_on"), str):
                errors.add(where, "%s.retries.retry_on" % field, "must be a comma separated string such as 5xx,connect-failure")
    rewrite = rule.get("rewrite")
    if rewrite is not None:
        if not isinstance(rewrite, dict) or not rewrite:
            errors.add(where, "%s.rewrite" % field, "must be a mapping with uri and/or authority")
        else:
            _unknown_keys(errors, where, "%s.rewrite" % field, rewrite, _REWRITE_KEYS)
            if rewrite.get("uri") is not None and (not isinstance(rewrite["uri"], str) or not rewrite["uri"].startswith("/")):
                errors.add(where, "%s.rewrite.uri" % field, "%r must start with '/'" % (rewrite.get("uri"),))


def _gateway_of(route, settings):
    """The ingress Gateway a route asks for, with defaults filled in."""
    gateway = route.get("gateway") or {}
    protocol = gateway.get("protocol") or "HTTP"
    return {
        "name": gateway.get("name"),
        "namespace": gateway.get("namespace") or route.get("namespace") or settings["namespace"],
        "selector": settings["ingress_gateway_selector"] if gateway.get("selector") is None else gateway["selector"],
        "port": gateway.get("port") if gateway.get("port") is not None else (443 if protocol == "HTTPS" else 80),
        "port_name": gateway.get("port_name") or (str(protocol).lower() if isinstance(protocol, str) else None),
        "protocol": protocol,
        "tls": gateway.get("tls"),
        "https_redirect": bool(gateway.get("https_redirect")),
    }


def _validate_ingress(errors, index, route, settings, seen):
    where = _where("traffic_ingress_routes", index, route)
    if not isinstance(route, dict):
        errors.add(where, None, "must be a mapping")
        return
    _unknown_keys(errors, where, None, route, _INGRESS_KEYS)
    _check_name(errors, where, "name", route.get("name"))
    namespace = route.get("namespace") or settings["namespace"]
    _check_name(errors, where, "namespace", namespace, _DNS1123_LABEL, 63)
    hosts = route.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        errors.add(where, "hosts", "needs at least one host, for example [httpbin.example.com]")
    else:
        for hindex, host in enumerate(hosts):
            _check_host(errors, where, "hosts[%d]" % hindex, host)
        if len(set(map(str, hosts))) != len(hosts):
            errors.add(where, "hosts", "lists a host twice")
    raw_gateway = route.get("gateway")
    if not isinstance(raw_gateway, dict):
        errors.add(where, "gateway", "is required: a mapping with at least the Gateway name")
    else:
        _unknown_keys(errors, where, "gateway", raw_gateway, _GATEWAY_KEYS)
        gateway = _gateway_of(route, settings)
        _check_name(errors, where, "gateway.name", gateway["name"])
        if raw_gateway.get("namespace") is not None:
            _check_name(errors, where, "gateway.namespace", raw_gateway.get("namespace"), _DNS1123_LABEL, 63)
        _check_selector(errors, where, "gateway.selector", gateway["selector"])
        if not _valid_port(gateway["port"]):
            errors.add(where, "gateway.port", "%r is not a port number (1-65535)" % (gateway["port"],))
        if gateway["protocol"] not in INGRESS_PROTOCOLS:
            errors.add(where, "gateway.protocol", "%r is not one of %s" % (gateway["protocol"], ", ".join(INGRESS_PROTOCOLS)))
        if gateway["port_name"] is not None and (not isinstance(gateway["port_name"], str) or not _PORT_NAME.match(gateway["port_name"])):
            errors.add(where, "gateway.port_name", "%r is not a valid port name" % (gateway["port_name"],))
        tls = gateway["tls"]
        if gateway["protocol"] == "HTTPS":
            if not isinstance(tls, dict):
                errors.add(where, "gateway.tls", "is required with protocol HTTPS: {mode: SIMPLE, credential_name: <secret>}")
            else:
                _unknown_keys(errors, where, "gateway.tls", tls, _TLS_KEYS)
                if (tls.get("mode") or "SIMPLE") not in TLS_MODES:
                    errors.add(where, "gateway.tls.mode", "%r is not one of %s" % (tls.get("mode"), ", ".join(TLS_MODES)))
                _check_name(errors, where, "gateway.tls.credential_name", tls.get("credential_name"))
        elif tls is not None:
            errors.add(where, "gateway.tls", "is only valid with protocol HTTPS (protocol is %s)" % gateway["protocol"])
        if gateway["https_redirect"] and gateway["protocol"] != "HTTP":
            errors.add(where, "gateway.https_redirect", "is only valid with protocol HTTP")
        key = (gateway["namespace"], gateway["name"])
        previous = seen["gateways"].get(key)
        if previous is not None and previous["selector"] != gateway["selector"]:
            errors.add(where, "gateway.selector", "Gateway %s/%s is also used by route %s with selector %s" % ((*key, previous["route"], previous["selector"])))
        if previous is not None and previous["port"] == gateway["port"] and (previous["protocol"], previous["tls"]) != (gateway["protocol"], gateway["tls"]):
            errors.add(
                where,
                "gateway",
                "Gateway %s/%s port %s is also used by route %s with another protocol or TLS setting" % ((*key, gateway["port"], previous["route"])),
            )
        if previous is None:
            seen["gateways"][key] = dict(gateway, route=route.get("name"))
    rules = route.get("http")
    if not isinstance(rules, list) or not rules:
        errors.add(where, "http", "needs at least one rule with a route")
    else:
        for rindex, rule in enumerate(rules):
            _validate_rule(errors, where, "http[%d]" % rindex, rule)
    vs_key = (namespace, route.get("name"))
    if vs_key in seen["virtualservices"]:
        errors.add(where, "name", "VirtualService %s/%s is already defined by %s" % ((*vs_key, seen["virtualservices"][vs_key])))
    else:
        seen["virtualservices"][vs_key] = where


def _egress_gateway_of(route, settings):
    raw = route.get("egress_gateway")
    if raw is False:
        raw = {"enabled": False}
    raw = raw or {}
    merged = dict(settings["egress_gateway"])
    merged.update({k: v for k, v in raw.items() if v is not None})
    merged["enabled"] = raw.get("enabled", True) is not False
    return merged


def _egress_route_port(route, gateway):
    """The external port routed through the egress gateway: explicit, else the first HTTP port."""
    if gateway.get("route_port") is not None:
        return gateway["route_port"]
    for port in route.get("ports") or []:
        if isinstance(port, dict) and port.get("protocol") in ("HTTP", "HTTP2"):
            return port.get("number")
    return None


def _validate_egress(errors, index, route, settings, seen):
    where = _where("traffic_egress_routes", index, route)
    if not isinstance(route, dict):
        errors.add(where, None, "must be a mapping")
        return
    _unknown_keys(errors, where, None, route, _EGRESS_KEYS)
    _check_name(errors, where, "name", route.get("name"), _DNS1123_LABEL, 63)
    namespace = route.get("namespace") or settings["namespace"]
    _check_name(errors, where, "namespace", namespace, _DNS1123_LABEL, 63)
    resolution = route.get("resolution") or "DNS"
    if resolution not in RESOLUTIONS:
        errors.add(where, "resolution", "%r is not one of %s" % (resolution, ", ".join(RESOLUTIONS)))
    _check_host(errors, where, "host", route.get("host"), allow_wildcard=resolution == "NONE")
    if route.get("location") is not None and route.get("location") not in LOCATIONS:
        errors.add(where, "location", "%r is not one of %s" % (route.get("location"), ", ".join(LOCATIONS)))
    ports = route.get("ports")
    if not isinstance(ports, list) or not ports:
        errors.add(where, "ports", "needs at least one port, for example {number: 80, name: http-port, protocol: HTTP}")
        ports = []
    numbers, names = set(), set()
    for pindex, port in enumerate(ports):
        field = "ports[%d]" % pindex
        if not isinstance(port, dict):
            errors.add(where, field, "must be a mapping with number, name and protocol")
            continue
        _unknown_keys(errors, where, field, port, _EGRESS_PORT_KEYS)
        if not _valid_port(port.get("number")):
            errors.add(where, "%s.number" % field, "%r is not a port number (1-65535)" % (port.get("number"),))
        elif port["number"] in numbers:
            errors.add(where, "%s.number" % field, "port %d is listed twice" % port["number"])
        else:
            numbers.add(port["number"])
        if not isinstance(port.get("name"), str) or not _PORT_NAME.match(port.get("name") or ""):
            errors.add(where, "%s.name" % field, "%r is not a valid port name" % (port.get("name"),))
        elif port["name"] in names:
            errors.add(where, "%s.name" % field, "port name %r is used twice" % port["name"])
        else:
            names.add(port["name"])
        if port.get("protocol") not in SERVICE_ENTRY_PROTOCOLS:
            errors.add(where, "%s.protocol" % field, "%r is not one of %s" % (port.get("protocol"), ", ".join(SERVICE_ENTRY_PROTOCOLS)))
    raw_gateway = route.get("egress_gateway")
    if raw_gateway is not None and raw_gateway is not False and not isinstance(raw_gateway, dict):
        errors.add(where, "egress_gateway", "must be a mapping (or false to reach the host directly)")
        return
    if isinstance(raw_gateway, dict):
        _unknown_keys(errors, where, "egress_gateway", raw_gateway, _EGRESS_GW_KEYS)
    gateway = _egress_gateway_of(route, settings)
    if gateway["enabled"]:
        _check_name(errors, where, "egress_gateway.name", gateway.get("name"))
        _check_selector(errors, where, "egress_gateway.selector", gateway.get("selector"))
        _check_host(errors, where, "egress_gateway.service", gateway.get("service"), allow_wildcard=False)
        if not _valid_port(gateway.get("port")):
            errors.add(where, "egress_gateway.port", "%r is not a port number (1-65535)" % (gateway.get("port"),))
        route_port = _egress_route_port(route, gateway)
        if route_port is None:
            errors.add(where, "ports", "routing through the egress gateway needs an HTTP port (or set egress_gateway.route_port)")
        elif route_port not in numbers and numbers:
            errors.add(where, "egress_gateway.route_port", "%r is not one of the route's ports (%s)" % (route_port, ", ".join(str(n) for n in sorted(numbers))))
        key = (namespace, gateway.get("name"))
        previous = seen["egress_gateways"].get(key)
        if previous is not None and previous["selector"] != gateway.get("selector"):
            errors.add(
                where,
                "egress_gateway.selector",
                "Gateway %s/%s is also used by egress route %s with selector %s" % ((*key, previous["route"], previous["selector"])),
            )
        if previous is None:
            seen["egress_gateways"][key] = {"selector": gateway.get("selector"), "route": route.get("name")}
        if key in seen["gateways"]:
            errors.add(where, "egress_gateway.name", "Gateway %s/%s is also an ingress route's gateway; use another name" % key)
    se_key = (namespace, route.get("name"))
    if se_key in seen["serviceentries"]:
        errors.add(where, "name", "ServiceEntry %s/%s is already defined by %s" % ((*se_key, seen["serviceentries"][se_key])))
    else:
        seen["serviceentries"][se_key] = where
    if gateway["enabled"]:
        vs_key = (namespace, "direct-%s-through-egress-gateway" % route.get("name"))
        if vs_key in seen["virtualservices"]:
            errors.add(where, "name", "VirtualService %s/%s is already defined by %s" % ((*vs_key, seen["virtualservices"][vs_key])))
        else:
            seen["virtualservices"][vs_key] = where


def validate(ingress_routes, egress_routes, settings=None):
    """Return the list of problems (empty when the routes are valid). Never raises on bad data."""
    settings = merge_settings(settings)
    errors = _Errors()
    if not isinstance(settings.get("namespace"), str) or not _DNS1123_LABEL.match(settings.get("namespace") or ""):
        errors.add("traffic_namespace", None, "%r is not a valid namespace name" % (settings.get("namespace"),))
    if not isinstance(settings.get("instance"), str) or not _LABEL_VALUE.match(settings.get("instance") or "") or not settings.get("instance"):
        errors.add("traffic_instance", None, "%r must be a valid label value (letters, digits, '-', '_', '.')" % (settings.get("instance"),))
    seen = {"gateways": {}, "egress_gateways": {}, "virtualservices": {}, "serviceentries": {}}
    for name, routes in (("traffic_ingress_routes", ingress_routes), ("traffic_egress_routes", egress_routes)):
        if routes is not None and not isinstance(routes, list):
            errors.add(name, None, "must be a list of routes")
    for index, route in enumerate(ingress_routes if isinstance(ingress_routes, list) else []):
        _validate_ingress(errors, index, route, settings, seen)
    for index, route in enumerate(egress_routes if isinstance(egress_routes, list) else []):
        _validate_egress(errors, index, route, settings, seen)
    return errors.messages


def _metadata(name, namespace, settings, routes):
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: settings["instance"]}
    if len(routes) == 1:
        labels[LABEL_ROUTE] = routes[0]
    return {"name": name, "namespace": namespace, "labels": labels}


def _string_match(kind, value):
    return {kind: value}


def _render_match(match):
    rendered = {}
    for kind in URI_MATCH_KINDS:
        if match.get(kind) is not None:
            rendered["uri"] = _string_match(kind, match[kind])
    if match.get("method") is not None:
        rendered["method"] = {"exact": match["method"]}
    if match.get("headers"):
        rendered["headers"] = {name: dict(cond) for name, cond in sorted(match["headers"].items())}
    if match.get("port") is not None:
        rendered["port"] = match["port"]
    return rendered


def _render_destination(dest):
    destination = {"host": dest["host"]}
    if dest.get("subset") is not None:
        destination["subset"] = dest["subset"]
    if dest.get("port") is not None:
        destination["port"] = {"number": dest["port"]}
    rendered = {"destination": destination}
    if dest.get("weight") is not None:
        rendered["weight"] = dest["weight"]
    return rendered


def _render_rule(rule):
    rendered = {}
    if rule.get("name"):
        rendered["name"] = rule["name"]
    if rule.get("match"):
        rendered["match"] = [_render_match(m) for m in rule["match"]]
    if rule.get("rewrite"):
        rendered["rewrite"] = dict(rule["rewrite"])
    rendered["route"] = [_render_destination(d) for d in rule["route"]]
    if rule.get("timeout"):
        rendered["timeout"] = rule["timeout"]
    if rule.get("retries"):
        retries = {"attempts": rule["retries"]["attempts"]}
        if rule["retries"].get("per_try_timeout"):
            retries["perTryTimeout"] = rule["retries"]["per_try_timeout"]
        if rule["retries"].get("retry_on"):
            retries["retryOn"] = rule["retries"]["retry_on"]
        rendered["retries"] = retries
    return rendered


def _gateway_ref(gateway_ns, gateway_name, route_ns):
    return gateway_name if gateway_ns == route_ns else "%s/%s" % (gateway_ns, gateway_name)


def render(ingress_routes, egress_routes, settings=None):
    """Render valid routes into Istio objects (dicts), Gateways first, in a stable order."""
    errors = validate(ingress_routes, egress_routes, settings)
    if errors:
        raise TrafficModelError(errors)
    settings = merge_settings(settings)
    gateways = {}  # (ns, name) -> {"selector", "servers": {(port, protocol): server}, "routes": []}
    virtualservices, serviceentries, destinationrules = [], [], []

    def gateway_entry(namespace, name, selector, route_name):
        entry = gateways.setdefault((namespace, name), {"selector": selector, "servers": {}, "order": [], "routes": []})
        if route_name not in entry["routes"]:
            entry["routes"].append(route_name)
        return entry

    def add_server(entry, port_number, port_name, protocol, hosts, tls=None):
        key = (port_number, protocol)
        server = entry["servers"].get(key)
        if server is None:
            server = {"port": {"number": port_number, "name": port_name, "protocol": protocol}, "hosts": []}
            if tls is not None:
                server["tls"] = tls
            entry["servers"][key] = server
            entry["order"].append(key)
        for host in hosts:
            if host not in server["hosts"]:
                server["hosts"].append(host)

    for route in ingress_routes or []:
        namespace = route.get("namespace") or settings["namespace"]
        gateway = _gateway_of(route, settings)
        entry = gateway_entry(gateway["namespace"], gateway["name"], dict(gateway["selector"]), route["name"])
        tls = None
        if gateway["protocol"] == "HTTPS":
            tls = {"mode": gateway["tls"].get("mode") or "SIMPLE", "credentialName": gateway["tls"]["credential_name"]}
        elif gateway["https_redirect"]:
            tls = {"httpsRedirect": True}
        add_server(entry, gateway["port"], gateway["port_name"], gateway["protocol"], route["hosts"], tls)
        virtualservices.append(
            {
                "apiVersion": API_VERSION,
                "kind": "VirtualService",
                "metadata": _metadata(route["name"], namespace, settings, [route["name"]]),
                "spec": {
                    "hosts": list(route["hosts"]),
                    "gateways": [_gateway_ref(gateway["namespace"], gateway["name"], namespace)],
                    "http": [_render_rule(rule) for rule in route["http"]],
                },
            }
        )

    for route in egress_routes or []:
        namespace = route.get("namespace") or settings["namespace"]
        name = route["name"]
        spec = {
            "hosts": [route["host"]],
            "ports": [{"number": p["number"], "name": p["name"], "protocol": p["protocol"]} for p in route["ports"]],
            "resolution": route.get("resolution") or "DNS",
        }
        if route.get("location"):
            spec["location"] = route["location"]
        serviceentries.append({"apiVersion": API_VERSION, "kind": "ServiceEntry", "metadata": _metadata(name, namespace, settings, [name]), "spec": spec})
        gateway = _egress_gateway_of(route, settings)
        if not gateway["enabled"]:
            continue
        route_port = _egress_route_port(route, gateway)
        entry = gateway_entry(namespace, gateway["name"], dict(gateway["selector"]), name)
        add_server(entry, gateway["port"], "http", "HTTP", [route["host"]])
        destinationrules.append(
            {
                "apiVersion": API_VERSION,
                "kind": "DestinationRule",
                "metadata": _metadata("egressgateway-for-%s" % name, namespace, settings, [name]),
                "spec": {"host": gateway["service"], "subsets": [{"name": name}]},
            }
        )
        virtualservices.append(
            {
                "apiVersion": API_VERSION,
                "kind": "VirtualService",
                "metadata": _metadata("direct-%s-through-egress-gateway" % name, namespace, settings, [name]),
                "spec": {
                    "hosts": [route["host"]],
                    "gateways": [gateway["name"], "mesh"],
                    "http": [
                        {
                            "match": [{"gateways": ["mesh"], "port": route_port}],
                            "route": [
                                {
                                    "destination": {"host": gateway["service"], "subset": name, "port": {"number": gateway["port"]}},
                                    "weight": 100,
                                }
                            ],
                        },
                        {
                            "match": [{"gateways": [gateway["name"]], "port": gateway["port"]}],
                            "route": [{"destination": {"host": route["host"], "port": {"number": route_port}}, "weight": 100}],
                        },
                    ],
                },
            }
        )

    rendered_gateways = []
    for (namespace, name), entry in gateways.items():
        rendered_gateways.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Gateway",
                "metadata": _metadata(name, namespace, settings, entry["routes"]),
                "spec": {"selector": entry["selector"], "servers": [entry["servers"][key] for key in entry["order"]]},
            }
        )
    return rendered_gateways + serviceentries + destinationrules + virtualservices


def object_key(obj):
    """'Kind namespace/name' of a manifest, as used in messages and prune decisions."""
    metadata = obj.get("metadata") or {}
    return "%s %s/%s" % (obj.get("kind"), metadata.get("namespace"), metadata.get("name"))


def stale_objects(owned, rendered):
    """Objects in ``owned`` (read from the cluster by label) that ``rendered`` no longer contains."""
    wanted = set(object_key(obj) for obj in rendered)
    return [obj for obj in owned if object_key(obj) not in wanted]


def owned_selector(settings=None):
    """Label selector matching the objects this instance of the traffic role owns."""
    settings = merge_settings(settings)
    return "%s=%s,%s=%s" % (LABEL_MANAGED_BY, MANAGED_BY, LABEL_INSTANCE, settings["instance"])
