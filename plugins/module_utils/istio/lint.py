# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Static findings on Istio routing objects, before they are applied.

``lint(objects)`` returns a list of ``{severity, code, object, message}`` dicts,
errors first. Codes:

* ``gateway-host-unserved`` (warning): a Gateway server host no VirtualService bound to
  that Gateway serves; requests for it get 404.
* ``virtualservice-gateway-missing`` (error): a VirtualService names a Gateway that is not
  among the objects.
* ``virtualservice-gateway-host-mismatch`` (error): a VirtualService is bound to a Gateway
  that serves none of its hosts (Istio silently ignores the binding).
* ``virtualservice-host-unregistered`` (warning): a VirtualService for the mesh whose host
  is neither a Service nor a ServiceEntry host; sidecars apply it on port 80 only.
* ``destination-service-missing`` (error; warning when no Service of that namespace was
  given), ``destination-port-missing`` (error), ``destination-subset-missing`` (error).
* ``route-weights`` (error): weights of a multi-destination route do not add up to 100.
* ``rule-shadowed`` (warning): an http rule can never match because an earlier rule of the
  same VirtualService matches every request it would match (a redirect or a direct response
  included).
* ``mirror-destination-missing`` (error; warning when no Service of that namespace was given):
  a rule mirrors to a Service, port or subset that does not exist.
* ``mirror-same-destination`` (warning): a rule mirrors to the destination it routes to, so
  each mirrored request reaches that service twice.
* ``cors-never-preflighted`` (warning): a rule with a CORS policy matches only methods other
  than OPTIONS, so browsers' preflight requests never reach it.
* ``l4-rule-port-protocol`` (warning): a ``tls`` rule on a port that is not TLS or HTTPS, or a
  ``tcp`` rule on a port that is not TCP, for the VirtualService's hosts: the proxies route
  that port by its protocol and never use the rule.
* ``tls-encrypted-twice`` (error): a ``tls`` rule passes the client's TLS on to a host and port
  where a DestinationRule also originates TLS.
* The destination codes and ``route-weights`` apply to ``tls`` and ``tcp`` rules too.
* ``namespace-missing`` (error): an object lives in, or routes to (a cluster-local FQDN), a
  namespace that does not exist (``missing_namespace_findings``).
* Kubernetes Gateway API (``httproutes.lint_findings``): ``gateway-address-unbound`` (error)
  a Gateway's address names no Service of its namespace; ``gateway-service-missing``
  (warning) that Service does not exist; ``httproute-parent-missing`` (error) the parent
  Gateway or ServiceEntry does not exist; ``httproute-not-attached`` (error) no listener of the
  parent takes the route (port, sectionName, allowed namespaces or kinds, hostnames);
  ``httproute-backend-invalid`` (error; warning when no Service of that namespace was given) a
  backend Istio answers 500 for (missing Service or port, no ReferenceGrant, weight-less kind).
* ``unsupported`` (info): a feature the explanation engine does not model.
* ``invalid-object`` (error): an object without kind or name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio import httproutes
from ansible_collections.meshops.istio.plugins.module_utils.istio.objects import (
    MeshIndex,
    exported_to,
    hosts_intersection,
    split_server_host,
)
from ansible_collections.meshops.istio.plugins.module_utils.istio.routing import (
    MATCH_KEYS,
    Unknown,
    describe_alternative,
    re2_fullmatch,
    resolve_destination,
    string_match,
)
from ansible_collections.meshops.istio.plugins.module_utils.istio.vocab import TCP_PORT_PROTOCOLS, TLS_PORT_PROTOCOLS, split_service_fqdn, weights_total

SEVERITIES = ("error", "warning", "info")
_NEUTRAL_MATCH_KEYS = ("name", "statPrefix")


def _finding(severity, code, obj_id, message):
    return {"severity": severity, "code": code, "object": obj_id, "message": message}


