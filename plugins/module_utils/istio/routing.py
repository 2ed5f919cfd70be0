# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Predict where Istio sends an HTTP request, from the configuration objects alone.

The model follows Istio's documented semantics for HTTP traffic:

* through a gateway workload: the Gateways whose selector selects the workload, their
  servers on the port (HTTP: one route table for the port; HTTPS with TLS termination:
  the server chosen by SNI), virtual hosts = VirtualService hosts intersected with server
  hosts (server host ``namespace/`` restrictions honoured; a server host no VirtualService
  serves gets no virtual host), Envoy domain matching (exact, then longest ``*.suffix``,
  then ``*``; the port of Host is ignored), the routes of all VirtualServices of a host
  concatenated in creation order with catch-all routes moved last (Istio's
  BuildGatewayHTTPRouteConfig and SortVHostRoutes), ``tls.httpsRedirect``;
* from the mesh (a sidecar): the host must be in the registry (Service or ServiceEntry)
  on that port, otherwise ``outboundTrafficPolicy`` decides (ALLOW_ANY passes through,
  REGISTRY_ONLY answers 502), except that a VirtualService for a host outside the registry
  applies on port 80; VirtualServices bound to ``mesh`` (the default when ``gateways`` is
  omitted), else the default route to the service;
* rules in order, first match wins; the alternatives of ``match`` are ORed and the fields
  of one alternative ANDed: uri exact/prefix/regex (RE2, full match, without the query),
  ignoreUriCase, scheme, method, authority, headers (empty match = present),
  withoutHeaders, queryParams, port, gateways, sourceNamespace, sourceLabels;
* actions: redirect, directResponse, fault abort (always or with a probability), route
  with weights; destination hosts resolved relative to the VirtualService namespace and
  checked against Services/ServiceEntries (port) and DestinationRules (subset).

* TLS from a sidecar (the client speaks TLS to an HTTPS or TLS port) and opaque TCP (a TCP
  or MONGO port): the ``tls`` rules of the mesh's VirtualService, matched by SNI
  (``sniHosts``), port, gateways and source, or its ``tcp`` rules, matched by port, gateways
  and source; else the default route. The connection is passed on, never read.

Anything outside this model (delegation, TLS passthrough and TCP servers, Sidecar and
EnvoyFilter resources, regex constructs RE2 lacks, match fields Istio added later ...)
makes the prediction ``unsupported`` with the reason: the model never guesses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re
from urllib.parse import parse_qsl

from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import (
    MeshIndex,
    exported_to,
    host_matches,
    hosts_intersection,
    labels_subset,
    split_server_host,
)
from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import (
    HTTP_FAMILY,
    TCP_PORT_PROTOCOLS,
    TLS_PORT_PROTOCOLS,
    regex_fullmatch,
    weights_total,
)

MATCH_KEYS = (
    "name",
    "uri",
    "scheme",
    "method",
    "authority",
    "headers",
    "queryParams",
    "withoutHeaders",
    "ignoreUriCase",
    "port",
    "gateways",
    "sourceNamespace",
    "sourceLabels",
    "statPrefix",
)
# Rule fields that do not change which rule matches nor the status the route decides.
PASSIVE_RULE_KEYS = (
    "name",
    "rewrite",
    "timeout",
    "retries",
    "headers",
    "mirror",
    "mirrors",
    "mirrorPercentage",
    "mirrorPercent",
    "corsPolicy",
)
ACTION_KEYS = ("match", "route", "redirect", "directResponse", "fault")
# The match fields of a VirtualService's ``tls`` and ``tcp`` rules the model knows
# (destinationSubnets is not).
L4_MATCH_KEYS = {"tls": ("sniHosts", "port", "gateways", "sourceNamespace", "sourceLabels"), "tcp": ("port", "gateways", "sourceNamespace", "sourceLabels")}
# The request the explainer takes, as an Ansible argument spec: route_explain's ``requests``
# option and every adapter (route_verify's explanations) derive from it.
REQUEST_OPTIONS = dict(
    name=dict(type="str"),
    via=dict(type="str"),
    gateway_labels=dict(type="dict"),
    host=dict(type="str", required=True),
    port=dict(type="int"),
    scheme=dict(type="str", choices=["http", "https"], default="http"),
    sni=dict(type="str"),
    path=dict(type="str", default="/"),
    method=dict(type="str", default="GET"),
    headers=dict(type="dict"),
    source_namespace=dict(type="str", default="default"),
    source_labels=dict(type="dict"),
    proxy_namespace=dict(type="str"),
    outbound_traffic_policy=dict(type="str", choices=["ALLOW_ANY", "REGISTRY_ONLY"], default="ALLOW_ANY"),
)
REQUEST_KEYS = tuple(REQUEST_OPTIONS)


class ExplainError(ValueError):
    """The request to explain is malformed."""


class Unknown(Exception):
    """Raised inside the model when a decision depends on something not modelled."""


