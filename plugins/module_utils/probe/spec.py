# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The schema of a route probe, once: the Ansible argument spec of route_verify's options.

The module's argument spec is built from these dicts (``ansible-test sanity`` holds its
DOCUMENTATION against them), and the runtime key lists and defaults of the probe runner and
the expectation parser derive from them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.meshops.istio.plugins.module_utils.probe.http import ERROR_KINDS

ERROR_CHOICES = (*ERROR_KINDS, "any")

TLS_OPTIONS = dict(
    validate_certs=dict(type="bool"),
    ca_path=dict(type="path"),
    client_cert=dict(type="path"),
    client_key=dict(type="path", no_log=False),
)
PROBE_TLS_OPTIONS = dict(TLS_OPTIONS, sni=dict(type="str"))

JSON_OPTIONS = dict(
    query=dict(type="str", required=True),
    equals=dict(type="raw"),
    contains=dict(type="raw"),
    regex=dict(type="str"),
    present=dict(type="bool"),
)

EXPECT_OPTIONS = dict(
    status=dict(type="raw"),
    headers=dict(type="dict"),
    headers_present=dict(type="list", elements="str"),
    headers_absent=dict(type="list", elements="str"),
    headers_regex=dict(type="dict"),
    body_contains=dict(type="list", elements="str"),
    body_not_contains=dict(type="list", elements="str"),
    body_regex=dict(type="list", elements="str"),
    json=dict(type="list", elements="dict", options=JSON_OPTIONS),
    max_latency=dict(type="float"),
    min_latency=dict(type="float"),
    error=dict(type="list", elements="str", choices=list(ERROR_CHOICES)),
)

# A probe that sends a batch of requests and checks the share of answers meeting ``expect``
# (a fault or a split that applies to a percentage of the requests).
SHARE_OPTIONS = dict(
    samples=dict(type="int", required=True),
    min=dict(type="float", default=0.0),
    max=dict(type="float", default=1.0),
)
SHARE_SAMPLES_LIMIT = 1000

PROBE_OPTIONS = dict(
    name=dict(type="str"),
    url=dict(type="str"),
    address=dict(type="str"),
    scheme=dict(type="str", choices=["http", "https"]),
    host=dict(type="str"),
    path=dict(type="str"),
    method=dict(type="str", default="GET"),
    headers=dict(type="dict"),
    body=dict(type="str"),
    json_body=dict(type="raw"),
    tls=dict(type="dict", options=PROBE_TLS_OPTIONS),
    timeout=dict(type="float"),
    via=dict(type="str"),
    share=dict(type="dict", options=SHARE_OPTIONS),
    expect=dict(type="dict", options=EXPECT_OPTIONS),
)

# Settings of a probe run (module options of route_verify) with their defaults.
SETTINGS_OPTIONS = dict(
    retries=dict(type="int", default=0),
    delay=dict(type="float", default=1.0),
    timeout=dict(type="float", default=300.0),
    consecutive_successes=dict(type="int", default=1),
    workers=dict(type="int", default=8),
    request_timeout=dict(type="float", default=10.0),
)
# Not a module option: the most of a body kept per answer.
BODY_LIMIT = 1048576

PROBE_KEYS = tuple(PROBE_OPTIONS)
TLS_KEYS = tuple(PROBE_TLS_OPTIONS)
EXPECT_KEYS = tuple(EXPECT_OPTIONS)
JSON_KEYS = tuple(JSON_OPTIONS)
SETTINGS_DEFAULTS = dict((name, option["default"]) for name, option in SETTINGS_OPTIONS.items())
SETTINGS_DEFAULTS["body_limit"] = BODY_LIMIT


def options(spec):
    """A copy of one of the dicts above, for a module's argument spec."""
    return copy.deepcopy(spec)