# -- shadowing ------------------------------------------------------------------------------
def _string_covers(a, b, ignore_case=False):
    """Every value matching StringMatch b also matches StringMatch a."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    if not a:
        return True
    if not b or len(a) != 1 or len(b) != 1:
        return False
    (ka, va), (kb, vb) = next(iter(a.items())), next(iter(b.items()))
    va, vb = str(va), str(vb)
    if ignore_case and ka != "regex" and kb != "regex":
        va, vb = va.lower(), vb.lower()
    if ka == "prefix":
        return kb in ("exact", "prefix") and vb.startswith(va)
    if ka == "exact":
        return kb == "exact" and vb == va
    if ka == "regex":
        if kb == "regex":
            return va == vb
        if kb == "exact":
            try:
                return re2_fullmatch(va, vb)
            except Unknown:
                return False
    return False


def alternative_covers(a, b, index, vs_ns):
    """Whether every request matching alternative ``b`` also matches alternative ``a``."""
    if a is None:
        return True
    keys = [k for k in a if k not in _NEUTRAL_MATCH_KEYS]
    if any(k not in MATCH_KEYS for k in keys):
        return False
    if b is None:
        return not [k for k in keys if k != "ignoreUriCase"]
    if any(k not in MATCH_KEYS for k in b):
        return False
    for key in keys:
        if key == "ignoreUriCase":
            continue
        if key not in b:
            return False
        if key == "uri":
            if b.get("ignoreUriCase") and not a.get("ignoreUriCase"):
                return False
            if not _string_covers(a["uri"], b["uri"], ignore_case=bool(a.get("ignoreUriCase"))):
                return False
        elif key in ("scheme", "method", "authority"):
            if not _string_covers(a[key], b[key]):
                return False
        elif key in ("headers", "queryParams"):
            for name, spec in a[key].items():
                if name not in b[key] or not _string_covers(spec, b[key][name]):
                    return False
        elif key == "withoutHeaders":
            for name, spec in a[key].items():
                if b[key].get(name) != spec:
                    return False
        elif key == "port":
            if int(b["port"]) != int(a["port"]):
                return False
        elif key == "gateways":
            mine = set(_ref(index, g, vs_ns) for g in a["gateways"])
            if not set(_ref(index, g, vs_ns) for g in b["gateways"]) <= mine:
                return False
        elif key == "sourceNamespace":
            if b[key] != a[key]:
                return False
        elif key == "sourceLabels" and any(b[key].get(k) != v for k, v in a[key].items()):
            return False
    return True


def _ref(index, ref, vs_ns):
    value = index.gateway_ref(ref, vs_ns)
    return value if value == "mesh" else "/".join(value)


def _rule_shadows(earlier, later, index, vs_ns):
    earlier_alts = earlier.get("match") or [None]
    return all(any(alternative_covers(a, b, index, vs_ns) for a in earlier_alts) for b in (later.get("match") or [None]))


# -- checks ---------------------------------------------------------------------------------
def _server_protocol(server):
    return str((server.get("port") or {}).get("protocol") or "").upper()


def _vs_serves(index, vs, gateway_key, server_host_value):
    gw_ns = gateway_key[0]
    allowed_ns, server_host = split_server_host(server_host_value, gw_ns)
    if allowed_ns is not None and index.ns(vs) != allowed_ns:
        return False
    if not exported_to(vs, gw_ns, index.default_namespace):
        return False
    return any(hosts_intersection(index.resolve(h, index.ns(vs)), server_host) for h in (vs.get("spec") or {}).get("hosts") or [])


def _check_gateways(index, findings):
    for key, gw in sorted(index.gateways.items()):
        bound = [vs for vs in index.virtual_services if key in index.vs_gateways(vs)]
        for i, server in enumerate((gw.get("spec") or {}).get("servers") or []):
            protocol = _server_protocol(server)
            mode = str((server.get("tls") or {}).get("mode") or "").upper()
            if protocol not in ("HTTP", "HTTPS", "HTTP2", "GRPC") or mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
                findings.append(
                    _finding(
                        "info",
                        "unsupported",
                        index.oid(gw),
                        "server {0} ({1} {2}): only HTTP and terminated HTTPS servers are checked".format(i, protocol, mode).replace(" )", ")"),
                    )
                )
                continue
            if (server.get("tls") or {}).get("httpsRedirect"):
                continue
            for host in server.get("hosts") or []:
                if not any(_vs_serves(index, vs, key, host) and (vs.get("spec") or {}).get("http") for vs in bound):
                    findings.append(
                        _finding(
                            "warning",
                            "gateway-host-unserved",
                            index.oid(gw),
                            "{0}: server {1} (port {2}) host {3} is served by no VirtualService bound to this Gateway; requests for it get 404".format(
                                index.oid(gw), i, (server.get("port") or {}).get("number"), host
                            ),
                        )
                    )


def _check_virtual_service(index, vs, findings):
    oid = index.oid(vs)
    vs_ns = index.ns(vs)
    spec = vs.get("spec") or {}
    hosts = spec.get("hosts") or []
    _lint_l4_rules(findings, index, vs, oid, vs_ns)
    for ref in index.vs_gateways(vs):
        if ref == "mesh":
            unregistered = [
                h for h in hosts if "*" not in h and index.find_registry(index.resolve(h, vs_ns)) is None and index.namespace_known(index.resolve(h, vs_ns))
            ]
            for host in unregistered:
                findings.append(
                    _finding(
                        "warning",
                        "virtualservice-host-unregistered",
                        oid,
                        "{0}: host {1} is neither a Service nor a ServiceEntry host; sidecars apply this VirtualService to it on port 80 only "
                        "(add a ServiceEntry)".format(oid, host),
                    )
                )
            continue
        gw = index.gateways.get(ref)
        name = "/".join(ref)
        if gw is None:
            known = ", ".join("/".join(k) for k in sorted(index.gateways)) or "none"
            findings.append(
                _finding(
                    "error",
                    "virtualservice-gateway-missing",
                    oid,
                    "{0}: gateway {1} does not exist (Gateways given: {2}); check spec.gateways and the Gateway's namespace".format(oid, name, known),
                )
            )
            continue
        server_hosts = [h for s in (gw.get("spec") or {}).get("servers") or [] for h in s.get("hosts") or []]
        if not any(_vs_serves(index, vs, ref, h) for h in server_hosts):
            findings.append(
                _finding(
                    "error",
                    "virtualservice-gateway-host-mismatch",
                    oid,
                    "{0}: bound to Gateway {1}, which serves none of its hosts {2} (Gateway hosts: {3}); Istio ignores this binding".format(
                        oid, name, ", ".join(hosts), ", ".join(server_hosts) or "none"
                    ),
                )
            )
    rules = spec.get("http") or []
    for i, rule in enumerate(rules):
        if "delegate" in rule:
            findings.append(_finding("info", "unsupported", oid, "{0}: http rule {1} delegates (delegation is not modelled)".format(oid, i)))
        _lint_destinations(findings, index, oid, vs_ns, "http rule {0}".format(i), rule.get("route") or [])
        for k in range(i):
            if _rule_shadows(rules[k], rule, index, vs_ns):
                findings.append(
                    _finding(
                        "warning",
                        "rule-shadowed",
                        oid,
                        "{0}: http rule {1}{2} ({3}) can never match: rule {4} ({5}) matches every request it matches".format(
                            oid,
                            i,
                            " ({0})".format(rule["name"]) if rule.get("name") else "",
                            " or ".join(describe_alternative(m) for m in (rule.get("match") or [None])),
                            k,
                            " or ".join(describe_alternative(m) for m in (rules[k].get("match") or [None])),
                        ),
                    )
                )
                break
        _lint_mirror(findings, index, oid, vs_ns, i, rule)
        _lint_cors(findings, oid, i, rule)


def _lint_destinations(findings, index, oid, vs_ns, where, routes):
    """Missing Services, ports and subsets of a rule's destinations, and weights that do not add up."""
    for j, route in enumerate(routes):
        info = resolve_destination(index, route.get("destination"), vs_ns, None)
        for problem in info["problems"]:
            if problem.startswith("no Service"):
                code = "destination-service-missing"
                severity = "error" if info["namespace_known"] else "warning"
            elif problem.startswith("subset"):
                code, severity = "destination-subset-missing", "error"
            else:
                code, severity = "destination-port-missing", "error"
            findings.append(_finding(severity, code, oid, "{0}: {1} route {2}: {3}".format(oid, where, j, problem)))
    total = weights_total(routes)
    if len(routes) > 1 and total != 100:
        findings.append(_finding("error", "route-weights", oid, "{0}: {1}: route weights add up to {2}, not 100".format(oid, where, total)))


