# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The inputs of every role, validated the same way before anything is applied.

Each role's variables (with their role prefix) have one schema here: an Ansible argument-spec
dict per role (``ROLE_OPTIONS[role]``), which the role's ``meta/argument_specs.yml`` is tested
against (keys, types, choices, elements, required, nested options), plus the checks a spec
cannot express. ``problems(role, inputs, context)`` returns every problem of one role's
inputs, each message naming the variable (and the item and field inside it) with the bad
value; unknown variables with the role's prefix are reported with the closest known name.

site.yml runs every role's ``validate`` entry point on every cluster before the first change,
so a bad route never leaves a freshly installed Istio without routes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab
from ansible_collections.meshops.istio.plugins.module_utils.models import common, gateways, traffic, upgrade
from ansible_collections.meshops.istio.plugins.module_utils.models.common import show
from ansible_collections.meshops.istio.plugins.module_utils.probe import runner as probe_runner

ROLES = ("control_plane", "gateways", "httpbin", "traffic", "verify")

# Gateway API releases: v1.6.0 (the CRDs' gateway.networking.k8s.io/bundle-version)
GATEWAY_API_RELEASE = re.compile(r"^v[0-9]+[.][0-9]+[.][0-9]+$")

CONTROL_PLANE_OPTIONS = dict(
    control_plane_version=dict(type="str"),
    control_plane_namespace=dict(type="str"),
    control_plane_revision=dict(type="str"),
    control_plane_default_revision=dict(type="str"),
    control_plane_chart_source=dict(type="str", choices=["repository", "local"]),
    control_plane_chart_repo_url=dict(type="str"),
    control_plane_chart_dir=dict(type="path"),
    control_plane_registry=dict(type="str"),
    control_plane_image_tag=dict(type="str"),
    control_plane_image_pull_policy=dict(type="str", choices=["", "Always", "IfNotPresent", "Never"]),
    control_plane_outbound_traffic_policy=dict(type="str", choices=["ALLOW_ANY", "REGISTRY_ONLY"]),
    control_plane_access_log=dict(
        type="dict",
        options=dict(
            enabled=dict(type="bool", default=True),
            file=dict(type="str", default="/dev/stdout"),
            encoding=dict(type="str", choices=["TEXT", "JSON"], default="TEXT"),
            format=dict(type="str"),
        ),
    ),
    control_plane_proxy_profile=dict(type="str", choices=["standard", "upstream_envoy"]),
    control_plane_istiod_replicas=dict(type="int"),
    control_plane_istiod_resources=dict(type="dict"),
    control_plane_base_values=dict(type="dict"),
    control_plane_istiod_values=dict(type="dict"),
    control_plane_repair_drift=dict(type="bool"),
    control_plane_wait_timeout=dict(type="int"),
    control_plane_uninstall_crds=dict(type="bool"),
    control_plane_uninstall_gateway_api_crds=dict(type="bool"),
    control_plane_gateway_api_crds=dict(type="bool"),
    control_plane_gateway_api_version=dict(type="str"),
    control_plane_gateway_api_crds_file=dict(type="str"),
    control_plane_gateway_api_crds_url=dict(type="str"),
    control_plane_delete_namespace=dict(type="bool"),
    control_plane_update_strategy=dict(type="str", choices=list(upgrade.STRATEGIES)),
    control_plane_revision_tags=dict(type="dict", options=dict(stable=dict(type="str", required=True), canary=dict(type="str", required=True))),
    control_plane_canary_namespaces=dict(type="list", elements="str"),
    control_plane_canary_gateways=dict(type="list", elements="str"),
    control_plane_inactive_revision_grace_period=dict(type="int"),
    control_plane_rollout_timeout=dict(type="int"),
)

