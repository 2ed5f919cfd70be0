# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The compact traffic data model of meshops.istio.traffic.

Two lists describe the traffic: ingress routes (a Gateway and a VirtualService exposing a
service in the mesh) and egress routes (a ServiceEntry and, through the egress gateway, a
Gateway, a DestinationRule and a VirtualService). Their schema is ``INGRESS_ROUTE_OPTIONS``
and ``EGRESS_ROUTE_OPTIONS`` (Ansible argument-spec dicts; the role's argument spec is tested
against them). ``validate`` returns every problem of every route, each naming the route and
the field; ``render`` turns valid routes into Istio objects. The role validates everything
before it applies anything.

The gateways the routes go through are not spelled out here: the caller passes their
identity in ``settings`` (``ingress_gateway``/``egress_gateway``, derived from the gateways
role's list by ``models.gateways.identity``).

Pure Python, no Ansible import: used by the filter plugins, the tests and the benchmarks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import common, gateway_api
from ansible_collections.meshops.istio.plugins.module_utils.models.common import show

INGRESS_PROTOCOLS = ("HTTP", "HTTPS", "HTTP2")
SERVICE_ENTRY_PROTOCOLS = ("HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO")
RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN")
LOCATIONS = ("MESH_EXTERNAL", "MESH_INTERNAL")
TLS_MODES = ("SIMPLE", "MUTUAL")
URI_MATCH_KINDS = ("prefix", "exact", "regex")
STRING_MATCH_KINDS = ("exact", "prefix", "regex")
# Istio matches query parameters exactly or by regex; it has no prefix match for them.
QUERY_MATCH_KINDS = ("exact", "regex")
# Envoy's header value syntax: a literal % is written %%, %VARIABLE% or %VARIABLE(arg)% is a
# substitution (custom request/response headers).
_HEADER_VALUE_PERCENT = re.compile(r"%%|%[A-Z_][A-Z0-9_]*(\([^)%]*\))?(:[A-Za-z0-9_]+)?%")
_HEADER_VALUE_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
DIRECT_RESPONSE_BODY_LIMIT = 1024 * 1024

# -- the schema (Ansible argument-spec dicts) -------------------------------------------------
MATCH_OPTIONS = dict(
    prefix=dict(type="str"),
    exact=dict(type="str"),
    regex=dict(type="str"),
    ignore_uri_case=dict(type="bool"),
    method=dict(type="str", choices=list(vocab.HTTP_METHODS)),
    authority=dict(type="dict"),
    headers=dict(type="dict"),
    without_headers=dict(type="dict"),
    query_params=dict(type="dict"),
    port=dict(type="int"),
)
# Header manipulation, of the request (before it is forwarded) or of the response.
HEADER_OPERATIONS_OPTIONS = dict(
    set=dict(type="dict"),
    add=dict(type="dict"),
    remove=dict(type="list", elements="str"),
)
HEADERS_OPTIONS = dict(
    request=dict(type="dict", options=HEADER_OPERATIONS_OPTIONS),
    response=dict(type="dict", options=HEADER_OPERATIONS_OPTIONS),
)
DESTINATION_OPTIONS = dict(
    host=dict(type="str", required=True),
    port=dict(type="int"),
    subset=dict(type="str"),
    weight=dict(type="int"),
    headers=dict(type="dict", options=HEADERS_OPTIONS),
)
RETRY_OPTIONS = dict(
    attempts=dict(type="int", required=True),
    per_try_timeout=dict(type="str"),
    retry_on=dict(type="str"),
)
REWRITE_OPTIONS = dict(uri=dict(type="str"), authority=dict(type="str"))
REDIRECT_OPTIONS = dict(
    uri=dict(type="str"),
    authority=dict(type="str"),
    scheme=dict(type="str", choices=["http", "https"]),
    port=dict(type="int"),
    code=dict(type="int", default=301),
)
DIRECT_RESPONSE_OPTIONS = dict(
    status=dict(type="int", required=True),
    body=dict(type="str"),
)
FAULT_DELAY_OPTIONS = dict(
    fixed=dict(type="str", required=True),
    percentage=dict(type="float", default=100),
)
FAULT_ABORT_OPTIONS = dict(
    status=dict(type="int", required=True),
    percentage=dict(type="float", default=100),
)
FAULT_OPTIONS = dict(
    delay=dict(type="dict", options=FAULT_DELAY_OPTIONS),
    abort=dict(type="dict", options=FAULT_ABORT_OPTIONS),
)
# a destination without a weight or header changes: the mirror gets a copy of every request
MIRROR_OPTIONS = dict((key, DESTINATION_OPTIONS[key]) for key in ("host", "port", "subset"))
CORS_OPTIONS = dict(
    allow_origins=dict(type="list", elements="dict", required=True),
    allow_methods=dict(type="list", elements="str"),
    allow_headers=dict(type="list", elements="str"),
    expose_headers=dict(type="list", elements="str"),
    max_age=dict(type="str"),
    allow_credentials=dict(type="bool"),
)
RULE_OPTIONS = dict(
    name=dict(type="str"),
    match=dict(type="list", elements="dict", options=MATCH_OPTIONS),
    route=dict(type="list", elements="dict", options=DESTINATION_OPTIONS),
    redirect=dict(type="dict", options=REDIRECT_OPTIONS),
    direct_response=dict(type="dict", options=DIRECT_RESPONSE_OPTIONS),
    timeout=dict(type="str"),
    retries=dict(type="dict", options=RETRY_OPTIONS),
    rewrite=dict(type="dict", options=REWRITE_OPTIONS),
    fault=dict(type="dict", options=FAULT_OPTIONS),
    headers=dict(type="dict", options=HEADERS_OPTIONS),
    mirror=dict(type="dict", options=MIRROR_OPTIONS),
    mirror_percentage=dict(type="float"),
    cors_policy=dict(type="dict", options=CORS_OPTIONS),
)
# What a rule does with a request it matches: exactly one of them.
RULE_ACTIONS = ("route", "redirect", "direct_response")
TLS_OPTIONS = dict(
    mode=dict(type="str", choices=list(TLS_MODES), default="SIMPLE"),
    credential_name=dict(type="str", required=True),
)
GATEWAY_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    selector=dict(type="dict"),
    port=dict(type="int"),
    port_name=dict(type="str"),
    protocol=dict(type="str", choices=list(INGRESS_PROTOCOLS), default="HTTP"),
    tls=dict(type="dict", options=TLS_OPTIONS),
    https_redirect=dict(type="bool", default=False),
)
INGRESS_ROUTE_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    hosts=dict(type="list", elements="str", required=True),
    gateway=dict(type="dict", required=True, options=GATEWAY_OPTIONS),
    http=dict(type="list", elements="dict", required=True, options=RULE_OPTIONS),
)
EGRESS_PORT_OPTIONS = dict(
    number=dict(type="int", required=True),
    name=dict(type="str", required=True),
    protocol=dict(type="str", required=True, choices=list(SERVICE_ENTRY_PROTOCOLS)),
)
# TLS the egress gateway originates towards the external host (Istio's "egress gateway with TLS
# origination" task): a DestinationRule for the host's TLS port, seen by the gateway's pods only.
EGRESS_TLS_ORIGINATION_OPTIONS = dict(
    port=dict(type="int", required=True),
    mode=dict(type="str", choices=list(TLS_MODES), default="SIMPLE"),
    credential_name=dict(type="str"),
    sni=dict(type="str"),
)
EGRESS_GATEWAY_OPTIONS = dict(
    enabled=dict(type="bool", default=True),
    name=dict(type="str"),
    selector=dict(type="dict"),
    service=dict(type="str"),
    port=dict(type="int"),
    route_port=dict(type="int"),
    passthrough_port=dict(type="int"),
    originate_tls=dict(type="dict", options=EGRESS_TLS_ORIGINATION_OPTIONS),
)
# TCP routes of an egress route: the connections to one of its TCP ports, from the sidecars,
# split over weighted destinations (a TCP destination has no header operations).
TCP_DESTINATION_OPTIONS = dict((key, DESTINATION_OPTIONS[key]) for key in ("host", "port", "subset", "weight"))
TCP_RULE_OPTIONS = dict(
    port=dict(type="int", required=True),
    route=dict(type="list", elements="dict", required=True, options=TCP_DESTINATION_OPTIONS),
)
EGRESS_ROUTE_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    host=dict(type="str", required=True),
    ports=dict(type="list", elements="dict", required=True, options=EGRESS_PORT_OPTIONS),
    resolution=dict(type="str", choices=list(RESOLUTIONS), default="DNS"),
    location=dict(type="str", choices=list(LOCATIONS)),
    egress_gateway=dict(type="raw"),
    tcp=dict(type="list", elements="dict", options=TCP_RULE_OPTIONS),
)
# TLS credentials the role keeps as Secrets in a gateway's namespace, for the HTTPS servers of
# ingress routes (gateway.tls.credential_name) and for TLS origination (originate_tls).
CREDENTIAL_OPTIONS = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    cert=dict(type="str", no_log=False),
    key=dict(type="str", no_log=True),
    ca_cert=dict(type="str", no_log=False),
)
# The gateways the routes use, as the role passes them (see models.gateways.identity).
GATEWAY_IDENTITY_OPTIONS = dict(
    name=dict(type="str"),
    namespace=dict(type="str"),
    selector=dict(type="dict"),
    service=dict(type="str"),
    port=dict(type="int"),
)
# The APIs the routes are rendered into: Istio's (Gateway, VirtualService, ...) or the Kubernetes
# Gateway API (Gateway of class istio, HTTPRoute; models.gateway_api).
TRAFFIC_APIS = ("istio", "gateway_api")
SETTINGS_OPTIONS = dict(
    namespace=dict(type="str", default="default"),
    instance=dict(type="str", default="default"),
    api=dict(type="str", choices=list(TRAFFIC_APIS), default="istio"),
    ingress_gateway=dict(type="dict", options=GATEWAY_IDENTITY_OPTIONS),
    egress_gateway=dict(type="dict", options=GATEWAY_IDENTITY_OPTIONS),
)
# Lists whose absence the model reports itself ("needs at least one ...").
_LISTS_CHECKED_BY_THE_MODEL = ("hosts", "http", "route", "ports")


