# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Predict where Istio sends an HTTP request under the Kubernetes Gateway API.

The counterpart of ``routing`` for ``gateway.networking.k8s.io`` Gateways and HTTPRoutes, as
istiod (release 1.31) translates them (``pilot/pkg/config/kube/gateway``):

* a Gateway of class ``istio`` configures the pods of its Service: the Service named in
  ``spec.addresses`` (Istio's manual deployment; a short name is in the Gateway's namespace) or
  the one istiod deploys, ``<name>-istio``, whose pods carry
  ``gateway.networking.k8s.io/gateway-name``; the Service must be in the Gateway's namespace;
* a listener takes the routes whose ``parentRefs`` name its Gateway (and its ``sectionName`` or
  ``port`` when they are given), whose namespace ``allowedRoutes`` admits (Same by default, All,
  or a selector on ``kubernetes.io/metadata.name``) and whose hostnames intersect its hostname
  (a route hostname that fits a more specific listener of the same port is left to that one);
* each match of each rule is one route (a rule without matches: PathPrefix ``/``); the routes
  of the HTTPRoutes that share a listener and a hostname (as written) are ordered oldest route
  first, then by the Gateway API's precedence: Exact path, then PathPrefix, then
  RegularExpression, the longer value first, a method match first, more header matches first,
  more query parameter matches first; the first catch-all (PathPrefix ``/`` and nothing else)
  ends the list; Envoy picks the virtual host (exact, longest wildcard, ``*``) and the first
  route that matches; none: 404;
* PathPrefix matches whole path segments (``/a`` matches ``/a`` and ``/a/b``, not ``/ab``),
  paths are case-sensitive, regular expressions are RE2 full matches, the query never matters
  for the path;
* RequestRedirect answers with its status code (302 by default) and a Location built as Envoy
  does; a rule with a CORS filter answers every preflight itself (Istio sets
  unmatchedPreflights IGNORE: 200, with CORS headers only for an allowed origin); backends
  (Services, Istio's ``Hostname`` kind for registry hosts) are checked: a missing Service, port
  or ReferenceGrant, or weights that add up to 0, answer 500;
* from the mesh (GAMMA): HTTPRoutes whose parent is a Service or a ServiceEntry apply to
  requests for that host (on the parent's port when given), those of the client's namespace
  before those of the host's namespace.

What is outside this model (TLS passthrough, TLSRoute and the other route kinds, ExtensionRef
filters, namespace selectors on other labels ...) makes the prediction ``unsupported``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.meshops.istio.plugins.module_utils.istio import routing
from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import host_matches, hosts_intersection
from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import GATEWAY_API_GROUP, ISTIO_GROUP, LABEL_GATEWAY_NAME, LABEL_NAMESPACE_NAME

MODELLED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror", "CORS")
DEFAULT_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}
PATH_RANK = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}


class _Skip(Exception):
    """A route does not attach to a listener (the reason is its message)."""


# ----------------------------------------------------------------------------------------
# Gateways and the pods they configure
# ----------------------------------------------------------------------------------------
def gateway_service(index, gateway):
    """``(namespace, name)`` of the Service whose pods a Gateway configures, and whether istiod
    deploys it (no ``Hostname`` address)."""
    namespace = index.ns(gateway)
    for address in (gateway.get("spec") or {}).get("addresses") or []:
        if (address.get("type") or "IPAddress") != "Hostname":
            continue
        value = str(address.get("value") or "").lower()
        if "." not in value:
            return (namespace, value), False
        parts = value.split(".")
        if len(parts) >= 3 and parts[2] == "svc" and parts[1] == namespace:
            return (namespace, parts[0]), False
        return None, False  # a Service of another namespace (or not a Service): Istio binds nothing
    class_name = (gateway.get("spec") or {}).get("gatewayClassName") or "istio"
    return (namespace, "{0}-{1}".format((gateway.get("metadata") or {}).get("name"), class_name)), True


def gateway_selector(index, gateway):
    """Labels that select the Gateway's pods, or None when its Service is not among the objects
    (a Gateway that istiod deploys: its pods carry the gateway-name label)."""
    key, managed = gateway_service(index, gateway)
    if key is None:
        return None
    service = index.services.get(key)
    if service is not None:
        return dict((service.get("spec") or {}).get("selector") or {}) or None
    if managed:
        return {LABEL_GATEWAY_NAME: (gateway.get("metadata") or {}).get("name")}
    return None


def gateways_for_workload(index, labels):
    """Gateway API Gateways (``[(key, Gateway)]``, by key) whose pods have these labels."""
    found = []
    for key, gateway in sorted(index.k8s_gateways.items()):
        selector = gateway_selector(index, gateway)
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            found.append((key, gateway))
    return found


