# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vocabulary of meshops.istio: every Istio and Kubernetes fact the collection relies on.

One place for the API group and versions, the kinds the collection owns (and their plural
resource names), the labels it puts on what it creates, the field manager of its server-side
applies, how objects are named in messages, the Kubernetes name rules, the retry conditions
Envoy accepts, regular expressions with RE2 semantics, and the rules shared by the data model,
the linter and the explainer (for example "weights add up to 100").

Models, the linter, the explainer, the cluster reader and the modules import it; roles reach it
through the ``meshops.istio.istio_vocab`` filter. Pure Python, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import re2  # google-re2: RE2 itself, the engine of Envoy and of istiod's validation

    HAS_RE2 = True
except ImportError:  # pragma: no cover - depends on the environment
    re2 = None
    HAS_RE2 = False

# -- API ----------------------------------------------------------------------------------
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1"
API_VERSION = ISTIO_GROUP + "/" + ISTIO_VERSION
# Versions the cluster reader accepts (objects written by other tools may use v1beta1).
READ_API_VERSIONS = (API_VERSION, ISTIO_GROUP + "/v1beta1")
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

# Kinds the traffic role owns, in the order they are applied (Gateways first, so that
# VirtualServices never point at a Gateway that does not exist yet); removal goes backwards.
OWNED_KINDS = ("Gateway", "ServiceEntry", "DestinationRule", "VirtualService")
PLURALS = {
    "Gateway": "gateways",
    "ServiceEntry": "serviceentries",
    "DestinationRule": "destinationrules",
    "VirtualService": "virtualservices",
}
CRD_NAMES = tuple("%s.%s" % (PLURALS[kind], ISTIO_GROUP) for kind in OWNED_KINDS)
# With traffic_api gateway_api the traffic role owns these Gateway API kinds too (and
# ServiceEntries); prune lists them only where the cluster serves them.
GATEWAY_API_VERSION = GATEWAY_API_GROUP + "/v1"
GATEWAY_API_OWNED = ((GATEWAY_API_GROUP + "/v1beta1", "ReferenceGrant"), (GATEWAY_API_VERSION, "Gateway"), (GATEWAY_API_VERSION, "HTTPRoute"))
# API groups served by CRDs although their names end in .k8s.io like the built-in ones
CRD_GROUPS = (ISTIO_GROUP, GATEWAY_API_GROUP)
# Kinds that change routing but are not modelled by the explainer: reported, never guessed.
UNMODELLED_ISTIO_KINDS = ("Sidecar", "EnvoyFilter", "WorkloadEntry", "WorkloadGroup", "ProxyConfig")

# -- what the collection puts on the objects it creates -------------------------------------
MANAGED_BY = "meshops.istio"
FIELD_MANAGER = "meshops.istio"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_INSTANCE = "meshops.istio/instance"
LABEL_ROUTE = "meshops.istio/route"

# -- Istio's labels -------------------------------------------------------------------------
LABEL_ISTIO = "istio"  # gateway workloads: the label Gateway selectors use
LABEL_REV = "istio.io/rev"
LABEL_INJECTION = "istio-injection"
LABEL_TAG = "istio.io/tag"
LABEL_NAMESPACE_NAME = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
LABEL_GATEWAY_NAME = GATEWAY_API_GROUP + "/gateway-name"  # on the pods of a Gateway istiod deploys
DEFAULT_REVISION = "default"
# The revision tags the control_plane role owns unless control_plane_revision_tags names others.
DEFAULT_REVISION_TAGS = {"stable": "prod-stable", "canary": "prod-canary"}
CLUSTER_DOMAIN = "cluster.local"