class TrafficModelError(ValueError):
    """Raised by render() when the routes are not valid; carries every error."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(TrafficModelError, self).__init__("\n".join(self.errors))


def merge_settings(settings=None):
    """Settings with defaults filled; the gateway identities are merged key by key."""
    merged = {
        "namespace": SETTINGS_OPTIONS["namespace"]["default"],
        "instance": SETTINGS_OPTIONS["instance"]["default"],
        "api": SETTINGS_OPTIONS["api"]["default"],
        "ingress_gateway": {},
        "egress_gateway": {"port": 80},
    }
    for key, value in (settings or {}).items():
        if value is None:
            continue
        if key in ("ingress_gateway", "egress_gateway") and isinstance(value, dict):
            merged[key].update(dict((k, v) for k, v in value.items() if v is not None))
        else:
            merged[key] = value
    return merged


def _check_structure(problems, where, route, options):
    """Keys, types and choices; the lists the model explains itself are not 'required' here."""
    relaxed = _relax_required(options)
    return common.check_options(problems, where, None, route, relaxed)


def _relax_required(options):
    out = {}
    for key, given in options.items():
        option = dict(given)
        if key in _LISTS_CHECKED_BY_THE_MODEL:
            option.pop("required", None)
        if option.get("options"):
            option["options"] = _relax_required(option["options"])
        out[key] = option
    return out


# -- ingress --------------------------------------------------------------------------------
def _validate_match(problems, where, field, match):
    if not isinstance(match, dict):
        return
    uri_kinds = [k for k in URI_MATCH_KINDS if match.get(k) is not None]
    if len(uri_kinds) > 1:
        problems.add(where, field, "use only one of prefix, exact or regex (found %s)" % ", ".join(uri_kinds))
    for kind in uri_kinds:
        value = match[kind]
        if not isinstance(value, str):
            continue
        if not value:
            problems.add(where, "%s.%s" % (field, kind), "must be a non-empty string")
        elif kind in ("prefix", "exact") and not value.startswith("/"):
            problems.add(where, "%s.%s" % (field, kind), "%s must start with '/'" % show(value))
        elif kind == "regex":
            common.check_regex(problems, where, "%s.regex" % field, value)
    port = match.get("port")
    if common.is_int(port):
        common.check_port(problems, where, "%s.port" % field, port)
    if match.get("ignore_uri_case") and not uri_kinds:
        problems.add(where, "%s.ignore_uri_case" % field, "applies to a URI match: give prefix, exact or regex too")
    if match.get("authority") is not None:
        _validate_string_match(problems, where, "%s.authority" % field, match["authority"])
    for key in ("headers", "without_headers"):
        _validate_named_matches(problems, where, "%s.%s" % (field, key), match.get(key), header_names=True)
    _validate_named_matches(problems, where, "%s.query_params" % field, match.get("query_params"), kinds=QUERY_MATCH_KINDS)


def _validate_string_match(problems, where, field, cond, kinds=STRING_MATCH_KINDS):
    """``{exact|prefix|regex: value}``: one kind, a string value, a regex RE2 accepts."""
    shapes = " or ".join("{%s: v}" % kind for kind in kinds)
    if not isinstance(cond, dict) or len(cond) != 1 or next(iter(cond)) not in kinds:
        problems.add(where, field, "must be exactly one of %s, got %s" % (shapes, show(cond)))
    elif not isinstance(next(iter(cond.values())), str):
        problems.add(where, field, "the value to match must be a string, got %s" % show(next(iter(cond.values()))))
    elif "regex" in cond:
        common.check_regex(problems, where, "%s.regex" % field, cond["regex"])


def _validate_named_matches(problems, where, field, conditions, header_names=False, kinds=STRING_MATCH_KINDS):
    """``{name: {exact|prefix|regex: value}}`` (headers, query parameters)."""
    if conditions is None:
        return
    shapes = "|".join(kinds)
    if not isinstance(conditions, dict) or not conditions:
        problems.add(where, field, "must map names to {%s: value}, got %s" % (shapes, show(conditions)))
        return
    for name, cond in conditions.items():
        sub = "%s.%s" % (field, name)
        if header_names and (not isinstance(name, str) or not vocab.HEADER_NAME.match(name)):
            problems.add(where, sub, "header names must be lower case HTTP tokens")
        elif not isinstance(name, str) or not name:
            problems.add(where, sub, "names must be non-empty strings")
        _validate_string_match(problems, where, sub, cond, kinds)


def _validate_destination(problems, where, field, dest):
    if not isinstance(dest, dict):
        return
    if dest.get("host") is not None:
        common.check_host(problems, where, "%s.host" % field, dest.get("host"))
    if common.is_int(dest.get("port")):
        common.check_port(problems, where, "%s.port" % field, dest["port"])
    if isinstance(dest.get("subset"), str):
        common.check_name(problems, where, "%s.subset" % field, dest["subset"], label=True)
    weight = dest.get("weight")
    if common.is_int(weight) and not 0 <= weight <= 100:
        problems.add(where, "%s.weight" % field, "%s must be an integer from 0 to 100" % show(weight))
    _validate_headers(problems, where, "%s.headers" % field, dest.get("headers"))


def _validate_header_value(problems, where, field, value):
    if not isinstance(value, str):
        problems.add(where, field, "must be a string, got %s %s (quote numbers and booleans)" % (common.kind_of(value), show(value)))
    elif _HEADER_VALUE_CONTROL.search(value):
        problems.add(where, field, "%s contains a control character" % show(value))
    elif "%" in _HEADER_VALUE_PERCENT.sub("", value):
        problems.add(where, field, "%s: a literal %% is written %%%%, a variable %%NAME%% (Envoy's header value syntax)" % show(value))


def _header_operations(ops):
    """(operation, header name, value or None, field suffix) of one side's set/add/remove."""
    for op in ("set", "add"):
        values = ops.get(op)
        for name, value in values.items() if isinstance(values, dict) else ():
            yield op, name, value, "%s.%s" % (op, name)
    removed = ops.get("remove")
    for name in removed if isinstance(removed, list) else ():
        yield "remove", name, None, "remove"