def listeners_of(gateways):
    listeners = []
    for key, gateway in gateways:
        for listener in (gateway.get("spec") or {}).get("listeners") or []:
            listeners.append(
                {
                    "gateway": key,
                    "object": gateway,
                    "name": listener.get("name"),
                    "number": listener.get("port"),
                    "protocol": str(listener.get("protocol") or "").upper(),
                    "hostname": str(listener.get("hostname") or "*").lower(),
                    "spec": listener,
                }
            )
    return listeners


def _listener_id(listener):
    return "listener {0} of Gateway {1}/{2}".format(listener["name"], *listener["gateway"])


def selectors_serving(index, host):
    """Selectors of the Gateway API Gateways that serve ``host``: a listener hostname or the
    hostname of a route that names the Gateway as its parent matches it (the exact names first,
    then wildcards)."""
    ranked = {}
    for key, gateway in sorted(index.k8s_gateways.items()):
        selector = gateway_selector(index, gateway)
        if not selector:
            continue
        names = [str(item.get("hostname")).lower() for item in (gateway.get("spec") or {}).get("listeners") or [] if item.get("hostname")]
        for route in index.http_routes:
            parents = [((ref.get("namespace") or index.ns(route)), ref.get("name")) for ref in (route.get("spec") or {}).get("parentRefs") or []]
            if key in parents:
                names.extend(str(h).lower() for h in (route.get("spec") or {}).get("hostnames") or [])
        for name in names:
            if host_matches(name, host):
                ranked.setdefault(name == host, []).append(selector)
    return ranked.get(True) or ranked.get(False) or []


# ----------------------------------------------------------------------------------------
# attachment: which routes a listener takes, under which hostnames
# ----------------------------------------------------------------------------------------
def _namespace_admitted(listener, route_ns):
    gateway_ns = listener["gateway"][0]
    namespaces = ((listener["spec"].get("allowedRoutes") or {}).get("namespaces")) or {}
    source = namespaces.get("from") or "Same"
    if source == "Same":
        return route_ns == gateway_ns
    if source == "All":
        return True
    if source != "Selector":
        raise routing.Unknown("{0}: allowedRoutes.namespaces.from {1} is not modelled".format(_listener_id(listener), source))
    selector = namespaces.get("selector") or {}
    labels = {LABEL_NAMESPACE_NAME: route_ns}
    for key, value in (selector.get("matchLabels") or {}).items():
        if key != LABEL_NAMESPACE_NAME:
            raise routing.Unknown("{0}: a namespace selector on label {1} needs the namespaces' labels".format(_listener_id(listener), key))
        if labels[key] != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if key != LABEL_NAMESPACE_NAME:
            raise routing.Unknown("{0}: a namespace selector on label {1} needs the namespaces' labels".format(_listener_id(listener), key))
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise routing.Unknown("{0}: selector operator {1} is not modelled".format(_listener_id(listener), operator))
        if (operator == "In" and route_ns not in values) or (operator == "NotIn" and route_ns in values) or operator == "DoesNotExist":
            return False
    return True


def _kind_admitted(listener):
    kinds = (listener["spec"].get("allowedRoutes") or {}).get("kinds")
    if not kinds:
        return listener["protocol"] in ("HTTP", "HTTPS")
    return any((k.get("group") or GATEWAY_API_GROUP) == GATEWAY_API_GROUP and k.get("kind") == "HTTPRoute" for k in kinds)


def _more_specific_sibling(listener, siblings, hostname):
    """Istio leaves a route hostname to a listener of the same port and protocol whose hostname
    fits it more closely than this (wildcard or empty) listener's."""
    if not listener["hostname"].startswith("*"):
        return None
    for other in siblings:
        if other is listener or other["gateway"] != listener["gateway"] or other["number"] != listener["number"]:
            continue
        if other["protocol"] != listener["protocol"] or other["hostname"] == listener["hostname"]:
            continue
        more_specific = not other["hostname"].startswith("*") or len(other["hostname"]) > len(listener["hostname"])
        fits = other["hostname"] == hostname if hostname.startswith("*") else host_matches(other["hostname"], hostname)
        if more_specific and fits:
            return other
    return None