GATEWAYS_OPTIONS = dict(
    gateways_list=dict(type="list", elements="dict", options=gateways.GATEWAY_OPTIONS),
    gateways_namespace=dict(type="str"),
    gateways_chart_source=dict(type="str", choices=["repository", "local"]),
    gateways_chart_repo_url=dict(type="str"),
    gateways_chart_dir=dict(type="path"),
    gateways_version=dict(type="str"),
    gateways_revision=dict(type="str"),
    gateways_canary=dict(type="list", elements="str"),
    gateways_canary_revision=dict(type="str"),
    gateways_image_pull_policy=dict(type="str", choices=["", "Always", "IfNotPresent", "Never"]),
    gateways_repair_drift=dict(type="bool"),
    gateways_wait_timeout=dict(type="int"),
)

HTTPBIN_OPTIONS = dict(
    httpbin_namespace=dict(type="str"),
    httpbin_injection=dict(type="bool"),
    httpbin_revision=dict(type="str"),
    httpbin_image=dict(type="str"),
    httpbin_image_pull_policy=dict(type="str", choices=["Always", "IfNotPresent", "Never"]),
    httpbin_replicas=dict(type="int"),
    httpbin_shutdown_delay=dict(type="int"),
    httpbin_service_port=dict(type="int"),
    httpbin_container_port=dict(type="int"),
    httpbin_resources=dict(type="dict"),
    httpbin_wait_timeout=dict(type="int"),
)

TRAFFIC_OPTIONS = dict(
    traffic_namespace=dict(type="str"),
    traffic_instance=dict(type="str"),
    traffic_api=dict(type="str", choices=list(traffic.TRAFFIC_APIS)),
    traffic_status_timeout=dict(type="int"),
    traffic_ingress_routes=dict(type="list", elements="dict", options=traffic.INGRESS_ROUTE_OPTIONS),
    traffic_egress_host=dict(type="str"),
    traffic_egress_routes=dict(type="list", elements="dict", options=traffic.EGRESS_ROUTE_OPTIONS),
    traffic_ingress_gateway=dict(type="str"),
    traffic_egress_gateway=dict(type="str"),
    traffic_egress_gateway_port=dict(type="int"),
    traffic_lint=dict(type="bool"),
    traffic_prune=dict(type="bool"),
    traffic_tls_credentials=dict(type="list", elements="dict", options=traffic.CREDENTIAL_OPTIONS),
)

VERIFY_OPTIONS = dict(
    verify_ingress_address=dict(type="str"),
    verify_ingress_gateway=dict(type="str"),
    verify_ingress_host=dict(type="str"),
    verify_ingress_probes=dict(type="list", elements="dict"),
    verify_in_check_mode=dict(type="bool"),
    verify_retries=dict(type="int"),
    verify_delay=dict(type="float"),
    verify_consecutive_successes=dict(type="int"),
    verify_timeout=dict(type="float"),
    verify_report_path=dict(type="str"),
    verify_explain_namespaces=dict(type="list", elements="str"),
    verify_egress=dict(type="bool"),
    verify_egress_host=dict(type="str"),
    verify_egress_path=dict(type="str"),
    verify_egress_status=dict(type="list", elements="int"),
    verify_egress_gateway=dict(type="str"),
    verify_blocked_hosts=dict(type="list", elements="str"),
    verify_egress_requests=dict(
        type="list",
        elements="dict",
        options=dict(
            url=dict(type="str", required=True),
            status=dict(type="list", elements="int"),
            ca_cert=dict(type="str"),
            through_egress_gateway=dict(type="bool"),
        ),
    ),
    verify_client=dict(
        type="dict",
        options=dict(
            namespace=dict(type="str"),
            name=dict(type="str"),
            image=dict(type="str"),
        ),
    ),
)