def _validate_headers(problems, where, field, headers):
    """Header manipulation of a rule or a destination: request and response set/add/remove."""
    if not isinstance(headers, dict):
        return
    sides = dict((side, headers[side]) for side in HEADERS_OPTIONS if isinstance(headers.get(side), dict))
    if not any(ops.get(op) for ops in sides.values() for op in HEADER_OPERATIONS_OPTIONS):
        problems.add(where, field, "must set, add or remove at least one request or response header")
    for side, ops in sides.items():
        for op, name, value, suffix in _header_operations(ops):
            sub = "%s.%s.%s" % (field, side, suffix)
            if not isinstance(name, str) or not vocab.HEADER_NAME.match(name):
                problems.add(where, sub, "%s: header names must be lower case HTTP tokens (no ':' pseudo-headers)" % show(name))
            elif name == "host":
                hint = "use rewrite.authority" if side == "request" and op != "remove" else "Istio refuses it"
                problems.add(where, sub, "the Host header cannot be changed here: %s" % hint)
            elif op != "remove":
                _validate_header_value(problems, where, sub, value)


def _check_percentage(problems, where, field, value):
    """Istio's Percent: 0, or from 0.0001 to 100."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if value < 0 or value > 100 or 0 < value < 0.0001:
        problems.add(where, field, "%s must be 0 or from 0.0001 to 100" % show(value))


def _check_status(problems, where, field, value, low=200, high=599, what="an HTTP status"):
    if common.is_int(value) and not low <= value <= high:
        problems.add(where, field, "%s must be %s from %d to %d" % (show(value), what, low, high))


def _validate_redirect(problems, where, field, redirect):
    if not isinstance(redirect, dict):
        return
    if not any(redirect.get(k) is not None for k in ("uri", "authority", "scheme", "port")):
        problems.add(where, field, "must set uri, authority, scheme or port (what the Location header changes)")
    uri = redirect.get("uri")
    if isinstance(uri, str) and not uri.startswith("/"):
        problems.add(where, "%s.uri" % field, "%s must start with '/'" % show(uri))
    if isinstance(redirect.get("authority"), str):
        common.check_host(problems, where, "%s.authority" % field, redirect["authority"], allow_wildcard=False)
    if common.is_int(redirect.get("port")):
        common.check_port(problems, where, "%s.port" % field, redirect["port"])
    _check_status(problems, where, "%s.code" % field, redirect.get("code"), 300, 399, "a redirect status")


def _validate_direct_response(problems, where, field, response):
    if not isinstance(response, dict):
        return
    _check_status(problems, where, "%s.status" % field, response.get("status"))
    body = response.get("body")
    if isinstance(body, str) and len(body.encode("utf-8")) > DIRECT_RESPONSE_BODY_LIMIT:
        problems.add(where, "%s.body" % field, "is %d bytes: Istio refuses direct responses of 1 MiB or more" % len(body.encode("utf-8")))


def _validate_fault(problems, where, field, fault):
    if not isinstance(fault, dict):
        return
    if fault.get("delay") is None and fault.get("abort") is None:
        problems.add(where, field, "must set delay and/or abort")
    delay = fault.get("delay")
    if isinstance(delay, dict):
        if isinstance(delay.get("fixed"), str):
            common.check_duration(problems, where, "%s.delay.fixed" % field, delay["fixed"])
        _check_percentage(problems, where, "%s.delay.percentage" % field, delay.get("percentage"))
    abort = fault.get("abort")
    if isinstance(abort, dict):
        _check_status(problems, where, "%s.abort.status" % field, abort.get("status"))
        _check_percentage(problems, where, "%s.abort.percentage" % field, abort.get("percentage"))


def _validate_cors(problems, where, field, cors):
    if not isinstance(cors, dict):
        return
    origins = cors.get("allow_origins")
    if isinstance(origins, list):
        if not origins:
            problems.add(where, "%s.allow_origins" % field, "needs at least one origin, for example [{exact: 'https://app.example.com'}]")
        for index, origin in enumerate(origins):
            sub = "%s.allow_origins[%d]" % (field, index)
            _validate_string_match(problems, where, sub, origin)
            if isinstance(origin, dict) and len(origin) == 1 and next(iter(origin.values())) == "":
                problems.add(where, sub, "the origin to match must not be empty")
    for index, method in enumerate(cors.get("allow_methods") or []):
        if isinstance(method, str) and method not in vocab.HTTP_METHODS:
            problems.add(where, "%s.allow_methods[%d]" % (field, index), "%s is not one of %s" % (show(method), ", ".join(vocab.HTTP_METHODS)))
    for key in ("allow_headers", "expose_headers"):
        for index, name in enumerate(cors.get(key) or []):
            if isinstance(name, str) and not vocab.HEADER_NAME.match(name.lower()):
                problems.add(where, "%s.%s[%d]" % (field, key, index), "%s is not an HTTP header name" % show(name))
    max_age = cors.get("max_age")
    if isinstance(max_age, str):
        before = len(problems)
        common.check_duration(problems, where, "%s.max_age" % field, max_age)
        if len(problems) == before and re.search(r"(ms|us|µs|ns)$|\.", max_age):
            problems.add(where, "%s.max_age" % field, "%s: Istio takes whole seconds only (for example 24h or 600s)" % show(max_age))


def _validate_rule(problems, where, field, rule):
    if not isinstance(rule, dict):
        return
    matches = rule.get("match")
    if isinstance(matches, list):
        for mindex, match in enumerate(matches):
            _validate_match(problems, where, "%s.match[%d]" % (field, mindex), match)
    actions = [key for key in RULE_ACTIONS if rule.get(key) not in (None, [])]
    route = rule.get("route")
    if not actions:
        problems.add(
            where,
            "%s.route" % field,
            "needs at least one destination, for example [{host: httpbin, port: 8000}] (or a redirect or a direct_response instead)",
        )
    elif len(actions) > 1:
        problems.add(where, field, "give only one of route, redirect or direct_response (found %s)" % ", ".join(actions))
    elif actions != ["route"]:
        for key in ("fault", "rewrite"):
            if rule.get(key) is not None:
                problems.add(where, "%s.%s" % (field, key), "does not apply to a rule that answers with a %s: Istio refuses the combination" % actions[0])
        if rule.get("mirror") is not None:
            problems.add(where, "%s.mirror" % field, "copies requests that are routed; a rule that answers with a %s routes none" % actions[0])
    _validate_redirect(problems, where, "%s.redirect" % field, rule.get("redirect"))
    _validate_direct_response(problems, where, "%s.direct_response" % field, rule.get("direct_response"))
    _validate_fault(problems, where, "%s.fault" % field, rule.get("fault"))
    _validate_headers(problems, where, "%s.headers" % field, rule.get("headers"))
    _validate_cors(problems, where, "%s.cors_policy" % field, rule.get("cors_policy"))
    _validate_destination(problems, where, "%s.mirror" % field, rule.get("mirror"))
    if rule.get("mirror_percentage") is not None:
        if rule.get("mirror") is None:
            problems.add(where, "%s.mirror_percentage" % field, "needs a mirror")
        _check_percentage(problems, where, "%s.mirror_percentage" % field, rule["mirror_percentage"])
    if isinstance(route, list):
        for dindex, dest in enumerate(route):
            _validate_destination(problems, where, "%s.route[%d]" % (field, dindex), dest)
        weights = [d.get("weight") for d in route if isinstance(d, dict)]
        problem = vocab.weights_problem(weights)
        if problem:
            problems.add(where, "%s.route" % field, problem)
    if isinstance(rule.get("timeout"), str):
        common.check_duration(problems, where, "%s.timeout" % field, rule["timeout"])
    retries = rule.get("retries")
    if isinstance(retries, dict):
        attempts = retries.get("attempts")
        if common.is_int(attempts) and attempts < 0:
            problems.add(where, "%s.retries.attempts" % field, "%s must be a non-negative integer" % show(attempts))
        if isinstance(retries.get("per_try_timeout"), str):
            common.check_duration(problems, where, "%s.retries.per_try_timeout" % field, retries["per_try_timeout"])
        if isinstance(retries.get("retry_on"), str):
            for problem in vocab.retry_on_problems(retries["retry_on"]):
                problems.add(where, "%s.retries.retry_on" % field, problem)
    rewrite = rule.get("rewrite")
    if isinstance(rewrite, dict):
        if not rewrite:
            problems.add(where, "%s.rewrite" % field, "must set uri and/or authority")
        uri = rewrite.get("uri")
        if isinstance(uri, str) and not uri.startswith("/"):
            problems.add(where, "%s.rewrite.uri" % field, "%s must start with '/'" % show(uri))
        authority = rewrite.get("authority")
        if isinstance(authority, str):
            common.check_host(problems, where, "%s.rewrite.authority" % field, authority, allow_wildcard=False)


def _gateway_of(route, settings):
    """The ingress Gateway a route asks for, with defaults filled in."""
    gateway = route.get("gateway") if isinstance(route.get("gateway"), dict) else {}
    protocol = gateway.get("protocol") or "HTTP"
    selector = gateway.get("selector")
    if selector is None:
        selector = settings["ingress_gateway"].get("selector")
    return {
        "name": gateway.get("name"),
        "namespace": gateway.get("namespace") or route.get("namespace") or settings["namespace"],
        "selector": selector,
        "port": gateway.get("port") if gateway.get("port") is not None else (443 if protocol == "HTTPS" else 80),
        "port_name": gateway.get("port_name") or (str(protocol).lower() if isinstance(protocol, str) else None),
        "protocol": protocol,
        "tls": gateway.get("tls"),
        "https_redirect": bool(gateway.get("https_redirect")),
    }


def _validate_ingress_gateway(problems, where, route, settings, seen):
    raw = route.get("gateway")
    if raw is None:
        problems.add(where, "gateway", "is required: a mapping with at least the Gateway name, for example {name: httpbin-gateway}")
        return
    if not isinstance(raw, dict):
        return
    gateway = _gateway_of(route, settings)
    if gateway["name"] is not None:
        common.check_name(problems, where, "gateway.name", gateway["name"])
    if raw.get("namespace") is not None and isinstance(raw.get("namespace"), str):
        common.check_namespace(problems, where, "gateway.namespace", raw["namespace"])
    if gateway["selector"] is None:
        problems.add(where, "gateway.selector", "no ingress gateway is known: set gateway.selector, or install one with the gateways role")
    elif raw.get("selector") is None or isinstance(raw.get("selector"), dict):
        common.check_selector(problems, where, "gateway.selector", gateway["selector"])
    if common.is_int(gateway["port"]):
        common.check_port(problems, where, "gateway.port", gateway["port"])
    if isinstance(gateway["port_name"], str) and not vocab.DNS1123_LABEL.match(gateway["port_name"]):
        problems.add(where, "gateway.port_name", "%s is not a valid port name" % show(gateway["port_name"]))
    tls = gateway["tls"]
    if gateway["protocol"] == "HTTPS":
        if tls is None:
            problems.add(where, "gateway.tls", "is required with protocol HTTPS: {mode: SIMPLE, credential_name: <secret>}")
        elif isinstance(tls, dict) and isinstance(tls.get("credential_name"), str):
            common.check_name(problems, where, "gateway.tls.credential_name", tls["credential_name"])
    elif tls is not None:
        problems.add(where, "gateway.tls", "is only valid with protocol HTTPS (protocol is %s)" % gateway["protocol"])
    if gateway["https_redirect"] and gateway["protocol"] != "HTTP":
        problems.add(where, "gateway.https_redirect", "is only valid with protocol HTTP")
    _check_gateway_sharing(problems, where, "gateway", gateway, route.get("name"), seen)


def _selector_key(selector):
    return tuple(sorted((str(k), str(v)) for k, v in (selector or {}).items())) if isinstance(selector, dict) else None


def _check_gateway_sharing(problems, where, field, gateway, route_name, seen):
    """Routes that share a Gateway, or a port of the same gateway workload, must agree."""
    key = (gateway["namespace"], gateway["name"])
    previous = seen["gateways"].get(key)
    if previous is not None and previous["selector"] != gateway["selector"]:
        problems.add(
            where,
            "%s.selector" % field,
            "Gateway %s/%s is also used by route %s with selector %s" % (key[0], key[1], previous["route"], previous["selector"]),
        )
    if previous is not None and previous["port"] == gateway["port"] and (previous["protocol"], previous["tls"]) != (gateway["protocol"], gateway["tls"]):
        problems.add(
            where,
            field,
            "Gateway %s/%s port %s is also used by route %s with another protocol or TLS setting" % (key[0], key[1], gateway["port"], previous["route"]),
        )
    if previous is None:
        seen["gateways"][key] = dict(gateway, route=route_name)
    _check_workload_port(problems, where, "%s.protocol" % field, gateway, route_name, seen)


def _check_workload_port(problems, where, field, gateway, route_name, seen):
    """Istio keeps one server per port of a gateway workload: two Gateway objects that put the
    same port of the same pods under different protocols leave one of them dead."""
    key = (gateway["namespace"], gateway["name"])
    workload = _selector_key(gateway["selector"])
    if workload is None or not common.is_int(gateway["port"]):
        return
    port_key = (workload, gateway["port"])
    other = seen["ports"].get(port_key)
    if other is None:
        seen["ports"][port_key] = {"gateway": key, "protocol": gateway["protocol"], "route": route_name}
    elif other["gateway"] != key and other["protocol"] != gateway["protocol"]:
        problems.add(
            where,
            field,
            "port %d of the gateway pods %s is %s here but %s in Gateway %s/%s (route %s); Istio keeps only one of them and the other "
            "route never answers: use another port or the same protocol"
            % (gateway["port"], gateway["selector"], gateway["protocol"], other["protocol"], other["gateway"][0], other["gateway"][1], other["route"]),
        )


def _validate_ingress(problems, index, route, settings, seen):
    where = common.where("traffic_ingress_routes", index, route)
    if not _check_structure(problems, where, route, INGRESS_ROUTE_OPTIONS):
        return
    if isinstance(route.get("name"), str):
        common.check_name(problems, where, "name", route["name"])
    namespace = route.get("namespace") or settings["namespace"]
    if isinstance(namespace, str):
        common.check_namespace(problems, where, "namespace", namespace)
    hosts = route.get("hosts")
    if hosts is None or hosts == []:
        problems.add(where, "hosts", "needs at least one host, for example [httpbin.example.com]")
    elif isinstance(hosts, list):
        for hindex, host in enumerate(hosts):
            if isinstance(host, str):
                common.check_host(problems, where, "hosts[%d]" % hindex, host)
        if len(set(map(str, hosts))) != len(hosts):
            problems.add(where, "hosts", "lists a host twice")
    _validate_ingress_gateway(problems, where, route, settings, seen)
    rules = route.get("http")
    if rules is None or rules == []:
        problems.add(where, "http", "needs at least one rule with a route")
    elif isinstance(rules, list):
        for rindex, rule in enumerate(rules):
            _validate_rule(problems, where, "http[%d]" % rindex, rule)
    vs_key = (namespace, route.get("name"))
    if vs_key in seen["virtualservices"]:
        problems.add(where, "name", "VirtualService %s/%s is already defined by %s" % (vs_key[0], vs_key[1], seen["virtualservices"][vs_key]))
    else:
        seen["virtualservices"][vs_key] = where


# -- egress ---------------------------------------------------------------------------------
def _egress_gateway_of(route, settings):
    raw = route.get("egress_gateway")
    if raw is False:
        raw = {"enabled": False}
    raw = raw if isinstance(raw, dict) else {}
    merged = dict(settings["egress_gateway"])
    merged.update(dict((k, v) for k, v in raw.items() if v is not None))
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


def _validate_egress_ports(problems, where, ports):
    numbers, names = set(), set()
    if ports is None or ports == []:
        problems.add(where, "ports", "needs at least one port, for example {number: 80, name: http-port, protocol: HTTP}")
        return numbers
    if not isinstance(ports, list):
        return numbers
    for pindex, port in enumerate(ports):
        field = "ports[%d]" % pindex
        if not isinstance(port, dict):
            continue
        number = port.get("number")
        if common.is_int(number) and common.check_port(problems, where, "%s.number" % field, number):
            if number in numbers:
                problems.add(where, "%s.number" % field, "port %d is listed twice" % number)
            numbers.add(number)
        name = port.get("name")
        if isinstance(name, str):
            if not vocab.DNS1123_LABEL.match(name):
                problems.add(where, "%s.name" % field, "%s is not a valid port name" % show(name))
            elif name in names:
                problems.add(where, "%s.name" % field, "port name %s is used twice" % show(name))
            else:
                names.add(name)
    return numbers


def _validate_egress_gateway(problems, where, route, settings, seen, numbers, namespace):
    raw = route.get("egress_gateway")
    if raw is not None and raw is not False and not isinstance(raw, dict):
        problems.add(where, "egress_gateway", "must be a mapping (or false to reach the host directly), got %s %s" % (common.kind_of(raw), show(raw)))
        return None
    if isinstance(raw, dict):
        common.check_options(problems, where, "egress_gateway", raw, EGRESS_GATEWAY_OPTIONS)
    gateway = _egress_gateway_of(route, settings)
    if not gateway["enabled"]:
        for key in ("passthrough_port", "originate_tls"):
            if isinstance(raw, dict) and raw.get(key) is not None:
                problems.add(where, "egress_gateway.%s" % key, "needs the egress gateway, which this route disables (enabled: false)")
        return gateway
    if gateway.get("name") is None or gateway.get("service") is None or gateway.get("selector") is None:
        problems.add(
            where,
            "egress_gateway",
            "no egress gateway is known: install one with the gateways role (a gateway with direction: egress), "
            "set egress_gateway {name, selector, service}, or egress_gateway: false to reach the host directly",
        )
        return None
    if isinstance(gateway.get("name"), str):
        common.check_name(problems, where, "egress_gateway.name", gateway["name"])
    if isinstance(gateway.get("selector"), dict):
        common.check_selector(problems, where, "egress_gateway.selector", gateway["selector"])
    service = gateway.get("service")
    service_ok = isinstance(service, str) and common.check_host(problems, where, "egress_gateway.service", service, allow_wildcard=False)
    if service_ok and vocab.split_service_fqdn(service) is None:
        problems.add(
            where,
            "egress_gateway.service",
            "%s is not the FQDN of a Kubernetes Service (<name>.<namespace>.svc.%s, for example %s)"
            % (show(service), vocab.CLUSTER_DOMAIN, vocab.service_fqdn("istio-egressgateway", "istio-system")),
        )
    if common.is_int(gateway.get("port")):
        common.check_port(problems, where, "egress_gateway.port", gateway["port"])
    route_port = _egress_route_port(route, gateway)
    if route_port is None:
        problems.add(
            where,
            "ports",
            "routing through the egress gateway needs an HTTP port (or set egress_gateway.route_port); "
            "a route of TCP ports sets egress_gateway: false and routes them with tcp rules",
        )
    elif numbers and route_port not in numbers:
        problems.add(
            where, "egress_gateway.route_port", "%s is not one of the route's ports (%s)" % (show(route_port), ", ".join(str(n) for n in sorted(numbers)))
        )
    identity = {
        "name": gateway.get("name"),
        "namespace": namespace,
        "selector": gateway.get("selector"),
        "port": gateway.get("port"),
        "protocol": "HTTP",
        "tls": None,
    }
    key = (namespace, gateway.get("name"))
    if key in seen["gateways"] and seen["gateways"][key].get("ingress"):
        problems.add(where, "egress_gateway.name", "Gateway %s/%s is also an ingress route's gateway; use another name" % key)
    else:
        previous = seen["gateways"].get(key)
        if previous is not None and previous["selector"] != gateway.get("selector"):
            problems.add(
                where,
                "egress_gateway.selector",
                "Gateway %s/%s is also used by egress route %s with selector %s" % (key[0], key[1], previous["route"], previous["selector"]),
            )
        elif previous is None:
            _check_gateway_sharing(problems, where, "egress_gateway", identity, route.get("name"), seen)
    _validate_egress_tls(problems, where, route, gateway, identity, seen)
    return gateway


def _route_port_protocols(route):
    ports = route.get("ports") if isinstance(route.get("ports"), list) else []
    return dict((p.get("number"), p.get("protocol")) for p in ports if isinstance(p, dict) and common.is_int(p.get("number")))


def _check_route_port(problems, where, field, number, protocols, allowed, hint):
    """``number`` must be one of the route's ports (``protocols``: number -> protocol), of a
    protocol in ``allowed``; ``hint`` ends the message of a port of another protocol."""
    if number not in protocols:
        problems.add(where, field, "%s is not one of the route's ports (%s)" % (show(number), ", ".join(str(n) for n in sorted(protocols)) or "none"))
        return False
    if protocols[number] not in allowed:
        problems.add(where, field, "port %d is %s in the route's ports; %s" % (number, protocols[number], hint))
        return False
    return True


def _check_tls_port(problems, where, field, number, protocols, what):
    return _check_route_port(problems, where, field, number, protocols, vocab.TLS_PORT_PROTOCOLS, "%s needs a TLS or HTTPS port" % what)


def _validate_egress_tls(problems, where, route, gateway, identity, seen):
    """passthrough_port (the client's TLS through the gateway, routed by SNI) and originate_tls
    (the mesh speaks HTTP, the gateway speaks TLS to the host)."""
    protocols = _route_port_protocols(route)
    host = route.get("host") if isinstance(route.get("host"), str) else ""
    passthrough = gateway.get("passthrough_port")
    if common.is_int(passthrough) and common.check_port(problems, where, "egress_gateway.passthrough_port", passthrough):
        field = "egress_gateway.passthrough_port"
        if _check_tls_port(problems, where, field, passthrough, protocols, "TLS passthrough (routed by SNI)"):
            if passthrough == gateway.get("port"):
                problems.add(
                    where, field, "port %d is also the gateway's HTTP server port (egress_gateway.port); use the TLS port of the gateway Service" % passthrough
                )
            tls_identity = dict(identity, port=passthrough, protocol="TLS", tls={"mode": "PASSTHROUGH"})
            _check_workload_port(problems, where, field, tls_identity, route.get("name"), seen)
    origin = gateway.get("originate_tls")
    if not isinstance(origin, dict):
        return
    field = "egress_gateway.originate_tls"
    port = origin.get("port")
    port_ok = common.is_int(port) and common.check_port(problems, where, "%s.port" % field, port)
    if port_ok and _check_tls_port(problems, where, "%s.port" % field, port, protocols, "TLS origination") and port == passthrough:
        problems.add(
            where,
            "%s.port" % field,
            "port %d also passes the client's TLS through (egress_gateway.passthrough_port): the gateway's connections to %s:%d would "
            "be encrypted twice; originate TLS on another port of the host or drop one of the two" % (port, host, port),
        )
    credential = origin.get("credential_name")
    if credential is not None:
        common.check_name(problems, where, "%s.credential_name" % field, credential)
    elif (origin.get("mode") or "SIMPLE") == "MUTUAL":
        problems.add(
            where,
            "%s.credential_name" % field,
            "is required with mode MUTUAL: a Secret in the egress gateway's namespace with tls.crt, tls.key and ca.crt (the client certificate)",
        )
    sni = origin.get("sni")
    if isinstance(sni, str):
        common.check_host(problems, where, "%s.sni" % field, sni, allow_wildcard=False)
    elif host.startswith("*"):
        problems.add(where, "%s.sni" % field, "is required when the host is a wildcard (%s): the name the gateway asks the external server for" % host)


def _validate_tcp(problems, where, route):
    """``tcp`` rules: a TCP port of the route each (once), weighted destinations with a port."""
    rules = route.get("tcp")
    if not isinstance(rules, list):
        return
    protocols = _route_port_protocols(route)
    ports = set()
    for rindex, rule in enumerate(rules):
        field = "tcp[%d]" % rindex
        if not isinstance(rule, dict):
            continue
        port = rule.get("port")
        if common.is_int(port):
            _check_route_port(
                problems,
                where,
                "%s.port" % field,
                port,
                protocols,
                vocab.TCP_PORT_PROTOCOLS,
                "tcp rules route %s ports (HTTP goes through the egress gateway, TLS by passthrough_port)" % " or ".join(vocab.TCP_PORT_PROTOCOLS),
            )
            if port in ports:
                problems.add(where, "%s.port" % field, "port %d already has a tcp rule; put its destinations in one rule" % port)
            ports.add(port)
        destinations = rule.get("route")
        if destinations == []:
            problems.add(where, "%s.route" % field, "needs at least one destination, for example {host: %s, port: %s}" % (route.get("host"), port))
        if not isinstance(destinations, list):
            continue
        for dindex, dest in enumerate(destinations):
            # header operations are an unknown option here, reported once by the structure check
            _validate_destination(problems, where, "%s.route[%d]" % (field, dindex), dict(dest, headers=None) if isinstance(dest, dict) else dest)
            if isinstance(dest, dict) and isinstance(dest.get("host"), str) and dest["host"].startswith("*"):
                problems.add(where, "%s.route[%d].host" % (field, dindex), "a TCP destination must be one host, not a wildcard")
            if isinstance(dest, dict) and dest.get("port") is None:
                problems.add(where, "%s.route[%d].port" % (field, dindex), "is required: a TCP destination names its port")
        problem = vocab.weights_problem([d.get("weight") for d in destinations if isinstance(d, dict)])
        if problem:
            problems.add(where, "%s.route" % field, problem)


def _validate_egress(problems, index, route, settings, seen):
    where = common.where("traffic_egress_routes", index, route)
    if not _check_structure(problems, where, route, EGRESS_ROUTE_OPTIONS):
        return
    if isinstance(route.get("name"), str):
        common.check_name(problems, where, "name", route["name"], label=True)
    namespace = route.get("namespace") or settings["namespace"]
    if isinstance(namespace, str):
        common.check_namespace(problems, where, "namespace", namespace)
    resolution = route.get("resolution") or "DNS"
    host = route.get("host")
    if isinstance(host, str):
        common.check_host(
            problems,
            where,
            "host",
            host,
            allow_wildcard=resolution == "NONE",
            wildcard_hint=" with resolution %s (a wildcard host needs resolution: NONE)" % resolution,
        )
    if resolution == "STATIC":
        problems.add(
            where,
            "resolution",
            "STATIC needs the endpoints' addresses, which this data model does not carry, so the ServiceEntry could never resolve; "
            "use DNS (or NONE for a wildcard host)",
        )
    numbers = _validate_egress_ports(problems, where, route.get("ports"))
    gateway = _validate_egress_gateway(problems, where, route, settings, seen, numbers, namespace)
    _validate_tcp(problems, where, route)
    se_key = (namespace, route.get("name"))
    if se_key in seen["serviceentries"]:
        problems.add(where, "name", "ServiceEntry %s/%s is already defined by %s" % (se_key[0], se_key[1], seen["serviceentries"][se_key]))
    else:
        seen["serviceentries"][se_key] = where
    through_gateway = gateway is not None and gateway["enabled"]
    if route.get("tcp") and not through_gateway:
        vs_key = (namespace, route.get("name"))
        if vs_key in seen["virtualservices"]:
            problems.add(where, "name", "VirtualService %s/%s is already defined by %s" % (vs_key[0], vs_key[1], seen["virtualservices"][vs_key]))
        else:
            seen["virtualservices"][vs_key] = where
    if through_gateway:
        vs_key = (namespace, "direct-%s-through-egress-gateway" % route.get("name"))
        if vs_key in seen["virtualservices"]:
            problems.add(where, "name", "VirtualService %s/%s is already defined by %s" % (vs_key[0], vs_key[1], seen["virtualservices"][vs_key]))
        else:
            seen["virtualservices"][vs_key] = where


def validate(ingress_routes, egress_routes, settings=None):
    """Return the list of problems (empty when the routes are valid). Never raises on bad data."""
    settings = merge_settings(settings)
    problems = common.Problems()
    if not isinstance(settings.get("namespace"), str) or not vocab.DNS1123_LABEL.match(settings.get("namespace") or ""):
        problems.add("traffic_namespace", None, "%s is not a valid namespace name" % show(settings.get("namespace")))
    instance = settings.get("instance")
    if not isinstance(instance, str) or not instance or len(instance) > 63 or not vocab.LABEL_VALUE.match(instance):
        problems.add("traffic_instance", None, "%s must be a valid label value (letters, digits, '-', '_', '.')" % show(instance))
    seen = {"gateways": {}, "ports": {}, "virtualservices": {}, "serviceentries": {}}
    for name, routes in (("traffic_ingress_routes", ingress_routes), ("traffic_egress_routes", egress_routes)):
        if routes is not None and not isinstance(routes, list):
            problems.add(name, None, "must be a list of routes, got %s %s" % (common.kind_of(routes), show(routes)))
    for index, route in enumerate(ingress_routes if isinstance(ingress_routes, list) else []):
        _validate_ingress(problems, index, route, settings, seen)
    for key in seen["gateways"]:
        seen["gateways"][key]["ingress"] = True
    for index, route in enumerate(egress_routes if isinstance(egress_routes, list) else []):
        _validate_egress(problems, index, route, settings, seen)
    if settings.get("api") not in TRAFFIC_APIS:
        problems.add("traffic_api", None, "%s is not one of %s" % (show(settings.get("api")), ", ".join(TRAFFIC_APIS)))
    elif settings["api"] == "gateway_api" and not problems:
        # what the Gateway API cannot express, once the routes are valid for either API
        gateway_api.problems(problems, ingress_routes, egress_routes, settings, lambda route: _egress_gateway_of(route, settings), common.where)
    return problems.messages


# -- TLS credentials -------------------------------------------------------------------------
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def _pem_key(text):
    return isinstance(text, str) and re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text) is not None


def validate_credentials(credentials, default_namespace):
    """Problems of ``traffic_tls_credentials``; the messages name fields, never their values."""
    problems = common.Problems()
    if credentials is None:
        return []
    if not isinstance(credentials, list):
        problems.add("traffic_tls_credentials", None, "must be a list of credentials, got %s" % common.kind_of(credentials))
        return problems.messages
    seen = {}
    for index, credential in enumerate(credentials):
        where = common.where("traffic_tls_credentials", index, credential)
        if isinstance(credential, dict):
            texts = dict(credential)
            for field in ("cert", "key", "ca_cert"):  # named, never shown
                if texts.get(field) is not None and not isinstance(texts[field], str):
                    problems.add(where, field, "must be a string (PEM text), got %s" % common.kind_of(texts[field]))
                    texts[field] = None
            credential = texts  # noqa: PLW2901 - the copy without the values that must not be shown
        if not common.check_options(problems, where, None, credential, CREDENTIAL_OPTIONS):
            continue
        if isinstance(credential.get("name"), str):
            common.check_name(problems, where, "name", credential["name"])
        namespace = credential.get("namespace") or default_namespace
        if isinstance(credential.get("namespace"), str):
            common.check_namespace(problems, where, "namespace", credential["namespace"])
        key = (namespace, credential.get("name"))
        if key in seen:
            problems.add(where, "name", "Secret %s/%s is already defined by %s" % (key[0], key[1], seen[key]))
        seen.setdefault(key, where)
        cert, private, ca = credential.get("cert"), credential.get("key"), credential.get("ca_cert")
        if cert is None and ca is None:
            problems.add(where, "cert", "give cert and key (a server or client certificate), ca_cert (a CA to trust), or both")
        for field, value in (("cert", cert), ("ca_cert", ca)):
            if isinstance(value, str) and _PEM_CERTIFICATE not in value:
                problems.add(where, field, "is not a PEM certificate (no %s line)" % _PEM_CERTIFICATE)
        if cert is not None and private is None:
            problems.add(where, "key", "is required with cert (the certificate's private key, PEM)")
        elif private is not None and cert is None:
            problems.add(where, "cert", "is required with key")
        elif private is not None and not _pem_key(private):
            problems.add(where, "key", "is not a PEM private key (no -----BEGIN ... PRIVATE KEY----- line)")
    return problems.messages


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def render_credentials(credentials, settings, default_namespace):
    """Secrets of valid credentials: ``kubernetes.io/tls`` with a certificate (and ``ca.crt`` when
    given), ``Opaque`` with ``ca.crt`` alone; labelled as owned by the role's instance."""
    settings = merge_settings(settings)
    secrets = []
    for credential in credentials or []:
        data = {}
        if credential.get("cert"):
            data["tls.crt"] = _b64(credential["cert"])
            data["tls.key"] = _b64(credential["key"])
        if credential.get("ca_cert"):
            data["ca.crt"] = _b64(credential["ca_cert"])
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": credential["name"],
                    "namespace": credential.get("namespace") or default_namespace,
                    "labels": vocab.owned_labels(settings["instance"]),
                },
                "type": "kubernetes.io/tls" if credential.get("cert") else "Opaque",
                "data": data,
            }
        )
    return secrets