def attached_hostnames(index, route, listener, siblings):
    """The hostnames (as the route writes them, ``*`` for none) under which ``route`` attaches
    to ``listener``; None when the route does not name the listener's Gateway; raises _Skip with
    the reason when it names it but does not attach, Unknown when undecidable."""
    route_ns = index.ns(route)
    refs = []
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if (ref.get("group") or GATEWAY_API_GROUP) != GATEWAY_API_GROUP or (ref.get("kind") or "Gateway") != "Gateway":
            continue
        if ((ref.get("namespace") or route_ns), ref.get("name")) == listener["gateway"]:
            refs.append(ref)
    if not refs:
        return None
    reasons = []
    for ref in refs:
        if ref.get("port") is not None and int(ref["port"]) != listener["number"]:
            reasons.append("port {0} is not the listener's".format(ref["port"]))
            continue
        if ref.get("sectionName") is not None and ref["sectionName"] != listener["name"]:
            reasons.append("sectionName {0}".format(ref["sectionName"]))
            continue
        if not _namespace_admitted(listener, route_ns):
            reasons.append("the listener does not admit routes of namespace {0}".format(route_ns))
            continue
        if not _kind_admitted(listener):
            reasons.append("the listener does not admit HTTPRoutes")
            continue
        written = [str(h).lower() for h in (route.get("spec") or {}).get("hostnames") or []] or ["*"]
        hostnames = []
        for hostname in written:
            if not (host_matches(listener["hostname"], hostname) or host_matches(hostname, listener["hostname"])):
                continue
            if hostname != "*" and _more_specific_sibling(listener, siblings, hostname) is not None:
                continue
            hostnames.append(hostname)
        if not hostnames:
            reasons.append("no hostname of the route matches the listener's {0}".format(listener["hostname"]))
            continue
        return hostnames
    raise _Skip("; ".join(reasons))


# ----------------------------------------------------------------------------------------
# matches and their order
# ----------------------------------------------------------------------------------------
def defaulted_match(match):
    """A match as the API server stores it (path defaults to PathPrefix /), with Istio's
    trimming of a prefix's trailing slash."""
    match = dict(match or {})
    path = dict(DEFAULT_MATCH["path"], **(match.get("path") or {}))
    if path["type"] == "PathPrefix" and path["value"] != "/":
        path["value"] = path["value"].rstrip("/") or "/"
    match["path"] = path
    return match


def precedence(match):
    """Sort key of a route (smaller first), as Istio's sortHTTPRoutes."""
    path = match["path"]
    return (
        -PATH_RANK.get(path["type"], -1),
        -len(path["value"]),
        0 if match.get("method") else 1,
        -len(match.get("headers") or []),
        -len(match.get("queryParams") or []),
    )


def is_catch_all(match):
    """Istio's IsCatchAllRoute: path prefix ``/`` or regex ``.*``, no header (a method is one) or
    query condition; it ends the routes of its VirtualService."""
    catch_all_path = match["path"] in ({"type": "PathPrefix", "value": "/"}, {"type": "RegularExpression", "value": ".*"})
    return catch_all_path and not any(match.get(k) for k in ("method", "headers", "queryParams"))


def _value_match(condition, value, what):
    kind = condition.get("type") or "Exact"
    expected = str(condition.get("value") or "")
    if value is None:
        return False
    if kind == "Exact":
        return value == expected
    if kind == "RegularExpression":
        return expected == "*" or routing.re2_fullmatch(expected, value)
    raise routing.Unknown("{0}: match type {1} is not modelled".format(what, kind))


def request_matches(match, req):
    path = match["path"]
    value = path["value"]
    actual = req["path_only"]
    if path["type"] == "Exact":
        if actual != value:
            return False
    elif path["type"] == "PathPrefix":
        if value != "/" and not (actual == value or actual.startswith(value + "/")):
            return False
    elif path["type"] == "RegularExpression":
        if not routing.re2_fullmatch(value, actual):
            return False
    else:
        raise routing.Unknown("path match type {0} is not modelled".format(path["type"]))
    if match.get("method") and req["method"] != str(match["method"]).upper():
        return False
    for condition in match.get("headers") or []:
        if not _value_match(condition, req["headers"].get(str(condition.get("name")).lower()), "header " + str(condition.get("name"))):
            return False
    for condition in match.get("queryParams") or []:
        if not _value_match(condition, req["query"].get(condition.get("name")), "query parameter " + str(condition.get("name"))):
            return False
    return True


def describe_match(match):
    path = match["path"]
    words = {"Exact": "exactly {0}", "PathPrefix": "{0}", "RegularExpression": "regex {0}"}
    parts = [words.get(path["type"], "{0}").format(path["value"])]
    if match.get("method"):
        parts.append("method {0}".format(match["method"]))
    parts.extend("header {0} {1}".format(c.get("name"), c.get("value")) for c in match.get("headers") or [])
    parts.extend("query {0} {1}".format(c.get("name"), c.get("value")) for c in match.get("queryParams") or [])
    return parts[0] + (" with " + " and ".join(parts[1:]) if parts[1:] else "")


def _creation_order(route):
    meta = route.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), meta.get("namespace") or "", meta.get("name") or "")


def route_table(index, routes):
    """Envoy's routes for HTTPRoutes merged into one VirtualService: ``[(route, rule index,
    match index, match, rule)]`` in order, ending at the first catch-all."""
    table = []
    for route in sorted(routes, key=_creation_order):
        for i, rule in enumerate((route.get("spec") or {}).get("rules") or [{}]):
            for j, match in enumerate(rule.get("matches") or [DEFAULT_MATCH]):
                table.append((route, i, j, defaulted_match(match), rule))
    table.sort(key=lambda entry: precedence(entry[3]))  # stable: ties keep the creation order
    for position, entry in enumerate(table):
        if is_catch_all(entry[3]):
            return table[: position + 1]
    return table