def _originating_ports(index, host):
    """Ports of ``host`` to which a DestinationRule (exported anywhere) originates TLS (SIMPLE or MUTUAL)."""
    ports = set()
    for dr in index.destination_rules_for(host):
        policy = (dr.get("spec") or {}).get("trafficPolicy") or {}
        if str((policy.get("tls") or {}).get("mode") or "").upper() in ("SIMPLE", "MUTUAL"):
            ports.add(None)  # every port
        for setting in policy.get("portLevelSettings") or []:
            if str((setting.get("tls") or {}).get("mode") or "").upper() in ("SIMPLE", "MUTUAL"):
                ports.add((setting.get("port") or {}).get("number"))
    return ports


def _lint_l4_rules(findings, index, vs, oid, vs_ns):
    """``tls`` and ``tcp`` rules: their destinations, a port whose protocol makes the rule dead,
    and TLS passed through to a port where a DestinationRule also originates TLS."""
    spec = vs.get("spec") or {}
    hosts = [index.resolve(h, vs_ns) for h in spec.get("hosts") or []]
    for section, protocols in (("tls", TLS_PORT_PROTOCOLS), ("tcp", (*TCP_PORT_PROTOCOLS, "UNKNOWN"))):
        for i, rule in enumerate(spec.get(section) or []):
            where = "{0} rule {1}".format(section, i)
            routes = rule.get("route") or []
            _lint_destinations(findings, index, oid, vs_ns, where, routes)
            for m in rule.get("match") or []:
                port = (m or {}).get("port")
                declared = [p["protocol"] for h in hosts for reg in [index.find_registry(h)] if reg for p in reg["ports"] if p["number"] == port]
                if port is not None and declared and not any(d in protocols for d in declared):
                    findings.append(
                        _finding(
                            "warning",
                            "l4-rule-port-protocol",
                            oid,
                            "{0}: {1} matches port {2}, which is {3} for {4}: the proxies route that port as {3} and never use this rule".format(
                                oid, where, port, "/".join(sorted(set(declared))), ", ".join(hosts)
                            ),
                        )
                    )
            if section != "tls":
                continue
            for route in routes:
                info = resolve_destination(index, route.get("destination"), vs_ns, None)
                originating = _originating_ports(index, info["host"])
                if info["host"] and (None in originating or info["port"] in originating):
                    findings.append(
                        _finding(
                            "error",
                            "tls-encrypted-twice",
                            oid,
                            "{0}: {1} passes TLS on to {2}:{3}, where a DestinationRule also originates TLS: the proxy would encrypt the "
                            "client's TLS again and the server could not read it; originate TLS on another port or drop the rule".format(
                                oid, where, info["host"], info["port"]
                            ),
                        )
                    )