# -- rendering ------------------------------------------------------------------------------
def _metadata(name, namespace, settings, routes):
    return {"name": name, "namespace": namespace, "labels": vocab.owned_labels(settings["instance"], routes)}


def _render_match(match):
    rendered = {}
    for kind in URI_MATCH_KINDS:
        if match.get(kind) is not None:
            rendered["uri"] = {kind: match[kind]}
    if match.get("ignore_uri_case"):
        rendered["ignoreUriCase"] = True
    if match.get("method") is not None:
        rendered["method"] = {"exact": match["method"]}
    if match.get("authority") is not None:
        rendered["authority"] = dict(match["authority"])
    for key, istio_key in (("headers", "headers"), ("without_headers", "withoutHeaders"), ("query_params", "queryParams")):
        if match.get(key):
            rendered[istio_key] = dict((name, dict(cond)) for name, cond in sorted(match[key].items()))
    if match.get("port") is not None:
        rendered["port"] = match["port"]
    return rendered


def _render_headers(headers):
    rendered = {}
    for side in HEADERS_OPTIONS:
        ops = (headers or {}).get(side) or {}
        out = dict((op, dict(ops[op]) if op != "remove" else list(ops[op])) for op in HEADER_OPERATIONS_OPTIONS if ops.get(op))
        if out:
            rendered[side] = out
    return rendered