ROLE_OPTIONS = {
    "control_plane": CONTROL_PLANE_OPTIONS,
    "gateways": GATEWAYS_OPTIONS,
    "httpbin": HTTPBIN_OPTIONS,
    "traffic": TRAFFIC_OPTIONS,
    "verify": VERIFY_OPTIONS,
}
# The variables of the collection's playbooks (site, upgrade, rollback, remove_scenario,
# uninstall) that are no role's: batches, where an upgrade stops, full checks. Checked with the
# roles' inputs (problems("playbook", ...)), offered by the AWX surveys (docs/awx/).
PLAYBOOK_OPTIONS = dict(
    meshops_target=dict(type="str", default="clusters"),
    meshops_serial=dict(type="raw"),
    meshops_max_fail_percentage=dict(type="int", default=0),
    meshops_full_checks=dict(type="bool", default=False),
    meshops_upgrade_until=dict(type="str", choices=["canary", "promote", "cleanup"], default="cleanup"),
    meshops_upgrade_rollback=dict(type="bool", default=True),
)

# Variables with a role's prefix that are not options (set by the collection itself).
_NOT_OPTIONS = {"verify": ("verify_ingress_result",)}


def _structure(problems, role, inputs):
    options = ROLE_OPTIONS[role]
    prefix = role + "_"
    known = set(options) | set(_NOT_OPTIONS.get(role, ()))
    for name in sorted(set(inputs) - known):
        if name.startswith(prefix):
            close = difflib.get_close_matches(name, list(options), n=1)
            problems.add(name, None, "unknown variable of the %s role%s" % (role, " (did you mean %s?)" % close[0] if close else ""))
    _check_values(problems, options, inputs)


def _check_values(problems, options, inputs):
    """Types, choices and nested options of the variables given (None: not given)."""
    for name, option in options.items():
        if inputs.get(name) is None:
            continue
        if option.get("elements") == "dict" and option.get("options"):
            # the model checks list items itself, naming each item
            if not isinstance(inputs[name], list):
                common.check_value(problems, name, None, inputs[name], dict(type="list"))
            continue
        if common.convertible(inputs[name], option.get("type", "str")):
            continue  # -e name=value gives strings; the roles convert them as Ansible does
        common.check_value(problems, name, None, inputs[name], option)


def _positive(problems, inputs, name, allow_zero=False):
    value = inputs.get(name)
    if (common.is_int(value) or isinstance(value, float)) and (value < 0 or (value == 0 and not allow_zero)):
        problems.add(name, None, "%s must be %s" % (show(value), "zero or more" if allow_zero else "greater than zero"))


