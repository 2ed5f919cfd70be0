# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The traffic data model rendered as Kubernetes Gateway API objects (``traffic_api: gateway_api``).

The same routes as ``models.traffic`` (validated there first), rendered the way Istio's traffic
tasks show them with the Gateway API (standard channel of ``gateway.networking.k8s.io/v1``):

- an ingress route: a ``Gateway`` of class ``istio`` bound to the gateways role's ingress gateway
  (its Service named in ``spec.addresses``, Istio's manual deployment: the pods, ports and the
  kind port mapping stay the gateways role's) with one listener per port, and an ``HTTPRoute``
  attached to it (hostnames, matches, filters, weighted backends, timeouts);
- an egress route through the egress gateway (Istio's egress gateway task): the
  ``ServiceEntry``, a ``Gateway`` of class ``istio`` bound to the egress gateway's Service, an
  ``HTTPRoute`` attached to the ServiceEntry that sends the mesh's requests for the host to the
  egress gateway, and an ``HTTPRoute`` attached to the Gateway that forwards them to the host;
- ``ReferenceGrant``s where a route or a Gateway refers to another namespace (the gateways'
  Services, the TLS Secrets in the gateways' namespace).

What the Gateway API (standard channel) cannot express is refused by ``problems()`` with the
field named and the API that supports it; nothing is dropped silently.

Pure Python, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab

GROUP = vocab.GATEWAY_API_GROUP
API_VERSION = GROUP + "/v1"
REFERENCE_GRANT_API_VERSION = GROUP + "/v1beta1"
GATEWAY_CLASS = "istio"
# Istio's kind for a host of a ServiceEntry as a backend or a parent
ISTIO_HOSTNAME = {"group": vocab.ISTIO_GROUP, "kind": "Hostname"}
REDIRECT_CODES = (301, 302, 303, 307, 308)
SECTION_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LISTENER_PROTOCOLS = ("HTTP", "HTTPS")
# the CRD's limits (standard channel v1.6)
MAX_RULES = 16
MAX_BACKENDS = 16
_DURATION_SECONDS = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
INSTEAD = "traffic_api: istio"


def _refuse(problems, where, field, what, instead=INSTEAD):
    problems.add(where, field, "%s; with traffic_api: gateway_api it is refused (use %s)" % (what, instead))


# Gateway API durations (GEP-2257): up to four whole numbers of h, m, s or ms
GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_ISTIO_DURATION_PART = re.compile(r"([0-9]+(?:[.][0-9]+)?)(h|ms|m|s|us|ns)")
_NANOS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def gateway_duration(value):
    """An Istio duration (``1.5s``) as a Gateway API duration (``1500ms``), or None when it has
    no such form (below a millisecond, or 100000 hours and more)."""
    if GATEWAY_DURATION.match(value or ""):
        return value
    parts = _ISTIO_DURATION_PART.findall(value or "")
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    nanos = 0
    for number, unit in parts:
        whole, _dot, fraction = number.partition(".")
        nanos += int(whole) * _NANOS[unit]
        if fraction:
            nanos += int(fraction) * _NANOS[unit] // 10 ** len(fraction)
    if nanos % _NANOS["ms"]:
        return None  # below a millisecond
    for unit in ("s", "ms"):  # one number where it fits: 1500ms, 90s
        if nanos % _NANOS[unit] == 0 and nanos // _NANOS[unit] < 10**5:
            return "%d%s" % (nanos // _NANOS[unit], unit)
    parts = []
    for unit in ("h", "m", "s", "ms"):
        count, nanos = divmod(nanos, _NANOS[unit])
        if count:
            parts.append("%d%s" % (count, unit))
    text = "".join(parts)
    return text if GATEWAY_DURATION.match(text) else None


def _max_age_seconds(value):
    """A duration of whole seconds (24h, 90s, 1h30m) as seconds, else None."""
    match = _DURATION_SECONDS.match(value or "")
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# -- the CRDs ----------------------------------------------------------------------------------
BUNDLE_VERSION = GROUP + "/bundle-version"
CHANNEL = GROUP + "/channel"
STANDARD = "standard"


def _release_key(version):
    match = re.match(r"^v?([0-9]+)[.]([0-9]+)[.]([0-9]+)", version or "")
    return tuple(int(part) for part in match.groups()) if match else None


def crd_mismatches(objects, version, newer_only=False):
    """The Gateway API CRDs of ``objects`` that are not of the standard channel of ``version``,
    each as ``<name> is <bundle version> (<channel>)``. ``newer_only``: only those that applying
    ``version``'s standard channel would take fields from (experimental, or a newer release);
    objects of other groups and kinds are ignored."""
    found = []
    wanted = _release_key(version)
    for obj in objects or []:
        if not isinstance(obj, dict) or obj.get("kind") != "CustomResourceDefinition":
            continue
        if (obj.get("spec") or {}).get("group") != GROUP:
            continue
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        bundle, channel = annotations.get(BUNDLE_VERSION), annotations.get(CHANNEL)
        if newer_only:
            have = _release_key(bundle)
            mismatch = channel not in (None, STANDARD) or (have is not None and wanted is not None and have > wanted)
        else:
            mismatch = (bundle, channel) != (version, STANDARD)
        if mismatch:
            found.append("%s is %s (%s)" % ((obj.get("metadata") or {}).get("name"), bundle or "of no release", channel or "no channel"))
    return found


# -- what the Gateway API cannot express -------------------------------------------------------
def _match_problems(problems, where, field, match):
    for key, what in (
        ("ignore_uri_case", "the Gateway API matches paths case-sensitively"),
        ("authority", "the Gateway API matches the Host header through the route's hostnames (hosts), not per rule"),
        ("without_headers", "the Gateway API has no negative header match"),
        ("port", "the Gateway API selects the port through the Gateway's listener, not per rule"),
    ):
        if match.get(key) not in (None, False, {}):
            _refuse(problems, where, "%s.%s" % (field, key), what)
    for name, cond in sorted((match.get("headers") or {}).items()):
        if isinstance(cond, dict) and cond.get("prefix") is not None:
            _refuse(problems, where, "%s.headers.%s.prefix" % (field, name), "the Gateway API matches headers exactly or by regex only")


def _backend_problems(problems, where, field, dest, namespace):
    if dest.get("subset") is not None:
        _refuse(problems, where, "%s.subset" % field, "the Gateway API routes to Services, not subsets", "a Service per version, or " + INSTEAD)
    if dest.get("port") is None:
        problems.add(where, "%s.port" % field, "is required with traffic_api: gateway_api (a backend is a Service port)")
    parts = vocab.split_service_fqdn(dest.get("host"))
    if parts is not None and parts[1] != namespace:
        _refuse(
            problems,
            where,
            "%s.host" % field,
            "%s is a Service in namespace %s, and the route lives in %s: the traffic role grants no cross-namespace backend"
            % (dest["host"], parts[1], namespace),
            "a route in namespace %s, or %s" % (parts[1], INSTEAD),
        )


def _rewrite_problems(problems, where, field, rule):
    rewrite = rule.get("rewrite") or {}
    if rewrite.get("uri") is None:
        return
    kinds = set(_path_kind(m) for m in rule.get("match") or [{}])
    if len(kinds) != 1 or kinds == set(["regex"]):
        _refuse(
            problems,
            where,
            "%s.rewrite.uri" % field,
            "the Gateway API rewrites the path of a rule whose matches are all prefixes (the prefix is replaced) or all exact (the path is "
            "replaced); these matches are %s" % ", ".join(sorted(kinds)),
        )


def _path_kind(match):
    for kind in ("exact", "prefix", "regex"):
        if match.get(kind) is not None:
            return kind
    return "prefix"  # no path condition: every path, the prefix /


def _cors_problems(problems, where, field, cors):
    for oindex, origin in enumerate(cors.get("allow_origins") or []):
        if isinstance(origin, dict) and origin.get("exact") is None:
            _refuse(problems, where, "%s.allow_origins[%d]" % (field, oindex), "the Gateway API's CORS filter lists exact origins only")
    if cors.get("max_age") is not None and _max_age_seconds(cors["max_age"]) in (None, 0):
        problems.add(where, "%s.max_age" % field, "%s must be whole seconds of at least 1s with traffic_api: gateway_api" % cors["max_age"])


def _rule_problems(problems, where, field, rule, namespace):
    if rule.get("name") is not None and not SECTION_NAME.match(str(rule["name"])):
        problems.add(where, "%s.name" % field, "%r is not a valid Gateway API rule name (lower-case letters, digits and '-')" % rule["name"])
    for mindex, match in enumerate(rule.get("match") or []):
        _match_problems(problems, where, "%s.match[%d]" % (field, mindex), match)
    for key, what in (
        ("direct_response", "the Gateway API has no direct response"),
        ("fault", "the Gateway API has no fault injection"),
        ("retries", "HTTPRoute retries are in the Gateway API's experimental channel only"),
    ):
        if rule.get(key) is not None:
            _refuse(problems, where, "%s.%s" % (field, key), what)
    route = rule.get("route") or []
    if len(route) > MAX_BACKENDS:
        problems.add(where, "%s.route" % field, "has %d destinations; an HTTPRoute rule takes at most %d" % (len(route), MAX_BACKENDS))
    for dindex, dest in enumerate(route):
        _backend_problems(problems, where, "%s.route[%d]" % (field, dindex), dest, namespace)
    if rule.get("mirror") is not None:
        _backend_problems(problems, where, "%s.mirror" % field, rule["mirror"], namespace)
    redirect = rule.get("redirect")
    if redirect is not None and (redirect.get("code") or 301) not in REDIRECT_CODES:
        problems.add(
            where, "%s.redirect.code" % field, "%s is not a Gateway API redirect code (one of %s)" % (redirect.get("code"), ", ".join(map(str, REDIRECT_CODES)))
        )
    if rule.get("timeout") is not None and gateway_duration(rule["timeout"]) is None:
        problems.add(where, "%s.timeout" % field, "%s has no Gateway API form (whole h, m, s or ms, at most five digits each)" % rule["timeout"])
    _rewrite_problems(problems, where, field, rule)
    if rule.get("cors_policy") is not None:
        _cors_problems(problems, where, "%s.cors_policy" % field, rule["cors_policy"])


def _ingress_problems(problems, where, route, settings):
    namespace = route.get("namespace") or settings["namespace"]
    gateway = route.get("gateway") or {}
    if gateway.get("selector") is not None:
        _refuse(
            problems,
            where,
            "gateway.selector",
            "a Gateway of class istio is bound to the gateway pods through their Service, not a selector",
            "the gateways role's gateway (traffic_ingress_gateway), or " + INSTEAD,
        )
    elif not (settings.get("ingress_gateway") or {}).get("service"):
        problems.add(where, "gateway", "no ingress gateway Service is known: the gateways role's list names none")
    else:
        service_namespace = vocab.split_service_fqdn(settings["ingress_gateway"]["service"])[1]
        if gateway.get("namespace") not in (None, service_namespace):
            _refuse(
                problems,
                where,
                "gateway.namespace",
                "Istio binds a Gateway of class istio to a gateway Service of its own namespace, so the Gateway lives in %s, "
                "beside %s" % (service_namespace, settings["ingress_gateway"]["service"]),
                "no gateway.namespace, or " + INSTEAD,
            )
    protocol = gateway.get("protocol") or "HTTP"
    if protocol not in LISTENER_PROTOCOLS:
        _refuse(problems, where, "gateway.protocol", "%s is not a Gateway API listener protocol (HTTP or HTTPS)" % protocol)
    if (gateway.get("tls") or {}).get("mode") == "MUTUAL":
        _refuse(problems, where, "gateway.tls.mode", "client certificate validation (MUTUAL) is not rendered for the Gateway API")
    if gateway.get("https_redirect"):
        _refuse(
            problems,
            where,
            "gateway.https_redirect",
            "the Gateway API redirects with a rule: a rule with redirect: {scheme: https}",
            "that rule, or " + INSTEAD,
        )
    rules = route.get("http") or []
    if len(rules) > MAX_RULES:
        problems.add(where, "http", "has %d rules; an HTTPRoute takes at most %d" % (len(rules), MAX_RULES))
    for rindex, rule in enumerate(rules):
        _rule_problems(problems, where, "http[%d]" % rindex, rule, namespace)


def _egress_problems(problems, where, route, gateway):
    if route.get("tcp"):
        _refuse(problems, where, "tcp", "TCP routes of an egress host are not rendered for the Gateway API")
    if not gateway["enabled"]:
        return
    if gateway.get("passthrough_port") is not None:
        _refuse(
            problems,
            where,
            "egress_gateway.passthrough_port",
            "TLS passed through the egress gateway by SNI needs a TLSRoute, which the standard channel does not have",
        )
    if gateway.get("selector") is not None and (route.get("egress_gateway") or {}).get("selector") is not None:
        _refuse(
            problems,
            where,
            "egress_gateway.selector",
            "a Gateway of class istio is bound to the gateway pods through their Service, not a selector",
            "egress_gateway.service, or " + INSTEAD,
        )


def problems(problems_, ingress_routes, egress_routes, settings, egress_gateway_of, where_of):
    """Add what the Gateway API cannot express to ``problems_`` (routes already validated for the
    Istio API; ``egress_gateway_of(route)`` and ``where_of(variable, index, route)`` come from
    models.traffic)."""
    for index, route in enumerate(ingress_routes or []):
        if isinstance(route, dict):
            _ingress_problems(problems_, where_of("traffic_ingress_routes", index, route), route, settings)
    for index, route in enumerate(egress_routes or []):
        if isinstance(route, dict):
            _egress_problems(problems_, where_of("traffic_egress_routes", index, route), route, egress_gateway_of(route))


# -- rendering -----------------------------------------------------------------------------------
def _header_filters(headers, request_type="RequestHeaderModifier", response_type="ResponseHeaderModifier"):
    filters = []
    for side, kind in (("request", request_type), ("response", response_type)):
        ops = (headers or {}).get(side) or {}
        modifier = {}
        for op in ("set", "add"):
            if ops.get(op):
                modifier[op] = [{"name": name, "value": str(value)} for name, value in sorted(ops[op].items())]
        if ops.get("remove"):
            modifier["remove"] = list(ops["remove"])
        if modifier:
            key = kind[0].lower() + kind[1:]
            filters.append({"type": kind, key: modifier})
    return filters


def _match(match):
    rendered = {}
    kind = _path_kind(match)
    value = match.get(kind)
    if value is not None:
        rendered["path"] = {"type": {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}[kind], "value": value}
    if match.get("method") is not None:
        rendered["method"] = match["method"]
    for key, api_key in (("headers", "headers"), ("query_params", "queryParams")):
        conditions = []
        for name, cond in sorted((match.get(key) or {}).items()):
            if cond.get("exact") is not None:
                conditions.append({"name": name, "type": "Exact", "value": cond["exact"]})
            else:
                conditions.append({"name": name, "type": "RegularExpression", "value": cond["regex"]})
        if conditions:
            rendered[api_key] = conditions
    return rendered


def _backend(dest, with_weight=True):
    """A backendRef: a Service of the route's namespace, or a ServiceEntry host (Istio's Hostname)."""
    host = dest["host"]
    parts = vocab.split_service_fqdn(host)
    if parts is not None:
        ref = {"name": parts[0]}
    elif "." in host:
        ref = dict(ISTIO_HOSTNAME, name=host)
    else:
        ref = {"name": host}
    ref["port"] = dest["port"]
    if with_weight and dest.get("weight") is not None:
        ref["weight"] = dest["weight"]
    if with_weight and dest.get("headers"):
        ref["filters"] = _header_filters(dest["headers"])
    return ref


def _rule(rule):
    rendered = {}
    if rule.get("name"):
        rendered["name"] = rule["name"]
    if rule.get("match"):
        rendered["matches"] = [_match(m) for m in rule["match"]]
    filters = _header_filters(rule.get("headers"))
    redirect = rule.get("redirect")
    if redirect:
        spec = {"statusCode": redirect.get("code") or 301}
        if redirect.get("scheme"):
            spec["scheme"] = redirect["scheme"]
        if redirect.get("authority"):
            spec["hostname"] = redirect["authority"]
        if redirect.get("port") is not None:
            spec["port"] = redirect["port"]
        if redirect.get("uri"):
            spec["path"] = {"type": "ReplaceFullPath", "replaceFullPath": redirect["uri"]}
        filters.append({"type": "RequestRedirect", "requestRedirect": spec})
    rewrite = rule.get("rewrite") or {}
    if rewrite:
        spec = {}
        if rewrite.get("authority"):
            spec["hostname"] = rewrite["authority"]
        if rewrite.get("uri"):
            if _path_kind((rule.get("match") or [{}])[0]) == "exact":
                spec["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rewrite["uri"]}
            else:
                spec["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite["uri"]}
        filters.append({"type": "URLRewrite", "urlRewrite": spec})
    if rule.get("mirror"):
        mirror = {"backendRef": _backend(rule["mirror"], with_weight=False)}
        percentage = rule.get("mirror_percentage")
        if percentage is not None:
            if float(percentage).is_integer():
                mirror["percent"] = int(percentage)
            else:
                mirror["fraction"] = {"numerator": round(percentage * 10000), "denominator": 1000000}
        filters.append({"type": "RequestMirror", "requestMirror": mirror})
    cors = rule.get("cors_policy")
    if cors:
        spec = {"allowOrigins": [origin["exact"] for origin in cors["allow_origins"]]}
        for key, api_key in (("allow_methods", "allowMethods"), ("allow_headers", "allowHeaders"), ("expose_headers", "exposeHeaders")):
            if cors.get(key):
                spec[api_key] = list(cors[key])
        if cors.get("max_age"):
            spec["maxAge"] = _max_age_seconds(cors["max_age"])
        if cors.get("allow_credentials") is not None:
            spec["allowCredentials"] = cors["allow_credentials"]
        filters.append({"type": "CORS", "cors": spec})
    if filters:
        rendered["filters"] = filters
    if not redirect:
        rendered["backendRefs"] = [_backend(dest) for dest in rule["route"]]
    if rule.get("timeout"):
        rendered["timeouts"] = {"request": gateway_duration(rule["timeout"])}
    return rendered


class _Grants(object):
    """ReferenceGrants: what objects of one namespace may refer to in another."""

    def __init__(self):
        self.grants = {}  # (target ns, source ns) -> {"from": [...], "to": [...]}

    def allow(self, source_ns, source_kind, target_ns, target_kind, target_name, route):
        if source_ns == target_ns:
            return
        grant = self.grants.setdefault((target_ns, source_ns), {"from": [], "to": [], "routes": []})
        source = {"group": GROUP, "kind": source_kind, "namespace": source_ns}
        target = {"group": "", "kind": target_kind, "name": target_name}
        for key, item in (("from", source), ("to", target), ("routes", route)):
            if item not in grant[key]:
                grant[key].append(item)

    def render(self, metadata):
        return [
            {
                "apiVersion": REFERENCE_GRANT_API_VERSION,
                "kind": "ReferenceGrant",
                "metadata": metadata("meshops-from-%s" % source_ns, target_ns, grant["routes"]),
                "spec": {"from": grant["from"], "to": grant["to"]},
            }
            for (target_ns, source_ns), grant in sorted(self.grants.items())
        ]


def _gateway_object(metadata, name, namespace, service_fqdn, routes):
    return {
        "apiVersion": API_VERSION,
        "kind": "Gateway",
        "metadata": metadata(name, namespace, routes),
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            # Istio's manual deployment: the gateways role's pods serve this Gateway
            "addresses": [{"type": "Hostname", "value": service_fqdn}],
            "listeners": [],
        },
    }


def _listener(gateway_obj, name, port, protocol, tls=None):
    for listener in gateway_obj["spec"]["listeners"]:
        if listener["port"] == port:
            return listener
    listener = {"name": name, "port": port, "protocol": protocol}
    if tls is not None:
        listener["tls"] = tls
    gateway_obj["spec"]["listeners"].append(listener)
    return listener


def _admit(gateway_obj, listener, route_namespace):
    """Let the routes of ``route_namespace`` attach to the listener: its own namespace by default,
    others by name (never every namespace of the cluster)."""
    gateway_namespace = gateway_obj["metadata"]["namespace"]
    admitted = listener.setdefault("__namespaces", [])
    if route_namespace not in admitted:
        admitted.append(route_namespace)
    others = sorted(ns for ns in admitted if ns != gateway_namespace)
    if not others:
        listener["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    else:
        values = sorted(set(others + ([gateway_namespace] if gateway_namespace in admitted else [])))
        listener["allowedRoutes"] = {
            "namespaces": {"from": "Selector", "selector": {"matchExpressions": [{"key": vocab.LABEL_NAMESPACE_NAME, "operator": "In", "values": values}]}}
        }


def _parent(gateway_obj, listener, route_namespace):
    parent = {"name": gateway_obj["metadata"]["name"], "sectionName": listener["name"]}
    if gateway_obj["metadata"]["namespace"] != route_namespace:
        parent["namespace"] = gateway_obj["metadata"]["namespace"]
    return parent


def render(ingress_routes, egress_routes, settings, egress_gateway_of, egress_route_port, metadata, service_entry, origination_rule):
    """Gateway API objects of valid routes, in the order they are applied (ReferenceGrants,
    Gateways, ServiceEntries, DestinationRules, HTTPRoutes). The callables come from
    models.traffic: ``metadata(name, namespace, routes)``, ``service_entry(route, namespace)``,
    ``origination_rule(route, gateway, namespace)`` (Istio's DestinationRule that makes the egress
    gateway speak TLS to the host, as Istio's TLS origination task does with the Gateway API).

    A Gateway lives in the namespace of the gateway Service it is bound to (Istio binds a
    Gateway's address only to a Service of its own namespace); its listeners admit the
    namespaces of the routes attached to them."""
    grants = _Grants()
    gateways = {}  # (namespace, name) -> Gateway object
    serviceentries, destinationrules, httproutes = [], [], []

    def gateway_for(name, service_fqdn, route_name):
        namespace = vocab.split_service_fqdn(service_fqdn)[1]
        key = (namespace, name)
        if key not in gateways:
            gateways[key] = _gateway_object(metadata, name, namespace, service_fqdn, [route_name])
        labels = gateways[key]["metadata"]["labels"]
        if labels.get(vocab.LABEL_ROUTE) not in (None, route_name):
            labels.pop(vocab.LABEL_ROUTE)  # a Gateway shared by routes belongs to none of them
        return gateways[key]

    ingress_service = (settings.get("ingress_gateway") or {}).get("service")
    for route in ingress_routes or []:
        namespace = route.get("namespace") or settings["namespace"]
        raw = route["gateway"]
        protocol = raw.get("protocol") or "HTTP"
        port = raw.get("port") if raw.get("port") is not None else (443 if protocol == "HTTPS" else 80)
        gateway = gateway_for(raw["name"], ingress_service, route["name"])
        tls = None
        if protocol == "HTTPS":
            # the Secret is in the gateway's namespace, where the Gateway is
            tls = {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": raw["tls"]["credential_name"]}]}
        listener = _listener(gateway, raw.get("port_name") or protocol.lower(), port, protocol, tls)
        _admit(gateway, listener, namespace)
        httproutes.append(
            {
                "apiVersion": API_VERSION,
                "kind": "HTTPRoute",
                "metadata": metadata(route["name"], namespace, [route["name"]]),
                "spec": {
                    "parentRefs": [_parent(gateway, listener, namespace)],
                    "hostnames": list(route["hosts"]),
                    "rules": [_rule(rule) for rule in route["http"]],
                },
            }
        )

    for route in egress_routes or []:
        namespace = route.get("namespace") or settings["namespace"]
        name = route["name"]
        serviceentries.append(service_entry(route, namespace))
        gateway = egress_gateway_of(route)
        if not gateway["enabled"]:
            continue
        route_port = egress_route_port(route, gateway)
        origin = gateway.get("originate_tls")
        service, service_ns = vocab.split_service_fqdn(gateway["service"])
        gateway_obj = gateway_for(gateway["name"], gateway["service"], name)
        listener = _listener(gateway_obj, "http", gateway["port"], "HTTP")
        _admit(gateway_obj, listener, namespace)
        grants.allow(namespace, "HTTPRoute", service_ns, "Service", service, name)
        to_gateway = {"name": service, "port": gateway["port"]}
        if service_ns != namespace:
            to_gateway["namespace"] = service_ns
        httproutes.append(
            {
                "apiVersion": API_VERSION,
                "kind": "HTTPRoute",
                "metadata": metadata("direct-%s-to-egress-gateway" % name, namespace, [name]),
                "spec": {
                    # the mesh's requests for the host (the ServiceEntry's port) go to the egress gateway
                    "parentRefs": [{"group": vocab.ISTIO_GROUP, "kind": "ServiceEntry", "name": name, "port": route_port}],
                    "rules": [{"backendRefs": [to_gateway]}],
                },
            }
        )
        httproutes.append(
            {
                "apiVersion": API_VERSION,
                "kind": "HTTPRoute",
                "metadata": metadata("forward-%s-from-egress-gateway" % name, namespace, [name]),
                "spec": {
                    # the egress gateway forwards them to the external host
                    "parentRefs": [_parent(gateway_obj, listener, namespace)],
                    "hostnames": [route["host"]],
                    # with TLS origination, to the host's TLS port (the DestinationRule originates)
                    "rules": [{"backendRefs": [dict(ISTIO_HOSTNAME, name=route["host"], port=origin["port"] if origin else route_port)]}],
                },
            }
        )
        if origin is not None:
            destinationrules.append(origination_rule(route, gateway, namespace))

    for gateway_obj in gateways.values():
        for listener in gateway_obj["spec"]["listeners"]:
            listener.pop("__namespaces", None)
    return grants.render(metadata) + list(gateways.values()) + serviceentries + destinationrules + httproutes


# -- what istiod says of the objects -------------------------------------------------------------
# The conditions that must be True, per kind (of a Gateway; of an HTTPRoute, for each parent).
REQUIRED_CONDITIONS = {"Gateway": ("Accepted", "Programmed"), "HTTPRoute": ("Accepted", "ResolvedRefs")}


def _parent_key(ref, route_namespace):
    return (ref.get("group") or GROUP, ref.get("kind") or "Gateway", ref.get("namespace") or route_namespace, ref.get("name"))


def _judge(found, pending, problems, where, conditions, generation):
    by_type = dict((c.get("type"), c) for c in conditions or [])
    for wanted in found:
        condition = by_type.get(wanted)
        if condition is None or (generation is not None and (condition.get("observedGeneration") or 0) < generation):
            pending.append("%s: %s not reported for generation %s yet" % (where, wanted, generation))
        elif condition.get("status") != "True":
            problems.append(
                "%s: %s is %s (%s: %s)" % (where, wanted, condition.get("status"), condition.get("reason") or "-", (condition.get("message") or "").strip())
            )


def status_problems(objects):
    """What the status conditions of Gateways and HTTPRoutes say, as the controller (istiod)
    wrote them for the objects' current generation: ``{"pending": [...], "problems": [...]}``.
    ``pending`` names conditions not yet reported for the current generation (wait and read
    again); ``problems`` names each required condition that is not True, with its reason and
    message (the Gateway API's own way of saying a route is broken)."""
    pending, problems = [], []
    for obj in objects or []:
        kind = obj.get("kind")
        if kind not in REQUIRED_CONDITIONS or (obj.get("apiVersion") or "").split("/")[0] != GROUP:
            continue
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        where = vocab.object_id(obj)
        status = obj.get("status") or {}
        if kind == "Gateway":
            _judge(REQUIRED_CONDITIONS[kind], pending, problems, where, status.get("conditions"), generation)
            continue
        reported = dict((_parent_key(p.get("parentRef") or {}, meta.get("namespace")), p) for p in status.get("parents") or [])
        for ref in (obj.get("spec") or {}).get("parentRefs") or []:
            key = _parent_key(ref, meta.get("namespace"))
            parent_where = "%s: parent %s %s/%s" % (where, key[1], key[2], key[3])
            _judge(REQUIRED_CONDITIONS[kind], pending, problems, parent_where, (reported.get(key) or {}).get("conditions"), generation)
    return {"pending": pending, "problems": problems}