def _percent(value):
    return {"value": value}


def _render_destination(dest):
    destination = {"host": dest["host"]}
    if dest.get("subset") is not None:
        destination["subset"] = dest["subset"]
    if dest.get("port") is not None:
        destination["port"] = {"number": dest["port"]}
    rendered = {"destination": destination}
    if dest.get("weight") is not None:
        rendered["weight"] = dest["weight"]
    if dest.get("headers"):
        rendered["headers"] = _render_headers(dest["headers"])
    return rendered


def _render_fault(fault):
    rendered = {}
    if fault.get("delay"):
        delay = fault["delay"]
        rendered["delay"] = {"fixedDelay": delay["fixed"], "percentage": _percent(delay.get("percentage", 100))}
    if fault.get("abort"):
        abort = fault["abort"]
        rendered["abort"] = {"httpStatus": abort["status"], "percentage": _percent(abort.get("percentage", 100))}
    return rendered


def _render_redirect(redirect):
    rendered = dict((key, redirect[key]) for key in ("uri", "authority", "scheme") if redirect.get(key) is not None)
    if redirect.get("port") is not None:
        rendered["port"] = redirect["port"]
    rendered["redirectCode"] = redirect.get("code") or REDIRECT_OPTIONS["code"]["default"]
    return rendered