# ----------------------------------------------------------------------------------------
# backends and filters
# ----------------------------------------------------------------------------------------
def _granted(index, route_ns, target_ns, kind, name):
    for grant in index.reference_grants:
        if index.ns(grant) != target_ns:
            continue
        spec = grant.get("spec") or {}
        sources = [f for f in spec.get("from") or [] if f.get("group") == GATEWAY_API_GROUP and f.get("kind") == "HTTPRoute" and f.get("namespace") == route_ns]
        targets = [t for t in spec.get("to") or [] if (t.get("group") or "") == "" and t.get("kind") == kind and t.get("name") in (None, "", name)]
        if sources and targets:
            return True
    return False


def backend(index, ref, route_ns, mesh=False):
    """A backendRef as a destination of ``routing``'s shape, with its problems (each a 500)."""
    group, kind = ref.get("group") or "", ref.get("kind") or "Service"
    port = ref.get("port")
    weight = 1 if ref.get("weight") is None else int(ref["weight"])
    info = {"host": None, "port": port, "subset": None, "weight": weight, "kind": None, "object": None, "problems": [], "namespace_known": True}
    if (group, kind) == (ISTIO_GROUP, "Hostname"):
        info["host"] = str(ref.get("name") or "").lower()
        if ref.get("namespace"):
            info["problems"].append("a backendRef of kind Hostname cannot name a namespace")
            return info
        reg = index.find_registry(info["host"])
        if reg is None:
            info["namespace_known"] = index.namespace_known(info["host"])
            info["problems"].append("no Service or ServiceEntry for host {0}".format(info["host"]))
        else:
            info["kind"], info["object"] = reg["kind"], index.oid(reg["object"])
            numbers = [p["number"] for p in reg["ports"]]
            if numbers and port not in numbers:
                info["problems"].append("port {0} is not declared by {1} (ports: {2})".format(port, info["object"], ", ".join(str(n) for n in numbers)))
        return info
    if (group, kind) != ("", "Service"):
        info["problems"].append("backendRef kind {0}{1} is not one Istio routes to".format(kind, "." + group if group else ""))
        return info
    namespace = ref.get("namespace") or route_ns
    info["host"] = index.service_fqdn(namespace, ref.get("name"))
    if namespace != route_ns and not mesh and not _granted(index, route_ns, namespace, "Service", ref.get("name")):
        info["problems"].append("no ReferenceGrant in namespace {0} lets HTTPRoutes of {1} refer to Service {2}".format(namespace, route_ns, ref.get("name")))
        return info
    reg = index.find_registry(info["host"])
    if reg is None:
        info["namespace_known"] = index.namespace_known(info["host"])
        info["problems"].append("no Service {0}/{1}".format(namespace, ref.get("name")))
        return info
    info["kind"], info["object"] = reg["kind"], index.oid(reg["object"])
    numbers = [p["number"] for p in reg["ports"]]
    if port not in numbers:
        info["problems"].append("port {0} is not exposed by {1} (ports: {2})".format(port, info["object"], ", ".join(str(n) for n in numbers) or "none"))
    return info


def _header_changes(filters, side):
    kind = "RequestHeaderModifier" if side == "request" else "ResponseHeaderModifier"
    changes = []
    for item in filters:
        if item.get("type") != kind:
            continue
        spec = item.get(kind[0].lower() + kind[1:]) or {}
        for op in ("set", "add"):
            changes.extend("{0} {1} {2}: {3}".format(op, side, h.get("name"), h.get("value")) for h in spec.get(op) or [])
        changes.extend("remove {0} {1}".format(side, name) for name in spec.get("remove") or [])
    return changes


VALID_ORIGIN = r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+$"


def _origin_allowed(allowed, origin):
    """An allowOrigins entry as Istio's createCorsFilter converts it: ``*`` any valid origin, a
    single trailing ``*`` a prefix, other wildcards a regular expression, else exact."""
    if allowed == "*":
        return re.match(VALID_ORIGIN, origin) is not None
    if "*" not in allowed:
        return allowed == origin
    if allowed.count("*") == 1 and allowed.endswith("*"):
        return origin.startswith(allowed[:-1])
    return re.match("^" + re.escape(allowed).replace("\\*", ".*") + "$", origin) is not None


def _cors_preflight(cors, req):
    """None when ``req`` is not a CORS preflight; else whether its origin is allowed. Istio sets
    unmatchedPreflights IGNORE for the Gateway API: Envoy answers every preflight itself (200,
    CORS headers only for an allowed origin), none reaches the backend."""
    origin = req["headers"].get("origin")
    if req["method"] != "OPTIONS" or not origin or not req["headers"].get("access-control-request-method"):
        return None
    return any(_origin_allowed(str(allowed), origin) for allowed in cors.get("allowOrigins") or [])