# -- Kubernetes name rules --------------------------------------------------------------------
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Istio host names: DNS names, optionally '*.'-prefixed, or '*'
HOSTNAME = re.compile(r"^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+$")
HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")
# Istio release versions (1.31.0, 1.31.0-beta.1, 1.31-dev) and image tags
RELEASE_VERSION = re.compile(r"^[0-9]+[.][0-9]+[.][0-9]+([-.][0-9A-Za-z.-]+)?$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# registry/repository path without scheme: docker.io/istio, localhost:5000/istio, meshops.local/istio
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

# -- HTTP -----------------------------------------------------------------------------------
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
HTTP_FAMILY = ("HTTP", "HTTP2", "GRPC", "GRPC-WEB")
# Port protocols whose connections the proxies route by SNI (``tls`` rules), and those they
# route as opaque TCP (``tcp`` rules).
TLS_PORT_PROTOCOLS = ("HTTPS", "TLS")
TCP_PORT_PROTOCOLS = ("TCP", "MONGO")

# Conditions of Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on headers that Istio's
# retryOn accepts (pilot/pkg/networking/core/route/retry); a number is a retriable status code.
RETRY_ON_HTTP = (
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
)
RETRY_ON_GRPC = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
RETRY_ON = RETRY_ON_HTTP + RETRY_ON_GRPC
# Status codes Go's net/http knows (http.StatusText): istiod accepts only those in retryOn.
KNOWN_STATUS_CODES = frozenset(
    [
        *(100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308),
        *range(400, 419),
        *(421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511),
    ]
)


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|us|ns|m|s)")
_UNIT_NS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def duration_problem(value):
    """None for a duration istiod accepts (Go syntax, at least 1ms, whole milliseconds)."""
    if not isinstance(value, str) or not DURATION.match(value):
        return "is not a duration such as 500ms, 5s or 1m"
    nanos = 0
    for number, unit in _DURATION_PART.findall(value):
        whole, _dot, fraction = number.partition(".")
        nanos += int(whole) * _UNIT_NS[unit]
        if fraction:
            nanos += int(fraction) * _UNIT_NS[unit] // 10 ** len(fraction)
    if nanos < 10**6:
        return "is shorter than 1ms, the shortest duration istiod accepts"
    if nanos % 10**6:
        return "is not a whole number of milliseconds (istiod accepts only millisecond precision)"
    return None


def retry_on_problems(value):
    """Problems of a retryOn string such as ``5xx,connect-failure,503`` (empty when valid)."""
    if not isinstance(value, str) or not value.strip():
        return ["must be a comma separated string of conditions such as 5xx,connect-failure"]
    problems = []
    for raw in value.split(","):
        item = raw.strip()
        if item.isdigit():
            if int(item) not in KNOWN_STATUS_CODES:
                problems.append("%r is not an HTTP status code istiod knows" % item)
        elif item not in RETRY_ON:
            problems.append("%r is not a retry condition Envoy knows (%s, or a status code)" % (item, ", ".join(RETRY_ON)))
    return problems


# -- objects --------------------------------------------------------------------------------
def namespace_of(obj, default_namespace="default"):
    return (obj.get("metadata") or {}).get("namespace") or default_namespace


def name_of(obj):
    return (obj.get("metadata") or {}).get("name")


def qualified_kind(obj):
    """The kind, with its API group where Istio's kinds would be ambiguous: a Gateway API
    ``Gateway.gateway.networking.k8s.io`` is not Istio's ``Gateway``."""
    api_version = obj.get("apiVersion") or ""
    if api_version.split("/", 1)[0] == GATEWAY_API_GROUP and "/" in api_version and obj.get("kind") in OWNED_KINDS:
        return "{0}.{1}".format(obj.get("kind"), GATEWAY_API_GROUP)
    return obj.get("kind")


def object_id(obj, default_namespace="default"):
    """How messages and findings name an object: ``VirtualService httpbin/httpbin``."""
    return "{0} {1}/{2}".format(qualified_kind(obj), namespace_of(obj, default_namespace), name_of(obj))


def owned_labels(instance, routes=()):
    """Labels of an object the traffic role owns; ``routes``: the routes that produce it."""
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: instance}
    if len(routes) == 1:
        labels[LABEL_ROUTE] = routes[0]
    return labels