# -- control_plane --------------------------------------------------------------------------
def _control_plane(problems, inputs, context):
    get = inputs.get
    if isinstance(get("control_plane_version"), str):
        common.check_version(problems, "control_plane_version", None, get("control_plane_version"))
    if isinstance(get("control_plane_namespace"), str):
        common.check_namespace(problems, "control_plane_namespace", None, get("control_plane_namespace"))
    if isinstance(get("control_plane_revision"), str):
        common.check_revision(problems, "control_plane_revision", None, get("control_plane_revision"))
    default_revision = get("control_plane_default_revision")
    if isinstance(default_revision, str) and default_revision != vocab.DEFAULT_REVISION:
        common.check_revision(problems, "control_plane_default_revision", None, default_revision)
    if get("control_plane_chart_source") == "local" and not get("control_plane_chart_dir"):
        problems.add("control_plane_chart_dir", None, "is required when control_plane_chart_source is local")
    url = get("control_plane_chart_repo_url")
    if get("control_plane_chart_source") != "local" and isinstance(url, str) and not url.startswith(("https://", "http://", "oci://")):
        problems.add("control_plane_chart_repo_url", None, "%s is not a chart repository URL (https://... or oci://...)" % show(url))
    _registry(problems, "control_plane_registry", get("control_plane_registry"))
    tag = get("control_plane_image_tag")
    if isinstance(tag, str) and tag and not vocab.IMAGE_TAG.match(tag):
        problems.add("control_plane_image_tag", None, "%s is not a valid image tag" % show(tag))
    tags = get("control_plane_revision_tags")
    if isinstance(tags, dict):
        for key in ("stable", "canary"):
            tag = tags.get(key)
            if isinstance(tag, str) and common.check_name(problems, "control_plane_revision_tags", key, tag, label=True):
                if tag == vocab.DEFAULT_REVISION:
                    problems.add("control_plane_revision_tags", key, "'default' is Istio's default revision, not a tag the collection may move (IST0139)")
                elif tag == get("control_plane_revision"):
                    problems.add(
                        "control_plane_revision_tags", key, "%s is also the revision's name: both would select the same namespaces (IST0139)" % show(tag)
                    )
        if tags.get("stable") is not None and tags.get("stable") == tags.get("canary"):
            problems.add("control_plane_revision_tags", None, "stable and canary must be different tags, both are %s" % show(tags.get("stable")))
    for index, namespace in enumerate(get("control_plane_canary_namespaces") or []):
        if isinstance(namespace, str):
            common.check_namespace(problems, "control_plane_canary_namespaces[%d]" % index, None, namespace)
    _positive(problems, inputs, "control_plane_inactive_revision_grace_period", allow_zero=True)
    _positive(problems, inputs, "control_plane_rollout_timeout")
    replicas = get("control_plane_istiod_replicas")
    if common.is_int(replicas) and replicas < 1:
        problems.add("control_plane_istiod_replicas", None, "%s must be at least 1 (the role waits for istiod to answer)" % show(replicas))
    _positive(problems, inputs, "control_plane_wait_timeout")
    version = get("control_plane_gateway_api_version")
    if isinstance(version, str) and not GATEWAY_API_RELEASE.match(version):
        problems.add("control_plane_gateway_api_version", None, "%s is not a Gateway API release such as v1.6.0" % show(version))
    url = get("control_plane_gateway_api_crds_url")
    if isinstance(url, str) and not get("control_plane_gateway_api_crds_file") and not url.startswith(("https://", "http://")):
        problems.add("control_plane_gateway_api_crds_url", None, "%s is not a URL (or set control_plane_gateway_api_crds_file)" % show(url))


def _registry(problems, name, value):
    if not isinstance(value, str):
        return
    if "://" in value:
        problems.add(name, None, "%s is a URL; give the registry path without a scheme (%s)" % (show(value), value.split("://", 1)[1].rstrip("/")))
    elif not vocab.REGISTRY.match(value):
        problems.add(name, None, "%s is not a registry path such as docker.io/istio" % show(value))


# -- gateways -------------------------------------------------------------------------------
def _gateways(problems, inputs, context):
    get = inputs.get
    namespace = get("gateways_namespace")
    if get("gateways_list") is not None:
        problems.messages.extend(gateways.validate(get("gateways_list"), namespace if isinstance(namespace, str) else "istio-system"))
    elif isinstance(namespace, str):
        common.check_namespace(problems, "gateways_namespace", None, namespace)
    if get("gateways_chart_source") == "local" and not get("gateways_chart_dir"):
        problems.add("gateways_chart_dir", None, "is required when gateways_chart_source is local")
    if isinstance(get("gateways_version"), str):
        common.check_version(problems, "gateways_version", None, get("gateways_version"))
    for name in ("gateways_revision", "gateways_canary_revision"):
        if isinstance(get(name), str) and get(name):
            common.check_revision(problems, name, None, get(name))
    canary = get("gateways_canary")
    if isinstance(canary, list) and canary:
        known = set(g.get("name") for g in get("gateways_list") or [] if isinstance(g, dict))
        for index, name in enumerate(canary):
            if name not in known:
                problems.add("gateways_canary[%d]" % index, None, "%s is not a gateway of gateways_list" % show(name))
        if not get("gateways_canary_revision"):
            problems.add("gateways_canary_revision", None, "is required when gateways_canary names gateways")
    _positive(problems, inputs, "gateways_wait_timeout")