def _redirect(spec, req, listener):
    """Status and Location of a RequestRedirect, as Istio's ApplyRedirect and Envoy build them."""
    status = int(spec.get("statusCode") or 302)
    scheme = spec.get("scheme") or req["scheme"]
    authority = req["authority"]
    request_port = re.search(r":(\d+)$", authority)
    host = re.sub(r":\d+$", "", authority)
    port = spec.get("port")
    if port is None and not spec.get("scheme") and listener is not None:
        port = listener["number"]  # FROM_REQUEST_PORT: the listener's port
        if port == (443 if listener["protocol"] == "HTTPS" else 80):
            port = None
    elif port is not None and int(port) == (443 if scheme == "https" else 80):
        port = None
    if spec.get("hostname"):
        authority = str(spec["hostname"]) + (":{0}".format(port) if port else "")
    elif port:
        authority = "{0}:{1}".format(host, port)
    elif request_port and scheme != req["scheme"] and int(request_port.group(1)) == (443 if req["scheme"] == "https" else 80):
        authority = host
    path_spec = spec.get("path") or {}
    query = req["path"].partition("?")[2]
    if path_spec.get("type") == "ReplaceFullPath":
        path = path_spec.get("replaceFullPath") or "/"
        if query and "?" not in path:
            path = "{0}?{1}".format(path, query)
    elif path_spec.get("type") == "ReplacePrefixMatch":
        return status, None, "ReplacePrefixMatch"
    else:
        path = req["path"]
    return status, "{0}://{1}{2}".format(scheme, authority, path), None


def apply_rule(index, res, route, i, j, match, rule, req, listener=None, mesh=False):
    """The answer of the rule that matched (``routing``'s result shape)."""
    where = "{0} rule {1}{2}".format(index.oid(route), i, " ({0})".format(rule["name"]) if rule.get("name") else "")
    res["http_route"] = "{0}/{1}".format(index.ns(route), (route.get("metadata") or {}).get("name"))
    res["rule"], res["match"], res["rule_name"] = i, j, rule.get("name")
    filters = list(rule.get("filters") or [])
    unknown = sorted(set(str(f.get("type")) for f in filters) - set(MODELLED_FILTERS))
    if unknown:
        return routing._unsupported(res, "{0}: filter(s) {1} not modelled".format(where, ", ".join(unknown)))
    changes = _header_changes(filters, "request") + _header_changes(filters, "response")
    for ref in rule.get("backendRefs") or []:
        changes.extend("{0} (to {1})".format(c, ref.get("name")) for s in ("request", "response") for c in _header_changes(ref.get("filters") or [], s))
    if changes:
        res["header_actions"] = changes
        res["notes"].append("{0} headers: {1}".format(where, "; ".join(changes)))
    for item in filters:
        if item.get("type") == "RequestMirror":
            spec = item.get("requestMirror") or {}
            share = spec.get("percent", 100)
            res["mirror"] = {"host": (spec.get("backendRef") or {}).get("name"), "percentage": share}
            res["notes"].append("{0} mirrors {1}% of its requests to {2} (the copies' answers are dropped)".format(where, share, res["mirror"]["host"]))
        elif item.get("type") == "URLRewrite":
            res["notes"].append("{0} rewrites the request ({1})".format(where, item.get("urlRewrite")))
    if (rule.get("timeouts") or {}).get("request"):
        res["notes"].append("{0} times out after {1}".format(where, rule["timeouts"]["request"]))
    text = "{0} match {1} ({2})".format(where, j, describe_match(match))
    redirect = next((f.get("requestRedirect") or {} for f in filters if f.get("type") == "RequestRedirect"), None)
    if redirect is not None:
        status, location, missing = _redirect(redirect, req, listener)
        if missing:
            return routing._unsupported(res, "{0}: a redirect with {1} is not modelled".format(where, missing))
        res["redirect"] = {"status": status, "location": location}
        return routing._finish(res, "redirect", "redirect: {0} answers {1} to {2}".format(text, status, location), status=status)
    cors = next((f.get("cors") or {} for f in filters if f.get("type") == "CORS"), None)
    preflight = None if cors is None else _cors_preflight(cors, req)
    if preflight is not None:
        origin = req["headers"].get("origin")
        res["cors"] = {"preflight": True, "origin": origin, "allowed": preflight}
        text = "CORS preflight: {0} {1} origin {2}: the gateway answers 200 itself{3}".format(
            where, "allows" if preflight else "does not allow", origin, "" if preflight else " without CORS headers (unmatched preflights are not forwarded)"
        )
        return routing._finish(res, "cors_preflight", text, status=200)
    refs = rule.get("backendRefs") or []
    dests = [backend(index, ref, index.ns(route), mesh=mesh) for ref in refs]
    res["destinations"] = dests
    live = [d for d in dests if d["weight"] > 0]
    if not live:
        res["direct_response"] = {"status": 500}
        why = "has no backendRefs" if not refs else "gives every backend weight 0"
        return routing._finish(res, "direct_response", "direct response: {0} {1}: Istio answers 500".format(text, why), status=500)
    total = sum(d["weight"] for d in live)
    target = ", ".join(
        "{0}{1}{2}".format(d["host"], ":{0}".format(d["port"]) if d["port"] else "", " ({0}/{1})".format(d["weight"], total) if len(dests) > 1 else "")
        for d in dests
    )
    text = "route: {0} -> {1}".format(text, target)
    broken = [d for d in live if d["problems"]]
    if broken and not all(d["namespace_known"] for d in broken):
        return routing._unsupported(res, "{0}: backend not among the objects given ({1})".format(where, "; ".join(p for d in broken for p in d["problems"])))
    if len(broken) == len(live):
        return routing._finish(
            res, "no_upstream", "{0}; but {1}: Istio answers 500".format(text, "; ".join(p for d in broken for p in d["problems"])), status=500
        )
    if broken:
        res["notes"].append("some weighted backends are broken (500 for their share): " + "; ".join(p for d in broken for p in d["problems"]))
        return routing._finish(res, "route", text + " (partly broken: 500 for some requests)", upstream=True)
    return routing._finish(res, "route", text, upstream=True)