def _lint_mirror(findings, index, oid, vs_ns, i, rule):
    """A mirror to a service that does not exist, or to the very destination the rule routes to."""
    mirror = rule.get("mirror")
    if not mirror:
        return
    info = resolve_destination(index, mirror, vs_ns, None)
    for problem in info["problems"]:
        severity = "error" if info["namespace_known"] or not problem.startswith("no Service") else "warning"
        findings.append(_finding(severity, "mirror-destination-missing", oid, "{0}: http rule {1} mirror: {2}".format(oid, i, problem)))
    routed = [resolve_destination(index, r.get("destination"), vs_ns, None) for r in rule.get("route") or []]
    same = [d for d in routed if (d["host"], d["port"], d["subset"]) == (info["host"], info["port"], info["subset"])]
    if same:
        findings.append(
            _finding(
                "warning",
                "mirror-same-destination",
                oid,
                "{0}: http rule {1} mirrors to {2}, where it also routes: every mirrored request reaches that service twice".format(oid, i, info["host"]),
            )
        )


def _lint_cors(findings, oid, i, rule):
    """A CORS policy on a rule whose matches all require a method other than OPTIONS never sees a preflight."""
    if not rule.get("corsPolicy"):
        return
    matches = rule.get("match") or []
    methods = [((m or {}).get("method") or {}) for m in matches]
    if matches and all(methods) and not any(string_match_method(method, "OPTIONS") for method in methods):
        findings.append(
            _finding(
                "warning",
                "cors-never-preflighted",
                oid,
                "{0}: http rule {1} has a CORS policy but matches only {2} requests: browsers' preflight requests (OPTIONS) never reach it".format(
                    oid, i, " or ".join(sorted(set(str(next(iter(method.values()))) for method in methods)))
                ),
            )
        )