# -- httpbin --------------------------------------------------------------------------------
def _httpbin(problems, inputs, context):
    get = inputs.get
    namespace = get("httpbin_namespace")
    if isinstance(namespace, str) and common.check_namespace(problems, "httpbin_namespace", None, namespace):
        system = set(vocab.SYSTEM_NAMESPACES) | set([context.get("control_plane_namespace") or "istio-system"])
        if namespace in system:
            problems.add("httpbin_namespace", None, "%s is a system namespace; choose an application namespace" % show(namespace))
    if isinstance(get("httpbin_revision"), str):
        common.check_revision(problems, "httpbin_revision", None, get("httpbin_revision"))
    for name in ("httpbin_service_port", "httpbin_container_port"):
        if common.is_int(get(name)):
            common.check_port(problems, name, None, get(name))
    _positive(problems, inputs, "httpbin_replicas", allow_zero=True)
    _positive(problems, inputs, "httpbin_shutdown_delay", allow_zero=True)
    image = get("httpbin_image")
    if isinstance(image, str) and (not image or any(c.isspace() for c in image) or "://" in image):
        problems.add("httpbin_image", None, "%s is not an image reference such as docker.io/mccutchen/go-httpbin:v2.15.0" % show(image))
    _positive(problems, inputs, "httpbin_wait_timeout")


# -- traffic --------------------------------------------------------------------------------
def _traffic(problems, inputs, context):
    get = inputs.get
    if isinstance(get("traffic_egress_host"), str):
        common.check_host(problems, "traffic_egress_host", None, get("traffic_egress_host"))
    _positive(problems, inputs, "traffic_status_timeout")
    if common.is_int(get("traffic_egress_gateway_port")):
        common.check_port(problems, "traffic_egress_gateway_port", None, get("traffic_egress_gateway_port"))
    settings = dict(context.get("traffic_settings") or {})
    for key, name in (("namespace", "traffic_namespace"), ("instance", "traffic_instance"), ("api", "traffic_api")):
        if get(name) is not None:
            settings[key] = get(name)
    if settings.get("api") not in traffic.TRAFFIC_APIS:
        settings.pop("api", None)  # the choices check has named it; the routes are checked for Istio's API
    for name, wanted in (("traffic_ingress_gateway", "ingress"), ("traffic_egress_gateway", "egress")):
        if get(name) and settings.get(wanted + "_gateway") is None:
            problems.add(name, None, "%s is not a gateway of gateways_list" % show(get(name)))
    problems.messages.extend(traffic.validate(get("traffic_ingress_routes"), get("traffic_egress_routes"), settings))
    problems.messages.extend(traffic.validate_credentials(get("traffic_tls_credentials"), context.get("gateways_namespace") or "istio-system"))