def _render_cors(cors):
    rendered = {"allowOrigins": [dict(origin) for origin in cors["allow_origins"]]}
    for key, istio_key in (("allow_methods", "allowMethods"), ("allow_headers", "allowHeaders"), ("expose_headers", "exposeHeaders")):
        if cors.get(key):
            rendered[istio_key] = list(cors[key])
    if cors.get("max_age"):
        rendered["maxAge"] = cors["max_age"]
    if cors.get("allow_credentials") is not None:
        rendered["allowCredentials"] = cors["allow_credentials"]
    return rendered


def _render_rule(rule):
    rendered = {}
    if rule.get("name"):
        rendered["name"] = rule["name"]
    if rule.get("match"):
        rendered["match"] = [_render_match(m) for m in rule["match"]]
    if rule.get("fault"):
        rendered["fault"] = _render_fault(rule["fault"])
    if rule.get("rewrite"):
        rendered["rewrite"] = dict((k, v) for k, v in rule["rewrite"].items() if v is not None)
    if rule.get("redirect"):
        rendered["redirect"] = _render_redirect(rule["redirect"])
    elif rule.get("direct_response"):
        response = {"status": rule["direct_response"]["status"]}
        if rule["direct_response"].get("body") is not None:
            response["body"] = {"string": rule["direct_response"]["body"]}
        rendered["directResponse"] = response
    else:
        rendered["route"] = [_render_destination(d) for d in rule["route"]]
    if rule.get("headers"):
        rendered["headers"] = _render_headers(rule["headers"])
    if rule.get("mirror"):
        mirror = rule["mirror"]
        rendered["mirror"] = _render_destination(mirror)["destination"]
        if rule.get("mirror_percentage") is not None:
            rendered["mirrorPercentage"] = _percent(rule["mirror_percentage"])
    if rule.get("cors_policy"):
        rendered["corsPolicy"] = _render_cors(rule["cors_policy"])
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