def _first_match(index, res, table, req):
    """``(entry)`` of the first route of ``table`` the request matches, or None."""
    for entry in table:
        route, i, j, match, _rule = entry
        try:
            if request_matches(match, req):
                return entry
        except routing.Unknown as exc:
            raise routing.Unknown("{0} rule {1} match {2}: {3}".format(index.oid(route), i, j, exc)) from exc
    return None


def _choose(index, res, groups, req):
    """The route a virtual host made of several groups (HTTPRoutes that wrote the host
    differently) takes: Istio concatenates the groups, moving catch-alls last, in an order this
    model does not reproduce; decided only when one group has a matching route."""
    specific, catch_alls = [], []
    for table in groups:
        entry = _first_match(index, res, [e for e in table if not is_catch_all(e[3])], req)
        if entry is not None:
            specific.append(entry)
        catch_alls.extend(e for e in table if is_catch_all(e[3]))
    if len(specific) == 1 or (not specific and len(catch_alls) == 1):
        return (specific or catch_alls)[0]
    if not specific and not catch_alls:
        return None
    candidates = specific or catch_alls
    raise routing.Unknown(
        "routes of HTTPRoutes that write the host differently share one virtual host ({0}); Istio concatenates them in an order not modelled".format(
            ", ".join(index.oid(e[0]) for e in candidates)
        )
    )