# ----------------------------------------------------------------------------------------
# requests
# ----------------------------------------------------------------------------------------
def normalize_request(raw, where="request"):
    if not isinstance(raw, dict):
        raise ExplainError("{0} must be a mapping".format(where))
    raw = dict((k, v) for k, v in raw.items() if v is not None)
    unknown = sorted(set(raw) - set(REQUEST_KEYS))
    if unknown:
        raise ExplainError("{0}: unknown key(s) {1}; known keys: {2}".format(where, ", ".join(unknown), ", ".join(REQUEST_KEYS)))
    for key, option in REQUEST_OPTIONS.items():
        if "default" in option:
            raw.setdefault(key, option["default"])
    host = raw.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ExplainError("{0}: host is required".format(where))
    scheme = str(raw["scheme"]).lower()
    if scheme not in ("http", "https"):
        raise ExplainError("{0}: scheme must be http or https".format(where))
    via = raw.get("via")
    labels = raw.get("gateway_labels")
    if via is None and labels is None:
        via = "mesh"
    if via is not None and via != "mesh" and (not isinstance(via, str) or via.count("/") != 1 or not all(via.split("/"))):
        raise ExplainError("{0}: via must be 'mesh' or '<namespace>/<gateway name>', got {1!r}".format(where, via))
    if labels is not None and (not isinstance(labels, dict) or via == "mesh"):
        raise ExplainError("{0}: gateway_labels must be a mapping and cannot be combined with via: mesh".format(where))
    port = raw.get("port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError) as exc:
            raise ExplainError("{0}: port must be an integer".format(where)) from exc
        if not 0 < port < 65536:
            raise ExplainError("{0}: port {1} out of range".format(where, port))
    path = raw["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        raise ExplainError("{0}: path must start with /".format(where))
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise ExplainError("{0}: headers must be a mapping".format(where))
    policy = str(raw["outbound_traffic_policy"]).upper()
    if policy not in ("ALLOW_ANY", "REGISTRY_ONLY"):
        raise ExplainError("{0}: outbound_traffic_policy must be ALLOW_ANY or REGISTRY_ONLY".format(where))
    host = host.strip()
    return {
        "name": raw.get("name"),
        "via": via if labels is None else (via or "labels"),
        "gateway_labels": labels,
        "authority": host,
        "host": re.sub(r":\d+$", "", host).strip("[]").lower(),
        "port": port,
        "scheme": scheme,
        "sni": raw.get("sni"),
        "path": path,
        "method": str(raw["method"]).upper(),
        "headers": dict((str(k).lower(), str(v)) for k, v in headers.items()),
        "source_namespace": raw["source_namespace"],
        "source_labels": raw.get("source_labels"),
        "proxy_namespace": raw.get("proxy_namespace"),
        "outbound_traffic_policy": policy,
    }


def _split_path(path):
    base, _sep, query = path.partition("?")
    base = base.split("#", 1)[0]
    normalized = posixpath.normpath(base) if base not in ("", "/") else "/"
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if base.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    return normalized, dict(parse_qsl(query, keep_blank_values=True))


# ----------------------------------------------------------------------------------------
# matching
# ----------------------------------------------------------------------------------------
def re2_fullmatch(pattern, value):
    """Full match with RE2 semantics (what Envoy does); Unknown when RE2 rejects the pattern."""
    try:
        return regex_fullmatch(pattern, value)
    except ValueError as exc:
        raise Unknown(str(exc)) from exc


def string_match(spec, value, what, ignore_case=False):
    """Evaluate an Istio StringMatch against value (None = absent)."""
    if not isinstance(spec, dict):
        raise Unknown("{0}: match {1!r} is not a StringMatch".format(what, spec))
    if not spec:
        return value is not None
    if len(spec) != 1 or next(iter(spec)) not in ("exact", "prefix", "regex"):
        raise Unknown("{0}: StringMatch {1} is not modelled".format(what, spec))
    kind, expected = next(iter(spec.items()))
    if value is None:
        return False
    expected = "" if expected is None else str(expected)
    if kind == "regex":
        return re2_fullmatch(expected, value)
    if ignore_case:
        value, expected = value.lower(), expected.lower()
    return value == expected if kind == "exact" else value.startswith(expected)


def route_applies(m, ctx):
    """Whether Istio emits an Envoy route for this alternative on this proxy.

    ``port``, ``gateways``, ``sourceNamespace`` and ``sourceLabels`` are decided when the
    configuration is translated for a proxy, not per request: an alternative that does not
    apply is dropped. Raises Unknown when the proxy's namespace or labels are needed.
    """
    if m is None:
        return True
    unknown = sorted(set(m) - set(MATCH_KEYS))
    if unknown:
        raise Unknown("match field(s) {0} not modelled".format(", ".join(unknown)))
    if "port" in m and int(m["port"]) != ctx["port"]:
        return False
    if "gateways" in m:
        refs = [ctx["index"].gateway_ref(g, ctx["vs_ns"]) for g in m["gateways"]]
        if ctx["gateway"] not in refs:
            return False
    if "sourceNamespace" in m:
        if ctx["source_namespace"] is None:
            raise Unknown("sourceNamespace match needs the namespace of the gateway pods (request proxy_namespace)")
        if m["sourceNamespace"] != ctx["source_namespace"]:
            return False
    if m.get("sourceLabels"):
        if ctx["source_labels"] is None:
            raise Unknown("sourceLabels match needs the labels of the client (request source_labels)")
        if not labels_subset(m["sourceLabels"], ctx["source_labels"]):
            return False
    return True


def is_catch_all(m):
    """Istio's catch-all route: path prefix / or regex .*, no header, method, authority,
    scheme or query parameter condition (such routes end a VirtualService's route list and
    are moved behind the other VirtualServices' routes on a gateway host)."""
    if m is None:
        return True
    uri = m.get("uri")
    if uri not in (None, {"prefix": "/"}, {"regex": ".*"}):
        return False
    return not any(m.get(k) for k in ("headers", "withoutHeaders", "queryParams", "method", "authority", "scheme"))


def _header_value(headers, name, spec, inverted=False):
    if name.startswith("@"):
        raise Unknown("matching on {0} (request metadata such as JWT claims) is not modelled".format(name))
    value = headers.get(name.lower())
    if value is None and inverted and isinstance(spec, dict) and spec:
        return ""  # Istio sets treat_missing_header_as_empty on withoutHeaders matchers
    return value


def request_matches(m, req):
    """Whether a request satisfies the request-dependent fields of an alternative (AND)."""
    if m is None:
        return True
    if "uri" in m:
        uri = m["uri"]
        if m.get("ignoreUriCase") and isinstance(uri, dict) and "regex" in uri:
            raise Unknown("ignoreUriCase with a regex uri is not modelled")
        if not string_match(uri, req["path_only"], "uri", ignore_case=bool(m.get("ignoreUriCase"))):
            return False
    for key, value in (("scheme", req["scheme"]), ("method", req["method"]), ("authority", req["authority"])):
        if key in m and not string_match(m[key], value, key):
            return False
    for name, spec in (m.get("headers") or {}).items():
        if not string_match(spec, _header_value(req["headers"], name, spec), "headers." + name):
            return False
    for name, spec in (m.get("withoutHeaders") or {}).items():
        if string_match(spec, _header_value(req["headers"], name, spec, inverted=True), "withoutHeaders." + name):
            return False
    for name, spec in (m.get("queryParams") or {}).items():
        if isinstance(spec, dict) and "prefix" in spec:
            raise Unknown("queryParams prefix match is not supported by Istio")
        if not string_match(spec, req["query"].get(name), "queryParams." + name):
            return False
    return True


def match_alternative(m, req, ctx):
    """True/False for one HTTPMatchRequest on this proxy; raises Unknown when undecidable."""
    return route_applies(m, ctx) and request_matches(m, req)


def applicable(m, ctx):
    """Whether an alternative can apply here at all (gateway, port, source filters)."""
    try:
        return route_applies(m, ctx)
    except Unknown:
        return True


def _describe_string(spec, exact_word="exactly "):
    if not isinstance(spec, dict) or not spec:
        return "present"
    kind, value = next(iter(spec.items()))
    if kind == "prefix":
        return "{0}".format(value)
    if kind == "exact":
        return "{0}{1}".format(exact_word, value)
    return "regex {0}".format(value)


def describe_alternative(m):
    """Short text for an HTTPMatchRequest, e.g. ``/status`` or ``exactly /x with header a=b``."""
    if not m:
        return "every request"
    parts = []
    if "uri" in m:
        parts.append(_describe_string(m["uri"]) + (" (any case)" if m.get("ignoreUriCase") else ""))
    for key in ("method", "scheme", "authority"):
        if key in m:
            parts.append("{0} {1}".format(key, _describe_string(m[key], "")))
    for name, spec in (m.get("headers") or {}).items():
        parts.append("header {0} {1}".format(name, _describe_string(spec, "= ")))
    for name, spec in (m.get("withoutHeaders") or {}).items():
        parts.append("without header {0} {1}".format(name, _describe_string(spec, "= ")))
    for name, spec in (m.get("queryParams") or {}).items():
        parts.append("query {0} {1}".format(name, _describe_string(spec, "= ")))
    if "port" in m:
        parts.append("port {0}".format(m["port"]))
    if "gateways" in m:
        parts.append("gateways {0}".format(", ".join(m["gateways"])))
    if not parts:
        return "every request"
    head, rest = (parts[0], parts[1:]) if "uri" in m else ("any path", parts)
    return head + " with " + " and ".join(rest) if rest else head


def _join(items):
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ----------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------
def _new_result(req):
    return {
        "request": dict((k, v) for k, v in req.items() if k not in ("path_only", "query")),
        "outcome": None,
        "expected": {"status": None, "error": None, "upstream": False},
        "gateway": None,
        "gateway_workload": None,
        "server": None,
        "virtual_host": None,
        "virtual_service": None,
        "http_route": None,
        "rule": None,
        "rule_name": None,
        "match": None,
        "destinations": [],
        "redirect": None,
        "direct_response": None,
        "fault": None,
        "header_actions": [],
        "mirror": None,
        "cors": None,
        "unsupported": [],
        "notes": [],
        "text": None,
        "opaque": False,
    }


def _finish(res, outcome, text, status=None, error=None, upstream=False):
    res["outcome"] = outcome
    res["expected"] = {"status": status, "error": error, "upstream": upstream}
    res["text"] = text
    return res


def _unsupported(res, reason):
    res["unsupported"].append(reason)
    return _finish(res, "unsupported", "unsupported: " + reason)


# ----------------------------------------------------------------------------------------
# destinations and actions
# ----------------------------------------------------------------------------------------
def resolve_destination(index, dest, vs_ns, client_ns):
    """Describe a route destination and what is wrong with it (problems: list of str)."""
    dest = dest or {}
    host = index.resolve(dest.get("host"), vs_ns)
    port = (dest.get("port") or {}).get("number")
    subset = dest.get("subset")
    info = {"host": host, "port": port, "subset": subset, "kind": None, "object": None, "problems": [], "namespace_known": True}
    reg = index.find_registry(host) if host else None
    if reg is None:
        info["namespace_known"] = index.namespace_known(host)
        info["problems"].append("no Service or ServiceEntry for host {0}".format(host))
    else:
        info["kind"] = reg["kind"]
        info["object"] = index.oid(reg["object"])
        numbers = [p["number"] for p in reg["ports"]]
        if port is None:
            if len(numbers) == 1:
                info["port"] = numbers[0]
            else:
                info["problems"].append(
                    "no port given and {0} exposes {1} ports ({2}); Istio needs destination.port".format(
                        info["object"], len(numbers), ", ".join(str(n) for n in numbers) or "none"
                    )
                )
        elif reg["kind"] == "Service" and port not in numbers:
            info["problems"].append("port {0} is not exposed by {1} (ports: {2})".format(port, info["object"], ", ".join(str(n) for n in numbers) or "none"))
        elif reg["kind"] == "ServiceEntry" and numbers and port not in numbers:
            info["problems"].append("port {0} is not declared by {1} (ports: {2})".format(port, info["object"], ", ".join(str(n) for n in numbers)))
    if subset:
        subsets = index.subsets_for(host, client_ns)
        if subset not in subsets:
            info["problems"].append(
                "subset {0} is defined by no DestinationRule for {1}{2}".format(subset, host, " (subsets: {0})".format(", ".join(subsets)) if subsets else "")
            )
    return info


def _apply_action(index, res, rule, vs, client_ns, req):
    vs_ns = index.ns(vs)
    extra = sorted(set(rule) - set(PASSIVE_RULE_KEYS) - set(ACTION_KEYS) - set(["delegate"]))
    if extra:
        return _unsupported(res, "{0} rule {1}: field(s) {2} not modelled".format(index.oid(vs), res["rule"], ", ".join(extra)))
    if "delegate" in rule:
        return _unsupported(res, "{0} rule {1} delegates to another VirtualService (delegation is not modelled)".format(index.oid(vs), res["rule"]))
    where = "{0} rule {1}{2}".format(index.oid(vs), res["rule"], " ({0})".format(rule["name"]) if rule.get("name") else "")
    _note_passive_actions(res, rule, where)
    abort = (rule.get("fault") or {}).get("abort")
    if (rule.get("fault") or {}).get("delay"):
        res["notes"].append("{0} injects a delay".format(where))
    if abort:
        unknown = sorted(set(abort) - set(["httpStatus", "percentage"]))
        if unknown or "httpStatus" not in abort:
            return _unsupported(res, "{0}: fault abort {1} is not modelled (only httpStatus)".format(where, abort))
        if "percentage" not in abort:
            return _unsupported(res, "{0}: fault abort without percentage (the proxy default decides)".format(where))
        pct = float((abort.get("percentage") or {}).get("value") or 0)
        res["fault"] = {"abort_status": int(abort["httpStatus"]), "percentage": pct}
        if pct >= 100:
            return _finish(res, "abort", "abort: {0} aborts every request with {1}".format(where, abort["httpStatus"]), status=int(abort["httpStatus"]))
        if pct > 0:
            res["notes"].append("{0} aborts {1}% of requests with {2}".format(where, pct, abort["httpStatus"]))
    if rule.get("redirect") is not None:
        red = rule["redirect"]
        unknown = sorted(set(red) - set(["uri", "authority", "port", "scheme", "redirectCode", "derivePort"]))
        if unknown:
            return _unsupported(res, "{0}: redirect field(s) {1} not modelled".format(where, ", ".join(unknown)))
        code = int(red.get("redirectCode") or 301)
        scheme = red.get("scheme") or req["scheme"]
        authority = red.get("authority") or req["authority"]
        if red.get("port"):
            authority = re.sub(r":\d+$", "", authority) + ":{0}".format(red["port"])
        # Envoy's path_redirect keeps the request's query unless the new path has one of its own
        path = red.get("uri") or req["path"]
        query = req["path"].partition("?")[2]
        if red.get("uri") and "?" not in red["uri"] and query:
            path = "{0}?{1}".format(red["uri"], query)
        location = "{0}://{1}{2}".format(scheme, authority, path)
        res["redirect"] = {"status": code, "location": location}
        return _finish(res, "redirect", "redirect: {0} answers {1} to {2}".format(where, code, location), status=code)
    if rule.get("directResponse") is not None:
        status = int(rule["directResponse"].get("status") or 0)
        res["direct_response"] = {"status": status}
        return _finish(res, "direct_response", "direct response: {0} answers {1}".format(where, status), status=status)
    if rule.get("route") and rule.get("corsPolicy") and _cors_preflight_allowed(rule["corsPolicy"], req):
        # Envoy's CORS filter runs after the fault filter (Istio's filter order) and before the
        # router, and answers the preflight of an allowed origin itself
        res["cors"] = {"preflight": True, "origin": req["headers"].get("origin")}
        return _finish(
            res,
            "cors_preflight",
            "CORS preflight: {0} allows origin {1}: the gateway answers 200 itself".format(where, req["headers"].get("origin")),
            status=200,
        )
    routes = rule.get("route") or []
    if not routes:
        return _unsupported(res, "{0} has neither route, redirect nor directResponse".format(where))
    dests = []
    for route in routes:
        unknown = sorted(set(route) - set(["destination", "weight", "headers"]))
        if unknown:
            return _unsupported(res, "{0}: route field(s) {1} not modelled".format(where, ", ".join(unknown)))
        weight = route.get("weight")
        if weight is None:
            weight = 100 if len(routes) == 1 else 0
        info = resolve_destination(index, route.get("destination"), vs_ns, client_ns)
        info["weight"] = int(weight)
        dests.append(info)
    res["destinations"] = dests
    live = [d for d in dests if d["weight"] > 0]
    total = weights_total(routes)
    if len(routes) > 1 and total != 100:
        res["notes"].append("{0}: weights add up to {1}, not 100".format(where, total))
    target = ", ".join(
        "{0}{1}{2}{3}".format(
            d["host"],
            ":{0}".format(d["port"]) if d["port"] else "",
            " subset {0}".format(d["subset"]) if d["subset"] else "",
            " ({0}%)".format(d["weight"]) if len(dests) > 1 else "",
        )
        for d in dests
    )
    broken = [d for d in live if d["problems"]]
    text = "route: {0} -> {1}".format(where, target)
    if res["match"] is not None:
        text = "route: {0} match {1} ({2}) -> {3}".format(where, res["match"], res["match_text"], target)
    if live and len(broken) == len(live):
        problems = "; ".join(p for d in broken for p in d["problems"])
        if not all(d["namespace_known"] for d in broken):
            return _unsupported(res, "{0}: destination not among the objects given ({1})".format(where, problems))
        return _finish(res, "no_upstream", "{0}; but {1}: the proxy answers 503".format(text, problems), status=503)
    if broken:
        res["notes"].append("some weighted destinations are broken: " + "; ".join(p for d in broken for p in d["problems"]))
        return _finish(res, "route", text + " (partly broken: 503 for some requests)", upstream=True)
    return _finish(res, "route", text, upstream=True)


def _cors_preflight_allowed(policy, req):
    """A preflight request (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
    origin; ``req`` is normalized (lower-case header names)."""
    origin = req["headers"].get("origin")
    if req.get("method") != "OPTIONS" or not origin or not req["headers"].get("access-control-request-method"):
        return False
    return any(string_match(allowed, origin, "corsPolicy.allowOrigins") for allowed in policy.get("allowOrigins") or [])


def _describe_header_operations(headers):
    parts = []
    for side in ("request", "response"):
        ops = (headers or {}).get(side) or {}
        for op in ("set", "add"):
            parts.extend("{0} {1} {2}: {3}".format(op, side, name, value) for name, value in sorted((ops.get(op) or {}).items()))
        parts.extend("remove {0} {1}".format(side, name) for name in ops.get("remove") or [])
    return parts


def _note_passive_actions(res, rule, where):
    """What a rule changes on the way without deciding the answer: headers, mirroring, CORS."""
    changes = _describe_header_operations(rule.get("headers"))
    for route in rule.get("route") or []:
        host = (route.get("destination") or {}).get("host")
        changes.extend("{0} (to {1})".format(change, host) for change in _describe_header_operations(route.get("headers")))
    if changes:
        res["header_actions"] = changes
        res["notes"].append("{0} headers: {1}".format(where, "; ".join(changes)))
    mirror = rule.get("mirror")
    if mirror:
        share = (rule.get("mirrorPercentage") or {}).get("value", 100)
        res["mirror"] = {"host": mirror.get("host"), "percentage": share}
        res["notes"].append("{0} mirrors {1}% of its requests to {2} (the copies' answers are dropped)".format(where, share, mirror.get("host")))
    if rule.get("corsPolicy"):
        res["notes"].append("{0} has a CORS policy (preflights from allowed origins are answered by the proxy)".format(where))


def _virtual_service_routes(index, vs, ctx):
    """The Envoy routes Istio emits for a VirtualService on this proxy, in order.

    One route per applicable match alternative (a rule without match is one catch-all);
    a catch-all route ends the list, as in Istio's BuildHTTPRoutesForVirtualService.
    Yields (rule index, match index or None, match, rule); raises Unknown.
    """
    routes = []
    for i, rule in enumerate((vs.get("spec") or {}).get("http") or []):
        matches = rule.get("match")
        if not matches:
            routes.append((i, None, None, rule))
            return routes
        for j, m in enumerate(matches):
            try:
                applies = route_applies(m, ctx)
            except Unknown as exc:
                raise Unknown("{0} rule {1} match {2}: {3}".format(index.oid(vs), i, j, exc)) from exc
            if applies:
                routes.append((i, j, m, rule))
                if is_catch_all(m):
                    return routes
    return routes


def _route_rules(index, res, entries, req, ctx_base, client_ns, gateway_host=False):
    """First matching route of a virtual host.

    ``entries`` are the (VirtualService, gateway) pairs of the host in Istio's order. On a
    gateway host the routes of all of them are concatenated and the catch-all routes moved
    to the end (Istio's SortVHostRoutes); a sidecar uses one VirtualService per host.
    Returns the finished result, or the per-VirtualService descriptions when nothing matched.
    """
    table = []
    described = []
    for vs, gateway in entries:
        ctx = dict(ctx_base, vs_ns=index.ns(vs), gateway=gateway)
        try:
            routes = _virtual_service_routes(index, vs, ctx)
        except Unknown as exc:
            return _unsupported(res, str(exc))
        table.extend((vs, i, j, m, rule) for i, j, m, rule in routes)
        alternatives = [describe_alternative(m) for _i, _j, m, _rule in routes]
        described.append("{0} matches {1}".format(index.oid(vs), "only " + _join(alternatives) if alternatives else "nothing here"))
    if gateway_host and len(entries) > 1:
        table = [t for t in table if not is_catch_all(t[3])] + [t for t in table if is_catch_all(t[3])]
    for vs, i, j, m, rule in table:
        try:
            hit = request_matches(m, req)
        except Unknown as exc:
            return _unsupported(res, "{0} rule {1} match {2}: {3}".format(index.oid(vs), i, j, exc))
        if hit:
            res["virtual_service"] = "{0}/{1}".format(index.ns(vs), (vs.get("metadata") or {}).get("name"))
            res["rule"] = i
            res["rule_name"] = rule.get("name")
            res["match"] = j
            res["match_text"] = describe_alternative(m)
            return _apply_action(index, res, rule, vs, client_ns, req)
    return described


# ----------------------------------------------------------------------------------------
# through a gateway
# ----------------------------------------------------------------------------------------
def _server_hosts(server):
    return list(server.get("hosts") or [])


def _envoy_domain(domains, host):
    """Envoy virtual host selection: exact, then the longest ``*.suffix``, then ``*``."""
    if host in domains:
        return host
    wild = [d for d in domains if d.startswith("*.") and host_matches(d, host)]
    if wild:
        return sorted(wild, key=len, reverse=True)[0]
    return "*" if "*" in domains else None


def _httproutes():
    """The Gateway API's counterpart of this module (it builds on this one, hence imported late)."""
    from ansible_collections.meshops.istio.plugins.module_utils.istio import httproutes  # noqa: PLC0415

    return httproutes


def _gateway_api(index, req, res, labels, selected):
    """The Gateway API Gateways that answer this request instead of Istio Gateways, or None.

    Istio merges both APIs' configuration of a port of one workload; the model explains a port
    that only one of them configures."""
    httproutes = _httproutes()
    k8s_selected = httproutes.gateways_for_workload(index, labels)
    if not k8s_selected:
        return None
    if not selected:
        return k8s_selected
    istio_ports = set((server.get("port") or {}).get("number") for _key, gw in selected for server in (gw.get("spec") or {}).get("servers") or [])
    k8s_ports = set(item["number"] for item in httproutes.listeners_of(k8s_selected))
    port = req["port"]
    if port is not None and port not in (istio_ports & k8s_ports):
        return k8s_selected if port in k8s_ports else None
    raise Unknown(
        "port {0} of the gateway workload is configured by Istio Gateways ({1}) and Gateway API Gateways ({2}); their merge is not modelled".format(
            port if port is not None else "(not given)",
            ", ".join("{0}/{1}".format(*key) for key, _gw in selected),
            ", ".join("{0}/{1}".format(*key) for key, _gw in k8s_selected),
        )
    )


def _explain_gateway(index, req, res):
    httproutes = _httproutes()
    labels = req["gateway_labels"]
    named = None
    if labels is None:
        ns, name = req["via"].split("/", 1)
        named = index.gateways.get((ns, name))
        k8s_named = index.k8s_gateways.get((ns, name))
        if named is None and k8s_named is not None:
            labels = httproutes.gateway_selector(index, k8s_named)
            if labels is None:  # its Service is not among the objects: that Gateway alone
                return httproutes.explain_gateway(index, req, res, [((ns, name), k8s_named)])
        elif named is None:
            known = ", ".join("{0}/{1}".format(*k) for k in sorted(set(index.gateways) | set(index.k8s_gateways))) or "none"
            return _finish(res, "unknown_gateway", "unknown gateway: Gateway {0} is not among the objects (Gateways: {1})".format(req["via"], known))
        else:
            labels = (named.get("spec") or {}).get("selector") or {}
    res["gateway_workload"] = labels
    selected = index.gateways_for_workload(labels)
    try:
        k8s_selected = _gateway_api(index, req, res, labels, selected)
    except Unknown as exc:
        return _unsupported(res, str(exc))
    if k8s_selected:
        return httproutes.explain_gateway(index, req, res, k8s_selected)
    workload = ", ".join("{0}={1}".format(k, v) for k, v in sorted(labels.items())) or "any"
    servers = []
    for key, gw in selected:
        for i, server in enumerate((gw.get("spec") or {}).get("servers") or []):
            port = server.get("port") or {}
            servers.append(
                {"gateway": key, "object": gw, "index": i, "server": server, "number": port.get("number"), "protocol": str(port.get("protocol") or "").upper()}
            )
    if not servers:
        return _finish(res, "no_server", "no server: no Gateway selects the gateway workload ({0})".format(workload), error=["refused"])
    family = ("HTTPS",) if req["scheme"] == "https" else HTTP_FAMILY
    port = req["port"]
    if port is None:
        candidates = sorted(set(s["number"] for s in servers if s["protocol"] in family))
        if not candidates:
            return _finish(
                res, "no_server", "no server: no {0} server on the gateway workload ({1})".format(req["scheme"].upper(), workload), error=["refused"]
            )
        preferred = [
            p
            for p in candidates
            if any(host_matches(split_server_host(h, "")[1], req["host"]) for s in servers if s["number"] == p for h in _server_hosts(s["server"]))
        ]
        chosen = (preferred or candidates)[0]
        if len(preferred or candidates) > 1:
            res["notes"].append("port not given: assumed {0} of {1}".format(chosen, ", ".join(str(p) for p in (preferred or candidates))))
        port = chosen
    on_port = [s for s in servers if s["number"] == port]
    if not on_port:
        ports = ", ".join(str(p) for p in sorted(set(s["number"] for s in servers)))
        return _finish(
            res,
            "no_server",
            "no server: the Gateways of workload {0} listen on {1}, not on {2}".format(workload, ports, port),
            error=["refused", "reset", "timeout"],
        )
    protocols = sorted(set(s["protocol"] for s in on_port))
    res["server"] = {"port": port, "protocols": protocols}
    if any(p not in (*HTTP_FAMILY, "HTTPS") for p in protocols):
        return _unsupported(res, "port {0} has {1} servers (only HTTP and terminated HTTPS are modelled)".format(port, "/".join(protocols)))
    if len(set("HTTPS" if p == "HTTPS" else "HTTP" for p in protocols)) > 1:
        return _unsupported(res, "port {0} mixes HTTP and HTTPS servers (a conflict Istio resolves on its own)".format(port))
    ctx_base = {"index": index, "port": port, "source_namespace": req["proxy_namespace"], "source_labels": labels}
    if protocols[0] == "HTTPS":
        if req["scheme"] != "https":
            return _finish(
                res, "protocol_mismatch", "protocol mismatch: port {0} expects TLS, the request is plain HTTP".format(port), error=["reset", "protocol"]
            )
        sni = (req["sni"] or req["host"]).lower()
        if re.match(r"^[0-9.]+$|:", sni):
            sni = ""
        ranked = []
        for s in on_port:
            for h in _server_hosts(s["server"]):
                host = split_server_host(h, "")[1]
                if host == "*":
                    ranked.append((0, s))
                elif sni and host == sni:
                    ranked.append((1000, s))
                elif sni and host_matches(host, sni):
                    ranked.append((len(host), s))
        if not ranked:
            hosts = ", ".join(h for s in on_port for h in _server_hosts(s["server"]))
            return _finish(
                res, "tls_no_server", "no TLS server: SNI {0!r} matches no server host on port {1} ({2})".format(sni, port, hosts), error=["tls", "reset"]
            )
        ranked.sort(key=lambda item: -item[0])
        chosen = ranked[0][1]
        tls = chosen["server"].get("tls") or {}
        mode = str(tls.get("mode") or "SIMPLE").upper()
        if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
            return _unsupported(
                res,
                "server {0} of Gateway {1}/{2} is TLS {3} (TLS routes are not modelled)".format(
                    chosen["index"], chosen["gateway"][0], chosen["gateway"][1], mode
                ),
            )
        if mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
            res["notes"].append("the server requires{0} a client certificate".format("" if mode == "MUTUAL" else " (optionally)"))
        route_servers = [chosen]
    else:
        if req["scheme"] == "https":
            return _finish(res, "protocol_mismatch", "protocol mismatch: port {0} serves plain HTTP, the request uses TLS".format(port), error=["tls"])
        route_servers = on_port
    # virtual hosts, as Istio's BuildGatewayHTTPRouteConfig builds them
    proxy_ns = req["proxy_namespace"]
    vhosts = {}
    for s in route_servers:
        gw_ns = s["gateway"][0]
        redirect = bool((s["server"].get("tls") or {}).get("httpsRedirect"))
        for vs in index.virtual_services:
            if s["gateway"] not in index.vs_gateways(vs):
                continue
            export = (vs.get("spec") or {}).get("exportTo")
            if export and "*" not in export:
                if proxy_ns is None:
                    return _unsupported(res, "{0} has exportTo {1}: give proxy_namespace (the gateway pods' namespace)".format(index.oid(vs), export))
                if not exported_to(vs, proxy_ns, index.default_namespace):
                    continue
            server_hosts = []
            for h in _server_hosts(s["server"]):
                allowed_ns, server_host = split_server_host(h, gw_ns)
                if allowed_ns is None or allowed_ns == index.ns(vs):
                    server_hosts.append(server_host)
            vs_hosts = [index.resolve(h, index.ns(vs)) for h in (vs.get("spec") or {}).get("hosts") or []]
            for server_host in server_hosts:
                for vs_host in vs_hosts:
                    domain = hosts_intersection(server_host, vs_host)
                    if domain is None:
                        continue
                    entry = vhosts.setdefault(domain, {"entries": [], "redirect": False})
                    entry["redirect"] = entry["redirect"] or redirect
                    if all(e[0] is not vs for e in entry["entries"]):
                        entry["entries"].append((vs, s["gateway"]))
        if redirect:
            for h in _server_hosts(s["server"]):
                vhosts.setdefault(split_server_host(h, gw_ns)[1], {"entries": [], "redirect": True})["redirect"] = True
    gateways = sorted(set("{0}/{1}".format(*s["gateway"]) for s in route_servers))
    res["gateway"] = gateways[0] if len(gateways) == 1 else gateways
    domain = _envoy_domain(list(vhosts), req["host"])
    if domain is None:
        served = [split_server_host(h, "")[1] for s in route_servers for h in _server_hosts(s["server"])]
        if any(host_matches(h, req["host"]) for h in served):
            return _finish(
                res, "no_route", "no route: no VirtualService bound to Gateway {0} serves host {1}".format(", ".join(gateways), req["host"]), status=404
            )
        return _finish(
            res,
            "no_virtual_host",
            "no virtual host: port {0} of Gateway {1} serves {2}, not {3}".format(port, ", ".join(gateways), _join(served) or "no host", req["host"]),
            status=404,
        )
    vhost = vhosts[domain]
    res["virtual_host"] = domain
    if vhost["redirect"]:
        return _finish(res, "https_redirect", "https redirect: server for {0} has tls.httpsRedirect: 301 to https".format(domain), status=301)
    if len(vhost["entries"]) > 1:
        res["notes"].append(
            "VirtualServices {0} are merged for host {1} in creation order, catch-all routes last".format(
                ", ".join(index.oid(v) for v, _g in vhost["entries"]), domain
            )
        )
    outcome = _route_rules(index, res, vhost["entries"], req, ctx_base, proxy_ns, gateway_host=True)
    if isinstance(outcome, dict):
        return outcome
    return _finish(res, "no_route", "no route: " + "; ".join(outcome), status=404)


# ----------------------------------------------------------------------------------------
# from the mesh
# ----------------------------------------------------------------------------------------
def _mesh_virtual_services(index, fqdn, src):
    """VirtualServices for the mesh whose hosts match ``fqdn``, the most specific first."""
    bound = []
    for vs in index.virtual_services:
        if "mesh" not in index.vs_gateways(vs) or not exported_to(vs, src, index.default_namespace):
            continue
        best = None
        for vs_host in (vs.get("spec") or {}).get("hosts") or []:
            resolved = index.resolve(vs_host, index.ns(vs))
            if host_matches(resolved, fqdn):
                rank = 1000 if resolved == fqdn else len(resolved)
                best = rank if best is None else max(best, rank)
        if best is not None:
            bound.append((best, vs))
    top = max([rank for rank, _vs in bound] or [0])
    return [vs for rank, vs in bound if rank == top]


def _has_http_port(index, number):
    """Whether some Service or ServiceEntry declares an HTTP (or sniffed) port ``number``."""
    candidates = [index.find_registry(index.service_fqdn(ns, name)) for ns, name in index.services]
    candidates += [
        {"ports": [{"number": p.get("number"), "protocol": (p.get("protocol") or "TCP").upper()} for p in (se.get("spec") or {}).get("ports") or []]}
        for se in index.service_entries
    ]
    return any(p["number"] == number and p["protocol"] in (*HTTP_FAMILY, "UNKNOWN") for c in candidates if c for p in c["ports"])


def _explain_mesh(index, req, res):
    src = req["source_namespace"]
    host = req["host"]
    candidates = [index.resolve(host, src)]
    if host.count(".") == 1:
        candidates.append("{0}.svc.{1}".format(host, index.domain))
    port = req["port"] or (443 if req["scheme"] == "https" else 80)
    reg = None
    fqdn = candidates[0]
    for candidate in candidates:
        reg = index.find_registry(candidate)
        if reg is not None:
            fqdn = candidate
            break
    res["gateway"] = "mesh"
    res["server"] = {"port": port}
    chosen = _mesh_virtual_services(index, fqdn, src)
    ctx_base = {"index": index, "port": port, "source_namespace": src, "source_labels": req["source_labels"]}
    if reg is None or port not in [p["number"] for p in reg["ports"]]:
        if reg is None and not index.namespace_known(fqdn):
            return _unsupported(res, "no Services of the namespace of {0} were given".format(fqdn))
        if reg is None and chosen and port == 80 and req["scheme"] == "http":
            # Istio applies VirtualServices for hosts outside the registry on port 80 only, in
            # the sidecars' HTTP route table for port 80, which exists when a Service has it.
            if not _has_http_port(index, 80):
                return _unsupported(
                    res, "{0} is outside the registry: its VirtualService applies only if sidecars have an HTTP port 80 route table".format(fqdn)
                )
            res["notes"].append("{0} is outside the registry: Istio applies {1} on port 80 only".format(fqdn, index.oid(chosen[0])))
            outcome = _route_rules(index, res, [(chosen[0], "mesh")], req, ctx_base, src)
            if isinstance(outcome, dict):
                return outcome
            return _finish(res, "no_route", "no route: " + "; ".join(outcome), status=404)
        why = "{0} is not in the registry".format(fqdn) if reg is None else "{0} does not declare port {1}".format(index.oid(reg["object"]), port)
        if req["outbound_traffic_policy"] == "REGISTRY_ONLY":
            if req["scheme"] == "https":
                return _finish(
                    res,
                    "blocked",
                    "blocked: {0} and outboundTrafficPolicy is REGISTRY_ONLY: the sidecar closes the TLS connection".format(why),
                    error=["reset", "tls"],
                )
            return _finish(res, "blocked", "blocked: {0} and outboundTrafficPolicy is REGISTRY_ONLY: the sidecar answers 502".format(why), status=502)
        if req["scheme"] == "https":
            res["opaque"] = True
        return _finish(res, "passthrough", "passthrough: {0}; ALLOW_ANY sends it to the original destination".format(why), upstream=True)
    protocol = next(p for p in reg["ports"] if p["number"] == port)["protocol"]
    if req["scheme"] == "https":
        if protocol not in TLS_PORT_PROTOCOLS:
            return _unsupported(
                res, "{0} port {1} is {2}: a TLS client on a port that is not TLS or HTTPS is not modelled".format(index.oid(reg["object"]), port, protocol)
            )
        return _explain_mesh_l4(index, req, res, reg, fqdn, port, chosen, "tls")
    if protocol in TCP_PORT_PROTOCOLS:
        return _explain_mesh_l4(index, req, res, reg, fqdn, port, chosen, "tcp")
    if protocol in ("HTTPS", "TLS", "TCP", "MONGO", "REDIS", "MYSQL"):
        return _unsupported(res, "{0} port {1} is {2} (only HTTP ports are modelled for mesh traffic)".format(index.oid(reg["object"]), port, protocol))
    if protocol == "UNKNOWN":
        res["notes"].append("{0} port {1} has no protocol: Istio sniffs it".format(index.oid(reg["object"]), port))
    httproutes = _httproutes()
    http_routes = httproutes.mesh_routes(index, fqdn, port, src)
    if http_routes and chosen:
        return _unsupported(
            res,
            "{0} and HTTPRoute(s) {1} both route {2} for the mesh; their merge is not modelled".format(
                index.oid(chosen[0]), ", ".join(index.oid(r) for r in http_routes), fqdn
            ),
        )
    if http_routes:
        return httproutes.explain_mesh(index, req, res, http_routes)
    if not chosen:
        dest = resolve_destination(index, {"host": fqdn, "port": {"number": port}}, src, src)
        dest["weight"] = 100
        res["destinations"] = [dest]
        return _finish(
            res, "default_route", "default route: no VirtualService for {0}; sent to {1} port {2}".format(fqdn, index.oid(reg["object"]), port), upstream=True
        )
    if len(chosen) > 1:
        res["notes"].append("several VirtualServices bind host {0} for the mesh; the oldest ({1}) is used".format(fqdn, index.oid(chosen[0])))
    outcome = _route_rules(index, res, [(chosen[0], "mesh")], req, ctx_base, src)
    if isinstance(outcome, dict):
        return outcome
    return _finish(res, "no_route", "no route: " + "; ".join(outcome), status=404)


def _l4_route(index, vs, section, ctx, sni=None):
    """(rule index, match index, rule) of the first ``tls`` (by SNI) or ``tcp`` rule of ``vs`` that
    takes a connection on this proxy and port; None when none does. Raises Unknown."""
    for i, rule in enumerate((vs.get("spec") or {}).get(section) or []):
        matches = rule.get("match") or ([] if section == "tls" else [None])
        for j, m in enumerate(matches):
            if m is None:  # a tcp rule without match takes every connection
                return i, None, rule
            unknown = sorted(set(m) - set(L4_MATCH_KEYS[section]))
            if unknown:
                raise Unknown("{0} {1} rule {2} match {3}: field(s) {4} not modelled".format(index.oid(vs), section, i, j, ", ".join(unknown)))
            plain = dict((k, v) for k, v in m.items() if k != "sniHosts")
            try:
                applies = route_applies(plain, ctx)
            except Unknown as exc:
                raise Unknown("{0} {1} rule {2} match {3}: {4}".format(index.oid(vs), section, i, j, exc)) from exc
            if applies and (section == "tcp" or any(host_matches(index.resolve(h, ctx["vs_ns"]), sni) for h in m.get("sniHosts") or [])):
                return i, j, rule
    return None


def _l4_destinations(index, rule, vs_ns, src):
    dests = []
    for route in rule.get("route") or []:
        info = resolve_destination(index, route.get("destination"), vs_ns, src)
        info["weight"] = int(route.get("weight") if route.get("weight") is not None else (100 if len(rule["route"]) == 1 else 0))
        dests.append(info)
    return dests


def _explain_mesh_l4(index, req, res, reg, fqdn, port, chosen, section):
    """A connection a sidecar passes on without reading it: TLS the client speaks itself
    (``tls`` rules, matched by SNI and port) or opaque TCP (``tcp`` rules, matched by port);
    gateways and source are matched as for HTTP. No rule: the default route to the host."""
    src = req["source_namespace"]
    sni = (req["sni"] or req["host"]).lower()
    res["server"]["protocols"] = [section.upper()]
    # the answer comes from the far end of a connection the proxy did not read: no proxy header
    res["opaque"] = True
    what = "SNI {0} on port {1}".format(sni, port) if section == "tls" else "port {0}".format(port)
    hit = None
    vs = chosen[0] if chosen else None
    if vs is not None:
        ctx = {"index": index, "port": port, "source_namespace": src, "source_labels": req["source_labels"], "vs_ns": index.ns(vs), "gateway": "mesh"}
        try:
            hit = _l4_route(index, vs, section, ctx, sni)
        except Unknown as exc:
            return _unsupported(res, str(exc))
    if hit is None:
        dest = resolve_destination(index, {"host": fqdn, "port": {"number": port}}, src, src)
        dest["weight"] = 100
        res["destinations"] = [dest]
        text = "default route: no {0} route for {1}; passed on to {2} port {3}".format(section, what, index.oid(reg["object"]), port)
        return _finish(res, "default_route", text, upstream=True)
    i, j, rule = hit
    res["virtual_service"] = index.oid(vs)
    res["rule"], res["match"], res["rule_name"] = i, j, rule.get("name")
    dests = res["destinations"] = _l4_destinations(index, rule, index.ns(vs), src)
    target = ", ".join(
        "{0}:{1}{2}{3}".format(
            d["host"], d["port"], " subset {0}".format(d["subset"]) if d["subset"] else "", " ({0}%)".format(d["weight"]) if len(dests) > 1 else ""
        )
        for d in dests
    )
    live = [d for d in dests if d["weight"] > 0]
    broken = [d for d in live if d["problems"]]
    text = "{0} route: {1} {2} rule {3} matches {4} -> {5}".format(section.upper(), index.oid(vs), section, i, what, target)
    if live and len(broken) == len(live):
        problems = "; ".join(p for d in broken for p in d["problems"])
        return _finish(
            res, "no_upstream", "{0}; but {1}: the connection is closed".format(text, problems), error=["reset", "tls"] if section == "tls" else ["reset"]
        )
    return _finish(res, "{0}_route".format(section), text + " (passed on without being read)", upstream=True)


# ----------------------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------------------
def explain(index, request, where="request"):
    """Predict the fate of one request; ``index`` is a MeshIndex or a list of objects."""
    if not isinstance(index, MeshIndex):
        index = MeshIndex(index)
    req = normalize_request(request, where)
    req["path_only"], req["query"] = _split_path(req["path"])
    res = _new_result(req)
    if req["path_only"] != req["path"].split("?", 1)[0]:
        res["notes"].append("path normalized to {0}".format(req["path_only"]))
    if index.unmodelled:
        kinds = sorted(set(index.oid(o) for o in index.unmodelled))
        res["notes"].append("not modelled, may change the result: {0}".format(", ".join(kinds)))
    result = _explain_mesh(index, req, res) if req["via"] == "mesh" else _explain_gateway(index, req, res)
    result.pop("match_text", None)
    return result


def agreement(explanation, status=None, error_kind=None, headers=None):
    """Compare a prediction with what a client observed; for differential tests and probes.

    ``status`` (int) or ``error_kind`` (a probe error kind) describe the answer; ``headers``
    (lower-case names) tell whether it came from the upstream: Envoy adds
    ``x-envoy-upstream-service-time`` to routed answers; a redirect's ``location`` must be the
    predicted one. Returns True, False, or None when
    the prediction is not comparable (unsupported, unknown gateway).
    """
    expected = explanation.get("expected") or {}
    if explanation.get("outcome") in ("unsupported", "unknown_gateway"):
        return None
    if expected.get("error"):
        return error_kind in expected["error"]
    if error_kind is not None:
        return False
    if expected.get("status") is not None:
        location = (headers or {}).get("location")
        if explanation.get("redirect") and location is not None and status == expected["status"]:
            return location == explanation["redirect"]["location"]
        return status == expected["status"]
    if expected.get("upstream") and explanation.get("opaque"):
        return True  # any answer: Envoy passed the TLS connection on without reading it
    if expected.get("upstream"):
        return "x-envoy-upstream-service-time" in (headers or {})
    return None


def gateway_labels_for_host(index, host):
    """Selector of the gateway workload that serves ``host``, when it is unambiguous.

    Used when a probe names no Gateway: the Gateways with a server host matching ``host``
    (or, if none, all Gateways) must share one selector; otherwise None.
    """
    host = re.sub(r":\d+$", "", host).strip("[]").lower()
    serving = []
    for (ns, _name), gw in sorted(index.gateways.items()):
        hosts = [split_server_host(h, ns)[1] for s in (gw.get("spec") or {}).get("servers") or [] for h in s.get("hosts") or []]
        if any(host_matches(h, host) for h in hosts):
            serving.append(gw)
    httproutes = _httproutes()
    candidates = [(gw.get("spec") or {}).get("selector") or {} for gw in serving]
    candidates += httproutes.selectors_serving(index, host)
    if not candidates:
        candidates = [(gw.get("spec") or {}).get("selector") or {} for gw in index.gateways.values()]
        candidates += [s for s in (httproutes.gateway_selector(index, gw) for gw in index.k8s_gateways.values()) if s]
    selectors = set(tuple(sorted(selector.items())) for selector in candidates)
    return dict(selectors.pop()) if len(selectors) == 1 else None


def explain_all(objects, requests):
    index = objects if isinstance(objects, MeshIndex) else MeshIndex(objects)
    return [explain(index, r) for r in requests]