def _render_tcp_rule(rule, mesh_only=False):
    match = {"port": rule["port"]}
    if mesh_only:
        match = {"gateways": ["mesh"], "port": rule["port"]}
    routes = [_render_destination(dest) for dest in rule["route"]]
    if len(routes) == 1 and "weight" not in routes[0]:
        routes[0]["weight"] = 100
    return {"match": [match], "route": routes}


def _passthrough_rules(host, gateway, subset, port):
    """TLS routes by SNI: the sidecars send the connection to the egress gateway, which passes it on."""
    return [
        {
            "match": [{"gateways": ["mesh"], "port": port, "sniHosts": [host]}],
            "route": [{"destination": {"host": gateway["service"], "subset": subset, "port": {"number": port}}, "weight": 100}],
        },
        {
            "match": [{"gateways": [gateway["name"]], "port": port, "sniHosts": [host]}],
            "route": [{"destination": {"host": host, "port": {"number": port}}, "weight": 100}],
        },
    ]


def _origination_rule(route, gateway, namespace, settings):
    """The DestinationRule that makes the egress gateway speak TLS to the host's port; exported to
    the gateway's namespace only, so sidecars that reach the host directly are not affected."""
    origin = gateway["originate_tls"]
    tls = {"mode": origin.get("mode") or "SIMPLE", "sni": origin.get("sni") or route["host"]}
    if origin.get("credential_name"):
        tls["credentialName"] = origin["credential_name"]
    gateway_namespace = vocab.split_service_fqdn(gateway["service"])[1]
    return {
        "apiVersion": vocab.API_VERSION,
        "kind": "DestinationRule",
        "metadata": _metadata("originate-tls-for-%s" % route["name"], namespace, settings, [route["name"]]),
        "spec": {
            "host": route["host"],
            "exportTo": [gateway_namespace],
            "trafficPolicy": {"portLevelSettings": [{"port": {"number": origin["port"]}, "tls": tls}]},
        },
    }