# ----------------------------------------------------------------------------------------
# through a gateway
# ----------------------------------------------------------------------------------------
def explain_gateway(index, req, res, gateways):
    """A request to the pods of ``gateways`` (Gateway API Gateways)."""
    listeners = listeners_of(gateways)
    names = ", ".join("{0}/{1}".format(*key) for key, _gw in gateways)
    family = ("HTTPS",) if req["scheme"] == "https" else ("HTTP",)
    port = req["port"]
    if port is None:
        candidates = sorted(set(item["number"] for item in listeners if item["protocol"] in family))
        if not candidates:
            return routing._finish(res, "no_server", "no listener: no {0} listener on Gateway {1}".format(req["scheme"].upper(), names), error=["refused"])
        preferred = [p for p in candidates if any(item["number"] == p and host_matches(item["hostname"], req["host"]) for item in listeners)]
        port = (preferred or candidates)[0]
        if len(preferred or candidates) > 1:
            res["notes"].append("port not given: assumed {0} of {1}".format(port, ", ".join(str(p) for p in (preferred or candidates))))
    on_port = [item for item in listeners if item["number"] == port]
    if not on_port:
        ports = ", ".join(str(p) for p in sorted(set(item["number"] for item in listeners))) or "no port"
        return routing._finish(
            res, "no_server", "no listener: Gateway {0} listens on {1}, not on {2}".format(names, ports, port), error=["refused", "reset", "timeout"]
        )
    protocols = sorted(set(item["protocol"] for item in on_port))
    res["server"] = {"port": port, "protocols": protocols}
    if any(p not in ("HTTP", "HTTPS") for p in protocols) or len(protocols) > 1:
        return routing._unsupported(res, "port {0} has {1} listeners (only HTTP and terminated HTTPS are modelled)".format(port, "/".join(protocols)))
    if protocols[0] == "HTTPS":
        if req["scheme"] != "https":
            return routing._finish(
                res, "protocol_mismatch", "protocol mismatch: port {0} expects TLS, the request is plain HTTP".format(port), error=["reset", "protocol"]
            )
        sni = (req["sni"] or req["host"]).lower()
        ranked = sorted(
            ((1000 if item["hostname"] == sni else len(item["hostname"]), n, item) for n, item in enumerate(on_port) if host_matches(item["hostname"], sni)),
            key=lambda entry: (-entry[0], entry[1]),
        )
        if not ranked:
            hosts = ", ".join(item["hostname"] for item in on_port)
            return routing._finish(
                res, "tls_no_server", "no TLS listener: SNI {0!r} matches no listener on port {1} ({2})".format(sni, port, hosts), error=["tls", "reset"]
            )
        chosen = ranked[0][2]
        mode = ((chosen["spec"].get("tls") or {}).get("mode")) or "Terminate"
        if mode != "Terminate":
            return routing._unsupported(res, "{0} is TLS {1} (TLS routes are not modelled)".format(_listener_id(chosen), mode))
        route_listeners = [chosen]
    else:
        if req["scheme"] == "https":
            return routing._finish(res, "protocol_mismatch", "protocol mismatch: port {0} serves plain HTTP, the request uses TLS".format(port), error=["tls"])
        route_listeners = on_port
    used = sorted(set("{0}/{1}".format(*item["gateway"]) for item in route_listeners))
    res["gateway"] = used[0] if len(used) == 1 else used
    # virtual hosts: one per hostname that a listener and an attached route have in common
    vhosts = {}
    skipped = []
    for item in route_listeners:
        for route in index.http_routes:
            try:
                hostnames = attached_hostnames(index, route, item, listeners)
            except _Skip as exc:
                skipped.append("{0} is not attached to {1}: {2}".format(index.oid(route), _listener_id(item), exc))
                continue
            except routing.Unknown as exc:
                return routing._unsupported(res, str(exc))
            for hostname in hostnames or []:
                domain = hosts_intersection(item["hostname"], hostname)
                groups = vhosts.setdefault(domain, {})
                groups.setdefault((item["gateway"], item["name"], hostname), []).append(route)
    res["notes"].extend(skipped)
    domain = routing._envoy_domain(list(vhosts), req["host"])
    if domain is None:
        served = sorted(set(item["hostname"] for item in route_listeners))
        if any(host_matches(h, req["host"]) for h in served):
            return routing._finish(
                res, "no_route", "no route: no HTTPRoute attached to Gateway {0} serves host {1}".format(", ".join(used), req["host"]), status=404
            )
        return routing._finish(
            res,
            "no_virtual_host",
            "no virtual host: port {0} of Gateway {1} serves {2}, not {3}".format(port, ", ".join(used), routing._join(served), req["host"]),
            status=404,
        )
    res["virtual_host"] = domain
    groups = [route_table(index, routes) for _key, routes in sorted(vhosts[domain].items())]
    try:
        entry = _choose(index, res, groups, req)
    except routing.Unknown as exc:
        return routing._unsupported(res, str(exc))
    if entry is None:
        described = [
            "{0} matches only {1}".format(index.oid(r), routing._join(sorted(set(describe_match(e[3]) for t in groups for e in t if e[0] is r))))
            for r in _routes_of(groups)
        ]
        return routing._finish(res, "no_route", "no route: " + "; ".join(described), status=404)
    return apply_rule(index, res, *entry, req=req, listener=route_listeners[0])


def _routes_of(groups):
    seen = []
    for table in groups:
        for entry in table:
            if all(entry[0] is not r for r in seen):
                seen.append(entry[0])
    return seen


# ----------------------------------------------------------------------------------------
# from the mesh (GAMMA)
# ----------------------------------------------------------------------------------------
def mesh_routes(index, fqdn, port, client_ns):
    """HTTPRoutes attached to the Service or ServiceEntry of ``fqdn`` that apply on ``port`` to a
    client of ``client_ns``: those of the client's namespace, else those of the host's."""
    by_namespace = {}
    for route in index.http_routes:
        route_ns = index.ns(route)
        for ref in (route.get("spec") or {}).get("parentRefs") or []:
            group, kind = ref.get("group") or GATEWAY_API_GROUP, ref.get("kind") or "Gateway"
            parent_ns = ref.get("namespace") or route_ns
            if (group, kind) == ("", "Service"):
                hosts = [index.service_fqdn(parent_ns, ref.get("name"))]
            elif (group, kind) == (ISTIO_GROUP, "ServiceEntry"):
                entries = [se for se in index.service_entries if index.ns(se) == parent_ns and (se.get("metadata") or {}).get("name") == ref.get("name")]
                hosts = [index.resolve(h, parent_ns) for se in entries for h in (se.get("spec") or {}).get("hosts") or []]
            else:
                continue
            if not any(host_matches(h, fqdn) for h in hosts):
                continue
            if ref.get("port") is not None and int(ref["port"]) != port:
                continue
            if route_ns not in (client_ns, parent_ns):
                continue
            by_namespace.setdefault((route_ns, route_ns == client_ns), []).append(route)
            break
    if not by_namespace:
        return []
    consumer = [routes for (_ns, own), routes in by_namespace.items() if own]
    return consumer[0] if consumer else sorted(by_namespace.items())[0][1]