# -- verify ---------------------------------------------------------------------------------
def _verify(problems, inputs, context):
    get = inputs.get
    address = get("verify_ingress_address")
    if isinstance(address, str) and address:
        try:
            probe_runner.parse_address(address, "verify_ingress_address")
        except ValueError as exc:
            problems.add(None, None, str(exc))
    probes = get("verify_ingress_probes")
    if isinstance(probes, list) and probes:
        settings = {}
        for key, kind in (("retries", "int"), ("delay", "float"), ("timeout", "float"), ("consecutive_successes", "int")):
            value = get("verify_" + key)
            if common.convertible(value, kind):
                value = int(value) if kind == "int" else float(value)
            if value is not None:
                settings[key] = value
        try:
            probe_runner.prepare(probes, {"address": address or "placeholder.invalid:80"}, settings)
        except probe_runner.ProbeSpecError as exc:
            for error in exc.errors:
                problems.add("verify_ingress_probes", None, error)
    if get("verify_egress") and isinstance(get("verify_egress_host"), str):
        common.check_host(problems, "verify_egress_host", None, get("verify_egress_host"), allow_wildcard=False)
    path = get("verify_egress_path")
    if isinstance(path, str) and not path.startswith("/"):
        problems.add("verify_egress_path", None, "%s must start with '/'" % show(path))
    for index, status in enumerate(get("verify_egress_status") or []):
        if common.is_int(status) and not 100 <= status <= 599:
            problems.add("verify_egress_status[%d]" % index, None, "%s is not an HTTP status (100-599)" % show(status))
    for index, host in enumerate(get("verify_blocked_hosts") or []):
        if isinstance(host, str):
            common.check_host(problems, "verify_blocked_hosts[%d]" % index, None, host, allow_wildcard=False)
    for index, request in enumerate(get("verify_egress_requests") or []):
        url = request.get("url") if isinstance(request, dict) else None
        if isinstance(url, str) and not re.match(r"(?i)^https?://[^/?#]+", url):
            problems.add("verify_egress_requests[%d]" % index, "url", "%s must be an http:// or https:// URL" % show(url))
        statuses = request.get("status") if isinstance(request, dict) else None
        for sindex, status in enumerate(statuses if isinstance(statuses, list) else []):
            if common.is_int(status) and not 100 <= status <= 599:
                problems.add("verify_egress_requests[%d]" % index, "status[%d]" % sindex, "%s is not an HTTP status (100-599)" % show(status))
    client = get("verify_client")
    if isinstance(client, dict):
        if isinstance(client.get("namespace"), str):
            common.check_namespace(problems, "verify_client", "namespace", client["namespace"])
        if isinstance(client.get("name"), str):
            common.check_name(problems, "verify_client", "name", client["name"], label=True)
    for name, direction in (("verify_ingress_gateway", "ingress"), ("verify_egress_gateway", "egress")):
        if context.get(direction + "_gateway_known", True):
            continue
        if get(name):
            problems.add(name, None, "%s is not a gateway of gateways_list" % show(get(name)))
        elif direction == "egress" and get("verify_egress"):
            problems.add("verify_egress", None, "gateways_list has no egress gateway to prove egress through; set verify_egress: false")
        elif direction == "ingress" and get("verify_ingress_probes") and not get("verify_ingress_address"):
            problems.add("verify_ingress_address", None, "gateways_list has no ingress gateway to discover; set verify_ingress_address")


_CHECKS = {"control_plane": _control_plane, "gateways": _gateways, "httpbin": _httpbin, "traffic": _traffic, "verify": _verify}


def _playbook(problems, inputs):
    """The playbooks' own variables (``PLAYBOOK_OPTIONS``); unknown ones are not looked for."""
    _check_values(problems, PLAYBOOK_OPTIONS, inputs)
    serial = inputs.get("meshops_serial")
    if serial is not None:
        text = str(serial).strip()
        number = text[:-1] if text.endswith("%") else text
        if isinstance(serial, bool) or not number.isdigit() or int(number) < 1 or (text.endswith("%") and int(number) > 100):
            problems.add("meshops_serial", None, "%s must be a number of clusters (1 or more) or a percentage (1%% to 100%%)" % show(serial))
    fail = inputs.get("meshops_max_fail_percentage")
    if common.is_int(fail) and not 0 <= fail <= 100:
        problems.add("meshops_max_fail_percentage", None, "%s must be from 0 to 100" % show(fail))


def problems(role, inputs, context=None):
    """Every problem of one role's inputs (``{variable: value}``), each prefixed with the role.

    ``role`` ``playbook`` checks the playbooks' own variables (``PLAYBOOK_OPTIONS``).
    """
    if role not in ROLE_OPTIONS and role != "playbook":
        raise ValueError("unknown role %r (one of %s, or playbook)" % (role, ", ".join(ROLES)))
    found = common.Problems()
    if not isinstance(inputs, dict):
        return ["%s: the inputs must be a mapping of variables" % role]
    if role == "playbook":
        _playbook(found, inputs)
    else:
        _structure(found, role, inputs)
        _CHECKS[role](found, inputs, context or {})
    return ["%s: %s" % (role, message) for message in found.messages]