def _gateway_ref(gateway_ns, gateway_name, route_ns):
    return gateway_name if gateway_ns == route_ns else "%s/%s" % (gateway_ns, gateway_name)


def _service_entry(route, namespace, settings):
    spec = {
        "hosts": [route["host"]],
        "ports": [{"number": p["number"], "name": p["name"], "protocol": p["protocol"]} for p in route["ports"]],
        "resolution": route.get("resolution") or "DNS",
    }
    if route.get("location"):
        spec["location"] = route["location"]
    return {"apiVersion": vocab.API_VERSION, "kind": "ServiceEntry", "metadata": _metadata(route["name"], namespace, settings, [route["name"]]), "spec": spec}


def render(ingress_routes, egress_routes, settings=None):
    """Render valid routes into Istio objects (dicts), in the order they are applied; with
    ``settings.api`` gateway_api, into Gateway API objects (models.gateway_api)."""
    errors = validate(ingress_routes, egress_routes, settings)
    if errors:
        raise TrafficModelError(errors)
    settings = merge_settings(settings)
    if settings["api"] == "gateway_api":
        return gateway_api.render(
            ingress_routes,
            egress_routes,
            settings,
            egress_gateway_of=lambda route: _egress_gateway_of(route, settings),
            egress_route_port=_egress_route_port,
            metadata=lambda name, namespace, routes: _metadata(name, namespace, settings, routes),
            service_entry=lambda route, namespace: _service_entry(route, namespace, settings),
            origination_rule=lambda route, gateway, namespace: _origination_rule(route, gateway, namespace, settings),
        )
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
                "apiVersion": vocab.API_VERSION,
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
        serviceentries.append(_service_entry(route, namespace, settings))
        gateway = _egress_gateway_of(route, settings)
        if not gateway["enabled"]:
            if route.get("tcp"):
                virtualservices.append(
                    {
                        "apiVersion": vocab.API_VERSION,
                        "kind": "VirtualService",
                        "metadata": _metadata(name, namespace, settings, [name]),
                        "spec": {"hosts": [route["host"]], "tcp": [_render_tcp_rule(rule) for rule in route["tcp"]]},
                    }
                )
            continue
        route_port = _egress_route_port(route, gateway)
        origin = gateway.get("originate_tls")
        passthrough = gateway.get("passthrough_port")
        entry = gateway_entry(namespace, gateway["name"], dict(gateway["selector"]), name)
        add_server(entry, gateway["port"], "http", "HTTP", [route["host"]])
        if passthrough is not None:
            add_server(entry, passthrough, "tls", "TLS", [route["host"]], {"mode": "PASSTHROUGH"})
        destinationrules.append(
            {
                "apiVersion": vocab.API_VERSION,
                "kind": "DestinationRule",
                "metadata": _metadata("egressgateway-for-%s" % name, namespace, settings, [name]),
                "spec": {"host": gateway["service"], "subsets": [{"name": name}]},
            }
        )
        virtualservices.append(
            {
                "apiVersion": vocab.API_VERSION,
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
                            "route": [{"destination": {"host": route["host"], "port": {"number": origin["port"] if origin else route_port}}, "weight": 100}],
                        },
                    ],
                },
            }
        )
        if passthrough is not None:
            virtualservices[-1]["spec"]["tls"] = _passthrough_rules(route["host"], gateway, name, passthrough)
        if route.get("tcp"):
            # the TCP ports go from the sidecars straight to their destinations
            virtualservices[-1]["spec"]["tcp"] = [_render_tcp_rule(rule, mesh_only=True) for rule in route["tcp"]]
        if origin is not None:
            destinationrules.append(_origination_rule(route, gateway, namespace, settings))

    rendered_gateways = []
    for (namespace, name), entry in gateways.items():
        rendered_gateways.append(
            {
                "apiVersion": vocab.API_VERSION,
                "kind": "Gateway",
                "metadata": _metadata(name, namespace, settings, entry["routes"]),
                "spec": {"selector": entry["selector"], "servers": [entry["servers"][key] for key in entry["order"]]},
            }
        )
    return rendered_gateways + serviceentries + destinationrules + virtualservices


# -- what the role asks the cluster -----------------------------------------------------------
def referenced_namespaces(objects):
    """Namespaces the rendered objects live in or send traffic to (cluster-local FQDN hosts).

    The traffic role reads them all before applying: a destination whose FQDN names a
    namespace that does not exist (a typo) is an error, not a warning.
    """
    namespaces = []
    for obj in objects:
        candidates = [vocab.namespace_of(obj)]
        spec = obj.get("spec") or {}
        for rule in spec.get("http") or []:
            hosts = [(dest.get("destination") or {}).get("host") for dest in rule.get("route") or []]
            hosts.append((rule.get("mirror") or {}).get("host"))
            for host in hosts:
                parts = vocab.split_service_fqdn(host)
                if parts is not None:
                    candidates.append(parts[1])
        parts = vocab.split_service_fqdn(spec.get("host")) if obj.get("kind") == "DestinationRule" else None
        if parts is not None:
            candidates.append(parts[1])
        for namespace in candidates:
            if namespace not in namespaces:
                namespaces.append(namespace)
    return namespaces


def stale_objects(owned, rendered):
    """Objects in ``owned`` (read from the cluster by label) that ``rendered`` no longer contains."""
    wanted = set(vocab.object_id(obj) for obj in rendered)
    return [obj for obj in owned if vocab.object_id(obj) not in wanted]


def owned_selector(settings=None):
    """Label selector matching the objects this instance of the traffic role owns."""
    return vocab.owned_selector(merge_settings(settings)["instance"])