def owned_selector(instance):
    """Label selector of the objects one instance of the traffic role owns."""
    return "%s=%s,%s=%s" % (LABEL_MANAGED_BY, MANAGED_BY, LABEL_INSTANCE, instance)


def service_fqdn(name, namespace, domain=CLUSTER_DOMAIN):
    return "{0}.{1}.svc.{2}".format(name, namespace, domain)


def split_service_fqdn(host, domain=CLUSTER_DOMAIN):
    """``(name, namespace)`` of ``name.namespace.svc.<domain>``, else None."""
    suffix = ".svc." + domain
    if not isinstance(host, str) or not host.endswith(suffix):
        return None
    labels = host[: -len(suffix)].split(".")
    return (labels[0], labels[1]) if len(labels) == 2 and all(labels) else None


def revision_label(revision):
    """Value of istio.io/rev for a revision ('' is the default revision)."""
    return revision or DEFAULT_REVISION


_VERSION = re.compile(r"^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")


def parse_version(text):
    """``(major, minor, patch or None)`` of ``1.31.0``, ``1.31.0-eed52ebb66ad``, ``1.31-dev`` or an image tag; None if none."""
    match = _VERSION.match(str(text or ""))
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)) if match.group(3) is not None else None


def revision_of_version(version):
    """The revision name Istio's docs derive from a version: 1.31.0 (or 1.31.0-abc) -> 1-31-0."""
    parsed = parse_version(version)
    if parsed is None:
        return None
    return "%d-%d-%d" % (parsed[0], parsed[1], parsed[2] or 0)


# -- rules shared by the model, the linter and the explainer -----------------------------------
def weights_problem(weights):
    """Istio's rule for the weights of one route: None when fine, else the problem.

    ``weights``: the weight of every destination, None where none was given. A single
    destination without weight gets 100; several destinations need a weight each (or none,
    in which case Istio splits evenly only when there is one) and they must add up to 100.
    """
    given = [w for w in weights if w is not None]
    if not given:
        return None
    if len(given) != len(weights):
        return "give a weight to every destination or to none"
    if any(not isinstance(w, int) or isinstance(w, bool) for w in given):
        return None  # type errors are reported where the weight is
    if len(weights) > 1 and sum(given) != 100:
        return "weights add up to %d, they must add up to 100" % sum(given)
    return None


def weights_total(routes):
    """Sum of the weights of rendered ``route`` entries the way Envoy counts them."""
    total = 0
    for route in routes:
        weight = route.get("weight")
        total += 100 if weight is None and len(routes) == 1 else int(weight or 0)
    return total


# -- regular expressions (RE2) ----------------------------------------------------------------
_RE2_ONLY_UNSUPPORTED = re.compile(r"\(\?[=!<>]|\(\?P=|\\[1-9]|\\[pPzZ]|\\[gG]<|[*+?}]\+")


def regex_problem(pattern):
    """None when ``pattern`` compiles with RE2 (what istiod and Envoy use), else the reason."""
    if not isinstance(pattern, str):
        return "must be a string"
    if HAS_RE2:
        try:
            re2.compile(pattern)
        except re2.error as exc:
            return "RE2 rejects it (%s)" % exc
        return None
    # Without the RE2 binding: Python's parser plus the constructs RE2 lacks.
    if _RE2_ONLY_UNSUPPORTED.search(pattern):
        return "it uses a construct RE2 does not support (lookaround, backreference, possessive quantifier)"
    try:
        re.compile(pattern)
    except re.error as exc:
        return "it does not compile (%s)" % exc
    return None


def regex_fullmatch(pattern, value):
    """Whether ``value`` fully matches ``pattern`` with RE2 semantics; ValueError when RE2 rejects it."""
    problem = regex_problem(pattern)
    if problem:
        raise ValueError("regex {0!r}: {1}".format(pattern, problem))
    if HAS_RE2:
        return re2.fullmatch(pattern, value) is not None
    return re.fullmatch(pattern, value) is not None