def string_match_method(spec, method):
    """Whether a method StringMatch may match ``method`` (True when it is not modelled)."""
    try:
        return string_match(spec, method, "method")
    except Unknown:
        return True  # not modelled: assume it may match


def lint(objects, default_namespace="default"):
    """Findings for a set of objects (manifests as dicts); see the module docstring."""
    index = objects if isinstance(objects, MeshIndex) else MeshIndex(objects, default_namespace=default_namespace)
    findings = [_finding("error", "invalid-object", "-", message) for message in index.errors]
    for obj in index.unmodelled:
        findings.append(_finding("info", "unsupported", index.oid(obj), "{0}: this kind is not modelled; routing predictions ignore it".format(index.oid(obj))))
    _check_gateways(index, findings)
    for vs in index.virtual_services:
        _check_virtual_service(index, vs, findings)
    findings.extend(httproutes.lint_findings(index, _finding))
    findings.sort(key=lambda f: SEVERITIES.index(f["severity"]))
    return findings


def missing_namespace_findings(missing, objects):
    """Errors for namespaces that do not exist but that objects live in or route to."""
    index = objects if isinstance(objects, MeshIndex) else MeshIndex(objects)
    findings = []
    for namespace in missing:
        users = [index.oid(obj) for obj in index.gateways.values() if index.ns(obj) == namespace]
        for vs in index.virtual_services:
            hosts = [(r.get("destination") or {}).get("host") for rule in (vs.get("spec") or {}).get("http") or [] for r in rule.get("route") or []]
            if index.ns(vs) == namespace or any(split_service_fqdn(h or "") and split_service_fqdn(h)[1] == namespace for h in hosts):
                users.append(index.oid(vs))
        for obj in index.service_entries + index.destination_rules:
            if index.ns(obj) == namespace or (split_service_fqdn((obj.get("spec") or {}).get("host") or "") or (None, None))[1] == namespace:
                users.append(index.oid(obj))
        findings.append(
            _finding(
                "error",
                "namespace-missing",
                ", ".join(users) or "-",
                "namespace {0} does not exist; {1} {2} it (a typo in a namespace or in a destination FQDN?)".format(
                    namespace, ", ".join(users) or "the objects", "use" if len(users) != 1 else "uses"
                ),
            )
        )
    return findings


def has_errors(findings):
    return any(f["severity"] == "error" for f in findings)
