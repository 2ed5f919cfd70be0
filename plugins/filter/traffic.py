# -*- coding: utf-8 -*-
# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the meshops.istio traffic data model; the logic lives in module_utils/traffic_model.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.meshops.istio.plugins.module_utils import traffic_model


def traffic_errors(ingress_routes, egress_routes=None, settings=None):
    """Every problem of the routes, each naming the route and the field; empty when valid."""
    return traffic_model.validate(ingress_routes, egress_routes, settings)


def traffic_manifests(ingress_routes, egress_routes=None, settings=None):
    """The Istio objects of valid routes; fails with every problem when a route is invalid."""
    try:
        return traffic_model.render(ingress_routes, egress_routes, settings)
    except traffic_model.TrafficModelError as exc:
        raise AnsibleFilterError("invalid traffic routes:\n%s" % "\n".join(exc.errors)) from None


def traffic_stale(owned, rendered):
    """Objects read from the cluster (owned by the role) that the rendered objects no longer contain."""
    return traffic_model.stale_objects(owned or [], rendered or [])


def traffic_owned_selector(settings=None):
    """The label selector of the objects owned by one instance of the traffic role."""
    return traffic_model.owned_selector(settings)


class FilterModule:
    """meshops.istio traffic filters."""

    def filters(self):
        return {
            "traffic_errors": traffic_errors,
            "traffic_manifests": traffic_manifests,
            "traffic_stale": traffic_stale,
            "traffic_owned_selector": traffic_owned_selector,
        }
