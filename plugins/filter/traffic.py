# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the meshops.istio traffic data model; the logic lives in module_utils/models/traffic.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.module_utils.models import traffic as traffic_model


def traffic_manifests(ingress_routes, egress_routes=None, settings=None):
    """The Istio objects of valid routes; fails with every problem when a route is invalid."""
    try:
        return traffic_model.render(ingress_routes, egress_routes, settings)
    except traffic_model.TrafficModelError as exc:
        raise AnsibleFilterError("invalid traffic routes:\n%s" % "\n".join(exc.errors)) from None


def traffic_credentials(credentials, settings=None, default_namespace="istio-system"):
    """The Secrets of valid TLS credentials; fails naming the fields (never the values) otherwise."""
    errors = traffic_model.validate_credentials(credentials, default_namespace)
    if errors:
        raise AnsibleFilterError("invalid TLS credentials:\n%s" % "\n".join(errors))
    return traffic_model.render_credentials(credentials, settings, default_namespace)


def traffic_namespaces(objects):
    """Namespaces rendered objects live in or route to (cluster-local FQDN destinations)."""
    return traffic_model.referenced_namespaces(objects or [])


class FilterModule:
    """meshops.istio traffic filters."""

    def filters(self):
        return {"traffic_manifests": traffic_manifests, "traffic_credentials": traffic_credentials, "traffic_namespaces": traffic_namespaces}