def explain_mesh(index, req, res, routes):
    table = route_table(index, routes)
    try:
        entry = _first_match(index, res, table, req)
    except routing.Unknown as exc:
        return routing._unsupported(res, str(exc))
    if entry is None:
        described = ["{0} matches only {1}".format(index.oid(r), routing._join(sorted(set(describe_match(e[3]) for e in table if e[0] is r)))) for r in routes]
        return routing._finish(res, "no_route", "no route: " + "; ".join(described), status=404)
    return apply_rule(index, res, *entry, req=req, mesh=True)


# ----------------------------------------------------------------------------------------
# lint
# ----------------------------------------------------------------------------------------
def _parent_severity(index, parent):
    """An error when the objects of the parent's namespace were given, else a warning."""
    return "error" if parent[0] in index.service_namespaces or any(key[0] == parent[0] for key in index.k8s_gateways) else "warning"


def lint_findings(index, finding):
    """Findings on Gateway API objects: ``finding(severity, code, object id, message)`` makes one.

    A Gateway whose Service is not among the objects (warning), an HTTPRoute whose parent
    Gateway or ServiceEntry is missing (a warning when nothing of its namespace was given) or
    that no listener of its parent takes (error), a
    backend that answers 500 (missing Service or port, no ReferenceGrant: error; warning when
    no Service of that namespace was given)."""
    findings = []
    for key, gateway in sorted(index.k8s_gateways.items()):
        service, managed = gateway_service(index, gateway)
        if service is None:
            findings.append(
                finding(
                    "error",
                    "gateway-address-unbound",
                    index.oid(gateway),
                    "{0}: spec.addresses names no Service of namespace {1}; Istio binds a Gateway only to a Service of its own namespace".format(
                        index.oid(gateway), key[0]
                    ),
                )
            )
        elif not managed and service not in index.services and service[0] in index.service_namespaces:
            findings.append(
                finding(
                    "warning",
                    "gateway-service-missing",
                    index.oid(gateway),
                    "{0}: Service {1}/{2} of spec.addresses does not exist; no gateway pods take this Gateway".format(index.oid(gateway), *service),
                )
            )
    all_listeners = listeners_of(sorted(index.k8s_gateways.items()))
    for route in index.http_routes:
        oid = index.oid(route)
        route_ns = index.ns(route)
        for n, ref in enumerate((route.get("spec") or {}).get("parentRefs") or []):
            group, kind = ref.get("group") or GATEWAY_API_GROUP, ref.get("kind") or "Gateway"
            parent = ((ref.get("namespace") or route_ns), ref.get("name"))
            if (group, kind) == (GATEWAY_API_GROUP, "Gateway"):
                if parent not in index.k8s_gateways:
                    findings.append(
                        finding(
                            _parent_severity(index, parent),
                            "httproute-parent-missing",
                            oid,
                            "{0}: parentRefs[{1}]: Gateway {2}/{3} does not exist".format(oid, n, *parent),
                        )
                    )
                    continue
                reasons = []
                attached = False
                for item in [i for i in all_listeners if i["gateway"] == parent]:
                    only = dict(route, spec=dict(route["spec"], parentRefs=[ref]))
                    try:
                        attached_hostnames(index, only, item, all_listeners)
                        attached = True
                    except _Skip as exc:
                        reasons.append("{0}: {1}".format(item["name"], exc))
                    except routing.Unknown:
                        attached = True  # undecidable here: not a finding
                if not attached:
                    findings.append(
                        finding(
                            "error",
                            "httproute-not-attached",
                            oid,
                            "{0}: parentRefs[{1}]: no listener of Gateway {2}/{3} takes the route ({4})".format(
                                oid, n, parent[0], parent[1], "; ".join(reasons) or "no listeners"
                            ),
                        )
                    )
            elif (group, kind) == (ISTIO_GROUP, "ServiceEntry") and not any(
                index.ns(se) == parent[0] and (se.get("metadata") or {}).get("name") == parent[1] for se in index.service_entries
            ):
                findings.append(
                    finding(
                        _parent_severity(index, parent),
                        "httproute-parent-missing",
                        oid,
                        "{0}: parentRefs[{1}]: ServiceEntry {2}/{3} does not exist".format(oid, n, *parent),
                    )
                )
        mesh = any((ref.get("kind") or "Gateway") != "Gateway" for ref in (route.get("spec") or {}).get("parentRefs") or [])
        for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
            for j, ref in enumerate(rule.get("backendRefs") or []):
                info = backend(index, ref, route_ns, mesh=mesh)
                for problem in info["problems"]:
                    severity = "error" if info["namespace_known"] else "warning"
                    findings.append(
                        finding(
                            severity, "httproute-backend-invalid", oid, "{0}: rules[{1}].backendRefs[{2}]: {3}; Istio answers 500".format(oid, i, j, problem)
                        )
                    )
    return findings
